//! Generators of realistic pool databases for tests, benches and the simulator (feature
//! `testing`). Output is deterministic for a given seed.

use super::database::{Database, Manifest};
use super::load::KNOWN_TABLES;
use super::sexpr::write_map;

/// The shape of a generated pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    /// Number of real VMs.
    pub vms: usize,
    /// Number of hosts.
    pub hosts: usize,
    /// Number of shared SRs (each host also gets a local SR).
    pub shared_srs: usize,
    /// One vApp per this many VMs (0: no vApps).
    pub vms_per_vapp: usize,
    /// One snapshot (VM row and disk snapshots) for every this many VMs (0: none).
    pub vms_per_snapshot: usize,
    /// Seed of the UUIDs and references.
    pub seed: u64,
}

impl PoolShape {
    /// A pool of `vms` VMs with proportionate hosts, SRs and vApps.
    pub fn with_vms(vms: usize) -> PoolShape {
        PoolShape {
            vms,
            hosts: (vms / 40).clamp(1, 64),
            shared_srs: (vms / 200).clamp(1, 32),
            vms_per_vapp: 8,
            vms_per_snapshot: 2,
            seed: 0x5eed,
        }
    }
}

struct Ids {
    state: u64,
}

impl Ids {
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn reference(&mut self) -> String {
        format!("OpaqueRef:{}", self.uuid())
    }
}

