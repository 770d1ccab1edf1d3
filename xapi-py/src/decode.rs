//! Decoding a call's answer straight into Python objects, with no intermediate tree.
//!
//! The Rust client decodes an answer into any `T: Deserialize`, in one pass over the bytes (the
//! XML-RPC and JSON-RPC codecs of `xapi_core::wire`). Here `T` is [`Decoded`]: its serde
//! visitors build the Python values as the codec reports each scalar, array and struct, so the
//! `str`, `int`, `dict` and record objects are the only thing allocated per value.
//!
//! The GIL: the HTTP exchange runs with the GIL released, as before; the decoding pass, which
//! creates Python objects, holds it (taken by the runtime's worker thread that runs the call,
//! while the calling thread waits with the GIL released). So that other Python threads are not
//! starved by a large answer, the pass lets go of the GIL for a moment every
//! [`YIELD_EVERY`] of work, as the interpreter does between bytecodes.
//!
//! Two targets, chosen per call (carried to the decoder by a task-local, since
//! `DeserializeOwned` takes no arguments):
//!
//! - plain values, in the shapes `xmlrpc.client` gives (the compat layer and `Connection.call`;
//!   see the table in the `convert` module);
//! - typed values, driven by a [`Spec`] (the typed API; see the `typed` module for the types).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use foldhash::HashMap as FastMap;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use xapi_core::client::Client;
use xapi_core::wire::Value;

use crate::reference::Ref;
use crate::spec::{RecordSpec, Spec};
use crate::{convert, errors, exit, typed};

/// How long the decoding pass holds the GIL before it lets other Python threads run (the
/// interpreter's own switch interval is 5 ms).
const YIELD_EVERY: Duration = Duration::from_millis(5);

/// How many values are built between two looks at the clock.
const TICKS_PER_CLOCK: u32 = 1024;

/// Struct member names no longer than this are shared between the dicts of one answer (one
/// `str` object per distinct name, as the interpreter interns identifiers).
const SHARED_NAME_MAX: usize = 48;

/// At most this many distinct names are shared per answer.
const SHARED_NAMES_LIMIT: usize = 8192;

tokio::task_local! {
    /// What the answer of the call running in this task decodes into.
    static DECODING: Arc<Decoding>;
}

/// The target of one call's decoding, and a Python exception raised while building values.
struct Decoding {
    /// `None` for plain values, else the result's type spec.
    spec: Option<Arc<Spec>>,
    /// The first Python exception raised while decoding (the codec itself only carries a
    /// message): raised in place of the decode error.
    python_error: Mutex<Option<PyErr>>,
}

/// A call's answer, decoded straight into Python objects (or the client's error, or the Python
/// exception raised while decoding).
pub(crate) struct Answer {
    result: Result<Py<PyAny>, xapi_core::Error>,
    python_error: Option<PyErr>,
}

/// Send `method` with `params` and decode the answer into Python objects: plain values when
/// `spec` is `None`, else typed by `spec`.
pub(crate) async fn call(
    client: Client,
    method: String,
    params: Vec<Value>,
    spec: Option<Arc<Spec>>,
) -> Answer {
    let decoding = Arc::new(Decoding {
        spec,
        python_error: Mutex::new(None),
    });
    let result = DECODING
        .scope(Arc::clone(&decoding), async {
            client.call_raw::<Decoded>(&method, params).await
        })
        .await;
    let python_error = decoding
        .python_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    Answer {
        result: result.map(|decoded| decoded.0),
        python_error,
    }
}

impl Answer {
    /// The decoded value, or the exception to raise.
    pub(crate) fn into_python(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        if let Some(err) = self.python_error {
            return Err(err);
        }
        match self.result {
            Ok(value) => Ok(value.into_bound(py)),
            Err(err) => Err(errors::to_py(py, &err)),
        }
    }
}

impl<'py> IntoPyObject<'py> for Answer {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.into_python(py)
    }
}

/// The Python value of an answer, built by the codec's deserializer.
struct Decoded(Py<PyAny>);

