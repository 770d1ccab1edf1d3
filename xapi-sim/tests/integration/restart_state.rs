//! `--state` across a restart: changed-block tracking (enabled disks, bitmaps, `cbt_metadata`
//! bases) and database replication (the metadata VDI's log goes on receiving the pool's
//! changes) come back as they were.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use tokio::process::Command;
use xapi_core::client::SessionHandle;
use xapi_dr::metadata::read_redo_log;
use xapi_sim::{Scenario, SimConfig, SimHandle, Simulator};

#[derive(Debug, serde::Deserialize)]
struct NbdInfo {
    exportname: String,
    address: String,
    port: i64,
}

async fn start_in(dir: &Path) -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig {
        state_dir: Some(dir.to_owned()),
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .unwrap();
    let session = support::login(&sim).await;
    (sim, session)
}

/// Stop a simulator the way the binary stops on SIGTERM: a last save, then the handle goes.
fn stop(sim: SimHandle) {
    sim.shutdown();
    drop(sim);
}

async fn first_disk(session: &SessionHandle, vm: &str) -> String {
    let vbds: Vec<String> = session.call("VM.get_VBDs", (vm,)).await.unwrap();
    session.call("VBD.get_VDI", (&vbds[0],)).await.unwrap()
}

/// Write `pattern` to the VDI over NBD with qemu-io (`write -P ...` commands).
async fn write_over_nbd(session: &SessionHandle, vdi: &str, commands: &[&str]) {
    let mut infos: Vec<NbdInfo> = session.call("VDI.get_nbd_info", (vdi,)).await.unwrap();
    let info = infos.remove(0);
    let export = info.exportname.replace('"', "\\\"");
    let spec = format!(
        r#"json:{{"driver":"raw","file":{{"driver":"nbd","server":{{"type":"inet","host":"{}","port":"{}"}},"export":"{export}"}}}}"#,
        info.address, info.port
    );
    let mut args = Vec::new();
    for command in commands {
        args.push("-c");
        args.push(command);
    }
    let output = Command::new("qemu-io")
        .args(&args)
        .arg(&spec)
        .output()
        .await
        .expect("qemu-io runs");
    assert!(
        output.status.success(),
        "qemu-io: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn changed_blocks(session: &SessionHandle, from: &str, to: &str) -> Vec<usize> {
    let bitmap: String = session
        .call("VDI.list_changed_blocks", (from, to))
        .await
        .unwrap();
    let bitmap = base64::engine::general_purpose::STANDARD
        .decode(bitmap)
        .unwrap();
    (0..bitmap.len() * 8)
        .filter(|i| bitmap[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect()
}

#[tokio::test]
async fn changed_block_tracking_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, session) = start_in(dir.path()).await;
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("test-vm",))
        .await
        .unwrap();
    let vm = vms[0].clone();
    let live = first_disk(&session, &vm).await;
    session
        .call::<()>("VDI.enable_cbt", (&live,))
        .await
        .unwrap();
    let first: String = session
        .call("VM.snapshot", (&vm, "base", Vec::<String>::new()))
        .await
        .unwrap();
    write_over_nbd(
        &session,
        &live,
        &["write -P 0xab 3M 64k", "write -P 0xcd 5000k 8k"],
    )
    .await;
    let second: String = session
        .call("VM.snapshot", (&vm, "next", Vec::<String>::new()))
        .await
        .unwrap();
    let base = first_disk(&session, &first).await;
    let next = first_disk(&session, &second).await;
    assert_eq!(changed_blocks(&session, &base, &next).await, [48, 78]);
    session
        .call::<()>("VDI.data_destroy", (&base,))
        .await
        .unwrap();
    stop(sim);

    let (sim, session) = start_in(dir.path()).await;
    assert!(
        session
            .call::<bool>("VDI.get_cbt_enabled", (&live,))
            .await
            .unwrap(),
        "CBT stays enabled"
    );
    let kind: String = session.call("VDI.get_type", (&base,)).await.unwrap();
    assert_eq!(
        kind, "cbt_metadata",
        "the data-destroyed base stays a CBT base"
    );
    assert_eq!(
        changed_blocks(&session, &base, &next).await,
        [48, 78],
        "the same bitmap after the restart"
    );
    assert_eq!(changed_blocks(&session, &base, &live).await, [48, 78]);

    // the log goes on: a write after the restart shows against both bases
    write_over_nbd(&session, &live, &["write -P 0xef 0 1k"]).await;
    assert_eq!(changed_blocks(&session, &next, &live).await, [0]);
    assert_eq!(changed_blocks(&session, &base, &live).await, [0, 48, 78]);
    stop(sim);

    // and that write is still known after a second restart
    let (_sim, session) = start_in(dir.path()).await;
    assert_eq!(changed_blocks(&session, &base, &live).await, [0, 48, 78]);
}

