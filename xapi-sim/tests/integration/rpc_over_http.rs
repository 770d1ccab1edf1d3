//! The simulator over real sockets, with hand-written HTTP requests and request bodies: the two
//! RPC encodings, shared sessions, HTTP-level failures and the admin endpoints.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xapi_core::wire::{Limits, xmlrpc};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

/// One HTTP/1.1 exchange on a fresh connection: status, lower-cased headers, body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn post(sim: &SimHandle, path: &str, content_type: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(sim.addr())
        .await
        .expect("connect to the simulator");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sim.addr(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("reply within 30 s")
        .expect("read reply");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("reply has a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn method_call(method: &str, params: &[&str]) -> Vec<u8> {
    let mut encoded = String::new();
    for p in params {
        encoded.push_str("<param><value><string>");
        encoded.push_str(p);
        encoded.push_str("</string></value></param>");
    }
    let params = encoded;
    format!("<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>{params}</params></methodCall>")
        .into_bytes()
}

async fn xml_call<T: serde::de::DeserializeOwned>(
    sim: &SimHandle,
    method: &str,
    params: &[&str],
) -> Result<T, Vec<String>> {
    let reply = post(sim, "/", "text/xml", &method_call(method, params)).await;
    assert_eq!(reply.status, 200, "{method}: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/xml"));
    match xmlrpc::decode_response::<T>(&reply.body, &Limits::default())
        .expect("a well-formed response")
    {
        Ok(value) => Ok(value),
        Err(failure) => Err(std::iter::once(failure.code.as_str().to_owned())
            .chain(failure.params)
            .collect()),
    }
}

async fn demo() -> SimHandle {
    Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .expect("the demo starts")
}

async fn login(sim: &SimHandle) -> String {
    xml_call::<String>(
        sim,
        "session.login_with_password",
        &["root", DEFAULT_PASSWORD, "1.0", "test"],
    )
    .await
    .expect("root logs in")
}

#[tokio::test]
async fn xmlrpc_login_and_list_vms() {
    let sim = demo().await;
    let session = login(&sim).await;
    assert!(session.starts_with("OpaqueRef:"));
    let vms: Vec<String> = xml_call(&sim, "VM.get_all", &[&session]).await.unwrap();
    assert!(
        vms.len() >= 20,
        "the demo has about 20 VMs, got {}",
        vms.len()
    );
    let name: String = xml_call(&sim, "VM.get_name_label", &[&session, &vms[0]])
        .await
        .unwrap();
    assert!(!name.is_empty());
    let err = xml_call::<String>(&sim, "VM.get_name_label", &[&session, "OpaqueRef:nope"])
        .await
        .unwrap_err();
    assert_eq!(err, ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]);
    xml_call::<String>(&sim, "session.logout", &[&session])
        .await
        .unwrap();
    let err = xml_call::<Vec<String>>(&sim, "VM.get_all", &[&session])
        .await
        .unwrap_err();
    assert_eq!(err, ["SESSION_INVALID", session.as_str()]);
}

