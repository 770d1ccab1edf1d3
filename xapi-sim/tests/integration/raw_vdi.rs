//! `GET /export_raw_vdi` in every format: raw bytes equal the image, the VHD is read back by
//! `qemu-img`, the raw tar verifies chunk by chunk with xapi-backup's reader.

use crate::support;

use xapi_backup::format::raw_tar::RawTarReader;
use xapi_backup::format::xva::ReadOptions;
use xapi_core::client::SessionHandle;

/// The uuid and size of the first disk of the VM called `name`.
async fn disk_of(session: &SessionHandle, name: &str) -> (String, u64) {
    let vms: Vec<String> = session.call("VM.get_by_name_label", (name,)).await.unwrap();
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vms[0],)).await.unwrap();
    let vdi: String = session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap();
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    let size: u64 = session.call("VDI.get_virtual_size", (&vdi,)).await.unwrap();
    (uuid, size)
}

async fn fetch(
    session: &SessionHandle,
    uuid: &str,
    format: &str,
) -> (Vec<u8>, Option<u64>, String) {
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", uuid), ("format", format)],
            None,
        )
        .await
        .unwrap();
    let length = download.content_length;
    let task = download
        .task_id
        .clone()
        .expect("a task-id header")
        .to_string();
    let bytes = download.bytes(1 << 30).await.unwrap();
    (bytes.to_vec(), length, task)
}

#[tokio::test]
async fn raw_export_is_the_image() {
    let (sim, session) = support::demo().await;
    let (uuid, size) = disk_of(&session, "mail").await;
    let (bytes, length, task) = fetch(&session, &uuid, "raw").await;
    assert_eq!(
        length, None,
        "as xapi, no Content-Length: the body ends with the connection"
    );
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(
        bytes,
        std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap()
    );
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "success");
}

#[tokio::test]
async fn vhd_export_reads_back_with_qemu_img() {
    let (sim, session) = support::demo().await;
    let (uuid, size) = disk_of(&session, "mail").await;
    let (bytes, _, _) = fetch(&session, &uuid, "vhd").await;
    let dir = tempfile::tempdir().unwrap();
    let vhd = dir.path().join("disk.vhd");
    std::fs::write(&vhd, &bytes).unwrap();
    let vhd = vhd.to_str().unwrap();
    let info: serde_json::Value = serde_json::from_str(
        &support::run("qemu-img", &["info", "--output=json", "-f", "vpc", vhd]).await,
    )
    .unwrap();
    assert_eq!(info["format"], "vpc");
    assert!(
        (bytes.len() as u64) < size,
        "the dynamic VHD leaves the zero blocks out ({} bytes for a {size}-byte disk)",
        bytes.len()
    );
    let raw = dir.path().join("disk.raw");
    support::run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "vpc",
            "-O",
            "raw",
            vhd,
            raw.to_str().unwrap(),
        ],
    )
    .await;
    let original = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    let converted = std::fs::read(&raw).unwrap();
    // qemu may round the size to the VHD geometry; what is there must match, the rest is zero
    let common = converted.len().min(original.len());
    assert!(
        common as u64 >= size - (1 << 20),
        "qemu-img sees nearly the whole disk"
    );
    assert_eq!(converted[..common], original[..common]);
    assert!(original[common..].iter().all(|b| *b == 0));
}

#[tokio::test]
async fn tar_export_verifies_chunk_by_chunk() {
    let (sim, session) = support::demo().await;
    let (uuid, size) = disk_of(&session, "mail").await;
    let (bytes, _, _) = fetch(&session, &uuid, "tar").await;
    let mut reader = RawTarReader::open(std::io::Cursor::new(bytes), size, ReadOptions::default())
        .await
        .unwrap();
    let mut rebuilt = vec![0_u8; size as usize];
    while let Some(chunk) = reader.next_chunk().await.expect("every checksum matches") {
        let start = chunk.offset as usize;
        rebuilt[start..start + chunk.data.len()].copy_from_slice(&chunk.data);
    }
    assert_eq!(
        rebuilt,
        std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap()
    );
}

