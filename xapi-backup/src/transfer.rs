//! Small data-plane steps shared by the backups of pool metadata and hosts: a download in a
//! task of our own, an upload from a restore point's stream, waiting for the task.

use futures::TryStreamExt as _;
use serde::de::DeserializeOwned;
use xapi_core::api::Task;
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::Ref;

use crate::engine_error::{EngineError, xapi};
use crate::repo::{Manifest, Repository, StreamRecord};

/// A task of our own for a transfer, so that its outcome can be read after the body.
pub(crate) async fn new_task(
    session: &SessionHandle,
    label: &str,
    what: &str,
) -> Result<Ref<Task>, EngineError> {
    session
        .create_task(label, what)
        .await
        .map_err(xapi("task.create"))
}

/// Waits for a transfer's task; its result.
pub(crate) async fn wait<T: DeserializeOwned>(
    session: &SessionHandle,
    task: Ref<Task>,
    step: &'static str,
) -> Result<T, EngineError> {
    TaskHandle::<T>::new(session.clone(), task)
        .wait()
        .await
        .map_err(xapi(step))
}

/// `PUT path?query` of a restore point's stream, read again from the repository (every chunk
/// verified) for each attempt, so that redirects are followed; a repository error comes out
/// as the client's `Body` error, whose source is the [`crate::Error`].
pub(crate) async fn put_stream(
    session: &SessionHandle,
    (repo, manifest, stream): (&Repository, &Manifest, &StreamRecord),
    path: &str,
    query: &[(&str, &str)],
    task: &Ref<Task>,
    step: &'static str,
) -> Result<(), EngineError> {
    session
        .put_reopenable(path, query, Some(task), stream.size, || async {
            repo.stream_chunks(manifest, &stream.key)
                .await
                .map(|chunks| chunks.map_err(std::io::Error::other))
        })
        .await
        .map_err(xapi(step))?;
    Ok(())
}
