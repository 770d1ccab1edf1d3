//! Writes the seed corpora of the fuzz targets (`fuzz/fuzz_targets/`), produced by the
//! project's own writers: `xapi-fuzz-seeds <corpus-dir>` creates `<corpus-dir>/<target>/seed-*`.
//! Run by `cargo xtask fuzz-smoke`; nothing it writes is committed.

use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use xapi_backup::format::chunked::encode_extents;
use xapi_backup::format::ova_xml::OvaXml;
use xapi_backup::format::vhd::{VhdWriteOptions, write_dynamic_vhd};
use xapi_backup::format::xva::ChecksumKind;
use xapi_benches::api_records::all_records;
use xapi_benches::disk_image::{
    chunked_bytes, fixed_vhd_bytes, generate_disk, ova_for_disk, raw_tar_bytes, vhd_options,
    xva_bytes,
};
use xapi_benches::pool_metadata::{realistic_deltas, redo_log_image};
use xapi_core::api::meta;
use xapi_core::wire::{Failure, Value, jsonrpc, xmlrpc};
use xapi_dr::metadata::db_xml_bytes;
use xapi_dr::metadata::testing::{PoolShape, generate_pool};

const KIB: usize = 1024;

/// A 24 KiB disk: data, a zero gap, data. Small seeds keep the fuzzers fast.
fn small_disk(seed: u64) -> Bytes {
    let data = generate_disk(1, seed);
    let mut disk = vec![0u8; 24 * KIB];
    disk[..4 * KIB].copy_from_slice(&data[..4 * KIB]);
    disk[16 * KIB..20 * KIB].copy_from_slice(&data[4 * KIB..8 * KIB]);
    Bytes::from(disk)
}

/// A dynamic VHD with 4 KiB blocks (the smallest the writer allows), so that unallocated
/// blocks, bitmaps and the BAT all appear in a few KiB.
fn small_dynamic_vhd(disk: &Bytes) -> Vec<u8> {
    let options = VhdWriteOptions {
        block_size: 4096,
        ..vhd_options()
    };
    let mut out = Vec::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime can always be built")
        .block_on(write_dynamic_vhd(
            std::io::Cursor::new(disk.clone()),
            disk.len() as u64,
            options,
            &mut out,
        ))
        .expect("writing a small VHD into memory cannot fail");
    out
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let disk = small_disk(5);
    let size = disk.len() as u32;
    for kind in [ChecksumKind::Xxhash, ChecksumKind::Sha1] {
        out.push(("xva_stream", xva_bytes(&disk, kind).to_vec()));
        let mut raw = size.to_le_bytes().to_vec();
        raw.extend_from_slice(&raw_tar_bytes(&disk, kind));
        out.push(("raw_tar", raw));
    }
    let ova = ova_for_disk(disk.len() as u64);
    out.push(("ova_xml", ova.to_xml().into_bytes()));
    out.push(("ova_xml", OvaXml::default().to_xml().into_bytes()));
    out.push(("vhd", small_dynamic_vhd(&disk)));
    let tiny = Bytes::from(vec![0x5A; 8 * KIB]);
    out.push(("vhd", fixed_vhd_bytes(&tiny).to_vec()));
    let mut chunked = vec![1u8];
    chunked.extend_from_slice(&size.to_le_bytes());
    chunked.extend_from_slice(&chunked_bytes(&disk));
    out.push(("chunked", chunked));
    let mut chunked = vec![0u8];
    chunked.extend_from_slice(&encode_extents([
        (0, &disk[..4 * KIB]),
        (16 * KIB as u64, &disk[16 * KIB..20 * KIB]),
    ]));
    out.push(("chunked", chunked));

    let vms = all_records("VM", 2, 3);
    let failure = Failure::from_description(vec![
        "HANDLE_INVALID".to_owned(),
        "VM".to_owned(),
        "OpaqueRef:0b7e".to_owned(),
    ])
    .expect("a non-empty error description is a failure");
    for class in ["VM", "VDI", "SR", "host", "pool", "task"] {
        if meta::class(class).is_some() {
            out.push((
                "xmlrpc_response",
                xmlrpc::encode_response(Ok(&all_records(class, 1, 9))),
            ));
        }
    }
    out.push(("xmlrpc_response", xmlrpc::encode_response(Ok(&vms))));
    out.push(("xmlrpc_response", xmlrpc::encode_response(Err(&failure))));
    out.push((
        "xmlrpc_response",
        xmlrpc::encode_call("VM.get_all_records", &[Value::String("OpaqueRef:s".into())]),
    ));
    for version in [jsonrpc::Version::V1, jsonrpc::Version::V2] {
        out.push((
            "jsonrpc_response",
            jsonrpc::encode_response(version, &Value::Int(7), Ok(&vms)),
        ));
        out.push((
            "jsonrpc_response",
            jsonrpc::encode_response(version, &Value::String("x".into()), Err(&failure)),
        ));
    }
    metadata_seeds(&mut out);
    out
}

/// Seeds of the pool-metadata targets: a small pool's dump, its set and map columns, a redo log
/// cut after its last record (the second half absent), and deltas of each kind.
fn metadata_seeds(out: &mut Vec<(&'static str, Vec<u8>)>) {
    let db = generate_pool(PoolShape::with_vms(3));
    out.push(("db_xml", db_xml_bytes(&db)));
    let mut columns = 0;
    for (_, row) in db.rows("VM").take(1) {
        for (_, value) in row.columns() {
            if value.starts_with('(') && columns < 6 {
                out.push(("sexpr", value.as_bytes().to_vec()));
                columns += 1;
            }
        }
    }
    let (image, mut after) = redo_log_image(3, 12, 1);
    let used = image.iter().rposition(|&b| b != 0).map_or(0, |i| i + 17);
    out.push(("redo_log", image[..used.min(image.len())].to_vec()));
    for delta in realistic_deltas(&mut after, 6, 2) {
        out.push(("delta", delta.encode()));
    }
}

fn write_seeds(dir: &Path) -> std::io::Result<usize> {
    let seeds = seeds();
    for (i, (target, bytes)) in seeds.iter().enumerate() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("seed-{i:03}")), bytes)?;
    }
    Ok(seeds.len())
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: xapi-fuzz-seeds <corpus-dir>");
        return ExitCode::FAILURE;
    };
    match write_seeds(Path::new(&dir)) {
        Ok(n) => {
            println!("wrote {n} seed inputs under {}", Path::new(&dir).display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("xapi-fuzz-seeds: {}: {err}", Path::new(&dir).display());
            ExitCode::FAILURE
        }
    }
}
