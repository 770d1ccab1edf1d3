//! `api/enums.rs`: every enum once, with an `Unknown(String)` catch-all and serde through the
//! wire string.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::HEADER;
use super::catalog::EnumTable;
use super::model::Datamodel;
use super::names::{camel_case, enum_variant};

/// The source of `enums.rs` (unformatted).
pub(crate) fn render(model: &Datamodel, enums: &EnumTable) -> String {
    // Which classes use each enum, for the docs.
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for class in &model.classes {
        for def in &class.enums {
            users.entry(&def.name).or_default().push(&class.name);
        }
    }
    let mut out = String::new();
    writeln!(out, "{HEADER}").unwrap();
    out.push_str(
        "//! Every enum of the datamodel, shared by the classes that use it.\n//!\n\
         //! Each enum has one variant per declared value plus `Unknown(String)`, which keeps any \
         value this client does not know (a newer server) and is the default of a missing field \
         (`Unknown(\"\")`). On both wire encodings an enum is its value's string.\n\n\
         use std::fmt;\n\nuse serde::{Deserialize, Deserializer, Serialize, Serializer};\n\n\
         use crate::wire::EnumTextVisitor;\n\n",
    );
    for (name, values) in &enums.0 {
        let rust = camel_case(name);
        let used_by = users
            .get(name.as_str())
            .map(|classes| {
                classes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        writeln!(
            out,
            "/// Enum `{name}` ({} values), used by {used_by}.",
            values.len()
        )
        .unwrap();
        writeln!(
            out,
            "#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum {rust} {{"
        )
        .unwrap();
        for value in values {
            writeln!(out, "/// `{value}`\n{},", enum_variant(value)).unwrap();
        }
        out.push_str(
            "/// A value this client does not know, kept as sent (`\"\"` when the field was \
             missing).\nUnknown(String),\n}\n\n",
        );
        let all: Vec<String> = values
            .iter()
            .map(|v| format!("Self::{}", enum_variant(v)))
            .collect();
        let to_wire = values
            .iter()
            .map(|v| format!("Self::{} => {v:?},\n", enum_variant(v)))
            .collect::<Vec<_>>()
            .concat();
        let from_wire = values
            .iter()
            .map(|v| format!("{v:?} => Self::{},\n", enum_variant(v)))
            .collect::<Vec<_>>()
            .concat();
        writeln!(
            out,
            "impl {rust} {{\n\
             /// Every declared value, in datamodel order.\n\
             pub const ALL: &'static [Self] = &[{all}];\n\n\
             /// The wire string.\n\
             pub fn as_str(&self) -> &str {{\nmatch self {{\n{to_wire}Self::Unknown(other) => other,\n}}\n}}\n\n\
             /// The value for a wire string; strings this client does not know become `Unknown`.\n\
             pub fn from_wire(text: &str) -> Self {{\nmatch text {{\n{from_wire}other => Self::Unknown(other.to_owned()),\n}}\n}}\n\n\
             /// Whether this is a declared value (not `Unknown`).\n\
             pub fn is_known(&self) -> bool {{\n!matches!(self, Self::Unknown(_))\n}}\n}}\n\n\
             impl fmt::Display for {rust} {{\nfn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\nf.write_str(self.as_str())\n}}\n}}\n\n\
             impl Serialize for {rust} {{\nfn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{\nserializer.serialize_str(self.as_str())\n}}\n}}\n\n\
             impl<'de> Deserialize<'de> for {rust} {{\nfn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\ndeserializer.deserialize_str(EnumTextVisitor::new({name:?}, Self::from_wire))\n}}\n}}\n",
            all = all.join(", ")
        )
        .unwrap();
    }
    out
}
