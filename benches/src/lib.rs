//! Benchmarks and side-by-side comparisons for xapi-rs.
//!
//! This crate will hold deterministic input generators and criterion benchmarks of the wire
//! codecs and the formats, plus the comparison against Python's reference decoders. Nothing is
//! implemented yet.
