//! Python bindings for xapi-rs: the native part (`xapi_sdk._xapi_sdk`) of the `xapi_sdk` wheel.
//!
//! The wheel is built by maturin from `xapi-py/pyproject.toml`; its Python side lives in
//! `xapi-py/python/xapi_sdk/`. This crate holds what must be native:
//!
//! - `Connection`: one XAPI host reached over XML-RPC, making calls
//!   whose parameters and results are the plain Python values `xmlrpc.client` uses (`str`,
//!   `int`, `float`, `bool`, `dict`, `list`, `None`, `xmlrpc.client.DateTime`,
//!   `xmlrpc.client.Binary`). The HTTP exchange runs in a tokio runtime owned by the module,
//!   with the GIL released; the answer is decoded straight into Python objects in one pass
//!   (module `decode`), which holds the GIL while it builds them.
//! - the exception hierarchy ([`errors`]): `XapiError`, and under it `Failure`,
//!   `TransportError` (with `TlsError` and `TimeoutError`) and `DecodeError`.
//!
//! - `Ref`, and the typed conversions (modules `spec` and `typed`) of the typed API: the generated
//!   Python module `xapi_sdk.api` names each parameter and result type by a short code and
//!   registers its record and enum classes; one generic entry point (`Connection.call_typed`
//!   and its asyncio twin) serves every message.
//!
//! - the backup engine ([`backup`]): `Repository` and the functions that `xapi_sdk.backup`
//!   wraps (jobs with progress callbacks, restores, XVA, pool-metadata and host backups).
//! - the DR engine ([`dr`]): replication, mirrored storage, copies of metadata, `Plan` and
//!   `Run` (execute, clean-up) with progress callbacks, wrapped by `xapi_sdk.dr`.
//!
//! `xapi_sdk.compat`, the drop-in for XenAPI.py, and the typed `Session` / `AsyncSession` are
//! Python code on top of `Connection`.

mod awaitable;
pub mod backup;
mod blocking;
mod connection;
mod convert;
mod decode;
pub mod dr;
pub mod errors;
mod exit;
mod reference;
mod repo_location;
mod runtime;
mod spec;
mod typed;

use pyo3::prelude::*;

/// The extension module `xapi_sdk._xapi_sdk`.
#[pymodule]
#[pyo3(name = "_xapi_sdk")]
fn xapi_sdk_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    exit::register(m)?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<reference::Ref>()?;
    m.add_function(wrap_pyfunction!(spec::register, m)?)?;
    m.add_class::<backup::Repository>()?;
    m.add_function(wrap_pyfunction!(backup::backup_run, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_restore, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_export_xva, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_import_xva, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_pool_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(backup::restore_pool_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(backup::backup_host, m)?)?;
    m.add_function(wrap_pyfunction!(backup::restore_host, m)?)?;
    m.add_class::<dr::Storage>()?;
    m.add_class::<dr::FoundCopy>()?;
    m.add_class::<dr::Plan>()?;
    m.add_class::<dr::Run>()?;
    m.add_function(wrap_pyfunction!(dr::dr_set_replication, m)?)?;
    m.add_function(wrap_pyfunction!(dr::dr_attach_storage, m)?)?;
    m.add_function(wrap_pyfunction!(dr::dr_find_copies, m)?)?;
    m.add_function(wrap_pyfunction!(dr::dr_plan, m)?)?;
    m.add("XapiError", py.get_type::<errors::XapiError>())?;
    m.add("Failure", py.get_type::<errors::Failure>())?;
    m.add("TransportError", py.get_type::<errors::TransportError>())?;
    m.add("TlsError", py.get_type::<errors::TlsError>())?;
    m.add("TimeoutError", py.get_type::<errors::TimeoutError>())?;
    m.add("DecodeError", py.get_type::<errors::DecodeError>())?;
    Ok(())
}
