//! Wire values to typed Python values and back, driven by a [`Spec`].
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
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};
use xapi_core::wire::{DateTime, OrderedValue, Value, Zone};

use crate::convert;
use crate::errors::DecodeError;
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

fn mismatch(spec: &str, value: &OrderedValue) -> PyErr {
    let what = match value {
        OrderedValue::String(_) => "a string",
        OrderedValue::Int(_) | OrderedValue::Int32(_) => "an integer",
        OrderedValue::Bool(_) => "a boolean",
        OrderedValue::Double(_) => "a double",
        OrderedValue::DateTime(_) => "a datetime",
        OrderedValue::Base64(_) => "base64 data",
        OrderedValue::Array(_) => "an array",
        OrderedValue::Struct(_) => "a struct",
        OrderedValue::Nil => "nil",
    };
    DecodeError::new_err(format!("expected {spec}, the server sent {what}"))
}

/// The typed Python value of a decoded wire value.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    spec: &Spec,
    value: OrderedValue,
) -> PyResult<Bound<'py, PyAny>> {
    match (spec, value) {
        (Spec::Void, _) | (Spec::Option(_), OrderedValue::Nil) => Ok(py.None().into_bound(py)),
        (Spec::Any, value) => convert::to_python(py, value),
        (Spec::Str, OrderedValue::String(s)) => Ok(PyString::new(py, &s).into_any()),
        (Spec::Int, OrderedValue::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| DecodeError::new_err(format!("expected an int, the server sent {s:?}")))
            .and_then(|n| Ok(n.into_pyobject(py)?.into_any())),
        (Spec::Int, OrderedValue::Int(n)) => Ok(n.into_pyobject(py)?.into_any()),
        (Spec::Int, OrderedValue::Int32(n)) => Ok(n.into_pyobject(py)?.into_any()),
        (Spec::Float, OrderedValue::Double(x)) => Ok(PyFloat::new(py, x).into_any()),
        #[allow(clippy::cast_precision_loss)] // JSON-RPC sends 2.0 as 2
        (Spec::Float, OrderedValue::Int(n)) => Ok(PyFloat::new(py, n as f64).into_any()),
        (Spec::Float, OrderedValue::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| DecodeError::new_err(format!("expected a float, the server sent {s:?}")))
            .map(|x| PyFloat::new(py, x).into_any()),
        (Spec::Bool, OrderedValue::Bool(b)) => Ok(PyBool::new(py, b).to_owned().into_any()),
        (Spec::DateTime, OrderedValue::DateTime(text) | OrderedValue::String(text)) => {
            datetime(py, &text)
        }
        (Spec::Ref, OrderedValue::String(s)) => Ok(Bound::new(py, Ref::from_text(s))?.into_any()),
        (Spec::Enum(_, members), OrderedValue::String(s)) => {
            match members.bind(py).get_item(&s)? {
                Some(member) => Ok(member),
                None => Ok(PyString::new(py, &s).into_any()),
            }
        }
        (Spec::Record(record), OrderedValue::Struct(members)) => to_record(py, record, members),
        (Spec::Set(inner), OrderedValue::Array(items)) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, inner, item)?)?;
            }
            Ok(list.into_any())
        }
        (Spec::Map(key, value), OrderedValue::Struct(members)) => {
            let dict = PyDict::new(py);
            for (name, item) in members {
                dict.set_item(
                    to_python(py, key, OrderedValue::String(name))?,
                    to_python(py, value, item)?,
                )?;
            }
            Ok(dict.into_any())
        }
        (Spec::Option(inner), value) => to_python(py, inner, value),
        (spec, value) => Err(mismatch(spec_name(spec), &value)),
    }
}

fn spec_name(spec: &Spec) -> &'static str {
    match spec {
        Spec::Str => "a string",
        Spec::Int => "an int",
        Spec::Float => "a float",
        Spec::Bool => "a boolean",
        Spec::DateTime => "a datetime",
        Spec::Ref => "a reference",
        Spec::Enum(..) => "an enum value",
        Spec::Record(_) => "a record",
        Spec::Set(_) => "a set",
        Spec::Map(..) => "a map",
        Spec::Void | Spec::Any | Spec::Option(_) => "a value",
    }
}

/// An instance of the record's class with one attribute per field (fields the module does not
/// know, from a newer server, are kept as plain values).
fn to_record<'py>(
    py: Python<'py>,
    record: &RecordSpec,
    members: Vec<(String, OrderedValue)>,
) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    for (name, value) in members {
        match record.fields.get(&name) {
            Some((key, spec)) => {
                let converted = to_python(py, spec, value).map_err(|err| {
                    DecodeError::new_err(format!("field {name}: {}", err.value(py)))
                })?;
                attrs.set_item(key.bind(py), converted)?;
            }
            None => attrs.set_item(name, convert::to_python(py, value)?)?,
        }
    }
    let object = helpers(py)?
        .object_new
        .bind(py)
        .call1((record.class.bind(py),))?;
    object.setattr("__dict__", attrs)?;
    Ok(object)
}

fn datetime<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let parsed: DateTime = text
        .parse()
        .map_err(|err| DecodeError::new_err(format!("datetime {text:?}: {err}")))?;
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
        let converted = match record.fields.get(&name) {
            Some((_, spec)) => to_value(spec, &value)?,
            None => convert::to_value(&value)?,
        };
        members.insert(name, converted);
    }
    Ok(Value::Struct(members))
}