impl<'de> serde::Deserialize<'de> for Decoded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let decoding = DECODING
            .try_with(Arc::clone)
            .map_err(|_| de::Error::custom("xapi_sdk: an answer decoded outside a call"))?;
        // The runtime's thread that runs the call enters the interpreter, unless it is
        // shutting down (see the `exit` module).
        exit::attach(|py| {
            let _paused = GcPause::new(py);
            let ctx = Ctx {
                py,
                decoding: &decoding,
                names: RefCell::new(FastMap::default()),
                ticks: Cell::new(0),
                since: Cell::new(Instant::now()),
            };
            let value = match decoding.spec.as_deref() {
                None => PlainSeed(&ctx).deserialize(deserializer)?,
                Some(spec) => TypedSeed {
                    ctx: &ctx,
                    spec,
                    field: None,
                }
                .deserialize(deserializer)?,
            };
            Ok(Decoded(value.unbind()))
        })
        .unwrap_or_else(|| {
            Err(de::Error::custom(
                "xapi_sdk: the answer arrived while the interpreter was shutting down",
            ))
        })
    }
}

/// The interpreter's cyclic garbage collector, switched off while an answer is decoded.
///
/// Building a large answer allocates hundreds of thousands of containers (dicts, lists,
/// records), and each 700 of them would start a collection that walks the young objects, and
/// now and then every object: about a third of the decoding time for 5,000 VM records. None of
/// the new objects can be garbage while they are being built, so the collector is switched
/// off until the answer is complete (when it was on). Other Python threads that run while the
/// decoding lets go of the GIL see it off, for that moment.
struct GcPause<'py> {
    py: Python<'py>,
    /// Whether this pause switched the collector off (and must switch it back on).
    paused: bool,
}

/// `gc.isenabled`, `gc.disable` and `gc.enable`, looked up once.
struct GcSwitch {
    is_enabled: Py<PyAny>,
    disable: Py<PyAny>,
    enable: Py<PyAny>,
}

static GC_SWITCH: PyOnceLock<GcSwitch> = PyOnceLock::new();

impl<'py> GcPause<'py> {
    /// Switches the collector off if it is on. A failure to look it up or switch it only
    /// means the decoding runs with the collector on.
    fn new(py: Python<'py>) -> Self {
        let paused = Self::switch(py).is_ok_and(|switch| {
            switch
                .is_enabled
                .bind(py)
                .call0()
                .and_then(|on| on.is_truthy())
                .unwrap_or(false)
                && switch.disable.bind(py).call0().is_ok()
        });
        Self { py, paused }
    }

    fn switch(py: Python<'_>) -> PyResult<&GcSwitch> {
        GC_SWITCH.get_or_try_init(py, || {
            let gc = py.import("gc")?;
            Ok(GcSwitch {
                is_enabled: gc.getattr("isenabled")?.unbind(),
                disable: gc.getattr("disable")?.unbind(),
                enable: gc.getattr("enable")?.unbind(),
            })
        })
    }
}

impl Drop for GcPause<'_> {
    fn drop(&mut self) {
        if self.paused
            && let Ok(switch) = Self::switch(self.py)
        {
            // nothing to do about a failure here: the collector stays off, as the user's code
            // may also have left it
            let _ = switch.enable.bind(self.py).call0();
        }
    }
}

/// What the visitors of one answer share.
struct Ctx<'a, 'py> {
    py: Python<'py>,
    decoding: &'a Decoding,
    /// Short struct member names already made into `str` objects.
    names: RefCell<FastMap<Box<str>, Py<PyString>>>,
    /// Values built since the clock was last read.
    ticks: Cell<u32>,
    /// When the GIL was last let go.
    since: Cell<Instant>,
}

