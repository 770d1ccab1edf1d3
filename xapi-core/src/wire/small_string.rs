//! An owned string that keeps short texts inline: the `string` fields of the generated records.
//!
//! A XAPI record is mostly short strings: UUIDs (36 bytes), names, map keys such as
//! `device-model` and values such as `true` or `0`. Held as `String`s, each one is a heap block,
//! and decoding 5,000 VM records made about two million of them, whose `malloc` and `free`
//! were more than half of the decode and drop. A [`SmallString`] holds up to
//! [`INLINE_CAPACITY`] (38) bytes in place, which covers every UUID, and falls back to a
//! `String` for longer text (descriptions, the `<restrictions>` XML of `recommendations`,
//! base64 blobs).
//!
//! It behaves like `String` where consumers touch it: it derefs to `str`, compares with `str`,
//! `&str` and `String` (both ways), orders and hashes like its text (so `BTreeMap<SmallString,
//! _>::get("key")` and `HashMap` lookups by `&str` work through [`Borrow<str>`]), converts from
//! and into `String`, displays as its text and is serialized as a plain string.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest text, in bytes, that a [`SmallString`] stores without a heap allocation.
///
/// 38 bytes keeps a `SmallString` at 40 bytes and holds a UUID (36).
pub const INLINE_CAPACITY: usize = 38;

/// Inline bytes or a heap `String`.
///
/// `Inline` is only built from a `&str` of at most [`INLINE_CAPACITY`] bytes (by
/// [`Repr::inline`]) and only changed by appending whole `&str`s, so `bytes[..len]` is always
/// valid UTF-8.
#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    Heap(String),
}

impl Repr {
    const EMPTY: Self = Self::Inline {
        len: 0,
        bytes: [0; INLINE_CAPACITY],
    };

    /// `text` inline; the caller checked that it fits.
    fn inline(text: &str) -> Self {
        let mut bytes = [0; INLINE_CAPACITY];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Self::Inline {
            len: text.len() as u8,
            bytes,
        }
    }
}

/// An owned UTF-8 string stored inline up to [`INLINE_CAPACITY`] bytes, on the heap beyond.
///
/// ```
/// use std::collections::BTreeMap;
/// use xapi_core::wire::SmallString;
///
/// let uuid = SmallString::from("6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44");
/// assert!(uuid.is_inline());
/// assert_eq!(uuid, "6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44");
/// assert_eq!(uuid.len(), 36);
///
/// let mut platform: BTreeMap<SmallString, SmallString> = BTreeMap::new();
/// platform.insert("device-model".into(), "qemu-upstream-compat".into());
/// assert_eq!(platform.get("device-model").map(SmallString::as_str), Some("qemu-upstream-compat"));
///
/// let name: String = SmallString::from(format!("web-{}", 1)).into();
/// assert_eq!(name, "web-1");
/// ```
#[derive(Clone)]
pub struct SmallString {
    repr: Repr,
}

impl SmallString {
    /// The empty string (no allocation).
    pub const fn new() -> Self {
        Self { repr: Repr::EMPTY }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.repr {
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)])
                .expect("inline bytes are copied whole from &strs"),
            Repr::Heap(text) => text,
        }
    }

    /// The text's UTF-8 bytes (no validation: comparisons, ordering and hashing use these).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    /// Whether the text is held inline (no heap block).
    pub fn is_inline(&self) -> bool {
        matches!(self.repr, Repr::Inline { .. })
    }

    /// The text as a `String` (reusing the heap buffer when there is one).
    pub fn into_string(self) -> String {
        match self.repr {
            Repr::Heap(text) => text,
            Repr::Inline { .. } => self.as_str().to_owned(),
        }
    }

    /// Appends `text`, moving to the heap when the result no longer fits inline.
    pub fn push_str(&mut self, text: &str) {
        match &mut self.repr {
            Repr::Inline { len, bytes } => {
                let old = usize::from(*len);
                let new = old + text.len();
                if new <= INLINE_CAPACITY {
                    bytes[old..new].copy_from_slice(text.as_bytes());
                    *len = new as u8;
                } else {
                    let mut heap = String::with_capacity(new);
                    heap.push_str(self.as_str());
                    heap.push_str(text);
                    self.repr = Repr::Heap(heap);
                }
            }
            Repr::Heap(heap) => heap.push_str(text),
        }
    }

    /// Appends one character.
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Empties the string, keeping a heap buffer if it has one.
    pub fn clear(&mut self) {
        match &mut self.repr {
            Repr::Inline { len, .. } => *len = 0,
            Repr::Heap(heap) => heap.clear(),
        }
    }
}

impl Default for SmallString {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SmallString {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SmallString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for SmallString {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl AsRef<std::path::Path> for SmallString {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(self.as_str())
    }
}

impl AsRef<std::ffi::OsStr> for SmallString {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(self.as_str())
    }
}

impl Borrow<str> for SmallString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SmallString {
    fn from(text: &str) -> Self {
        if text.len() <= INLINE_CAPACITY {
            Self {
                repr: Repr::inline(text),
            }
        } else {
            Self {
                repr: Repr::Heap(text.to_owned()),
            }
        }
    }
}

impl From<&String> for SmallString {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<&mut str> for SmallString {
    fn from(text: &mut str) -> Self {
        Self::from(&*text)
    }
}

impl From<String> for SmallString {
    /// Short text is copied inline (and the `String` freed); longer text keeps its buffer.
    fn from(text: String) -> Self {
        if text.len() <= INLINE_CAPACITY {
            Self::from(text.as_str())
        } else {
            Self {
                repr: Repr::Heap(text),
            }
        }
    }
}

impl From<Box<str>> for SmallString {
    fn from(text: Box<str>) -> Self {
        Self::from(text.into_string())
    }
}

impl From<Cow<'_, str>> for SmallString {
    fn from(text: Cow<'_, str>) -> Self {
        match text {
            Cow::Borrowed(text) => Self::from(text),
            Cow::Owned(text) => Self::from(text),
        }
    }
}

impl From<char> for SmallString {
    fn from(c: char) -> Self {
        Self::from(&*c.encode_utf8(&mut [0; 4]))
    }
}

impl From<SmallString> for String {
    fn from(text: SmallString) -> Self {
        text.into_string()
    }
}

impl<'a> From<&'a SmallString> for Cow<'a, str> {
    fn from(text: &'a SmallString) -> Self {
        Cow::Borrowed(text.as_str())
    }
}

