//! `PUT /pool/xmldbdump` with what `GET /pool/xmldbdump` served: a real restore undoes the
//! changes made since the dump and drops every session, as xapi's restart does; `dry_run`
//! changes nothing; a dump of another schema version fails with
//! `RESTORE_INCOMPATIBLE_VERSION`; an upload without `Content-Length` gets 400; as
//! `prepare_database_for_restore`, only the dump's master is kept and it becomes this host, and a
//! physical NIC this host lacks fails the restore with `RESTORE_TARGET_MISSING_DEVICE`.

use crate::support;

use std::time::Duration;

use support::failure_code as code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xapi_core::client::{Protocol, SessionHandle};
use xapi_sim::{Scenario, SimHandle};

/// A root session (XML-RPC) on the primary pool of `sim`.
async fn login(sim: &SimHandle) -> SessionHandle {
    support::login_over(sim, sim.url(), Protocol::XmlRpc).await
}

async fn dump(session: &SessionHandle) -> Vec<u8> {
    support::download(session, "/pool/xmldbdump", &[]).await
}

/// Upload a dump; the task's reference.
async fn restore(session: &SessionHandle, query: &[(&str, &str)], xml: Vec<u8>) -> String {
    support::upload(session, "/pool/xmldbdump", query, xml).await
}

async fn status_and_error(session: &SessionHandle, task: &str) -> (String, Vec<String>) {
    let status: String = session.call("task.get_status", (task,)).await.unwrap();
    let info: Vec<String> = session.call("task.get_error_info", (task,)).await.unwrap();
    (status, info)
}

async fn a_vm(session: &SessionHandle) -> String {
    support::vm_named(session, "legacy-crm").await
}

#[tokio::test]
async fn restore_undoes_the_changes_and_ends_every_session() {
    let sim = support::start(Scenario::Demo, false).await;
    let session = login(&sim).await;
    let vm = a_vm(&session).await;
    let vms_before: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
    let xml = dump(&session).await;

    let _: () = session
        .call("VM.set_name_label", (&vm, "renamed after the dump"))
        .await
        .unwrap();
    let clone: String = session
        .call("VM.clone", (&vm, "made after the dump"))
        .await
        .unwrap();

    // a dry run validates and changes nothing
    let task = restore(&session, &[("dry_run", "true")], xml.clone()).await;
    assert_eq!(status_and_error(&session, &task).await.0, "success");
    let name: String = session.call("VM.get_name_label", (&vm,)).await.unwrap();
    assert_eq!(name, "renamed after the dump");

    // the same session reference without the password, so the client cannot log in again
    let attached = session.client().attach_session(session.reference());
    restore(&session, &[], xml).await;
    assert_eq!(
        code(attached.call::<String>("VM.get_name_label", (&vm,)).await),
        "SESSION_INVALID",
        "the restore ends every session, as xapi's restart"
    );
    let again = login(&sim).await;
    let name: String = again.call("VM.get_name_label", (&vm,)).await.unwrap();
    assert_eq!(name, "legacy-crm", "the rename is undone");
    assert_eq!(
        code(again.call::<String>("VM.get_uuid", (&clone,)).await),
        "HANDLE_INVALID",
        "the clone made after the dump is gone"
    );
    let mut vms_after: Vec<String> = again.call("VM.get_all", ()).await.unwrap();
    let mut vms_before = vms_before;
    vms_after.sort();
    vms_before.sort();
    assert_eq!(vms_after, vms_before);
    let vbds: Vec<String> = again.call("VM.get_VBDs", (&vm,)).await.unwrap();
    assert!(!vbds.is_empty(), "one-to-many sets are linked again");
}

