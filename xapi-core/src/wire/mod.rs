//! Sans-IO codecs: the dynamic [`Value`], XML-RPC and JSON-RPC encode/decode, the serde bridge,
//! typed references and datetimes.
//!
//! Nothing in this module does IO; the client in [`crate::client`] and the simulator use it.

pub mod datetime;
pub mod error;
pub mod failure;
mod json_de;
mod json_write;
pub mod jsonrpc;
pub mod limits;
mod number;
pub mod reference;
pub mod ser;
mod text;
pub mod value;
mod value_de;
mod xml_de;
mod xml_write;
pub mod xmlrpc;

pub use datetime::{DateTime, DateTimeParseError, Zone};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use failure::Failure;
pub use limits::Limits;
pub use reference::Ref;
pub use ser::{from_value, to_value};
pub use value::Value;
