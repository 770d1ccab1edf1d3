//! The `xapi-sim` binary stops cleanly on SIGTERM (what scripts and service managers send),
//! saving its state, and a new process on the same `--state` serves the same pools.

use crate::support;

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use xapi_core::client::{Client, Password, Protocol, SessionHandle};
use xapi_sim::DEFAULT_PASSWORD;

/// Start the binary on `state` with the demo; the process and the primary pool's URL.
async fn spawn(state: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xapi-sim"))
        .args(["--listen", "127.0.0.1:0", "--scenario", "demo", "--state"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut primary = None;
    while primary.is_none() {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the banner before the end of stdout");
        if let Some(url) = line
            .strip_prefix("xapi-sim listening on ")
            .and_then(|rest| rest.strip_suffix(" pool=primary"))
        {
            primary = Some(url.to_owned());
        }
    }
    (child, primary.unwrap())
}

async fn login(url: &str) -> SessionHandle {
    Client::builder(url)
        .protocol(Protocol::JsonRpc)
        .build()
        .unwrap()
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "binary test",
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_saves_and_a_new_process_serves_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn(dir.path()).await;
    let session = login(&url).await;
    let vdi = support::first_disk_of(&session, "test-vm").await;
    let uuid: String = session.call("VDI.get_uuid", (&vdi,)).await.unwrap();
    session.call::<()>("VDI.enable_cbt", (&vdi,)).await.unwrap();
    let vms: Vec<String> = session
        .call("VM.get_by_name_label", ("ldap",))
        .await
        .unwrap();
    session
        .call::<()>("VM.set_name_description", (&vms[0], "set before SIGTERM"))
        .await
        .unwrap();

    let pid = child.id().expect("a running child").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the process normally, not by the signal: {status:?}"
    );
    let cbt = std::fs::read_to_string(dir.path().join("primary").join("cbt.txt")).unwrap();
    assert!(
        cbt.lines()
            .any(|l| l == format!("point {uuid} {uuid} live")),
        "the tracked live disk is saved: {cbt}"
    );

    let (_child, url) = spawn(dir.path()).await;
    let session = login(&url).await;
    let description: String = session
        .call("VM.get_name_description", (&vms[0],))
        .await
        .unwrap();
    assert_eq!(description, "set before SIGTERM");
    assert!(
        session
            .call::<bool>("VDI.get_cbt_enabled", (&vdi,))
            .await
            .unwrap()
    );
}
