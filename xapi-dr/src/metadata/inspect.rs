//! An offline summary of a metadata VDI image or an XML dump: what a recovery from it would
//! bring back.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use serde::Serialize;

use super::diagnostic::Diagnostic;
use super::load::{LoadedDatabase, Source, load, load_reader};
use xapi_core::api::{Network, Sr, Vbd, VbdType, Vdi, Vif, Vm, VmAppliance, VmPowerState};
use xapi_core::wire::Ref;

use super::database::Database;
use super::views::{
    NetworkView, PoolView, SrView, VbdView, VdiView, ViewError, VifView, VmApplianceView, VmView,
};
use crate::Error;

/// The pool the database belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PoolSummary {
    /// Pool UUID (empty if the database has no pool row).
    pub uuid: String,
    /// Pool name; when empty, clients show the master's name instead.
    pub name_label: String,
    /// Name of the master host.
    pub master_name: String,
}

/// A disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSummary {
    /// `userdevice` of the VBD.
    pub userdevice: String,
    /// `Disk` or `CD`.
    pub vbd_type: VbdType,
    /// VDI UUID (empty for an empty CD drive).
    pub vdi_uuid: String,
    /// VDI name.
    pub vdi_name: String,
    /// Size in bytes.
    pub virtual_size: i64,
    /// SR UUID.
    pub sr_uuid: String,
    /// SR name.
    pub sr_name: String,
}

/// A VM a recovery would bring back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmSummary {
    /// UUID (kept by recovery).
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Power state recorded in the metadata.
    pub power_state: VmPowerState,
    /// UUID of its vApp, if any.
    pub vapp: Option<String>,
    /// Recovery count: compared with the target pool's copy.
    pub version: i64,
    /// Start order within its vApp.
    pub order: i64,
    /// Delay after start, in seconds.
    pub start_delay: i64,
    /// Delay after shutdown, in seconds.
    pub shutdown_delay: i64,
    /// Static maximum memory in bytes (what a host must hold to start it).
    pub memory_static_max: i64,
    /// Maximum number of vCPUs.
    pub vcpus_max: i64,
    /// HA restart priority (`restart`, `best-effort` or empty).
    pub ha_restart_priority: String,
    /// Disks and CD drives in `userdevice` order.
    pub disks: Vec<DiskSummary>,
    /// Network interfaces in device order.
    pub vifs: Vec<VifSummary>,
    /// Snapshots of the VM in the metadata (recovered with it).
    pub snapshots: usize,
    /// User tags.
    pub tags: Vec<String>,
}

/// A network interface of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VifSummary {
    /// Device number in the guest.
    pub device: String,
    /// MAC address.
    pub mac: String,
    /// UUID of its network in the source pool.
    pub network_uuid: String,
    /// Name of that network (how xapi's import matches it first).
    pub network_name: String,
    /// Bridge of that network (how it matches it next).
    pub network_bridge: String,
}

/// A network the VMs of the summary are attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NetworkSummary {
    /// UUID in the source pool.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Bridge in dom0.
    pub bridge: String,
    /// MTU.
    pub mtu: i64,
}

/// A vApp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VappSummary {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// Member VM UUIDs.
    pub vms: Vec<String>,
}

/// An SR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrSummary {
    /// UUID (recovery looks SRs up by UUID in the target pool).
    pub uuid: String,
    /// Name.
    pub name_label: String,
    /// SM type.
    pub sr_type: String,
    /// Content type.
    pub content_type: String,
    /// Whether shared.
    pub shared: bool,
    /// Whether a VM of the summary has a disk on it (a recovery needs it attached).
    pub required: bool,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// Where the database came from.
    pub source: Source,
    /// The pool.
    pub pool: PoolSummary,
    /// Database generation (after replay): the newest-wins key between copies of one pool.
    pub generation: i64,
    /// Schema version, `major.minor`.
    pub schema_version: String,
    /// Real VMs (no templates, snapshots or control domains), by name then UUID.
    pub vms: Vec<VmSummary>,
    /// vApps, by name then UUID.
    pub vapps: Vec<VappSummary>,
    /// SRs, by name then UUID.
    pub srs: Vec<SrSummary>,
    /// Networks that VMs of `vms` are attached to, by name then UUID.
    pub networks: Vec<NetworkSummary>,
    /// Templates, snapshots and control domains left out of `vms`.
    pub other_vm_rows: usize,
    /// Observations made while reading.
    pub diagnostics: Vec<Diagnostic>,
}

