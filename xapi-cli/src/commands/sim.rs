//! `xapictl sim`: the embedded XAPI pool simulator in the foreground.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

use crate::exit::{Exit, Failure};

/// Options of `xapictl sim`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SimArgs {
    /// Pools to start with: empty, demo (a primary and a DR pool) or large:N.
    #[arg(long, default_value = "demo")]
    scenario: Scenario,
    /// Keep disk images and state in this directory (kept after exit; reloaded next time).
    /// Without it, a temporary directory is used and removed at exit.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Address of the first pool (later pools take the next ports; port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve HTTPS with a generated self-signed certificate (its fingerprint is printed).
    #[arg(long)]
    tls: bool,
    /// Speed factor of the simulated clock (vApp start delays pass this much faster).
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
}

/// Serve the simulator until Ctrl-C or SIGTERM, printing where its pools listen.
pub(crate) async fn run(args: SimArgs) -> Result<Exit, Failure> {
    let temporary = match &args.state {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("xapictl-sim-")
                .tempdir()
                .map_err(|err| Failure::failed(format!("cannot make a state directory: {err}")))?,
        ),
    };
    let state_dir = args
        .state
        .clone()
        .or_else(|| temporary.as_ref().map(|dir| dir.path().to_path_buf()));
    let config = SimConfig {
        listen: args.listen,
        state_dir,
        scenario: args.scenario,
        password: DEFAULT_PASSWORD.to_owned(),
        tls: args.tls,
        clock_speed: args.clock_speed,
    };
    // Listen for Ctrl-C and SIGTERM before the URLs are printed: whoever reads them may stop
    // the simulator at once, and a signal before the listener exists would kill the process.
    let signal = |kind| {
        tokio::signal::unix::signal(kind)
            .map_err(|err| Failure::failed(format!("cannot listen for signals: {err}")))
    };
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let sim = Simulator::start(config)
        .await
        .map_err(|err| Failure::failed(format!("cannot start the simulator: {err}")))?;
    {
        let mut out = std::io::stdout().lock();
        for line in sim.banner_lines() {
            let _ = writeln!(out, "{line}");
        }
        let first = sim.pools().first().map_or(sim.url(), |p| p.url.as_str());
        let _ = writeln!(
            out,
            "log in as root with password {DEFAULT_PASSWORD:?}, for example:\n  \
             XAPI_URL={first} XAPI_PASSWORD={DEFAULT_PASSWORD} xapictl vm list{}",
            sim.fingerprint()
                .map(|fp| format!(" --pin sha256:{fp}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "Ctrl-C stops it");
        let _ = out.flush();
    }
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    drop(sim);
    drop(temporary);
    // Stopping the simulator is what Ctrl-C is for here: a normal end.
    Ok(Exit::Done)
}
