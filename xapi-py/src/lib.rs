//! Python bindings for xapi-rs (the `xapi_sdk` extension module).
//!
//! This crate will hold the pyo3 extension built by maturin, with a XenAPI.py-compatible
//! `Session`, typed calls, backup and DR entry points. Nothing is implemented yet.
