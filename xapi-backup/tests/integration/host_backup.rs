//! A host backup (`GET /host_backup`) into the repository and back (`PUT /host_restore`).

use xapi_backup::EngineError;
use xapi_backup::host_backup::{ARCHIVE_KEY, backup_host, restore_host};
use xapi_backup::repo::{RestorePointInfo, RestorePointKind, StreamRole, StreamSpec};
use xapi_core::api::ErrorCode;

use crate::support::{demo, new_repo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_backed_up_and_restored_and_a_bad_archive_fails() {
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let pool = session.pool().get_all().await.unwrap().remove(0);
    let master = session.pool().get_master(&pool).await.unwrap();
    let master_uuid = session.host().get_uuid(&master).await.unwrap();

    let backup = backup_host(&session, &repo, Some("hosts")).await.unwrap();
    assert_eq!(backup.manifest.kind, RestorePointKind::Host);
    assert_eq!(backup.manifest.subject, *master_uuid);
    assert_eq!(backup.files, 4, "inventory, pool.conf, hostname, state.db");
    let stream = backup.manifest.stream(ARCHIVE_KEY).unwrap();
    assert_eq!(stream.size, backup.bytes);
    assert_eq!(repo.list(RestorePointKind::Host).await.unwrap().len(), 1);

    restore_host(&session, &repo, &backup.manifest)
        .await
        .unwrap();

    // an archive the restore script cannot use fails the task
    let mut point = repo
        .begin(RestorePointInfo::new(RestorePointKind::Host, &*master_uuid))
        .await
        .unwrap();
    let junk = b"not a gzip'd tar";
    point
        .write_stream(
            StreamSpec {
                key: ARCHIVE_KEY.into(),
                role: StreamRole::HostBackup,
                size: junk.len() as u64,
                vdi_uuid: None,
                name: None,
            },
            &junk[..],
        )
        .await
        .unwrap();
    let junk = point.commit().await.unwrap();
    let err = restore_host(&session, &repo, &junk).await.unwrap_err();
    match &err {
        EngineError::Xapi { source, .. } => match &**source {
            xapi_core::Error::Api(f) => assert_eq!(f.code, ErrorCode::RestoreScriptFailed),
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
    // a restore point of another kind is refused
    let err = restore_host(&session, &repo, &junk_kind(&repo).await)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Refused { .. }), "{err}");
}

async fn junk_kind(repo: &xapi_backup::repo::Repository) -> xapi_backup::repo::Manifest {
    let point = repo
        .begin(RestorePointInfo::new(RestorePointKind::Disk, "vdi"))
        .await
        .unwrap();
    point.commit().await.unwrap()
}