impl<'py> Ctx<'_, 'py> {
    /// Counts one value built; lets other Python threads run when the GIL has been held for
    /// [`YIELD_EVERY`].
    #[inline]
    fn tick(&self) {
        let ticks = self.ticks.get() + 1;
        if ticks < TICKS_PER_CLOCK {
            self.ticks.set(ticks);
            return;
        }
        self.ticks.set(0);
        if self.since.get().elapsed() >= YIELD_EVERY {
            self.py.detach(|| ());
            self.since.set(Instant::now());
        }
    }

    /// Keeps `err` to be raised after the call, and returns the codec error that stops the
    /// decoding.
    fn python_error<E: de::Error>(&self, err: PyErr) -> E {
        let message = err.to_string();
        let mut slot = self
            .decoding
            .python_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(err);
        }
        E::custom(format_args!("python error: {message}"))
    }

    /// The `str` of a struct member name, shared with the other members of that name when it
    /// is short.
    fn name(&self, name: &str) -> Bound<'py, PyString> {
        if name.len() > SHARED_NAME_MAX || name.starts_with("OpaqueRef:") {
            return PyString::new(self.py, name);
        }
        let mut names = self.names.borrow_mut();
        if let Some(known) = names.get(name) {
            return known.bind(self.py).clone();
        }
        let made = PyString::new(self.py, name);
        if names.len() < SHARED_NAMES_LIMIT {
            names.insert(name.into(), made.clone().unbind());
        }
        made
    }
}

/// The text of a struct member name, borrowed from the input when the codec can.
struct NameText<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for NameText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = NameText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a struct member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<NameText<'de>, E> {
                Ok(NameText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NameText<'de>, E> {
                Ok(NameText(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<NameText<'de>, E> {
                Ok(NameText(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A struct member name as a shared `str`.
struct NameSeed<'c, 'a, 'py>(&'c Ctx<'a, 'py>);

impl<'de, 'py> DeserializeSeed<'de> for NameSeed<'_, '_, 'py> {
    type Value = Bound<'py, PyString>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let NameText(name) = NameText::deserialize(deserializer)?;
        Ok(self.0.name(&name))
    }
}

/// A value as the plain Python value `xmlrpc.client` would have made of it.
#[derive(Clone, Copy)]
struct PlainSeed<'c, 'a, 'py>(&'c Ctx<'a, 'py>);

impl<'de, 'py> DeserializeSeed<'de> for PlainSeed<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for PlainSeed<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an XML-RPC or JSON-RPC value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.0.tick();
        Ok(PyBool::new(self.0.py, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.tick();
        Ok(int(self.0.py, v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_i64(wide(v)?)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.tick();
        Ok(PyFloat::new(self.0.py, v).into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.tick();
        Ok(PyString::new(self.0.py, v).into_any())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        let ctx = self.0;
        convert::classes(ctx.py)
            .and_then(|known| {
                known
                    .xmlrpc_binary
                    .bind(ctx.py)
                    .call1((PyBytes::new(ctx.py, v),))
            })
            .map_err(|err| ctx.python_error(err))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.py.None().into_bound(self.0.py))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    /// The XML-RPC codec hands a `<dateTime.iso8601>` over as a newtype around its text.
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        let ctx = self.0;
        let NameText(text) = NameText::deserialize(deserializer)?;
        convert::classes(ctx.py)
            .and_then(|known| known.xmlrpc_datetime.bind(ctx.py).call1((text.trim(),)))
            .map_err(|err| ctx.python_error(err))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        list(self.0, items)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let ctx = self.0;
        let dict = PyDict::new(ctx.py);
        while let Some(name) = map.next_key_seed(NameSeed(ctx))? {
            let value = map.next_value_seed(self)?;
            dict.set_item(name, value)
                .map_err(|err| ctx.python_error::<A::Error>(err))?;
        }
        ctx.tick();
        Ok(dict.into_any())
    }
}

/// A Python `int`.
fn int(py: Python<'_>, v: i64) -> Bound<'_, PyAny> {
    let Ok(n) = v.into_pyobject(py);
    n.into_any()
}

/// An unsigned integer of the wire as the `i64` of XAPI's `int`.
fn wide<E: de::Error>(v: u64) -> Result<i64, E> {
    i64::try_from(v).map_err(|_| E::custom(format_args!("integer {v} does not fit in 64 bits")))
}

/// A Python `list` of `items`.
fn list<'py, E: de::Error>(
    ctx: &Ctx<'_, 'py>,
    items: Vec<Bound<'py, PyAny>>,
) -> Result<Bound<'py, PyAny>, E> {
    ctx.tick();
    PyList::new(ctx.py, items)
        .map(Bound::into_any)
        .map_err(|err| ctx.python_error(err))
}

/// A value as the typed Python value of `spec` (see the `typed` module).
#[derive(Clone, Copy)]
struct TypedSeed<'c, 'a, 'py> {
    ctx: &'c Ctx<'a, 'py>,
    spec: &'c Spec,
    /// The record field being decoded, for error messages.
    field: Option<&'c str>,
}

impl<'de, 'py> DeserializeSeed<'de> for TypedSeed<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let mut spec = self.spec;
        let mut nullable = false;
        while let Spec::Option(inner) = spec {
            spec = inner;
            nullable = true;
        }
        match spec {
            Spec::Void => {
                IgnoredAny::deserialize(deserializer)?;
                Ok(self.ctx.py.None().into_bound(self.ctx.py))
            }
            Spec::Any => PlainSeed(self.ctx).deserialize(deserializer),
            spec => deserializer.deserialize_any(TypedVisitor {
                ctx: self.ctx,
                spec,
                nullable,
                field: self.field,
            }),
        }
    }
}

