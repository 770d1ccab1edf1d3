//! One module per command group.

pub(crate) mod dr;
pub(crate) mod pool;
pub(crate) mod sim;
pub(crate) mod vm;
