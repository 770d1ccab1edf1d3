//! Scenarios: the pools a simulator starts with.
//!
//! - `empty`: one pool, one host, local storage and a network, no VMs.
//! - `demo`: a primary pool (2 hosts, 21 VMs of which several have more than one disk, 3 vApps
//!   with `order` and `start_delay`, three shared SRs and an ISO library, two templates) and a DR
//!   pool (one host) on its own port.
//!   Every VM is a clone of one of the two templates (`Debian 12 template`,
//!   `Windows Server 2022 template`, named in `other_config:base_template_name`): its system disk
//!   holds the template's image (`TEMPLATE_IMAGE_BYTES`, shared chunk for chunk with every
//!   other clone) followed by a MiB of its own, its data disks a MiB of their own, so that a
//!   backup of the pool deduplicates as a real one does. Four VMs are the cases a backup must
//!   handle: `netboot-appliance` has no disk (it boots from the network), `build-agent-2` has a
//!   CD drive with an ISO of the library inserted, `build-agent-1` is suspended (its suspend
//!   image on `Shared NFS`), and `jump-host` boots UEFI with a vTPM and its EFI variables in
//!   `VM.NVRAM`.
//!   The shared SRs are `Shared NFS` (`nfs`) and two LVM over iSCSI SRs (`lvmoiscsi`, whose SM
//!   driver has the `SR_METADATA` feature that DR metadata replication needs):
//!   `Replicated iSCSI (DR)` (the vApps' disks) and `Replicated iSCSI (DR 2)`
//!   ([`DEMO_REPLICATED_SRS`]), each mirrored to the DR pool behind one iSCSI target
//!   ([`DEMO_MIRROR_DEVICE_CONFIG`]) with a mirror of its own. No SR has database replication
//!   enabled at start: a client enables it with `SR.enable_database_replication` (on NFS it
//!   fails with `SR_OPERATION_NOT_SUPPORTED`, as in xapi).
//! - `large:N`: one pool with N VMs, for benchmarks (its hosts have memory for all of them).
//!
//! Every pool has the `SM` records of the drivers its hosts have installed (`ext`, `lvm`,
//! `nfs`, `lvmoiscsi`, `lvmohba`, `iso`), with their `features`; xapi's six roles and the
//! subject of the read-only user (`rpc::rbac`); `restrict_dr = "false"` in
//! `pool.restrictions` and every host's `license_params`; and for every host a `host_metrics`
//! row with 64 GiB of `memory_total`, its `memory_free` less what the running VMs take.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use xapi_core::wire::{Failure, Value};

use crate::api_error::internal;
use crate::error::Error;
use crate::model::defaults::NULL_REF;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::vm::new_mac;
use crate::storage::Storage;

/// Which pools a simulator starts with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scenario {
    /// One pool with one host and no VMs.
    #[default]
    Empty,
    /// A primary pool and a DR pool, each on its own port.
    Demo,
    /// One pool with this many VMs.
    Large(usize),
}

impl FromStr for Scenario {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "empty" => Ok(Self::Empty),
            "demo" => Ok(Self::Demo),
            _ => text
                .strip_prefix("large:")
                .and_then(|n| n.parse().ok())
                .map(Self::Large)
                .ok_or_else(|| Error::Scenario(text.to_owned())),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty"),
            Self::Demo => f.write_str("demo"),
            Self::Large(n) => write!(f, "large:{n}"),
        }
    }
}

impl Scenario {
    /// The names of the pools of this scenario, each served on its own port.
    pub fn pool_names(&self) -> &'static [&'static str] {
        match self {
            Self::Demo => &["primary", "dr"],
            Self::Empty | Self::Large(_) => &["sim"],
        }
    }
}

/// The device config that reaches the demo's storage mirrors from the DR pool (`SR.probe`,
/// `DR_task.create`, `PBD.create` with type `lvmoiscsi`): the iSCSI target behind which both
/// replicated SRs of the primary are mirrored.
pub const DEMO_MIRROR_DEVICE_CONFIG: &[(&str, &str)] = &[
    ("target", "192.0.2.20"),
    ("targetIQN", "iqn.2026-11.org.xapi-sim:dr-mirror"),
];

