//! The serde bridge between typed values and [`Value`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DecodeError, EncodeError, Value};

/// Serialize any serde value into a [`Value`].
pub fn to_value<T: Serialize + ?Sized>(_value: &T) -> Result<Value, EncodeError> {
    todo!("wire: to_value")
}

/// Deserialize a typed value from a [`Value`].
pub fn from_value<T: DeserializeOwned>(_value: Value) -> Result<T, DecodeError> {
    todo!("wire: from_value")
}
