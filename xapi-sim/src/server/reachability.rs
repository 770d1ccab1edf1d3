//! Whether a pool answers at all: a pool made unreachable ([`crate::SimHandle::set_reachable`])
//! plays a lost site. Every connection to its RPC/HTTP port and its NBD servers is closed at
//! once with a reset, and the connections already open are cut.

use std::future::Future;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The switch of one pool (held by the pool; its listeners watch it).
#[derive(Debug)]
pub(crate) struct Reachability {
    up: watch::Sender<bool>,
}

impl Default for Reachability {
    fn default() -> Self {
        Self {
            up: watch::Sender::new(true),
        }
    }
}

impl Reachability {
    /// Make the pool answer again, or stop answering.
    pub(crate) fn set(&self, reachable: bool) {
        self.up.send_replace(reachable);
    }

    /// Whether the pool answers.
    pub(crate) fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Serve one accepted connection with `serve` while the pool is reachable: refused at once
    /// (reset) when it is not, cut when it becomes unreachable midway.
    pub(crate) async fn guard<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut watcher = self.up.subscribe();
        if !*watcher.borrow_and_update() {
            reset(&stream);
            return;
        }
        tokio::select! {
            () = serve(stream) => {}
            _ = watcher.wait_for(|up| !*up) => {}
        }
    }
}

/// Close with a reset rather than an orderly shutdown: the peer sees its connection refused
/// at once, not an empty answer.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}