#[tokio::test]
async fn another_schema_version_is_refused() {
    let sim = support::start(Scenario::Demo, false).await;
    let session = login(&sim).await;
    let xml = String::from_utf8(dump(&session).await).unwrap();
    let older = xml.replacen(
        "<pair key=\"schema_minor_vsn\" value=\"909\"/>",
        "<pair key=\"schema_minor_vsn\" value=\"775\"/>",
        1,
    );
    assert_ne!(older, xml, "the dump names schema 5.909");
    let task = restore(&session, &[], older.into_bytes()).await;
    let (status, info) = status_and_error(&session, &task).await;
    assert_eq!(status, "failure");
    assert_eq!(info, vec!["RESTORE_INCOMPATIBLE_VERSION".to_owned()]);
    // nothing happened: the session still works
    let _: Vec<String> = session.call("VM.get_all", ()).await.unwrap();
}

#[tokio::test]
async fn a_restore_without_content_length_is_a_bad_request() {
    let sim = support::start(Scenario::Demo, false).await;
    let session = login(&sim).await;
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "PUT /pool/xmldbdump?session_id={} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        session.reference()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
}

/// The pool's master host and every host, through `session`.
async fn hosts(session: &SessionHandle) -> (String, Vec<String>) {
    let pools: Vec<String> = session.call("pool.get_all", ()).await.unwrap();
    let master: String = session.call("pool.get_master", (&pools[0],)).await.unwrap();
    let all: Vec<String> = session.call("host.get_all", ()).await.unwrap();
    (master, all)
}

#[tokio::test]
async fn a_restore_keeps_only_the_master_which_becomes_this_host() {
    let sim = support::start(Scenario::Demo, false).await;
    let primary = login(&sim).await;
    let (master, all) = hosts(&primary).await;
    assert!(all.len() >= 2, "the demo's primary pool has members");
    let my_uuid: String = primary.call("host.get_uuid", (&master,)).await.unwrap();

    // the DR pool's dump, restored into the primary: its master takes the primary's identity
    let dr = support::login_to(&sim, &sim.pool("dr").unwrap().url).await;
    let (dr_master, _) = hosts(&dr).await;
    let xml = dump(&dr).await;
    restore(&primary, &[], xml).await;
    let again = login(&sim).await;
    let (master_now, all_now) = hosts(&again).await;
    assert_eq!(master_now, dr_master);
    assert_eq!(
        all_now,
        vec![dr_master.clone()],
        "the dump's other hosts are dropped"
    );
    let uuid: String = again.call("host.get_uuid", (&master_now,)).await.unwrap();
    assert_eq!(
        uuid, my_uuid,
        "the master takes this host's installation UUID"
    );
}

#[tokio::test]
async fn a_physical_nic_this_host_lacks_fails_the_restore() {
    let sim = support::start(Scenario::Demo, false).await;
    let session = login(&sim).await;
    let (master, _) = hosts(&session).await;
    let xml = String::from_utf8(dump(&session).await).unwrap();
    let pif = format!(
        "<row ref=\"OpaqueRef:5c0b0e5e-0000-4000-8000-00000000f1f0\" \
         uuid=\"5c0b0e5e-0000-4000-8000-00000000f1f0\" host=\"{master}\" device=\"eth7\" \
         physical=\"true\" management=\"false\" MAC=\"00:16:3e:00:00:07\"/>"
    );
    let with_pif = if xml.contains("<table name=\"PIF\"/>") {
        xml.replacen(
            "<table name=\"PIF\"/>",
            &format!("<table name=\"PIF\">{pif}</table>"),
            1,
        )
    } else {
        xml.replacen(
            "<table name=\"PIF\">",
            &format!("<table name=\"PIF\">{pif}"),
            1,
        )
    };
    assert_ne!(with_pif, xml, "the dump has a PIF table");
    let task = restore(&session, &[("dry_run", "true")], with_pif.into_bytes()).await;
    let (status, info) = status_and_error(&session, &task).await;
    assert_eq!(status, "failure");
    assert_eq!(info, vec!["RESTORE_TARGET_MISSING_DEVICE", "eth7"]);
}
