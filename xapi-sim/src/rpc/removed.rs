//! The messages the datamodel marks removed: xapi still dispatches them, checks their
//! parameter count and the session, then answers `MESSAGE_REMOVED []` (gen_server.ml).
//!
//! The generated meta table leaves removed messages out, so they are listed here from the
//! datamodel (`lifecycle.state = Removed_s`); a test checks the list against `datamodel.json`
//! when that file is at hand.

/// `(class, message, parameters after the session)`; every removed message takes a session
/// and has no defaulted parameter.
static REMOVED: &[(&str, &str, usize)] = &[
    ("pool", "enable_ssl_legacy", 1),
    ("VM", "set_protection_policy", 2),
    ("VM", "snapshot_with_quiesce", 2),
    ("VM", "get_is_snapshot_from_vmpp", 1),
    ("VM_metrics", "get_VCPUs_utilisation", 1),
    ("VM_guest_metrics", "get_disks", 1),
    ("VM_guest_metrics", "get_memory", 1),
    ("VMPP", "get_all_records", 0),
    ("VMPP", "get_all", 0),
    ("VMPP", "set_archive_last_run_time", 2),
    ("VMPP", "set_backup_last_run_time", 2),
    ("VMPP", "remove_from_alarm_config", 2),
    ("VMPP", "remove_from_archive_schedule", 2),
    ("VMPP", "remove_from_archive_target_config", 2),
    ("VMPP", "remove_from_backup_schedule", 2),
    ("VMPP", "add_to_alarm_config", 3),
    ("VMPP", "add_to_archive_schedule", 3),
    ("VMPP", "add_to_archive_target_config", 3),
    ("VMPP", "add_to_backup_schedule", 3),
    ("VMPP", "set_alarm_config", 2),
    ("VMPP", "set_is_alarm_enabled", 2),
    ("VMPP", "set_archive_target_config", 2),
    ("VMPP", "set_archive_target_type", 2),
    ("VMPP", "set_archive_schedule", 2),
    ("VMPP", "set_archive_frequency", 2),
    ("VMPP", "set_backup_schedule", 2),
    ("VMPP", "set_backup_frequency", 2),
    ("VMPP", "set_backup_retention_value", 2),
    ("VMPP", "get_alerts", 2),
    ("VMPP", "archive_now", 1),
    ("VMPP", "protect_now", 1),
    ("VMPP", "set_backup_type", 2),
    ("VMPP", "set_is_policy_enabled", 2),
    ("VMPP", "set_name_description", 2),
    ("VMPP", "set_name_label", 2),
    ("VMPP", "get_recent_alerts", 1),
    ("VMPP", "get_alarm_config", 1),
    ("VMPP", "get_is_alarm_enabled", 1),
    ("VMPP", "get_VMs", 1),
    ("VMPP", "get_archive_last_run_time", 1),
    ("VMPP", "get_is_archive_running", 1),
    ("VMPP", "get_archive_schedule", 1),
    ("VMPP", "get_archive_frequency", 1),
    ("VMPP", "get_archive_target_config", 1),
    ("VMPP", "get_archive_target_type", 1),
    ("VMPP", "get_backup_last_run_time", 1),
    ("VMPP", "get_is_backup_running", 1),
    ("VMPP", "get_backup_schedule", 1),
    ("VMPP", "get_backup_frequency", 1),
    ("VMPP", "get_backup_retention_value", 1),
    ("VMPP", "get_backup_type", 1),
    ("VMPP", "get_is_policy_enabled", 1),
    ("VMPP", "get_name_description", 1),
    ("VMPP", "get_name_label", 1),
    ("VMPP", "get_uuid", 1),
    ("VMPP", "get_by_name_label", 1),
    ("VMPP", "destroy", 1),
    ("VMPP", "create", 1),
    ("VMPP", "get_by_uuid", 1),
    ("VMPP", "get_record", 1),
    ("host", "apply_recommended_guidances", 1),
    ("host", "reset_cpu_features", 1),
    ("host", "set_cpu_features", 2),
    ("host", "license_apply", 2),
    ("host_metrics", "get_memory_free", 1),
    ("VIF", "get_metrics", 1),
    ("VIF_metrics", "get_all_records", 0),
    ("VIF_metrics", "get_all", 0),
    ("VIF_metrics", "get_io_write_kbs", 1),
    ("VIF_metrics", "get_io_read_kbs", 1),
    ("VIF_metrics", "get_by_uuid", 1),
    ("VIF_metrics", "get_record", 1),
    ("PIF_metrics", "get_io_write_kbs", 1),
    ("PIF_metrics", "get_io_read_kbs", 1),
    ("VBD", "get_metrics", 1),
    ("VBD_metrics", "get_all_records", 0),
    ("VBD_metrics", "get_all", 0),
    ("VBD_metrics", "remove_from_other_config", 2),
    ("VBD_metrics", "add_to_other_config", 3),
    ("VBD_metrics", "set_other_config", 2),
    ("VBD_metrics", "get_other_config", 1),
    ("VBD_metrics", "get_last_updated", 1),
    ("VBD_metrics", "get_io_write_kbs", 1),
    ("VBD_metrics", "get_io_read_kbs", 1),
    ("VBD_metrics", "get_by_uuid", 1),
    ("VBD_metrics", "get_record", 1),
    ("Repository", "get_up_to_date", 1),
];

