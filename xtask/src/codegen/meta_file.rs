//! `api/meta.rs`: the datamodel as static data (`CLASSES`, `ENUMS`).

use std::fmt::Write as _;

use super::HEADER;
use super::catalog::EnumTable;
use super::model::Datamodel;
use super::types::Type;

/// The hand-written part of `meta.rs`: the types `CLASSES` and `ENUMS` are made of.
const PRELUDE: &str = include_str!("meta_prelude.rs.txt");

/// The source of `meta.rs` (unformatted).
pub(crate) fn render(model: &Datamodel, enums: &EnumTable) -> Result<String, String> {
    let mut out = String::new();
    writeln!(out, "{HEADER}").unwrap();
    out.push_str(PRELUDE);
    writeln!(
        out,
        "\n/// Every class, in datamodel order.\npub static CLASSES: &[ClassMeta] = &["
    )
    .unwrap();
    for class in &model.classes {
        writeln!(out, "ClassMeta {{ name: {:?}, fields: &[", class.name).unwrap();
        for field in &class.fields {
            let ty = Type::parse(&field.ty)
                .map_err(|err| format!("field `{}.{}`: {err}", class.name, field.name))?;
            let qualifier = match field.qualifier.as_str() {
                "RW" => "ReadWrite",
                "RO/constructor" => "ReadOnlyConstructor",
                "RO/runtime" => "ReadOnlyRuntime",
                other => {
                    return Err(format!(
                        "field `{}.{}`: unknown qualifier `{other}`",
                        class.name, field.name
                    ));
                }
            };
            let default = field
                .default
                .as_ref()
                .map_or_else(|| "None".to_owned(), |d| format!("Some({d:?})"));
            writeln!(
                out,
                "FieldMeta {{ name: {:?}, ty: {}, qualifier: Qualifier::{qualifier}, default: {default} }},",
                field.name,
                ty.meta()
            )
            .unwrap();
        }
        writeln!(out, "], messages: &[").unwrap();
        for message in class.messages.iter().filter(|m| !m.lifecycle.is_removed()) {
            let place = |err: String| format!("message `{}.{}`: {err}", class.name, message.name);
            let result = Type::parse(message.result.first().map_or("void", String::as_str))
                .map_err(place)?;
            let mut params = String::new();
            for param in &message.params {
                let ty = Type::parse(&param.ty).map_err(place)?;
                write!(
                    params,
                    "ParamMeta {{ name: {:?}, ty: {}, required: {} }}, ",
                    param.name,
                    ty.meta(),
                    param.required
                )
                .unwrap();
            }
            writeln!(
                out,
                "MessageMeta {{ name: {:?}, params: &[{params}], result: {}, is_async: {}, implicit: {} }},",
                message.name,
                result.meta(),
                message.is_async,
                message.implicit
            )
            .unwrap();
        }
        writeln!(out, "] }},").unwrap();
    }
    writeln!(out, "];\n").unwrap();
    writeln!(
        out,
        "/// Every enum, sorted by name.\npub static ENUMS: &[EnumMeta] = &["
    )
    .unwrap();
    for (name, values) in &enums.0 {
        let values: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        writeln!(
            out,
            "EnumMeta {{ name: {name:?}, values: &[{}] }},",
            values.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    Ok(out)
}
