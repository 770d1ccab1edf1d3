//! VHD output checked by qemu-img, qemu-made VHDs read back, differencing deltas, corruption.
//!
//! qemu-img is required (`cargo xtask test` installs qemu-utils): these tests fail, not skip,
//! when it is missing.

use std::path::Path;
use std::process::Command;

use xapi_backup::Error;
use xapi_backup::format::vhd::bat::{UNALLOCATED, encode_bat};
use xapi_backup::format::vhd::{
    DiskType, DynamicHeader, ParentLocator, VhdError, VhdFooter, VhdReader, VhdWriteOptions,
    write_dynamic_vhd, write_dynamic_vhd_with_map, write_fixed_vhd,
};

const MIB: usize = 1 << 20;

fn qemu_img(args: &[&str]) -> std::process::Output {
    Command::new("qemu-img").args(args).output().unwrap_or_else(|e| {
        panic!("qemu-img is required for the VHD tests (install qemu-utils, or run `cargo xtask test`): {e}")
    })
}

fn qemu_ok(args: &[&str]) -> String {
    let out = qemu_img(args);
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The checks the suite applies to every VHD written:
/// - `qemu-img check` (qemu has no checker for vpc and says so with exit code 63; any other
///   failure fails the test);
/// - `qemu-img info` sees a vpc image of exactly the raw size;
/// - `qemu-img compare` against the raw image (content; not `-s`, which also compares
///   allocation and so refuses every sparse image);
/// - a conversion to qcow2 (Xen Orchestra's validity check) that then passes `qemu-img check`.
fn assert_valid_vhd(vhd: &Path, raw: &Path, size: u64) {
    let check = qemu_img(&["check", "-f", "vpc", vhd.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success()
            || (check.status.code() == Some(63) && stderr.contains("does not support checks")),
        "qemu-img check: {stderr}"
    );
    let info = qemu_ok(&[
        "info",
        "-f",
        "vpc",
        "--output=json",
        vhd.to_str().expect("utf-8"),
    ]);
    assert!(info.contains("\"format\": \"vpc\""), "{info}");
    assert!(
        info.contains(&format!("\"virtual-size\": {size},")),
        "{info}"
    );
    qemu_ok(&[
        "compare",
        "-f",
        "vpc",
        "-F",
        "raw",
        vhd.to_str().expect("utf-8"),
        raw.to_str().expect("utf-8"),
    ]);
    let qcow = vhd.with_extension("qcow2");
    qemu_ok(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "qcow2",
        vhd.to_str().expect("utf-8"),
        qcow.to_str().expect("utf-8"),
    ]);
    qemu_ok(&["check", "-f", "qcow2", qcow.to_str().expect("utf-8")]);
}

/// Patterned data with whole zero regions (so that dynamic images are sparse).
fn raw_disk(size: usize) -> Vec<u8> {
    let mut d = vec![0u8; size];
    for (i, b) in d.iter_mut().enumerate() {
        if (i / MIB) % 4 != 1 && (i / MIB) % 4 != 2 {
            *b = ((i as u32).wrapping_mul(2_246_822_519) >> 23) as u8;
        }
    }
    d
}

async fn read_vhd(bytes: Vec<u8>) -> Result<(VhdReader<std::io::Cursor<Vec<u8>>>, Vec<u8>), Error> {
    let mut r = VhdReader::open(std::io::Cursor::new(bytes)).await?;
    let mut disk = Vec::new();
    while let Some(e) = r.next_extent().await? {
        let end = e.offset as usize + e.data.len();
        if disk.len() < end {
            disk.resize(end, 0);
        }
        disk[e.offset as usize..end].copy_from_slice(&e.data);
    }
    let size = r.footer().expect("footer known at the end").current_size as usize;
    disk.resize(size, 0);
    Ok((r, disk))
}

#[tokio::test]
async fn dynamic_vhd_passes_qemu_img_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    for size in [9 * MIB + 3 * 512, 8 * MIB, 512] {
        let data = raw_disk(size);
        let raw = dir.path().join(format!("d{size}.raw"));
        std::fs::write(&raw, &data).expect("write raw");
        let mut vhd_bytes = Vec::new();
        write_dynamic_vhd(
            std::io::Cursor::new(data.clone()),
            size as u64,
            VhdWriteOptions::default(),
            &mut vhd_bytes,
        )
        .await
        .expect("writes");
        let vhd = dir.path().join(format!("d{size}.vhd"));
        std::fs::write(&vhd, &vhd_bytes).expect("write vhd");
        assert_valid_vhd(&vhd, &raw, size as u64);
        let (r, back) = read_vhd(vhd_bytes.clone()).await.expect("reads back");
        assert_eq!(r.footer().map(|f| f.disk_type), Some(DiskType::Dynamic));
        assert!(back == data, "size {size}: dynamic VHD read back differs");
    }
}

