//! `GET /host_backup` and `PUT /host_restore` over real sockets: the backup is a gzip'd tar of
//! the simulated dom0 (inventory naming the host, pool.conf, hostname, the pool database), its
//! task's progress follows xapi's 0.9·(1 − e^(−0.1·n)) curve while the "script" runs, and the
//! restore accepts it and refuses a damaged one with `RESTORE_SCRIPT_FAILED`.

use crate::support;

use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use xapi_backup::format::compression::{Compression, DecompressingReader};
use xapi_backup::format::tar::TarReader;
use xapi_core::client::SessionHandle;
use xapi_sim::{Scenario, SimConfig, SimHandle};

/// The demo with its clock running `clock_speed` times faster, and a root session.
async fn demo(clock_speed: f64) -> (SimHandle, SessionHandle) {
    let mut config = SimConfig::with_scenario(Scenario::Demo);
    config.clock_speed = clock_speed;
    support::start_and_login(config).await
}

/// Member names and contents of a gzip'd tar.
async fn members(archive: &[u8]) -> Vec<(String, String)> {
    let reader =
        DecompressingReader::new(std::io::Cursor::new(archive.to_vec()), Compression::Gzip)
            .unwrap();
    let mut tar = TarReader::new(reader);
    let mut out = Vec::new();
    while let Some(entry) = tar.next_entry().await.unwrap() {
        let body = tar.read_body(&entry, 64 << 20).await.unwrap();
        out.push((entry.name, String::from_utf8_lossy(&body).into_owned()));
    }
    out
}

fn curve(n: u32) -> f64 {
    0.9 * (1.0 - (-0.1 * f64::from(n)).exp())
}

#[tokio::test]
async fn host_backup_is_the_hosts_dom0_with_xapis_progress_curve() {
    let (_sim, session) = demo(20.0).await;
    let download = session.get("/host_backup", &[], None).await.unwrap();
    assert_eq!(download.content_length, None, "close-delimited, as xapi");
    let task = download.task_id.clone().unwrap().to_string();
    let reading = tokio::spawn(async move { download.bytes(1 << 30).await.unwrap() });
    let mut seen = Vec::new();
    while !reading.is_finished() {
        let progress: f64 = session.call("task.get_progress", (&task,)).await.unwrap();
        if seen.last() != Some(&progress) {
            seen.push(progress);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let archive = reading.await.unwrap();
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "success");
    let on_curve: Vec<f64> = seen
        .iter()
        .copied()
        .filter(|p| *p > 0.0 && *p < 1.0)
        .collect();
    assert!(
        !on_curve.is_empty(),
        "progress seen while the script runs: {seen:?}"
    );
    for p in &on_curve {
        assert!(
            (1..=10).any(|n| (curve(n) - p).abs() < 1e-9),
            "{p} is on 0.9·(1 − e^(−0.1·n)): {seen:?}"
        );
    }

    let files = members(&archive).await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/xensource-inventory",
            "etc/xensource/pool.conf",
            "etc/hostname",
            "var/lib/xcp/state.db"
        ]
    );
    let pools: Vec<String> = session.call("pool.get_all", ()).await.unwrap();
    let master: String = session.call("pool.get_master", (&pools[0],)).await.unwrap();
    let host_uuid: String = session.call("host.get_uuid", (&master,)).await.unwrap();
    let pool_uuid: String = session.call("pool.get_uuid", (&pools[0],)).await.unwrap();
    let hostname: String = session.call("host.get_hostname", (&master,)).await.unwrap();
    assert!(
        files[0]
            .1
            .lines()
            .any(|l| l == format!("INSTALLATION_UUID='{host_uuid}'"))
    );
    assert_eq!(files[1].1, "master\n");
    assert_eq!(files[2].1, format!("{hostname}\n"));
    let db = xapi_dr::metadata::read_db_xml(files[3].1.as_bytes()).unwrap();
    assert!(db.find_by_uuid("pool", &pool_uuid).is_some());
    assert!(db.find_by_uuid("host", &host_uuid).is_some());

    // the restore script accepts it
    let upload = session
        .put(
            "/host_restore",
            &[],
            None,
            futures::stream::once({
                let archive = archive.clone();
                async move { Ok::<_, std::io::Error>(archive) }
            }),
            archive.len() as u64,
        )
        .await
        .unwrap();
    let task = upload.task_id.unwrap().to_string();
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "success");
}

#[tokio::test]
async fn host_restore_refuses_a_damaged_backup() {
    let (_sim, session) = demo(1000.0).await;
    let mut archive = support::download(&session, "/host_backup", &[]).await;
    archive.truncate(archive.len() / 2);
    let task = support::upload(&session, "/host_restore", &[], archive).await;
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    assert_eq!(status, "failure");
    let info: Vec<String> = session.call("task.get_error_info", (&task,)).await.unwrap();
    assert_eq!(info[0], "RESTORE_SCRIPT_FAILED");
    assert!(info[1].starts_with("host-restore: "), "{info:?}");
}

#[tokio::test]
async fn host_backup_is_a_gzip_stream_from_its_first_byte() {
    let (_sim, session) = demo(1000.0).await;
    let download = session.get("/host_backup", &[], None).await.unwrap();
    let mut reader = download.into_async_read();
    let mut magic = [0u8; 2];
    reader.read_exact(&mut magic).await.unwrap();
    assert_eq!(magic, [0x1f, 0x8b]);
}
