//! Metadata copies found and read through the API of the demo's DR pool, after the primary
//! replicates its database to the mirrored SR: discover, probe, DR_task, and a copy read
//! through `VDI.open_database` equal to the copy read offline from the VDI's own bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt as _;
use xapi_core::api::Vdi;
use xapi_core::client::{Client, Password, Protocol, SessionHandle};
use xapi_core::wire::Ref;
use xapi_dr::Error;
use xapi_dr::configure::set_replication;
use xapi_dr::metadata::redo_log::{LOG_SIZE, POS_SECOND_HALF};
use xapi_dr::metadata::{InspectReport, Source};
use xapi_dr::source::{
    DiscoverOptions, MetadataCopy, Origin, SourceError, discover, introduce, probe,
};
use xapi_sim::{
    DEFAULT_PASSWORD, DEMO_MIRROR_DEVICE_CONFIG, Scenario, SimConfig, SimHandle, Simulator,
};

const MIRRORED_SR: &str = "Replicated iSCSI (DR)";

async fn login(url: &str, protocol: Protocol) -> SessionHandle {
    Client::builder(url)
        .protocol(protocol)
        .build()
        .expect("a client")
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-dr tests",
        )
        .await
        .expect("root logs in")
}

/// The demo with the primary replicating to its mirrored SR (and a change replicated as a
/// delta), and root sessions on the primary and on the DR pool.
struct Demo {
    sim: SimHandle,
    primary: SessionHandle,
    dr: SessionHandle,
    /// UUID of the mirrored SR.
    sr_uuid: String,
}

async fn replicating_demo(protocol: Protocol) -> Demo {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .expect("the demo starts");
    let primary = login(&sim.pool("primary").expect("a primary").url, protocol).await;
    let dr = login(&sim.pool("dr").expect("a DR pool").url, protocol).await;
    let srs: Vec<String> = primary
        .call("SR.get_by_name_label", (MIRRORED_SR,))
        .await
        .unwrap();
    let sr_uuid: String = primary.call("SR.get_uuid", (&srs[0],)).await.unwrap();
    set_replication(&primary, &[sr_uuid.as_str()])
        .await
        .unwrap();
    let vms: Vec<String> = primary
        .call("VM.get_by_name_label", ("web-db",))
        .await
        .unwrap();
    primary
        .call::<()>(
            "VM.set_name_description",
            (&vms[0], "replicated as a delta"),
        )
        .await
        .unwrap();
    Demo {
        sim,
        primary,
        dr,
        sr_uuid,
    }
}

fn mirror_config() -> BTreeMap<String, String> {
    DEMO_MIRROR_DEVICE_CONFIG
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn primary_pool_uuid(primary: &SessionHandle) -> String {
    let pools: Vec<String> = primary.call("pool.get_all", ()).await.unwrap();
    primary.call("pool.get_uuid", (&pools[0],)).await.unwrap()
}

/// The redo-log part of a VDI's raw bytes (`/export_raw_vdi?format=raw`): the header and the
/// half it names valid, with the first half only when that is the valid one.
async fn download_log(session: &SessionHandle, vdi: &Ref<Vdi>) -> Vec<u8> {
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", vdi.as_str()), ("format", "raw")],
            None,
        )
        .await
        .unwrap();
    let mut body = download.into_stream();
    let mut bytes = Vec::new();
    let mut limit = LOG_SIZE;
    while (bytes.len() as u64) < limit {
        let Some(chunk) = body.next().await else {
            break;
        };
        bytes.extend_from_slice(&chunk.unwrap());
        if bytes.len() > 17 && bytes[17] == b'1' {
            limit = POS_SECOND_HALF;
        }
    }
    bytes.truncate(usize::try_from(limit).unwrap().min(bytes.len()));
    bytes
}

/// Every field of a report but where it came from and what was noticed reading it.
fn content(report: &InspectReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("source");
    object.remove("diagnostics");
    value
}

/// Records the method of every client call span (`call`, field `method`) made on this thread.
#[derive(Clone, Default)]
struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    fn count(&self, method: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == method)
            .count()
    }
}

struct MethodField(Option<String>);

