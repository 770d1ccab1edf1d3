//! xapi-backup's integration tests, linked into one binary (one link, one process).

mod faults;
mod fuzz_regressions;
mod host_backup;
mod incremental;
mod nbd;
mod pool_metadata;
mod raw_disk;
mod restore_options;
mod special_vms;
mod support;
mod vhd;
mod vm_backup;
mod xva;
mod xva_export;
