//! VDIs over NBD, checked with qemu: `qemu-img info` and `convert` read what the image holds,
//! `qemu-io` writes are tracked by CBT and show up in `VDI.list_changed_blocks`.

use crate::support;

use tokio::process::Command;

use base64::Engine as _;
use xapi_core::Error;
use xapi_core::client::SessionHandle;

#[derive(Debug, Clone, serde::Deserialize)]
struct NbdInfo {
    exportname: String,
    address: String,
    port: i64,
}

/// qemu's JSON image spec for an NBD export (the export name holds `?` and `=`, which an
/// `nbd://` URL cannot carry).
fn qemu_spec(info: &NbdInfo) -> String {
    let export = info.exportname.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"json:{{"driver":"raw","file":{{"driver":"nbd","server":{{"type":"inet","host":"{}","port":"{}"}},"export":"{export}"}}}}"#,
        info.address, info.port
    )
}

/// The master's entry of `VDI.get_nbd_info`.
async fn nbd_info(session: &SessionHandle, vdi: &str) -> NbdInfo {
    support::nbd_infos(session, vdi).await.remove(0)
}

#[tokio::test]
async fn qemu_img_reads_a_vdi_over_nbd() {
    let (sim, session) = support::demo().await;
    let vdi = support::first_disk_of(&session, "mail").await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let size: u64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    let info = nbd_info(&session, &vdi).await;
    assert_eq!(
        info.exportname,
        format!("/{uuid}?session_id={}", session.reference())
    );

    let spec = qemu_spec(&info);
    let json = support::run("qemu-img", &["info", "--output=json", &spec]).await;
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["virtual-size"].as_u64(), Some(size));

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.raw");
    support::run(
        "qemu-img",
        &["convert", "-O", "raw", &spec, copy.to_str().unwrap()],
    )
    .await;
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        original,
        "qemu-img copied the exact bytes"
    );
}

#[tokio::test]
async fn nbd_refuses_a_stale_session() {
    let (_sim, session) = support::demo().await;
    let vdi = support::first_disk_of(&session, "mail").await;
    let info = nbd_info(&session, &vdi).await;
    session.logout().await.unwrap();
    let output = Command::new("qemu-img")
        .args(["info", &qemu_spec(&info)])
        .output()
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "the export is refused once the session is gone"
    );
}

#[tokio::test]
async fn nbd_writes_show_up_in_list_changed_blocks() {
    let (_sim, session) = support::demo().await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .unwrap();
    let vm = &vms[0];
    let vdi = support::first_disk_of(&session, "test-vm").await;
    session.call::<()>("VDI.enable_cbt", (&vdi,)).await.unwrap();
    assert!(
        session
            .call::<bool>("VDI.get_cbt_enabled", (&vdi,))
            .await
            .unwrap()
    );

    let first: String = session
        .call("VM.snapshot", (vm, "base", Vec::<String>::new()))
        .await
        .unwrap();
    let info = nbd_info(&session, &vdi).await;
    support::run(
        "qemu-io",
        &[
            "-c",
            "write -P 0xab 3M 64k",
            "-c",
            "write -P 0xcd 5000k 8k",
            &qemu_spec(&info),
        ],
    )
    .await;
    let second: String = session
        .call("VM.snapshot", (vm, "next", Vec::<String>::new()))
        .await
        .unwrap();

    let snapshot_disk = |snap: String| {
        let session = session.clone();
        async move {
            let vbds: Vec<String> = session.call("VM.get_VBDs", (&snap,)).await.unwrap();
            session
                .call::<String>("VBD.get_VDI", (&vbds[0],))
                .await
                .unwrap()
        }
    };
    let base = snapshot_disk(first).await;
    let next = snapshot_disk(second).await;
    let bitmap: String = session
        .call("VDI.list_changed_blocks", (&base, &next))
        .await
        .unwrap();
    let bitmap = base64::engine::general_purpose::STANDARD
        .decode(bitmap)
        .unwrap();
    let changed: Vec<usize> = (0..bitmap.len() * 8)
        .filter(|i| bitmap[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect();
    // 3 MiB / 64 KiB = block 48; 5000 KiB + 8 KiB lies in block 78
    assert_eq!(changed, [48, 78]);

    session
        .call::<()>("VDI.data_destroy", (&base,))
        .await
        .unwrap();
    let kind: String = session.call("VDI.get_type", (&base,)).await.unwrap();
    assert_eq!(kind, "cbt_metadata");
    match session
        .call::<Vec<NbdInfo>>("VDI.get_nbd_info", (&base,))
        .await
    {
        Err(Error::Api(f)) => assert_eq!(f.code, xapi_core::api::ErrorCode::VdiIncompatibleType),
        other => panic!("a cbt_metadata VDI cannot be read: {other:?}"),
    }
    let again: String = session
        .call("VDI.list_changed_blocks", (&base, &next))
        .await
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(again)
            .unwrap(),
        bitmap
    );
}

#[tokio::test]
async fn qemu_img_reads_the_vdi_from_every_host_that_serves_it() {
    let (sim, session) = support::demo().await;
    let vdi = support::first_disk_of(&session, "mail").await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let infos = support::nbd_infos::<NbdInfo>(&session, &vdi).await;
    assert!(infos.len() >= 2, "mail's disk is on a shared SR: {infos:?}");
    assert_eq!(infos[0].address, "127.0.0.1", "the master first");
    for (i, info) in infos.iter().enumerate() {
        let copy = dir.path().join(format!("copy-{i}.raw"));
        support::run(
            "qemu-img",
            &[
                "convert",
                "-O",
                "raw",
                &qemu_spec(info),
                copy.to_str().unwrap(),
            ],
        )
        .await;
        assert!(
            std::fs::read(&copy).unwrap() == original,
            "the copy read from {} is the disk",
            info.address
        );
    }
}
