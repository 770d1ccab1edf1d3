//! The tokio runtime the module's IO runs on, started at the first call.

use std::sync::OnceLock;

use pyo3::PyResult;
use tokio::runtime::{Builder, Runtime};

use crate::errors::XapiError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The module's runtime: two worker threads are plenty for RPC calls, which spend their time
/// waiting on the network. The asyncio awaitables (module `awaitable`) run on it too.
pub(crate) fn get() -> PyResult<&'static Runtime> {
    let runtime = RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("xapi-sdk")
                .enable_all()
                .build()
                .map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| XapiError::new_err(format!("cannot start the tokio runtime: {err}")))?;
    Ok(runtime)
}