impl tracing::field::Visit for MethodField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "method" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "method" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for CallLog {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "call" {
            let mut method = MethodField(None);
            span.record(&mut method);
            if let Some(method) = method.0 {
                self.0.lock().unwrap().push(method);
            }
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn discover_finds_the_mirrored_copy_once_the_dr_task_introduces_its_sr() {
    let demo = replicating_demo(Protocol::XmlRpc).await;
    let options = DiscoverOptions::default();
    assert!(
        discover(&demo.dr, &options).await.unwrap().is_empty(),
        "the DR pool sees no mirrored SR yet"
    );
    let introduced = introduce(&demo.dr, "lvmoiscsi", &mirror_config(), &[&demo.sr_uuid])
        .await
        .unwrap();
    let found = discover(&demo.dr, &options).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let copy = &found[0];
    assert_eq!(copy.sr_uuid, demo.sr_uuid);
    assert_eq!(copy.sr_name_label, MIRRORED_SR);
    assert!(copy.metadata_latest);
    assert_eq!(copy.pool_uuid, primary_pool_uuid(&demo.primary).await);
    let on_primary: String = demo
        .primary
        .call("VDI.get_by_uuid", (&copy.vdi_uuid,))
        .await
        .expect("the mirror keeps the VDI's UUID");
    assert!(on_primary.starts_with("OpaqueRef:"));
    assert_eq!(
        discover(
            &demo.dr,
            &DiscoverOptions {
                latest_only: true,
                ..options
            }
        )
        .await
        .unwrap(),
        found
    );

    // On the primary, its own metadata VDI is left out unless asked for.
    assert!(discover(&demo.primary, &options).await.unwrap().is_empty());
    let own = discover(
        &demo.primary,
        &DiscoverOptions {
            include_own_pool: true,
            ..options
        },
    )
    .await
    .unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].vdi_uuid, copy.vdi_uuid);

    introduced.destroy(&demo.dr).await.unwrap();
    assert!(discover(&demo.dr, &options).await.unwrap().is_empty());
}

/// Reads the mirrored copy through the API of the DR pool and offline from the VDI's bytes,
/// over `protocol`, and checks they agree.
async fn api_copy_equals_offline_copy(protocol: Protocol) {
    let demo = replicating_demo(protocol).await;
    let calls = CallLog::default();
    let _guard = tracing::subscriber::set_default(calls.clone());
    // tracing-core works out a span site's interest, the first time any thread reaches it,
    // from that thread's default alone while a single subscriber is registered: another test's
    // thread (none) could switch the logout's span off for this one too (it went missing in
    // one CI run). A second, idle subscriber alive meanwhile makes it ask both.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let introduced = introduce(&demo.dr, "lvmoiscsi", &mirror_config(), &[&demo.sr_uuid])
        .await
        .unwrap();

    let started = Instant::now();
    let found = discover(&demo.dr, &DiscoverOptions::default())
        .await
        .unwrap();
    let through_api = MetadataCopy::from_vdi(&demo.dr, &found[0].vdi)
        .await
        .unwrap();
    let elapsed = started.elapsed();

    let bytes = download_log(&demo.dr, &found[0].vdi).await;
    let offline = MetadataCopy::from_bytes(
        &bytes,
        Origin::Vdi {
            vdi_uuid: found[0].vdi_uuid.clone(),
            sr_uuid: found[0].sr_uuid.clone(),
        },
    )
    .unwrap();

    assert_eq!(through_api.origin, offline.origin);
    assert_eq!(content(&through_api.metadata), content(&offline.metadata));
    let (api, off) = (&through_api.metadata, &offline.metadata);
    assert_eq!(api.generation, off.generation);
    assert_eq!(api.pool, off.pool);
    assert_eq!(api.vms, off.vms);
    assert_eq!(api.vapps, off.vapps);
    assert_eq!(api.srs, off.srs);
    assert_eq!(api.networks, off.networks);
    assert_eq!(api.schema_version, off.schema_version);
    assert_eq!(api.pool.uuid, primary_pool_uuid(&demo.primary).await);
    assert!(
        api.vms.iter().any(|vm| vm.name_label == "web-db"),
        "{:?}",
        api.vms
    );
    let Source::RedoLog {
        validity,
        marker,
        record_generation,
        deltas_applied,
        deltas_skipped,
    } = &off.source
    else {
        panic!("offline, the VDI's bytes are a redo log: {:?}", off.source);
    };
    let Source::ForeignDatabase {
        vdi_uuid,
        sr_uuid,
        validity: api_validity,
        marker: api_marker,
        record_generation: api_record_generation,
        deltas_applied: api_applied,
        deltas_skipped: api_skipped,
        raw_bytes_read,
    } = &api.source
    else {
        panic!("through the API: {:?}", api.source);
    };
    assert_eq!(
        (
            api_validity,
            api_marker,
            api_record_generation,
            api_applied,
            api_skipped
        ),
        (
            validity,
            marker,
            record_generation,
            deltas_applied,
            deltas_skipped
        )
    );
    assert!(*deltas_applied > 0, "the change after enabling is a delta");
    assert_eq!((vdi_uuid, sr_uuid), (&found[0].vdi_uuid, &demo.sr_uuid));
    // two reads of the framing, each well short of the first half's 60 MiB
    assert!(*raw_bytes_read < 2 * 1024 * 1024, "{raw_bytes_read}");
    let json = serde_json::to_string(&through_api).unwrap();
    assert!(json.contains("\"format\":\"foreign_database\""), "{json}");

    // the read-only session was logged out
    assert_eq!(calls.count("VDI.open_database"), 1);
    assert_eq!(calls.count("session.logout"), 1);
    // one bulk read per class, no per-object getter on the foreign database
    for class in [
        "pool",
        "host",
        "SR",
        "VDI",
        "VBD",
        "VIF",
        "network",
        "VM_appliance",
        "VM",
    ] {
        assert!(
            calls.count(&format!("{class}.get_all_records")) >= 1,
            "{class}"
        );
    }
    eprintln!(
        "{protocol:?}: discover + from_vdi in {elapsed:?}; {raw_bytes_read} raw bytes read for the generation (two reads); \
         {} VMs at generation {}; log image {} bytes",
        api.vms.len(),
        api.generation,
        bytes.len()
    );
    introduced.destroy(&demo.dr).await.unwrap();
}

