//! Setup shared by the disaster-recovery tests: the demo with replication on, the mirrors
//! introduced on the DR pool, a session on a metadata VDI, record comparisons.

use std::collections::BTreeMap;

use xapi_core::client::{Client, Protocol, SessionHandle};
use xapi_sim::{DEMO_MIRROR_DEVICE_CONFIG, DEMO_REPLICATED_SRS, Scenario, SimConfig, SimHandle};

/// A VDI as these tests read it.
#[derive(Debug, serde::Deserialize)]
pub struct VdiSummary {
    /// Its UUID.
    pub uuid: String,
    /// Its type.
    #[serde(rename = "type")]
    pub vdi_type: String,
    /// Whether it holds the newest database of its pool.
    pub metadata_latest: bool,
    /// Its SR.
    #[serde(rename = "SR")]
    pub sr: String,
}

/// The demo with a fast clock (start delays cost no real time) and database replication on
/// for the primary's SRs called `replicated`: the simulator and root sessions on the primary
/// and on the DR pool.
pub async fn demo(replicated: &[&str]) -> (SimHandle, SessionHandle, SessionHandle) {
    let (sim, primary) = super::start_and_login(SimConfig {
        clock_speed: 10_000.0,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await;
    let dr = super::login_to(&sim, &sim.pool("dr").unwrap().url).await;
    for name in replicated {
        let sr = sr_named(&primary, name).await;
        primary
            .call::<()>("SR.enable_database_replication", (&sr,))
            .await
            .unwrap();
    }
    (sim, primary, dr)
}

/// Both of the demo's replicated SRs.
pub fn both() -> [&'static str; 2] {
    DEMO_REPLICATED_SRS
}

/// The SR called `name`.
pub async fn sr_named(session: &SessionHandle, name: &str) -> String {
    let srs: Vec<String> = session.call("SR.get_by_name_label", (name,)).await.unwrap();
    srs.into_iter()
        .next()
        .unwrap_or_else(|| panic!("an SR called {name}"))
}

/// The UUIDs of the primary's SRs called `names`.
pub async fn sr_uuids(primary: &SessionHandle, names: &[&str]) -> Vec<String> {
    let mut uuids = Vec::new();
    for name in names {
        let sr = sr_named(primary, name).await;
        uuids.push(primary.call("SR.get_uuid", (&sr,)).await.unwrap());
    }
    uuids
}

/// The demo's mirror device config as a map.
pub fn mirror_config() -> BTreeMap<&'static str, &'static str> {
    DEMO_MIRROR_DEVICE_CONFIG.iter().copied().collect()
}

/// `DR_task.create` on the DR pool for the mirrors of the SRs `sr_uuids`.
pub async fn create_dr_task(
    dr: &SessionHandle,
    sr_uuids: &[String],
) -> Result<String, xapi_core::Error> {
    dr.call("DR_task.create", ("lvmoiscsi", mirror_config(), sr_uuids))
        .await
}

/// The metadata VDIs `session`'s pool sees, by reference.
pub async fn metadata_vdis(session: &SessionHandle) -> BTreeMap<String, VdiSummary> {
    let vdis: BTreeMap<String, VdiSummary> = session.call("VDI.get_all_records", ()).await.unwrap();
    vdis.into_iter()
        .filter(|(_, v)| v.vdi_type == "metadata")
        .collect()
}

/// The metadata VDI on the SR with `sr_uuid` as `session`'s pool sees it.
pub async fn metadata_vdi_on(session: &SessionHandle, sr_uuid: &str) -> (String, VdiSummary) {
    let sr: String = session.call("SR.get_by_uuid", (sr_uuid,)).await.unwrap();
    metadata_vdis(session)
        .await
        .into_iter()
        .find(|(_, v)| v.sr == sr)
        .expect("a metadata VDI on the SR")
}

/// A read-only session on the database in the metadata VDI `vdi` of the pool at `url`.
pub async fn open_metadata(session: &SessionHandle, url: &str, vdi: &str) -> SessionHandle {
    let foreign: String = session.call("VDI.open_database", (vdi,)).await.unwrap();
    Client::builder(url)
        .protocol(Protocol::JsonRpc)
        .build()
        .unwrap()
        .attach_session(xapi_core::wire::Ref::new(foreign))
}

/// The demo with replication on for the first replicated SR, that SR introduced on the DR
/// pool, and a session on its metadata VDI there: the simulator, the primary, the DR pool, the
/// foreign session and the DR task.
pub async fn failover_ready() -> (
    SimHandle,
    SessionHandle,
    SessionHandle,
    SessionHandle,
    String,
) {
    let first = both()[0];
    let (sim, primary, dr) = demo(&[first]).await;
    let uuids = sr_uuids(&primary, &[first]).await;
    let task = create_dr_task(&dr, &uuids).await.unwrap();
    let (vdi, _) = metadata_vdi_on(&dr, &uuids[0]).await;
    let foreign = open_metadata(&dr, &sim.pool("dr").unwrap().url, &vdi).await;
    (sim, primary, dr, foreign, task)
}

/// Every record of `session`'s pool by class (`get_all_records`), except the classes whose
/// records change by themselves (task, session, message, event and the `*_metrics`), for
/// before/after comparisons.
pub async fn records(session: &SessionHandle) -> BTreeMap<String, serde_json::Value> {
    let mut all = BTreeMap::new();
    for class in xapi_core::api::meta::CLASSES {
        let volatile = matches!(class.name, "task" | "session" | "message" | "event")
            || class.name.ends_with("_metrics");
        if volatile || class.message("get_all_records").is_none() {
            continue;
        }
        if let Ok(records) = session
            .call::<serde_json::Value>(&format!("{}.get_all_records", class.name), ())
            .await
        {
            all.insert(class.name.to_owned(), records);
        }
    }
    all
}

/// The reference of the target pool's session, for `session_to`.
pub fn to(session: &SessionHandle) -> String {
    session.reference().to_string()
}

/// The first object of `class` called `name` in `session`'s database.
pub async fn named(session: &SessionHandle, class: &str, name: &str) -> String {
    let found: Vec<String> = session
        .call(&format!("{class}.get_by_name_label"), (name,))
        .await
        .unwrap();
    found
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("a {class} called {name}"))
}
