//! Reading a pool's state for planning: the target pool once, in bulk (one `get_all_records`
//! per class, no per-object getters), and the source pool's power states when it can still be
//! reached.

use std::collections::{BTreeSet, HashMap};

use xapi_core::api::{Role, VmPowerState};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::Error;
use crate::plan::{
    SourcePool, TargetHost, TargetNetwork, TargetPool, TargetPoolVm, TargetSr, TargetVapp,
};

/// Whether a VM in this power state holds a domain (running, paused or suspended).
fn is_live(state: &VmPowerState) -> bool {
    matches!(
        state,
        VmPowerState::Running | VmPowerState::Paused | VmPowerState::Suspended
    )
}

/// Reads the pool `session` is logged in to, as [`crate::plan::plan`] and
/// [`crate::reconcile::reconcile`] need it: pool (licence restriction, HA), the caller's roles,
/// hosts with free memory, SRs with whether they are attached, networks, VMs with their MACs,
/// versions and power states, vApps.
pub async fn read_target_pool(session: &SessionHandle) -> Result<TargetPool, Error> {
    let pools = session.pool().get_all_records().await?;
    let pool = pools.into_values().next().ok_or(Error::NoPoolRecord)?;
    let hosts = session.host().get_all_records().await?;
    let metrics = session.host_metrics().get_all_records().await?;
    let srs = session.sr().get_all_records().await?;
    let pbds = session.pbd().get_all_records().await?;
    let vdis = session.vdi().get_all_records().await?;
    let networks = session.network().get_all_records().await?;
    let vms = session.vm().get_all_records().await?;
    let vifs = session.vif().get_all_records().await?;
    let vapps = session.vm_appliance().get_all_records().await?;

    let mut target = TargetPool {
        uuid: (*pool.uuid).to_owned(),
        name_label: if pool.name_label.is_empty() {
            hosts
                .get(&pool.master)
                .map(|h| (*h.name_label).to_owned())
                .unwrap_or_default()
        } else {
            (*pool.name_label).to_owned()
        },
        dr_restricted: pool
            .restrictions
            .get("restrict_dr")
            .is_some_and(|v| &**v == "true"),
        caller_roles: caller_roles(session).await?,
        ha_enabled: pool.ha_enabled,
        ha_heartbeat_srs: pool
            .ha_statefiles
            .iter()
            .filter_map(|vdi| vdis.get(&Ref::new(&**vdi)))
            .filter_map(|vdi| srs.get(&vdi.sr))
            .map(|sr| (*sr.uuid).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        ha_host_failures_to_tolerate: pool.ha_host_failures_to_tolerate,
        ..TargetPool::default()
    };
    target.hosts = hosts
        .values()
        .map(|host| TargetHost {
            uuid: (*host.uuid).to_owned(),
            name_label: (*host.name_label).to_owned(),
            memory_free: metrics.get(&host.metrics).map_or(0, |m| m.memory_free),
        })
        .collect();
    target.hosts.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    target.srs = srs
        .iter()
        .map(|(sr_ref, sr)| TargetSr {
            uuid: (*sr.uuid).to_owned(),
            name_label: (*sr.name_label).to_owned(),
            attached: pbds
                .values()
                .any(|pbd| pbd.sr == *sr_ref && pbd.currently_attached),
        })
        .collect();
    target.srs.sort_by(|a, b| a.name_label.cmp(&b.name_label));
    target.networks = networks
        .values()
        .map(|n| TargetNetwork {
            uuid: (*n.uuid).to_owned(),
            name_label: (*n.name_label).to_owned(),
            bridge: (*n.bridge).to_owned(),
        })
        .collect();
    target
        .networks
        .sort_by(|a, b| a.name_label.cmp(&b.name_label));
    let mut live_vms = BTreeSet::new();
    for (vm_ref, vm) in &vms {
        if vm.is_a_template || vm.is_a_snapshot || vm.is_control_domain {
            continue;
        }
        if is_live(&vm.power_state) {
            live_vms.insert(vm_ref.clone());
        }
        let mut macs: Vec<String> = vm
            .vifs
            .iter()
            .filter_map(|vif| vifs.get(vif))
            .map(|vif| (*vif.mac).to_owned())
            .collect();
        macs.sort();
        target.vms.push(TargetPoolVm {
            uuid: (*vm.uuid).to_owned(),
            name_label: (*vm.name_label).to_owned(),
            macs,
            version: vm.version,
            power_state: vm.power_state.clone(),
        });
    }
    target.vms.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    target.vapps = vapps
        .values()
        .map(|app| TargetVapp {
            uuid: (*app.uuid).to_owned(),
            running: app.vms.iter().any(|vm| live_vms.contains(vm)),
        })
        .collect();
    target.vapps.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    Ok(target)
}

/// The caller's role names, or `None` for a local superuser (who may do everything).
async fn caller_roles(session: &SessionHandle) -> Result<Option<Vec<String>>, Error> {
    let me = session.reference();
    let record = session.session().get_record(&me).await?;
    if record.is_local_superuser || record.subject.is_null() {
        return Ok(None);
    }
    let subject = session.subject().get_record(&record.subject).await?;
    let roles: HashMap<Ref<Role>, String> = session
        .role()
        .get_all_records()
        .await?
        .into_iter()
        .map(|(r, role)| (r, (*role.name_label).to_owned()))
        .collect();
    let mut names: Vec<String> = subject
        .roles
        .iter()
        .filter_map(|r| roles.get(r).cloned())
        .collect();
    names.sort();
    Ok(Some(names))
}

/// Reads the power states of a source pool that can still be reached: which VMs run, are
/// paused or suspended there, and which vApps have such a member.
pub async fn read_source_pool(session: &SessionHandle) -> Result<SourcePool, Error> {
    let vms = session.vm().get_all_records().await?;
    let vapps = session.vm_appliance().get_all_records().await?;
    let mut source = SourcePool::default();
    let mut live_refs = BTreeSet::new();
    for (vm_ref, vm) in &vms {
        if !vm.is_a_template
            && !vm.is_a_snapshot
            && !vm.is_control_domain
            && is_live(&vm.power_state)
        {
            source.live_vms.insert((*vm.uuid).to_owned());
            live_refs.insert(vm_ref.clone());
        }
    }
    for app in vapps.values() {
        if app.vms.iter().any(|vm| live_refs.contains(vm)) {
            source.live_vapps.insert((*app.uuid).to_owned());
        }
    }
    Ok(source)
}
