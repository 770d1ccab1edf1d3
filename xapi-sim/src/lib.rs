//! A XAPI pool simulator on loopback.
//!
//! This crate will hold an HTTP server that speaks XML-RPC and JSON-RPC like real xapi, an object
//! model of one or more pools, sparse-file storage, the HTTP data plane and switchable faults. It
//! is the peer of every integration test. Nothing is implemented yet.
