//! Injected faults (cut downloads, full SRs, failing tasks) and `--state` persistence across a
//! restart.

use crate::support;

use xapi_core::Error;
use xapi_core::client::SessionHandle;
use xapi_sim::{Scenario, SimConfig};

fn code(err: Error) -> String {
    match err {
        Error::Api(f) => f.code.as_str().to_owned(),
        other => panic!("expected a XAPI failure, got {other}"),
    }
}

async fn vm_named(session: &SessionHandle, name: &str) -> String {
    let vms: Vec<String> = session.call("VM.get_by_name_label", (name,)).await.unwrap();
    vms.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_cut_download_fails_its_task() {
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let running = vm_named(&session, "fileserver").await;
    // a running VM is exported through a snapshot, as with xapi
    let vm: String = session
        .call("VM.snapshot", (&running, "cut", Vec::<String>::new()))
        .await
        .unwrap();
    sim.faults().cut_next_download_after(1 << 20);
    let download = session.get("/export", &[("ref", &vm)], None).await.unwrap();
    let task = download.task_id.clone().unwrap();
    // as xapi's, the export is close-delimited: the cut looks like an early end of the body,
    // which the XVA reader catches (and the task says failure)
    let bytes = download.bytes(1 << 30).await.unwrap();
    assert_eq!(bytes.len(), 1 << 20, "the body ends at the cut");
    let mut reader = xapi_backup::format::xva::XvaReader::open(
        std::io::Cursor::new(bytes.to_vec()),
        xapi_backup::format::xva::ReadOptions::default(),
    )
    .await
    .unwrap();
    let mut outcome = Ok(());
    loop {
        match reader.next_chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    assert!(
        outcome.is_err(),
        "a truncated XVA does not read as complete"
    );
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "failure");
    // the fault fires once
    let again = session.get("/export", &[("ref", &vm)], None).await.unwrap();
    assert!(again.bytes(1 << 30).await.is_ok());
}

#[tokio::test]
async fn a_download_too_short_to_be_cut_hands_the_cut_on_to_the_next() {
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let snapshot = |name: &'static str| {
        let session = session.clone();
        async move {
            let vm = vm_named(&session, name).await;
            session
                .call::<String>("VM.snapshot", (&vm, name, Vec::<String>::new()))
                .await
                .unwrap()
        }
    };
    let diskless = snapshot("netboot-appliance").await;
    let with_disks = snapshot("fileserver").await;
    sim.faults().cut_next_download_after(1 << 20);
    let short = session
        .get("/export", &[("ref", &diskless)], None)
        .await
        .unwrap();
    let short_task = short.task_id.clone().unwrap();
    let bytes = short.bytes(1 << 30).await.unwrap();
    assert!(bytes.len() < 1 << 20, "an export of ova.xml alone");
    let status: String = session
        .call("task.get_status", (&short_task,))
        .await
        .unwrap();
    assert_eq!(status, "success");
    let long = session
        .get("/export", &[("ref", &with_disks)], None)
        .await
        .unwrap();
    let bytes = long.bytes(1 << 30).await.unwrap();
    assert_eq!(bytes.len(), 1 << 20, "the next export is cut instead");
}

#[tokio::test]
async fn a_full_sr_refuses_new_disks() {
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Shared NFS",))
        .await
        .unwrap();
    let sr_uuid: String = session.call("SR.get_uuid", (&srs[0],)).await.unwrap();
    sim.faults().fill_sr(&sr_uuid);
    let vm = vm_named(&session, "backup-proxy").await;
    let err = session
        .call::<String>("VM.copy", (&vm, "copy", &srs[0]))
        .await
        .unwrap_err();
    assert_eq!(code(err), "SR_BACKEND_FAILURE_44");
    let record = serde_json::json!({"SR": srs[0], "virtual_size": "1048576", "type": "user", "name_label": "new"});
    let err = session
        .call::<String>("VDI.create", (record,))
        .await
        .unwrap_err();
    assert_eq!(code(err), "SR_BACKEND_FAILURE_44");
    sim.faults().clear();
    let copy: String = session
        .call("VM.copy", (&vm, "copy", &srs[0]))
        .await
        .unwrap();
    assert!(copy.starts_with("OpaqueRef:"));
}

