//! Type specs: how the typed API converts each parameter and result.
//!
//! The generated Python module (`xapi_sdk.api`) names every type with a short prefix code:
//!
//! | code         | datamodel type      | Python type                   |
//! |--------------|---------------------|-------------------------------|
//! | `s`          | `string`            | `str`                         |
//! | `i`          | `int`               | `int`                         |
//! | `f`          | `float`             | `float`                       |
//! | `b`          | `bool`              | `bool`                        |
//! | `d`          | `datetime`          | `datetime.datetime`           |
//! | `v`          | `void`              | `None`                        |
//! | `A`          | event batch, any    | plain values (as `compat`)    |
//! | `r`          | `C ref`             | `Ref`                         |
//! | `eNAME;`     | `enum NAME`         | the generated `enum.Enum`     |
//! | `RNAME;`     | `C record`          | the generated record class    |
//! | `L` T        | `T set`             | `list[T]`                     |
//! | `M` K V      | `(K -> V) map`      | `dict[K, V]`                  |
//! | `O` T        | `T option`          | `T \| None`                   |
//!
//! The module registers its enum and record classes once ([`register`]); specs are compiled
//! against them on first use and cached by their code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::HashMap as FastMap;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

/// A compiled type spec.
pub(crate) enum Spec {
    /// `str`.
    Str,
    /// `int` (xapi's int64, a string on XML-RPC).
    Int,
    /// `float`.
    Float,
    /// `bool`.
    Bool,
    /// `datetime.datetime`.
    DateTime,
    /// No result.
    Void,
    /// Plain values, converted as the compat layer converts them.
    Any,
    /// An object reference.
    Ref,
    /// An enum: its class and the members by wire value.
    Enum(Py<PyType>, FastMap<String, Py<PyAny>>),
    /// A record class.
    Record(Arc<RecordSpec>),
    /// A list of the inner type.
    Set(Arc<Spec>),
    /// A dict from the key type to the value type.
    Map(Arc<Spec>, Arc<Spec>),
    /// The inner type or `None`.
    Option(Arc<Spec>),
}

/// A record class and the spec of each of its fields.
pub(crate) struct RecordSpec {
    /// The generated Python class.
    pub(crate) class: Py<PyType>,
    /// The fields, in the datamodel's order (the order xapi writes them in).
    fields: Vec<RecordField>,
    /// The index in `fields` of each wire name.
    by_name: FastMap<String, usize>,
}

/// One field of a record class.
pub(crate) struct RecordField {
    /// The wire name.
    pub(crate) name: String,
    /// The name as an interned Python string, shared by every record's attribute dict.
    pub(crate) key: Py<PyString>,
    /// The field's type.
    pub(crate) spec: Arc<Spec>,
}

impl RecordSpec {
    /// The field of wire name `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&RecordField> {
        self.by_name.get(name).map(|&index| &self.fields[index])
    }

    /// The field of wire name `name` and its index, the one at `expected` (after the previous
    /// member's) tried first: members come in the datamodel's order, so that one string
    /// comparison usually replaces a hash lookup.
    pub(crate) fn position(&self, name: &str, expected: usize) -> Option<(usize, &RecordField)> {
        match self.fields.get(expected) {
            Some(field) if field.name == name => Some((expected, field)),
            _ => {
                let index = *self.by_name.get(name)?;
                Some((index, &self.fields[index]))
            }
        }
    }
}

/// The classes the generated module registered: records by class name (each a `(class,
/// ((field, code), ...))` tuple) and enums by datamodel name.
struct Registry {
    records: Py<PyDict>,
    enums: Py<PyDict>,
}

static REGISTRY: PyOnceLock<Registry> = PyOnceLock::new();
static CACHE: Mutex<Option<HashMap<String, Arc<Spec>>>> = Mutex::new(None);
static RECORDS: Mutex<Option<HashMap<String, Arc<RecordSpec>>>> = Mutex::new(None);

/// `register(records, enums)`: called once by `xapi_sdk.api` with its record and enum
/// classes.
#[pyfunction]
pub(crate) fn register(
    py: Python<'_>,
    records: Bound<'_, PyDict>,
    enums: Bound<'_, PyDict>,
) -> PyResult<()> {
    REGISTRY
        .set(
            py,
            Registry {
                records: records.unbind(),
                enums: enums.unbind(),
            },
        )
        .map_err(|_| PyRuntimeError::new_err("the typed API is registered already"))
}

