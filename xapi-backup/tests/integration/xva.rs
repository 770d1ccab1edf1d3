//! XVA round trips, hand-made fixtures and corrupt input.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use tokio::io::AsyncWriteExt as _;
use xapi_backup::Error;
use xapi_backup::format::compression::Compression;
use xapi_backup::format::ova_xml::{OvaClass, OvaObject, OvaVersion, OvaXml, Value};
use xapi_backup::format::tar::{END_OF_ARCHIVE, TarError, encode_v7_header, padding_len};
use xapi_backup::format::xva::{
    AfterEndOfArchive, CHUNK_SIZE, ChecksumKind, ChecksumMismatch, ChecksumSource, ChecksumText,
    DiskSource, MismatchPolicy, ReadOptions, WriteOptions, XvaError, XvaReader, xva_stream,
};

const MIB: usize = CHUNK_SIZE as usize;

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn obj(class: OvaClass, id: &str, fields: Vec<(&str, Value)>) -> OvaObject {
    OvaObject {
        class,
        id: id.to_owned(),
        snapshot: Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    }
}

/// A VM with a disk per size given, ids `Ref:<10+i>`-ish so that string order differs from
/// numeric order (Ref:10 < Ref:9), plus a CD drive that carries no data.
fn ova_with_disks(sizes: &[(&str, u64)]) -> OvaXml {
    let mut objects = vec![obj(
        OvaClass::Vm,
        "Ref:1",
        vec![
            ("name_label", s("test vm")),
            ("power_state", s("Halted")),
            ("is_a_template", Value::Bool(false)),
        ],
    )];
    for (i, (id, size)) in sizes.iter().enumerate() {
        objects.push(obj(
            OvaClass::Vbd,
            &format!("Ref:vbd{i}"),
            vec![("VM", s("Ref:1")), ("VDI", s(id)), ("type", s("Disk"))],
        ));
        objects.push(obj(
            OvaClass::Vdi,
            id,
            vec![
                ("virtual_size", s(&size.to_string())),
                ("SR", s("OpaqueRef:NULL")),
            ],
        ));
    }
    objects.push(obj(
        OvaClass::Vbd,
        "Ref:cd",
        vec![("VM", s("Ref:1")), ("VDI", s("Ref:iso")), ("type", s("CD"))],
    ));
    objects.push(obj(
        OvaClass::Vdi,
        "Ref:iso",
        vec![("virtual_size", s("5000000"))],
    ));
    OvaXml {
        version: OvaVersion {
            hostname: "sim".into(),
            xapi_major: 25,
            xapi_minor: 6,
            ..OvaVersion::default()
        },
        objects,
    }
}

/// Disk contents: patterned data with whole zero MiBs in the middle.
fn disk_bytes(size: usize, seed: u8) -> Vec<u8> {
    let mut d = vec![0u8; size];
    for (i, b) in d.iter_mut().enumerate() {
        let mib = i / MIB;
        if mib % 3 != 1 {
            *b = ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed;
        }
    }
    d
}

async fn write_to_vec(ova: &OvaXml, disks: Vec<(&str, Vec<u8>)>, options: WriteOptions) -> Vec<u8> {
    let sources = disks
        .into_iter()
        .map(|(id, data)| DiskSource {
            prefix: id.to_owned(),
            size: data.len() as u64,
            reader: Box::new(std::io::Cursor::new(data)),
        })
        .collect();
    xva_stream(ova, sources, options)
        .expect("disks match ova.xml")
        .try_fold(Vec::new(), |mut v, b| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("xva written")
}

/// Reads a whole XVA from memory, rebuilding each disk.
async fn read_all(xva: Vec<u8>) -> Result<(OvaXml, Vec<Vec<u8>>), Error> {
    let (ova, disks, _) = read_with(xva, ReadOptions::default()).await?;
    Ok((ova, disks))
}

/// Reads a whole XVA under `options`: the object table, each disk, the mismatches recorded.
async fn read_with(
    xva: Vec<u8>,
    options: ReadOptions,
) -> Result<(OvaXml, Vec<Vec<u8>>, Vec<ChecksumMismatch>), Error> {
    let mut r = XvaReader::open(std::io::Cursor::new(xva), options).await?;
    let mut disks: Vec<Vec<u8>> = r
        .disks()
        .iter()
        .map(|d| vec![0u8; d.virtual_size as usize])
        .collect();
    while let Some(c) = r.next_chunk().await? {
        let d = &mut disks[c.disk];
        d[c.offset as usize..c.offset as usize + c.data.len()].copy_from_slice(&c.data);
    }
    Ok((r.ova_xml().clone(), disks, r.mismatches().to_vec()))
}

/// Options that keep a chunk whose checksum does not match (xapi's `force`).
fn recording() -> ReadOptions {
    ReadOptions {
        on_checksum_mismatch: MismatchPolicy::Record,
        ..ReadOptions::default()
    }
}

/// Reads an XVA that must fail, without printing megabytes of disk on success.
async fn read_err(xva: Vec<u8>, why: &str) -> Error {
    match read_all(xva).await {
        Ok(_) => panic!("{why}: the damaged XVA was read as valid"),
        Err(e) => e,
    }
}

fn member_names(tar: &[u8]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let block: &[u8; 512] = tar[at..at + 512].try_into().expect("block");
        let Ok(Some((e, _))) = xapi_backup::format::tar::parse_header(block, at as u64) else {
            break;
        };
        out.push((e.name.clone(), at as u64));
        at += 512 + e.size as usize + padding_len(e.size);
    }
    out
}

