//! The DR metadata VDI and the pool database it carries, read and written without I/O of its
//! own: every function works over bytes, `Read`, `Write` or `Seek`.
//!
//! - [`redo_log`]: the VDI's layout (header, two halves, database and delta records), the
//!   reader with xapi's replay rule, and a writer that behaves like xapi's.
//! - [`db_xml`]: the XML database dump, read streaming and written byte for byte.
//! - [`delta`]: the `CreateRow` / `DeleteRow` / `WriteField` records.
//! - [`Database`]: tables of rows keeping every stored string, with typed [`views`].
//! - [`load()`]: any source (redo-log image, XML dump, gzipped `state.db`) to a [`Database`]
//!   ready for recovery decisions.
//! - [`inspect()`]: an offline summary of an image or dump for people and reports;
//!   [`summarise`] makes the same summary from [`PoolViews`], which API records build too.
//!
//! ```
//! use xapi_dr::metadata::{read_db_xml, db_xml_bytes, Database, Manifest};
//!
//! let mut db = Database::new(Manifest { generation: 42, ..Manifest::default() });
//! db.insert_row("VM", "OpaqueRef:1", 1, 42, [("name__label", "web 01"), ("uuid", "u-1")]);
//! let xml = db_xml_bytes(&db);
//! assert!(std::str::from_utf8(&xml).unwrap().contains("name__label=\"web%.01\""));
//! assert_eq!(read_db_xml(&xml[..]).unwrap(), db);
//! ```

pub mod database;
pub mod db_xml;
pub mod delta;
pub mod diagnostic;
pub mod escape;
pub mod inspect;
pub mod load;
pub mod redo_log;
pub mod relations;
pub mod sexpr;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod views;

pub use database::{Database, Manifest, Row, Table};
pub use db_xml::{DbXmlError, db_xml_bytes, read_db_xml, write_db_xml};
pub use delta::{ApplyError, Delta, DeltaError};
pub use diagnostic::Diagnostic;
pub use inspect::{
    DiskSummary, InspectReport, NetworkSummary, PoolViews, VappSummary, VifSummary, VmSummary,
    inspect, inspect_bytes, summarise,
};
pub use load::{LoadedDatabase, Source, load, load_reader};
pub use redo_log::{
    GenerationScan, RedoLogError, RedoLogGeneration, RedoLogImage, RedoLogWriter,
    read_generation_stream, read_redo_log, read_redo_log_stream,
};
pub use sexpr::SExprError;
pub use views::ViewError;
