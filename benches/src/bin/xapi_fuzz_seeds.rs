//! Writes the seed corpora of the fuzz targets (`fuzz/fuzz_targets/`), produced by the
//! project's own writers: `xapi-fuzz-seeds <corpus-dir>` creates `<corpus-dir>/<target>/seed-*`.
//! Run by `cargo xtask fuzz-smoke`; nothing it writes is committed.

use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use xapi_backup::format::ova_xml::OvaXml;
use xapi_backup::format::xva::ChecksumKind;
use xapi_benches::api_records::all_records;
use xapi_benches::disk_image::{
    chunked_bytes, dynamic_vhd_bytes, fixed_vhd_bytes, generate_disk, ova_for_disk, raw_tar_bytes,
    xva_bytes,
};
use xapi_core::api::meta;
use xapi_core::wire::{Failure, Value, jsonrpc, xmlrpc};

const KIB: usize = 1024;

/// A small disk (a few KiB of data in a 2 MiB image keeps seeds small) in the shapes the
/// readers meet.
fn small_disk(seed: u64) -> Bytes {
    let mut disk = generate_disk(2, seed).to_vec();
    // Keep a little data at each end and zero the rest, so that the seed files stay small
    // once zero chunks are omitted or blocks left unallocated.
    for b in &mut disk[4 * KIB..(2 << 20) - 4 * KIB] {
        *b = 0;
    }
    Bytes::from(disk)
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
    out.push(("vhd", dynamic_vhd_bytes(&disk).to_vec()));
    let tiny = Bytes::from(vec![0x5A; 8 * KIB]);
    out.push(("vhd", fixed_vhd_bytes(&tiny).to_vec()));
    let mut chunked = vec![1u8];
    chunked.extend_from_slice(&size.to_le_bytes());
    chunked.extend_from_slice(&chunked_bytes(&disk));
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
    out
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