#[tokio::test]
async fn xva_round_trips_every_compression_and_checksum() {
    let sizes = [("Ref:9", 5 * CHUNK_SIZE + 333), ("Ref:10", 3 * CHUNK_SIZE)];
    let ova = ova_with_disks(&sizes);
    let d9 = disk_bytes(sizes[0].1 as usize, 1);
    let d10 = disk_bytes(sizes[1].1 as usize, 2);
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        for checksum in [ChecksumKind::Xxhash, ChecksumKind::Sha1] {
            let options = WriteOptions {
                compression,
                checksum,
                ..WriteOptions::default()
            };
            let xva = write_to_vec(
                &ova,
                vec![("Ref:9", d9.clone()), ("Ref:10", d10.clone())],
                options,
            )
            .await;
            let (back, disks) = read_all(xva).await.expect("reads back");
            assert_eq!(back, ova, "{compression:?} {checksum:?}");
            // Disks come in id-string order: Ref:10 before Ref:9.
            assert_eq!(
                disks,
                vec![d10.clone(), d9.clone()],
                "{compression:?} {checksum:?}"
            );
        }
    }
}

/// An archive followed by a stream that never ends nor yields (a peer keeping its side open).
fn archive_then_open_stream(xva: Vec<u8>) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    struct NeverEnds;
    impl tokio::io::AsyncRead for NeverEnds {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }
    tokio::io::AsyncReadExt::chain(std::io::Cursor::new(xva), NeverEnds)
}

#[tokio::test]
async fn stopping_at_the_end_of_archive_reads_nothing_more_and_draining_waits_for_the_end() {
    let sizes = [("Ref:1", 2 * CHUNK_SIZE)];
    let ova = ova_with_disks(&sizes);
    let disk = disk_bytes(sizes[0].1 as usize, 7);
    let xva = write_to_vec(&ova, vec![("Ref:1", disk)], WriteOptions::default()).await;

    let stop = ReadOptions {
        after_end_of_archive: AfterEndOfArchive::Stop,
        ..ReadOptions::default()
    };
    let mut reader = XvaReader::open(archive_then_open_stream(xva.clone()), stop)
        .await
        .unwrap();
    let chunks = tokio::time::timeout(Duration::from_secs(10), async {
        let mut n = 0;
        while reader.next_chunk().await.unwrap().is_some() {
            n += 1;
        }
        n
    })
    .await
    .expect("Stop returns at the end-of-archive marker");
    assert_eq!(chunks, 2);

    let mut reader = XvaReader::open(archive_then_open_stream(xva), ReadOptions::default())
        .await
        .unwrap();
    let drained = tokio::time::timeout(Duration::from_millis(300), async {
        while reader.next_chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(drained.is_err(), "Drain reads on until the stream ends");
}

#[tokio::test]
async fn writer_layout_matches_xapi() {
    let sizes = [("Ref:9", 5 * CHUNK_SIZE + 333), ("Ref:10", 3 * CHUNK_SIZE)];
    let ova = ova_with_disks(&sizes);
    let xva = write_to_vec(
        &ova,
        vec![
            ("Ref:9", disk_bytes(sizes[0].1 as usize, 1)),
            ("Ref:10", disk_bytes(sizes[1].1 as usize, 2)),
        ],
        WriteOptions::default(),
    )
    .await;
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    // MiB 1 and 4 are zero in every disk: omitted, except when it is the last chunk.
    let expected: Vec<String> = [
        "ova.xml",
        "Ref:10/00000000",
        "Ref:10/00000000.xxhash",
        "Ref:10/00000002",
        "Ref:10/00000002.xxhash",
        "Ref:9/00000000",
        "Ref:9/00000000.xxhash",
        "Ref:9/00000002",
        "Ref:9/00000002.xxhash",
        "Ref:9/00000003",
        "Ref:9/00000003.xxhash",
        "Ref:9/00000005",
        "Ref:9/00000005.xxhash",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(names, expected);
    assert!(xva.ends_with(&END_OF_ARCHIVE));
    assert_eq!(xva.len() % 512, 0);
    // ova.xml is a bare value with no declaration.
    assert_eq!(&xva[512..520], b"<value><");
}

#[tokio::test]
async fn all_zero_disk_keeps_first_and_last_chunk() {
    let ova = ova_with_disks(&[("Ref:5", 4 * CHUNK_SIZE)]);
    let xva = write_to_vec(
        &ova,
        vec![("Ref:5", vec![0u8; 4 * MIB])],
        WriteOptions::default(),
    )
    .await;
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "ova.xml",
            "Ref:5/00000000",
            "Ref:5/00000000.xxhash",
            "Ref:5/00000003",
            "Ref:5/00000003.xxhash"
        ]
    );
    let (_, disks) = read_all(xva).await.expect("reads");
    assert_eq!(disks[0], vec![0u8; 4 * MIB]);
}

#[tokio::test]
async fn small_first_disk_disables_omission_so_later_gaps_stay_right() {
    // The importer sizes gaps with the first chunk of the whole import (§3.4).
    let ova = ova_with_disks(&[("Ref:1a", 1000), ("Ref:2b", 3 * CHUNK_SIZE)]);
    let mut big = vec![0u8; 3 * MIB];
    big[3 * MIB - 1] = 9;
    let small: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let xva = write_to_vec(
        &ova,
        vec![("Ref:1a", small.clone()), ("Ref:2b", big.clone())],
        WriteOptions::default(),
    )
    .await;
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"Ref:2b/00000001".to_owned()), "{names:?}");
    let (_, disks) = read_all(xva).await.expect("reads");
    assert_eq!(disks, vec![small, big]);
}

