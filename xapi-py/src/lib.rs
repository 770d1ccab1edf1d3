//! Python bindings for xapi-rs: the native part (`xapi_sdk._xapi_sdk`) of the `xapi_sdk` wheel.
//!
//! The wheel is built by maturin from `xapi-py/pyproject.toml`; its Python side lives in
//! `xapi-py/python/xapi_sdk/`. This crate holds what must be native:
//!
//! - `Connection`: one XAPI host reached over XML-RPC, making calls
//!   whose parameters and results are the plain Python values `xmlrpc.client` uses (`str`,
//!   `int`, `float`, `bool`, `dict`, `list`, `None`, `xmlrpc.client.DateTime`,
//!   `xmlrpc.client.Binary`). The HTTP exchange and the XML encoding and decoding run in a
//!   tokio runtime owned by the module, with the GIL released.
//! - the exception hierarchy ([`errors`]): `XapiError`, and under it `Failure`,
//!   `TransportError` (with `TlsError` and `TimeoutError`) and `DecodeError`.
//!
//! `xapi_sdk.compat`, the drop-in for XenAPI.py, is Python code on top of `Connection`.

mod connection;
mod convert;
pub mod errors;
mod runtime;

use pyo3::prelude::*;

/// The extension module `xapi_sdk._xapi_sdk`.
#[pymodule]
#[pyo3(name = "_xapi_sdk")]
fn xapi_sdk_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<connection::Connection>()?;
    m.add("XapiError", py.get_type::<errors::XapiError>())?;
    m.add("Failure", py.get_type::<errors::Failure>())?;
    m.add("TransportError", py.get_type::<errors::TransportError>())?;
    m.add("TlsError", py.get_type::<errors::TlsError>())?;
    m.add("TimeoutError", py.get_type::<errors::TimeoutError>())?;
    m.add("DecodeError", py.get_type::<errors::DecodeError>())?;
    Ok(())
}
