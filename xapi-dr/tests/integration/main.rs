//! xapi-dr's integration tests, linked into one binary (one link, one process).

mod configure;
mod db_xml;
mod failback;
mod failover;
mod inspect;
mod legacy;
mod newest_wins;
mod plan_sources;
mod prechecks;
mod reconcile;
mod redo_log;
mod resume;
mod source;
mod test_failover;
