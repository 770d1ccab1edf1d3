//! The generator's committed input (`xtask/datamodel/xapi.json`): the XAPI datamodel in the
//! project's own normalized form, written from the upstream files and read back into a
//! [`Datamodel`].
//!
//! Facts only: names, types, qualifiers, defaults, lifecycle states and releases, roles,
//! parameters, declared errors, async and implicit flags, error parameter names. No prose.
//!
//! Layout (see `xtask/datamodel/README.md`): one JSON object; classes keyed by name, enums by
//! name, errors by code (all sorted); each enum's values stored once; one field, message, enum or
//! error per line. Lists whose order is itself a fact keep the datamodel's order: the classes
//! (`class_order`), a class's fields and messages, parameters, enum values, roles, declared
//! errors and lifecycle steps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::{
    Class, Datamodel, EnumDef, EnumValue, ErrorDef, ErrorRef, Field, Lifecycle, Message, Param,
    Transition,
};

/// The value of the `format` key; bump it when the layout changes.
const FORMAT: &str = "xapi-rs normalized XAPI datamodel, version 1";

/// Upstream lifecycle states and their names here.
const STATES: &[(&str, &str)] = &[
    ("Published_s", "published"),
    ("Prototyped_s", "prototyped"),
    ("Deprecated_s", "deprecated"),
    ("Removed_s", "removed"),
];

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    class_order: Vec<String>,
    classes: BTreeMap<String, ClassEntry>,
    enums: BTreeMap<String, Vec<String>>,
    errors: BTreeMap<String, Option<Vec<String>>>,
}

/// The first line of a class (its fields and messages follow, one per line).
#[derive(Serialize)]
struct ClassHead {
    state: String,
    history: Vec<(String, String)>,
    /// Names of the enums its fields and messages use, sorted (the values are in `enums`).
    enums: Vec<String>,
}

/// A class, keyed by its name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    state: String,
    history: Vec<(String, String)>,
    enums: Vec<String>,
    fields: Vec<FieldEntry>,
    messages: Vec<MessageEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldEntry {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    qualifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    state: String,
    history: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageEntry {
    name: String,
    result: String,
    params: Vec<ParamEntry>,
    #[serde(rename = "async")]
    is_async: bool,
    implicit: bool,
    roles: Vec<String>,
    errors: Vec<String>,
    state: String,
    history: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamEntry {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    /// Written only when `false`: parameters are required unless the file says otherwise.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    required: bool,
}

fn yes() -> bool {
    true
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_true(value: &bool) -> bool {
    *value
}

fn state_name(upstream: &str) -> Result<&'static str, String> {
    STATES
        .iter()
        .find(|(from, _)| *from == upstream)
        .map(|(_, to)| *to)
        .ok_or_else(|| format!("unknown lifecycle state `{upstream}`"))
}

fn upstream_state(name: &str) -> Result<&'static str, String> {
    STATES
        .iter()
        .find(|(_, to)| *to == name)
        .map(|(from, _)| *from)
        .ok_or_else(|| format!("unknown lifecycle state `{name}`"))
}

fn history(lifecycle: &Lifecycle) -> Vec<(String, String)> {
    lifecycle
        .transitions
        .iter()
        .map(|t| (t.transition.clone(), t.release.clone()))
        .collect()
}

fn lifecycle(state: &str, history: Vec<(String, String)>) -> Result<Lifecycle, String> {
    Ok(Lifecycle {
        state: upstream_state(state)?.to_owned(),
        transitions: history
            .into_iter()
            .map(|(transition, release)| Transition {
                transition,
                release,
            })
            .collect(),
    })
}

fn line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("the normalized entries always serialize")
}

fn quoted(text: &str) -> String {
    line(&text)
}

/// Write `items` as the body of a JSON array or object, one per line, indented by `indent`.
fn push_lines(out: &mut String, indent: &str, items: &[String]) {
    for (i, item) in items.iter().enumerate() {
        let comma = if i + 1 < items.len() { "," } else { "" };
        writeln!(out, "{indent}{item}{comma}").unwrap();
    }
}

