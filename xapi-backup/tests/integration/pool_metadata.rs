//! The pool database into the repository (`GET /pool/xmldbdump`, parsed by xapi-dr's reader
//! before it is stored) and back (`PUT /pool/xmldbdump`, dry run first).

use xapi_backup::EngineError;
use xapi_backup::pool_metadata::{
    DUMP_KEY, PoolRestoreOptions, backup_pool_metadata, check_dump, restore_pool_metadata,
};
use xapi_backup::repo::{RestorePointInfo, RestorePointKind, StreamRole, StreamSpec};
use xapi_core::api::ErrorCode;

use crate::support::{demo, login, new_repo, vm_named};

/// A pool-metadata restore point holding `bytes` as its dump, whatever they are.
async fn point_with(
    repo: &xapi_backup::repo::Repository,
    bytes: &[u8],
) -> xapi_backup::repo::Manifest {
    let mut point = repo
        .begin(RestorePointInfo::new(
            RestorePointKind::PoolMetadata,
            "some-pool",
        ))
        .await
        .unwrap();
    let spec = StreamSpec {
        key: DUMP_KEY.into(),
        role: StreamRole::PoolDatabase,
        size: bytes.len() as u64,
        vdi_uuid: None,
        name: None,
    };
    point.write_stream(spec, bytes).await.unwrap();
    point.commit().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_database_is_backed_up_checked_and_restored_after_a_dry_run() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let pool = session.pool().get_all().await.unwrap().remove(0);
    let pool_uuid = session.pool().get_uuid(&pool).await.unwrap();

    let backup = backup_pool_metadata(&session, &repo, Some("meta"))
        .await
        .unwrap();
    assert_eq!(backup.manifest.kind, RestorePointKind::PoolMetadata);
    assert_eq!(backup.manifest.subject, *pool_uuid);
    assert_eq!(backup.dump.pool_uuid, *pool_uuid);
    assert!(backup.dump.vm_rows > 20, "{:?}", backup.dump);
    assert_eq!(backup.dump.schema_version, "5.909");
    assert_eq!(
        repo.list(RestorePointKind::PoolMetadata)
            .await
            .unwrap()
            .len(),
        1
    );

    // a change after the backup, which the restore undoes
    let (mail, _) = vm_named(&session, "mail").await;
    let mail_uuid = session.vm().get_uuid(&mail).await.unwrap();
    session
        .vm()
        .set_name_label(&mail, "renamed after the backup")
        .await
        .unwrap();

    let dry = restore_pool_metadata(
        &session,
        &repo,
        &backup.manifest,
        PoolRestoreOptions { dry_run_only: true },
    )
    .await
    .unwrap();
    assert!(dry.dry_run_passed && !dry.restored);
    assert_eq!(
        &*session.vm().get_name_label(&mail).await.unwrap(),
        "renamed after the backup",
        "a dry run changes nothing"
    );

    let done = restore_pool_metadata(
        &session,
        &repo,
        &backup.manifest,
        PoolRestoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(done.dry_run_passed && done.restored);
    // xapi restarted: sessions are gone (this one logs in again by itself); a new one
    let session = login(&sim).await;
    let mail = session.vm().get_by_uuid(&mail_uuid).await.unwrap();
    assert_eq!(&*session.vm().get_name_label(&mail).await.unwrap(), "mail");
    let pool = session.pool().get_all().await.unwrap().remove(0);
    assert_eq!(session.pool().get_uuid(&pool).await.unwrap(), pool_uuid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_that_does_not_parse_or_does_not_fit_is_refused() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    assert!(matches!(
        check_dump(b"<database><manifest>", "test"),
        Err(EngineError::InvalidPoolDump { .. })
    ));
    let garbage = point_with(&repo, b"this is not a database").await;
    let err = restore_pool_metadata(&session, &repo, &garbage, PoolRestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidPoolDump { .. }), "{err}");

    // another schema version: xapi's dry run refuses it and nothing is restored
    let good = backup_pool_metadata(&session, &repo, None).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(
        &mut repo.read_stream(&good.manifest, DUMP_KEY).await.unwrap(),
        &mut bytes,
    )
    .await
    .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let newer = text.replacen("\"909\"", "\"999\"", 1);
    assert_ne!(newer, text, "the dump names its schema version");
    let newer = point_with(&repo, newer.as_bytes()).await;
    let err = restore_pool_metadata(&session, &repo, &newer, PoolRestoreOptions::default())
        .await
        .unwrap_err();
    match &err {
        EngineError::Xapi { source, .. } => match &**source {
            xapi_core::Error::Api(f) => assert_eq!(f.code, ErrorCode::RestoreIncompatibleVersion),
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
    // the session still works: nothing was restored
    session.pool().get_all().await.unwrap();
    drop(sim);
}
