//! VHD on the raw VDI endpoints: `PUT /import_raw_vdi?format=vhd` takes fixed and dynamic VHDs
//! made by `qemu-img`, and `GET /export_raw_vdi?format=vhd&base=` sends only the blocks that
//! differ from the base, which applied onto the base give the disk back.

use crate::support;

use std::path::Path;

use xapi_core::client::SessionHandle;
use xapi_sim::SimHandle;

const SIZE: usize = 8 << 20;
const BLOCK: usize = 2 << 20;

async fn demo() -> (SimHandle, SessionHandle) {
    let (sim, session) = support::demo().await;
    sim.clock().set_speed(10_000.0);
    (sim, session)
}

/// PUT `body` to `/import_raw_vdi` with `query`; the task's status and result.
async fn upload(
    session: &SessionHandle,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> (String, String) {
    support::put_and_wait(session, "/import_raw_vdi", query, body).await
}

/// A new VDI on the SR of the demo's `test-vm` disk holding `content`; its uuid.
async fn new_disk(session: &SessionHandle, content: Vec<u8>) -> String {
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .unwrap();
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vms[0],)).await.unwrap();
    let vdi: String = session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap();
    let sr: String = session.call("VDI.get_SR", (&vdi,)).await.unwrap();
    let (status, created) = upload(session, &[("sr_id", &sr), ("format", "raw")], content).await;
    assert_eq!(status, "success");
    let created = created
        .trim_start_matches("<value>")
        .trim_end_matches("</value>");
    session.call("VDI.get_uuid", (&created,)).await.unwrap()
}

/// 8 MiB with data in blocks 0, 1 and 3 (block 2 all zero).
fn base_content() -> Vec<u8> {
    let mut data = vec![0_u8; SIZE];
    for (i, byte) in data[..2 * BLOCK].iter_mut().enumerate() {
        *byte = (i % 241) as u8;
    }
    data[3 * BLOCK..3 * BLOCK + 4096].fill(0x5a);
    data
}

fn image(sim: &SimHandle, uuid: &str) -> Vec<u8> {
    std::fs::read(sim.disk_image("primary", uuid).unwrap()).unwrap()
}

#[tokio::test]
async fn fixed_and_dynamic_vhd_imports_write_the_disk() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let content = base_content();
    std::fs::write(&raw, &content).unwrap();
    for subformat in ["dynamic", "fixed"] {
        let vhd = dir.path().join(format!("{subformat}.vhd"));
        let options = format!("subformat={subformat},force_size=on");
        support::run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vpc",
                "-o",
                &options,
                path(&raw),
                path(&vhd),
            ],
        )
        .await;
        let uuid = new_disk(&session, vec![0xff; SIZE]).await;
        let (status, result) = upload(
            &session,
            &[("vdi", &uuid), ("format", "vhd")],
            std::fs::read(&vhd).unwrap(),
        )
        .await;
        assert_eq!(status, "success", "{subformat}: {result}");
        let written = image(&sim, &uuid);
        if subformat == "fixed" {
            assert!(written == content, "a fixed VHD writes every byte");
        } else {
            // a dynamic VHD writes the blocks it holds; qemu-img leaves the zero block out
            assert!(written[..2 * BLOCK] == content[..2 * BLOCK]);
            assert!(written[3 * BLOCK..] == content[3 * BLOCK..]);
        }
    }

    // a VHD of a larger disk than the VDI is refused, and nothing is written past its end
    let big = dir.path().join("big.vhd");
    support::run(
        "qemu-img",
        &[
            "create",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            path(&big),
            "16M",
        ],
    )
    .await;
    let uuid = new_disk(&session, vec![0; SIZE]).await;
    let (status, _) = upload(
        &session,
        &[("vdi", &uuid), ("format", "vhd")],
        std::fs::read(&big).unwrap(),
    )
    .await;
    assert_eq!(status, "failure");
    // a body that is no VHD fails the task
    let (status, _) = upload(
        &session,
        &[("vdi", &uuid), ("format", "vhd")],
        vec![7; 4096],
    )
    .await;
    assert_eq!(status, "failure");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn delta_export_holds_only_the_changed_blocks() {
    let (sim, session) = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let base = base_content();
    let mut changed = base.clone();
    changed[2 * BLOCK + 777..2 * BLOCK + 900].fill(0x11); // block 2 gains data
    changed[3 * BLOCK..3 * BLOCK + 10].fill(0); // block 3 loses some
    let base_uuid = new_disk(&session, base.clone()).await;
    let disk_uuid = new_disk(&session, changed.clone()).await;

    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", &disk_uuid), ("format", "vhd"), ("base", &base_uuid)],
            None,
        )
        .await
        .unwrap();
    let delta = download.bytes(1 << 30).await.unwrap().to_vec();
    let delta_path = dir.path().join("delta.vhd");
    std::fs::write(&delta_path, &delta).unwrap();
    let info = support::run("qemu-img", &["info", "--output=json", path(&delta_path)]).await;
    assert!(info.contains("\"format\": \"vpc\""), "{info}");
    assert!(
        info.contains(&format!("\"virtual-size\": {SIZE}")),
        "{info}"
    );
    assert!(
        delta.len() < 2 * BLOCK + BLOCK / 2,
        "two changed blocks and metadata, got {} bytes",
        delta.len()
    );
    let delta_raw = dir.path().join("delta.raw");
    support::run(
        "qemu-img",
        &["convert", "-O", "raw", path(&delta_path), path(&delta_raw)],
    )
    .await;
    let blocks = std::fs::read(&delta_raw).unwrap();
    assert!(
        blocks[..2 * BLOCK].iter().all(|b| *b == 0),
        "blocks 0-1 are unchanged"
    );
    assert!(
        blocks[2 * BLOCK..] == changed[2 * BLOCK..],
        "blocks 2-3 carry the disk"
    );

    // applied onto the base, the delta gives the disk
    let (status, result) = upload(&session, &[("vdi", &base_uuid), ("format", "vhd")], delta).await;
    assert_eq!(status, "success", "{result}");
    let expected = dir.path().join("expected.raw");
    std::fs::write(&expected, &changed).unwrap();
    let applied = sim.disk_image("primary", &base_uuid).unwrap();
    support::run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "raw",
            path(&expected),
            path(&applied),
        ],
    )
    .await;

    // a delta needs the VHD format
    let err = session
        .get(
            "/export_raw_vdi",
            &[("vdi", &disk_uuid), ("format", "raw"), ("base", &base_uuid)],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, xapi_core::Error::Http { status: 404, .. }),
        "{err}"
    );
}