/// The compiled spec for `code`, from the cache or compiled now.
pub(crate) fn get(py: Python<'_>, code: &str) -> PyResult<Arc<Spec>> {
    if let Some(spec) = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .get(code)
    {
        return Ok(Arc::clone(spec));
    }
    let (spec, rest) = parse(py, code)?;
    if !rest.is_empty() {
        return Err(PyValueError::new_err(format!(
            "type code {code:?}: {rest:?} left over"
        )));
    }
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(code.to_owned(), Arc::clone(&spec));
    Ok(spec)
}

/// Parse one spec from the front of `code`; the spec and the rest of the code.
fn parse<'c>(py: Python<'_>, code: &'c str) -> PyResult<(Arc<Spec>, &'c str)> {
    let mut chars = code.chars();
    let head = chars
        .next()
        .ok_or_else(|| PyValueError::new_err("empty type code"))?;
    let rest = chars.as_str();
    let simple = |spec| Ok((Arc::new(spec), rest));
    match head {
        's' => simple(Spec::Str),
        'i' => simple(Spec::Int),
        'f' => simple(Spec::Float),
        'b' => simple(Spec::Bool),
        'd' => simple(Spec::DateTime),
        'v' => simple(Spec::Void),
        'A' => simple(Spec::Any),
        'r' => simple(Spec::Ref),
        'e' | 'R' => {
            let (name, rest) = rest
                .split_once(';')
                .ok_or_else(|| PyValueError::new_err(format!("type code {code:?}: no `;`")))?;
            let spec = if head == 'e' {
                enum_spec(py, name)?
            } else {
                Spec::Record(record_spec(py, name)?)
            };
            Ok((Arc::new(spec), rest))
        }
        'L' | 'O' => {
            let (inner, rest) = parse(py, rest)?;
            let spec = if head == 'L' {
                Spec::Set(inner)
            } else {
                Spec::Option(inner)
            };
            Ok((Arc::new(spec), rest))
        }
        'M' => {
            let (key, rest) = parse(py, rest)?;
            let (value, rest) = parse(py, rest)?;
            Ok((Arc::new(Spec::Map(key, value)), rest))
        }
        other => Err(PyValueError::new_err(format!(
            "type code {code:?}: unknown `{other}`"
        ))),
    }
}

fn registry(py: Python<'_>) -> PyResult<&Registry> {
    REGISTRY
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("xapi_sdk._api has not registered its classes"))
}

fn enum_spec(py: Python<'_>, name: &str) -> PyResult<Spec> {
    let class = registry(py)?
        .enums
        .bind(py)
        .get_item(name)?
        .ok_or_else(|| PyValueError::new_err(format!("unknown enum {name:?}")))?
        .cast_into::<PyType>()?;
    let mut members = FastMap::default();
    for member in class.try_iter()? {
        let member = member?;
        let value: String = member.getattr("value")?.extract()?;
        members.insert(value, member.unbind());
    }
    Ok(Spec::Enum(class.unbind(), members))
}

fn record_spec(py: Python<'_>, name: &str) -> PyResult<Arc<RecordSpec>> {
    if let Some(known) = RECORDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .get(name)
    {
        return Ok(Arc::clone(known));
    }
    let entry = registry(py)?
        .records
        .bind(py)
        .get_item(name)?
        .ok_or_else(|| PyValueError::new_err(format!("unknown record class {name:?}")))?;
    let entry = entry.cast::<PyTuple>()?;
    let class = entry.get_item(0)?.cast_into::<PyType>()?;
    let mut fields = Vec::new();
    let mut by_name = FastMap::default();
    for field in entry.get_item(1)?.try_iter()? {
        let (name, code): (String, String) = field?.extract()?;
        let key = PyString::intern(py, &name).unbind();
        by_name.insert(name.clone(), fields.len());
        fields.push(RecordField {
            name,
            key,
            spec: get(py, &code)?,
        });
    }
    let spec = Arc::new(RecordSpec {
        class: class.unbind(),
        fields,
        by_name,
    });
    RECORDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), Arc::clone(&spec));
    Ok(spec)
}
