//! The repository conformance suite against a real S3-compatible server: SeaweedFS installed by
//! [`seaweedfs::install`]; the test harness starts one `weed mini` per test on free loopback
//! ports (`xapi_backup::repo::SeaweedFs`) and stops it afterwards.

use crate::run::{cargo, run};
use crate::seaweedfs;

/// Install SeaweedFS and run xapi-backup's S3 conformance cases.
pub(crate) fn run_suite() -> Result<(), String> {
    let weed = seaweedfs::install()?;
    run(cargo()
        .args([
            "test",
            "-p",
            "xapi-backup",
            "--features",
            "testing",
            "--test",
            "repo_conformance",
            "s3_seaweedfs",
        ])
        .env(seaweedfs::WEED_ENV, &weed))
}
