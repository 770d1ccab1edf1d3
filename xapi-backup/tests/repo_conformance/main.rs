//! The repository conformance suite: every repository operation, written once against a
//! [`Target`] factory, run against a local directory and (with the `s3` feature) a real
//! S3-compatible server, SeaweedFS: `cargo test -p xapi-backup --features testing --test
//! repo_conformance` (`testing` brings the S3 target and the SeaweedFS launcher).

mod gate;
mod local_only;
#[cfg(feature = "testing")]
mod s3;
mod suite;

use xapi_backup::repo::Target;

/// Makes fresh, empty targets for one test; keeps what it needs alive until dropped.
pub trait TargetFactory: Send + Sync {
    /// A new empty target.
    fn target(&self) -> Target;
}

/// Local directories under one temporary directory.
pub struct LocalDirs {
    root: tempfile::TempDir,
}

impl Default for LocalDirs {
    /// A factory rooted in a new temporary directory.
    fn default() -> Self {
        LocalDirs {
            root: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl TargetFactory for LocalDirs {
    fn target(&self) -> Target {
        let dir = tempfile::Builder::new()
            .prefix("repo-")
            .tempdir_in(self.root.path())
            .expect("a temporary directory")
            .keep();
        Target::LocalDir(dir)
    }
}

/// One `#[tokio::test]` per case of [`suite`], each with a fresh factory from `$factory`.
macro_rules! conformance_suite {
    ($module:ident, $factory:expr) => {
        mod $module {
            use super::*;
            conformance_suite!(@cases $factory;
                write_list_and_read_back_a_vm,
                second_backup_of_a_clone_stores_only_new_chunks,
                sixteen_racing_writers_make_exactly_one_restore_point,
                conditional_create_has_one_winner_among_sixteen,
                nothing_without_a_manifest_is_listed,
                prune_racing_a_backup_that_reuses_old_chunks,
                prune_and_backups_run_concurrently_without_losing_data,
                verify_detects_a_flipped_byte_and_a_missing_chunk,
                reading_a_missing_chunk_names_its_offset,
                encryption_on_hides_content_and_names,
                encrypted_repository_is_unreadable_without_its_key,
                retention_on_a_synthetic_calendar,
                unknown_format_version_is_refused,
                maintenance_lock_excludes_and_expires,
                streams_of_the_wrong_size_are_refused,
                every_kind_is_listed_on_its_own,
                a_two_tib_sparse_disk_is_indexed_without_storing_its_zeros,
                an_unchanged_chunk_does_not_wait_for_uploads_in_flight,
            );
        }
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let factory = $factory.await;
                crate::suite::$case(&factory).await;
            }
        )*
    };
}

conformance_suite!(local_dir, async { LocalDirs::default() });
#[cfg(feature = "testing")]
conformance_suite!(s3_seaweedfs, s3::Server::start().ready());
