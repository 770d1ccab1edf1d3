//! The datamodel the emitters work from, as read from upstream's `datamodel.json` and
//! `errors.json` (serde structs) or from the normalized input, and its counts.

use std::fs;
use std::path::Path;

use serde::Deserialize;

/// One class of the datamodel.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Class {
    pub(crate) name: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) messages: Vec<Message>,
    pub(crate) enums: Vec<EnumDef>,
    pub(crate) lifecycle: Lifecycle,
}

/// One field of a class.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Field {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) qualifier: String,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) default: Option<String>,
}

/// One message of a class.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Message {
    pub(crate) name: String,
    pub(crate) result: Vec<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) errors: Vec<ErrorRef>,
    pub(crate) roles: Vec<String>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) implicit: bool,
    #[serde(rename = "async")]
    pub(crate) is_async: bool,
}

/// One parameter of a message.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Param {
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) name: String,
    /// `false` for parameters added in a later release, which servers fill with a default.
    #[serde(default = "required_by_default")]
    pub(crate) required: bool,
}

/// Parameters without a `required` flag are required.
fn required_by_default() -> bool {
    true
}

/// An error a message declares it may raise.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct ErrorRef {
    pub(crate) name: String,
}

/// An enum, as listed in a class.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct EnumDef {
    pub(crate) name: String,
    pub(crate) values: Vec<EnumValue>,
}

/// One value of an enum.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct EnumValue {
    pub(crate) name: String,
}

/// The lifecycle of a class, field or message.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Lifecycle {
    pub(crate) state: String,
    pub(crate) transitions: Vec<Transition>,
}

/// One lifecycle step.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Transition {
    pub(crate) transition: String,
    pub(crate) release: String,
}

impl Lifecycle {
    /// Whether the item is gone from the API (`Removed_s`).
    pub(crate) fn is_removed(&self) -> bool {
        self.state == "Removed_s"
    }

    /// Whether the item is deprecated (`Deprecated_s`).
    pub(crate) fn is_deprecated(&self) -> bool {
        self.state == "Deprecated_s"
    }

    /// The release of the first transition named `transition`.
    pub(crate) fn release_of(&self, transition: &str) -> Option<&str> {
        self.transitions
            .iter()
            .find(|t| t.transition == transition)
            .map(|t| t.release.as_str())
    }

    /// The lifecycle as a short sentence: `published in rio, changed in 1.257.0`.
    pub(crate) fn describe(&self) -> String {
        if self.transitions.is_empty() {
            return format!("lifecycle state `{}`", self.state);
        }
        self.transitions
            .iter()
            .map(|t| format!("{} in {}", t.transition, t.release))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One entry of `errors.json`.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct ErrorDef {
    pub(crate) code: String,
    pub(crate) params: Vec<String>,
    pub(crate) declared: bool,
}

/// The datamodel: every class in datamodel order, and every error code.
#[derive(Debug, PartialEq)]
pub(crate) struct Datamodel {
    pub(crate) classes: Vec<Class>,
    pub(crate) errors: Vec<ErrorDef>,
}

impl Datamodel {
    /// Read upstream's `datamodel.json` and `errors.json` from `dir` (the input of
    /// `cargo xtask codegen --refresh-input`; the generator itself reads the normalized copy).
    pub(crate) fn load_upstream(dir: &Path) -> Result<Self, String> {
        let classes = read_json(&dir.join("datamodel.json"))?;
        let errors = read_json(&dir.join("errors.json"))?;
        Ok(Self { classes, errors })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text =
        fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| {
        format!(
            "{}: line {}, column {}: {err}",
            path.display(),
            err.line(),
            err.column()
        )
    })
}

/// The counts SOURCE.md states for the input, as the generator sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) classes: usize,
    pub(crate) fields: usize,
    pub(crate) messages: usize,
    pub(crate) async_messages: usize,
    pub(crate) enums: usize,
    pub(crate) error_codes: usize,
}

impl Counts {
    /// Count the input (every class, field and message, removed ones included; enums by
    /// distinct name).
    pub(crate) fn of(model: &Datamodel) -> Self {
        let mut enum_names: Vec<&str> = model
            .classes
            .iter()
            .flat_map(|c| c.enums.iter().map(|e| e.name.as_str()))
            .collect();
        enum_names.sort_unstable();
        enum_names.dedup();
        Self {
            classes: model.classes.len(),
            fields: model.classes.iter().map(|c| c.fields.len()).sum(),
            messages: model.classes.iter().map(|c| c.messages.len()).sum(),
            async_messages: model
                .classes
                .iter()
                .flat_map(|c| &c.messages)
                .filter(|m| m.is_async)
                .count(),
            enums: enum_names.len(),
            error_codes: model.errors.len(),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "classes {}, fields {}, messages {}, async messages {}, enums {}, error codes {}",
            self.classes,
            self.fields,
            self.messages,
            self.async_messages,
            self.enums,
            self.error_codes
        )
    }
}
