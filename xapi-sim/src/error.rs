//! The one error type of xapi-sim (starting and running the server; XAPI failures are data
//! inside the protocol and never reach it).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can stop the simulator from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No pool of the simulator reaches a storage mirror (only the `demo` scenario has one).
    #[error("no pool of this simulator reaches a storage mirror (only the demo scenario has one)")]
    NoMirror,
    /// Breaking or resyncing the storage mirror failed on the disk images.
    #[error("switching the storage mirror to {mode}: {source}")]
    Mirror {
        /// The mode asked for.
        mode: crate::MirrorMode,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The simulator has no pool of this name.
    #[error("no pool called {0:?} in this simulator")]
    NoSuchPool(String),
    /// A pool has no member of that name (or it could not be made its master).
    #[error("pool {pool:?}: cannot make {host:?} its master: {reason}")]
    NewMaster {
        /// The pool.
        pool: String,
        /// The host asked for.
        host: String,
        /// Why.
        reason: String,
    },
    /// The demo's primary pool has no SR of this name with a storage mirror.
    #[error("no storage mirror of an SR called {0:?}")]
    NoSuchMirror(String),
    /// A mirror can be reversed only once it is broken (mirroring halted, as a failover needs).
    #[error("the storage mirror of {0:?} still replicates: break it before reversing it")]
    MirrorNotBroken(String),
    /// The self-signed TLS identity could not be made.
    #[error("cannot make the self-signed tls certificate: {0}")]
    Tls(String),
    /// The state directory could not be used.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A scenario name that is not `empty`, `demo` or `large:N`.
    #[error("unknown scenario {0:?} (expected empty, demo or large:N)")]
    Scenario(String),
    /// Building a scenario failed (a datamodel class it needs is missing).
    #[error("building scenario {scenario}: {code} {params:?}")]
    Build {
        /// The scenario.
        scenario: String,
        /// The XAPI error code raised while building.
        code: String,
        /// Its parameters.
        params: Vec<String>,
    },
}
