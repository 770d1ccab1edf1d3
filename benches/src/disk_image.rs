//! Synthetic disk images and the XVA, VHD, raw-tar and chunked encodings of them, written by
//! the project's own writers so that the readers are measured on exactly what they will meet.

use std::io::Cursor;

use bytes::Bytes;
use xapi_backup::format::chunked;
use xapi_backup::format::compression::Compression;
use xapi_backup::format::ova_xml::{OvaClass, OvaObject, OvaVersion, OvaXml, Value};
use xapi_backup::format::raw_tar::write_raw_tar;
use xapi_backup::format::vhd::writer::{VhdWriteOptions, write_dynamic_vhd, write_fixed_vhd};
use xapi_backup::format::xva::{CHUNK_SIZE, ChecksumKind, DiskSource, WriteOptions, write_xva};

use crate::rng::SplitMix64;

const MIB: usize = CHUNK_SIZE as usize;

/// The export id of the one disk in [`ova_for_disk`].
pub const DISK_ID: &str = "Ref:7";

/// A disk of `mib` MiB that looks like a used VM disk: about a quarter of its MiBs are zero
/// (never written), a quarter hold repetitive text-like data, half hold random bytes (compressed
/// or encrypted files). The first and last MiB always hold data.
pub fn generate_disk(mib: usize, seed: u64) -> Bytes {
    let mut rng = SplitMix64::new(seed);
    let mut disk = vec![0u8; mib * MIB];
    let line = b"Nov 22 01:23:45 vm42 systemd[1]: Started Session 4242 of user backup.\n";
    for (i, block) in disk.chunks_exact_mut(MIB).enumerate() {
        let roll = rng.below(4);
        let edge = i == 0 || i + 1 == mib;
        match roll {
            0 if !edge => {}
            1 => {
                for (j, b) in block.iter_mut().enumerate() {
                    *b = line[j % line.len()];
                }
                // a few random bytes per line so that no two MiBs are equal
                for _ in 0..256 {
                    let at = rng.below(MIB as u64) as usize;
                    block[at] = b'0' + (rng.below(10) as u8);
                }
            }
            _ => rng.fill(block),
        }
    }
    Bytes::from(disk)
}

