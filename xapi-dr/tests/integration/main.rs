//! xapi-dr's integration tests, linked into one binary (one link, one process).

mod configure;
mod db_xml;
mod inspect;
mod legacy;
mod reconcile;
mod redo_log;
mod source;