/// Make the primary's two replicated SRs reachable from the DR pool as storage mirrors: two LUNs
/// behind one iSCSI target, both reached with [`DEMO_MIRROR_DEVICE_CONFIG`], each with a mirror
/// of its own (one can be broken while the other replicates).
pub(crate) fn connect_mirror(primary: &std::sync::Arc<Pool>, dr: &Pool) {
    for name in [REPLICATED_SR, SECOND_REPLICATED_SR] {
        let sr_uuid = {
            let db = primary.db();
            db.find("SR", "name_label", &s(name))
                .ok()
                .and_then(|srs| srs.into_iter().next())
                .and_then(|sr| db.str_field("SR", &sr, "uuid").ok())
        };
        if let Some(sr_uuid) = sr_uuid {
            dr.add_mirror(crate::rpc::dr_storage::Mirror {
                source: std::sync::Arc::clone(primary),
                sr_uuid,
                device_config: DEMO_MIRROR_DEVICE_CONFIG
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                state: crate::mirror::MirrorState::new(),
            });
        }
    }
}

/// Name of the demo's LVM over iSCSI SR that the DR pool sees as a storage mirror (the one the
/// vApps' disks are on).
const REPLICATED_SR: &str = "Replicated iSCSI (DR)";

/// Name of the demo's second LVM over iSCSI SR, also mirrored: a second copy of the replicated
/// metadata.
const SECOND_REPLICATED_SR: &str = "Replicated iSCSI (DR 2)";

/// The names of the demo primary's two mirrored LVM over iSCSI SRs, to which it can replicate
/// its database (`SR.enable_database_replication`) and whose mirrors
/// [`crate::SimHandle::set_sr_mirror_mode`] switches one at a time.
pub const DEMO_REPLICATED_SRS: [&str; 2] = [REPLICATED_SR, SECOND_REPLICATED_SR];

/// Fill `pool` with the objects and disks of the pool `pool_name` of `scenario`.
pub(crate) fn build(pool: &Pool, scenario: &Scenario, pool_name: &str) -> Result<(), Failure> {
    let mut db = pool.db();
    let mut b = Builder {
        db: &mut db,
        storage: &pool.storage,
        // large pools are for benchmarks of the API: their disks stay empty, so they start fast
        fill_disks: !matches!(scenario, Scenario::Large(_)),
        images: BTreeMap::new(),
    };
    match (scenario, pool_name) {
        (Scenario::Demo, "primary") => b.demo_primary(),
        (Scenario::Demo, _) => b.single_host_pool("dr").map(|_| ()),
        (Scenario::Large(n), _) => b.large(pool_name, *n),
        (Scenario::Empty, _) => b.single_host_pool(pool_name).map(|_| ()),
    }?;
    crate::rpc::host_memory::refresh(&mut db);
    crate::rpc::rbac::register_roles(&mut db)?;
    crate::model::sm::register_drivers(&mut db)
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn map(pairs: &[(&str, &str)]) -> Value {
    Value::Struct(pairs.iter().map(|(k, v)| ((*k).to_owned(), s(v))).collect())
}

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

/// The memory of every simulated host.
const HOST_MEMORY: i64 = 64 * GIB;

/// The licence restriction key of disaster recovery (`pool.restrictions`,
/// `host.license_params`).
pub(crate) const RESTRICT_DR: &str = "restrict_dr";

/// The objects of a freshly built pool that VMs hang off.
struct Site {
    hosts: Vec<String>,
    network: String,
    local_srs: Vec<String>,
}

/// The bytes of a template's system disk image that every clone of it shares (two 1 MiB chunks
/// of the XVA chunk grid).
pub(crate) const TEMPLATE_IMAGE_BYTES: usize = 2 << 20;

/// The templates of the demo pool: name and whether it boots UEFI.
const TEMPLATES: [(&str, bool); 2] = [
    ("Debian 12 template", false),
    ("Windows Server 2022 template", true),
];

/// The Debian template, of which most demo VMs are clones.
const DEBIAN: &str = TEMPLATES[0].0;

/// The Windows template.
const WINDOWS: &str = TEMPLATES[1].0;

/// A standalone demo VM: name, template, disk sizes in MiB, SR, host it runs on.
type Standalone<'a> = (&'a str, &'a str, &'a [i64], &'a str, Option<&'a str>);

