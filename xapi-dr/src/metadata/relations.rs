//! One-to-many relations: the `Set(Ref _)` fields xapi recomputes from the "many" side on
//! every load (`Database.reindex`), so their written value is never authoritative.

use super::database::Database;
use super::sexpr::write_set;

/// One relation: `(many_table.many_field)` points at a row of `one_table`, whose
/// `one_field` set lists every such row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    /// Table of the "many" side (e.g. `VBD`).
    pub many_table: &'static str,
    /// Its reference column (e.g. `VM`).
    pub many_field: &'static str,
    /// Table of the "one" side (e.g. `VM`).
    pub one_table: &'static str,
    /// Its set column (e.g. `VBDs`).
    pub one_field: &'static str,
}

const fn rel(many: (&'static str, &'static str), one: (&'static str, &'static str)) -> Relation {
    Relation {
        many_table: many.0,
        many_field: many.1,
        one_table: one.0,
        one_field: one.1,
    }
}

/// The one-to-many relations of the datamodel that `xapi-dr` recomputes. Each pair was checked
/// against the machine-readable datamodel (a `T ref` field on one side, a `U ref set` on the
/// other). Upstream's `all_relations` also lists a few pairs this table leaves out (they matter
/// to no DR decision); those sets keep their stored value.
pub const RELATIONS: &[Relation] = &[
    rel(("VBD", "VM"), ("VM", "VBDs")),
    rel(("VIF", "VM"), ("VM", "VIFs")),
    rel(("VM", "resident_on"), ("host", "resident_VMs")),
    rel(("VM", "snapshot_of"), ("VM", "snapshots")),
    rel(("VM", "parent"), ("VM", "children")),
    rel(("VM", "appliance"), ("VM_appliance", "VMs")),
    rel(("VM", "protection_policy"), ("VMPP", "VMs")),
    rel(("VM", "snapshot_schedule"), ("VMSS", "VMs")),
    rel(("VDI", "SR"), ("SR", "VDIs")),
    rel(("VBD", "VDI"), ("VDI", "VBDs")),
    rel(("VDI", "snapshot_of"), ("VDI", "snapshots")),
    rel(("VDI", "metadata_of_pool"), ("pool", "metadata_VDIs")),
    rel(("PBD", "SR"), ("SR", "PBDs")),
    rel(("PBD", "host"), ("host", "PBDs")),
    rel(("PIF", "host"), ("host", "PIFs")),
    rel(("PIF", "network"), ("network", "PIFs")),
    rel(("VIF", "network"), ("network", "VIFs")),
    rel(("host_cpu", "host"), ("host", "host_CPUs")),
    rel(("host_crashdump", "host"), ("host", "crashdumps")),
    rel(("host_patch", "host"), ("host", "patches")),
    rel(("crashdump", "VM"), ("VM", "crash_dumps")),
    rel(("crashdump", "VDI"), ("VDI", "crash_dumps")),
    rel(("console", "VM"), ("VM", "consoles")),
    rel(("SR", "introduced_by"), ("DR_task", "introduced_SRs")),
    rel(("VTPM", "VM"), ("VM", "VTPMs")),
    rel(("VGPU", "VM"), ("VM", "VGPUs")),
    rel(("VGPU", "GPU_group"), ("GPU_group", "VGPUs")),
    rel(("VGPU", "type"), ("VGPU_type", "VGPUs")),
    rel(("VGPU", "resident_on"), ("PGPU", "resident_VGPUs")),
    rel(("PGPU", "GPU_group"), ("GPU_group", "PGPUs")),
    rel(("PGPU", "host"), ("host", "PGPUs")),
    rel(("PCI", "host"), ("host", "PCIs")),
    rel(("VUSB", "VM"), ("VM", "VUSBs")),
    rel(("VUSB", "USB_group"), ("USB_group", "VUSBs")),
    rel(("PUSB", "host"), ("host", "PUSBs")),
    rel(("PUSB", "USB_group"), ("USB_group", "PUSBs")),
    rel(("Bond", "master"), ("PIF", "bond_master_of")),
    rel(("PIF", "bond_slave_of"), ("Bond", "slaves")),
    rel(("VLAN", "tagged_PIF"), ("PIF", "VLAN_slave_of")),
    rel(
        ("tunnel", "transport_PIF"),
        ("PIF", "tunnel_transport_PIF_of"),
    ),
    rel(("tunnel", "access_PIF"), ("PIF", "tunnel_access_PIF_of")),
    rel(
        ("network_sriov", "physical_PIF"),
        ("PIF", "sriov_physical_PIF_of"),
    ),
    rel(
        ("network_sriov", "logical_PIF"),
        ("PIF", "sriov_logical_PIF_of"),
    ),
    rel(("Cluster_host", "cluster"), ("Cluster", "cluster_hosts")),
    rel(("PVS_proxy", "site"), ("PVS_site", "proxies")),
    rel(("PVS_server", "site"), ("PVS_site", "servers")),
    rel(("PVS_cache_storage", "site"), ("PVS_site", "cache_storage")),
    rel(("Driver_variant", "driver"), ("Host_driver", "variants")),
];

impl Database {
    /// Recomputes every one-to-many set of [`RELATIONS`] from the "many" side, as xapi does when
    /// it loads a database: each set lists, in byte order, the references of the rows pointing at
    /// its row; dangling and null references are ignored. Rows of the "one" side get the column
    /// even if the dump lacked it.
    pub fn recompute_relations(&mut self) {
        for relation in RELATIONS {
            let Some(one_rows) = self.table(relation.one_table) else {
                continue;
            };
            let mut members: std::collections::BTreeMap<String, Vec<String>> =
                one_rows.keys().map(|r| (r.clone(), Vec::new())).collect();
            for (reference, row) in self.rows(relation.many_table) {
                if let Some(target) = row.get(relation.many_field)
                    && let Some(list) = members.get_mut(target)
                {
                    list.push(reference.to_owned());
                }
            }
            let column = self.intern(relation.one_field);
            let table = self.table_mut(relation.one_table);
            for (reference, mut list) in members {
                list.sort_unstable();
                if let Some(row) = table.get_mut(&reference) {
                    row.set(column.clone(), &write_set(&list));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_vbds_are_rebuilt_from_vbd_vm() {
        let mut db = Database::default();
        db.insert_row(
            "VM",
            "OpaqueRef:vm",
            1,
            1,
            [("VBDs", "('OpaqueRef:stale')")],
        );
        db.insert_row("VM", "OpaqueRef:other", 1, 1, []);
        db.insert_row("VBD", "OpaqueRef:b2", 1, 1, [("VM", "OpaqueRef:vm")]);
        db.insert_row("VBD", "OpaqueRef:b1", 1, 1, [("VM", "OpaqueRef:vm")]);
        db.insert_row("VBD", "OpaqueRef:b3", 1, 1, [("VM", "OpaqueRef:NULL")]);
        db.recompute_relations();
        assert_eq!(
            db.row("VM", "OpaqueRef:vm").unwrap().get("VBDs"),
            Some("('OpaqueRef:b1' 'OpaqueRef:b2')")
        );
        assert_eq!(
            db.row("VM", "OpaqueRef:other").unwrap().get("VBDs"),
            Some("()")
        );
    }

    #[test]
    fn relation_columns_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for r in RELATIONS {
            assert!(
                seen.insert((r.one_table, r.one_field)),
                "{r:?} listed twice"
            );
        }
    }
}