#[tokio::test]
async fn a_task_can_be_made_to_fail_midway() {
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let vm = vm_named(&session, "backup-proxy").await;
    sim.faults().fail_next_task("SR_BACKEND_FAILURE");
    let handle = session
        .call_async::<String>("VM.clone", (&vm, "doomed"))
        .await
        .unwrap();
    let task = handle.task().clone();
    let err = handle.wait().await.unwrap_err();
    assert_eq!(code(err), "SR_BACKEND_FAILURE");
    drop(task);
    let clones: Vec<String> = session
        .call("VM.get_by_name_label", ("doomed",))
        .await
        .unwrap();
    assert!(clones.is_empty(), "the failed task did nothing");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        state_dir: Some(dir.path().to_owned()),
        scenario: Scenario::Demo,
        ..SimConfig::default()
    };
    let (vm_uuid, disk_uuid, vm_count) = {
        let (sim, session) = support::start_and_login(config.clone()).await;
        let vm = vm_named(&session, "mail").await;
        session
            .call::<()>("VM.set_name_description", (&vm, "kept across restarts"))
            .await
            .unwrap();
        session
            .call::<()>("VM.add_to_other_config", (&vm, "restart", "test"))
            .await
            .unwrap();
        let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
        let vdi: String = session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap();
        let disk_uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
        let vms: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
        let vm_uuid: String = session.call("VM.get_uuid", (&vm,)).await.unwrap();
        session.logout().await.unwrap();
        sim.shutdown();
        (vm_uuid, disk_uuid, vms.len())
    };
    assert!(dir.path().join("primary").join("state.db").exists());
    let (sim, session) = support::start_and_login(config).await;
    let vm: String = session.call("VM.get_by_uuid", (&vm_uuid,)).await.unwrap();
    let description: String = session
        .call("VM.get_name_description", (&vm,))
        .await
        .unwrap();
    assert_eq!(description, "kept across restarts");
    let vms: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
    assert_eq!(vms.len(), vm_count);
    let vbds: Vec<String> = session.call("VM.get_VBDs", (&vm,)).await.unwrap();
    assert!(!vbds.is_empty(), "relations are rebuilt on load");
    assert!(sim.disk_image("primary", &disk_uuid).unwrap().exists());
}

#[tokio::test]
async fn a_corrupted_checksum_is_caught_by_the_reader() {
    use xapi_backup::format::xva::{ReadOptions, XvaReader};
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let vm = vm_named(&session, "legacy-crm").await;
    async fn read_all(session: &SessionHandle, vm: &str) -> Result<usize, xapi_backup::Error> {
        let download = session.get("/export", &[("ref", vm)], None).await.unwrap();
        let mut reader =
            XvaReader::open(download.into_async_read(), ReadOptions::default()).await?;
        let mut chunks = 0;
        while reader.next_chunk().await?.is_some() {
            chunks += 1;
        }
        Ok(chunks)
    }
    sim.faults().corrupt_next_export_checksum();
    let err = read_all(&session, &vm)
        .await
        .expect_err("the corrupted chunk is rejected");
    assert!(err.is_corrupt_input(), "{err}");
    assert!(
        read_all(&session, &vm).await.unwrap() > 0,
        "the fault fires once"
    );
}

/// Names and sizes of the members of an uncompressed tar.
fn tar_members(bytes: &[u8]) -> Vec<(String, u64)> {
    let mut members = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header = &bytes[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).into_owned();
        let size_text = String::from_utf8_lossy(&header[124..136]);
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .unwrap();
        members.push((name, size));
        at += 512 + size.div_ceil(512) as usize * 512;
    }
    members
}

#[tokio::test]
async fn a_stalled_source_makes_the_export_send_keep_alives() {
    use xapi_backup::format::xva::{ReadOptions, XvaReader};
    let (sim, session) = support::start_and_login(SimConfig::with_scenario(Scenario::Demo)).await;
    let vm = vm_named(&session, "legacy-crm").await;
    sim.faults()
        .stall_next_export(std::time::Duration::from_millis(6_500));
    let download = session.get("/export", &[("ref", &vm)], None).await.unwrap();
    let bytes = download.bytes(1 << 30).await.unwrap();
    let keep_alives: Vec<String> = tar_members(&bytes)
        .into_iter()
        .filter(|(name, size)| *size == 0 && name.starts_with("Ref:") && !name.contains('.'))
        .map(|(name, _)| name)
        .collect();
    assert!(
        !keep_alives.is_empty(),
        "a zero-length keep-alive chunk went out while the source stalled"
    );
    // and the stream is still a valid XVA
    let mut reader = XvaReader::open(std::io::Cursor::new(bytes.to_vec()), ReadOptions::default())
        .await
        .unwrap();
    while reader.next_chunk().await.unwrap().is_some() {}
}