/// The shape of one VM to build.
struct VmSpec<'a> {
    name: &'a str,
    /// The template it is a clone of (its system disk starts with the template's image).
    template: &'a str,
    disks_mib: &'a [i64],
    sr: &'a str,
    running_on: Option<&'a str>,
    appliance: Option<&'a str>,
    order: i64,
    start_delay: i64,
}

struct Builder<'a> {
    db: &'a mut Db,
    storage: &'a Storage,
    /// Give disks recognisable content (else they are all holes).
    fill_disks: bool,
    /// The system disk images of the templates, made once.
    images: BTreeMap<String, Vec<u8>>,
}

impl Builder<'_> {
    fn make(&mut self, class: &str, pairs: Vec<(&str, Value)>) -> Result<String, Failure> {
        let fields: BTreeMap<String, Value> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.db.create(class, fields)
    }

    /// A pool with `hosts` hosts, a management network and a local SR per host.
    fn site(&mut self, pool_name: &str, hosts: usize) -> Result<Site, Failure> {
        let network = self.make(
            "network",
            vec![
                ("name_label", s("Pool-wide network associated with eth0")),
                ("bridge", s("xenbr0")),
                ("purpose", Value::Array(vec![s("insecure_nbd")])),
                ("MTU", Value::Int(1500)),
            ],
        )?;
        let mut host_refs = Vec::new();
        let mut local_srs = Vec::new();
        for i in 1..=hosts {
            let name = format!("{pool_name}-host-{i}");
            let metrics = self.make(
                "host_metrics",
                vec![
                    ("memory_total", Value::Int(HOST_MEMORY)),
                    ("memory_free", Value::Int(HOST_MEMORY)),
                    ("live", Value::Bool(true)),
                ],
            )?;
            let host = self.make(
                "host",
                vec![
                    ("metrics", s(&metrics)),
                    ("license_params", map(&[(RESTRICT_DR, "false")])),
                    ("name_label", s(&name)),
                    ("hostname", s(&name)),
                    // members answer on their own loopback address (see `server::member`)
                    ("address", s(&format!("127.0.0.{i}"))),
                    ("enabled", Value::Bool(true)),
                    ("API_version_major", Value::Int(2)),
                    ("API_version_minor", Value::Int(21)),
                    ("API_version_vendor", s("XenSource")),
                    (
                        "software_version",
                        map(&[
                            ("product_brand", "XCP-ng"),
                            ("product_version", "8.3.0"),
                            ("xapi", "25.6"),
                        ]),
                    ),
                    ("memory_overhead", Value::Int(GIB / 8)),
                ],
            )?;
            let sr = self.make(
                "SR",
                vec![
                    ("name_label", s(&format!("Local storage on {name}"))),
                    ("type", s("ext")),
                    ("content_type", s("user")),
                    ("shared", Value::Bool(false)),
                    ("physical_size", Value::Int(500 * GIB)),
                ],
            )?;
            self.make(
                "PBD",
                vec![
                    ("host", s(&host)),
                    ("SR", s(&sr)),
                    ("device_config", map(&[("device", "/dev/sda3")])),
                    ("currently_attached", Value::Bool(true)),
                ],
            )?;
            host_refs.push(host);
            local_srs.push(sr);
        }
        let master = host_refs
            .first()
            .cloned()
            .unwrap_or_else(|| NULL_REF.to_owned());
        self.make(
            "pool",
            vec![
                ("name_label", s(pool_name)),
                ("master", s(&master)),
                ("restrictions", map(&[(RESTRICT_DR, "false")])),
                (
                    "default_SR",
                    s(local_srs.first().map_or(NULL_REF, String::as_str)),
                ),
            ],
        )?;
        Ok(Site {
            hosts: host_refs,
            network,
            local_srs,
        })
    }

    fn single_host_pool(&mut self, pool_name: &str) -> Result<Site, Failure> {
        self.site(pool_name, 1)
    }

    /// A shared SR attached to every host, with PBDs whose device config suits its type (an
    /// NFS export, or an iSCSI target and LUN whose IQN ends with `lun`).
    fn shared_sr(
        &mut self,
        site: &Site,
        name: &str,
        sr_type: &str,
        lun: &str,
    ) -> Result<String, Failure> {
        let device_config = if sr_type == "nfs" {
            map(&[("server", "192.0.2.10"), ("serverpath", "/export/xapi-sim")])
        } else {
            map(&[
                ("target", "192.0.2.11"),
                ("targetIQN", &format!("iqn.2026-11.org.xapi-sim:{lun}")),
                ("SCSIid", &format!("36001405xapisim{lun}")),
            ])
        };
        let sr = self.make(
            "SR",
            vec![
                ("name_label", s(name)),
                ("type", s(sr_type)),
                ("content_type", s("")),
                ("shared", Value::Bool(true)),
                ("physical_size", Value::Int(2048 * GIB)),
            ],
        )?;
        for host in &site.hosts {
            self.make(
                "PBD",
                vec![
                    ("host", s(host)),
                    ("SR", s(&sr)),
                    ("device_config", device_config.clone()),
                    ("currently_attached", Value::Bool(true)),
                ],
            )?;
        }
        Ok(sr)
    }

    fn vm(&mut self, site: &Site, spec: &VmSpec<'_>) -> Result<String, Failure> {
        let running = spec.running_on.is_some();
        let metrics = self.make(
            "VM_metrics",
            vec![
                (
                    "memory_actual",
                    Value::Int(if running { 2 * GIB } else { 0 }),
                ),
                ("VCPUs_number", Value::Int(2)),
            ],
        )?;
        let vm = self.make(
            "VM",
            vec![
                ("name_label", s(spec.name)),
                ("name_description", s("built by xapi-sim")),
                ("power_state", s(if running { "Running" } else { "Halted" })),
                ("resident_on", s(spec.running_on.unwrap_or(NULL_REF))),
                ("domid", Value::Int(-1)),
                ("memory_static_max", Value::Int(2 * GIB)),
                ("memory_dynamic_max", Value::Int(2 * GIB)),
                ("memory_dynamic_min", Value::Int(GIB)),
                ("memory_static_min", Value::Int(GIB / 2)),
                ("VCPUs_max", Value::Int(2)),
                ("VCPUs_at_startup", Value::Int(2)),
                ("user_version", Value::Int(1)),
                ("HVM_boot_policy", s("BIOS order")),
                ("HVM_boot_params", map(&[("order", "cd")])),
                ("domain_type", s("hvm")),
                ("metrics", s(&metrics)),
                ("appliance", s(spec.appliance.unwrap_or(NULL_REF))),
                ("order", Value::Int(spec.order)),
                ("start_delay", Value::Int(spec.start_delay)),
                (
                    "other_config",
                    map(&[("base_template_name", spec.template)]),
                ),
            ],
        )?;
        for (i, size) in spec.disks_mib.iter().enumerate() {
            let vdi = self.make(
                "VDI",
                vec![
                    ("name_label", s(&format!("{} disk {i}", spec.name))),
                    ("SR", s(spec.sr)),
                    ("virtual_size", Value::Int(size * MIB)),
                    ("type", s("user")),
                    ("managed", Value::Bool(true)),
                ],
            )?;
            let uuid = self.db.str_field("VDI", &vdi, "uuid")?;
            self.db.set_field("VDI", &vdi, "location", s(&uuid))?;
            let size = (size * MIB) as u64;
            let made = if !self.fill_disks {
                self.storage.create(&uuid, size)
            } else if i == 0 {
                let image = self
                    .images
                    .entry(spec.template.to_owned())
                    .or_insert_with(|| {
                        pseudo_random(spec.template.as_bytes(), TEMPLATE_IMAGE_BYTES)
                    });
                fill_clone(self.storage, &uuid, size, image)
            } else {
                fill_disk(self.storage, &uuid, size)
            };
            made.map_err(|e| internal(format!("disk image of {uuid}: {e}")))?;
            self.make(
                "VBD",
                vec![
                    ("VM", s(&vm)),
                    ("VDI", s(&vdi)),
                    ("userdevice", s(&i.to_string())),
                    (
                        "device",
                        s(&format!("xvd{}", char::from(b'a' + (i % 26) as u8))),
                    ),
                    ("bootable", Value::Bool(i == 0)),
                    ("mode", s("RW")),
                    ("type", s("Disk")),
                    ("currently_attached", Value::Bool(running)),
                ],
            )?;
        }
        let mac = new_mac(self.db);
        self.make(
            "VIF",
            vec![
                ("VM", s(&vm)),
                ("network", s(&site.network)),
                ("device", s("0")),
                ("MAC", s(&mac)),
                ("MTU", Value::Int(1500)),
                ("currently_attached", Value::Bool(running)),
            ],
        )?;
        if running {
            let domid = self.db.table("VM")?.objects.len() as i64;
            self.db.set_field("VM", &vm, "domid", Value::Int(domid))?;
        }
        Ok(vm)
    }

    fn appliance(&mut self, name: &str) -> Result<String, Failure> {
        self.make(
            "VM_appliance",
            vec![
                ("name_label", s(name)),
                ("name_description", s("demo vApp")),
            ],
        )
    }

    fn demo_primary(&mut self) -> Result<(), Failure> {
        let site = self.site("primary", 2)?;
        let nfs = self.shared_sr(&site, "Shared NFS", "nfs", "nfs")?;
        let replicated = self.shared_sr(&site, REPLICATED_SR, "lvmoiscsi", "dr")?;
        self.shared_sr(&site, SECOND_REPLICATED_SR, "lvmoiscsi", "dr2")?;
        let iso = self.iso_library(&site)?;
        let web = self.appliance("web-shop")?;
        let erp = self.appliance("erp")?;
        let monitoring = self.appliance("monitoring")?;
        let (h1, h2) = (site.hosts[0].clone(), site.hosts[1].clone());
        let local = site.local_srs[0].clone();
        let specs: Vec<VmSpec<'_>> = vec![
            VmSpec {
                name: "web-db",
                template: DEBIAN,
                disks_mib: &[20, 100],
                sr: &replicated,
                running_on: Some(&h1),
                appliance: Some(&web),
                order: 0,
                start_delay: 30,
            },
            VmSpec {
                name: "web-app-1",
                template: DEBIAN,
                disks_mib: &[20],
                sr: &replicated,
                running_on: Some(&h1),
                appliance: Some(&web),
                order: 1,
                start_delay: 10,
            },
            VmSpec {
                name: "web-app-2",
                template: DEBIAN,
                disks_mib: &[20],
                sr: &replicated,
                running_on: Some(&h2),
                appliance: Some(&web),
                order: 1,
                start_delay: 5,
            },
            VmSpec {
                name: "web-frontend",
                template: DEBIAN,
                disks_mib: &[10],
                sr: &replicated,
                running_on: Some(&h2),
                appliance: Some(&web),
                order: 2,
                start_delay: 0,
            },
            VmSpec {
                name: "erp-db",
                template: WINDOWS,
                disks_mib: &[40, 200, 50],
                sr: &replicated,
                running_on: Some(&h1),
                appliance: Some(&erp),
                order: 0,
                start_delay: 60,
            },
            VmSpec {
                name: "erp-app",
                template: WINDOWS,
                disks_mib: &[40],
                sr: &replicated,
                running_on: Some(&h2),
                appliance: Some(&erp),
                order: 1,
                start_delay: 0,
            },
            VmSpec {
                name: "erp-reports",
                template: WINDOWS,
                disks_mib: &[40, 20],
                sr: &replicated,
                running_on: None,
                appliance: Some(&erp),
                order: 2,
                start_delay: 0,
            },
            VmSpec {
                name: "monitor-collector",
                template: DEBIAN,
                disks_mib: &[16],
                sr: &nfs,
                running_on: Some(&h1),
                appliance: Some(&monitoring),
                order: 0,
                start_delay: 15,
            },
            VmSpec {
                name: "monitor-dashboard",
                template: DEBIAN,
                disks_mib: &[16],
                sr: &nfs,
                running_on: Some(&h2),
                appliance: Some(&monitoring),
                order: 1,
                start_delay: 0,
            },
        ];
        for spec in &specs {
            self.vm(&site, spec)?;
        }
        let standalone: [Standalone<'_>; 12] = [
            ("mail", DEBIAN, &[20, 80], &replicated, Some(&h1)),
            ("dns-1", DEBIAN, &[8], &replicated, Some(&h1)),
            ("dns-2", DEBIAN, &[8], &nfs, Some(&h2)),
            ("fileserver", DEBIAN, &[20, 500], &nfs, Some(&h2)),
            ("build-agent-1", DEBIAN, &[50], &nfs, Some(&h1)),
            ("build-agent-2", DEBIAN, &[50], &nfs, None),
            ("jump-host", WINDOWS, &[10], &local, Some(&h1)),
            ("backup-proxy", DEBIAN, &[20], &nfs, None),
            ("legacy-crm", DEBIAN, &[30, 30], &replicated, None),
            ("test-vm", DEBIAN, &[10], &local, None),
            ("ldap", DEBIAN, &[10], &replicated, Some(&h2)),
            ("netboot-appliance", DEBIAN, &[], &nfs, None),
        ];
        let mut made = BTreeMap::new();
        for (name, template, disks, sr, host) in standalone {
            let vm = self.vm(
                &site,
                &VmSpec {
                    name,
                    template,
                    disks_mib: disks,
                    sr,
                    running_on: host,
                    appliance: None,
                    order: 0,
                    start_delay: 0,
                },
            )?;
            made.insert(name, vm);
        }
        self.special_vms(&made, &nfs, &iso)?;
        for (name, uefi) in TEMPLATES {
            let template = self.vm(
                &site,
                &VmSpec {
                    name,
                    template: name,
                    disks_mib: &[10],
                    sr: &nfs,
                    running_on: None,
                    appliance: None,
                    order: 0,
                    start_delay: 0,
                },
            )?;
            self.db
                .set_field("VM", &template, "is_a_template", Value::Bool(true))?;
            if uefi {
                self.uefi(&template)?;
            }
        }
        Ok(())
    }

    /// The demo's ISO library: an NFS ISO SR on every host with one installer image.
    fn iso_library(&mut self, site: &Site) -> Result<String, Failure> {
        let sr = self.make(
            "SR",
            vec![
                ("name_label", s("ISO library")),
                ("type", s("iso")),
                ("content_type", s("iso")),
                ("shared", Value::Bool(true)),
                ("physical_size", Value::Int(100 * GIB)),
            ],
        )?;
        for host in &site.hosts {
            self.make(
                "PBD",
                vec![
                    ("host", s(host)),
                    ("SR", s(&sr)),
                    (
                        "device_config",
                        map(&[("location", "192.0.2.10:/export/iso")]),
                    ),
                    ("currently_attached", Value::Bool(true)),
                ],
            )?;
        }
        let name = "debian-12.8.0-amd64-netinst.iso";
        let vdi = self.make(
            "VDI",
            vec![
                ("name_label", s(name)),
                ("SR", s(&sr)),
                ("virtual_size", Value::Int(632 * MIB)),
                ("type", s("user")),
                ("read_only", Value::Bool(true)),
                ("sharable", Value::Bool(true)),
                ("managed", Value::Bool(true)),
                ("location", s(name)),
            ],
        )?;
        let uuid = self.db.str_field("VDI", &vdi, "uuid")?;
        self.storage
            .create(&uuid, (632 * MIB) as u64)
            .map_err(|e| internal(format!("image of {name}: {e}")))?;
        Ok(vdi)
    }

    /// Make the demo's special VMs what their names promise (see the module documentation):
    /// `build-agent-1` suspended, `build-agent-2` with the ISO in a CD drive, `jump-host` UEFI
    /// with a vTPM and NVRAM, `netboot-appliance` booting from the network.
    fn special_vms(
        &mut self,
        vms: &BTreeMap<&str, String>,
        nfs: &str,
        iso: &str,
    ) -> Result<(), Failure> {
        let named = |name: &str| {
            vms.get(name)
                .cloned()
                .ok_or_else(|| internal(format!("demo VM {name} missing")))
        };
        self.suspend(&named("build-agent-1")?, nfs)?;
        self.insert_cd(&named("build-agent-2")?, iso)?;
        let jump_host = named("jump-host")?;
        self.uefi(&jump_host)?;
        let uuid = self.db.str_field("VM", &jump_host, "uuid")?;
        let tpm = pseudo_random(format!("vtpm {uuid}").as_bytes(), 4096);
        crate::rpc::vtpm::create(self.db, &jump_host, &base64_text(&tpm), false)?;
        let netboot = named("netboot-appliance")?;
        self.db
            .set_field("VM", &netboot, "HVM_boot_params", map(&[("order", "n")]))
    }

    /// Boot `vm` with UEFI and secure boot, with EFI variables in `NVRAM` as varstored keeps
    /// them (base64 under `EFI-variables`).
    fn uefi(&mut self, vm: &str) -> Result<(), Failure> {
        let uuid = self.db.str_field("VM", vm, "uuid")?;
        let variables = base64_text(&pseudo_random(format!("nvram {uuid}").as_bytes(), 8192));
        self.db.set_field(
            "VM",
            vm,
            "HVM_boot_params",
            map(&[("order", "dc"), ("firmware", "uefi")]),
        )?;
        self.db.set_field(
            "VM",
            vm,
            "platform",
            map(&[
                ("secureboot", "true"),
                ("viridian", "true"),
                ("device_id", "0002"),
            ]),
        )?;
        self.db
            .set_field("VM", vm, "NVRAM", map(&[("EFI-variables", &variables)]))
    }

    /// Suspend `vm`: its memory image in a suspend VDI on `sr`, off its host, devices unplugged.
    fn suspend(&mut self, vm: &str, sr: &str) -> Result<(), Failure> {
        let name = self.db.str_field("VM", vm, "name_label")?;
        let memory = self.db.int_field("VM", vm, "memory_static_max")?;
        let size = memory + 4 * MIB;
        let vdi = self.make(
            "VDI",
            vec![
                ("name_label", s(&format!("Suspend image of {name}"))),
                ("SR", s(sr)),
                ("virtual_size", Value::Int(size)),
                ("type", s("suspend")),
                ("managed", Value::Bool(true)),
            ],
        )?;
        let uuid = self.db.str_field("VDI", &vdi, "uuid")?;
        self.db.set_field("VDI", &vdi, "location", s(&uuid))?;
        fill_disk(self.storage, &uuid, size as u64)
            .map_err(|e| internal(format!("suspend image of {name}: {e}")))?;
        for (field, value) in [
            ("power_state", s("Suspended")),
            ("resident_on", s(NULL_REF)),
            ("domid", Value::Int(-1)),
            ("suspend_VDI", s(&vdi)),
        ] {
            self.db.set_field("VM", vm, field, value)?;
        }
        let metrics = self.db.str_field("VM", vm, "metrics")?;
        self.db
            .set_field("VM_metrics", &metrics, "memory_actual", Value::Int(0))?;
        for (devices, class) in [("VBDs", "VBD"), ("VIFs", "VIF")] {
            for device in self.db.refs_field("VM", vm, devices)? {
                self.db
                    .set_field(class, &device, "currently_attached", Value::Bool(false))?;
            }
        }
        Ok(())
    }

    /// Give `vm` a CD drive (`xvdd`) with `iso` inserted.
    fn insert_cd(&mut self, vm: &str, iso: &str) -> Result<(), Failure> {
        self.make(
            "VBD",
            vec![
                ("VM", s(vm)),
                ("VDI", s(iso)),
                ("userdevice", s("3")),
                ("device", s("xvdd")),
                ("bootable", Value::Bool(false)),
                ("mode", s("RO")),
                ("type", s("CD")),
                ("empty", Value::Bool(false)),
                ("currently_attached", Value::Bool(false)),
            ],
        )?;
        Ok(())
    }

    fn large(&mut self, pool_name: &str, count: usize) -> Result<(), Failure> {
        let site = self.site(pool_name, 2)?;
        let sr = self.shared_sr(&site, "Shared NFS", "nfs", "nfs")?;
        for i in 0..count {
            let name = format!("vm-{i:05}");
            let host = if i % 2 == 0 {
                &site.hosts[0]
            } else {
                &site.hosts[1]
            };
            let running_on = (i % 3 != 0).then_some(host.as_str());
            self.vm(
                &site,
                &VmSpec {
                    name: &name,
                    template: DEBIAN,
                    disks_mib: &[10],
                    sr: &sr,
                    running_on,
                    appliance: None,
                    order: 0,
                    start_delay: 0,
                },
            )?;
        }
        // hosts big enough for every VM of the pool, whatever N
        let memory = HOST_MEMORY.saturating_add((count as i64).saturating_mul(2 * GIB));
        for host in &site.hosts {
            let metrics = self.db.str_field("host", host, "metrics")?;
            self.db
                .set_field("host_metrics", &metrics, "memory_total", Value::Int(memory))?;
        }
        Ok(())
    }
}

