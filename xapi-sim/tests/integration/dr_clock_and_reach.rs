//! Starts stamped with the simulated clock (order and start delays readable back, no real
//! time spent), and a pool that stops answering as a lost site does.

use std::time::{Duration, Instant};

use crate::support;
use crate::support::dr::{demo, named};

use xapi_core::wire::DateTime;

/// The simulated start time of `vm`, in Unix seconds.
async fn started_at(session: &xapi_core::client::SessionHandle, vm: &str) -> i64 {
    let metrics: String = session.call("VM.get_metrics", (vm,)).await.unwrap();
    let stamp: String = session
        .call("VM_metrics.get_start_time", (&metrics,))
        .await
        .unwrap();
    DateTime::parse(&stamp).unwrap().to_unix_seconds().unwrap()
}

#[tokio::test]
async fn vapp_starts_are_stamped_in_order_with_their_delays_on_the_simulated_clock() {
    let (sim, primary, _dr) = demo(&[]).await;
    let app = named(&primary, "VM_appliance", "web-shop").await;
    primary
        .call::<()>("VM_appliance.hard_shutdown", (&app,))
        .await
        .unwrap();
    let real = Instant::now();
    primary
        .call::<()>("VM_appliance.start", (&app, false))
        .await
        .unwrap();
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "40 s of start delays cost no real time"
    );
    let db = started_at(&primary, &named(&primary, "VM", "web-db").await).await;
    let app_1 = started_at(&primary, &named(&primary, "VM", "web-app-1").await).await;
    let app_2 = started_at(&primary, &named(&primary, "VM", "web-app-2").await).await;
    let frontend = started_at(&primary, &named(&primary, "VM", "web-frontend").await).await;
    // order 0 (web-db, 30 s), then order 1 side by side (10 s and 5 s), then order 2
    let near = |gap: i64, expected: i64| (gap - expected).abs() <= 1;
    assert!(near(app_1 - db, 30), "{db} {app_1}");
    assert!(near(app_2 - db, 30), "{db} {app_2}");
    assert!(near(frontend - db, 40), "{db} {frontend}");
    let now = sim
        .clock()
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(now >= frontend, "the clock has moved past the last start");
}

#[tokio::test]
async fn an_unreachable_pool_refuses_connections_and_answers_again() {
    let (sim, primary, dr) = demo(&[]).await;
    sim.set_reachable("primary", false).unwrap();
    assert_eq!(sim.is_reachable("primary"), Some(false));
    let started = Instant::now();
    match primary.call::<Vec<String>>("VM.get_all", ()).await {
        Err(xapi_core::Error::Api(f)) => panic!("a lost site gives no XAPI answer: {f:?}"),
        Err(_) => {}
        Ok(_) => panic!("a lost site does not answer"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    // the master's port and its member's, from any client
    let endpoint = sim.pool("primary").unwrap().clone();
    let mut addrs = vec![endpoint.addr.to_string()];
    addrs.extend(
        endpoint
            .member_urls
            .iter()
            .map(|u| u.trim_start_matches("http://").to_owned()),
    );
    assert_eq!(addrs.len(), 2);
    for addr in addrs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer).await;
        assert!(
            read.is_err() || answer.is_empty(),
            "{addr} answered: {answer:?}"
        );
    }
    // the other site answers meanwhile
    let dr_vms: Vec<String> = dr.call("VM.get_all", ()).await.unwrap();
    assert!(dr_vms.is_empty());

    sim.set_reachable("primary", true).unwrap();
    let again = support::login_to(&sim, &sim.pool("primary").unwrap().url).await;
    let vms: Vec<String> = again.call("VM.get_all", ()).await.unwrap();
    assert!(!vms.is_empty());
    assert!(sim.set_reachable("nowhere", false).is_err());
}
