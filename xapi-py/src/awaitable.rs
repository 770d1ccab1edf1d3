//! Calls as asyncio awaitables: the call runs on the module's runtime and resolves a future of
//! the running event loop.
//!
//! The result is handed over with the loop's `call_soon_threadsafe`, from a runtime thread that
//! enters the interpreter through [`exit::attach`], so that no hand-over is under way while
//! the interpreter shuts down (see the `exit` module: `pyo3-async-runtimes`' `future_into_py`
//! hands results over from threads nothing keeps track of, and aborted about one script in
//! sixty at exit on Python 3.11). Cancelling the future (`task.cancel()`, `asyncio.wait_for`
//! running out) aborts the call, which closes its connection.

use std::future::Future;

use pyo3::prelude::*;
use tokio::task::{AbortHandle, JoinError};

use crate::decode::Answer;
use crate::{blocking, exit, runtime};

/// Start `call` on the module's runtime; an `asyncio.Future` of the running loop that its
/// answer resolves (its value, or the exception it raises).
pub(crate) fn spawn(
    py: Python<'_>,
    call: impl Future<Output = Answer> + Send + 'static,
) -> PyResult<Bound<'_, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let runtime = runtime::get()?;
    let work = runtime.spawn(call);
    let abort = work.abort_handle();
    let target = Target {
        event_loop: event_loop.unbind(),
        future: future.clone().unbind(),
    };
    runtime.spawn(async move {
        let answer = work.await;
        // `None` when the interpreter is shutting down: nobody is waiting any more.
        let _ = exit::attach(|py| target.deliver(py, answer));
    });
    future.call_method1("add_done_callback", (AbortWhenDone(abort),))?;
    Ok(future)
}

/// The loop and the future an answer goes to.
struct Target {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
}

impl Target {
    /// Schedule the future's resolution in its loop (thread-safe); nothing when the loop is
    /// closed.
    fn deliver(&self, py: Python<'_>, answer: Result<Answer, JoinError>) {
        let event_loop = self.event_loop.bind(py);
        let value = answer
            .map_err(|err| blocking::joined(&err))
            .and_then(|answer| answer.into_python(py));
        let (ok, value) = match value {
            Ok(value) => (true, value),
            Err(err) => (false, err.into_value(py).into_bound(py).into_any()),
        };
        let scheduled = (|| -> PyResult<()> {
            if event_loop.call_method0("is_closed")?.is_truthy()? {
                return Ok(());
            }
            let resolve = wrap_pyfunction!(resolve, py)?;
            event_loop.call_method1(
                "call_soon_threadsafe",
                (resolve, self.future.bind(py), ok, value),
            )?;
            Ok(())
        })();
        if let Err(err) = scheduled {
            err.write_unraisable(py, Some(event_loop));
        }
    }
}

/// Resolve `future` with `value` (a result when `ok`, else an exception), unless it is done
/// already (cancelled while the answer was on its way). Runs in the future's loop.
#[pyfunction]
fn resolve(future: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { "set_result" } else { "set_exception" };
    future.call_method1(method, (value,))?;
    Ok(())
}

/// The future's done-callback: aborts the call (a no-op once it has finished), so that a
/// cancelled future stops its call.
#[pyclass(frozen)]
struct AbortWhenDone(AbortHandle);

#[pymethods]
impl AbortWhenDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        self.0.abort();
    }
}
