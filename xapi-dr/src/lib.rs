//! Disaster recovery for XenServer / XCP-ng pools.
//!
//! This crate will hold the reader and writer of the DR metadata VDI (the redo log and the XML
//! database dump), the newest-wins reconciliation of several copies, and the failover, failback
//! and test-failover planner and runner. Nothing is implemented yet.
