//! `xapictl vm list`: the pool's VMs (no templates, snapshots or control domains).

use std::collections::HashMap;

use serde::Serialize;
use xapi_core::api::VmRecord;
use xapi_core::client::SessionHandle;

use crate::exit::{Failure, explain};
use crate::output::{human_bytes, print_json, print_table};

/// One VM as `vm list` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct VmRow {
    /// The VM's UUID (its stable id).
    pub(crate) id: String,
    /// Name.
    pub(crate) name_label: String,
    /// `Running`, `Halted`, `Paused` or `Suspended`.
    pub(crate) power_state: String,
    /// The host it runs on, if any.
    pub(crate) host: Option<String>,
    /// Its vApp's name, if any.
    pub(crate) vapp: Option<String>,
    /// Maximum vCPUs.
    pub(crate) vcpus: i64,
    /// Static maximum memory in bytes.
    pub(crate) memory_bytes: i64,
    /// Tags.
    pub(crate) tags: Vec<String>,
}

/// Whether a VM record is one `vm list` shows: not a template, snapshot or control domain.
pub(crate) fn is_listed(vm: &VmRecord) -> bool {
    !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain
}

/// The VMs of the pool behind `session`, by name then UUID. Four bulk reads, no per-VM calls.
pub(crate) async fn list(session: &SessionHandle, url: &str) -> Result<Vec<VmRow>, Failure> {
    let fail = |err: xapi_core::Error| explain(url, &err);
    let vms = session.vm().get_all_records().await.map_err(fail)?;
    let hosts = session.host().get_all_records().await.map_err(fail)?;
    let vapps = session
        .vm_appliance()
        .get_all_records()
        .await
        .map_err(fail)?;
    let host_names: HashMap<_, String> = hosts
        .iter()
        .map(|(r, h)| (r.clone(), h.name_label.to_string()))
        .collect();
    let vapp_names: HashMap<_, String> = vapps
        .iter()
        .map(|(r, a)| (r.clone(), a.name_label.to_string()))
        .collect();
    let mut rows: Vec<VmRow> = vms
        .values()
        .filter(|vm| is_listed(vm))
        .map(|vm| VmRow {
            id: vm.uuid.to_string(),
            name_label: vm.name_label.to_string(),
            power_state: vm.power_state.to_string(),
            host: host_names.get(&vm.resident_on).cloned(),
            vapp: vapp_names.get(&vm.appliance).cloned(),
            vcpus: vm.vcpus_max,
            memory_bytes: vm.memory_static_max,
            tags: vm.tags.iter().map(ToString::to_string).collect(),
        })
        .collect();
    rows.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(rows)
}

/// Print the rows as a table or as `{"vms": [...]}`.
pub(crate) fn print(rows: &[VmRow], json: bool) {
    if json {
        print_json(&serde_json::json!({ "vms": rows }));
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|vm| {
            vec![
                vm.name_label.clone(),
                vm.power_state.clone(),
                vm.host.clone().unwrap_or_else(|| "-".into()),
                vm.vapp.clone().unwrap_or_else(|| "-".into()),
                vm.vcpus.to_string(),
                human_bytes(vm.memory_bytes),
                vm.id.clone(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "POWER", "HOST", "VAPP", "VCPUS", "MEMORY", "UUID"],
        &table,
    );
}
