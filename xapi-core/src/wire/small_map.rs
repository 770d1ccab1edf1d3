//! A map kept as one sorted vector: the `(K -> V) map` fields of the generated records.
//!
//! Record maps are small (`platform` has about a dozen entries, `other_config` a handful, most
//! are empty) and are read far more often than changed. A `BTreeMap` spends a node of eleven
//! slots on each of them (about 900 bytes for string pairs) and walks it to drop it; a
//! [`SmallMap`] is a single vector of `(key, value)` pairs sorted by key: no block at all when
//! empty, one block of the entries' size otherwise, looked up by binary search.
//!
//! Its API follows `BTreeMap`'s (`get`, `insert`, `remove`, `iter`, `keys`, `values`, `len`,
//! `contains_key`, `retain`; `get_or_insert_with` in place of the `entry` API), it iterates in key order like `BTreeMap` and
//! serializes as a map, so code written against a `BTreeMap` field mostly compiles unchanged.
//! Inserting keeps the order (binary search, then a shift), which is fine at these sizes;
//! decoding appends and sorts once at the end only if the wire's order was not already sorted,
//! and a key that repeats keeps its last value, as `BTreeMap::insert` would.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Index;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map held as a vector of `(key, value)` pairs sorted by key, each key once.
///
/// ```
/// use xapi_core::wire::{SmallMap, SmallString};
///
/// let mut platform: SmallMap<SmallString, SmallString> = SmallMap::new();
/// platform.insert("viridian".into(), "true".into());
/// platform.insert("acpi".into(), "1".into());
/// assert_eq!(platform.get("acpi").map(SmallString::as_str), Some("1"));
/// assert_eq!(platform.len(), 2);
/// let keys: Vec<&str> = platform.keys().map(SmallString::as_str).collect();
/// assert_eq!(keys, ["acpi", "viridian"]);
/// assert_eq!(platform["viridian"], "true");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> SmallMap<K, V> {
    /// An empty map (no allocation).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter(self.entries.iter())
    }

    /// The entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut(self.entries.iter_mut())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// The keys in order, owned.
    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.entries.into_iter().map(|(k, _)| k)
    }

    /// The values in key order, owned.
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// The entry with the smallest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// The entry with the largest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// Keeps only the entries for which `keep` returns `true`.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries as a sorted slice of pairs.
    pub fn as_slice(&self) -> &[(K, V)] {
        &self.entries
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn search<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| &self.entries[i].1)
    }

    /// The stored key and value under `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| {
            let (k, v) = &self.entries[i];
            (k, v)
        })
    }

    /// The value under `key`, mutable.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.search(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// Whether the map has `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).is_ok()
    }

    /// Sets `key` to `value`; the previous value, if there was one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; its value, if it was there.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`; the stored key and its value, if it was there.
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| self.entries.remove(i))
    }

    /// The value under `key`, inserted from `make` first if the key is missing.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.search(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Pairs in any order, possibly with repeated keys, made into a map: sorted by key (stable),
    /// a repeated key keeping its last value. Pairs that are already strictly sorted (what
    /// xapi and this crate's encoders send) are only checked.
    fn from_pairs(mut entries: Vec<(K, V)>) -> Self {
        if entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            return Self { entries };
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(K, V)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match unique.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => unique.push((key, value)),
            }
        }
        Self { entries: unique }
    }
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, Q, V> Index<&Q> for SmallMap<K, V>
where
    K: Ord + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value under `key`.
    ///
    /// # Panics
    /// If the map does not have `key`, like `BTreeMap`'s `Index`.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_pairs(iter.into_iter().collect())
    }
}

impl<K: Ord, V> Extend<(K, V)> for SmallMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SmallMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        Self::from_pairs(Vec::from(pairs))
    }
}

impl<K: Ord, V> From<Vec<(K, V)>> for SmallMap<K, V> {
    fn from(pairs: Vec<(K, V)>) -> Self {
        Self::from_pairs(pairs)
    }
}

