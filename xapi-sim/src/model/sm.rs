//! The SM drivers every simulated host has installed, registered as `SM` records the way xapi
//! registers them at start-up (`Xapi_sm.create_from_query_result`): `features` maps each
//! capability the driver declares to its version (`VDI_RESET_ON_BOOT/2` gives 2, a bare name
//! 1) and `capabilities` lists the same names.
//!
//! The capability lists are those the drivers of xapi-project/sm declare. What the simulator
//! checks with them: `SR_METADATA` (database replication), which only LVM over iSCSI and LVM
//! over HBA (Fibre Channel) have.

use std::collections::BTreeMap;

use xapi_core::wire::{Failure, Value};

use super::store::Db;

/// One SM driver.
struct Driver {
    /// The SR type it serves (`SM.type`).
    sr_type: &'static str,
    name: &'static str,
    description: &'static str,
    vendor: &'static str,
    copyright: &'static str,
    /// Its program under `/opt/xensource/sm`.
    program: &'static str,
    /// The capabilities it declares, `NAME` or `NAME/VERSION`.
    capabilities: &'static [&'static str],
}

const CITRIX: &str = "Citrix Systems Inc";

/// The drivers, by SR type.
static DRIVERS: &[Driver] = &[
    Driver {
        sr_type: "ext",
        name: "Local EXT3 VHD",
        description: "SR plugin which represents disks as VHD files stored on a local EXT3 filesystem, created inside an LVM volume",
        vendor: CITRIX,
        copyright: "(C) 2008 Citrix Systems Inc",
        program: "EXTSR",
        capabilities: &[
            "SR_PROBE",
            "SR_UPDATE",
            "SR_SUPPORTS_LOCAL_CACHING",
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "VDI_UPDATE",
            "VDI_CLONE",
            "VDI_SNAPSHOT",
            "VDI_RESIZE",
            "VDI_MIRROR",
            "VDI_GENERATE_CONFIG",
            "VDI_RESET_ON_BOOT/2",
            "ATOMIC_PAUSE",
            "VDI_CONFIG_CBT",
            "VDI_ACTIVATE",
            "VDI_DEACTIVATE",
            "THIN_PROVISIONING",
            "VDI_READ_CACHING",
        ],
    },
    Driver {
        sr_type: "lvm",
        name: "Local VHD on LVM",
        description: "SR plugin which represents disks as VHD disks on Logical Volumes within a locally-attached Volume Group",
        vendor: "XenSource Inc",
        copyright: "(C) 2008 XenSource Inc",
        program: "LVMSR",
        capabilities: &[
            "SR_PROBE",
            "SR_UPDATE",
            "SR_TRIM",
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "VDI_MIRROR",
            "VDI_CLONE",
            "VDI_SNAPSHOT",
            "VDI_RESIZE",
            "ATOMIC_PAUSE",
            "VDI_RESET_ON_BOOT/2",
            "VDI_UPDATE",
            "VDI_CONFIG_CBT",
            "VDI_ACTIVATE",
            "VDI_DEACTIVATE",
        ],
    },
    Driver {
        sr_type: "lvmoiscsi",
        name: "LVHD over iSCSI",
        description: "SR plugin which represents disks as Logical Volumes within a Volume Group created on an iSCSI LUN",
        vendor: CITRIX,
        copyright: "(C) 2008 Citrix Systems Inc",
        program: "LVMoISCSISR",
        capabilities: &[
            "SR_PROBE",
            "SR_UPDATE",
            "SR_METADATA",
            "SR_TRIM",
            "SR_CACHING",
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "VDI_GENERATE_CONFIG",
            "VDI_CLONE",
            "VDI_SNAPSHOT",
            "VDI_RESIZE",
            "ATOMIC_PAUSE",
            "VDI_RESET_ON_BOOT/2",
            "VDI_UPDATE",
            "VDI_MIRROR",
            "VDI_CONFIG_CBT",
            "VDI_ACTIVATE",
            "VDI_DEACTIVATE",
        ],
    },
    Driver {
        sr_type: "lvmohba",
        name: "LVHD over FC",
        description: "SR plugin which represents disks as VHDs on Logical Volumes within a Volume Group created on an HBA LUN, e.g. hardware-based iSCSI or FC support",
        vendor: CITRIX,
        copyright: "(C) 2008 Citrix Systems Inc",
        program: "LVMoHBASR",
        capabilities: &[
            "SR_PROBE",
            "SR_UPDATE",
            "SR_METADATA",
            "SR_TRIM",
            "SR_CACHING",
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "VDI_GENERATE_CONFIG",
            "VDI_SNAPSHOT",
            "VDI_CLONE",
            "VDI_MIRROR",
            "VDI_RESIZE",
            "ATOMIC_PAUSE",
            "VDI_RESET_ON_BOOT/2",
            "VDI_UPDATE",
            "VDI_CONFIG_CBT",
            "VDI_ACTIVATE",
            "VDI_DEACTIVATE",
        ],
    },
    Driver {
        sr_type: "nfs",
        name: "NFS VHD",
        description: "SR plugin which stores disks as VHD files on a remote NFS filesystem",
        vendor: CITRIX,
        copyright: "(C) 2008 Citrix Systems Inc",
        program: "NFSSR",
        capabilities: &[
            "SR_PROBE",
            "SR_UPDATE",
            "SR_CACHING",
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "VDI_UPDATE",
            "VDI_CLONE",
            "VDI_SNAPSHOT",
            "VDI_RESIZE",
            "VDI_GENERATE_CONFIG",
            "VDI_MIRROR",
            "VDI_RESET_ON_BOOT/2",
            "ATOMIC_PAUSE",
            "VDI_CONFIG_CBT",
            "VDI_ACTIVATE",
            "VDI_DEACTIVATE",
            "THIN_PROVISIONING",
            "VDI_READ_CACHING",
        ],
    },
    Driver {
        sr_type: "iso",
        name: "ISO",
        description: "Handles CD images stored as files in iso format",
        vendor: CITRIX,
        copyright: "(C) 2008 Citrix Systems Inc",
        program: "ISOSR",
        capabilities: &[
            "VDI_CREATE",
            "VDI_DELETE",
            "VDI_ATTACH",
            "VDI_DETACH",
            "SR_SCAN",
            "SR_ATTACH",
            "SR_DETACH",
        ],
    },
];

