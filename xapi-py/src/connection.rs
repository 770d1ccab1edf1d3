//! `Connection`: one XAPI host; calls with plain Python values (the compat layer) or typed
//! ones (the typed API), blocking or as asyncio awaitables.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use xapi_core::client::{Client, Protocol, Sha256Fingerprint, TlsPolicy};
use xapi_core::wire::Value;

use crate::errors;
use crate::spec::{self, Spec};
use crate::{awaitable, blocking, convert, decode, typed};

/// One XAPI host (or pool master).
///
/// `Connection(url, *, ignore_ssl=False, fingerprint=None, ca_file=None, timeout=None,
/// protocol="xmlrpc")`:
/// `https://` certificates are verified against the web PKI roots unless `ca_file` (a PEM
/// bundle), `fingerprint` (`"sha256:…"` of the certificate's DER) or `ignore_ssl=True` (accept
/// any certificate) says otherwise. `timeout` bounds each call, in seconds. `protocol` is
/// `"xmlrpc"` (what XenAPI.py speaks), `"jsonrpc"` or `"auto"` (JSON-RPC, falling back to
/// XML-RPC on hosts without it).
///
/// `call(method, params)` sends `method` with the positional `params` (the session reference
/// first, when the method takes one) and returns the decoded value, or raises `Failure`.
/// `call_typed` converts the parameters and the result by their type codes (see the `spec`
/// module); `call_typed_async` does the same as an asyncio awaitable.
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Connection {
    client: Client,
}

impl Connection {
    /// The Rust client (the engines attach a session to it).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (url, *, ignore_ssl = false, fingerprint = None, ca_file = None, timeout = None, protocol = "xmlrpc"))]
    fn new(
        url: &str,
        ignore_ssl: bool,
        fingerprint: Option<&str>,
        ca_file: Option<std::path::PathBuf>,
        timeout: Option<f64>,
        protocol: &str,
    ) -> PyResult<Self> {
        let protocol = match protocol {
            "xmlrpc" => Protocol::XmlRpc,
            "jsonrpc" => Protocol::JsonRpc,
            "auto" => Protocol::Auto,
            other => {
                return Err(PyValueError::new_err(format!(
                    "protocol must be \"xmlrpc\", \"jsonrpc\" or \"auto\", not {other:?}"
                )));
            }
        };
        let policy = match (ignore_ssl, fingerprint, ca_file) {
            (true, None, None) => TlsPolicy::DangerAcceptInvalid,
            (false, Some(pin), None) => TlsPolicy::Pinned(
                pin.parse::<Sha256Fingerprint>()
                    .map_err(|err| PyValueError::new_err(err.to_string()))?,
            ),
            (false, None, Some(path)) => TlsPolicy::CustomCa(std::fs::read(&path)?),
            (false, None, None) => TlsPolicy::Verified,
            _ => {
                return Err(PyValueError::new_err(
                    "ignore_ssl, fingerprint and ca_file exclude one another",
                ));
            }
        };
        let mut builder = Client::builder(url).tls(policy).protocol(protocol);
        if let Some(seconds) = timeout {
            let limit = Duration::try_from_secs_f64(seconds)
                .map_err(|err| PyValueError::new_err(format!("timeout: {err}")))?;
            builder = builder.call_timeout(limit);
        }
        let client = Python::attach(|py| builder.build().map_err(|err| errors::to_py(py, &err)))?;
        Ok(Self { client })
    }

    /// The server URL.
    #[getter]
    fn url(&self) -> String {
        self.client.url()
    }

    /// Call `method` with the positional `params`; the decoded value, or `Failure`.
    fn call<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        params: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = params
            .iter()
            .map(|item| convert::to_value(&item))
            .collect::<PyResult<Vec<Value>>>()?;
        let client = self.client.clone();
        let method = method.to_owned();
        blocking::run(py, decode::call(client, method, values, None))?.into_python(py)
    }

    /// Call `method` with `params` converted by the type codes `param_types`; the result
    /// converted by the type code `result_type`.
    fn call_typed<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        params: &Bound<'py, PyTuple>,
        param_types: &Bound<'py, PyTuple>,
        result_type: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = typed_params(py, params, param_types)?;
        let spec = spec::get(py, result_type)?;
        let client = self.client.clone();
        let method = method.to_owned();
        blocking::run(py, decode::call(client, method, values, Some(spec)))?.into_python(py)
    }

    /// `call_typed` as an asyncio awaitable (to be awaited in the running event loop).
    fn call_typed_async<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        params: &Bound<'py, PyTuple>,
        param_types: &Bound<'py, PyTuple>,
        result_type: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = typed_params(py, params, param_types)?;
        let spec = spec::get(py, result_type)?;
        let client = self.client.clone();
        let method = method.to_owned();
        awaitable::spawn(py, decode::call(client, method, values, Some(spec)))
    }

    fn __repr__(&self) -> String {
        format!("<xapi_sdk.Connection {}>", self.client.url())
    }
}

/// The wire values of typed parameters: the first `params` without a type code (the session
/// reference) as plain values.
fn typed_params(
    py: Python<'_>,
    params: &Bound<'_, PyTuple>,
    param_types: &Bound<'_, PyTuple>,
) -> PyResult<Vec<Value>> {
    let untyped = params.len().saturating_sub(param_types.len());
    let mut values = Vec::with_capacity(params.len());
    for (index, item) in params.iter().enumerate() {
        if index < untyped {
            values.push(typed::to_value(&Spec::Ref, &item)?);
        } else {
            let code: String = param_types.get_item(index - untyped)?.extract()?;
            values.push(typed::to_value(&*spec::get(py, &code)?, &item)?);
        }
    }
    Ok(values)
}