#[tokio::test]
async fn all_zero_blocks_stay_unallocated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 16 * MIB;
    let mut data = vec![0u8; size];
    data[5 * MIB + 17] = 1; // block 2 only
    let raw = dir.path().join("z.raw");
    std::fs::write(&raw, &data).expect("raw");
    let mut vhd_bytes = Vec::new();
    write_dynamic_vhd(
        std::io::Cursor::new(data.clone()),
        size as u64,
        VhdWriteOptions::default(),
        &mut vhd_bytes,
    )
    .await
    .expect("writes");
    // footer + header + BAT sector + one (bitmap + 2 MiB block) + footer
    assert_eq!(vhd_bytes.len(), 512 + 1024 + 512 + 512 + 2 * MIB + 512);
    let vhd = dir.path().join("z.vhd");
    std::fs::write(&vhd, &vhd_bytes).expect("vhd");
    assert_valid_vhd(&vhd, &raw, size as u64);
    let (_, back) = read_vhd(vhd_bytes).await.expect("reads");
    assert!(back == data);
}

#[tokio::test]
async fn fixed_vhd_passes_qemu_img_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 3 * MIB + 1024;
    let data = raw_disk(size);
    let raw = dir.path().join("f.raw");
    std::fs::write(&raw, &data).expect("raw");
    let mut vhd_bytes = Vec::new();
    write_fixed_vhd(
        &data[..],
        size as u64,
        VhdWriteOptions::default(),
        &mut vhd_bytes,
    )
    .await
    .expect("writes");
    assert_eq!(vhd_bytes.len(), size + 512);
    let vhd = dir.path().join("f.vhd");
    std::fs::write(&vhd, &vhd_bytes).expect("vhd");
    assert_valid_vhd(&vhd, &raw, size as u64);
    let (r, back) = read_vhd(vhd_bytes).await.expect("reads");
    assert_eq!(r.footer().map(|f| f.disk_type), Some(DiskType::Fixed));
    assert!(back == data);
}

#[tokio::test]
async fn vhds_made_by_qemu_img_read_correctly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 6 * MIB + 512;
    let data = raw_disk(size);
    let raw = dir.path().join("q.raw");
    std::fs::write(&raw, &data).expect("raw");
    for subformat in ["dynamic", "fixed"] {
        let vhd = dir.path().join(format!("q-{subformat}.vhd"));
        qemu_ok(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            &format!("subformat={subformat}"),
            raw.to_str().expect("utf-8"),
            vhd.to_str().expect("utf-8"),
        ]);
        let bytes = std::fs::read(&vhd).expect("read vhd");
        let (r, back) = read_vhd(bytes)
            .await
            .unwrap_or_else(|e| panic!("{subformat}: {e}"));
        let footer = r.footer().expect("footer");
        // qemu rounds the size up to its CHS geometry; the extra tail reads as zeros.
        assert!(footer.current_size >= size as u64, "{subformat}");
        assert!(back[..size] == data[..], "{subformat}: data differs");
        assert!(
            back[size..].iter().all(|&b| b == 0),
            "{subformat}: tail not zero"
        );
        let expected = if subformat == "fixed" {
            DiskType::Fixed
        } else {
            DiskType::Dynamic
        };
        assert_eq!(footer.disk_type, expected);
    }
}

#[tokio::test]
async fn writer_with_map_refuses_data_outside_the_map() {
    let mut data = vec![0u8; 4 * MIB];
    data[3 * MIB] = 7;
    let mut out = Vec::new();
    let err = write_dynamic_vhd_with_map(
        &data[..],
        data.len() as u64,
        &[true, false],
        VhdWriteOptions::default(),
        &mut out,
    )
    .await
    .expect_err("block 1 holds data");
    assert!(
        matches!(err, Error::Vhd(VhdError::InvalidRequest(ref m)) if m.contains("block 1")),
        "{err}"
    );
    let err = write_fixed_vhd(
        &data[..100],
        100,
        VhdWriteOptions::default(),
        &mut Vec::new(),
    )
    .await
    .expect_err("not sectors");
    assert!(
        matches!(err, Error::Vhd(VhdError::InvalidRequest(_))),
        "{err}"
    );
}

