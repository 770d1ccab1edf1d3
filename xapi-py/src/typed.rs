//! The typed API's conversions, driven by a [`Spec`]: Python parameters to wire values, and the
//! Python objects of typed results (built by the `decode` module as the answer is decoded).
//!
//! Results: references become `Ref`, enum values the generated enum's member (a value the
//! module does not know stays a `str`), records instances of the generated record class with
//! one attribute per field, xapi's int64 text an `int`, datetimes timezone-aware
//! `datetime.datetime`s (UTC when the server names no zone).
//! Parameters: the same types, plus plain `str` for references and enum values, and `dict`s
//! for records.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict};
use xapi_core::wire::{DateTime, Value, Zone};

use crate::convert;
use crate::reference::Ref;
use crate::spec::{RecordSpec, Spec};

/// The Python callables the conversions need, looked up once.
struct Helpers {
    object_new: Py<PyAny>,
    datetime: Py<PyAny>,
    timezone: Py<PyAny>,
    timedelta: Py<PyAny>,
    utc: Py<PyAny>,
}

static HELPERS: PyOnceLock<Helpers> = PyOnceLock::new();

fn helpers(py: Python<'_>) -> PyResult<&Helpers> {
    HELPERS.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        let object = py.import("builtins")?.getattr("object")?;
        Ok(Helpers {
            object_new: object.getattr("__new__")?.unbind(),
            datetime: datetime.getattr("datetime")?.unbind(),
            timezone: datetime.getattr("timezone")?.unbind(),
            timedelta: datetime.getattr("timedelta")?.unbind(),
            utc: datetime.getattr("timezone")?.getattr("utc")?.unbind(),
        })
    })
}

/// Why a datetime could not be made: its text (the message) or Python.
pub(crate) enum DateTimeError {
    /// The text is not an ISO 8601 datetime.
    Text(String),
    /// Python raised while building the object.
    Python(PyErr),
}

/// An instance of the record's class whose attributes are `attrs`.
pub(crate) fn new_record<'py>(
    py: Python<'py>,
    record: &RecordSpec,
    attrs: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let object = helpers(py)?
        .object_new
        .bind(py)
        .call1((record.class.bind(py),))?;
    object.setattr("__dict__", attrs)?;
    Ok(object)
}

/// A timezone-aware `datetime.datetime` of the wire's text (UTC when it names no zone).
pub(crate) fn datetime<'py>(
    py: Python<'py>,
    text: &str,
) -> Result<Bound<'py, PyAny>, DateTimeError> {
    let parsed: DateTime = text
        .parse()
        .map_err(|err| DateTimeError::Text(format!("datetime {text:?}: {err}")))?;
    to_datetime(py, &parsed).map_err(DateTimeError::Python)
}

fn to_datetime<'py>(py: Python<'py>, parsed: &DateTime) -> PyResult<Bound<'py, PyAny>> {
    let known = helpers(py)?;
    let zone = match parsed.zone() {
        Zone::Utc | Zone::Unspecified => known.utc.bind(py).clone(),
        Zone::Offset(minutes) => {
            let kwargs = PyDict::new(py);
            kwargs.set_item("minutes", minutes)?;
            let delta = known.timedelta.bind(py).call((), Some(&kwargs))?;
            known.timezone.bind(py).call1((delta,))?
        }
    };
    known.datetime.bind(py).call1((
        parsed.year(),
        parsed.month(),
        parsed.day(),
        parsed.hour(),
        parsed.minute(),
        parsed.second(),
        parsed.nanosecond() / 1000,
        zone,
    ))
}

/// The wire value of a typed Python parameter.
pub(crate) fn to_value(spec: &Spec, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    match spec {
        Spec::Ref => {
            if let Ok(reference) = obj.cast::<Ref>() {
                return Ok(Value::String(reference.get().text().to_owned()));
            }
            Ok(Value::String(obj.extract::<String>().map_err(|_| {
                PyTypeError::new_err("expected a Ref or its text")
            })?))
        }
        Spec::Enum(class, _) => {
            if obj.is_instance(class.bind(py))? {
                return Ok(Value::String(obj.getattr("value")?.extract()?));
            }
            Ok(Value::String(obj.extract::<String>().map_err(|_| {
                PyTypeError::new_err("expected an enum member or its value")
            })?))
        }
        Spec::Float => Ok(Value::Double(obj.extract::<f64>()?)),
        Spec::Int => {
            if obj.is_instance_of::<PyBool>() {
                return Err(PyTypeError::new_err("expected an int, got a bool"));
            }
            Ok(Value::Int(obj.extract::<i64>()?))
        }
        Spec::Str => Ok(Value::String(obj.extract::<String>()?)),
        Spec::Bool => Ok(Value::Bool(obj.cast::<PyBool>()?.is_true())),
        Spec::Option(inner) => {
            if obj.is_none() {
                Ok(Value::Nil)
            } else {
                to_value(inner, obj)
            }
        }
        Spec::Set(inner) => obj
            .try_iter()?
            .map(|item| to_value(inner, &item?))
            .collect::<PyResult<_>>()
            .map(Value::Array),
        Spec::Map(key, value) => {
            let dict = obj.cast::<PyDict>()?;
            let mut members = BTreeMap::new();
            for (k, v) in dict.iter() {
                let name = match to_value(key, &k)? {
                    Value::String(s) => s,
                    Value::Int(n) => n.to_string(),
                    Value::Double(x) => x.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(PyTypeError::new_err("unsupported map key")),
                };
                members.insert(name, to_value(value, &v)?);
            }
            Ok(Value::Struct(members))
        }
        Spec::Record(record) => record_value(record, obj),
        Spec::DateTime | Spec::Void | Spec::Any => convert::to_value(obj),
    }
}

/// A record parameter: an instance of the record class or a `dict` of its fields.
fn record_value(record: &Arc<RecordSpec>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let fields = if let Ok(dict) = obj.cast::<PyDict>() {
        dict.clone()
    } else {
        obj.getattr("__dict__")?
            .cast_into::<PyDict>()
            .map_err(|_| PyValueError::new_err("expected a record or a dict"))?
    };
    let mut members = BTreeMap::new();
    for (name, value) in fields.iter() {
        let name: String = name.extract()?;
        let converted = match record.field(&name) {
            Some(field) => to_value(&field.spec, &value)?,
            None => convert::to_value(&value)?,
        };
        members.insert(name, converted);
    }
    Ok(Value::Struct(members))
}
