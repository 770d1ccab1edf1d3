//! The row being read: names and values gathered in buffers reused from row to row, then copied
//! into a [`Row`] of exactly the right size.
//!
//! Rows of a table nearly always have the same columns, so the table keeps the list of column
//! names of its last row ([`ColumnNames`], interned names) and the next row is compared with it
//! as it is read: while it matches, nothing is looked up nor copied, and the finished row shares
//! the list.

use std::borrow::Cow;
use std::sync::Arc;

use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attribute;
use quick_xml::name::QName;

use super::collapse_whitespace;
use crate::metadata::database::{ColumnNames, Database, Row};
use crate::metadata::escape::{unprotect, unprotect_into};

/// Column names and values of the row being read.
#[derive(Default)]
pub(super) struct RowBuffer {
    /// The names, once the row has stopped following the table's list (empty before).
    names: Vec<Arc<str>>,
    /// Whether `names` holds the names (else the first `ends.len()` of the table's list are).
    is_own_list: bool,
    /// End offset in `data` of each value.
    ends: Vec<usize>,
    /// The values, unescaped, one after the other.
    data: String,
}

impl RowBuffer {
    /// Starts a new row.
    pub(super) fn clear(&mut self) {
        self.names.clear();
        self.is_own_list = false;
        self.ends.clear();
        self.data.clear();
    }

    /// Appends a column that must sort after the previous ones (the order xapi writes), its
    /// value still `%`-protected. `is_tables_next` says the caller knows `name` is the table's
    /// column at this place (the scanner matched it). Returns `false`, leaving the buffer to
    /// be cleared, if the column does not sort after the previous one (the caller hands the
    /// row to quick-xml).
    pub(super) fn push_in_order(
        &mut self,
        name: &str,
        is_tables_next: bool,
        protected: &str,
        table_columns: &ColumnNames,
        db: &mut Database,
    ) -> bool {
        let i = self.ends.len();
        let known = table_columns
            .get(i)
            .filter(|known| is_tables_next || ***known == *name);
        debug_assert!(known.is_none_or(|known| **known == *name));
        if !self.is_own_list {
            if known.is_some() {
                self.push_value(protected);
                return true;
            }
            self.names.extend_from_slice(&table_columns[..i]);
            self.is_own_list = true;
        }
        if self.names.last().is_some_and(|last| **last >= *name) {
            return false;
        }
        let name = match known {
            Some(known) => known.clone(),
            None => db.intern(name),
        };
        self.names.push(name);
        self.push_value(protected);
        true
    }

    fn push_value(&mut self, protected: &str) {
        unprotect_into(protected, &mut self.data);
        self.ends.push(self.data.len());
    }

    /// Adds a column wherever it sorts (the order of the attributes is free in XML). Returns
    /// `false` if the row has it already.
    pub(super) fn insert(
        &mut self,
        name: Arc<str>,
        protected: &str,
        table_columns: &ColumnNames,
    ) -> bool {
        if !self.is_own_list {
            self.names
                .extend_from_slice(&table_columns[..self.ends.len()]);
            self.is_own_list = true;
        }
        let Err(i) = self.names.binary_search(&name) else {
            return false;
        };
        if i == self.names.len() {
            self.names.push(name);
            self.push_value(protected);
            return true;
        }
        let at = if i == 0 { 0 } else { self.ends[i - 1] };
        let value = unprotect(protected);
        self.data.insert_str(at, &value);
        let value_len = value.len();
        self.names.insert(i, name);
        self.ends.insert(i, at + value_len);
        for end in &mut self.ends[i + 1..] {
            *end += value_len;
        }
        true
    }

    /// The finished row, sized exactly; `table_columns` becomes this row's list of names when
    /// it differs (the next row most likely has the same columns).
    pub(super) fn finish(
        &mut self,
        ctime: i64,
        mtime: i64,
        table_columns: &mut ColumnNames,
    ) -> Row {
        let follows_table = if self.is_own_list {
            self.names.len() == table_columns.len()
                && self
                    .names
                    .iter()
                    .zip(table_columns.iter())
                    .all(|(a, b)| Arc::ptr_eq(a, b))
        } else {
            self.ends.len() == table_columns.len()
        };
        let names = if follows_table {
            table_columns.clone()
        } else {
            let names: ColumnNames = if self.is_own_list {
                Arc::from(self.names.as_slice())
            } else {
                Arc::from(&table_columns[..self.ends.len()])
            };
            *table_columns = names.clone();
            names
        };
        let row = Row::from_parts(ctime, mtime, names, self.ends.clone(), self.data.clone());
        self.clear();
        row
    }
}

/// An attribute value as the reader sees it, before xapi's `%` layer: entities and character
/// references decoded, raw TAB, LF and CR turned into spaces (XML attribute-value
/// normalisation, quick-xml's), then whitespace collapsed as Xmlm does. `None` if quick-xml
/// would reject the value (an unknown entity, a bad character reference).
///
/// `is_clean` says the caller knows the value holds none of `&`, TAB, LF, CR and space: then it
/// is returned as it is, without a look.
pub(super) fn attribute_text<'a>(
    name: &'a str,
    raw: &'a str,
    is_clean: bool,
) -> Option<Cow<'a, str>> {
    if is_clean {
        return Some(Cow::Borrowed(raw));
    }
    let attribute = Attribute {
        key: QName(name),
        value: Cow::Borrowed(raw),
    };
    let normalized = attribute.normalized_value(XmlVersion::Implicit1_0).ok()?;
    Some(match normalized {
        Cow::Borrowed(text) => collapse_whitespace(text),
        Cow::Owned(text) => {
            let collapsed = match collapse_whitespace(&text) {
                Cow::Owned(collapsed) => Some(collapsed),
                Cow::Borrowed(_) => None,
            };
            Cow::Owned(collapsed.unwrap_or(text))
        }
    })
}
