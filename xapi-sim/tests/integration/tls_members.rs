//! Pool members over TLS: each non-master host serves HTTPS with a certificate of its own,
//! answers `HOST_IS_SLAVE` and redirects the data plane to the master with a 302.

use crate::support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xapi_core::client::{Client, Protocol, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario};

#[tokio::test]
async fn members_speak_tls_with_their_own_certificates() {
    let sim = support::start(Scenario::Demo, true).await;
    let primary = sim.pool("primary").unwrap();
    let master_pin: xapi_core::client::Sha256Fingerprint =
        sim.fingerprint().unwrap().parse().unwrap();
    assert_eq!(primary.member_urls.len(), 1, "the primary's second host");
    assert_eq!(primary.member_fingerprints.len(), 1);
    let member = &primary.member_urls[0];
    let port = primary.addr.port();
    assert_eq!(member, &format!("https://127.0.0.2:{port}"));
    let member_pin: xapi_core::client::Sha256Fingerprint =
        primary.member_fingerprints[0].parse().unwrap();
    assert_ne!(
        primary.member_fingerprints[0],
        sim.fingerprint().unwrap(),
        "a member has a certificate of its own"
    );

    for protocol in [Protocol::XmlRpc, Protocol::JsonRpc] {
        let client = Client::builder(member)
            .protocol(protocol)
            .tls(TlsPolicy::Pinned(member_pin))
            .pin_host("127.0.0.1", master_pin)
            .build()
            .unwrap();
        support::assert_login_moves_to_the_master(&client).await;
    }

    // the master's pin does not open the member: a pin is per host
    let wrong = Client::builder(member)
        .tls(TlsPolicy::Pinned(master_pin))
        .build()
        .unwrap();
    let refused = wrong
        .call_raw::<String>(
            "session.login_with_password",
            ("root", DEFAULT_PASSWORD, "1.0", "t"),
        )
        .await;
    assert!(
        !matches!(refused, Err(xapi_core::Error::Api(_)) | Ok(_)),
        "the member's certificate is not the master's: {refused:?}"
    );

    // the data plane redirects to the master over https, query kept; the handshake pinned to
    // the announced fingerprint shows it is the served certificate's
    let addr = member.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = support::connector_pinned_to(&primary.member_fingerprints[0])
        .connect(support::any_name(), tcp)
        .await
        .unwrap();
    let request = format!(
        "GET /export_raw_vdi?vdi=v&session_id=s HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 302"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains(&format!(
            "location: https://127.0.0.1:{port}/export_raw_vdi?vdi=v&session_id=s"
        )),
        "{reply}"
    );
}

/// With a state directory, every host keeps its certificate across restarts (as a real host
/// does): pins taken before a restart still hold after it.
#[tokio::test]
async fn certificates_survive_a_restart_on_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = || xapi_sim::SimConfig {
        state_dir: Some(dir.path().to_owned()),
        tls: true,
        ..xapi_sim::SimConfig::with_scenario(Scenario::Demo)
    };
    let first = xapi_sim::Simulator::start(config()).await.unwrap();
    let master = first.fingerprint().unwrap().to_owned();
    let members = first.pool("primary").unwrap().member_fingerprints.clone();
    assert!(!members.is_empty());
    assert!(
        members.iter().all(|m| *m != master),
        "members have their own"
    );
    first.shutdown();
    drop(first);

    let second = xapi_sim::Simulator::start(config()).await.unwrap();
    assert_eq!(second.fingerprint().unwrap(), master);
    assert_eq!(second.pool("primary").unwrap().member_fingerprints, members);
    // the pinned master still answers
    let session = support::login(&second).await;
    let pools: Vec<String> = session.call("pool.get_all", ()).await.unwrap();
    assert_eq!(pools.len(), 1);
}