#[tokio::test]
async fn a_copy_read_through_the_api_equals_the_copy_read_from_its_bytes() {
    api_copy_equals_offline_copy(Protocol::XmlRpc).await;
}

#[tokio::test]
async fn a_copy_read_over_json_rpc_equals_the_copy_read_from_its_bytes() {
    api_copy_equals_offline_copy(Protocol::JsonRpc).await;
}

#[tokio::test]
async fn a_vdi_that_is_not_metadata_is_refused_before_anything_is_opened() {
    let demo = replicating_demo(Protocol::XmlRpc).await;
    #[derive(serde::Deserialize)]
    struct VdiTypeAndUuid {
        uuid: String,
        r#type: String,
    }
    let vdis: BTreeMap<String, VdiTypeAndUuid> =
        demo.primary.call("VDI.get_all_records", ()).await.unwrap();
    let (user, record) = vdis
        .iter()
        .find(|(_, v)| v.r#type == "user")
        .expect("the demo has user disks");
    let err = MetadataCopy::from_vdi(&demo.primary, &Ref::new(user.as_str()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Source(SourceError::NotMetadata { vdi_uuid, vdi_type })
            if *vdi_uuid == record.uuid && vdi_type == "user"),
        "{err}"
    );
}

#[tokio::test]
async fn probe_and_introduce_refuse_storage_dr_cannot_use() {
    let demo = replicating_demo(Protocol::XmlRpc).await;
    for sr_type in ["nfs", "lvm", "iso"] {
        let err = probe(&demo.dr, sr_type, &mirror_config())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Source(SourceError::UnsupportedStorageType { sr_type: t }) if t == sr_type),
            "{err}"
        );
        assert!(err.to_string().contains("lvmoiscsi"), "{err}");
        let err = introduce(&demo.dr, sr_type, &mirror_config(), &[&demo.sr_uuid])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Source(SourceError::UnsupportedStorageType { .. })
            ),
            "{err}"
        );
    }
    let tasks: Vec<String> = demo.dr.call("DR_task.get_all", ()).await.unwrap();
    assert!(tasks.is_empty(), "nothing was sent: {tasks:?}");
}

