//! xapi-backup's integration tests, linked into one binary (one link, one process).

mod fuzz_regressions;
mod nbd;
mod raw_disk;
mod support;
mod vhd;
mod vm_backup;
mod xva;