async fn rename(session: &SessionHandle, vm_name: &str, description: &str) {
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", (vm_name,))
        .await
        .unwrap();
    session
        .call::<()>("VM.set_name_description", (&vms[0], description))
        .await
        .unwrap();
}

#[tokio::test]
async fn database_replication_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, session) = start_in(dir.path()).await;
    let srs: Vec<String> = session
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    session
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    rename(&session, "ldap", "before the restart").await;
    let vdis: Vec<String> = session.call("VDI.get_all", ()).await.unwrap();
    let mut metadata_uuid = None;
    for vdi in &vdis {
        let kind: String = session.call("VDI.get_type", (vdi,)).await.unwrap();
        if kind == "metadata" {
            metadata_uuid = Some(
                session
                    .call::<String>("VDI.get_uuid", (vdi,))
                    .await
                    .unwrap(),
            );
        }
    }
    let metadata_uuid = metadata_uuid.expect("a metadata VDI");
    let image_path = sim.disk_image("primary", &metadata_uuid).unwrap();
    let before = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert!(before.deltas_applied > 0);
    stop(sim);

    let (sim, session) = start_in(dir.path()).await;
    assert_eq!(
        sim.disk_image("primary", &metadata_uuid).unwrap(),
        image_path
    );
    // more changes after the restart: a field, a new object, a deletion
    support::change_add_and_delete(&session, "after the restart", "clone after restart").await;

    let after = read_redo_log(std::fs::File::open(&image_path).unwrap()).unwrap();
    assert_ne!(
        after.validity, before.validity,
        "the restart wrote the whole database into the other half, as xapi's re-enable does"
    );
    assert!(
        after.deltas_applied >= 4,
        "deltas after the restart: {}",
        after.deltas_applied
    );
    let latest: bool = {
        let vdi: String = session
            .call("VDI.get_by_uuid", (&metadata_uuid,))
            .await
            .unwrap();
        session
            .call("VDI.get_metadata_latest", (&vdi,))
            .await
            .unwrap()
    };
    assert!(latest, "the log is live again");
    let logged = support::persistent_tables(after.database);
    let dumped = support::persistent_tables(support::dump(&session).await);
    let (columns, stamps) = differences(&logged, &dumped);
    assert!(
        columns.is_empty(),
        "the redo log holds the pool's database; differences:\n{}",
        columns.join("\n")
    );
    // The replay stamps rows with its own generation, one per delta; the login after the
    // restart wrote a (non-persistent) session the log does not carry, so rows changed after
    // it are stamped one lower in the replay, as a replay of xapi's own log would be.
    assert!(!stamps.is_empty(), "rows changed after the restart");
    for (what, log, dump) in stamps {
        assert!(
            dump.1 - log.1 == 1 && (dump.0 == log.0 || dump.0 - log.0 == 1),
            "{what}: log stamps {log:?}, dump {dump:?}"
        );
    }
}

/// A row's creation and modification stamps.
type Stamps = (i64, i64);

/// The column values that differ between two sets of tables (readably), and the rows whose
/// stamps differ.
fn differences(
    left: &[(String, xapi_dr::metadata::Table)],
    right: &[(String, xapi_dr::metadata::Table)],
) -> (Vec<String>, Vec<(String, Stamps, Stamps)>) {
    let mut columns = Vec::new();
    let mut stamps = Vec::new();
    let right: std::collections::BTreeMap<_, _> = right.iter().map(|(n, t)| (n, t)).collect();
    for (name, table) in left {
        let Some(other) = right.get(name) else {
            columns.push(format!("table {name} only in the log"));
            continue;
        };
        for (reference, row) in table {
            let Some(o) = other.get(reference) else {
                columns.push(format!("{name} {reference} only in the log"));
                continue;
            };
            if (o.ctime, o.mtime) != (row.ctime, row.mtime) {
                stamps.push((
                    format!("{name} {reference}"),
                    (row.ctime, row.mtime),
                    (o.ctime, o.mtime),
                ));
            }
            let mine: Vec<_> = row.columns().collect();
            let theirs: Vec<_> = o.columns().collect();
            if mine != theirs {
                columns.push(format!("{name} {reference}: log {mine:?} dump {theirs:?}"));
            }
        }
        for reference in other.keys() {
            if !table.contains_key(reference) {
                columns.push(format!("{name} {reference} only in the dump"));
            }
        }
    }
    (columns, stamps)
}
