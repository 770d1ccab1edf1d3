//! The one-to-many relations of the datamodel that the store keeps in step.
//!
//! xapi keeps a set field on the "one" side (`VM.VBDs`) in step with the reference field on the
//! "many" side (`VBD.VM`); the JSON datamodel does not record these pairs, so they are listed
//! here for the classes the simulator models.

/// A reference field on the many side and the set field on the one side that mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relation {
    /// Class holding the reference (`VBD`).
    pub(crate) many_class: &'static str,
    /// The reference field (`VM`).
    pub(crate) many_field: &'static str,
    /// Class holding the set (`VM`).
    pub(crate) one_class: &'static str,
    /// The set field (`VBDs`).
    pub(crate) one_field: &'static str,
}

const fn rel(
    many_class: &'static str,
    many_field: &'static str,
    one_class: &'static str,
    one_field: &'static str,
) -> Relation {
    Relation {
        many_class,
        many_field,
        one_class,
        one_field,
    }
}

/// Every relation the store maintains.
pub(crate) static RELATIONS: &[Relation] = &[
    rel("VBD", "VM", "VM", "VBDs"),
    rel("VBD", "VDI", "VDI", "VBDs"),
    rel("VIF", "VM", "VM", "VIFs"),
    rel("VIF", "network", "network", "VIFs"),
    rel("VDI", "SR", "SR", "VDIs"),
    rel("VDI", "snapshot_of", "VDI", "snapshots"),
    rel("PBD", "SR", "SR", "PBDs"),
    rel("PBD", "host", "host", "PBDs"),
    rel("PIF", "host", "host", "PIFs"),
    rel("PIF", "network", "network", "PIFs"),
    rel("VM", "resident_on", "host", "resident_VMs"),
    rel("VM", "appliance", "VM_appliance", "VMs"),
    rel("VM", "snapshot_of", "VM", "snapshots"),
    rel("VM", "parent", "VM", "children"),
    rel("task", "subtask_of", "task", "subtasks"),
    rel("SR", "introduced_by", "DR_task", "introduced_SRs"),
    rel("VDI", "metadata_of_pool", "pool", "metadata_VDIs"),
    rel("VTPM", "VM", "VM", "VTPMs"),
];
