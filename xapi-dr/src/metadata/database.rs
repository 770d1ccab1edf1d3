//! The pool database as xapi stores it: a manifest and tables of rows whose columns keep their
//! stored string form, so that a dump read and written again is byte-identical.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Schema major version of every xapi release since Rio.
pub const SCHEMA_MAJOR: u32 = 5;
/// Schema minor version of the current xapi (5.909).
pub const SCHEMA_MINOR_CURRENT: u32 = 909;

/// Manifest keys written by xapi, in the order it writes them.
pub(crate) const KEY_SCHEMA_MAJOR: &str = "schema_major_vsn";
pub(crate) const KEY_SCHEMA_MINOR: &str = "schema_minor_vsn";
pub(crate) const KEY_GENERATION: &str = "generation_count";

/// The `<manifest>` of a dump: schema version, generation, and any other pair kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Schema major version (always 5 in practice).
    pub schema_major: u32,
    /// Schema minor version (909 for the current xapi; see the reference for the release table).
    pub schema_minor: u32,
    /// Database generation count: bumped by every change; the key of "newest wins".
    pub generation: i64,
    /// Pairs other than the three above, in document order.
    pub extra: Vec<(String, String)>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            schema_major: SCHEMA_MAJOR,
            schema_minor: SCHEMA_MINOR_CURRENT,
            generation: 0,
            extra: Vec::new(),
        }
    }
}

/// The names of a row's columns in byte order. Rows read from one table usually have the same
/// columns, and then share one list: a row costs its text, one offset per column and one pointer.
pub(crate) type ColumnNames = Arc<[Arc<str>]>;

/// One row: creation and modification generations plus its columns in byte order of name.
///
/// Values are the stored strings after XML and `%` unescaping (what deltas carry); sets and maps
/// are SExpr text (see [`crate::metadata::sexpr`]). All values of a row live in one buffer, and
/// the list of column names (interned) is shared with the other rows of the table that have the
/// same columns.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Generation at which the row was created (`__ctime`).
    pub ctime: i64,
    /// Generation of the row's last change (`__mtime`).
    pub mtime: i64,
    names: ColumnNames,
    /// End offset in `data` of each column's value; a value starts where the previous ends.
    ends: Vec<usize>,
    data: String,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.ctime == other.ctime
            && self.mtime == other.mtime
            && self.names.len() == other.names.len()
            && self.columns().eq(other.columns())
    }
}

impl Eq for Row {}

impl Row {
    /// An empty row with the given creation and modification generations.
    pub fn new(ctime: i64, mtime: i64) -> Row {
        Row {
            ctime,
            mtime,
            ..Row::default()
        }
    }

    fn index(&self, column: &str) -> Result<usize, usize> {
        self.names
            .binary_search_by(|name| name.as_ref().cmp(column))
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    /// The stored value of a column, if the row has it.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.index(column).ok().map(|i| &self.data[self.range(i)])
    }

    /// Sets a column, keeping columns sorted; returns the previous value.
    pub fn set(&mut self, column: Arc<str>, value: &str) -> Option<String> {
        match self.index(&column) {
            Ok(i) => {
                let old = self.data[self.range(i)].to_owned();
                self.replace_value(i, value);
                Some(old)
            }
            Err(i) => {
                self.insert_column(i, column, value);
                None
            }
        }
    }

    /// Sets a column, calling `intern` for its name only if the row does not have it yet (the
    /// replay's `WriteField`: nearly always a column the row has).
    pub(crate) fn put(&mut self, column: &str, value: &str, intern: impl FnOnce() -> Arc<str>) {
        match self.index(column) {
            Ok(i) => self.replace_value(i, value),
            Err(i) => self.insert_column(i, intern(), value),
        }
    }

    fn replace_value(&mut self, i: usize, value: &str) {
        let range = self.range(i);
        let grow = value.len().wrapping_sub(range.len());
        self.data.replace_range(range, value);
        if grow != 0 {
            for end in &mut self.ends[i..] {
                *end = end.wrapping_add(grow);
            }
        }
    }

    fn insert_column(&mut self, i: usize, column: Arc<str>, value: &str) {
        let at = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.insert_str(at, value);
        let mut names = Vec::with_capacity(self.names.len() + 1);
        names.extend_from_slice(&self.names[..i]);
        names.push(column);
        names.extend_from_slice(&self.names[i..]);
        self.names = names.into();
        self.ends.insert(i, at + value.len());
        for end in &mut self.ends[i + 1..] {
            *end += value.len();
        }
    }

    /// The row's list of column names (shared with other rows that have the same columns).
    pub(crate) fn names(&self) -> &ColumnNames {
        &self.names
    }

    /// A row from columns in any order; of a column listed more than once, the last value
    /// counts (as if set one after the other).
    pub(crate) fn from_columns(ctime: i64, mtime: i64, mut columns: Vec<(Arc<str>, &str)>) -> Row {
        // stable: repeated names keep their order, and the last one is kept below
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names = Vec::with_capacity(columns.len());
        let mut ends = Vec::with_capacity(columns.len());
        let mut data = String::with_capacity(columns.iter().map(|(_, v)| v.len()).sum());
        for (i, (name, value)) in columns.iter().enumerate() {
            if columns.get(i + 1).is_some_and(|next| next.0 == *name) {
                continue;
            }
            names.push(name.clone());
            data.push_str(value);
            ends.push(data.len());
        }
        Row::from_parts(ctime, mtime, names.into(), ends, data)
    }

