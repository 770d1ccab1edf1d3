//! One VDI into the repository through `/export_raw_vdi` and back through `/import_raw_vdi`:
//! into a new VDI on a chosen SR and over an existing one, byte for byte.

use xapi_backup::EngineError;
use xapi_backup::raw_disk::{DiskTarget, WireFormat, backup_vdi, restore_vdi};
use xapi_backup::repo::{RestorePointKind, StreamRole};

use crate::support::{demo, disks_of_vm, local_sr, new_repo, vdi_bytes, vm_named};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_goes_into_the_repository_and_back_byte_for_byte() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let (mail, _) = vm_named(&session, "mail").await;
    let disks = disks_of_vm(&session, &mail).await;
    let (a, b) = (&disks[0], &disks[1]);
    let a_bytes = vdi_bytes(&sim, &session, a).await;
    let b_bytes = vdi_bytes(&sim, &session, b).await;
    assert!(a_bytes.iter().any(|&x| x != 0), "the disk holds data");

    let point_a = backup_vdi(&session, &repo, a, Some("disks"), WireFormat::Vhd)
        .await
        .unwrap();
    let point_b = backup_vdi(&session, &repo, b, Some("disks"), WireFormat::Raw)
        .await
        .unwrap();
    // the two formats store the same chunks
    let a_raw = backup_vdi(&session, &repo, a, None, WireFormat::Raw)
        .await
        .unwrap();
    assert_eq!(a_raw.manifest.streams[0].new_chunks, 0, "deduplicated");
    assert_eq!(
        a_raw.manifest.streams[0].stored_chunks,
        point_a.manifest.streams[0].stored_chunks
    );
    assert!(
        point_a.bytes_read < a_raw.bytes_read,
        "vhd leaves unallocated blocks off the wire: {} vs {}",
        point_a.bytes_read,
        a_raw.bytes_read
    );
    let manifest = &point_a.manifest;
    assert_eq!(manifest.kind, RestorePointKind::Disk);
    let a_uuid = session.vdi().get_uuid(a).await.unwrap();
    assert_eq!(manifest.subject, *a_uuid);
    let stream = &manifest.streams[0];
    assert_eq!(stream.role, StreamRole::Disk);
    assert_eq!(stream.size, a_bytes.len() as u64);
    let zero_chunks = a_bytes
        .chunks(1 << 20)
        .filter(|c| c.iter().all(|&x| x == 0))
        .count() as u64;
    assert_eq!(
        stream.zero_chunks, zero_chunks,
        "zero chunks are not stored"
    );
    assert_eq!(
        stream.stored_chunks + stream.zero_chunks,
        a_bytes.len().div_ceil(1 << 20) as u64
    );
    assert_eq!(repo.list(RestorePointKind::Disk).await.unwrap().len(), 3);
    assert!(repo.list(RestorePointKind::Vm).await.unwrap().is_empty());

    // into a new VDI on another SR
    let local = local_sr(&session).await;
    let new = restore_vdi(
        &session,
        &repo,
        manifest,
        &DiskTarget::New {
            sr: local.clone(),
            name_label: Some("restored disk".into()),
        },
    )
    .await
    .unwrap();
    let record = session.vdi().get_record(&new).await.unwrap();
    assert_eq!(record.sr, local);
    assert_eq!(&*record.name_label, "restored disk");
    assert_eq!(vdi_bytes(&sim, &session, &new).await, a_bytes);

    // over an existing VDI: the other disk, then the first again (its zeros overwrite)
    if b_bytes.len() <= a_bytes.len() {
        restore_vdi(
            &session,
            &repo,
            &point_b.manifest,
            &DiskTarget::Existing(new.clone()),
        )
        .await
        .unwrap();
        let mixed = vdi_bytes(&sim, &session, &new).await;
        assert_eq!(mixed[..b_bytes.len()], b_bytes[..]);
    }
    restore_vdi(
        &session,
        &repo,
        manifest,
        &DiskTarget::Existing(new.clone()),
    )
    .await
    .unwrap();
    assert_eq!(vdi_bytes(&sim, &session, &new).await, a_bytes);

    // a VDI too small is refused before anything is sent
    if b_bytes.len() < a_bytes.len() {
        let err = restore_vdi(&session, &repo, manifest, &DiskTarget::Existing(b.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Refused { .. }), "{err}");
        assert_eq!(
            vdi_bytes(&sim, &session, b).await,
            b_bytes,
            "left as it was"
        );
    }
}

/// Every file under `dir` whose path has a `chunks` component.
fn chunk_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            chunk_files(&path, out);
        } else if path.components().any(|c| c.as_os_str() == "chunks") {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_disk_restore_removes_the_vdi_it_created_and_says_so() {
    let (_sim, session) = demo().await;
    let (dir, repo) = new_repo().await;
    let (mail, _) = vm_named(&session, "mail").await;
    let disk = disks_of_vm(&session, &mail).await.remove(0);
    let point = backup_vdi(&session, &repo, &disk, None, WireFormat::default())
        .await
        .unwrap();
    let mut chunks = Vec::new();
    chunk_files(dir.path(), &mut chunks);
    assert!(!chunks.is_empty());
    for chunk in &chunks {
        std::fs::remove_file(chunk).unwrap();
    }
    let vdis_before = session.vdi().get_all().await.unwrap().len();
    let err = restore_vdi(
        &session,
        &repo,
        &point.manifest,
        &DiskTarget::New {
            sr: local_sr(&session).await,
            name_label: Some("never".into()),
        },
    )
    .await
    .unwrap_err();
    let EngineError::RestoreFailed {
        cause,
        removed,
        left,
    } = &err
    else {
        panic!("{err}");
    };
    assert!(matches!(**cause, EngineError::Backup { .. }), "{cause}");
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].starts_with("VDI "));
    assert!(left.is_empty());
    assert_eq!(session.vdi().get_all().await.unwrap().len(), vdis_before);
    assert!(
        session
            .vdi()
            .get_by_name_label("never")
            .await
            .unwrap()
            .is_empty()
    );
}
