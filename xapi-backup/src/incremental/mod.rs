//! Incremental backups from changed-block tracking: today the NBD client that reads the
//! changed blocks (and whole disks) from the hosts.

pub mod nbd;
