//! Configuring metadata replication on the simulator's demo primary, as XenCenter's dialog
//! does: candidates, enable on two SRs, move to one, and the limits.

use xapi_core::client::{Client, Password, SessionHandle};
use xapi_dr::Error;
use xapi_dr::configure::{MAX_REPLICATION_SRS, replication_candidates, set_replication};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

async fn primary() -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .expect("the demo starts");
    let url = sim
        .pool("primary")
        .expect("the demo has a primary")
        .url
        .clone();
    let session = Client::builder(&url)
        .build()
        .expect("a client")
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-dr tests",
        )
        .await
        .expect("root logs in");
    (sim, session)
}

#[tokio::test]
async fn candidates_are_the_lvm_over_iscsi_srs_and_replication_moves_between_them() {
    let (_sim, session) = primary().await;
    let candidates = replication_candidates(&session).await.unwrap();
    let names: Vec<&str> = candidates.iter().map(|c| c.name_label.as_str()).collect();
    assert_eq!(
        names,
        ["Replicated iSCSI (DR 2)", "Replicated iSCSI (DR)"],
        "NFS, local and ISO SRs cannot hold the database; sorted by name"
    );
    assert!(
        candidates
            .iter()
            .all(|c| c.sr_type == "lvmoiscsi" && !c.enabled)
    );
    let uuids: Vec<&str> = candidates.iter().map(|c| c.uuid.as_str()).collect();

    let change = set_replication(&session, &uuids).await.unwrap();
    assert_eq!(change.enabled.len(), 2);
    assert!(change.disabled.is_empty());
    let now = replication_candidates(&session).await.unwrap();
    assert!(now.iter().all(|c| c.enabled && c.latest), "{now:?}");

    // Keep the first only: the second is disabled, the first left as it is.
    let change = set_replication(&session, &uuids[..1]).await.unwrap();
    assert_eq!(change.disabled, [uuids[1]]);
    assert_eq!(change.unchanged, [uuids[0]]);
    assert!(change.enabled.is_empty());
    let now = replication_candidates(&session).await.unwrap();
    assert_eq!(
        now.iter().map(|c| c.enabled).collect::<Vec<_>>(),
        [true, false]
    );
}

#[tokio::test]
async fn more_than_eight_srs_or_a_non_candidate_are_refused_before_any_call() {
    let (_sim, session) = primary().await;
    let many: Vec<String> = (0..=MAX_REPLICATION_SRS)
        .map(|i| format!("sr-{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = set_replication(&session, &many).await.unwrap_err();
    assert!(
        matches!(err, Error::TooManyReplicationSrs { asked: 9, max: 8 }),
        "{err}"
    );
    assert!(err.to_string().contains("at most 8"));

    let nfs: Vec<String> = session
        .call("SR.get_by_name_label", ("Shared NFS",))
        .await
        .unwrap();
    let nfs_uuid: String = session.call("SR.get_uuid", (&nfs[0],)).await.unwrap();
    let err = set_replication(&session, &[nfs_uuid.as_str()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAReplicationCandidate { sr_uuid } if *sr_uuid == nfs_uuid),
        "{err}"
    );
    let candidates = replication_candidates(&session).await.unwrap();
    assert!(candidates.iter().all(|c| !c.enabled), "nothing was changed");
}