/// The normalized text of `model`.
pub(crate) fn render(model: &Datamodel) -> Result<String, String> {
    let enums = enum_values(model)?;
    let mut classes: Vec<&Class> = model.classes.iter().collect();
    classes.sort_by(|a, b| a.name.cmp(&b.name));
    if classes.windows(2).any(|w| w[0].name == w[1].name) {
        return Err("a class name appears twice".to_owned());
    }

    let mut out = String::new();
    writeln!(out, "{{\n  \"format\": {},", quoted(FORMAT)).unwrap();
    out.push_str("  \"class_order\": [\n");
    let order: Vec<String> = model.classes.iter().map(|c| quoted(&c.name)).collect();
    push_lines(&mut out, "    ", &order);
    out.push_str("  ],\n  \"classes\": {\n");
    for (i, class) in classes.iter().enumerate() {
        let place = |err: String| format!("class `{}`: {err}", class.name);
        let mut enum_names: Vec<String> = class.enums.iter().map(|e| e.name.clone()).collect();
        enum_names.sort();
        let head = ClassHead {
            state: state_name(&class.lifecycle.state)
                .map_err(place)?
                .to_owned(),
            history: history(&class.lifecycle),
            enums: enum_names,
        };
        let head = line(&head);
        let head = head
            .strip_suffix('}')
            .expect("a serialized struct ends with `}`");
        writeln!(out, "    {}: {head},", quoted(&class.name)).unwrap();
        out.push_str("      \"fields\": [\n");
        let fields = class
            .fields
            .iter()
            .map(|f| field_line(f).map_err(place))
            .collect::<Result<Vec<_>, _>>()?;
        push_lines(&mut out, "        ", &fields);
        out.push_str("      ],\n      \"messages\": [\n");
        let messages = class
            .messages
            .iter()
            .map(|m| message_line(m).map_err(place))
            .collect::<Result<Vec<_>, _>>()?;
        push_lines(&mut out, "        ", &messages);
        let comma = if i + 1 < classes.len() { "," } else { "" };
        writeln!(out, "      ]\n    }}{comma}").unwrap();
    }
    out.push_str("  },\n  \"enums\": {\n");
    let enum_lines: Vec<String> = enums
        .iter()
        .map(|(name, values)| format!("{}: {}", quoted(name), line(values)))
        .collect();
    push_lines(&mut out, "    ", &enum_lines);
    out.push_str("  },\n  \"errors\": {\n");
    let mut errors: Vec<&ErrorDef> = model.errors.iter().collect();
    errors.sort_by(|a, b| a.code.cmp(&b.code));
    let mut error_lines = Vec::new();
    for error in errors {
        let params = if error.declared {
            line(&error.params)
        } else if error.params.is_empty() {
            "null".to_owned()
        } else {
            return Err(format!(
                "error `{}` has parameters but no declaration",
                error.code
            ));
        };
        error_lines.push(format!("{}: {params}", quoted(&error.code)));
    }
    push_lines(&mut out, "    ", &error_lines);
    out.push_str("  }\n}\n");
    Ok(out)
}

/// Every enum once, by name; an enum listed in several classes must have the same values.
fn enum_values(model: &Datamodel) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for class in &model.classes {
        for def in &class.enums {
            let values: Vec<String> = def.values.iter().map(|v| v.name.clone()).collect();
            match table.get(&def.name) {
                Some(known) if *known != values => {
                    return Err(format!(
                        "enum `{}` in class `{}` has values that differ from another class's",
                        def.name, class.name
                    ));
                }
                Some(_) => {}
                None => {
                    table.insert(def.name.clone(), values);
                }
            }
        }
    }
    Ok(table)
}

fn field_line(field: &Field) -> Result<String, String> {
    Ok(line(&FieldEntry {
        name: field.name.clone(),
        ty: field.ty.clone(),
        qualifier: field.qualifier.clone(),
        default: field.default.clone(),
        state: state_name(&field.lifecycle.state)
            .map_err(|err| format!("field `{}`: {err}", field.name))?
            .to_owned(),
        history: history(&field.lifecycle),
    }))
}