#[tokio::test(start_paused = true)]
async fn stalled_source_gets_keepalive_chunks_that_read_back_correctly() {
    let size = 3 * CHUNK_SIZE;
    let ova = ova_with_disks(&[("Ref:7", size)]);
    let data = disk_bytes(size as usize, 7);
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let feed = data.clone();
    tokio::spawn(async move {
        for (i, piece) in feed.chunks(MIB / 2).enumerate() {
            if i == 3 {
                // 12 s of silence in the middle of chunk 1: two keep-alives at 5 s each.
                tokio::time::sleep(Duration::from_secs(12)).await;
            }
            tx.write_all(piece).await.expect("pipe open");
        }
    });
    let sources = vec![DiskSource {
        prefix: "Ref:7".into(),
        size,
        reader: Box::new(rx),
    }];
    let xva: Vec<u8> = xva_stream(&ova, sources, WriteOptions::default())
        .expect("valid")
        .try_fold(Vec::new(), |mut v, b: Bytes| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("written");
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    // MiB 1 is zero in disk_bytes, so: chunk 0, keep-alives 1 and 2 while MiB 1 is read,
    // MiB 1 omitted, MiB 2 (last) renumbered to 4.
    assert_eq!(
        names,
        [
            "ova.xml",
            "Ref:7/00000000",
            "Ref:7/00000000.xxhash",
            "Ref:7/00000001",
            "Ref:7/00000001.xxhash",
            "Ref:7/00000002",
            "Ref:7/00000002.xxhash",
            "Ref:7/00000004",
            "Ref:7/00000004.xxhash",
        ]
    );
    let (_, disks) = read_all(xva).await.expect("reads");
    assert_eq!(disks[0], data);
}

#[tokio::test(start_paused = true)]
async fn trickling_source_gets_keepalives_while_a_chunk_fills() {
    // 64 KiB every 2 s: a 1 MiB chunk takes 32 s to fill, so nothing would reach the wire for
    // half a minute without keep-alives timed from the last bytes sent.
    // The trickle fills the middle chunk: xapi never sends a keep-alive in place of a disk's
    // first or last chunk.
    let size = 3 * CHUNK_SIZE;
    let ova = ova_with_disks(&[("Ref:7", size)]);
    let data: Vec<u8> = (0..size as usize).map(|i| (i % 251) as u8 + 1).collect();
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let feed = data.clone();
    tokio::spawn(async move {
        for (i, piece) in feed.chunks(64 * 1024).enumerate() {
            if (16..32).contains(&i) {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            tx.write_all(piece).await.expect("pipe open");
        }
    });
    let sources = vec![DiskSource {
        prefix: "Ref:7".into(),
        size,
        reader: Box::new(rx),
    }];
    let xva: Vec<u8> = xva_stream(&ova, sources, WriteOptions::default())
        .expect("valid")
        .try_fold(Vec::new(), |mut v, b: Bytes| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("written");
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    let keepalives = member_names(&xva)
        .iter()
        .filter(|(n, at)| {
            !n.contains('.') && n != "ova.xml" && {
                let block: &[u8; 512] = xva[*at as usize..*at as usize + 512]
                    .try_into()
                    .expect("block");
                xapi_backup::format::tar::parse_header(block, *at)
                    .expect("valid")
                    .expect("header")
                    .0
                    .size
                    == 0
            }
        })
        .count();
    // 32 s of trickle / 5 s: six keep-alives.
    assert_eq!(keepalives, 6, "{names:?}");
    let (_, disks) = read_all(xva).await.expect("reads");
    assert!(disks[0] == data);
}

#[tokio::test(start_paused = true)]
async fn no_keepalive_takes_the_place_of_a_first_or_last_chunk() {
    // xapi's send_one skips the keep-alive when the chunk due is chunk 0 or the last one, so
    // a stall there delays the stream but never renumbers those chunks.
    let size = 2 * CHUNK_SIZE;
    let ova = ova_with_disks(&[("Ref:1", size), ("Ref:2", size)]);
    let a: Vec<u8> = (0..size as usize).map(|i| (i % 13) as u8 + 1).collect();
    let b: Vec<u8> = (0..size as usize).map(|i| (i % 17) as u8 + 1).collect();
    let mut sources = Vec::new();
    for (prefix, data) in [("Ref:1", a.clone()), ("Ref:2", b.clone())] {
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            for (i, piece) in data.chunks(MIB / 2).enumerate() {
                // 12 s of silence inside the first chunk (only disk 2 could get a keep-alive
                // there) and inside the last chunk.
                if i == 1 || i == 3 {
                    tokio::time::sleep(Duration::from_secs(12)).await;
                }
                tx.write_all(piece).await.expect("pipe open");
            }
        });
        sources.push(DiskSource {
            prefix: prefix.into(),
            size,
            reader: Box::new(rx),
        });
    }
    let xva: Vec<u8> = xva_stream(&ova, sources, WriteOptions::default())
        .expect("valid")
        .try_fold(Vec::new(), |mut v, b: Bytes| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("written");
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "ova.xml",
            "Ref:1/00000000",
            "Ref:1/00000000.xxhash",
            "Ref:1/00000001",
            "Ref:1/00000001.xxhash",
            "Ref:2/00000000",
            "Ref:2/00000000.xxhash",
            "Ref:2/00000001",
            "Ref:2/00000001.xxhash",
        ]
    );
    let (_, disks) = read_all(xva).await.expect("reads");
    assert_eq!(disks, vec![a, b]);
}

/// Builds a tar by hand from (name, body) pairs.
fn hand_tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in members {
        out.extend_from_slice(&encode_v7_header(name, body.len() as u64, 0).expect("name fits"));
        out.extend_from_slice(body);
        out.resize(out.len() + padding_len(body.len() as u64), 0);
    }
    out.extend_from_slice(&END_OF_ARCHIVE);
    out
}