    /// Columns and values in byte order of column name (the order of the dump).
    pub fn columns(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        (0..self.names.len()).map(|i| (self.names[i].as_ref(), &self.data[self.range(i)]))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A row from its parts, as the XML reader builds it: `names` sorted and unique, `ends` the
    /// end offset in `data` of each column's value (non-decreasing, the last one `data.len()`).
    pub(crate) fn from_parts(
        ctime: i64,
        mtime: i64,
        names: ColumnNames,
        ends: Vec<usize>,
        data: String,
    ) -> Row {
        debug_assert_eq!(names.len(), ends.len());
        debug_assert!(names.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(ends.windows(2).all(|w| w[0] <= w[1]));
        debug_assert_eq!(ends.last().copied().unwrap_or(0), data.len());
        Row {
            ctime,
            mtime,
            names,
            ends,
            data,
        }
    }
}

/// A table: rows by object reference, in byte order of the reference (the order of the dump).
pub type Table = BTreeMap<String, Row>;

/// A whole pool database.
///
/// Table and column names are interned: a 10,000-VM database holds one copy of each name.
#[derive(Debug, Clone, Default)]
pub struct Database {
    /// The manifest (schema version and generation).
    pub manifest: Manifest,
    tables: BTreeMap<Arc<str>, Table>,
    names: HashSet<Arc<str>>,
}

impl PartialEq for Database {
    fn eq(&self, other: &Self) -> bool {
        self.manifest == other.manifest && self.tables == other.tables
    }
}

impl Eq for Database {}

impl Database {
    /// An empty database with the given manifest.
    pub fn new(manifest: Manifest) -> Database {
        Database {
            manifest,
            ..Database::default()
        }
    }

    /// The database generation (`generation_count` of the manifest).
    pub fn generation(&self) -> i64 {
        self.manifest.generation
    }

    /// Returns the interned copy of a table or column name.
    pub fn intern(&mut self, name: &str) -> Arc<str> {
        intern_in(&mut self.names, name)
    }

    /// Sets one column of one row and stamps the row's `__mtime`; `false` if there is no such
    /// row. The name is interned only if the row lacks the column.
    pub(crate) fn write_field(
        &mut self,
        table: &str,
        reference: &str,
        column: &str,
        value: &str,
        mtime: i64,
    ) -> bool {
        let Some((row, names)) = self.row_and_names(table, reference) else {
            return false;
        };
        row.put(column, value, || intern_in(names, column));
        row.mtime = mtime;
        true
    }

    /// A table, if the dump has it (a missing table reads as empty through [`Database::rows`]).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The table named `name`, created empty if missing.
    pub fn table_mut(&mut self, name: &str) -> &mut Table {
        if !self.tables.contains_key(name) {
            let key = self.intern(name);
            self.tables.insert(key, Table::new());
        }
        self.tables
            .get_mut(name)
            .expect("the table was inserted just above")
    }

    /// Takes a table out of the database (an empty one if missing) with its interned name, for
    /// the XML reader to fill; [`Database::put_table`] gives it back.
    pub(crate) fn take_table(&mut self, name: &str) -> (Arc<str>, Table) {
        match self.tables.remove_entry(name) {
            Some(entry) => entry,
            None => (self.intern(name), Table::new()),
        }
    }

    /// Puts back a table taken with [`Database::take_table`].
    pub(crate) fn put_table(&mut self, name: Arc<str>, table: Table) {
        self.tables.insert(name, table);
    }

    /// Rows of a table in reference order; none if the table is missing.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&str, &Row)> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.iter().map(|(r, row)| (r.as_str(), row)))
    }

    /// One row by table and reference.
    pub fn row(&self, table: &str, reference: &str) -> Option<&Row> {
        self.tables.get(table)?.get(reference)
    }

    /// One row by table and reference, mutable.
    pub fn row_mut(&mut self, table: &str, reference: &str) -> Option<&mut Row> {
        self.tables.get_mut(table)?.get_mut(reference)
    }

    /// Tables in byte order of name (the order of the dump).
    pub fn tables(&self) -> impl Iterator<Item = (&str, &Table)> {
        self.tables.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Finds a row of `table` by its `uuid` column (a linear scan).
    pub fn find_by_uuid(&self, table: &str, uuid: &str) -> Option<(&str, &Row)> {
        self.rows(table)
            .find(|(_, row)| row.get("uuid") == Some(uuid))
    }

    /// Sets one column of one row, interning the column name. Returns `false` if the row does
    /// not exist.
    pub fn set_field(&mut self, table: &str, reference: &str, column: &str, value: &str) -> bool {
        self.row_and_names(table, reference)
            .map(|(row, names)| row.put(column, value, || intern_in(names, column)))
            .is_some()
    }

    /// One row, mutable, beside the interned names (two disjoint borrows).
    fn row_and_names(
        &mut self,
        table: &str,
        reference: &str,
    ) -> Option<(&mut Row, &mut HashSet<Arc<str>>)> {
        let row = self.tables.get_mut(table)?.get_mut(reference)?;
        Some((row, &mut self.names))
    }

    /// Inserts (or replaces) a row built from column/value pairs.
    pub fn insert_row<'a>(
        &mut self,
        table: &str,
        reference: &str,
        ctime: i64,
        mtime: i64,
        columns: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let columns = columns
            .into_iter()
            .map(|(k, v)| (self.intern(k), v))
            .collect();
        let row = Row::from_columns(ctime, mtime, columns);
        self.table_mut(table).insert(reference.to_owned(), row);
    }

    /// Adds a row from borrowed column/value pairs in any order (the last of a repeated column
    /// counts), stamped `generation`: the replay's `CreateRow`. When the table's first row has
    /// the same columns (rows of a table nearly always do), the new row shares its list of
    /// names and nothing is interned.
    pub(crate) fn create_row(
        &mut self,
        table: &str,
        reference: &str,
        generation: i64,
        columns: &[(&str, &str)],
    ) {
        let mut sorted = columns.to_vec();
        // stable: of a repeated column the last value stays last, and is the one kept
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept: Vec<(&str, &str)> = Vec::with_capacity(sorted.len());
        for (name, value) in sorted {
            match kept.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => kept.push((name, value)),
            }
        }
        let neighbour = self
            .tables
            .get(table)
            .and_then(|rows| rows.values().next())
            .map(|row| row.names().clone())
            .filter(|names| names.iter().map(AsRef::as_ref).eq(kept.iter().map(|c| c.0)));
        let names = match neighbour {
            Some(names) => names,
            None => kept.iter().map(|c| self.intern(c.0)).collect(),
        };
        let mut ends = Vec::with_capacity(kept.len());
        let mut data = String::with_capacity(kept.iter().map(|c| c.1.len()).sum());
        for (_, value) in &kept {
            data.push_str(value);
            ends.push(data.len());
        }
        let row = Row::from_parts(generation, generation, names, ends, data);
        self.table_mut(table).insert(reference.to_owned(), row);
    }

