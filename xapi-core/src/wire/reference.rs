//! Typed object references (`OpaqueRef:...`).
//!
//! A reference is stored inline, without a heap allocation, when its text fits in
//! [`INLINE_CAPACITY`] bytes: `OpaqueRef:` followed by a 36-character UUID (46 bytes) and
//! `OpaqueRef:NULL` both do. Longer texts (other servers' prefixes, hand-made references) fall
//! back to the heap. A `get_all_records` decode therefore allocates nothing for its keys and
//! reference fields, and `Ref::null()` (the default of every reference field) costs a copy of
//! 48 bytes instead of a `malloc`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The wire text of the null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// The longest reference text stored without a heap allocation, in bytes.
///
/// `OpaqueRef:` plus a 36-character UUID is 46 bytes, which keeps a [`Ref`] at 48 bytes.
pub const INLINE_CAPACITY: usize = 46;

/// The text of a reference: inline when short, on the heap otherwise.
///
/// Every constructor goes through [`Repr::from_text`], which only builds `Inline` from a `&str`
/// of at most [`INLINE_CAPACITY`] bytes, so `bytes[..len]` is always valid UTF-8.
#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    Heap(Box<str>),
}

impl Repr {
    /// A copy of `text`: inline when it fits.
    fn from_text(text: &str) -> Self {
        if text.len() <= INLINE_CAPACITY {
            let mut bytes = [0; INLINE_CAPACITY];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Self::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(text.into())
        }
    }

    /// `text` itself: inline when it fits (the `String` is dropped), else its buffer.
    fn from_string(text: String) -> Self {
        if text.len() <= INLINE_CAPACITY {
            Self::from_text(&text)
        } else {
            Self::Heap(text.into_boxed_str())
        }
    }

    /// The text's bytes (UTF-8), without validation.
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(text) => text.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)])
                .expect("inline reference bytes are copied whole from a &str"),
            Self::Heap(text) => text,
        }
    }
}

/// A reference to a XAPI object of class `T` (a marker type from [`crate::api`]).
///
/// On the wire a reference is a plain string such as `OpaqueRef:6f1c...`; the class parameter
/// only exists at compile time so that a `Ref<Vm>` cannot be passed where a `Ref<Vdi>` is
/// expected. The null reference is [`Ref::null`].
///
/// Equality, ordering and hashing follow the wire text (equal texts, equal hashes), and texts
/// of up to [`INLINE_CAPACITY`] bytes are held without a heap allocation.
pub struct Ref<T: ?Sized> {
    raw: Repr,
    class: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Ref<T> {
    /// A reference from its wire text (no validation: servers may use other prefixes).
    pub fn new(raw: impl AsRef<str>) -> Self {
        Self::from_repr(Repr::from_text(raw.as_ref()))
    }

    fn from_repr(raw: Repr) -> Self {
        Self {
            raw,
            class: PhantomData,
        }
    }

    /// The null reference, `OpaqueRef:NULL`.
    pub fn null() -> Self {
        Self::new(NULL_REF)
    }

    /// Whether this is the null reference (`OpaqueRef:NULL`, or the empty string some fields carry).
    pub fn is_null(&self) -> bool {
        let bytes = self.raw.as_bytes();
        bytes == NULL_REF.as_bytes() || bytes.is_empty()
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        self.raw.as_str()
    }

    /// The wire text, owned.
    pub fn into_string(self) -> String {
        match self.raw {
            Repr::Heap(text) => text.into_string(),
            inline @ Repr::Inline { .. } => inline.as_str().to_owned(),
        }
    }

    /// The same reference viewed as another class (for untyped corners of the API).
    pub fn cast<U: ?Sized>(self) -> Ref<U> {
        Ref::from_repr(self.raw)
    }
}

impl<T: ?Sized> Default for Ref<T> {
    fn default() -> Self {
        Self::null()
    }
}

impl<T: ?Sized> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Self::from_repr(self.raw.clone())
    }
}

impl<T: ?Sized> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw.as_bytes() == other.raw.as_bytes()
    }
}

impl<T: ?Sized> Eq for Ref<T> {}