const HAND_OVA: &str = "<value><struct><member><name>version</name><value><struct><member><name>export_vsn</name><value><i4>2</i4></value></member></struct></value></member><member><name>objects</name><value><array><data><value><struct><member><name>class</name><value>VBD</value></member><member><name>id</name><value>Ref:3</value></member><member><name>snapshot</name><value><struct><member><name>VDI</name><value>Ref:4</value></member><member><name>type</name><value>Disk</value></member></struct></value></member></struct></value><value><struct><member><name>class</name><value>VDI</value></member><member><name>id</name><value>Ref:4</value></member><member><name>snapshot</name><value><struct><member><name>virtual_size</name><value>4194404</value></member></struct></value></member></struct></value></data></array></value></member></struct></value>";

/// A fixture built by hand from the reference (§3.1, §3.3, §3.4): a 4 MiB + 100 byte disk;
/// chunk 0 with a legacy SHA-1 `.checksum`; chunk 1 omitted (zero); chunk 2 (data of MiB 2);
/// a keep-alive chunk 3 (empty, its own digest); MiB 3 (zero) omitted under number 4; the last
/// chunk (100 bytes at 4 MiB) numbered 5.
fn hand_fixture() -> (Vec<u8>, Vec<u8>) {
    let c0 = vec![0xA5u8; MIB];
    let c2 = vec![0x5Au8; MIB];
    let last: Vec<u8> = (0..100u8).collect();
    let sha_c0 = ChecksumKind::Sha1.digest(&c0);
    assert_eq!(sha_c0.len(), 40);
    let xx_c2 = ChecksumKind::Xxhash.digest(&c2);
    let xx_last = ChecksumKind::Xxhash.digest(&last);
    let tar = hand_tar(&[
        ("ova.xml", HAND_OVA.as_bytes()),
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000000.checksum", sha_c0.as_bytes()),
        ("Ref:4/00000002", &c2),
        ("Ref:4/00000002.xxhash", xx_c2.as_bytes()),
        ("Ref:4/00000003", b""),
        ("Ref:4/00000003.xxhash", b"EF46DB3751D8E999"),
        ("Ref:4/00000005", &last),
        ("Ref:4/00000005.xxhash", xx_last.as_bytes()),
    ]);
    let mut disk = vec![0u8; 4 * MIB + 100];
    disk[..MIB].copy_from_slice(&c0);
    disk[2 * MIB..3 * MIB].copy_from_slice(&c2);
    disk[4 * MIB..].copy_from_slice(&last);
    (tar, disk)
}

#[tokio::test]
async fn hand_made_fixture_with_keepalive_legacy_sha1_and_omission_reads_exactly() {
    let (tar, disk) = hand_fixture();
    let (ova, disks) = read_all(tar).await.expect("hand-made XVA reads");
    assert_eq!(
        ova.disks().expect("disks")[0].virtual_size,
        4 * CHUNK_SIZE + 100
    );
    assert_eq!(disks, vec![disk]);
}

/// The checksum table a pre-Miami export ends with: an XML-RPC struct from chunk member name
/// to lower-case SHA-1 (xapi: `Importexport.checksum_table_of_rpc`).
fn legacy_table(entries: &[(&str, &[u8])]) -> String {
    use std::fmt::Write as _;
    let mut xml = String::from("<value><struct>");
    for (name, data) in entries {
        let digest = ChecksumKind::Sha1.digest(data);
        write!(
            xml,
            "<member><name>{name}</name><value>{digest}</value></member>"
        )
        .expect("writing to a String never fails");
    }
    xml.push_str("</struct></value>");
    xml
}

#[tokio::test]
async fn export_vsn_zero_means_no_checksum_members() {
    // §2: inline checksum members are expected iff export_vsn > 0; a missing value reads as 0.
    // Below 2, xapi reads one more member after the disks: the checksum table.
    let ova = HAND_OVA.replace(
        "<member><name>export_vsn</name><value><i4>2</i4></value></member>",
        "",
    );
    let c0 = vec![3u8; MIB];
    let last = vec![4u8; 100];
    let table = legacy_table(&[("Ref:4/00000000", &c0), ("Ref:4/00000004", &last)]);
    let tar = hand_tar(&[
        ("ova.xml", ova.as_bytes()),
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000004", &last),
        ("checksum.xml", table.as_bytes()),
    ]);
    let (back, disks) = read_all(tar).await.expect("vsn 0 reads without checksums");
    assert_eq!(back.version.export_vsn, 0);
    let mut expected = vec![0u8; 4 * MIB + 100];
    expected[..MIB].copy_from_slice(&c0);
    expected[4 * MIB..].copy_from_slice(&last);
    assert!(disks[0] == expected);
}

