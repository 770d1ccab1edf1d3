//! The two kinds of storage XAPI replicates pool metadata to, and so the only ones a DR
//! probe or `DR_task` may name.

use std::fmt;
use std::str::FromStr;

use super::SourceError;

/// An SM type that can hold metadata VDIs (its driver has the `SR_METADATA` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DrStorageType {
    /// LVM over iSCSI: `lvmoiscsi`.
    #[serde(rename = "lvmoiscsi")]
    LvmOverIscsi,
    /// LVM over a host bus adapter (Fibre Channel, SAS): `lvmohba`.
    #[serde(rename = "lvmohba")]
    LvmOverHba,
}

impl DrStorageType {
    /// The SM type name xapi takes.
    pub fn as_str(self) -> &'static str {
        match self {
            DrStorageType::LvmOverIscsi => "lvmoiscsi",
            DrStorageType::LvmOverHba => "lvmohba",
        }
    }
}

impl FromStr for DrStorageType {
    type Err = SourceError;

    /// `lvmoiscsi` or `lvmohba`; any other type is [`SourceError::UnsupportedStorageType`].
    fn from_str(text: &str) -> Result<Self, SourceError> {
        match text {
            "lvmoiscsi" => Ok(DrStorageType::LvmOverIscsi),
            "lvmohba" => Ok(DrStorageType::LvmOverHba),
            other => Err(SourceError::UnsupportedStorageType {
                sr_type: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for DrStorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lvm_over_iscsi_and_hba_are_dr_storage() {
        for name in ["lvmoiscsi", "lvmohba"] {
            assert_eq!(name.parse::<DrStorageType>().unwrap().as_str(), name);
        }
        for name in ["nfs", "lvm", "ext", "iso", "LVMoISCSI", ""] {
            let err = name.parse::<DrStorageType>().unwrap_err();
            assert!(
                matches!(&err, SourceError::UnsupportedStorageType { sr_type } if sr_type == name),
                "{err}"
            );
        }
    }
}