    /// Removes a row; returns it if it existed.
    pub fn remove_row(&mut self, table: &str, reference: &str) -> Option<Row> {
        self.tables.get_mut(table)?.remove(reference)
    }
}

/// The copy of `name` in `names`, added if missing.
fn intern_in(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(existing) = names.get(name) {
        return existing.clone();
    }
    let name: Arc<str> = Arc::from(name);
    names.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn row_behaves_like_a_sorted_map(ops in proptest::collection::vec(("[a-e]{1,2}", ".{0,6}"), 0..40)) {
            let mut db = Database::default();
            let mut row = Row::new(1, 2);
            let mut model = BTreeMap::new();
            for (k, v) in &ops {
                let name = db.intern(k);
                prop_assert_eq!(row.set(name, v), model.insert(k.clone(), v.clone()));
            }
            prop_assert_eq!(row.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(row.get(k), Some(v.as_str()));
            }
            let columns: Vec<(String, String)> = row.columns().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(columns, model.into_iter().collect::<Vec<_>>());
        }
    }

    proptest! {
        #[test]
        fn put_and_from_columns_agree_with_set(ops in proptest::collection::vec(("[a-e]{1,2}", ".{0,6}"), 0..40)) {
            let mut db = Database::default();
            let mut by_set = Row::new(1, 2);
            let mut by_put = Row::new(1, 2);
            for (k, v) in &ops {
                by_set.set(db.intern(k), v);
                by_put.put(k, v, || Arc::from(k.as_str()));
            }
            let columns = ops.iter().map(|(k, v)| (db.intern(k), v.as_str())).collect();
            let built = Row::from_columns(1, 2, columns);
            prop_assert_eq!(&by_put, &by_set);
            prop_assert_eq!(&built, &by_set);
        }
    }

    proptest! {
        #[test]
        fn create_row_builds_what_insert_row_builds(
            neighbour in proptest::collection::vec(("[a-e]{1,2}", ".{0,4}"), 0..6),
            columns in proptest::collection::vec(("[a-e]{1,2}", ".{0,4}"), 0..8),
        ) {
            let columns: Vec<(&str, &str)> = columns.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut db = Database::default();
            db.insert_row("t", "a", 1, 1, neighbour.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut expected = db.clone();
            expected.insert_row("t", "b", 7, 7, columns.iter().copied());
            db.create_row("t", "b", 7, &columns);
            prop_assert_eq!(&db, &expected);
            let (a, b) = (db.row("t", "a").unwrap(), db.row("t", "b").unwrap());
            if a.columns().map(|c| c.0).eq(b.columns().map(|c| c.0)) {
                prop_assert!(Arc::ptr_eq(a.names(), b.names()), "same columns share one list");
            }
        }
    }

    #[test]
    fn names_are_interned_once() {
        let mut db = Database::default();
        let a = db.intern("name__label");
        let b = db.intern("name__label");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
