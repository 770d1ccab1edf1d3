//! xapi-backup's integration tests, linked into one binary (one link, one process).

mod fuzz_regressions;
mod vhd;
mod xva;
