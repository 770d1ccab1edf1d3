//! `xapictl pool info`: the pool, its hosts, its storage and where its database is replicated.

use serde::Serialize;
use xapi_core::client::SessionHandle;

use xapi_dr::configure::holds_replicated_database;

use crate::commands::vm::is_listed;
use crate::exit::{Failure, explain};
use crate::output::{human_bytes, print_json, print_table};

/// A host as `pool info` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct HostInfo {
    /// UUID.
    pub(crate) id: String,
    /// Name.
    pub(crate) name_label: String,
    /// Management address.
    pub(crate) address: String,
    /// Whether it is the pool master.
    pub(crate) master: bool,
    /// Whether it is enabled.
    pub(crate) enabled: bool,
}

/// An SR as `pool info` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct SrInfo {
    /// UUID.
    pub(crate) id: String,
    /// Name.
    pub(crate) name_label: String,
    /// SM type.
    pub(crate) sr_type: String,
    /// Whether shared.
    pub(crate) shared: bool,
    /// Size in bytes.
    pub(crate) size_bytes: i64,
    /// Used bytes.
    pub(crate) used_bytes: i64,
    /// Whether the pool's database is replicated to it (DR).
    pub(crate) dr_replication: bool,
}

/// What `pool info` prints.
#[derive(Debug, Serialize)]
pub(crate) struct PoolInfo {
    /// The pool's UUID.
    pub(crate) id: String,
    /// Name (the master's when the pool has none).
    pub(crate) name_label: String,
    /// Whether HA is on.
    pub(crate) ha_enabled: bool,
    /// Hosts, master first.
    pub(crate) hosts: Vec<HostInfo>,
    /// Storage, by name.
    pub(crate) srs: Vec<SrInfo>,
    /// VMs (no templates, snapshots or control domains).
    pub(crate) vm_count: usize,
}

/// Read the pool behind `session` in bulk.
pub(crate) async fn info(session: &SessionHandle, url: &str) -> Result<PoolInfo, Failure> {
    let fail = |err: xapi_core::Error| explain(url, &err);
    let pools = session.pool().get_all_records().await.map_err(fail)?;
    let (pool_ref, pool) = pools
        .into_iter()
        .next()
        .ok_or_else(|| Failure::failed(format!("{url}: the pool has no pool object")))?;
    let hosts = session.host().get_all_records().await.map_err(fail)?;
    let srs = session.sr().get_all_records().await.map_err(fail)?;
    let vdis = session.vdi().get_all_records().await.map_err(fail)?;
    let vms = session.vm().get_all_records().await.map_err(fail)?;
    let mut host_rows: Vec<HostInfo> = hosts
        .iter()
        .map(|(r, h)| HostInfo {
            id: h.uuid.to_string(),
            name_label: h.name_label.to_string(),
            address: h.address.to_string(),
            master: *r == pool.master,
            enabled: h.enabled,
        })
        .collect();
    host_rows.sort_by(|a, b| {
        b.master
            .cmp(&a.master)
            .then_with(|| a.name_label.cmp(&b.name_label))
    });
    let mut sr_rows: Vec<SrInfo> = srs
        .iter()
        .map(|(r, sr)| SrInfo {
            id: sr.uuid.to_string(),
            name_label: sr.name_label.to_string(),
            sr_type: sr.r#type.to_string(),
            shared: sr.shared,
            size_bytes: sr.physical_size,
            used_bytes: sr.physical_utilisation,
            dr_replication: vdis
                .values()
                .any(|vdi| holds_replicated_database(vdi, r, &pool_ref)),
        })
        .collect();
    sr_rows.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.id.cmp(&b.id))
    });
    let name_label = if pool.name_label.is_empty() {
        host_rows
            .iter()
            .find(|h| h.master)
            .map(|h| h.name_label.clone())
            .unwrap_or_default()
    } else {
        pool.name_label.to_string()
    };
    Ok(PoolInfo {
        id: pool.uuid.to_string(),
        name_label,
        ha_enabled: pool.ha_enabled,
        hosts: host_rows,
        srs: sr_rows,
        vm_count: vms.values().filter(|vm| is_listed(vm)).count(),
    })
}

/// Print the pool as text or JSON.
pub(crate) fn print(info: &PoolInfo, json: bool) {
    if json {
        print_json(info);
        return;
    }
    println!("pool {} ({})", info.name_label, info.id);
    println!(
        "{} hosts, {} VMs, HA {}",
        info.hosts.len(),
        info.vm_count,
        if info.ha_enabled { "on" } else { "off" }
    );
    println!();
    let hosts: Vec<Vec<String>> = info
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.name_label.clone(),
                if h.master { "master" } else { "member" }.into(),
                h.address.clone(),
                if h.enabled { "enabled" } else { "disabled" }.into(),
            ]
        })
        .collect();
    print_table(&["HOST", "ROLE", "ADDRESS", "STATE"], &hosts);
    println!();
    let srs: Vec<Vec<String>> = info
        .srs
        .iter()
        .map(|sr| {
            vec![
                sr.name_label.clone(),
                sr.sr_type.clone(),
                if sr.shared { "shared" } else { "local" }.into(),
                format!(
                    "{} / {}",
                    human_bytes(sr.used_bytes),
                    human_bytes(sr.size_bytes)
                ),
                if sr.dr_replication { "yes" } else { "-" }.into(),
            ]
        })
        .collect();
    print_table(
        &["SR", "TYPE", "SHARING", "USED / SIZE", "DR METADATA"],
        &srs,
    );
}