impl<T: ?Sized> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: ?Sized> Ord for Ref<T> {
    /// Byte order of the UTF-8 text, which is `str`'s order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.raw.as_bytes().cmp(other.raw.as_bytes())
    }
}

impl<T: ?Sized> Hash for Ref<T> {
    /// The text's bytes, then `0xff`: what `str` feeds a hasher that keeps the default
    /// `write_str` (std's `DefaultHasher` does), so a `Ref` and its text hash alike there.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.raw.as_bytes());
        state.write_u8(0xff);
    }
}

impl<T: ?Sized> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({})", self.as_str())
    }
}

impl<T: ?Sized> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: ?Sized> From<String> for Ref<T> {
    fn from(raw: String) -> Self {
        Self::from_repr(Repr::from_string(raw))
    }
}

impl<T: ?Sized> From<&str> for Ref<T> {
    fn from(raw: &str) -> Self {
        Self::new(raw)
    }
}

impl<T: ?Sized> Serialize for Ref<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Builds a reference from whatever string form the deserializer has, copying borrowed text
/// straight into the inline buffer.
struct RefVisitor<T: ?Sized>(PhantomData<fn() -> T>);

impl<T: ?Sized> Visitor<'_> for RefVisitor<T> {
    type Value = Ref<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object reference string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Ref<T>, E> {
        Ok(Ref::new(text))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Ref<T>, E> {
        Ok(Ref::from(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Ref<T>, E> {
        std::str::from_utf8(bytes)
            .map(Ref::new)
            .map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }
}

impl<'de, T: ?Sized> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(RefVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;

    struct Vm;

    fn hash_of(value: &impl Hash) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn null_ref_is_null() {
        assert!(Ref::<Vm>::null().is_null());
        assert!(Ref::<Vm>::new("").is_null());
        assert!(!Ref::<Vm>::new("OpaqueRef:1").is_null());
        assert_eq!(Ref::<Vm>::default().as_str(), NULL_REF);
    }

    #[test]
    fn a_ref_stays_at_48_bytes() {
        assert_eq!(std::mem::size_of::<Ref<Vm>>(), 48);
    }

    #[test]
    fn uuid_refs_are_inline_and_longer_ones_on_the_heap() {
        let uuid_ref = "OpaqueRef:6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44";
        assert_eq!(uuid_ref.len(), INLINE_CAPACITY);
        assert!(matches!(Ref::<Vm>::new(uuid_ref).raw, Repr::Inline { .. }));
        let long = format!("{uuid_ref}-and-more");
        let heap = Ref::<Vm>::new(&long);
        assert!(matches!(heap.raw, Repr::Heap(_)));
        assert_eq!(heap.as_str(), long);
        assert_eq!(heap.clone().into_string(), long);
        assert_eq!(Ref::<Vm>::from(long.clone()).as_str(), long);
        assert_eq!(Ref::<Vm>::new(uuid_ref).into_string(), uuid_ref);
    }

    #[test]
    fn text_with_multibyte_characters_survives_both_forms() {
        for text in ["OpaqueRef:é€𝄞", &"ü".repeat(40)] {
            let reference = Ref::<Vm>::new(text);
            assert_eq!(reference.as_str(), text);
            assert_eq!(reference.to_string(), text);
        }
    }

    #[test]
    fn equality_order_and_hash_follow_the_text() {
        let texts = [
            "",
            "OpaqueRef:NULL",
            "OpaqueRef:a",
            "OpaqueRef:b",
            "OpaqueRef:6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44",
            "OpaqueRef:6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44-longer-than-inline",
            "Ref:é",
        ];
        for a in texts {
            let ra = Ref::<Vm>::new(a);
            assert_eq!(hash_of(&ra), hash_of(&a), "{a}");
            for b in texts {
                let rb = Ref::<Vm>::new(b);
                assert_eq!(ra == rb, a == b, "{a} == {b}");
                assert_eq!(ra.cmp(&rb), a.cmp(b), "{a} cmp {b}");
            }
        }
    }

    #[test]
    fn cast_keeps_the_text() {
        let long = "x".repeat(100);
        assert_eq!(Ref::<Vm>::new(&long).cast::<()>().as_str(), long);
        assert_eq!(Ref::<Vm>::null().cast::<()>().as_str(), NULL_REF);
    }
}
