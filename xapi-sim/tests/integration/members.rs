//! Pool members that are not the master: `HOST_IS_SLAVE` naming the master, which clients
//! follow, and `302` redirects of the data plane to the master.

use crate::support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xapi_core::client::{Client, Protocol};
use xapi_sim::{Scenario, SimConfig, Simulator};

#[tokio::test]
async fn a_member_names_the_master_and_clients_follow() {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let primary = sim.pool("primary").unwrap();
    assert_eq!(primary.member_urls.len(), 1, "the primary's second host");
    let member = &primary.member_urls[0];
    assert!(member.starts_with("http://127.0.0.2:"));

    for protocol in [Protocol::XmlRpc, Protocol::JsonRpc] {
        let client = Client::builder(member).protocol(protocol).build().unwrap();
        support::assert_login_moves_to_the_master(&client).await;
    }

    // the data plane redirects to the master, query kept
    let addr = member.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /export?uuid=u&session_id=s HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 302"), "{reply}");
    let port = primary.addr.port();
    assert!(
        reply.to_ascii_lowercase().contains(&format!(
            "location: http://127.0.0.1:{port}/export?uuid=u&session_id=s"
        )),
        "{reply}"
    );
}
