//! A VM restore point out as a standard XVA and an XVA file into the repository: the exported
//! file, read back by the project's XVA reader, holds the VM's disks byte for byte, and a disk
//! restored from the imported file compares equal to the source disk under `qemu-img compare`.

use std::process::Command;

use xapi_backup::export::backup_vm;
use xapi_backup::format::xva::{ReadOptions, XvaReader};
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::repo::{RestorePointKind, StreamRole};
use xapi_backup::xva_io::{XvaExportOptions, export_xva, import_xva};

use crate::support::{demo, disks_of_vm, new_repo, vdi_bytes, vm_named};

/// The disks of an XVA file as the project's reader gives them, in member order.
async fn disks_in(
    path: &std::path::Path,
) -> (Vec<Vec<u8>>, xapi_backup::format::xva::ova_xml::OvaXml) {
    let file = tokio::fs::File::open(path).await.unwrap();
    let mut xva = XvaReader::open(file, ReadOptions::default()).await.unwrap();
    let mut disks: Vec<Vec<u8>> = xva
        .disks()
        .iter()
        .map(|d| vec![0; usize::try_from(d.virtual_size).unwrap()])
        .collect();
    while let Some(chunk) = xva.next_chunk().await.unwrap() {
        let at = usize::try_from(chunk.offset).unwrap();
        disks[chunk.disk][at..at + chunk.data.len()].copy_from_slice(&chunk.data);
    }
    assert!(xva.mismatches().is_empty());
    (disks, xva.ova_xml().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_point_exports_as_an_xva_and_an_xva_imports_as_a_restore_point() {
    let (sim, session) = demo().await;
    let (dir, repo) = new_repo().await;
    let (mail, record) = vm_named(&session, "mail").await;
    let mut source = Vec::new();
    for vdi in disks_of_vm(&session, &mail).await {
        source.push(vdi_bytes(&sim, &session, &vdi).await);
    }
    let point = backup_vm(&session, &repo, &mail, None).await.unwrap();

    // out as an XVA file
    let path = dir.path().join("mail.xva");
    let mut file = tokio::fs::File::create(&path).await.unwrap();
    let written = export_xva(
        &repo,
        &point.manifest,
        &XvaExportOptions {
            keep_uuid: true,
            ..XvaExportOptions::default()
        },
        &mut file,
    )
    .await
    .unwrap();
    drop(file);
    assert_eq!(written, std::fs::metadata(&path).unwrap().len());
    let (mut disks, ova) = disks_in(&path).await;
    let vms = ova.vms();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].name_label, Some("mail"));
    assert_eq!(
        vms[0].uuid,
        Some(&*record.uuid),
        "the source VM's UUID, kept"
    );
    assert!(!vms[0].is_a_snapshot && !vms[0].is_a_template);
    // the reader gives disks in member (id) order; compare as sets of images
    let mut expected = source.clone();
    disks.sort();
    expected.sort();
    assert_eq!(
        disks, expected,
        "the exported disks are the VM's, byte for byte"
    );

    // the file imports as it is (what `xe vm-import filename=` sends)
    let task = session.create_task("test", "PUT /import").await.unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    session
        .put_seekable("/import", &[], Some(&task), file, written)
        .await
        .unwrap();
    let vms: Vec<xapi_core::wire::Ref<xapi_core::api::Vm>> =
        xapi_core::client::TaskHandle::new(session.clone(), task)
            .wait()
            .await
            .unwrap();
    let imported_vm = session.vm().get_record(&vms[0]).await.unwrap();
    assert_eq!(&*imported_vm.name_label, "mail");
    assert_ne!(
        imported_vm.uuid, record.uuid,
        "a plain import gives a new UUID"
    );
    let mut imported_disks = Vec::new();
    for vdi in disks_of_vm(&session, &vms[0]).await {
        imported_disks.push(vdi_bytes(&sim, &session, &vdi).await);
    }
    assert_eq!(
        imported_disks, source,
        "imported by the pool, the same disks"
    );

    // an XVA file into another repository, then restored
    let (_dir2, other) = new_repo().await;
    let file = tokio::fs::File::open(&path).await.unwrap();
    let imported = import_xva(&other, file, Some("imported")).await.unwrap();
    let manifest = &imported.manifest;
    assert_eq!(manifest.kind, RestorePointKind::Vm);
    assert_eq!(manifest.subject, *record.uuid);
    assert_eq!(manifest.vm.as_ref().unwrap().name_label, "mail");
    assert_eq!(
        manifest
            .streams
            .iter()
            .filter(|s| s.role == StreamRole::Disk)
            .count(),
        source.len()
    );
    assert!(other.verify_restore_point(manifest).await.unwrap().is_ok());
    assert_eq!(other.list(RestorePointKind::Vm).await.unwrap().len(), 1);

    let restored = restore_vm(&session, &other, manifest, &RestoreOptions::default())
        .await
        .unwrap();
    let source_disks = disks_of_vm(&session, &mail).await;
    let restored_disks = disks_of_vm(&session, &restored).await;
    assert_eq!(restored_disks.len(), source_disks.len());
    for (from, to) in source_disks.iter().zip(&restored_disks) {
        let a = sim
            .disk_image("primary", &session.vdi().get_uuid(from).await.unwrap())
            .unwrap();
        let b = sim
            .disk_image("primary", &session.vdi().get_uuid(to).await.unwrap())
            .unwrap();
        let out = Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "raw"])
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap_or_else(|e| panic!("qemu-img is required (install qemu-utils): {e}"));
        assert!(
            out.status.success(),
            "qemu-img compare {a:?} {b:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // a truncated XVA is refused and lists nothing
    let bytes = std::fs::read(&path).unwrap();
    let cut = bytes[..bytes.len() / 2].to_vec();
    let (_dir3, third) = new_repo().await;
    assert!(
        import_xva(&third, std::io::Cursor::new(cut), None)
            .await
            .is_err()
    );
    assert!(third.list(RestorePointKind::Vm).await.unwrap().is_empty());
}
