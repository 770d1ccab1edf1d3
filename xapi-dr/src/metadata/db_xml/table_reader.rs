//! The table being read: its rows, and the column names its rows share.
//!
//! xapi writes rows in byte order of reference, so they are collected in a vector, a duplicate
//! being the same reference as the previous row's, and the table is built in one go at the
//! end. A dump with rows out of order (hand-edited, or a table listed twice) falls back to
//! inserting into the map row by row.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use super::DbXmlError;
use super::row_buffer::RowBuffer;
use super::row_scan;
use crate::metadata::database::{ColumnNames, Database, Row, Table};

/// Rows read so far.
enum Rows {
    /// In strictly increasing order of reference.
    Sorted(Vec<(String, Row)>),
    /// In any order.
    Map(Table),
}

/// A `<table>` being read.
pub(super) struct TableReader {
    name: Arc<str>,
    rows: Rows,
    /// The column names of the last row read: most likely those of the next one.
    pub(super) columns: ColumnNames,
    /// Whether `columns` can serve as hints to the row scanner (see [`row_scan::scan_row`]).
    columns_are_plain: bool,
}

impl TableReader {
    /// Starts reading table `name`, taking over the rows it already has (a dump that lists a
    /// table twice).
    pub(super) fn start(name: &str, db: &mut Database) -> TableReader {
        let (name, table) = db.take_table(name);
        let rows = if table.is_empty() {
            Rows::Sorted(Vec::new())
        } else {
            Rows::Map(table)
        };
        TableReader {
            name,
            rows,
            columns: ColumnNames::default(),
            columns_are_plain: true,
        }
    }

    /// The column names the next row most likely has, for the row scanner.
    pub(super) fn name_hints(&self) -> &[Arc<str>] {
        if self.columns_are_plain {
            &self.columns
        } else {
            &[]
        }
    }

    /// The table's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Adds the row gathered in `row` (cleared afterwards, also on error) given its `ref`,
    /// `__ctime` and `__mtime` attributes; `offset` is the byte just after the row's tag.
    pub(super) fn complete_row(
        &mut self,
        offset: u64,
        reference: Option<Cow<'_, str>>,
        ctime: Option<Cow<'_, str>>,
        mtime: Option<Cow<'_, str>>,
        row: &mut RowBuffer,
    ) -> Result<(), DbXmlError> {
        let Some(reference) = reference else {
            row.clear();
            return Err(DbXmlError::MissingAttribute {
                offset,
                element: "row",
                attribute: "ref",
            });
        };
        let generation = |field: &str, text: Option<Cow<'_, str>>| match text {
            None => Ok(0),
            Some(text) => text.parse::<i64>().map_err(|_| DbXmlError::BadInteger {
                offset,
                table: self.name.to_string(),
                reference: reference.clone().into_owned(),
                field: field.to_owned(),
                value: text.into_owned(),
            }),
        };
        let times = generation("__ctime", ctime)
            .and_then(|ctime| Ok((ctime, generation("__mtime", mtime)?)));
        let (ctime, mtime) = match times {
            Ok(times) => times,
            Err(err) => {
                row.clear();
                return Err(err);
            }
        };
        let before = Arc::as_ptr(&self.columns);
        let row = row.finish(ctime, mtime, &mut self.columns);
        if !std::ptr::eq(before, Arc::as_ptr(&self.columns)) {
            self.columns_are_plain = self
                .columns
                .iter()
                .all(|name| row_scan::is_plain_name(name));
        }
        self.insert(reference.into_owned(), row)
            .map_err(|reference| DbXmlError::DuplicateRow {
                offset,
                table: self.name.to_string(),
                reference,
            })
    }

    /// Adds a row; gives its reference back if the table has it already.
    fn insert(&mut self, reference: String, row: Row) -> Result<(), String> {
        match &mut self.rows {
            Rows::Sorted(rows) => match rows.last() {
                Some((last, _)) if *last >= reference => {
                    if *last == reference {
                        return Err(reference);
                    }
                    let table: Table = std::mem::take(rows).into_iter().collect();
                    self.rows = Rows::Map(table);
                    self.insert(reference, row)
                }
                _ => {
                    rows.push((reference, row));
                    Ok(())
                }
            },
            Rows::Map(table) => match table.entry(reference) {
                Entry::Vacant(slot) => {
                    slot.insert(row);
                    Ok(())
                }
                Entry::Occupied(existing) => Err(existing.key().clone()),
            },
        }
    }

    /// Gives the finished table to the database.
    pub(super) fn finish(self, db: &mut Database) {
        let table = match self.rows {
            // already sorted: `collect` checks that in one pass and builds the tree bottom up
            Rows::Sorted(rows) => rows.into_iter().collect(),
            Rows::Map(table) => table,
        };
        db.put_table(self.name, table);
    }
}
