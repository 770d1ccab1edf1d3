//! Restore options: into another SR, register only, the replaced VM's disks removed or kept
//! after an overwrite, a failed restore removing exactly what it created; and deep verify.

use xapi_backup::EngineError;
use xapi_backup::deep_verify::{DeepVerifyOptions, deep_verify};
use xapi_backup::export::backup_vm;
use xapi_backup::import::{RegisterOnly, RestoreOptions, restore_vm_outcome};
use xapi_backup::repo::Manifest;
use xapi_backup::xva_io::read_ova;
use xapi_core::api::ErrorCode;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::support::{demo, disks_of_vm, local_sr, new_repo, vdi_bytes, vm_named};

async fn uuids(session: &SessionHandle, vdis: &[Ref<xapi_core::api::Vdi>]) -> Vec<String> {
    let mut out = Vec::new();
    for vdi in vdis {
        out.push(session.vdi().get_uuid(vdi).await.unwrap().to_string());
    }
    out
}

async fn vdi_exists(session: &SessionHandle, uuid: &str) -> bool {
    session.vdi().get_by_uuid(uuid).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_goes_to_the_sr_asked_for_and_a_deep_verify_restores_then_removes() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let (ldap, _) = vm_named(&session, "ldap").await;
    let point = backup_vm(&session, &repo, &ldap, None).await.unwrap();
    let local = local_sr(&session).await;
    let outcome = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            sr: Some(local.clone()),
            name_label: Some("ldap on local".into()),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let restored = disks_of_vm(&session, &outcome.vm).await;
    let source = disks_of_vm(&session, &ldap).await;
    assert_eq!(restored.len(), source.len());
    for (to, from) in restored.iter().zip(&source) {
        assert_eq!(
            session.vdi().get_sr(to).await.unwrap(),
            local,
            "on the SR asked for"
        );
        assert_eq!(
            vdi_bytes(&sim, &session, to).await,
            vdi_bytes(&sim, &session, from).await
        );
    }

    let vms_before = session.vm().get_all().await.unwrap().len();
    let vdis_before = session.vdi().get_all().await.unwrap().len();
    let report = deep_verify(
        &session,
        &repo,
        &point.manifest,
        &DeepVerifyOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.repository.chunks_read > 0);
    let whats: Vec<&str> = report.checks.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(whats.len(), 3, "{whats:?}");
    assert!(whats[2].contains("paused"));
    assert_eq!(
        report.removed.len(),
        1 + source.len(),
        "{:?}",
        report.removed
    );
    assert!(report.left.is_empty());
    assert_eq!(session.vm().get_all().await.unwrap().len(), vms_before);
    assert_eq!(session.vdi().get_all().await.unwrap().len(), vdis_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_overwrite_the_replaced_disks_are_removed_or_kept_when_asked() {
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let (ldap, _) = vm_named(&session, "ldap").await;
    let point = backup_vm(&session, &repo, &ldap, None).await.unwrap();
    session.vm().hard_shutdown(&ldap).await.unwrap();
    let old = uuids(&session, &disks_of_vm(&session, &ldap).await).await;

    let kept = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            overwrite: true,
            keep_replaced_disks: true,
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(kept.replaced_disks_removed.is_empty());
    let expected: Vec<String> = old.iter().map(|u| format!("VDI {u}")).collect();
    assert_eq!(kept.replaced_disks_kept, expected);
    for uuid in &old {
        assert!(vdi_exists(&session, uuid).await, "kept: {uuid}");
    }

    // the restored VM is replaced in turn; its disks go
    let second_old = uuids(&session, &disks_of_vm(&session, &kept.vm).await).await;
    let removed = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            overwrite: true,
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(removed.uuid, kept.uuid, "the same VM again");
    let expected: Vec<String> = second_old.iter().map(|u| format!("VDI {u}")).collect();
    assert_eq!(removed.replaced_disks_removed, expected);
    assert!(removed.replaced_disks_kept.is_empty());
    for uuid in &second_old {
        assert!(!vdi_exists(&session, uuid).await, "removed: {uuid}");
    }
    assert!(!disks_of_vm(&session, &removed.vm).await.is_empty());
}

/// `(VDI uuid in the restore point, userdevice)` for each disk of a VM restore point.
async fn point_disks(
    repo: &xapi_backup::repo::Repository,
    manifest: &Manifest,
) -> Vec<(String, String)> {
    let ova = read_ova(repo, manifest).await.unwrap();
    let vdis = ova.disks().unwrap();
    let mut out = Vec::new();
    for vbd in ova.vbds() {
        if let Some(vdi) = vdis.iter().find(|d| Some(d.id) == vbd.vdi) {
            out.push((
                vdi.uuid.unwrap().to_owned(),
                vbd.userdevice.unwrap().to_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_only_attaches_the_disks_left_in_the_pool() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let (ldap, record) = vm_named(&session, "ldap").await;
    let point = backup_vm(&session, &repo, &ldap, None).await.unwrap();
    session.vm().hard_shutdown(&ldap).await.unwrap();
    // the VM record is lost; its disks stay (VM.destroy keeps VDIs)
    let disks = disks_of_vm(&session, &ldap).await;
    let mut by_device = Vec::new();
    for vbd in &session.vm().get_record(&ldap).await.unwrap().vbds {
        let vbd = session.vbd().get_record(vbd).await.unwrap();
        if disks.contains(&vbd.vdi) {
            by_device.push((
                vbd.userdevice.to_string(),
                session.vdi().get_uuid(&vbd.vdi).await.unwrap().to_string(),
            ));
        }
    }
    let mut images = Vec::new();
    for vdi in &disks {
        images.push(vdi_bytes(&sim, &session, vdi).await);
    }
    let vdis_before = session.vdi().get_all().await.unwrap().len();
    session.vm().destroy(&ldap).await.unwrap();

    let map: Vec<(String, String)> = point_disks(&repo, &point.manifest)
        .await
        .into_iter()
        .map(|(from, device)| {
            let to = by_device
                .iter()
                .find(|(d, _)| *d == device)
                .unwrap()
                .1
                .clone();
            (from, to)
        })
        .collect();
    assert_eq!(map.len(), disks.len());
    let outcome = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            overwrite: true,
            register_only: Some(RegisterOnly { disks: map }),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.uuid, *record.uuid, "registered with its UUID");
    assert_eq!(
        session.vdi().get_all().await.unwrap().len(),
        vdis_before,
        "no disk created"
    );
    let attached = disks_of_vm(&session, &outcome.vm).await;
    assert_eq!(
        uuids(&session, &attached).await,
        uuids(&session, &disks).await,
        "the disks left in the pool, as they are"
    );
    for (vdi, image) in attached.iter().zip(&images) {
        assert_eq!(&vdi_bytes(&sim, &session, vdi).await, image);
    }

    // a disk that is not in the pool fails the registration and nothing is left
    let err = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            register_only: Some(RegisterOnly::default()),
            name_label: Some("ldap nowhere".into()),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::RestoreFailed { .. }), "{err}");
    assert!(
        session
            .vm()
            .get_by_name_label("ldap nowhere")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_removes_what_it_created_and_says_what() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let (ldap, _) = vm_named(&session, "ldap").await;
    let point = backup_vm(&session, &repo, &ldap, None).await.unwrap();
    let vms_before = session.vm().get_all().await.unwrap().len();
    let vdis_before = session.vdi().get_all().await.unwrap().len();

    // the VM is restored but does not start: it goes with its new disks
    sim.faults()
        .fail_call("VM.start", 1, ErrorCode::HostNotEnoughFreeMemory);
    let err = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            name_label: Some("ldap (no room)".into()),
            start: true,
            ..RestoreOptions::default()
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
    assert!(
        cause.to_string().contains("HOST_NOT_ENOUGH_FREE_MEMORY"),
        "{cause}"
    );
    assert!(left.is_empty(), "{left:?}");
    let disks = disks_of_vm(&session, &ldap).await.len();
    assert_eq!(removed.len(), 1 + disks, "{removed:?}");
    assert!(removed[0].starts_with("VM "));
    for entry in &removed[1..] {
        let uuid = entry.strip_prefix("VDI ").unwrap();
        assert!(!vdi_exists(&session, uuid).await);
    }
    assert_eq!(session.vm().get_all().await.unwrap().len(), vms_before);
    assert_eq!(session.vdi().get_all().await.unwrap().len(), vdis_before);

    // a full SR: xapi's import fails and cleans up after itself; nothing is left
    let local = local_sr(&session).await;
    sim.faults()
        .fill_sr(session.sr().get_uuid(&local).await.unwrap().to_string());
    let err = restore_vm_outcome(
        &session,
        &repo,
        &point.manifest,
        &RestoreOptions {
            sr: Some(local),
            name_label: Some("ldap (full)".into()),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::RestoreFailed { .. }), "{err}");
    assert_eq!(session.vm().get_all().await.unwrap().len(), vms_before);
    assert_eq!(session.vdi().get_all().await.unwrap().len(), vdis_before);
}