impl<K, V> From<BTreeMap<K, V>> for SmallMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        Self {
            entries: map.into_iter().collect(),
        }
    }
}

impl<K: Ord, V> From<SmallMap<K, V>> for BTreeMap<K, V> {
    fn from(map: SmallMap<K, V>) -> Self {
        map.entries.into_iter().collect()
    }
}

/// The entries of a [`SmallMap`] in key order, borrowed.
#[derive(Debug, Clone)]
pub struct Iter<'a, K, V>(std::slice::Iter<'a, (K, V)>);

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

/// The entries of a [`SmallMap`] in key order, values mutable.
#[derive(Debug)]
pub struct IterMut<'a, K, V>(std::slice::IterMut<'a, (K, V)>);

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for IterMut<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl<K, V> ExactSizeIterator for IterMut<'_, K, V> {}

/// The entries of a [`SmallMap`] in key order, owned.
#[derive(Debug)]
pub struct IntoIter<K, V>(std::vec::IntoIter<(K, V)>);

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for IntoIter<K, V> {
    fn next_back(&mut self) -> Option<(K, V)> {
        self.0.next_back()
    }
}

impl<K, V> ExactSizeIterator for IntoIter<K, V> {}

impl<K, V> IntoIterator for SmallMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter(self.entries.into_iter())
    }
}

impl<'a, K, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut SmallMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

impl<K: Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Reads a map's entries in wire order, then sorts them only if needed.
struct SmallMapVisitor<K, V>(PhantomData<fn() -> (K, V)>);

impl<'de, K, V> Visitor<'de> for SmallMapVisitor<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    type Value = SmallMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<SmallMap<K, V>, A::Error> {
        let Some(first) = access.next_entry()? else {
            return Ok(SmallMap::new());
        };
        // Room for the usual record map at once (the wire gives no count): one block, not
        // three growing ones.
        // A deserializer's size hint is trusted only up to a bound, as serde's own maps do.
        let hint = access.size_hint().unwrap_or(7).clamp(1, 4096);
        let mut entries = Vec::with_capacity(hint + 1);
        entries.push(first);
        while let Some(entry) = access.next_entry()? {
            entries.push(entry);
        }
        Ok(SmallMap::from_pairs(entries))
    }
}

impl<'de, K, V> Deserialize<'de> for SmallMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SmallMapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_btree_map() {
        let ops: &[(&str, i32)] = &[("b", 1), ("a", 2), ("c", 3), ("a", 4), ("", 5), ("é", 6)];
        let mut small = SmallMap::new();
        let mut btree = BTreeMap::new();
        for &(k, v) in ops {
            assert_eq!(small.insert(k.to_owned(), v), btree.insert(k.to_owned(), v));
        }
        assert!(small.iter().eq(btree.iter()));
        assert_eq!(small.remove("a"), btree.remove("a"));
        assert_eq!(small.remove("zz"), btree.remove("zz"));
        assert!(small.iter().eq(btree.iter()));
        assert_eq!(small.get("c"), Some(&3));
        assert!(small.contains_key("b") && !small.contains_key("a"));
        assert_eq!(BTreeMap::from(small), btree);
    }

    #[test]
    fn unsorted_pairs_with_repeats_keep_the_last_value() {
        let map = SmallMap::from([("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)]);
        assert_eq!(map.as_slice(), &[("a", 4), ("b", 3), ("c", 5)]);
        let sorted = SmallMap::from([("a", 1), ("b", 2)]);
        assert_eq!(sorted.as_slice(), &[("a", 1), ("b", 2)]);
    }

    #[test]
    fn an_empty_map_has_no_block() {
        let map: SmallMap<String, String> = SmallMap::new();
        assert_eq!(map.entries.capacity(), 0);
        assert_eq!(std::mem::size_of_val(&map), 24);
    }
}
