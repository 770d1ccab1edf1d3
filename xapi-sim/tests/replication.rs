//! `SR.enable_database_replication` over the API: the metadata VDI's image, read back with
//! `xapi_dr::metadata`, holds the same persistent tables as `GET /pool/xmldbdump`.

use std::collections::BTreeMap;

use xapi_core::client::{Client, Protocol, Secret, Session};
use xapi_dr::metadata::{Database, read_db_xml, read_redo_log};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

#[derive(Debug, serde::Deserialize)]
struct VdiSummary {
    uuid: String,
    #[serde(rename = "type")]
    vdi_type: String,
    name_label: String,
}

async fn demo() -> (SimHandle, Session) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap();
    let session = client
        .login_with_password(
            "root",
            Secret::new(DEFAULT_PASSWORD),
            "1.0",
            "replication tests",
        )
        .await
        .unwrap();
    (sim, session)
}

async fn dump(session: &Session) -> Database {
    let bytes = session
        .get("/pool/xmldbdump", &[], None)
        .await
        .unwrap()
        .bytes(64 << 20)
        .await
        .unwrap();
    read_db_xml(&bytes[..]).unwrap()
}

fn persistent_tables(mut db: Database) -> Vec<(String, xapi_dr::metadata::Table)> {
    db.recompute_relations();
    db.tables()
        .map(|(name, table)| (name.to_owned(), table.clone()))
        .collect()
}

#[tokio::test]
async fn metadata_vdi_holds_the_pool_database() {
    let (sim, session) = demo().await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    let sr = &srs[0];
    session
        .call::<()>("SR.assert_supports_database_replication", (sr,))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (sr,))
        .await
        .unwrap();

    // a series of changes after the first full database
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("ldap",))
        .await
        .unwrap();
    session
        .call::<()>("VM.set_name_description", (&vms[0], "replicated change"))
        .await
        .unwrap();
    let halted_vms: Vec<String> = session
        .call("VM.get_by_name_label", ("backup-proxy",))
        .await
        .unwrap();
    let clone: String = session
        .call("VM.clone", (&halted_vms[0], "backup-proxy clone"))
        .await
        .unwrap();
    session
        .call::<()>("VM.add_to_other_config", (&clone, "dr", "yes"))
        .await
        .unwrap();
    let halted: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .unwrap();
    session
        .call::<()>("VM.destroy", (&halted[0],))
        .await
        .unwrap();

    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    let metadata: Vec<&VdiSummary> = vdis.values().filter(|v| v.vdi_type == "metadata").collect();
    assert_eq!(metadata.len(), 1);
    assert_eq!(metadata[0].name_label, "Metadata for DR");
    let image_path = sim.disk_image("primary", &metadata[0].uuid).unwrap();
    let image = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert!(image.deltas_applied > 0);
    assert_eq!(
        persistent_tables(image.database),
        persistent_tables(dump(&session).await)
    );

    // a sync writes a fresh full database into the other half
    session.call::<()>("pool.sync_database", ()).await.unwrap();
    let synced = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert_ne!(synced.validity, image.validity);
    assert_eq!(synced.deltas_applied, 0);
    assert_eq!(
        persistent_tables(synced.database),
        persistent_tables(dump(&session).await)
    );

    session
        .call::<()>("SR.disable_database_replication", (sr,))
        .await
        .unwrap();
    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    assert!(
        vdis.values().all(|v| v.vdi_type != "metadata"),
        "the metadata VDI is destroyed"
    );
}

#[derive(Debug, serde::Deserialize)]
struct VmUuid {
    uuid: String,
}

#[tokio::test]
async fn open_database_reads_the_replicated_pool() {
    let (sim, session) = demo().await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("mail",))
        .await
        .unwrap();
    session
        .call::<()>(
            "VM.set_name_description",
            (&vms[0], "seen through the metadata VDI"),
        )
        .await
        .unwrap();

    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    let (metadata_vdi, _) = vdis.iter().find(|(_, v)| v.vdi_type == "metadata").unwrap();
    let (user_vdi, _) = vdis.iter().find(|(_, v)| v.vdi_type == "user").unwrap();
    match session
        .call::<String>("VDI.open_database", (user_vdi,))
        .await
    {
        Err(xapi_core::Error::Api(f)) => assert_eq!(f.code.as_str(), "VDI_INCOMPATIBLE_TYPE"),
        other => panic!("a user VDI holds no database: {other:?}"),
    }
    let foreign_ref: String = session
        .call("VDI.open_database", (metadata_vdi,))
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap();
    let foreign = client.attach_session(xapi_core::wire::Ref::new(foreign_ref));

    let live: BTreeMap<String, VmUuid> = session.call("VM.get_all_records", ()).await.unwrap();
    let seen: BTreeMap<String, VmUuid> = foreign.call("VM.get_all_records", ()).await.unwrap();
    let uuids = |m: &BTreeMap<String, VmUuid>| {
        m.values()
            .map(|v| v.uuid.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(uuids(&seen), uuids(&live));
    let description: String = foreign
        .call("VM.get_name_description", (&vms[0],))
        .await
        .unwrap();
    assert_eq!(description, "seen through the metadata VDI");

    let pools: Vec<String> = session.call("pool.get_all", ()).await.unwrap();
    let pool_uuid: String = session.call("pool.get_uuid", (&pools[0],)).await.unwrap();
    let cached: String = session
        .call("VDI.read_database_pool_uuid", (metadata_vdi,))
        .await
        .unwrap();
    assert_eq!(cached, pool_uuid);

    match foreign
        .call::<()>("VM.set_name_description", (&vms[0], "no"))
        .await
    {
        Err(xapi_core::Error::Api(f)) => assert_eq!(f.code.as_str(), "RBAC_PERMISSION_DENIED"),
        other => panic!("the foreign session is read-only: {other:?}"),
    }
    foreign.call::<()>("session.logout", ()).await.unwrap();
}
