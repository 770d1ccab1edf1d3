//! `PUT /import` of an XVA whose chunk checksum is wrong: without `force` the task fails with
//! xapi's `IMPORT_ERROR` naming the chunk and nothing the import created stays behind; with
//! `force=true` the chunk is accepted and the VM arrives with its disks.

use std::collections::BTreeSet;

use xapi_core::client::{Client, Protocol, Secret, Session};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

async fn demo() -> (SimHandle, Session) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .protocol(Protocol::XmlRpc)
        .build()
        .unwrap();
    let session = client
        .login_with_password("root", Secret::new(DEFAULT_PASSWORD), "1.0", "force tests")
        .await
        .unwrap();
    (sim, session)
}

async fn vm_named(session: &Session, name: &str) -> String {
    let vms: Vec<String> = session.call("VM.get_by_name_label", (name,)).await.unwrap();
    vms.into_iter().next().expect("the demo has this VM")
}

/// An export of `vm` whose first chunk carries a wrong checksum member.
async fn corrupted_export(sim: &SimHandle, session: &Session, vm: &str) -> Vec<u8> {
    sim.faults().corrupt_next_export_checksum();
    let download = session.get("/export", &[("ref", vm)], None).await.unwrap();
    download.bytes(1 << 30).await.unwrap().to_vec()
}

/// Import; the task's status and its result (or error info joined by spaces).
async fn import(session: &Session, query: &[(&str, &str)], xva: Vec<u8>) -> (String, String) {
    let length = xva.len() as u64;
    let body =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(xva)) });
    let upload = session
        .put("/import", query, None, body, length)
        .await
        .unwrap();
    let task = upload.task_id.expect("a task-id header").to_string();
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    let result = if status == "failure" {
        let info: Vec<String> = session.call("task.get_error_info", (&task,)).await.unwrap();
        info.join(" ")
    } else {
        session.call("task.get_result", (&task,)).await.unwrap()
    };
    (status, result)
}

async fn all(session: &Session, class: &str) -> BTreeSet<String> {
    session
        .call::<Vec<String>>(&format!("{class}.get_all"), ())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The image bytes of each disk of `vm` in userdevice order.
async fn disks(sim: &SimHandle, session: &Session, vm: &str) -> Vec<Vec<u8>> {
    let mut vbds = Vec::new();
    for vbd in session
        .call::<Vec<String>>("VM.get_VBDs", (vm,))
        .await
        .unwrap()
    {
        let kind: String = session.call("VBD.get_type", (&vbd,)).await.unwrap();
        if kind == "Disk" {
            let device: String = session.call("VBD.get_userdevice", (&vbd,)).await.unwrap();
            vbds.push((device, vbd));
        }
    }
    vbds.sort();
    let mut images = Vec::new();
    for (_, vbd) in vbds {
        let vdi: String = session.call("VBD.get_VDI", (&vbd,)).await.unwrap();
        let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
        images.push(std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap());
    }
    images
}

#[tokio::test]
async fn a_bad_chunk_checksum_fails_the_import_and_leaves_nothing_behind() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let xva = corrupted_export(&sim, &session, &vm).await;
    let classes = ["VM", "VBD", "VIF", "VDI"];
    let mut before = Vec::new();
    for class in classes {
        before.push(all(&session, class).await);
    }
    let images_before =
        std::fs::read_dir(sim.disk_image("primary", "x").unwrap().parent().unwrap())
            .unwrap()
            .count();

    let (status, error) = import(&session, &[], xva).await;
    assert_eq!(status, "failure");
    assert!(
        error.starts_with("IMPORT_ERROR Stream_vdi.Invalid_checksum(\"Block Ref:")
            && error.contains("/00000000 checksum failed: original = ")
            && error.contains("; recomputed = "),
        "{error}"
    );
    for (class, before) in classes.iter().zip(before) {
        assert_eq!(
            all(&session, class).await,
            before,
            "no {class} stays from the failed import"
        );
    }
    let images_after = std::fs::read_dir(sim.disk_image("primary", "x").unwrap().parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(images_after, images_before, "no orphan disk image");
}

#[tokio::test]
async fn force_accepts_a_bad_chunk_checksum() {
    let (sim, session) = demo().await;
    let vm = vm_named(&session, "legacy-crm").await;
    let original = disks(&sim, &session, &vm).await;
    let xva = corrupted_export(&sim, &session, &vm).await;
    let (status, result) = import(&session, &[("force", "true")], xva).await;
    assert_eq!(status, "success", "{result}");
    let imported = result
        .trim_start_matches("<value><array><data><value>")
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(imported.starts_with("OpaqueRef:"), "{result}");
    assert_ne!(imported, vm);
    assert_eq!(
        disks(&sim, &session, &imported).await,
        original,
        "the disks arrive byte for byte (only the checksum member was wrong)"
    );
}
