//! `Ref`: an object reference (`OpaqueRef:…`) as a type of its own, so that typed scripts tell
//! references from other strings.

use std::hash::{Hash, Hasher};

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The text of the null reference.
const NULL: &str = "OpaqueRef:NULL";

/// A reference to a XAPI object (`OpaqueRef:…`), as the typed API returns and takes them.
///
/// `Ref("OpaqueRef:…")` makes one from its text; `str(ref)` and `ref.opaque` give the text
/// back; `ref.is_null` tells the null reference (`OpaqueRef:NULL`, what xapi sends for "no
/// object"). References compare and hash by their text (a `Ref` never equals a plain `str`).
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen, eq, hash, str)]
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Ref {
    opaque: String,
}

impl Hash for Ref {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.opaque.hash(state);
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.opaque)
    }
}

impl Ref {
    /// A reference with the given text.
    pub(crate) fn from_text(opaque: String) -> Self {
        Self { opaque }
    }

    /// The reference's text.
    pub(crate) fn text(&self) -> &str {
        &self.opaque
    }
}

#[pymethods]
impl Ref {
    #[new]
    fn new(opaque: &Bound<'_, PyString>) -> PyResult<Self> {
        Ok(Self {
            opaque: opaque.to_str()?.to_owned(),
        })
    }

    /// The null reference, `OpaqueRef:NULL`.
    #[classattr]
    #[pyo3(name = "NULL")]
    fn null() -> Self {
        Self {
            opaque: NULL.to_owned(),
        }
    }

    /// The reference's text (`OpaqueRef:…`).
    #[getter]
    fn opaque(&self) -> &str {
        &self.opaque
    }

    /// Whether this is the null reference (`OpaqueRef:NULL`), xapi's "no object".
    #[getter]
    fn is_null(&self) -> bool {
        self.opaque == NULL
    }

    fn __repr__(&self) -> String {
        format!("Ref({:?})", self.opaque)
    }

    fn __bool__(&self) -> bool {
        !self.is_null()
    }
}
