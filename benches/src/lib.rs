//! Benchmarks and side-by-side comparisons for xapi-rs.
//!
//! Every input is generated deterministically at run time (nothing large is committed):
//!
//! - [`rng`]: the seeded generator behind every input;
//! - [`disk_image`]: synthetic disks and their XVA, VHD, raw-tar and chunked encodings, written
//!   by the project's own writers;
//! - [`drain`]: reading a whole stream with each format reader;
//! - [`api_records`]: realistic records of any class, generated from the datamodel;
//! - [`pool_metadata`]: pool database dumps and redo logs with many deltas;
//! - [`typed_decode`]: the typed `get_all_records` decode the comparisons time.
//!
//! The criterion benchmarks live in `benches/`; `cargo xtask bench-compare` runs the
//! `xapi-bench-compare` binary and `compare.py` side by side (see `README.md`).
//!
//! ```
//! use xapi_backup::format::xva::ChecksumKind;
//! use xapi_benches::disk_image::{generate_disk, xva_bytes};
//!
//! let disk = generate_disk(2, 1);
//! let xva = xva_bytes(&disk, ChecksumKind::Xxhash);
//! assert!(xva.len() > disk.len() / 2);
//! ```

pub mod api_records;
pub mod disk_image;
pub mod drain;
pub mod pool_metadata;
pub mod rng;
pub mod typed_decode;