/// Everything a summary reads about one pool database, as typed views: built from a
/// [`Database`] (offline) or from the API records of a foreign database (see
/// `xapi_dr::source`), so that both give the same [`InspectReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct PoolViews {
    /// The pool row (a database has one; `None` if it has none).
    pub pool: Option<PoolView>,
    /// Name of the pool's master host (`""` if unknown).
    pub master_name: String,
    /// Every SR.
    pub srs: Vec<SrView>,
    /// Every VDI.
    pub vdis: Vec<VdiView>,
    /// Every VBD.
    pub vbds: Vec<VbdView>,
    /// Every VIF.
    pub vifs: Vec<VifView>,
    /// Every network.
    pub networks: Vec<NetworkView>,
    /// Every vApp.
    pub vapps: Vec<VmApplianceView>,
    /// Every VM row: VMs, templates, snapshots and control domains.
    pub vms: Vec<VmView>,
    /// Database generation (after replay).
    pub generation: i64,
    /// Schema version, `major.minor`.
    pub schema_version: String,
}

impl PoolViews {
    /// The views of a database, in reference order.
    pub fn from_database(db: &Database) -> Result<Self, ViewError> {
        let pools = db.view::<PoolView>()?;
        let pool = pools.into_iter().next();
        let master_name = pool
            .as_ref()
            .and_then(|p| db.row("host", p.master.as_str()))
            .map(|master| master.get("name__label").unwrap_or_default().to_owned())
            .unwrap_or_default();
        Ok(PoolViews {
            pool,
            master_name,
            srs: db.view()?,
            vdis: db.view()?,
            vbds: db.view()?,
            vifs: db.view()?,
            networks: db.view()?,
            vapps: db.view()?,
            vms: db.view()?,
            generation: db.generation(),
            schema_version: format!("{}.{}", db.manifest.schema_major, db.manifest.schema_minor),
        })
    }
}

/// Summarises a redo-log image (e.g. a `dd` of a metadata VDI), an XML dump or a gzipped
/// `state.db`, told apart by their first bytes.
pub fn inspect(path: impl AsRef<Path>) -> Result<InspectReport, Error> {
    summarise_loaded(load(path)?)
}

/// Like [`inspect`], over bytes in memory.
pub fn inspect_bytes(bytes: &[u8]) -> Result<InspectReport, Error> {
    summarise_loaded(load_reader(Cursor::new(bytes), "<bytes>")?)
}

/// Device slots (`userdevice`, VIF `device`) in numeric order, non-numeric ones last by text.
fn by_device_number(a: &str, b: &str) -> std::cmp::Ordering {
    let number = |device: &str| device.parse::<u32>().unwrap_or(u32::MAX);
    number(a).cmp(&number(b)).then_with(|| a.cmp(b))
}

fn summarise_loaded(loaded: LoadedDatabase) -> Result<InspectReport, Error> {
    let views = PoolViews::from_database(&loaded.database)?;
    Ok(summarise(views, loaded.source, loaded.diagnostics))
}

