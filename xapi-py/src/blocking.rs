//! Running a future of the Rust client from Python: on the module's runtime, with the GIL
//! released, Ctrl-C honoured and panics turned into exceptions.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::task::JoinError;

use crate::errors::XapiError;
use crate::runtime;

/// How often a blocked call wakes up to let Python run its signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `future` to completion on the module's runtime and return its output.
///
/// The calling thread waits with the GIL released, waking every [`SIGNAL_POLL`] to run
/// Python's signal handlers: when one raises (Ctrl-C raises `KeyboardInterrupt`), the task is
/// aborted (dropped at its next await point, which closes its connections) and the exception
/// propagates. A panic in the task is an `XapiError`.
pub(crate) fn run<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime::get()?;
    let mut task = runtime.spawn(future);
    loop {
        let waited = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut task).await })
        });
        match waited {
            Ok(done) => return done.map_err(|err| joined(&err)),
            Err(_elapsed) => {
                if let Err(signal) = py.check_signals() {
                    task.abort();
                    return Err(signal);
                }
            }
        }
    }
}

/// The exception for a task that did not finish: it panicked or was cancelled.
pub(crate) fn joined(err: &JoinError) -> PyErr {
    if err.is_panic() {
        XapiError::new_err(format!("internal error in xapi_sdk: {err}"))
    } else {
        XapiError::new_err("the call was cancelled")
    }
}

/// What woke the waiting thread in [`run_reporting`].
enum Wake<T, E> {
    Done(Result<T, JoinError>),
    Event(E),
    Closed,
    Tick,
}

/// [`run`] for an operation that reports progress: `future` is made with the sending half of
/// an event channel, and each event it sends is handed to `on_event` on the calling thread,
/// with the GIL taken for that call only. When `on_event` raises, or a signal handler does,
/// the task is aborted (dropped at its next await point) and the exception propagates. Events
/// sent before the task ended are all delivered before its output is returned.
pub(crate) fn run_reporting<E, F>(
    py: Python<'_>,
    make: impl FnOnce(tokio::sync::mpsc::UnboundedSender<E>) -> F,
    on_event: impl FnMut(Python<'_>, E) -> PyResult<()>,
) -> PyResult<F::Output>
where
    E: Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    run_reporting_inner(py, None, make, on_event)
}

/// [`run_reporting`] for an operation that stops cleanly when `cancel` is cancelled: on Ctrl-C
/// or a callback's exception the token is cancelled and the operation is waited for (it
/// cleans up: a backup cancels its XAPI task and removes its snapshot), up to
/// [`CLEANUP_WAIT`]; then the exception is raised.
pub(crate) fn run_reporting_cancellable<E, F>(
    py: Python<'_>,
    cancel: &tokio_util::sync::CancellationToken,
    make: impl FnOnce(tokio::sync::mpsc::UnboundedSender<E>) -> F,
    on_event: impl FnMut(Python<'_>, E) -> PyResult<()>,
) -> PyResult<F::Output>
where
    E: Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    run_reporting_inner(py, Some(cancel), make, on_event)
}

/// How long a cancelled operation may take to clean up before it is dropped where it stands.
const CLEANUP_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn run_reporting_inner<E, F>(
    py: Python<'_>,
    cancel: Option<&tokio_util::sync::CancellationToken>,
    make: impl FnOnce(tokio::sync::mpsc::UnboundedSender<E>) -> F,
    mut on_event: impl FnMut(Python<'_>, E) -> PyResult<()>,
) -> PyResult<F::Output>
where
    E: Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime::get()?;
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut task = runtime.spawn(make(sender));
    let mut open = true;
    loop {
        let woke = py.detach(|| {
            runtime.block_on(async {
                tokio::select! {
                    biased;
                    event = events.recv(), if open => event.map_or(Wake::Closed, Wake::Event),
                    done = &mut task => Wake::Done(done),
                    () = tokio::time::sleep(SIGNAL_POLL) => Wake::Tick,
                }
            })
        });
        match woke {
            Wake::Event(event) => {
                if let Err(err) = on_event(py, event) {
                    stop(py, runtime, cancel, &mut task);
                    return Err(err);
                }
            }
            Wake::Done(done) => {
                let output = done.map_err(|err| joined(&err))?;
                while let Ok(event) = events.try_recv() {
                    on_event(py, event)?;
                }
                return Ok(output);
            }
            Wake::Closed => open = false,
            Wake::Tick => {
                if let Err(signal) = py.check_signals() {
                    stop(py, runtime, cancel, &mut task);
                    return Err(signal);
                }
            }
        }
    }
}

/// Stops a spawned operation: cancelled and waited for when it can stop cleanly, else (or
/// after [`CLEANUP_WAIT`]) aborted.
fn stop<T: Send>(
    py: Python<'_>,
    runtime: &tokio::runtime::Runtime,
    cancel: Option<&tokio_util::sync::CancellationToken>,
    task: &mut tokio::task::JoinHandle<T>,
) {
    if let Some(cancel) = cancel {
        cancel.cancel();
        let finished = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(CLEANUP_WAIT, &mut *task).await.is_ok() })
        });
        if finished {
            return;
        }
    }
    task.abort();
}