/// `len` pseudo-random bytes determined by `seed` (xorshift64* seeded by the seed's SHA-256):
/// incompressible, like the encrypted or compressed blocks of a real disk, and cheap to make.
pub(crate) fn pseudo_random(seed: &[u8], len: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(seed);
    let mut state = digest
        .iter()
        .take(8)
        .fold(0_u64, |acc, b| (acc << 8) | u64::from(*b))
        | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Standard base64 of `bytes`.
fn base64_text(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Create a disk image with recognisable content: a pseudo-random first MiB (seeded by the
/// UUID, so each disk differs) and a marker block in the middle; the rest stays a hole.
pub(crate) fn fill_disk(storage: &Storage, uuid: &str, size: u64) -> std::io::Result<()> {
    storage.create(uuid, size)?;
    let head_len = size.min(1 << 20) as usize;
    storage.write_at(uuid, 0, &pseudo_random(uuid.as_bytes(), head_len))?;
    write_marker(storage, uuid, size)
}

/// Create the system disk of a clone: the template's `image`, then a MiB of the clone's own
/// (seeded by the UUID) and a marker block in the middle; the rest stays a hole.
fn fill_clone(storage: &Storage, uuid: &str, size: u64, image: &[u8]) -> std::io::Result<()> {
    storage.create(uuid, size)?;
    let shared = image.len().min(size as usize);
    storage.write_at(uuid, 0, &image[..shared])?;
    let own = (size as usize - shared).min(1 << 20);
    storage.write_at(uuid, shared as u64, &pseudo_random(uuid.as_bytes(), own))?;
    write_marker(storage, uuid, size)
}

/// Write a marker naming the disk at the 64 KiB boundary nearest below its middle, when that is
/// past the first MiB.
fn write_marker(storage: &Storage, uuid: &str, size: u64) -> std::io::Result<()> {
    let middle = (size / 2) & !0xffff;
    if middle >= 1 << 20 {
        let marker = format!("xapi-sim disk {uuid} middle block");
        storage.write_at(uuid, middle, marker.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_parse() {
        assert_eq!("empty".parse::<Scenario>().unwrap(), Scenario::Empty);
        assert_eq!("demo".parse::<Scenario>().unwrap(), Scenario::Demo);
        assert_eq!(
            "large:250".parse::<Scenario>().unwrap(),
            Scenario::Large(250)
        );
        assert!("large:".parse::<Scenario>().is_err());
        assert!("huge".parse::<Scenario>().is_err());
        assert_eq!(Scenario::Large(3).to_string(), "large:3");
    }
}
