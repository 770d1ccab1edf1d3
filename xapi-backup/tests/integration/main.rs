//! xapi-backup's integration tests, linked into one binary (one link, one process).

mod faults;
mod fuzz_regressions;
mod nbd;
mod vhd;
mod vm_backup;
mod xva;
