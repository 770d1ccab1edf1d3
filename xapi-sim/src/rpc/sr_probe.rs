//! `SR.probe(host, device_config, type, sm_config)` on the recovery site: the SM driver of
//! `type` on `host` looks behind the device config, as xapi forwards the probe to that host.
//!
//! - `host` must be a host of the pool (`HANDLE_INVALID`) that is live (`HOST_OFFLINE`);
//! - `type` must be an installed SM driver (`SR_UNKNOWN_DRIVER [type]`), and the driver checks
//!   the device config as xapi-project/sm does: NFS needs `server`
//!   (`SR_BACKEND_FAILURE_102`) and `serverpath` (`SR_BACKEND_FAILURE_101`); LVM over iSCSI
//!   given a `target` without `targetIQN` answers `SR_BACKEND_FAILURE_96` with the IQNs the
//!   target offers (as `<iscsi-target-iqns>` XML);
//! - the answer is the `<SRlist>` of the storage mirrors behind the device config whose SR is of
//!   that type (with `sm_config = {metadata: true}`, only those holding a metadata VDI).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::dr_storage::{Mirror, mirrors_for};
use crate::api_error::{failure, sr_backend_failure_code};
use crate::pool::Pool;

/// Answer `SR.probe` on `host` with `config`, for SM `sr_type`.
pub(crate) fn probe(
    pool: &Pool,
    host: &str,
    config: &BTreeMap<String, String>,
    sr_type: &str,
    metadata_only: bool,
) -> Result<String, Failure> {
    {
        let db = pool.db();
        db.object("host", host)?;
        let metrics = db.str_field("host", host, "metrics").unwrap_or_default();
        if matches!(
            db.field("host_metrics", &metrics, "live"),
            Ok(Value::Bool(false))
        ) {
            return Err(failure(ErrorCode::HostOffline, [host]));
        }
        if crate::model::sm::has_feature(&db, sr_type, "SR_PROBE").is_none() {
            return Err(failure(ErrorCode::SrUnknownDriver, [sr_type]));
        }
    }
    check_device_config(pool, config, sr_type)?;
    let mut out = String::from("<?xml version=\"1.0\" ?><SRlist>");
    for mirror in mirrors_for(pool, config) {
        if let Some(entry) = listed(&mirror, sr_type, metadata_only) {
            out.push_str(&entry);
        }
    }
    out.push_str("</SRlist>");
    Ok(out)
}

/// The device-config checks of the SM driver of `sr_type`.
fn check_device_config(
    pool: &Pool,
    config: &BTreeMap<String, String>,
    sr_type: &str,
) -> Result<(), Failure> {
    let backend = |number, message: &str, detail: String| {
        failure(
            sr_backend_failure_code(number),
            [String::new(), message.to_owned(), detail],
        )
    };
    match sr_type {
        "nfs" if !config.contains_key("server") => Err(backend(
            102,
            "The request is missing the server parameter",
            String::new(),
        )),
        "nfs" if !config.contains_key("serverpath") => Err(backend(
            101,
            "The request is missing the serverpath parameter",
            String::new(),
        )),
        "lvmoiscsi" if config.contains_key("target") && !config.contains_key("targetIQN") => {
            let target = &config["target"];
            let mut iqns = String::from("<?xml version=\"1.0\" ?>\n<iscsi-target-iqns>\n");
            let mut seen = Vec::new();
            for mirror in pool.mirrors() {
                let (Some(at), Some(iqn)) = (
                    mirror.device_config.get("target"),
                    mirror.device_config.get("targetIQN"),
                ) else {
                    continue;
                };
                if at == target && !seen.contains(iqn) {
                    let _ = write!(
                        iqns,
                        "\t<TGT>\n\t\t<Index>\n\t\t\t{}\n\t\t</Index>\n\t\t<IPAddress>\n\t\t\t{at}\n\t\t</IPAddress>\n\t\t<TargetIQN>\n\t\t\t{iqn}\n\t\t</TargetIQN>\n\t</TGT>\n",
                        seen.len()
                    );
                    seen.push(iqn.clone());
                }
            }
            iqns.push_str("</iscsi-target-iqns>\n");
            if seen.is_empty() {
                // nothing answers at that address: nothing to list
                return Ok(());
            }
            Err(backend(
                96,
                "The request is missing or has an incorrect target IQN parameter",
                iqns,
            ))
        }
        _ => Ok(()),
    }
}

/// The `<SR>` entry of a mirror, when its SR is of `sr_type` (and holds a metadata VDI, with
/// `metadata_only`).
fn listed(mirror: &Mirror, sr_type: &str, metadata_only: bool) -> Option<String> {
    let db = mirror.source.db();
    let sr = db.by_uuid("SR", &mirror.sr_uuid).ok()?;
    if db.str_field("SR", &sr, "type").ok()? != sr_type {
        return None;
    }
    let has_metadata = db
        .refs_field("SR", &sr, "VDIs")
        .unwrap_or_default()
        .iter()
        .any(|vdi| {
            db.str_field("VDI", vdi, "type")
                .is_ok_and(|t| t == "metadata")
        });
    if metadata_only && !has_metadata {
        return None;
    }
    let name = db.str_field("SR", &sr, "name_label").unwrap_or_default();
    let description = db
        .str_field("SR", &sr, "name_description")
        .unwrap_or_default();
    Some(format!(
        "<SR><UUID>{}</UUID><name_label>{}</name_label><name_description>{}</name_description></SR>",
        mirror.sr_uuid,
        xml_escape(&name),
        xml_escape(&description)
    ))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SRs (UUID, name, description) an `<SRlist>` names.
pub(crate) fn listed_srs(listing: &str) -> Vec<(String, String, String)> {
    let field = |entry: &str, tag: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        entry
            .split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(value, _)| {
                value
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            })
            .unwrap_or_default()
    };
    listing
        .split("<SR>")
        .skip(1)
        .map(|entry| {
            (
                field(entry, "UUID"),
                field(entry, "name_label"),
                field(entry, "name_description"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sr_list_reads_back_with_its_escapes_undone() {
        let listing = format!(
            "<?xml version=\"1.0\" ?><SRlist><SR><UUID>u-1</UUID><name_label>{}</name_label>\
             <name_description></name_description></SR><SR><UUID>u-2</UUID>\
             <name_label>b</name_label><name_description>d</name_description></SR></SRlist>",
            xml_escape("a <&> b")
        );
        assert_eq!(
            listed_srs(&listing),
            [
                ("u-1".to_owned(), "a <&> b".to_owned(), String::new()),
                ("u-2".to_owned(), "b".to_owned(), "d".to_owned()),
            ]
        );
        assert!(listed_srs("<SRlist></SRlist>").is_empty());
    }
}
