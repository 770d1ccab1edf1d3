//! xapi-sim's integration tests, linked into one binary (one link, one process).

mod debug_redaction;
mod disks_and_placement;
mod events_on_destroy;
mod failover;
mod faults_and_state;
mod import;
mod members;
mod mirror;
mod nbd_qemu;
mod raw_vdi;
mod replication;
mod restart_binary;
mod restart_state;
mod rpc_datamodel_rules;
mod rpc_over_http;
mod support;
mod through_client;
mod tls_members;
mod tls_nbd;
mod transfer_framing;
mod transfer_host_backup;
mod transfer_import_force;
mod transfer_import_metadata;
mod transfer_pool_restore;
mod transfer_take_over;
mod vhd_transfer;
