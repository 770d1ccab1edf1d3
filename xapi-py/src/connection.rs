//! `Connection`: one XAPI host, XML-RPC calls with plain Python values.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use xapi_core::client::{Client, Protocol, Sha256Fingerprint, TlsPolicy};
use xapi_core::wire::{OrderedValue, Value};

use crate::errors::{self, XapiError};
use crate::{convert, runtime};

/// One XAPI host (or pool master) reached over XML-RPC.
///
/// `Connection(url, *, ignore_ssl=False, fingerprint=None, ca_file=None, timeout=None)`:
/// `https://` certificates are verified against the web PKI roots unless `ca_file` (a PEM
/// bundle), `fingerprint` (`"sha256:…"` of the certificate's DER) or `ignore_ssl=True` (accept
/// any certificate) says otherwise. `timeout` bounds each call, in seconds.
///
/// `call(method, params)` sends `method` with the positional `params` (the session reference
/// first, when the method takes one) and returns the decoded `Value`, or raises `Failure`.
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Connection {
    client: Client,
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (url, *, ignore_ssl = false, fingerprint = None, ca_file = None, timeout = None))]
    fn new(
        url: &str,
        ignore_ssl: bool,
        fingerprint: Option<&str>,
        ca_file: Option<std::path::PathBuf>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
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
        let mut builder = Client::builder(url).tls(policy).protocol(Protocol::XmlRpc);
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
        let runtime = runtime::get()?;
        let client = &self.client;
        let answer = py.detach(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(client.call_raw::<OrderedValue>(method, values))
            }))
        });
        match answer {
            Ok(Ok(value)) => convert::to_python(py, value),
            Ok(Err(err)) => Err(errors::to_py(py, &err)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(ToString::to_string)
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(XapiError::new_err(format!(
                    "internal error in xapi_sdk: {what}"
                )))
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("<xapi_sdk.Connection {}>", self.client.url())
    }
}