/// Builds a database shaped like a real pool's: every datamodel table present, one-to-many sets
/// consistent, VM rows with the ~80 columns of a real dump, names with spaces, `%` and quotes.
pub fn generate_pool(shape: PoolShape) -> Database {
    let mut ids = Ids { state: shape.seed };
    let generation = 1_000_000 + shape.vms as i64 * 20;
    let mut db = Database::new(Manifest {
        generation,
        ..Manifest::default()
    });
    for table in KNOWN_TABLES {
        db.table_mut(table);
    }
    let mut gen_counter = 100i64;
    let mut tick = || {
        gen_counter += 3;
        gen_counter
    };

    let hosts: Vec<String> = (0..shape.hosts).map(|_| ids.reference()).collect();
    let pool_ref = ids.reference();
    let mut networks = Vec::new();
    for i in 0..3 {
        let r = ids.reference();
        let uuid = ids.uuid();
        let name = format!("Network {i}");
        let bridge = format!("xenbr{i}");
        let t = tick();
        db.insert_row(
            "network",
            &r,
            t,
            t,
            [
                ("_ref", r.as_str()),
                ("uuid", uuid.as_str()),
                ("name__label", name.as_str()),
                ("name__description", ""),
                ("bridge", bridge.as_str()),
                ("MTU", "1500"),
                ("other_config", "(('automatic' 'true'))"),
                ("VIFs", "()"),
                ("PIFs", "()"),
            ],
        );
        networks.push(r);
    }
    let mut srs = Vec::new();
    let mut pbd_rows = Vec::new();
    for i in 0..shape.shared_srs + shape.hosts {
        let shared = i < shape.shared_srs;
        let r = ids.reference();
        let uuid = ids.uuid();
        let name = if shared {
            format!("iSCSI LUN {i} (50% \"gold\")")
        } else {
            format!("Local storage on host {}", i - shape.shared_srs)
        };
        let t = tick();
        db.insert_row(
            "SR",
            &r,
            t,
            t,
            [
                ("_ref", r.as_str()),
                ("uuid", uuid.as_str()),
                ("name__label", name.as_str()),
                (
                    "name__description",
                    if shared { "replicated to site B" } else { "" },
                ),
                ("type", if shared { "lvmoiscsi" } else { "ext" }),
                ("content_type", "user"),
                ("shared", if shared { "true" } else { "false" }),
                ("physical_size", "4398046511104"),
                ("physical_utilisation", "1099511627776"),
                ("virtual_allocation", "2199023255552"),
                ("sm_config", "(('allocation' 'thick') ('use_vhd' 'true'))"),
                ("other_config", "()"),
                ("introduced_by", "OpaqueRef:NULL"),
                ("VDIs", "()"),
                ("PBDs", "()"),
                ("tags", "()"),
            ],
        );
        let attached: Vec<&String> = if shared {
            hosts.iter().collect()
        } else {
            vec![&hosts[i - shape.shared_srs]]
        };
        for host in attached {
            pbd_rows.push((
                ids.reference(),
                ids.uuid(),
                host.clone(),
                r.clone(),
                shared,
                i,
            ));
        }
        srs.push((r, shared));
    }
    for (r, uuid, host, sr, shared, i) in &pbd_rows {
        let config = if *shared {
            write_map(&[
                ("target", "10.0.0.5"),
                ("targetIQN", "iqn.2026-11.com.example:storage"),
                ("SCSIid", &format!("36001405{i:024x}")),
            ])
        } else {
            write_map(&[("device", "/dev/sda3")])
        };
        let t = tick();
        db.insert_row(
            "PBD",
            r,
            t,
            t,
            [
                ("_ref", r.as_str()),
                ("uuid", uuid.as_str()),
                ("host", host.as_str()),
                ("SR", sr.as_str()),
                ("device_config", config.as_str()),
                ("currently_attached", "true"),
                ("other_config", "()"),
            ],
        );
    }
    for (i, r) in hosts.iter().enumerate() {
        let uuid = ids.uuid();
        let name = format!("host-{i:02}");
        let address = format!("10.0.1.{}", i + 10);
        let t = tick();
        db.insert_row(
            "host",
            r,
            t,
            t,
            [
                ("_ref", r.as_str()),
                ("uuid", uuid.as_str()),
                ("name__label", name.as_str()),
                ("name__description", "Default install"),
                ("hostname", name.as_str()),
                ("address", address.as_str()),
                ("enabled", "true"),
                ("memory__overhead", "0"),
                (
                    "software_version",
                    "(('product_version' '8.4.0') ('xapi' '25.6'))",
                ),
                (
                    "other_config",
                    "(('iscsi_iqn' 'iqn.2026-11.com.example:host'))",
                ),
                ("PBDs", "()"),
                ("resident_VMs", "()"),
                ("PIFs", "()"),
            ],
        );
    }
    let pool_uuid = ids.uuid();
    let shared_sr = srs
        .iter()
        .find(|(_, s)| *s)
        .map_or("OpaqueRef:NULL", |(r, _)| r.as_str())
        .to_owned();
    db.insert_row(
        "pool",
        &pool_ref,
        1,
        generation,
        [
            ("_ref", pool_ref.as_str()),
            ("uuid", pool_uuid.as_str()),
            ("name__label", "Site A production"),
            ("name__description", ""),
            ("master", hosts[0].as_str()),
            ("default_SR", shared_sr.as_str()),
            ("ha_enabled", "false"),
            ("other_config", "(('memory-ratio-hvm' '0.25'))"),
            ("metadata_VDIs", "()"),
        ],
    );

    let mut apps = Vec::new();
    if shape.vms_per_vapp > 0 {
        for i in 0..shape.vms.div_ceil(shape.vms_per_vapp) {
            let r = ids.reference();
            let uuid = ids.uuid();
            let name = format!("App {i}: 'web' tier");
            let t = tick();
            db.insert_row(
                "VM_appliance",
                &r,
                t,
                t,
                [
                    ("_ref", r.as_str()),
                    ("uuid", uuid.as_str()),
                    ("name__label", name.as_str()),
                    ("name__description", "three tiers\nstarted in order"),
                    (
                        "allowed_operations",
                        "('start' 'clean_shutdown' 'hard_shutdown' 'shutdown')",
                    ),
                    ("current_operations", "()"),
                    ("VMs", "()"),
                ],
            );
            apps.push(r);
        }
    }

    for i in 0..shape.vms {
        let vm = ids.reference();
        let vm_uuid = ids.uuid();
        let host = &hosts[i % hosts.len()];
        let (sr, _) = &srs[i % shape.shared_srs.max(1)];
        let name = format!("vm-{i:05} web server");
        let running = i % 3 != 0;
        let appliance = if shape.vms_per_vapp > 0 && i % 2 == 0 {
            apps[(i / shape.vms_per_vapp).min(apps.len() - 1)].as_str()
        } else {
            "OpaqueRef:NULL"
        };
        let order = (i % 4).to_string();
        let delay = ((i % 3) * 10).to_string();
        let version = (i % 2).to_string();
        let ctime = tick();
        let mtime = tick();
        let other_config = write_map(&[
            ("base_template_name", "Debian Bookworm 12"),
            ("import_task", "OpaqueRef:NULL"),
            ("install-methods", "cdrom,nfs,http,ftp"),
            ("mac_seed", &ids.uuid()),
        ]);
        db.insert_row(
            "VM",
            &vm,
            ctime,
            mtime,
            [
                ("HVM__boot_params", "(('firmware' 'uefi') ('order' 'cdn'))"),
                ("HVM__boot_policy", ""),
                ("HVM__shadow_multiplier", "1."),
                ("NVRAM", "(('EFI-variables' 'dGVzdA=='))"),
                ("PCI_bus", ""),
                ("PV__args", ""),
                ("PV__bootloader", ""),
                ("PV__bootloader_args", ""),
                ("PV__kernel", ""),
                ("PV__legacy_args", ""),
                ("PV__ramdisk", ""),
                ("VBDs", "()"),
                ("VCPUs__at_startup", "2"),
                ("VCPUs__max", "2"),
                ("VCPUs__params", "()"),
                ("VGPUs", "()"),
                ("VIFs", "()"),
                ("VTPMs", "()"),
                ("VUSBs", "()"),
                ("_ref", vm.as_str()),
                ("actions__after_crash", "restart"),
                ("actions__after_reboot", "restart"),
                ("actions__after_shutdown", "destroy"),
                ("affinity", host.as_str()),
                ("allowed_operations", "('changing_dynamic_range' 'migrate_send' 'pool_migrate' 'clean_reboot' 'clean_shutdown' 'hard_reboot' 'hard_shutdown' 'pause' 'suspend' 'snapshot' 'checkpoint')"),
                ("appliance", appliance),
                ("attached_PCIs", "()"),
                ("bios_strings", "(('bios-vendor' 'Xen') ('system-manufacturer' 'Xen'))"),
                ("blobs", "()"),
                ("blocked_operations", "()"),
                ("children", "()"),
                ("consoles", "()"),
                ("crash_dumps", "()"),
                ("current_operations", "()"),
                ("domarch", ""),
                ("domid", if running { "12" } else { "-1" }),
                ("generation_id", ""),
                ("guest_metrics", "OpaqueRef:NULL"),
                ("ha_always_run", "false"),
                ("ha_restart_priority", if i % 5 == 0 { "restart" } else { "" }),
                ("hardware_platform_version", "0"),
                ("has_vendor_device", "false"),
                ("is_a_snapshot", "false"),
                ("is_a_template", "false"),
                ("is_control_domain", "false"),
                ("is_default_template", "false"),
                ("is_snapshot_from_vmpp", "false"),
                ("is_vmss_snapshot", "false"),
                ("last_boot_CPU_flags", "(('vendor' 'GenuineIntel') ('features' '1fcbfbff-f7fa3223-2d93fbff-00000023'))"),
                ("last_booted_record", ""),
                ("memory__dynamic_max", "4294967296"),
                ("memory__dynamic_min", "4294967296"),
                ("memory__overhead", "37748736"),
                ("memory__static_max", "4294967296"),
                ("memory__static_min", "1073741824"),
                ("memory__target", "4294967296"),
                ("metrics", "OpaqueRef:NULL"),
                ("name__description", "Front end; 100% \"critical\""),
                ("name__label", name.as_str()),
                ("order", order.as_str()),
                ("other_config", other_config.as_str()),
                ("parent", "OpaqueRef:NULL"),
                ("platform", "(('acpi' '1') ('apic' 'true') ('device_id' '0001') ('nx' 'true') ('pae' 'true') ('secureboot' 'false') ('timeoffset' '0') ('vga' 'std') ('videoram' '8') ('viridian' 'true'))"),
                ("power_state", if running { "Running" } else { "Halted" }),
                ("protection_policy", "OpaqueRef:NULL"),
                ("recommendations", "<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\"/></restrictions>"),
                ("reference_label", "debian-12"),
                ("requires_reboot", "false"),
                ("resident_on", if running { host.as_str() } else { "OpaqueRef:NULL" }),
                ("scheduled_to_be_resident_on", "OpaqueRef:NULL"),
                ("shutdown_delay", "0"),
                ("snapshot_info", "()"),
                ("snapshot_metadata", ""),
                ("snapshot_of", "OpaqueRef:NULL"),
                ("snapshot_schedule", "OpaqueRef:NULL"),
                ("snapshot_time", "19700101T00:00:00Z"),
                ("snapshots", "()"),
                ("start_delay", delay.as_str()),
                ("suspend_SR", "OpaqueRef:NULL"),
                ("suspend_VDI", "OpaqueRef:NULL"),
                ("tags", "('production' 'site A')"),
                ("transportable_snapshot_id", ""),
                ("user_version", "1"),
                ("uuid", vm_uuid.as_str()),
                ("version", version.as_str()),
                ("xenstore_data", "(('vm-data' '') ('vm-data/mmio-hole-size' '268435456'))"),
            ],
        );
        for disk in 0..2u8 {
            let vdi = ids.reference();
            let vdi_uuid = ids.uuid();
            let vbd = ids.reference();
            let vbd_uuid = ids.uuid();
            let vdi_name = format!("{name} disk {disk}");
            let size = ((u64::from(disk) + 1) * 21_474_836_480).to_string();
            let t = tick();
            db.insert_row(
                "VDI",
                &vdi,
                t,
                t,
                [
                    ("SR", sr.as_str()),
                    ("VBDs", "()"),
                    ("_ref", vdi.as_str()),
                    ("allow_caching", "false"),
                    (
                        "allowed_operations",
                        "('clone' 'snapshot' 'copy' 'resize' 'destroy')",
                    ),
                    ("cbt_enabled", "false"),
                    ("crash_dumps", "()"),
                    ("current_operations", "()"),
                    ("is_a_snapshot", "false"),
                    ("location", vdi_uuid.as_str()),
                    ("managed", "true"),
                    ("metadata_latest", "false"),
                    ("metadata_of_pool", "OpaqueRef:NULL"),
                    ("missing", "false"),
                    ("name__description", "Created by template provisioner"),
                    ("name__label", vdi_name.as_str()),
                    ("on_boot", "persist"),
                    (
                        "other_config",
                        "(('content_id' 'cd8e2b5e-2d7e-1c2c-bb5f-ef5d1a2b9d4e'))",
                    ),
                    ("parent", "OpaqueRef:NULL"),
                    ("physical_utilisation", size.as_str()),
                    ("read_only", "false"),
                    ("sharable", "false"),
                    (
                        "sm_config",
                        "(('vdi_type' 'vhd') ('host_OpaqueRef:x' 'RW'))",
                    ),
                    ("snapshot_of", "OpaqueRef:NULL"),
                    ("snapshot_time", "19700101T00:00:00Z"),
                    ("snapshots", "()"),
                    ("storage_lock", "false"),
                    ("tags", "()"),
                    ("type", "user"),
                    ("uuid", vdi_uuid.as_str()),
                    ("virtual_size", size.as_str()),
                    ("xenstore_data", "()"),
                ],
            );
            let userdevice = disk.to_string();
            let device = format!("xvd{}", char::from(b'a' + disk));
            let t = tick();
            db.insert_row(
                "VBD",
                &vbd,
                t,
                t,
                [
                    ("VDI", vdi.as_str()),
                    ("VM", vm.as_str()),
                    ("_ref", vbd.as_str()),
                    ("allowed_operations", "('attach' 'unpause' 'pause')"),
                    ("bootable", if disk == 0 { "true" } else { "false" }),
                    ("current_operations", "()"),
                    ("currently_attached", if running { "true" } else { "false" }),
                    ("device", device.as_str()),
                    ("empty", "false"),
                    ("metrics", "OpaqueRef:NULL"),
                    ("mode", "RW"),
                    ("other_config", "(('owner' ''))"),
                    ("qos_algorithm_params", "()"),
                    ("qos_algorithm_type", ""),
                    ("qos_supported_algorithms", "()"),
                    ("runtime_properties", "()"),
                    ("status_code", "0"),
                    ("status_detail", ""),
                    ("storage_lock", "false"),
                    ("type", "Disk"),
                    ("unpluggable", "false"),
                    ("userdevice", userdevice.as_str()),
                    ("uuid", vbd_uuid.as_str()),
                ],
            );
        }
        let metrics = ids.reference();
        let metrics_uuid = ids.uuid();
        let t = tick();
        db.insert_row(
            "VM_metrics",
            &metrics,
            t,
            t,
            [
                ("VCPUs__CPU", "()"),
                ("VCPUs__flags", "()"),
                ("VCPUs__number", "2"),
                ("VCPUs__params", "()"),
                ("VCPUs__utilisation", "((0 0.) (1 0.))"),
                ("_ref", metrics.as_str()),
                (
                    "current_domain_type",
                    if running { "hvm" } else { "unspecified" },
                ),
                ("hvm", "true"),
                ("install_time", "20250319T04:16:24Z"),
                ("last_updated", "19700101T00:00:00Z"),
                ("memory__actual", "4294967296"),
                ("nested_virt", "false"),
                ("nomigrate", "false"),
                ("other_config", "()"),
                ("start_time", "20261120T08:00:00Z"),
                ("state", "()"),
                ("uuid", metrics_uuid.as_str()),
            ],
        );
        let column = db.intern("metrics");
        if let Some(row) = db.row_mut("VM", &vm) {
            row.set(column, &metrics);
        }
        if shape.vms_per_snapshot > 0 && i % shape.vms_per_snapshot == 0 {
            let snapshot = ids.reference();
            let snapshot_uuid = ids.uuid();
            let snapshot_name = format!("{name} before upgrade");
            let original: Vec<(String, String)> = db
                .row("VM", &vm)
                .map(|r| {
                    r.columns()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let changed = |k: &str, v: &str| -> String {
                match k {
                    "_ref" => snapshot.clone(),
                    "uuid" => snapshot_uuid.clone(),
                    "name__label" => snapshot_name.clone(),
                    "is_a_snapshot" => "true".to_owned(),
                    "snapshot_of" => vm.clone(),
                    "snapshot_time" => "20261101T02:00:00Z".to_owned(),
                    "power_state" => "Halted".to_owned(),
                    "resident_on" | "appliance" | "metrics" => "OpaqueRef:NULL".to_owned(),
                    "domid" => "-1".to_owned(),
                    "allowed_operations" => {
                        "('clone' 'copy' 'destroy' 'export' 'revert')".to_owned()
                    }
                    _ => v.to_owned(),
                }
            };
            let columns: Vec<(String, String)> = original
                .iter()
                .map(|(k, v)| (k.clone(), changed(k, v)))
                .collect();
            let t = tick();
            db.insert_row(
                "VM",
                &snapshot,
                t,
                t,
                columns.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        let vif = ids.reference();
        let vif_uuid = ids.uuid();
        let mac = format!(
            "7a:{:02x}:{:02x}:{:02x}:00:01",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let t = tick();
        db.insert_row(
            "VIF",
            &vif,
            t,
            t,
            [
                ("MAC", mac.as_str()),
                ("MAC_autogenerated", "true"),
                ("MTU", "1500"),
                ("VM", vm.as_str()),
                ("_ref", vif.as_str()),
                ("allowed_operations", "('attach' 'unplug')"),
                ("current_operations", "()"),
                ("currently_attached", if running { "true" } else { "false" }),
                ("device", "0"),
                ("ipv4_addresses", "()"),
                ("locking_mode", "network_default"),
                ("network", networks[i % networks.len()].as_str()),
                ("other_config", "()"),
                ("qos_algorithm_params", "()"),
                ("qos_algorithm_type", ""),
                ("uuid", vif_uuid.as_str()),
            ],
        );
    }
    db.recompute_relations();
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::views::{VbdView, VmApplianceView, VmView};
    use crate::metadata::{db_xml_bytes, read_db_xml};

    #[test]
    fn thousand_vm_pool_round_trips_byte_for_byte() {
        let db = generate_pool(PoolShape::with_vms(1000));
        let xml = db_xml_bytes(&db);
        assert!(
            xml.len() > 4_000_000,
            "a realistic dump is several MB ({} bytes)",
            xml.len()
        );
        let back = read_db_xml(&xml[..]).unwrap();
        assert_eq!(back, db);
        assert_eq!(db_xml_bytes(&back), xml);
        assert_eq!(back.rows("VM").count(), 1500, "1,000 VMs and 500 snapshots");
        assert_eq!(back.rows("VBD").count(), 2000);
    }

    #[test]
    fn generated_relations_are_consistent() {
        let db = generate_pool(PoolShape::with_vms(50));
        let snapshots = db
            .view::<VmView>()
            .unwrap()
            .into_iter()
            .filter(|v| v.is_a_snapshot)
            .count();
        assert_eq!(snapshots, 25);
        let with_snapshot = db
            .view::<VmView>()
            .unwrap()
            .into_iter()
            .filter(|v| v.snapshots.len() == 1)
            .count();
        assert_eq!(
            with_snapshot, 25,
            "VM.snapshots is rebuilt from VM.snapshot_of"
        );
        let mut again = db.clone();
        again.recompute_relations();
        assert_eq!(
            again, db,
            "recomputing the relations of a generated pool changes nothing"
        );
        let vms = db.view::<VmView>().unwrap();
        let vbds = db.view::<VbdView>().unwrap();
        for vm in vms.iter().filter(|v| !v.is_a_snapshot) {
            assert_eq!(vm.vbds.len(), 2);
            assert!(vm.vbds.iter().all(|r| {
                vbds.iter()
                    .any(|b| &b.reference == r && b.vm == vm.reference)
            }));
        }
        let apps = db.view::<VmApplianceView>().unwrap();
        let members: usize = apps.iter().map(|a| a.vms.len()).sum();
        assert_eq!(
            members,
            vms.iter().filter(|v| !v.appliance.is_null()).count()
        );
    }
}
