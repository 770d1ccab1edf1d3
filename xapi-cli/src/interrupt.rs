//! Ctrl-C (SIGINT) and SIGTERM: the first asks the running command to stop cleanly (a backup
//! cancels its XAPI tasks and removes its snapshots; nothing half-written is listed) and the
//! command then exits 130 saying what it cleaned up; a second one stops at once.

use tokio_util::sync::CancellationToken;

/// Watches for SIGINT and SIGTERM; the returned token is cancelled at the first.
pub(crate) fn watch() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        next_signal().await;
        eprintln!("xapictl: interrupted: stopping cleanly (press Ctrl-C again to stop at once)");
        cancel.cancel();
        next_signal().await;
        eprintln!(
            "xapictl: interrupted again: stopping now; snapshots may be left (the next backup removes them)"
        );
        std::process::exit(130);
    });
    token
}

/// The next SIGINT or SIGTERM.
async fn next_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
