//! `event.from` reports a `del` for every row a destroy removes, as xapi's database does: a
//! snapshot destroyed with `VM.destroy` takes its VBDs, VIFs and metrics rows with it, and each
//! of its disks goes with `VDI.destroy`.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::support;

#[derive(Debug, Deserialize)]
struct Event {
    class: String,
    operation: String,
    #[serde(rename = "ref")]
    reference: String,
}

#[derive(Debug, Deserialize)]
struct Batch {
    events: Vec<Event>,
    token: String,
}

#[tokio::test]
async fn destroying_a_snapshot_reports_every_row_it_removes() {
    let (_sim, session) = support::demo().await;
    let vm = support::vm_named(&session, "legacy-crm").await;
    let snapshot: String = session
        .call_async("VM.snapshot", (&vm, "doomed snapshot"))
        .await
        .expect("Async.VM.snapshot")
        .wait()
        .await
        .expect("the snapshot task succeeds");
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&snapshot,)).await.unwrap();
    let vifs: Vec<String> = session.call("VM.get_VIFs", (&snapshot,)).await.unwrap();
    let metrics: String = session.call("VM.get_metrics", (&snapshot,)).await.unwrap();
    let original_metrics: String = session.call("VM.get_metrics", (&vm,)).await.unwrap();
    assert!(metrics.starts_with("OpaqueRef:") && metrics != "OpaqueRef:NULL");
    assert_ne!(
        metrics, original_metrics,
        "a snapshot has metrics of its own"
    );
    let mut vdis = Vec::new();
    for vbd in &vbds {
        let vdi: String = session.call("VBD.get_VDI", (vbd,)).await.unwrap();
        if vdi != "OpaqueRef:NULL" {
            vdis.push(vdi);
        }
    }
    assert!(!vdis.is_empty(), "legacy-crm has disks");

    let since: Batch = session
        .call("event.from", (vec!["*"], "", 0.0))
        .await
        .expect("event.from");
    session
        .call::<()>("VM.destroy", (&snapshot,))
        .await
        .unwrap();
    for vdi in &vdis {
        session.call::<()>("VDI.destroy", (vdi,)).await.unwrap();
    }
    let batch: Batch = session
        .call("event.from", (vec!["*"], &since.token, 0.0))
        .await
        .expect("event.from");
    let deleted: BTreeSet<(String, String)> = batch
        .events
        .iter()
        .filter(|e| e.operation == "del")
        .map(|e| (e.class.clone(), e.reference.clone()))
        .collect();
    let mut expected = BTreeSet::from([
        ("vm".to_owned(), snapshot.clone()),
        ("vm_metrics".to_owned(), metrics.clone()),
    ]);
    expected.extend(vbds.iter().map(|r| ("vbd".to_owned(), r.clone())));
    expected.extend(vifs.iter().map(|r| ("vif".to_owned(), r.clone())));
    expected.extend(vdis.iter().map(|r| ("vdi".to_owned(), r.clone())));
    assert_eq!(deleted, expected, "{:?}", batch.events);
    // each del comes after every other event of its row
    for (index, event) in batch.events.iter().enumerate() {
        if event.operation == "del" {
            assert!(
                batch.events[index + 1..]
                    .iter()
                    .all(|later| later.reference != event.reference),
                "{:?}",
                batch.events
            );
        }
    }
    // the original keeps its own metrics
    let still: String = session.call("VM.get_metrics", (&vm,)).await.unwrap();
    assert_eq!(still, original_metrics);
    let _: String = session
        .call("VM_metrics.get_uuid", (&original_metrics,))
        .await
        .expect("the original's metrics are still there");
}

/// `VM.create` makes the VM's metrics row, as xapi's does, and `VM.destroy` takes it away.
#[tokio::test]
async fn a_created_vm_has_metrics_of_its_own() {
    let (_sim, session) = support::demo().await;
    let vm: String = session
        .call(
            "VM.create",
            (serde_json::json!({"name_label": "fresh", "memory_static_max": 1_073_741_824_i64}),),
        )
        .await
        .expect("VM.create");
    let metrics: String = session.call("VM.get_metrics", (&vm,)).await.unwrap();
    let _: String = session
        .call("VM_metrics.get_uuid", (&metrics,))
        .await
        .expect("the new VM's metrics exist");
    session.call::<()>("VM.destroy", (&vm,)).await.unwrap();
    assert!(
        session
            .call::<String>("VM_metrics.get_uuid", (&metrics,))
            .await
            .is_err()
    );
}
