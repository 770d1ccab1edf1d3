//! `xapi-sim`: serve simulated XAPI pools until killed.
//!
//! Prints `xapi-sim listening on URL` (one line per pool, with ` pool=NAME`, in the demo) and,
//! with `--tls`, `fingerprint sha256:HEX` then `plain http on URL pool=NAME` per pool (a host
//! serves plain HTTP next to HTTPS). Ctrl-C or SIGTERM saves the state and exits.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

/// A XAPI pool simulator on loopback.
#[derive(Debug, Parser)]
#[command(name = "xapi-sim", version)]
struct Args {
    /// Address of the first pool (later pools take the next ports; port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory for disk images and saved state.
    #[arg(long)]
    state: PathBuf,
    /// Pools to start with: empty, demo or large:N.
    #[arg(long, default_value = "empty")]
    scenario: Scenario,
    /// Password of root.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// Serve HTTPS with a generated self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Speed factor of the simulated clock.
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = SimConfig {
        listen: args.listen,
        state_dir: Some(args.state),
        scenario: args.scenario,
        password: args.password,
        tls: args.tls,
        clock_speed: args.clock_speed,
    };
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(err) => {
            eprintln!("xapi-sim: {err}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        for line in sim.banner_lines() {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }
    match stop_signal().await {
        // dropping the handle saves the state one last time
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xapi-sim: cannot wait for a signal: {err}");
            // serve on regardless: the process is stopped by being killed
            std::future::pending::<()>().await;
            ExitCode::FAILURE
        }
    }
}

/// Wait for Ctrl-C or (on Unix) SIGTERM, what scripts and service managers stop it with.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
