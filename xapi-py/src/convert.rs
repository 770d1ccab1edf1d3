//! Python values to wire values and back, in the shapes `xmlrpc.client` gives: what XenAPI.py
//! users see. (The values of answers are built by the `decode` module, as the answer is
//! decoded.)
//!
//! | wire                    | Python                                              |
//! |-------------------------|-----------------------------------------------------|
//! | untyped / `<string>`    | `str` (xapi's int64 fields arrive this way)         |
//! | `<i4>` `<int>` `<i8>`   | `int`                                               |
//! | `<double>`              | `float`                                             |
//! | `<boolean>`             | `bool`                                              |
//! | `<dateTime.iso8601>`    | `xmlrpc.client.DateTime`, its text as sent          |
//! | `<base64>`              | `xmlrpc.client.Binary`                              |
//! | `<struct>`              | `dict`, members in the order sent                   |
//! | `<array>`               | `list`                                              |
//! | `<nil/>`                | `None`                                              |

use std::collections::BTreeMap;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use xapi_core::wire::{DateTime, Value};

/// The classes of `xmlrpc.client` and `datetime` the conversions need, imported once.
pub(crate) struct Classes {
    /// `xmlrpc.client.DateTime`.
    pub(crate) xmlrpc_datetime: Py<PyAny>,
    /// `xmlrpc.client.Binary`.
    pub(crate) xmlrpc_binary: Py<PyAny>,
    /// `datetime.datetime`.
    datetime: Py<PyAny>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The classes, imported at the first use.
pub(crate) fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let xmlrpc = py.import("xmlrpc.client")?;
        Ok(Classes {
            xmlrpc_datetime: xmlrpc.getattr("DateTime")?.unbind(),
            xmlrpc_binary: xmlrpc.getattr("Binary")?.unbind(),
            datetime: py.import("datetime")?.getattr("datetime")?.unbind(),
        })
    })
}

/// A Python value as a wire value, as `xmlrpc.client` would marshal it (with `allow_none`).
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    // bool before int: a Python bool is an int
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| PyOverflowError::new_err("int exceeds XML-RPC limits"));
    }
    if let Ok(x) = obj.cast::<PyFloat>() {
        return Ok(Value::Double(x.value()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut members = BTreeMap::new();
        for (key, value) in d.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("dictionary key must be string"))?;
            members.insert(key.to_str()?.to_owned(), to_value(&value)?);
        }
        return Ok(Value::Struct(members));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return list
            .iter()
            .map(|item| to_value(&item))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return tuple
            .iter()
            .map(|item| to_value(&item))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(Value::Base64(bytes.as_bytes().to_vec()));
    }
    if let Ok(bytes) = obj.cast::<PyByteArray>() {
        return Ok(Value::Base64(bytes.to_vec()));
    }
    let known = classes(py)?;
    if obj.is_instance(known.xmlrpc_binary.bind(py))? {
        let data = obj.getattr("data")?;
        return Ok(Value::Base64(data.extract::<Vec<u8>>()?));
    }
    let text = if obj.is_instance(known.xmlrpc_datetime.bind(py))? {
        Some(obj.getattr("value")?.extract::<String>()?)
    } else if obj.is_instance(known.datetime.bind(py))? {
        Some(
            obj.call_method1("strftime", ("%Y%m%dT%H:%M:%S",))?
                .extract::<String>()?,
        )
    } else {
        None
    };
    if let Some(text) = text {
        return text
            .parse::<DateTime>()
            .map(Value::DateTime)
            .map_err(|err| PyValueError::new_err(err.to_string()));
    }
    Err(PyTypeError::new_err(format!(
        "cannot marshal {} objects",
        obj.get_type().name()?
    )))
}
