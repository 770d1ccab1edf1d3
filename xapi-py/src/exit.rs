//! Keeping the runtime's threads off the interpreter while it shuts down.
//!
//! The tokio runtime's threads enter Python on their own: to decode an answer into Python
//! objects, and to hand an asyncio future its result. Before Python 3.14, a thread that asks
//! for the GIL once the interpreter is finalizing is ended with `pthread_exit`, and that forced
//! unwind through Rust frames aborts the process. It happened at the end of scripts that had
//! finished all their work: a result was being handed over (`call_soon_threadsafe` lets go of
//! the GIL to write to the event loop's wake-up socket) just as the main thread went on to exit.
//!
//! So every entry from such a thread goes through [`attach`], which counts itself in and looks
//! at a flag; an `atexit` hook ([`before_exit`], registered when the module is imported, so it
//! runs after the hooks of the scripts that import it) sets the flag and waits, with the GIL
//! released, for the entries already inside to leave. `atexit` hooks run while the interpreter
//! is still whole: after that no runtime thread enters it again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Set by [`before_exit`]: the interpreter is about to shut down.
static EXITING: AtomicBool = AtomicBool::new(false);

/// How many runtime threads are inside the interpreter (or about to enter it).
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// The longest [`before_exit`] waits for the threads inside (a decoding of a very large
/// answer); after that the interpreter goes on shutting down.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// How often [`before_exit`] looks again.
const EXIT_POLL: Duration = Duration::from_millis(2);

/// Run `work` attached to the interpreter, from a thread Python did not start; `None`, without
/// entering, once the interpreter is shutting down.
pub(crate) fn attach<R>(work: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // Count in first, then look at the flag: `before_exit` sets the flag, then reads the
    // count, so either this thread sees the flag or `before_exit` sees this thread.
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let _leave = Leave;
    if EXITING.load(Ordering::SeqCst) {
        return None;
    }
    Some(Python::attach(work))
}

/// Counts a thread out of the interpreter when dropped.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `atexit` hook: from now on no runtime thread enters the interpreter; wait (the GIL
/// released) for those inside to leave, up to [`EXIT_WAIT`].
#[pyfunction]
#[pyo3(name = "_before_exit")]
pub(crate) fn before_exit(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while INSIDE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(EXIT_POLL);
        }
    });
}

/// Register [`before_exit`] with `atexit`.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(before_exit, module)?;
    module
        .py()
        .import("atexit")?
        .call_method1("register", (hook,))?;
    Ok(())
}
