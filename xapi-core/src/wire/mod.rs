//! Sans-IO codecs: the dynamic [`Value`], XML-RPC and JSON-RPC encode/decode, the serde bridge,
//! typed references, datetimes, and XAPI's failures with their
//! [`ErrorCode`].
//!
//! Nothing in this module does IO, and nothing here uses the layers above it (`api`, `client`);
//! the client and the simulator use it.
//!
//! - [`xmlrpc`] and [`jsonrpc`] encode calls and decode responses straight into any
//!   `T: DeserializeOwned` (no intermediate [`Value`] tree), and do the server side for the
//!   simulator. XAPI failures come back as `Ok(Err(Failure))`; bytes that are not a valid
//!   response come back as [`DecodeError`] with the byte offset where the problem is.
//! - Decoding is type-driven: XML-RPC sends ints as untyped text and every map key as a string,
//!   and JSON-RPC event records carry numbers in strings, so a string becomes an `i64`, `f64`,
//!   `bool`, enum or [`Ref`] when that is what the target type asks for. Asking for [`Value`]
//!   gives what the wire says (untyped XML-RPC text is a [`Value::String`]).
//! - [`to_value`] / [`from_value`] bridge typed values and [`Value`] with the same rules.
//! - [`xmlrpc::decode_document`] / [`xmlrpc::encode_document`]: the document mode, an
//!   [`OrderedValue`] that keeps struct members in order (an XVA's `ova.xml`).
//! - [`Limits`] bound the input size and nesting depth in every decoder.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use serde::Deserialize;
//! use xapi_core::wire::{xmlrpc, DateTime, Limits, Ref, Value};
//!
//! struct Vm;
//!
//! #[derive(Deserialize, Default)]
//! #[serde(default)]
//! struct VmRecord {
//!     name_label: String,
//!     memory_static_max: i64,
//!     snapshot_time: DateTime,
//! }
//!
//! let call = xmlrpc::encode_call("VM.get_all_records", &[Value::from("OpaqueRef:session")]);
//! assert!(call.starts_with(b"<?xml version=\"1.0\"?><methodCall>"));
//!
//! let body = br#"<methodResponse><params><param><value><struct>
//!   <member><name>Status</name><value>Success</value></member>
//!   <member><name>Value</name><value><struct>
//!     <member><name>OpaqueRef:1</name><value><struct>
//!       <member><name>name_label</name><value>web &amp; db</value></member>
//!       <member><name>memory_static_max</name><value>4294967296</value></member>
//!       <member><name>snapshot_time</name>
//!         <value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>
//!       <member><name>a_field_from_a_newer_host</name><value><array><data/></array></value></member>
//!     </struct></value></member>
//!   </struct></value></member>
//! </struct></value></param></params></methodResponse>"#;
//! let vms: HashMap<Ref<Vm>, VmRecord> =
//!     xmlrpc::decode_response(body, &Limits::default())?.expect("the call succeeded");
//! let web = &vms[&Ref::new("OpaqueRef:1")];
//! assert_eq!(web.name_label, "web & db");
//! assert_eq!(web.memory_static_max, 4_294_967_296);
//! assert_eq!(web.snapshot_time, DateTime::EPOCH);
//! # Ok::<(), xapi_core::wire::DecodeError>(())
//! ```

pub mod datetime;
mod document;
mod enum_text;
pub mod error;
mod error_code;
pub mod failure;
mod json_de;
mod json_write;
pub mod jsonrpc;
pub mod limits;
mod number;
mod one_member_enum;
pub mod reference;
pub mod ser;
pub mod small_map;
pub mod small_string;
mod text;
pub mod value;
mod value_de;
mod xml_de;
mod xml_scan;
mod xml_write;
pub mod xmlrpc;

pub use datetime::{DateTime, DateTimeParseError, Zone};
pub use document::OrderedValue;
pub(crate) use enum_text::EnumTextVisitor;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use error_code::ErrorCode;
pub use failure::Failure;
pub use limits::Limits;
pub use number::format_g;
pub use reference::Ref;
pub use ser::{from_value, to_value};
pub use small_map::SmallMap;
pub use small_string::SmallString;
pub use value::Value;