fn string(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn object(class: OvaClass, id: &str, fields: Vec<(&str, Value)>) -> OvaObject {
    OvaObject {
        class,
        id: id.to_owned(),
        snapshot: Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    }
}

/// An `ova.xml` describing one halted VM with one disk of `size` bytes ([`DISK_ID`]).
pub fn ova_for_disk(size: u64) -> OvaXml {
    OvaXml {
        version: OvaVersion {
            hostname: "bench-host".into(),
            date: "2026-11-22".into(),
            product_version: "8.4.0".into(),
            product_brand: "XCP-ng".into(),
            build_number: "release/yangtze/master/58".into(),
            xapi_major: 25,
            xapi_minor: 6,
            export_vsn: 2,
            extra: Vec::new(),
        },
        objects: vec![
            object(
                OvaClass::Vm,
                "Ref:1",
                vec![
                    ("uuid", string("5e1b7f5c-2f6a-4a4b-9d7e-0d3c1b2a4f11")),
                    ("name_label", string("bench vm")),
                    ("power_state", string("Halted")),
                    ("is_a_template", Value::Bool(false)),
                ],
            ),
            object(
                OvaClass::Vbd,
                "Ref:3",
                vec![
                    ("VM", string("Ref:1")),
                    ("VDI", string(DISK_ID)),
                    ("type", string("Disk")),
                    ("userdevice", string("0")),
                ],
            ),
            object(
                OvaClass::Vdi,
                DISK_ID,
                vec![
                    ("uuid", string("0a7c3e2d-1b4f-4c8e-a6d5-9f8e7d6c5b4a")),
                    ("name_label", string("bench disk")),
                    ("virtual_size", string(&size.to_string())),
                    ("type", string("user")),
                    ("SR", string("OpaqueRef:NULL")),
                ],
            ),
        ],
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime can always be built")
}

/// Options the benchmarks write with: no keep-alives (sources never stall), zero MiBs omitted
/// as xapi does.
pub fn write_options(checksum: ChecksumKind) -> WriteOptions {
    WriteOptions {
        checksum,
        compression: Compression::None,
        keepalive: None,
        omit_zero_chunks: true,
        ova_xml_mtime: 1_763_776_000,
    }
}

/// Writes an XVA of `disk` with `write_xva` into `out`; returns the bytes written.
pub async fn write_xva_into<W: tokio::io::AsyncWrite + Unpin>(
    disk: &Bytes,
    checksum: ChecksumKind,
    out: &mut W,
) -> Result<u64, xapi_backup::Error> {
    let ova = ova_for_disk(disk.len() as u64);
    let source = DiskSource {
        prefix: DISK_ID.to_owned(),
        size: disk.len() as u64,
        reader: Box::new(Cursor::new(disk.clone())),
    };
    write_xva(&ova, vec![source], write_options(checksum), out).await
}

/// The XVA export of `disk`, in memory.
pub fn xva_bytes(disk: &Bytes, checksum: ChecksumKind) -> Bytes {
    let mut out = Vec::with_capacity(disk.len() + (1 << 20));
    current_thread()
        .block_on(write_xva_into(disk, checksum, &mut out))
        .expect("writing an XVA of an in-memory disk into memory cannot fail");
    Bytes::from(out)
}

/// The raw `format=tar` export of `disk`, in memory.
pub fn raw_tar_bytes(disk: &Bytes, checksum: ChecksumKind) -> Bytes {
    let mut out = Vec::with_capacity(disk.len() + (1 << 20));
    current_thread()
        .block_on(write_raw_tar(
            Box::new(Cursor::new(disk.clone())),
            disk.len() as u64,
            write_options(checksum),
            &mut out,
        ))
        .expect("writing a raw tar of an in-memory disk into memory cannot fail");
    Bytes::from(out)
}

/// Fixed UUID and timestamp so that VHD bytes are identical on every run.
pub fn vhd_options() -> VhdWriteOptions {
    VhdWriteOptions {
        uuid: *b"xapi-rs-bench-01",
        timestamp: 817_000_000,
        ..VhdWriteOptions::default()
    }
}

/// A dynamic (sparse) VHD of `disk`, in memory.
pub fn dynamic_vhd_bytes(disk: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(disk.len() + (1 << 20));
    current_thread()
        .block_on(write_dynamic_vhd(
            Cursor::new(disk.clone()),
            disk.len() as u64,
            vhd_options(),
            &mut out,
        ))
        .expect("writing a VHD of an in-memory disk into memory cannot fail");
    Bytes::from(out)
}

/// A fixed VHD of `disk`, in memory.
pub fn fixed_vhd_bytes(disk: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(disk.len() + 512);
    current_thread()
        .block_on(write_fixed_vhd(
            Cursor::new(disk.clone()),
            disk.len() as u64,
            vhd_options(),
            &mut out,
        ))
        .expect("writing a VHD of an in-memory disk into memory cannot fail");
    Bytes::from(out)
}

/// The chunked-upload body of `disk` (its non-zero MiBs), in memory.
pub fn chunked_bytes(disk: &Bytes) -> Bytes {
    let extents = disk
        .chunks(MIB)
        .enumerate()
        .filter(|(_, block)| block.iter().any(|&b| b != 0))
        .map(|(i, block)| ((i * MIB) as u64, block));
    Bytes::from(chunked::encode_extents(extents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_has_zero_and_data_mibs_and_is_deterministic() {
        let disk = generate_disk(16, 3);
        let zero = disk
            .chunks(MIB)
            .filter(|b| b.iter().all(|&x| x == 0))
            .count();
        assert!(zero > 0 && zero < 16, "{zero} zero MiBs of 16");
        assert_eq!(disk, generate_disk(16, 3));
        assert!(disk[..MIB].iter().any(|&b| b != 0));
        assert!(disk[15 * MIB..].iter().any(|&b| b != 0));
    }

    #[test]
    fn encodings_are_deterministic_and_hold_the_data() {
        let disk = generate_disk(4, 9);
        let xva = xva_bytes(&disk, ChecksumKind::Xxhash);
        assert_eq!(xva, xva_bytes(&disk, ChecksumKind::Xxhash));
        assert!(xva.len() > disk.iter().filter(|&&b| b != 0).count() / 2);
        assert_eq!(dynamic_vhd_bytes(&disk), dynamic_vhd_bytes(&disk));
        assert_eq!(fixed_vhd_bytes(&disk).len(), disk.len() + 512);
        assert!(chunked_bytes(&disk).len() >= 2 * MIB);
        assert!(raw_tar_bytes(&disk, ChecksumKind::Sha1).len() > 2 * MIB);
    }
}