/// The summary of one pool database given as views: what a recovery from it would bring back.
/// `source` and `diagnostics` are carried into the report as they are.
pub fn summarise(views: PoolViews, source: Source, diagnostics: Vec<Diagnostic>) -> InspectReport {
    let PoolViews {
        pool: pool_view,
        master_name,
        srs,
        vdis,
        vbds,
        vifs,
        networks,
        vapps: apps,
        vms: vm_views,
        generation,
        schema_version,
    } = views;
    let pool = pool_view.map_or_else(PoolSummary::default, |p| PoolSummary {
        uuid: p.uuid,
        name_label: p.name_label,
        master_name,
    });
    let sr_by_ref: HashMap<&Ref<Sr>, &SrView> = srs.iter().map(|s| (&s.reference, s)).collect();
    let vdi_by_ref: HashMap<&Ref<Vdi>, &VdiView> = vdis.iter().map(|v| (&v.reference, v)).collect();
    let vbd_by_ref: HashMap<&Ref<Vbd>, &VbdView> = vbds.iter().map(|v| (&v.reference, v)).collect();
    let vif_by_ref: HashMap<&Ref<Vif>, &VifView> = vifs.iter().map(|v| (&v.reference, v)).collect();
    let network_by_ref: HashMap<&Ref<Network>, &NetworkView> =
        networks.iter().map(|n| (&n.reference, n)).collect();
    let mut used_networks = std::collections::BTreeSet::new();
    let app_by_ref: HashMap<&Ref<VmAppliance>, &VmApplianceView> =
        apps.iter().map(|a| (&a.reference, a)).collect();

    let mut required_srs = std::collections::HashSet::new();
    let mut vms = Vec::new();
    let mut other_vm_rows = 0;
    let mut vm_uuid_by_ref: HashMap<Ref<Vm>, String> = HashMap::new();
    for vm in vm_views {
        if vm.is_a_template || vm.is_a_snapshot || vm.is_control_domain {
            other_vm_rows += 1;
            continue;
        }
        let mut disks: Vec<DiskSummary> = vm
            .vbds
            .iter()
            .filter_map(|r| vbd_by_ref.get(r))
            .map(|vbd| {
                let vdi = vdi_by_ref.get(&vbd.vdi);
                let sr = vdi.and_then(|v| sr_by_ref.get(&v.sr));
                if let Some(sr) = sr
                    && vbd.vbd_type != VbdType::Cd
                    && sr.content_type != "iso"
                {
                    required_srs.insert(sr.reference.clone());
                }
                DiskSummary {
                    userdevice: vbd.userdevice.clone(),
                    vbd_type: vbd.vbd_type.clone(),
                    vdi_uuid: vdi.map(|v| v.uuid.clone()).unwrap_or_default(),
                    vdi_name: vdi.map(|v| v.name_label.clone()).unwrap_or_default(),
                    virtual_size: vdi.map_or(0, |v| v.virtual_size),
                    sr_uuid: sr.map(|s| s.uuid.clone()).unwrap_or_default(),
                    sr_name: sr.map(|s| s.name_label.clone()).unwrap_or_default(),
                }
            })
            .collect();
        disks.sort_by(|a, b| by_device_number(&a.userdevice, &b.userdevice));
        let mut vm_vifs: Vec<VifSummary> = vm
            .vifs
            .iter()
            .filter_map(|r| vif_by_ref.get(r))
            .map(|vif| {
                let network = network_by_ref.get(&vif.network);
                if network.is_some() {
                    used_networks.insert(vif.network.clone());
                }
                VifSummary {
                    device: vif.device.clone(),
                    mac: vif.mac.clone(),
                    network_uuid: network.map(|n| n.uuid.clone()).unwrap_or_default(),
                    network_name: network.map(|n| n.name_label.clone()).unwrap_or_default(),
                    network_bridge: network.map(|n| n.bridge.clone()).unwrap_or_default(),
                }
            })
            .collect();
        vm_vifs.sort_by(|a, b| by_device_number(&a.device, &b.device));
        vm_uuid_by_ref.insert(vm.reference.clone(), vm.uuid.clone());
        vms.push(VmSummary {
            vapp: app_by_ref.get(&vm.appliance).map(|a| a.uuid.clone()),
            uuid: vm.uuid,
            name_label: vm.name_label,
            power_state: vm.power_state,
            version: vm.version,
            order: vm.order,
            start_delay: vm.start_delay,
            shutdown_delay: vm.shutdown_delay,
            memory_static_max: vm.memory_static_max,
            vcpus_max: vm.vcpus_max,
            ha_restart_priority: vm.ha_restart_priority,
            disks,
            vifs: vm_vifs,
            snapshots: vm.snapshots.len(),
            tags: vm.tags,
        });
    }
    vms.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    let mut vapps: Vec<VappSummary> = apps
        .iter()
        .map(|a| VappSummary {
            uuid: a.uuid.clone(),
            name_label: a.name_label.clone(),
            vms: a
                .vms
                .iter()
                .filter_map(|r| vm_uuid_by_ref.get(r).cloned())
                .collect(),
        })
        .collect();
    vapps.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    let mut srs: Vec<SrSummary> = srs
        .iter()
        .map(|s| SrSummary {
            uuid: s.uuid.clone(),
            name_label: s.name_label.clone(),
            sr_type: s.sr_type.clone(),
            content_type: s.content_type.clone(),
            shared: s.shared,
            required: required_srs.contains(&s.reference),
        })
        .collect();
    srs.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    let mut networks: Vec<NetworkSummary> = used_networks
        .iter()
        .filter_map(|r| network_by_ref.get(r))
        .map(|n| NetworkSummary {
            uuid: n.uuid.clone(),
            name_label: n.name_label.clone(),
            bridge: n.bridge.clone(),
            mtu: n.mtu,
        })
        .collect();
    networks.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    InspectReport {
        source,
        pool,
        generation,
        schema_version,
        vms,
        vapps,
        srs,
        networks,
        other_vm_rows,
        diagnostics,
    }
}
