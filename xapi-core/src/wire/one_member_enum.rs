//! The serde enum access shared by the XML-RPC and JSON-RPC decoders for an enum variant with
//! data, written as a struct or object of one member `{variant: value}`.
//!
//! Each decoder has its own access type with a `de` field (its deserializer), a `variant` field
//! (the member name) and a `finish` method that closes the member and the container; this macro
//! writes the two serde impls around them, so both decoders read the variant the same way.

/// Implements `EnumAccess` and `VariantAccess` for `$access`: the variant is the member name
/// read as untyped text, the value is read from `de`, then `finish` must succeed.
macro_rules! one_member_enum_access {
    ($access:ident) => {
        impl<'de> serde::de::EnumAccess<'de> for $access<'_, 'de> {
            type Error = DecodeError;
            type Variant = Self;

            fn variant_seed<V: serde::de::DeserializeSeed<'de>>(
                self,
                seed: V,
            ) -> Result<(V::Value, Self), DecodeError> {
                let variant = seed.deserialize(TextDeserializer::untyped(self.variant.clone()))?;
                Ok((variant, self))
            }
        }

        impl<'de> serde::de::VariantAccess<'de> for $access<'_, 'de> {
            type Error = DecodeError;

            fn unit_variant(self) -> Result<(), DecodeError> {
                <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut *self.de)?;
                self.finish()
            }

            fn newtype_variant_seed<T: serde::de::DeserializeSeed<'de>>(
                self,
                seed: T,
            ) -> Result<T::Value, DecodeError> {
                let value = seed.deserialize(&mut *self.de)?;
                self.finish()?;
                Ok(value)
            }

            fn tuple_variant<V: serde::de::Visitor<'de>>(
                self,
                _len: usize,
                visitor: V,
            ) -> Result<V::Value, DecodeError> {
                let value = serde::de::Deserializer::deserialize_seq(&mut *self.de, visitor)?;
                self.finish()?;
                Ok(value)
            }

            fn struct_variant<V: serde::de::Visitor<'de>>(
                self,
                _fields: &'static [&'static str],
                visitor: V,
            ) -> Result<V::Value, DecodeError> {
                let value = serde::de::Deserializer::deserialize_map(&mut *self.de, visitor)?;
                self.finish()?;
                Ok(value)
            }
        }
    };
}

pub(super) use one_member_enum_access;
