//! Streaming backup and restore of XenServer / XCP-ng VMs and disks.
//!
//! This crate will hold the streaming codecs (XVA, VHD, raw tar, chunked upload), VM export and
//! import, incremental backups from changed-block tracking, the backup repository and the
//! many-VM job runner. Nothing is implemented yet.