/// The number of parameters after the session of `class.message` when the datamodel marks it
/// removed; `None` for a live or unknown message. The class is compared as xapi's wire names
/// are, case-sensitively.
pub(crate) fn removed_message(class: &str, message: &str) -> Option<usize> {
    REMOVED
        .iter()
        .find(|(c, m, _)| *c == class && *m == message)
        .map(|(_, _, count)| *count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_with_quiesce_is_removed_and_snapshot_is_not() {
        assert_eq!(removed_message("VM", "snapshot_with_quiesce"), Some(2));
        assert_eq!(removed_message("VM", "snapshot"), None);
        // removed, then published again
        assert_eq!(removed_message("VDI", "resize_online"), None);
    }

    #[test]
    fn no_removed_message_is_in_the_live_meta_table() {
        for (class, message, _) in REMOVED {
            let meta = xapi_core::api::meta::class(class).expect("a datamodel class");
            assert!(meta.message(message).is_none(), "{class}.{message}");
        }
    }

    /// The list above equals the datamodel's removed messages, when `datamodel.json` is at
    /// hand (`XAPI_DATAMODEL_DIR`, else `../shared/xapi` from the workspace, as codegen finds
    /// it).
    #[test]
    fn the_list_matches_the_datamodel() {
        let dir = std::env::var_os("XAPI_DATAMODEL_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/xapi"),
            std::path::PathBuf::from,
        );
        let Ok(text) = std::fs::read_to_string(dir.join("datamodel.json")) else {
            eprintln!("datamodel.json not found in {}: skipped", dir.display());
            return;
        };
        let classes: Vec<serde_json::Value> =
            serde_json::from_str(&text).expect("datamodel.json parses");
        let mut expected = Vec::new();
        for class in &classes {
            let class_name = class["name"].as_str().expect("a class name");
            for message in class["messages"].as_array().expect("messages") {
                if message["lifecycle"]["state"] == "Removed_s" {
                    let params = message["params"].as_array().expect("params");
                    expected.push((
                        class_name.to_owned(),
                        message["name"].as_str().expect("a name").to_owned(),
                        params.len() - 1,
                    ));
                }
            }
        }
        let listed: Vec<_> = REMOVED
            .iter()
            .map(|(c, m, n)| ((*c).to_owned(), (*m).to_owned(), *n))
            .collect();
        assert_eq!(listed, expected);
    }
}