fn message_line(message: &Message) -> Result<String, String> {
    let place = |err: String| format!("message `{}`: {err}", message.name);
    let result = match message.result.as_slice() {
        [result] => result.clone(),
        _ => return Err(place("the result is not one type".to_owned())),
    };
    Ok(line(&MessageEntry {
        name: message.name.clone(),
        result,
        params: message
            .params
            .iter()
            .map(|p| ParamEntry {
                name: p.name.clone(),
                ty: p.ty.clone(),
                required: p.required,
            })
            .collect(),
        is_async: message.is_async,
        implicit: message.implicit,
        roles: message.roles.clone(),
        errors: message.errors.iter().map(|e| e.name.clone()).collect(),
        state: state_name(&message.lifecycle.state)
            .map_err(place)?
            .to_owned(),
        history: history(&message.lifecycle),
    }))
}

/// Parse the normalized text back into the model the emitters use.
pub(crate) fn parse(text: &str) -> Result<Datamodel, String> {
    let file: File = serde_json::from_str(text)
        .map_err(|err| format!("line {}, column {}: {err}", err.line(), err.column()))?;
    if file.format != FORMAT {
        return Err(format!(
            "format `{}` is not `{FORMAT}`; run `cargo xtask codegen --refresh-input`",
            file.format
        ));
    }
    let mut order = file.class_order.clone();
    order.sort();
    if order.iter().ne(file.classes.keys()) {
        return Err("`class_order` and `classes` name different classes".to_owned());
    }
    let mut classes_by_name = file.classes;
    let mut classes = Vec::with_capacity(file.class_order.len());
    for name in file.class_order {
        let entry = classes_by_name
            .remove(&name)
            .ok_or_else(|| format!("class `{name}` is listed twice in `class_order`"))?;
        classes.push(class(name, entry, &file.enums)?);
    }
    let errors = file
        .errors
        .into_iter()
        .map(|(code, params)| ErrorDef {
            code,
            declared: params.is_some(),
            params: params.unwrap_or_default(),
        })
        .collect();
    Ok(Datamodel { classes, errors })
}