/// A capability's name and version: `NAME/2` is version 2, a bare `NAME` version 1.
fn feature(capability: &str) -> (&str, i64) {
    match capability.split_once('/') {
        Some((name, version)) => (name, version.parse().unwrap_or(1)),
        None => (capability, 1),
    }
}

/// Create the `SM` record of every driver the database lacks, as xapi does at each start.
pub(crate) fn register_drivers(db: &mut Db) -> Result<(), Failure> {
    for driver in DRIVERS {
        if !db
            .find("SM", "type", &Value::String(driver.sr_type.to_owned()))?
            .is_empty()
        {
            continue;
        }
        let features: BTreeMap<String, Value> = driver
            .capabilities
            .iter()
            .map(|c| feature(c))
            .map(|(name, version)| (name.to_owned(), Value::Int(version)))
            .collect();
        let capabilities = driver
            .capabilities
            .iter()
            .map(|c| Value::String(feature(c).0.to_owned()))
            .collect();
        let text = |t: &str| Value::String(t.to_owned());
        db.create(
            "SM",
            BTreeMap::from([
                ("type".to_owned(), text(driver.sr_type)),
                ("name_label".to_owned(), text(driver.name)),
                ("name_description".to_owned(), text(driver.description)),
                ("vendor".to_owned(), text(driver.vendor)),
                ("copyright".to_owned(), text(driver.copyright)),
                ("version".to_owned(), text("1.0")),
                ("required_api_version".to_owned(), text("1.0")),
                ("capabilities".to_owned(), Value::Array(capabilities)),
                ("features".to_owned(), Value::Struct(features)),
                (
                    "driver_filename".to_owned(),
                    text(&format!("/opt/xensource/sm/{}", driver.program)),
                ),
            ]),
        )?;
    }
    Ok(())
}

/// Whether the SM driver of SR type `sr_type` declares `feature`; `None` when the database has
/// no SM record of that type.
pub(crate) fn has_feature(db: &Db, sr_type: &str, feature: &str) -> Option<bool> {
    let sm = db
        .find("SM", "type", &Value::String(sr_type.to_owned()))
        .ok()?
        .into_iter()
        .next()?;
    match db.field("SM", &sm, "features") {
        Ok(Value::Struct(features)) => Some(features.contains_key(feature)),
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_after_a_slash() {
        assert_eq!(feature("VDI_RESET_ON_BOOT/2"), ("VDI_RESET_ON_BOOT", 2));
        assert_eq!(feature("SR_METADATA"), ("SR_METADATA", 1));
    }

    #[test]
    fn only_lvm_over_iscsi_and_hba_have_sr_metadata() {
        let with: Vec<&str> = DRIVERS
            .iter()
            .filter(|d| d.capabilities.contains(&"SR_METADATA"))
            .map(|d| d.sr_type)
            .collect();
        assert_eq!(with, ["lvmoiscsi", "lvmohba"]);
    }
}
