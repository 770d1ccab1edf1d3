//! The exception hierarchy, created with `create_exception!` so that it works under the stable
//! ABI (abi3):
//!
//! ```text
//! Exception
//! └── XapiError              anything this package raises about a call
//!     ├── Failure            XAPI answered with an error: .code, .params, .details
//!     ├── TransportError     the connection failed, was refused or broke
//!     │   ├── TlsError       the TLS handshake failed or the certificate was refused
//!     │   └── TimeoutError   a deadline expired
//!     └── DecodeError        the answer could not be decoded
//! ```

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use xapi_core::Error;

pyo3::create_exception!(
    xapi_sdk,
    XapiError,
    PyException,
    "Base class of the errors raised by xapi_sdk."
);
pyo3::create_exception!(
    xapi_sdk,
    Failure,
    XapiError,
    "XAPI answered with an error. `code` is the error code (`\"VM_BAD_POWER_STATE\"`), \
     `params` its parameters, `details` the two as one list (XenAPI.py's `ErrorDescription`)."
);
pyo3::create_exception!(
    xapi_sdk,
    TransportError,
    XapiError,
    "The connection could not be opened, or broke: the call may or may not have run."
);
pyo3::create_exception!(
    xapi_sdk,
    TlsError,
    TransportError,
    "The TLS handshake failed or the server's certificate was refused."
);
pyo3::create_exception!(
    xapi_sdk,
    TimeoutError,
    TransportError,
    "A connect or call deadline expired."
);
pyo3::create_exception!(
    xapi_sdk,
    DecodeError,
    XapiError,
    "The server's answer could not be decoded."
);

/// A `Failure` exception carrying `code`, `params` and `details` as attributes.
pub(crate) fn failure(py: Python<'_>, code: &str, params: &[String]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let details = PyList::new(
            py,
            std::iter::once(code).chain(params.iter().map(String::as_str)),
        )?;
        let exc = py.get_type::<Failure>().call1((details.clone(),))?;
        exc.setattr("code", code)?;
        exc.setattr("params", PyList::new(py, params)?)?;
        exc.setattr("details", details)?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// The Python exception for an error of the Rust client.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Api(f) => failure(py, f.code.as_str(), &f.params),
        Error::Tls { .. } | Error::TlsConfig(_) => TlsError::new_err(message),
        Error::Timeout { .. } => TimeoutError::new_err(message),
        Error::Connect { .. }
        | Error::Transport { .. }
        | Error::Protocol { .. }
        | Error::Http { .. }
        | Error::ResponseTooLarge { .. } => TransportError::new_err(message),
        Error::Decode(_) | Error::DecodeResponse { .. } => DecodeError::new_err(message),
        Error::InvalidUrl { .. } | Error::Encode(_) | Error::ParamsNotASequence { .. } => {
            PyValueError::new_err(message)
        }
        _ => XapiError::new_err(message),
    }
}