#[tokio::test]
async fn unknown_format_is_404() {
    let (_sim, session) = support::demo().await;
    let (uuid, _) = disk_of(&session, "mail").await;
    let err = session
        .get(
            "/export_raw_vdi",
            &[("vdi", &uuid), ("format", "qcow9")],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, xapi_core::Error::Http { status: 404, .. }),
        "{err}"
    );
}

/// PUT `body` to `/import_raw_vdi` with `query`; the task's status and result.
async fn upload(
    session: &SessionHandle,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> (String, String) {
    support::put_and_wait(session, "/import_raw_vdi", query, body).await
}

#[tokio::test]
async fn raw_import_writes_the_disk_and_tracks_changed_blocks() {
    let (sim, session) = support::demo().await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .unwrap();
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vms[0],)).await.unwrap();
    let vdi: String = session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap();
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    session.call::<()>("VDI.enable_cbt", (&vdi,)).await.unwrap();
    let before: String = session
        .call("VM.snapshot", (&vms[0], "before", Vec::<String>::new()))
        .await
        .unwrap();

    // a whole raw image
    let image: Vec<u8> = (0..(10_u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (status, result) = upload(
        &session,
        &[("vdi", &uuid), ("format", "raw")],
        image.clone(),
    )
    .await;
    assert_eq!(status, "success");
    assert_eq!(result, format!("<value>{vdi}</value>"));
    assert_eq!(
        std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap(),
        image
    );

    // chunked extents: only what changes
    let extents = xapi_backup::format::chunked::encode_extents([
        (3 << 20, &[7_u8; 100][..]),
        (9 << 20, &[9_u8; 10][..]),
    ]);
    let (status, _) = upload(
        &session,
        &[("vdi", &uuid), ("format", "raw"), ("chunked", "")],
        extents,
    )
    .await;
    assert_eq!(status, "success");
    let disk = std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap();
    assert_eq!(&disk[3 << 20..(3 << 20) + 100], &[7_u8; 100][..]);
    assert_eq!(disk[(3 << 20) + 100], image[(3 << 20) + 100]);

    // every block was written since the snapshot
    let after: String = session
        .call("VM.snapshot", (&vms[0], "after", Vec::<String>::new()))
        .await
        .unwrap();
    let disk_of = |vm: String| {
        let session = session.clone();
        async move {
            let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
            session
                .call::<String>("VBD.get_VDI", (&vbds[0],))
                .await
                .unwrap()
        }
    };
    let bitmap: String = session
        .call(
            "VDI.list_changed_blocks",
            (disk_of(before).await, disk_of(after).await),
        )
        .await
        .unwrap();
    let bitmap =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, bitmap).unwrap();
    assert!(
        bitmap[..20].iter().all(|b| *b == 0xff),
        "the 10 MiB written are 160 changed blocks"
    );
}

#[tokio::test]
async fn import_into_a_new_vdi_and_from_a_raw_tar() {
    let (sim, session) = support::demo().await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Shared NFS",))
        .await
        .unwrap();
    let sr_uuid: String = session.call("SR.get_uuid", (&srs[0],)).await.unwrap();
    let data: Vec<u8> = (0..(3_u32 << 20) + 512).map(|i| (i % 13) as u8).collect();
    let (status, result) = upload(
        &session,
        &[("sr_uuid", &sr_uuid), ("format", "raw")],
        data.clone(),
    )
    .await;
    assert_eq!(status, "success");
    let vdi = result
        .trim_start_matches("<value>")
        .trim_end_matches("</value>")
        .to_owned();
    let name: String = session.call("VDI.get_name_label", (&vdi,)).await.unwrap();
    assert_eq!(name, "Imported VDI");
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();

    // export it as a raw tar and import that back over a zeroed copy
    let (tar, _, _) = fetch(&session, &uuid, "tar").await;
    std::fs::write(
        sim.disk_image("primary", &uuid).unwrap(),
        vec![0_u8; data.len()],
    )
    .unwrap();
    let (status, _) = upload(&session, &[("vdi", &uuid), ("format", "tar")], tar).await;
    assert_eq!(status, "success");
    assert_eq!(
        std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap(),
        data
    );

    // a body longer than the disk fails the task
    let (status, _) = upload(
        &session,
        &[("vdi", &uuid), ("format", "raw")],
        vec![1_u8; data.len() + 1],
    )
    .await;
    assert_eq!(status, "failure");
}