/// Builds a differencing VHD by hand (the way `export_raw_vdi?format=vhd&base=` sends deltas):
/// 8 MiB disk, 2 MiB blocks, a `MacX` parent locator, block 2 allocated with only sectors 8..16
/// present, block 0 allocated with every sector present.
fn hand_differencing_vhd() -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let size = 8 * MIB as u64;
    let block = 2 * MIB;
    let mut footer = VhdFooter::new(DiskType::Differencing, size, [9; 16], 1000);
    footer.data_offset = 512;
    let locator_data = b"file://./parent.vhd".to_vec();
    let mut header = DynamicHeader::new_dynamic(1536, 4, block as u32);
    header.parent_uuid = [4; 16];
    header.parent_name = "parent.vhd".into();
    header.locators = vec![ParentLocator {
        platform_code: *b"MacX",
        data_space: 1,
        data_length: locator_data.len() as u32,
        data_offset: 2048,
    }];
    let block0_at = 2560u64;
    let block2_at = block0_at + 512 + block as u64;
    let bat = encode_bat(&[
        (block0_at / 512) as u32,
        UNALLOCATED,
        (block2_at / 512) as u32,
        UNALLOCATED,
    ]);
    let mut img = Vec::new();
    img.extend_from_slice(&footer.encode());
    img.extend_from_slice(&header.encode());
    img.extend_from_slice(&bat);
    let mut loc = locator_data.clone();
    loc.resize(512, 0);
    img.extend_from_slice(&loc);
    assert_eq!(img.len() as u64, block0_at);
    let b0: Vec<u8> = (0..block).map(|i| (i % 199) as u8 + 1).collect();
    img.extend_from_slice(&[0xFF; 512]);
    img.extend_from_slice(&b0);
    let mut bitmap = [0u8; 512];
    bitmap[1] = 0xFF; // sectors 8..16
    let b2: Vec<u8> = (0..block).map(|i| (i % 97) as u8 + 1).collect();
    img.extend_from_slice(&bitmap);
    img.extend_from_slice(&b2);
    img.extend_from_slice(&footer.encode());
    let expected = vec![
        (0, b0),
        (2 * block as u64 + 8 * 512, b2[8 * 512..16 * 512].to_vec()),
    ];
    (img, expected)
}

#[tokio::test]
async fn differencing_vhd_yields_only_the_delta_and_its_parent() {
    let (img, expected) = hand_differencing_vhd();
    let mut r = VhdReader::open(std::io::Cursor::new(img))
        .await
        .expect("opens");
    assert_eq!(
        r.footer().map(|f| f.disk_type),
        Some(DiskType::Differencing)
    );
    let header = r.header().expect("header");
    assert_eq!(header.parent_name, "parent.vhd");
    assert_eq!(header.parent_uuid, [4; 16]);
    assert_eq!(r.parent_locators().len(), 1);
    assert_eq!(
        r.parent_locators()[0].path.as_deref(),
        Some("file://./parent.vhd")
    );
    let mut got = Vec::new();
    while let Some(e) = r.next_extent().await.expect("extent") {
        got.push((e.offset, e.data.to_vec()));
    }
    assert_eq!(got.len(), expected.len());
    for ((go, gd), (eo, ed)) in got.iter().zip(&expected) {
        assert_eq!(go, eo);
        assert!(gd == ed, "extent at {go} differs");
    }
}

#[tokio::test]
async fn corrupt_vhds_are_typed_errors() {
    let (img, _) = hand_differencing_vhd();
    let drain = |bytes: Vec<u8>| async move {
        let mut r = VhdReader::open(std::io::Cursor::new(bytes)).await?;
        while r.next_extent().await?.is_some() {}
        Ok::<_, Error>(())
    };
    // Flipped bytes in the footer copy, header, trailing footer.
    for at in [10usize, 600, img.len() - 500] {
        let mut bad = img.clone();
        bad[at] ^= 0x10;
        let err = drain(bad).await.expect_err("flip must fail");
        assert!(matches!(err, Error::Vhd(_)), "flip at {at}: {err}");
    }
    // Truncation at every structure and block boundary.
    for cut in [
        0usize,
        100,
        512,
        1000,
        1536,
        2048,
        2560,
        3072,
        2560 + 2 * MIB,
        img.len() - 512,
        img.len() - 1,
    ] {
        let err = drain(img[..cut].to_vec())
            .await
            .expect_err("truncated must fail");
        assert!(matches!(err, Error::Vhd(_)), "cut at {cut}: {err}");
    }
    // A BAT entry pointing back into the header cannot be streamed.
    let mut bad = img.clone();
    let mut bat = encode_bat(&[1, UNALLOCATED, UNALLOCATED, UNALLOCATED]);
    bat.truncate(512);
    bad[1536..2048].copy_from_slice(&bat);
    let err = drain(bad).await.expect_err("backwards block");
    assert!(
        matches!(err, Error::Vhd(VhdError::NotStreamable { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn small_block_sizes_round_trip_and_pass_qemu_img() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 2 * MIB + 4096;
    let data = raw_disk(size);
    let raw = dir.path().join("s.raw");
    std::fs::write(&raw, &data).expect("raw");
    for block_size in [4096u32, 64 * 1024] {
        let mut vhd_bytes = Vec::new();
        let options = VhdWriteOptions {
            block_size,
            ..VhdWriteOptions::default()
        };
        write_dynamic_vhd(
            std::io::Cursor::new(data.clone()),
            size as u64,
            options,
            &mut vhd_bytes,
        )
        .await
        .expect("writes");
        let vhd = dir.path().join(format!("s{block_size}.vhd"));
        std::fs::write(&vhd, &vhd_bytes).expect("vhd");
        assert_valid_vhd(&vhd, &raw, size as u64);
        let (_, back) = read_vhd(vhd_bytes).await.expect("reads");
        assert!(back == data, "block size {block_size}");
    }
}
