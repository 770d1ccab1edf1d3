//! Typed object references (`OpaqueRef:...`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The wire text of the null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// A reference to a XAPI object of class `T` (a marker type from [`crate::api`]).
///
/// On the wire a reference is a plain string such as `OpaqueRef:6f1c...`; the class parameter
/// only exists at compile time so that a `Ref<Vm>` cannot be passed where a `Ref<Vdi>` is
/// expected. The null reference is [`Ref::null`].
pub struct Ref<T: ?Sized> {
    raw: String,
    class: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Ref<T> {
    /// A reference from its wire text (no validation: servers may use other prefixes).
    pub fn new(raw: impl Into<String>) -> Self {
        Self {
            raw: raw.into(),
            class: PhantomData,
        }
    }

    /// The null reference, `OpaqueRef:NULL`.
    pub fn null() -> Self {
        Self::new(NULL_REF)
    }

    /// Whether this is the null reference (`OpaqueRef:NULL`, or the empty string some fields carry).
    pub fn is_null(&self) -> bool {
        self.raw == NULL_REF || self.raw.is_empty()
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The wire text, owned.
    pub fn into_string(self) -> String {
        self.raw
    }

    /// The same reference viewed as another class (for untyped corners of the API).
    pub fn cast<U: ?Sized>(self) -> Ref<U> {
        Ref::new(self.raw)
    }
}

impl<T: ?Sized> Default for Ref<T> {
    fn default() -> Self {
        Self::null()
    }
}

impl<T: ?Sized> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Self::new(self.raw.clone())
    }
}

impl<T: ?Sized> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T: ?Sized> Eq for Ref<T> {}

impl<T: ?Sized> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: ?Sized> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl<T: ?Sized> Hash for Ref<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T: ?Sized> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({})", self.raw)
    }
}

impl<T: ?Sized> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<T: ?Sized> From<String> for Ref<T> {
    fn from(raw: String) -> Self {
        Self::new(raw)
    }
}

impl<T: ?Sized> From<&str> for Ref<T> {
    fn from(raw: &str) -> Self {
        Self::new(raw)
    }
}

impl<T: ?Sized> Serialize for Ref<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de, T: ?Sized> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vm;

    #[test]
    fn null_ref_is_null() {
        assert!(Ref::<Vm>::null().is_null());
        assert!(Ref::<Vm>::new("").is_null());
        assert!(!Ref::<Vm>::new("OpaqueRef:1").is_null());
        assert_eq!(Ref::<Vm>::default().as_str(), NULL_REF);
    }
}
