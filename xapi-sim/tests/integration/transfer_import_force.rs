//! `PUT /import` of an XVA whose chunk checksum is wrong: without `force` the task fails with
//! xapi's `IMPORT_ERROR` naming the chunk and nothing the import created stays behind; with
//! `force=true` the chunk is accepted and the VM arrives with its disks.

use crate::support;

use std::collections::BTreeSet;

use support::{all_of, disk_vbds, vm_named};
use xapi_core::client::{Protocol, SessionHandle};
use xapi_sim::SimHandle;

/// An export of `vm` whose first chunk carries a wrong checksum member.
async fn corrupted_export(sim: &SimHandle, session: &SessionHandle, vm: &str) -> Vec<u8> {
    sim.faults().corrupt_next_export_checksum();
    support::download(session, "/export", &[("ref", vm)]).await
}

/// Import; the task's status and its result (or error info joined by spaces).
async fn import(session: &SessionHandle, query: &[(&str, &str)], xva: Vec<u8>) -> (String, String) {
    support::put_and_wait(session, "/import", query, xva).await
}

async fn all(session: &SessionHandle, class: &str) -> BTreeSet<String> {
    all_of(session, class).await.into_iter().collect()
}

/// The image bytes of each disk of `vm` in userdevice order.
async fn disks(sim: &SimHandle, session: &SessionHandle, vm: &str) -> Vec<Vec<u8>> {
    let mut images = Vec::new();
    for (_, vdi) in disk_vbds(session, vm).await {
        let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
        images.push(std::fs::read(sim.disk_image("primary", &uuid).unwrap()).unwrap());
    }
    images
}

#[tokio::test]
async fn a_bad_chunk_checksum_fails_the_import_and_leaves_nothing_behind() {
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
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
    let (sim, session) = support::demo_over(Protocol::XmlRpc).await;
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

/// A restore whose `mac_seed` another VM uses fails before the VM it would replace is
/// destroyed: every restore check comes before any change (with `force` too, which leaves
/// whatever was made behind).
#[tokio::test]
async fn a_restore_with_a_taken_mac_seed_replaces_nothing() {
    let (_sim, session) = support::demo_over(Protocol::XmlRpc).await;
    let vm = vm_named(&session, "legacy-crm").await;
    let uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
    session
        .call::<()>("VM.add_to_other_config", (&vm, "mac_seed", "seed-of-crm"))
        .await
        .unwrap();
    let xva = support::download(&session, "/export", &[("ref", vm.as_str())]).await;
    let other = vm_named(&session, "test-vm").await;
    session
        .call::<()>(
            "VM.add_to_other_config",
            (&other, "mac_seed", "seed-of-crm"),
        )
        .await
        .unwrap();
    // force would replace the VM of the same version, but not over a taken seed
    let (status, error) = import(&session, &[("restore", "true"), ("force", "true")], xva).await;
    assert_eq!(status, "failure");
    assert_eq!(error, "DUPLICATE_MAC_SEED seed-of-crm");
    let still: String = session.call("VM.get_by_uuid", (&uuid,)).await.unwrap();
    assert_eq!(still, vm, "the VM to replace is still there");
}