#[tokio::test]
async fn both_xmlrpc_paths_answer() {
    let sim = demo().await;
    let session = login(&sim).await;
    let reply = post(
        &sim,
        "/RPC2",
        "text/xml",
        &method_call("host.get_all", &[&session]),
    )
    .await;
    assert_eq!(reply.status, 200);
    let hosts: Vec<String> = xmlrpc::decode_response(&reply.body, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn jsonrpc_v1_and_v2_shapes_and_a_shared_session() {
    let sim = demo().await;
    let session = login(&sim).await;
    let v2 =
        format!(r#"{{"jsonrpc":"2.0","method":"VM.get_all","params":["{session}"],"id":"x-1"}}"#);
    let reply = post(&sim, "/jsonrpc", "application/json", v2.as_bytes()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], "x-1");
    assert!(answer["result"].as_array().is_some_and(|a| a.len() >= 20));

    let v2_error = format!(
        r#"{{"jsonrpc":"2.0","method":"VM.get_record","params":["{session}","OpaqueRef:x"],"id":2}}"#
    );
    let answer: serde_json::Value = serde_json::from_slice(
        &post(&sim, "/jsonrpc", "application/json", v2_error.as_bytes())
            .await
            .body,
    )
    .unwrap();
    assert_eq!(answer["error"]["code"], 1);
    assert_eq!(answer["error"]["message"], "HANDLE_INVALID");
    assert_eq!(
        answer["error"]["data"],
        serde_json::json!(["VM", "OpaqueRef:x"])
    );

    let v1_error =
        format!(r#"{{"method":"VM.get_record","params":["{session}","OpaqueRef:x"],"id":3}}"#);
    let answer: serde_json::Value = serde_json::from_slice(
        &post(&sim, "/jsonrpc", "application/json", v1_error.as_bytes())
            .await
            .body,
    )
    .unwrap();
    assert_eq!(answer["result"], serde_json::Value::Null);
    assert_eq!(
        answer["error"],
        serde_json::json!(["HANDLE_INVALID", "VM", "OpaqueRef:x"])
    );
    assert_eq!(answer["id"], 3);
}

#[tokio::test]
async fn unparsable_and_oversized_requests_get_http_500_html() {
    let sim = demo().await;
    let reply = post(&sim, "/", "text/xml", b"<methodCall><methodName>VM.get_all").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert!(reply.text().contains("<html>"));
    let reply = post(&sim, "/jsonrpc", "application/json", b"{\"method\":").await;
    assert_eq!(reply.status, 500);
    let huge = method_call("VM.get_all", &[&"x".repeat(400 * 1024)]);
    let reply = post(&sim, "/", "text/xml", &huge).await;
    assert_eq!(reply.status, 500);
}

#[tokio::test]
async fn admin_endpoint_switches_http_500_on() {
    let sim = demo().await;
    let reply = post(&sim, "/_sim/fault?http_500=1", "text/plain", b"").await;
    assert_eq!(reply.status, 200);
    let reply = post(
        &sim,
        "/",
        "text/xml",
        &method_call("session.login_with_password", &["root", DEFAULT_PASSWORD]),
    )
    .await;
    assert_eq!(reply.status, 500);
    login(&sim).await;
    let reply = post(&sim, "/_sim/fault?bogus=1", "text/plain", b"").await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn demo_pools_listen_on_their_own_ports() {
    let sim = demo().await;
    let names: Vec<&str> = sim.pools().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["primary", "dr"]);
    assert_ne!(sim.pools()[0].addr, sim.pools()[1].addr);
    let lines = sim.banner_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        format!(
            "xapi-sim listening on http://{} pool=primary",
            sim.pools()[0].addr
        )
    );
}

#[tokio::test]
async fn tls_serves_the_printed_fingerprint() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let fingerprint = sim.fingerprint().expect("a fingerprint with tls");
    assert_eq!(fingerprint.len(), 64);
    assert!(sim.url().starts_with("https://"));
    assert_eq!(
        sim.banner_lines()[1],
        format!("fingerprint sha256:{fingerprint}")
    );
}

/// xapi counts parameters without the session, on both sides of the mismatch (gen_server.ml):
/// `VM.get_record` with only a session expects 1 and got 0.
#[tokio::test]
async fn parameter_counts_leave_out_the_session() {
    let sim = demo().await;
    let session = login(&sim).await;
    let mismatch = |method: &str, expected: &str, received: &str| {
        vec![
            "MESSAGE_PARAMETER_COUNT_MISMATCH".to_owned(),
            method.to_owned(),
            expected.to_owned(),
            received.to_owned(),
        ]
    };
    let err = xml_call::<String>(&sim, "VM.get_record", &[&session])
        .await
        .expect_err("no VM given");
    assert_eq!(err, mismatch("VM.get_record", "1", "0"));
    let err = xml_call::<String>(&sim, "VM.get_record", &[&session, "a", "b"])
        .await
        .expect_err("one too many");
    assert_eq!(err, mismatch("VM.get_record", "1", "2"));
    // nothing at all: xapi still takes the session off its count
    let err = xml_call::<String>(&sim, "VM.get_all", &[])
        .await
        .expect_err("no session");
    assert_eq!(err, mismatch("VM.get_all", "0", "-1"));
    // the name is the synchronous one, as xapi strips `Async.` before dispatching
    let err = xml_call::<String>(&sim, "Async.VM.clean_shutdown", &[&session])
        .await
        .expect_err("no VM given");
    assert_eq!(err, mismatch("VM.clean_shutdown", "1", "0"));
    // VM.snapshot's `ignore_vdis` has a default: the mandatory count is 2 (vm, new_name)
    let err = xml_call::<String>(&sim, "VM.snapshot", &[&session, "OpaqueRef:x"])
        .await
        .expect_err("no name given");
    assert_eq!(err, mismatch("VM.snapshot", "2", "1"));
    // get_all_records_where is dispatched apart but counts the same way
    let err = xml_call::<String>(&sim, "VM.get_all_records_where", &[&session])
        .await
        .expect_err("no expression");
    assert_eq!(err, mismatch("VM.get_all_records_where", "1", "0"));
}

/// Session-less messages count every parameter: login takes a user name and a password, its
/// version and originator have defaults, and surplus parameters after those are ignored.
#[tokio::test]
async fn session_less_messages_count_every_parameter() {
    let sim = demo().await;
    let err = xml_call::<String>(&sim, "session.login_with_password", &["root"])
        .await
        .expect_err("no password");
    assert_eq!(
        err,
        [
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "session.login_with_password",
            "2",
            "1"
        ]
    );
    let two = xml_call::<String>(
        &sim,
        "session.login_with_password",
        &["root", DEFAULT_PASSWORD],
    )
    .await
    .expect("version and originator have defaults");
    let surplus = xml_call::<String>(
        &sim,
        "session.login_with_password",
        &["root", DEFAULT_PASSWORD, "1.0", "test", "surplus"],
    )
    .await
    .expect("a surplus parameter after the defaults is ignored");
    assert!(two.starts_with("OpaqueRef:") && surplus.starts_with("OpaqueRef:"));
}

/// A message the datamodel marks removed (VM.snapshot_with_quiesce, removed in quebec) is still
/// dispatched: xapi checks its parameter count, then the session, then answers
/// `MESSAGE_REMOVED` with no parameters, whether called synchronously or not.
#[tokio::test]
async fn removed_messages_answer_message_removed() {
    let sim = demo().await;
    let session = login(&sim).await;
    let vms: Vec<String> = xml_call(&sim, "VM.get_all", &[&session])
        .await
        .expect("VMs");
    for method in ["VM.snapshot_with_quiesce", "Async.VM.snapshot_with_quiesce"] {
        let err = xml_call::<String>(&sim, method, &[&session, &vms[0], "quiesced"])
            .await
            .expect_err("removed");
        assert_eq!(err, ["MESSAGE_REMOVED"], "{method}");
    }
    let err = xml_call::<String>(&sim, "VM.snapshot_with_quiesce", &[&session, &vms[0]])
        .await
        .expect_err("no name");
    assert_eq!(
        err,
        [
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "VM.snapshot_with_quiesce",
            "2",
            "1"
        ]
    );
    let err = xml_call::<String>(
        &sim,
        "VM.snapshot_with_quiesce",
        &["OpaqueRef:bogus", &vms[0], "quiesced"],
    )
    .await
    .expect_err("bad session");
    assert_eq!(err, ["SESSION_INVALID", "OpaqueRef:bogus"]);
    // a whole removed class (VMPP) and a removed getter of a live class
    let err = xml_call::<String>(&sim, "VMPP.get_all", &[&session])
        .await
        .expect_err("removed");
    assert_eq!(err, ["MESSAGE_REMOVED"]);
    let err = xml_call::<String>(&sim, "VM_metrics.get_VCPUs_utilisation", &[&session, "x"])
        .await
        .expect_err("removed");
    assert_eq!(err, ["MESSAGE_REMOVED"]);
}

/// `event.from`'s `valid_ref_counts` are int32 in xapi: `<i4>` on XML-RPC (its int64 values are
/// untyped text) and numbers on JSON-RPC, never strings.
#[tokio::test]
async fn event_from_sends_ref_counts_as_int32() {
    let sim = demo().await;
    let session = login(&sim).await;
    let body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>event.from</methodName><params>\
         <param><value>{session}</value></param>\
         <param><value><array><data><value>vm</value></data></array></value></param>\
         <param><value></value></param>\
         <param><value><double>0</double></value></param></params></methodCall>"
    );
    let reply = post(&sim, "/", "text/xml", body.as_bytes()).await;
    let text = reply.text();
    let counts = text
        .split("<name>valid_ref_counts</name>")
        .nth(1)
        .expect("the batch has valid_ref_counts");
    assert!(
        counts.starts_with("<value><struct><member><name>vm</name><value><i4>"),
        "{counts}"
    );
    let batch: serde_json::Value = {
        let call = format!(
            r#"{{"jsonrpc":"2.0","method":"event.from","params":["{session}",["vm"],"",0.0],"id":1}}"#
        );
        let reply = post(&sim, "/jsonrpc", "application/json", call.as_bytes()).await;
        serde_json::from_slice(&reply.body).expect("JSON")
    };
    let vms = &batch["result"]["valid_ref_counts"]["vm"];
    assert!(vms.as_i64().is_some_and(|n| n >= 20), "{batch}");
}
