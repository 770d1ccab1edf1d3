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