/// Builds the typed value of `spec` (an option stripped: `nullable`) from what the codec
/// reports.
struct TypedVisitor<'c, 'a, 'py> {
    ctx: &'c Ctx<'a, 'py>,
    spec: &'c Spec,
    nullable: bool,
    field: Option<&'c str>,
}

impl<'py> TypedVisitor<'_, '_, 'py> {
    /// The error for a value of another type than the spec's.
    fn mismatch<E: de::Error>(&self, sent: &str) -> E {
        self.wrong(format_args!(
            "expected {}, the server sent {sent}",
            spec_name(self.spec)
        ))
    }

    /// A decode error naming the field.
    fn wrong<E: de::Error>(&self, message: fmt::Arguments<'_>) -> E {
        match self.field {
            Some(field) => E::custom(format_args!("field {field}: {message}")),
            None => E::custom(message),
        }
    }

    fn py_ok<E: de::Error>(
        &self,
        built: PyResult<Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyAny>, E> {
        built.map_err(|err| self.ctx.python_error(err))
    }

    fn datetime<E: de::Error>(&self, text: &str) -> Result<Bound<'py, PyAny>, E> {
        match typed::datetime(self.ctx.py, text) {
            Ok(value) => Ok(value),
            Err(typed::DateTimeError::Text(message)) => Err(self.wrong(format_args!("{message}"))),
            Err(typed::DateTimeError::Python(err)) => Err(self.ctx.python_error(err)),
        }
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

impl<'de, 'py> Visitor<'de> for TypedVisitor<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(spec_name(self.spec))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.spec {
            Spec::Bool => {
                self.ctx.tick();
                Ok(PyBool::new(self.ctx.py, v).to_owned().into_any())
            }
            _ => Err(self.mismatch("a boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.ctx.tick();
        match self.spec {
            Spec::Int => Ok(int(self.ctx.py, v)),
            #[allow(clippy::cast_precision_loss)] // JSON-RPC sends 2.0 as 2
            Spec::Float => Ok(PyFloat::new(self.ctx.py, v as f64).into_any()),
            _ => Err(self.mismatch("an integer")),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_i64(wide(v)?)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match self.spec {
            Spec::Float => {
                self.ctx.tick();
                Ok(PyFloat::new(self.ctx.py, v).into_any())
            }
            _ => Err(self.mismatch("a double")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let py = self.ctx.py;
        self.ctx.tick();
        match self.spec {
            Spec::Str => Ok(PyString::new(py, v).into_any()),
            Spec::Int => match v.trim().parse::<i64>() {
                Ok(n) => Ok(int(py, n)),
                Err(_) => Err(self.wrong(format_args!("expected an int, the server sent {v:?}"))),
            },
            Spec::Float => match v.trim().parse::<f64>() {
                Ok(x) => Ok(PyFloat::new(py, x).into_any()),
                Err(_) => Err(self.wrong(format_args!("expected a float, the server sent {v:?}"))),
            },
            Spec::DateTime => self.datetime(v),
            Spec::Ref => {
                self.py_ok(Bound::new(py, Ref::from_text(v.to_owned())).map(Bound::into_any))
            }
            Spec::Enum(_, members) => Ok(match members.get(v) {
                Some(member) => member.bind(py).clone(),
                None => PyString::new(py, v).into_any(),
            }),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Self::Value, E> {
        Err(self.mismatch("base64 data"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.nullable {
            Ok(self.ctx.py.None().into_bound(self.ctx.py))
        } else {
            Err(self.mismatch("nil"))
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    /// The XML-RPC codec hands a `<dateTime.iso8601>` over as a newtype around its text.
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        let NameText(text) = NameText::deserialize(deserializer)?;
        match self.spec {
            Spec::DateTime => {
                self.ctx.tick();
                self.datetime(text.trim())
            }
            _ => Err(self.mismatch("a datetime")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Spec::Set(inner) = self.spec else {
            return Err(self.mismatch("an array"));
        };
        let item = TypedSeed {
            ctx: self.ctx,
            spec: inner,
            field: self.field,
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(item)? {
            items.push(value);
        }
        list(self.ctx, items)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self.spec {
            Spec::Record(record) => to_record(self.ctx, record, map),
            Spec::Map(key, value) => {
                let ctx = self.ctx;
                let dict = PyDict::new(ctx.py);
                let mut map = map;
                let value = TypedSeed {
                    ctx,
                    spec: value,
                    field: self.field,
                };
                if matches!(**key, Spec::Str) {
                    while let Some(name) = map.next_key_seed(NameSeed(ctx))? {
                        let item = map.next_value_seed(value)?;
                        dict.set_item(name, item)
                            .map_err(|err| ctx.python_error::<A::Error>(err))?;
                    }
                } else {
                    let key = TypedSeed {
                        ctx,
                        spec: key,
                        field: self.field,
                    };
                    while let Some(name) = map.next_key_seed(key)? {
                        let item = map.next_value_seed(value)?;
                        dict.set_item(name, item)
                            .map_err(|err| ctx.python_error::<A::Error>(err))?;
                    }
                }
                ctx.tick();
                Ok(dict.into_any())
            }
            _ => Err(self.mismatch("a struct")),
        }
    }
}

/// An instance of the record's class with one attribute per field (fields the module does not
/// know, from a newer server, are kept as plain values).
fn to_record<'de, 'py, A: MapAccess<'de>>(
    ctx: &Ctx<'_, 'py>,
    record: &RecordSpec,
    mut map: A,
) -> Result<Bound<'py, PyAny>, A::Error> {
    let py = ctx.py;
    let attrs = PyDict::new(py);
    let mut expected = 0;
    while let Some(NameText(name)) = map.next_key::<NameText<'de>>()? {
        let (key, value) = match record.position(&name, expected) {
            Some((index, field)) => {
                expected = index + 1;
                let value = map.next_value_seed(TypedSeed {
                    ctx,
                    spec: &field.spec,
                    field: Some(&field.name),
                })?;
                (field.key.bind(py).clone(), value)
            }
            None => (ctx.name(&name), map.next_value_seed(PlainSeed(ctx))?),
        };
        attrs
            .set_item(key, value)
            .map_err(|err| ctx.python_error::<A::Error>(err))?;
    }
    ctx.tick();
    typed::new_record(py, record, attrs).map_err(|err| ctx.python_error(err))
}