#[tokio::test]
async fn dr_task_create_introduces_the_probed_sr_and_destroy_forgets_it() {
    let demo = replicating_demo(Protocol::XmlRpc).await;
    let probed = probe(&demo.dr, "lvmoiscsi", &mirror_config())
        .await
        .unwrap();
    assert_eq!(probed.len(), 1, "{probed:?}");
    assert_eq!(probed[0].uuid, demo.sr_uuid);
    assert_eq!(probed[0].name_label, MIRRORED_SR);
    let elsewhere = BTreeMap::from([("target".to_owned(), "198.51.100.1".to_owned())]);
    assert!(
        probe(&demo.dr, "lvmoiscsi", &elsewhere)
            .await
            .unwrap()
            .is_empty()
    );

    let introduced = introduce(&demo.dr, "lvmoiscsi", &mirror_config(), &[&probed[0].uuid])
        .await
        .unwrap();
    assert_eq!(
        introduced.sr_uuids().collect::<Vec<_>>(),
        [demo.sr_uuid.as_str()]
    );
    let sr: String = demo
        .dr
        .call("SR.get_by_uuid", (&demo.sr_uuid,))
        .await
        .unwrap();
    assert_eq!(sr, introduced.srs[0].sr.as_str());
    let by: String = demo.dr.call("SR.get_introduced_by", (&sr,)).await.unwrap();
    assert_eq!(by, introduced.dr_task.as_str());
    let pbds: Vec<String> = demo.dr.call("SR.get_PBDs", (&sr,)).await.unwrap();
    assert!(!pbds.is_empty());

    introduced.destroy(&demo.dr).await.unwrap();
    match demo
        .dr
        .call::<String>("SR.get_by_uuid", (&demo.sr_uuid,))
        .await
    {
        Err(xapi_core::Error::Api(f)) => assert_eq!(f.code.as_str(), "UUID_INVALID"),
        other => panic!("the SR is forgotten: {other:?}"),
    }
    let tasks: Vec<String> = demo.dr.call("DR_task.get_all", ()).await.unwrap();
    assert!(tasks.is_empty());
    // the primary still has its SR and replicates to it
    let srs: Vec<String> = demo
        .primary
        .call("SR.get_by_name_label", (MIRRORED_SR,))
        .await
        .unwrap();
    assert_eq!(srs.len(), 1);
    drop(demo.sim);
}

#[tokio::test]
async fn a_copy_written_to_while_it_is_read_is_refused_then_read_once_quiet() {
    let demo = replicating_demo(Protocol::XmlRpc).await;
    let introduced = introduce(&demo.dr, "lvmoiscsi", &mirror_config(), &[&demo.sr_uuid])
        .await
        .unwrap();
    let found = discover(&demo.dr, &DiscoverOptions::default())
        .await
        .unwrap();
    let vdi = found[0].vdi.clone();

    // the primary keeps changing its database; the mirror shows every delta to the DR pool
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (primary, stop) = (demo.primary.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let vms: Vec<String> = primary
                .call("VM.get_by_name_label", ("web-db",))
                .await
                .unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                primary
                    .call::<()>("VM.set_name_description", (&vms[0], format!("change {n}")))
                    .await
                    .unwrap();
            }
            n
        })
    };
    let busy = MetadataCopy::from_vdi(&demo.dr, &vdi).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes = writer.await.unwrap();
    let err = busy.expect_err("the database moved during every attempt");
    match &err {
        Error::Source(
            e @ SourceError::ChangedWhileReading {
                before,
                after,
                attempts,
                ..
            },
        ) => {
            assert!(after > before, "{err}");
            assert_eq!(*attempts, xapi_dr::source::READ_ATTEMPTS);
            assert!(e.is_retryable());
        }
        other => panic!("expected ChangedWhileReading, got {other}"),
    }
    assert!(changes > 0);

    // quiet again: the read succeeds and matches the bytes
    let quiet = MetadataCopy::from_vdi(&demo.dr, &vdi).await.unwrap();
    let offline =
        MetadataCopy::from_bytes(&download_log(&demo.dr, &vdi).await, quiet.origin.clone())
            .unwrap();
    assert_eq!(content(&quiet.metadata), content(&offline.metadata));
    let web_db = quiet
        .metadata
        .vms
        .iter()
        .find(|vm| vm.name_label == "web-db")
        .expect("web-db is in the copy");
    assert!(!web_db.uuid.is_empty());
    introduced.destroy(&demo.dr).await.unwrap();
}
