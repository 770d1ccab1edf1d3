//! A running simulator's `Debug` (which prints its pools) never shows the password.

use xapi_sim::{Scenario, SimConfig, Simulator};

#[tokio::test]
async fn handle_and_pools_debug_leave_the_password_out() {
    let sim = Simulator::start(SimConfig {
        password: "s3cret-not-for-logs".to_owned(),
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .expect("the simulator starts");
    let printed = format!("{sim:?} {sim:#?}");
    assert!(!printed.contains("s3cret-not-for-logs"), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(
        printed.contains("primary"),
        "the pools are printed: {printed}"
    );
    assert_eq!(sim.password(), "s3cret-not-for-logs");
}