#[tokio::test]
async fn ova_xml_carries_the_export_time_and_chunks_carry_zero() {
    // xapi: Tar.Header.make ~mod_time:now for ova.xml, the default 0 for every chunk member.
    let size = 2 * CHUNK_SIZE;
    let ova = ova_with_disks(&[("Ref:1", size)]);
    let data = vec![1u8; size as usize];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let sources = vec![DiskSource {
        prefix: "Ref:1".into(),
        size,
        reader: Box::new(std::io::Cursor::new(data)),
    }];
    let xva: Vec<u8> = xva_stream(&ova, sources, WriteOptions::default())
        .expect("valid")
        .try_fold(Vec::new(), |mut v, b: Bytes| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .expect("written");
    let after = before + 5;
    for (name, at) in member_names(&xva) {
        let block: &[u8; 512] = xva[at as usize..at as usize + 512]
            .try_into()
            .expect("block");
        let (entry, _) = xapi_backup::format::tar::parse_header(block, at)
            .expect("valid")
            .expect("header");
        if name == "ova.xml" {
            assert!((before..=after).contains(&entry.mtime), "{}", entry.mtime);
        } else {
            assert_eq!(entry.mtime, 0, "{name}");
        }
    }
}

#[tokio::test]
async fn writer_refuses_an_ova_xml_that_is_not_export_vsn_2() {
    let mut ova = ova_with_disks(&[]);
    ova.version.export_vsn = 1;
    let err = xva_stream(&ova, Vec::new(), WriteOptions::default())
        .err()
        .expect("refused");
    assert!(
        matches!(err, Error::Xva(XvaError::UnsupportedExportVsn { found: 1 })),
        "{err}"
    );
}

#[tokio::test]
async fn legacy_checksum_table_is_required_and_checked_below_export_vsn_2() {
    // export_vsn 1 (Rio GA to Miami B2): inline .checksum members and the trailing table.
    let ova = HAND_OVA.replace(
        "<value><i4>2</i4></value></member></struct>",
        "<value><i4>1</i4></value></member></struct>",
    );
    let c0 = vec![5u8; MIB];
    let last = vec![6u8; 100];
    let sha = |d: &[u8]| ChecksumKind::Sha1.digest(d);
    let build = |table: Option<&str>| {
        let (s0, s4) = (sha(&c0), sha(&last));
        let mut members: Vec<(&str, &[u8])> = vec![
            ("ova.xml", ova.as_bytes()),
            ("Ref:4/00000000", &c0),
            ("Ref:4/00000000.checksum", s0.as_bytes()),
            ("Ref:4/00000004", &last),
            ("Ref:4/00000004.checksum", s4.as_bytes()),
        ];
        if let Some(t) = table {
            members.push(("checksum.xml", t.as_bytes()));
        }
        hand_tar(&members)
    };
    let good = legacy_table(&[("Ref:4/00000000", &c0), ("Ref:4/00000004", &last)]);
    let (back, disks) = read_all(build(Some(&good))).await.expect("reads");
    assert_eq!(back.version.export_vsn, 1);
    assert_eq!(&disks[0][..MIB], &c0[..]);

    let wrong = legacy_table(&[("Ref:4/00000000", &c0), ("Ref:4/00000004", &c0)]);
    let err = read_all(build(Some(&wrong))).await.expect_err("bad table");
    assert!(
        matches!(&err, Error::Xva(XvaError::LegacyChecksumTable { member, .. }) if member == "Ref:4/00000004"),
        "{err}"
    );
    let partial = legacy_table(&[("Ref:4/00000000", &c0)]);
    let err = read_all(build(Some(&partial)))
        .await
        .expect_err("entry missing");
    assert!(
        matches!(&err, Error::Xva(XvaError::LegacyChecksumTable { member, .. }) if member == "Ref:4/00000004"),
        "{err}"
    );
    let err = read_all(build(None)).await.expect_err("table missing");
    assert!(
        matches!(&err, Error::Xva(XvaError::LegacyChecksumTable { table, .. }) if table.is_empty()),
        "{err}"
    );
}

fn is_typed_corruption(e: &Error) -> bool {
    e.is_corrupt_input()
        || matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof)
}

