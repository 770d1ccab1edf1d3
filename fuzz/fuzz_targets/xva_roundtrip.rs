//! Writer round trip: any disk written as an XVA (either checksum kind, zero chunks omitted or
//! not) reads back to exactly the same bytes.
#![no_main]

use std::io::Cursor;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use xapi_backup::format::compression::Compression;
use xapi_backup::format::ova_xml::{OvaClass, OvaObject, OvaVersion, OvaXml, Value};
use xapi_backup::format::xva::{
    ChecksumKind, DiskSource, ReadOptions, WriteOptions, XvaReader, write_xva,
};
use xapi_fuzz::disk_recipe::{Run, build_disk};
use xapi_fuzz::{DiskImage, block_on};

#[derive(Debug, Arbitrary)]
struct Input {
    sha1: bool,
    omit_zero_chunks: bool,
    runs: Vec<Run>,
}

fn ova(size: u64) -> OvaXml {
    let object = |class, id: &str, fields: Vec<(&str, &str)>| OvaObject {
        class,
        id: id.to_owned(),
        snapshot: Value::Struct(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect(),
        ),
    };
    OvaXml {
        version: OvaVersion {
            hostname: "fuzz".into(),
            xapi_major: 25,
            xapi_minor: 6,
            export_vsn: 2,
            ..OvaVersion::default()
        },
        objects: vec![
            object(OvaClass::Vm, "Ref:1", vec![("name_label", "fuzz")]),
            object(
                OvaClass::Vbd,
                "Ref:2",
                vec![("VM", "Ref:1"), ("VDI", "Ref:3"), ("type", "Disk")],
            ),
            object(
                OvaClass::Vdi,
                "Ref:3",
                vec![("virtual_size", &size.to_string())],
            ),
        ],
    }
}

fuzz_target!(|input: Input| {
    let disk = build_disk(&input.runs, 3 << 20, 512);
    let size = disk.len() as u64;
    let options = WriteOptions {
        checksum: if input.sha1 {
            ChecksumKind::Sha1
        } else {
            ChecksumKind::Xxhash
        },
        compression: Compression::None,
        keepalive: None,
        omit_zero_chunks: input.omit_zero_chunks,
        ova_xml_mtime: 0,
    };
    block_on(async {
        let source = DiskSource {
            prefix: "Ref:3".to_owned(),
            size,
            reader: Box::new(Cursor::new(disk.clone())),
        };
        let mut xva = Vec::new();
        write_xva(&ova(size), vec![source], options, &mut xva)
            .await
            .unwrap_or_else(|err| panic!("writing a {size}-byte disk failed: {err}"));
        let mut reader = XvaReader::open(Cursor::new(xva), ReadOptions::default())
            .await
            .unwrap_or_else(|err| panic!("the written XVA does not open: {err}"));
        assert_eq!(reader.disks().len(), 1);
        assert_eq!(reader.disks()[0].virtual_size, size);
        let mut image = DiskImage::default();
        while let Some(chunk) = reader
            .next_chunk()
            .await
            .unwrap_or_else(|err| panic!("the written XVA does not read back: {err}"))
        {
            image.place(chunk.offset, &chunk.data, size, true);
        }
        image.bytes.resize(disk.len(), 0);
        assert!(
            image.bytes == disk,
            "disk bytes differ after an XVA round trip"
        );
    });
});
