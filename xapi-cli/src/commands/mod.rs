//! One module per command group.

pub(crate) mod backup;
pub(crate) mod backup_incremental;
pub(crate) mod backup_repo;
pub(crate) mod backup_xva;
pub(crate) mod demo;
pub(crate) mod dr;
pub(crate) mod dr_configure;
pub(crate) mod dr_plan;
pub(crate) mod dr_run;
pub(crate) mod lookup;
pub(crate) mod pool;
pub(crate) mod restore;
pub(crate) mod sim;
pub(crate) mod system;
pub(crate) mod vm;
