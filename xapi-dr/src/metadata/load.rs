//! Loading a database from any metadata source, as xapi's `VDI.open_database` would: detect
//! the format, replay the redo log, rebuild the one-to-many sets, and collect diagnostics.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use super::database::Database;
use super::db_xml::read_db_xml;
use super::diagnostic::Diagnostic;
use super::redo_log::{MAGIC, Validity, read_redo_log};
use crate::Error;

/// Every table of the current datamodel (xapi 5.909); others are reported as unknown.
pub const KNOWN_TABLES: &[&str] = &[
    "session",
    "auth",
    "subject",
    "role",
    "task",
    "event",
    "pool",
    "pool_patch",
    "pool_update",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "VMPP",
    "VMSS",
    "VM_appliance",
    "DR_task",
    "host",
    "host_crashdump",
    "host_patch",
    "host_metrics",
    "host_cpu",
    "network",
    "VIF",
    "VIF_metrics",
    "PIF",
    "PIF_metrics",
    "Bond",
    "VLAN",
    "SM",
    "SR",
    "sr_stat",
    "probe_result",
    "LVHD",
    "VDI",
    "VBD",
    "VBD_metrics",
    "PBD",
    "crashdump",
    "VTPM",
    "console",
    "user",
    "data_source",
    "blob",
    "message",
    "secret",
    "tunnel",
    "network_sriov",
    "PCI",
    "PGPU",
    "GPU_group",
    "VGPU",
    "VGPU_type",
    "PVS_site",
    "PVS_server",
    "PVS_proxy",
    "PVS_cache_storage",
    "Feature",
    "SDN_controller",
    "vdi_nbd_server_info",
    "PUSB",
    "USB_group",
    "VUSB",
    "Cluster",
    "Cluster_host",
    "Certificate",
    "Repository",
    "Observer",
    "VM_group",
    "Host_driver",
    "Driver_variant",
    "Caller",
    "Rate_limit",
];

/// Where the database came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Source {
    /// A redo log (metadata VDI image).
    RedoLog {
        /// The validity byte.
        validity: Validity,
        /// The valid half's marker.
        marker: String,
        /// Generation of the valid half's database record.
        record_generation: i64,
        /// Deltas applied on top of it.
        deltas_applied: usize,
        /// Deltas skipped as stale.
        deltas_skipped: usize,
    },
    /// A plain XML database dump.
    XmlDump,
    /// A metadata VDI read through a pool's API: the objects from `VDI.open_database`'s
    /// read-only session, the generation from the VDI's redo-log framing
    /// (`/export_raw_vdi`).
    ForeignDatabase {
        /// The VDI's UUID.
        vdi_uuid: String,
        /// The UUID of the SR holding it.
        sr_uuid: String,
        /// The validity byte.
        validity: Validity,
        /// The valid half's marker.
        marker: String,
        /// Generation of the valid half's database record.
        record_generation: i64,
        /// Deltas the replay applies on top of it.
        deltas_applied: usize,
        /// Deltas it skips as stale.
        deltas_skipped: usize,
        /// Bytes of the VDI read through the data plane for the generation (each read of
        /// the framing counted).
        raw_bytes_read: u64,
    },
    /// A gzip-compressed XML dump (a `state.db` written with compression).
    GzipXmlDump,
}

/// A database ready for recovery decisions, with where it came from and what was noticed.
#[derive(Debug, Clone)]
pub struct LoadedDatabase {
    /// The database, after replay, with one-to-many sets recomputed.
    pub database: Database,
    /// Where it came from.
    pub source: Source,
    /// Observations: the other half of a redo log, stale deltas, unknown or missing tables.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads a redo-log image, an XML dump or a gzipped XML dump from a file.
pub fn load(path: impl AsRef<Path>) -> Result<LoadedDatabase, Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_reader(file, &path.display().to_string())
}

/// Loads from any seekable reader; `name` is used in error messages.
pub fn load_reader<R: Read + Seek>(mut input: R, name: &str) -> Result<LoadedDatabase, Error> {
    let io_err = |source| Error::Io {
        path: name.to_owned(),
        source,
    };
    let mut start = Vec::with_capacity(16);
    (&mut input)
        .take(16)
        .read_to_end(&mut start)
        .map_err(io_err)?;
    input.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let (mut database, source, mut diagnostics) = if start == MAGIC {
        let image = read_redo_log(input)?;
        let source = Source::RedoLog {
            validity: image.validity,
            marker: image.marker,
            record_generation: image.record_generation,
            deltas_applied: image.deltas_applied,
            deltas_skipped: image.deltas_skipped,
        };
        (image.database, source, image.diagnostics)
    } else if start.starts_with(&[0x1f, 0x8b]) {
        let xml = BufReader::new(flate2::read::GzDecoder::new(input));
        (read_db_xml(xml)?, Source::GzipXmlDump, Vec::new())
    } else if start.trim_ascii_start().first() == Some(&b'<') {
        (
            read_db_xml(BufReader::new(input))?,
            Source::XmlDump,
            Vec::new(),
        )
    } else {
        return Err(Error::UnknownFormat {
            path: name.to_owned(),
            start: String::from_utf8_lossy(&start).into_owned(),
        });
    };
    database.recompute_relations();
    diagnostics.extend(table_diagnostics(&database));
    Ok(LoadedDatabase {
        database,
        source,
        diagnostics,
    })
}

fn table_diagnostics(db: &Database) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = db
        .tables()
        .filter(|(name, _)| !KNOWN_TABLES.contains(name))
        .map(|(name, rows)| Diagnostic::UnknownTable {
            name: name.to_owned(),
            rows: rows.len(),
        })
        .collect();
    for name in [
        "pool",
        "host",
        "SR",
        "PBD",
        "VDI",
        "VBD",
        "VM",
        "VIF",
        "network",
        "VM_appliance",
    ] {
        if db.table(name).is_none() {
            out.push(Diagnostic::MissingTable {
                name: name.to_owned(),
            });
        }
    }
    out
}