impl FromStr for SmallString {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(text))
    }
}

impl<'a> FromIterator<&'a str> for SmallString {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut out = Self::new();
        out.extend(iter);
        out
    }
}

impl FromIterator<char> for SmallString {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        let mut out = Self::new();
        out.extend(iter);
        out
    }
}

impl<'a> Extend<&'a str> for SmallString {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        for text in iter {
            self.push_str(text);
        }
    }
}

impl Extend<char> for SmallString {
    fn extend<I: IntoIterator<Item = char>>(&mut self, iter: I) {
        for c in iter {
            self.push(c);
        }
    }
}

impl fmt::Write for SmallString {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_str(text);
        Ok(())
    }
}

impl fmt::Debug for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SmallString {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallString {}

impl PartialOrd for SmallString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallString {
    /// The text's order (`str`'s, which is the order of the UTF-8 bytes), whatever the
    /// storage.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for SmallString {
    /// Exactly `str`'s hash, as [`Borrow<str>`] requires: the bytes, then `0xff` (what
    /// `str::hash` feeds a hasher that keeps the default `write_str`, as std's do).
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

macro_rules! eq_with_text {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for SmallString {
            fn eq(&self, other: &$other) -> bool {
                self.as_bytes() == AsRef::<str>::as_ref(other).as_bytes()
            }
        }

        impl PartialEq<SmallString> for $other {
            fn eq(&self, other: &SmallString) -> bool {
                AsRef::<str>::as_ref(self).as_bytes() == other.as_bytes()
            }
        }

        impl PartialOrd<$other> for SmallString {
            fn partial_cmp(&self, other: &$other) -> Option<Ordering> {
                Some(self.as_bytes().cmp(AsRef::<str>::as_ref(other).as_bytes()))
            }
        }
    )*};
}

eq_with_text!(str, &str, String, Cow<'_, str>);

impl Serialize for SmallString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Builds a [`SmallString`] from whatever string form the deserializer has: borrowed or
/// transient text is copied (inline when short), an owned `String` is kept when long.
struct SmallStringVisitor;

impl Visitor<'_> for SmallStringVisitor {
    type Value = SmallString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SmallString, E> {
        Ok(SmallString::from(text))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<SmallString, E> {
        Ok(SmallString::from(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<SmallString, E> {
        std::str::from_utf8(bytes)
            .map(SmallString::from)
            .map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<SmallString, E> {
        String::from_utf8(bytes)
            .map(SmallString::from)
            .map_err(|err| E::invalid_value(de::Unexpected::Bytes(err.as_bytes()), &self))
    }
}

impl<'de> Deserialize<'de> for SmallString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(SmallStringVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn hash_of(value: &(impl Hash + ?Sized)) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_small_string_is_40_bytes() {
        assert_eq!(std::mem::size_of::<SmallString>(), 40);
    }

    #[test]
    fn uuids_are_inline_and_longer_texts_on_the_heap() {
        let uuid = "6f1c2a9e-0b4d-4c1e-9a57-3b2f8e0d1c44";
        assert!(SmallString::from(uuid).is_inline());
        let at_capacity = "x".repeat(INLINE_CAPACITY);
        assert!(SmallString::from(at_capacity.as_str()).is_inline());
        let long = "x".repeat(INLINE_CAPACITY + 1);
        let heap = SmallString::from(long.clone());
        assert!(!heap.is_inline());
        assert_eq!(heap, long);
        assert_eq!(heap.into_string(), long);
    }

    #[test]
    fn pushing_moves_to_the_heap_when_full() {
        let mut text = SmallString::new();
        for i in 0..50 {
            text.push(if i % 2 == 0 { 'é' } else { 'a' });
            assert_eq!(text.chars().count(), i + 1);
        }
        assert!(!text.is_inline());
        text.clear();
        assert!(text.is_empty());
    }

    #[test]
    fn order_equality_and_hash_follow_the_text() {
        let texts = ["", "a", "b", "é€𝄞", &"z".repeat(60)];
        for a in texts {
            let sa = SmallString::from(a);
            assert_eq!(hash_of(&sa), hash_of(a));
            assert_eq!(sa, a);
            assert_eq!(a, sa);
            for b in texts {
                assert_eq!(sa.cmp(&SmallString::from(b)), a.cmp(b));
            }
        }
    }

    #[test]
    fn maps_are_looked_up_by_str() {
        let mut map: BTreeMap<SmallString, SmallString> = BTreeMap::new();
        map.insert("a".into(), "1".into());
        assert_eq!(map.get("a").map(SmallString::as_str), Some("1"));
        let mut map: HashMap<SmallString, i64> = HashMap::new();
        map.insert("b".into(), 2);
        assert_eq!(map.get("b"), Some(&2));
    }
}