#[tokio::test]
async fn every_flipped_data_byte_region_is_detected() {
    let (tar, _) = hand_fixture();
    let members = member_names(&tar);
    for (name, at) in members
        .iter()
        .filter(|(n, _)| !n.ends_with("xxhash") && !n.ends_with("checksum") && n != "ova.xml")
    {
        let mut bad = tar.clone();
        let body = *at as usize + 512;
        if name.ends_with("00000003") {
            continue; // empty keep-alive
        }
        bad[body + 7] ^= 0x40;
        let err = read_err(bad, "flipped byte must fail").await;
        assert!(
            matches!(&err, Error::Xva(XvaError::ChecksumMismatch { member, .. }) if member == name),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn truncation_at_every_member_boundary_is_an_error() {
    let (tar, _) = hand_fixture();
    let mut cuts: Vec<usize> = member_names(&tar)
        .iter()
        .map(|(_, at)| *at as usize)
        .collect();
    cuts.push(tar.len() - 1024); // the end-of-archive marker removed
    cuts.extend([1, 100, 511, 513, tar.len() - 1]);
    for cut in cuts {
        let e = read_err(tar[..cut].to_vec(), &format!("cut at {cut}")).await;
        assert!(is_typed_corruption(&e), "cut at {cut}: {e}");
    }
    // Missing end-of-archive only: every disk byte is there, the archive is still refused.
    let err = read_err(tar[..tar.len() - 1024].to_vec(), "no end marker").await;
    assert!(
        matches!(err, Error::Tar(TarError::Truncated { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_first_member_is_refused() {
    let (c0, sum) = (vec![1u8; 10], ChecksumKind::Xxhash.digest(&[1u8; 10]));
    let tar = hand_tar(&[
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000000.xxhash", sum.as_bytes()),
    ]);
    let err = read_err(tar, "no ova.xml").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::UnexpectedMember { expected, found, .. }) if expected == "ova.xml" && found == "Ref:4/00000000"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_chunk_prefix_is_refused() {
    let c0 = vec![1u8; MIB];
    let sum = ChecksumKind::Xxhash.digest(&c0);
    let tar = hand_tar(&[
        ("ova.xml", HAND_OVA.as_bytes()),
        ("Ref:5/00000000", &c0),
        ("Ref:5/00000000.xxhash", sum.as_bytes()),
    ]);
    let err = read_err(tar, "wrong disk").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::UnexpectedMember { found, .. }) if found == "Ref:5/00000000"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_checksum_text_is_refused() {
    let c0 = vec![1u8; MIB];
    for text in ["not-hex-at-all!!", "EF46DB37", ""] {
        let tar = hand_tar(&[
            ("ova.xml", HAND_OVA.as_bytes()),
            ("Ref:4/00000000", &c0),
            ("Ref:4/00000000.xxhash", text.as_bytes()),
        ]);
        let err = read_err(tar, "bad text").await;
        assert!(
            matches!(&err, Error::Xva(XvaError::BadChecksumText { member, .. }) if member == "Ref:4/00000000"),
            "{text:?}: {err}"
        );
    }
}

#[tokio::test]
async fn reordered_members_are_refused() {
    let (c0, c2) = (vec![1u8; MIB], vec![2u8; MIB]);
    let (s0, s2) = (
        ChecksumKind::Xxhash.digest(&c0),
        ChecksumKind::Xxhash.digest(&c2),
    );
    // chunk 2 before chunk 0
    let tar = hand_tar(&[
        ("ova.xml", HAND_OVA.as_bytes()),
        ("Ref:4/00000002", &c2),
        ("Ref:4/00000002.xxhash", s2.as_bytes()),
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000000.xxhash", s0.as_bytes()),
    ]);
    let err = read_err(tar, "reordered").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::ChunkOutOfOrder { member, .. }) if member == "Ref:4/00000000"),
        "{err}"
    );
    // checksum before its chunk
    let tar = hand_tar(&[
        ("ova.xml", HAND_OVA.as_bytes()),
        ("Ref:4/00000000.xxhash", s0.as_bytes()),
        ("Ref:4/00000000", &c0),
    ]);
    let err = read_err(tar, "checksum first").await;
    assert!(is_typed_corruption(&err), "{err}");
    assert!(matches!(err, Error::Xva(_)), "{err}");
}

#[tokio::test]
async fn trailing_member_after_last_disk_is_refused() {
    let (tar, _) = hand_fixture();
    let mut body = tar[..tar.len() - 1024].to_vec();
    body.extend_from_slice(&hand_tar(&[("extra", b"x")]));
    let err = read_err(body, "extra member").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::UnexpectedMember { found, .. }) if found == "extra"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_is_not_an_xva() {
    let err = read_err(b"hello world, certainly not a tar".repeat(40), "garbage").await;
    assert!(
        matches!(err, Error::Xva(XvaError::NotAnXva { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn corrupt_compressed_streams_fail_typed() {
    let ova = ova_with_disks(&[("Ref:2", 2 * CHUNK_SIZE + 5)]);
    let data = disk_bytes(2 * MIB + 5, 3);
    for compression in [Compression::Gzip, Compression::Zstd] {
        // no keep-alive chunks: on a loaded machine a late one would move the flipped bytes
        let xva = write_to_vec(
            &ova,
            vec![("Ref:2", data.clone())],
            WriteOptions {
                compression,
                keepalive: None,
                ..WriteOptions::default()
            },
        )
        .await;
        for cut in [xva.len() / 3, xva.len() / 2, xva.len() - 3] {
            let err = read_err(xva[..cut].to_vec(), "truncated compressed").await;
            assert!(
                is_typed_corruption(&err),
                "{compression:?} cut {cut}: {err}"
            );
        }
        for at in [xva.len() / 4, xva.len() / 2, xva.len() - 20] {
            let mut flipped = xva.clone();
            flipped[at] ^= 0xFF;
            let err = read_err(flipped, "flipped compressed byte").await;
            assert!(
                is_typed_corruption(&err),
                "{compression:?} flip at {at}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn writer_refuses_disks_that_do_not_match_ova_xml() {
    let ova = ova_with_disks(&[("Ref:2", 100)]);
    let wrong = vec![DiskSource {
        prefix: "Ref:2".into(),
        size: 99,
        reader: Box::new(std::io::Cursor::new(vec![0u8; 99])),
    }];
    assert!(matches!(
        xva_stream(&ova, wrong, WriteOptions::default()),
        Err(Error::Xva(XvaError::DiskMismatch { .. }))
    ));
    let short = vec![DiskSource {
        prefix: "Ref:2".into(),
        size: 100,
        reader: Box::new(std::io::Cursor::new(vec![0u8; 50])),
    }];
    let err = xva_stream(&ova, short, WriteOptions::default())
        .expect("sizes match")
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect_err("source too short");
    assert!(
        matches!(err, Error::Xva(XvaError::SourceEnded { offset: 50, .. })),
        "{err}"
    );
}

#[tokio::test]
async fn record_policy_yields_a_mismatching_chunk_and_reports_it() {
    let (tar, disk) = hand_fixture();
    let members = member_names(&tar);
    let at = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at as usize + 512)
            .expect("member present")
    };
    let mut bad = tar.clone();
    // Damage chunk 2's data (at disk offset 2 MiB) and chunk 5's checksum text into garbage.
    bad[at("Ref:4/00000002") + 10] ^= 0xFF;
    bad[at("Ref:4/00000005.xxhash")..at("Ref:4/00000005.xxhash") + 3].copy_from_slice(b"zz!");
    let mut damaged = disk.clone();
    damaged[2 * MIB + 10] ^= 0xFF;

    let err = read_err(bad.clone(), "the default policy fails").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::ChecksumMismatch { member, disk_offset, .. })
            if member == "Ref:4/00000002" && *disk_offset == 2 * CHUNK_SIZE),
        "{err}"
    );

    let (_, disks, mismatches) = read_with(bad, recording()).await.expect("rescued");
    assert_eq!(disks, vec![damaged], "every byte received is handed out");
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    let first = &mismatches[0];
    assert_eq!(first.member, "Ref:4/00000002");
    assert_eq!(first.source, ChecksumSource::Inline);
    assert_eq!(first.kind, ChecksumKind::Xxhash);
    assert_eq!(
        first.stored.as_deref(),
        Some(
            ChecksumKind::Xxhash
                .digest(&disk[2 * MIB..3 * MIB])
                .as_str()
        )
    );
    assert_eq!(
        first.computed,
        ChecksumKind::Xxhash.digest(&damaged_chunk(&disk, 2 * MIB, MIB, 10))
    );
    assert_eq!(
        (first.disk, first.chunk_no, first.disk_offset, first.len),
        (0, 2, 2 * CHUNK_SIZE, CHUNK_SIZE)
    );
    let second = &mismatches[1];
    assert_eq!(second.member, "Ref:4/00000005");
    assert!(
        second
            .stored
            .as_deref()
            .is_some_and(|t| t.starts_with("zz!")),
        "a malformed text counts as a mismatch: {second:?}"
    );
    assert_eq!((second.chunk_no, second.disk_offset), (5, 4 * CHUNK_SIZE));

    // An undamaged archive records nothing under the same policy.
    let (_, disks, mismatches) = read_with(tar, recording()).await.expect("reads");
    assert_eq!(disks, vec![disk]);
    assert!(mismatches.is_empty());
}

/// `len` bytes of `disk` from `from`, with the byte at `flip` inside them inverted.
fn damaged_chunk(disk: &[u8], from: usize, len: usize, flip: usize) -> Vec<u8> {
    let mut chunk = disk[from..from + len].to_vec();
    chunk[flip] ^= 0xFF;
    chunk
}

#[tokio::test]
async fn record_policy_still_refuses_structural_damage() {
    let (tar, _) = hand_fixture();
    let cut = tar[..tar.len() - 3 * 512].to_vec();
    let err = read_with(cut, recording())
        .await
        .expect_err("a truncated archive is not rescued silently");
    assert!(is_typed_corruption(&err), "{err}");
}

#[tokio::test]
async fn record_policy_reports_legacy_table_disagreements() {
    let ova = HAND_OVA.replace(
        "<value><i4>2</i4></value></member></struct>",
        "<value><i4>1</i4></value></member></struct>",
    );
    let c0 = vec![5u8; MIB];
    let last = vec![6u8; 100];
    let (s0, s4) = (
        ChecksumKind::Sha1.digest(&c0),
        ChecksumKind::Sha1.digest(&last),
    );
    // The table disagrees with chunk 4 and has no entry for chunk 0.
    let table = legacy_table(&[("Ref:4/00000004", &c0)]);
    let tar = hand_tar(&[
        ("ova.xml", ova.as_bytes()),
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000000.checksum", s0.as_bytes()),
        ("Ref:4/00000004", &last),
        ("Ref:4/00000004.checksum", s4.as_bytes()),
        ("checksum.xml", table.as_bytes()),
    ]);
    let err = read_err(tar.clone(), "the default policy fails").await;
    assert!(
        matches!(&err, Error::Xva(XvaError::LegacyChecksumTable { member, .. }) if member == "Ref:4/00000000"),
        "{err}"
    );
    let (_, disks, mismatches) = read_with(tar, recording()).await.expect("rescued");
    assert_eq!(&disks[0][..MIB], &c0[..]);
    assert_eq!(&disks[0][4 * MIB..], &last[..]);
    let table_source = ChecksumSource::LegacyTable {
        table: "checksum.xml".to_owned(),
    };
    assert_eq!(
        mismatches,
        vec![
            ChecksumMismatch {
                member: "Ref:4/00000000".to_owned(),
                source: table_source.clone(),
                kind: ChecksumKind::Sha1,
                stored: None,
                computed: s0,
                disk: 0,
                chunk_no: 0,
                disk_offset: 0,
                len: CHUNK_SIZE,
            },
            ChecksumMismatch {
                member: "Ref:4/00000004".to_owned(),
                source: table_source,
                kind: ChecksumKind::Sha1,
                stored: Some(ChecksumKind::Sha1.digest(&c0)),
                computed: s4,
                disk: 0,
                chunk_no: 4,
                disk_offset: 4 * CHUNK_SIZE,
                len: 100,
            },
        ]
    );
}

#[tokio::test]
async fn metadata_only_archive_of_a_vm_with_disks_ends_after_ova_xml() {
    let ova = ova_with_disks(&[("Ref:2", 3 * CHUNK_SIZE)]);
    let only_xml = hand_tar(&[("ova.xml", ova.to_xml().as_bytes())]);
    let mut r = XvaReader::open(std::io::Cursor::new(only_xml), ReadOptions::default())
        .await
        .expect("opens");
    assert_eq!(r.disks().len(), 1, "ova.xml still names the disk");
    r.finish_metadata_only().await.expect("nothing follows");
    assert!(r.next_chunk().await.expect("ended").is_none());

    let with_chunk = hand_tar(&[
        ("ova.xml", ova.to_xml().as_bytes()),
        ("Ref:2/00000000", b"data"),
    ]);
    let mut r = XvaReader::open(std::io::Cursor::new(with_chunk), ReadOptions::default())
        .await
        .expect("opens");
    let err = r.finish_metadata_only().await.expect_err("a chunk follows");
    assert!(
        matches!(&err, Error::Xva(XvaError::UnexpectedMember { found, .. }) if found == "Ref:2/00000000"),
        "{err}"
    );
}

#[tokio::test]
async fn an_upload_shorter_than_one_header_is_truncated() {
    for short in [Vec::new(), b"hello".to_vec(), vec![0u8; 511]] {
        let len = short.len() as u64;
        let err = read_err(short, "short").await;
        assert!(
            matches!(&err, Error::Tar(TarError::Truncated { offset, .. }) if *offset == len),
            "{len}: {err}"
        );
    }
}

#[tokio::test]
async fn metadata_only_xva_has_no_disk_chunks() {
    let mut ova = ova_with_disks(&[]);
    ova.objects.retain(|o| o.class == OvaClass::Vm);
    let xva = write_to_vec(&ova, vec![], WriteOptions::default()).await;
    let names: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["ova.xml"]);
    let (back, disks) = read_all(xva).await.expect("reads");
    assert_eq!(back, ova);
    assert!(disks.is_empty());
}

/// Interop with an independent implementation: GNU tar lists and extracts what we write, and
/// an XVA re-packed by GNU tar (GNU/ustar headers, 10 KiB records) reads back the same.
#[tokio::test]
async fn gnu_tar_agrees_with_our_tar_layer() {
    let size = 3 * CHUNK_SIZE + 512;
    let ova = ova_with_disks(&[("Ref:3", size)]);
    let data = disk_bytes(size as usize, 9);
    let xva = write_to_vec(&ova, vec![("Ref:3", data.clone())], WriteOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vm.xva");
    std::fs::write(&file, &xva).expect("write xva");
    let tar = |args: &[&str]| {
        let out = std::process::Command::new("tar")
            .args(args)
            .output()
            .expect("GNU tar is on the machine");
        assert!(
            out.status.success(),
            "tar {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let listed: Vec<String> = tar(&["--force-local", "-tf", &path(&file)])
        .lines()
        .map(str::to_owned)
        .collect();
    let ours: Vec<String> = member_names(&xva).into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, ours);
    let unpacked = dir.path().join("x");
    std::fs::create_dir(&unpacked).expect("mkdir");
    tar(&["--force-local", "-xf", &path(&file), "-C", &path(&unpacked)]);
    assert_eq!(
        std::fs::read(unpacked.join("Ref:3/00000000")).expect("chunk 0"),
        data[..MIB]
    );
    let repacked = dir.path().join("repacked.xva");
    let mut args = vec![
        "--force-local".to_owned(),
        "--format=gnu".to_owned(),
        "-cf".to_owned(),
        path(&repacked),
        "-C".to_owned(),
        path(&unpacked),
    ];
    args.extend(ours.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tar(&args);
    let (back, disks) = read_all(std::fs::read(&repacked).expect("read"))
        .await
        .expect("GNU tar output reads");
    assert_eq!(back, ova);
    assert!(disks[0] == data);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever the pattern of zero and non-zero chunks, the tail length, the checksum kind and
    /// the compression, write -> read gives back the same disks.
    #[test]
    fn any_sparse_pattern_round_trips(
        pattern in proptest::collection::vec(proptest::prelude::any::<bool>(), 1..5),
        tail in 1usize..=MIB,
        second in 0usize..3000,
        sha1 in proptest::prelude::any::<bool>(),
        compression in 0u8..3,
    ) {
        let size = (pattern.len() - 1) * MIB + tail;
        let mut first = vec![0u8; size];
        for (i, filled) in pattern.iter().enumerate() {
            if *filled {
                let end = ((i + 1) * MIB).min(size);
                for (j, b) in first[i * MIB..end].iter_mut().enumerate() {
                    *b = (j as u8) ^ (i as u8 + 1);
                }
            }
        }
        let other: Vec<u8> = (0..second).map(|i| (i % 7) as u8).collect();
        let ova = ova_with_disks(&[("Ref:a", size as u64), ("Ref:b", second as u64)]);
        let options = WriteOptions {
            checksum: if sha1 { ChecksumKind::Sha1 } else { ChecksumKind::Xxhash },
            compression: [Compression::None, Compression::Gzip, Compression::Zstd][compression as usize],
            ..WriteOptions::default()
        };
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (back, disks) = rt.block_on(async {
            let xva = write_to_vec(&ova, vec![("Ref:a", first.clone()), ("Ref:b", other.clone())], options).await;
            read_all(xva).await
        }).expect("round trip");
        proptest::prop_assert_eq!(back, ova);
        proptest::prop_assert!(disks[0] == first);
        proptest::prop_assert!(disks[1] == other);
    }
}

#[tokio::test]
async fn checksum_text_in_the_other_case_passes_leniently_and_fails_exactly() {
    let c0 = vec![0x11u8; MIB];
    let last: Vec<u8> = (0..100u8).collect();
    let lower = ChecksumKind::Xxhash.digest(&c0).to_ascii_lowercase();
    assert_ne!(
        lower,
        ChecksumKind::Xxhash.digest(&c0),
        "xapi writes upper-case xxhash"
    );
    let xx_last = ChecksumKind::Xxhash.digest(&last);
    let tar = hand_tar(&[
        ("ova.xml", HAND_OVA.as_bytes()),
        ("Ref:4/00000000", &c0),
        ("Ref:4/00000000.xxhash", lower.as_bytes()),
        ("Ref:4/00000004", &last),
        ("Ref:4/00000004.xxhash", xx_last.as_bytes()),
    ]);
    read_all(tar.clone()).await.expect("lenient by default");
    let exact = ReadOptions {
        checksum_text: ChecksumText::Exact,
        ..ReadOptions::default()
    };
    let err = read_with(tar, exact)
        .await
        .expect_err("exact, as xapi's importer");
    assert!(
        matches!(&err, Error::Xva(XvaError::ChecksumMismatch { member, .. }) if member == "Ref:4/00000000"),
        "{err}"
    );
}
