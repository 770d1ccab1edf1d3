//! The object model: a generic store of objects per class, driven by the datamodel.

pub(crate) mod coerce;
pub(crate) mod db_form;
pub(crate) mod defaults;
pub(crate) mod float_text;
pub(crate) mod ids;
pub(crate) mod relations;
pub(crate) mod replication;
pub(crate) mod sm;
pub(crate) mod store;