fn class(
    name: String,
    entry: ClassEntry,
    enums: &BTreeMap<String, Vec<String>>,
) -> Result<Class, String> {
    let place = |err: String| format!("class `{name}`: {err}");
    let enum_defs = entry
        .enums
        .iter()
        .map(|enum_name| {
            let values = enums
                .get(enum_name)
                .ok_or_else(|| place(format!("enum `{enum_name}` is not in `enums`")))?;
            Ok(EnumDef {
                name: enum_name.clone(),
                values: values
                    .iter()
                    .map(|v| EnumValue { name: v.clone() })
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let fields = entry
        .fields
        .into_iter()
        .map(|f| {
            Ok(Field {
                lifecycle: lifecycle(&f.state, f.history).map_err(place)?,
                name: f.name,
                ty: f.ty,
                qualifier: f.qualifier,
                default: f.default,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let messages = entry
        .messages
        .into_iter()
        .map(|m| {
            Ok(Message {
                lifecycle: lifecycle(&m.state, m.history).map_err(place)?,
                name: m.name,
                result: vec![m.result],
                params: m
                    .params
                    .into_iter()
                    .map(|p| Param {
                        ty: p.ty,
                        name: p.name,
                        required: p.required,
                    })
                    .collect(),
                errors: m.errors.into_iter().map(|name| ErrorRef { name }).collect(),
                roles: m.roles,
                implicit: m.implicit,
                is_async: m.is_async,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Class {
        lifecycle: lifecycle(&entry.state, entry.history).map_err(place)?,
        name,
        fields,
        messages,
        enums: enum_defs,
    })
}

/// Read and parse the normalized file at `path`.
pub(crate) fn load(path: &Path) -> Result<Datamodel, String> {
    let text =
        fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse(&text).map_err(|err| format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_model() -> Datamodel {
        let published = |release: &str| Lifecycle {
            state: "Published_s".to_owned(),
            transitions: vec![Transition {
                transition: "published".to_owned(),
                release: release.to_owned(),
            }],
        };
        let power_state = EnumDef {
            name: "vm_power_state".to_owned(),
            values: ["Halted", "Running"]
                .map(|name| EnumValue {
                    name: name.to_owned(),
                })
                .into(),
        };
        let vm = Class {
            name: "VM".to_owned(),
            fields: vec![Field {
                name: "power_state".to_owned(),
                ty: "enum vm_power_state".to_owned(),
                qualifier: "RO/runtime".to_owned(),
                lifecycle: published("rio"),
                default: Some("Halted".to_owned()),
            }],
            messages: vec![Message {
                name: "start".to_owned(),
                result: vec!["void".to_owned()],
                params: vec![
                    Param {
                        ty: "session ref".to_owned(),
                        name: "session_id".to_owned(),
                        required: true,
                    },
                    Param {
                        ty: "bool".to_owned(),
                        name: "force".to_owned(),
                        required: false,
                    },
                ],
                errors: vec![ErrorRef {
                    name: "VM_BAD_POWER_STATE".to_owned(),
                }],
                roles: vec!["pool-admin".to_owned(), "vm-operator".to_owned()],
                lifecycle: Lifecycle {
                    state: "Deprecated_s".to_owned(),
                    transitions: vec![
                        Transition {
                            transition: "published".to_owned(),
                            release: "rio".to_owned(),
                        },
                        Transition {
                            transition: "deprecated".to_owned(),
                            release: "7.0".to_owned(),
                        },
                    ],
                },
                implicit: false,
                is_async: true,
            }],
            enums: vec![power_state],
            lifecycle: published("rio"),
        };
        let session = Class {
            name: "session".to_owned(),
            fields: Vec::new(),
            messages: Vec::new(),
            enums: Vec::new(),
            lifecycle: published("rio"),
        };
        Datamodel {
            // Not in name order: the datamodel's order must survive.
            classes: vec![session, vm],
            errors: vec![
                ErrorDef {
                    code: "VM_BAD_POWER_STATE".to_owned(),
                    params: vec!["vm".to_owned(), "expected".to_owned()],
                    declared: true,
                },
                ErrorDef {
                    code: "CLIENT_ERROR".to_owned(),
                    params: Vec::new(),
                    declared: false,
                },
            ],
        }
    }

    #[test]
    fn small_model_round_trips_with_its_order() {
        let model = small_model();
        let text = render(&model).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(back.classes, model.classes);
        // Errors come back sorted by code.
        let codes: Vec<&str> = back.errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, ["CLIENT_ERROR", "VM_BAD_POWER_STATE"]);
        assert!(!back.errors[0].declared);
        assert_eq!(back.errors[1].params, ["vm", "expected"]);
        assert_eq!(render(&back).unwrap(), text, "the form is canonical");
    }

    #[test]
    fn layout_is_one_entry_per_line() {
        let text = render(&small_model()).unwrap();
        assert!(text.contains(
            "\n        {\"name\":\"power_state\",\"type\":\"enum vm_power_state\",\
             \"qualifier\":\"RO/runtime\",\"default\":\"Halted\",\"state\":\"published\",\
             \"history\":[[\"published\",\"rio\"]]}\n"
        ));
        assert!(text.contains("{\"name\":\"force\",\"type\":\"bool\",\"required\":false}"));
        assert!(text.contains("\n    \"vm_power_state\": [\"Halted\",\"Running\"]\n"));
        assert!(text.contains("\n    \"CLIENT_ERROR\": null,\n"));
        assert!(text.find("\"session\": {").unwrap() > text.find("\"VM\": {").unwrap());
    }

    #[test]
    fn unknown_keys_and_missing_enums_are_refused() {
        let text = render(&small_model()).unwrap();
        let with_prose = text.replacen(
            "\"name\":\"start\",",
            "\"name\":\"start\",\"description\":\"Start a VM\",",
            1,
        );
        assert!(parse(&with_prose).unwrap_err().contains("description"));
        let without_enum = text.replacen("\"vm_power_state\": [\"Halted\",\"Running\"]", "", 1);
        assert!(parse(&without_enum).is_err());
    }
}
