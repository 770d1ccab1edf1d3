//! One module per class: marker, record (with defaults), call handle.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::HEADER;
use super::catalog::EnumTable;
use super::defaults::default_expr;
use super::model::{Class, Field, Message};
use super::names::{ClassNames, snake_ident, unraw};
use super::types::Type;

/// Lints that generated class modules cannot satisfy.
const ALLOWS: &str = "#![allow(
    deprecated,
    clippy::derivable_impls,
    clippy::fn_params_excessive_bools,
    clippy::implicit_hasher,
    clippy::struct_field_names,
    clippy::too_many_arguments,
    clippy::trivially_copy_pass_by_ref,
    clippy::unreadable_literal
)]";

/// Fields that hold secrets (upstream types them `SecretString`, which the JSON datamodel prints
/// as `string`): their records get a `Debug` that redacts them.
const SECRET_FIELDS: &[(&str, &str)] = &[("secret", "value"), ("Cluster", "cluster_token")];

fn is_secret(class: &str, field: &str) -> bool {
    SECRET_FIELDS.contains(&(class, field))
}

/// Fields whose text embeds a live session reference (`VDI_nbd_server_info.exportname` is
/// `/<vdi-uuid>?session_id=OpaqueRef:...`): their records' `Debug` shows the text with the
/// session reference hidden.
const SESSION_BEARING_FIELDS: &[(&str, &str)] = &[("vdi_nbd_server_info", "exportname")];

fn bears_session(class: &str, field: &str) -> bool {
    SESSION_BEARING_FIELDS.contains(&(class, field))
}

/// String maps that may carry credentials (storage passwords, directory credentials): their
/// records' `Debug` hides the values of password-like keys.
const CREDENTIAL_MAPS: &[(&str, &str)] = &[
    ("PBD", "device_config"),
    ("host", "external_auth_configuration"),
];

fn is_credential_map(class: &str, field: &str) -> bool {
    CREDENTIAL_MAPS.contains(&(class, field))
}

/// Tuples serialize as sequences up to this many elements; longer parameter lists are built as
/// a `Vec<Value>`.
const MAX_TUPLE: usize = 16;

/// The two generated modules of a class: its types for `api/` and, when it has messages that
/// take a session, its call handle for `client/calls/` (both unformatted).
pub(crate) struct ClassSources {
    /// `api/<class>.rs`: marker, record (and `EventBatch` for `event`); no IO.
    pub(crate) types: String,
    /// `client/calls/<class>.rs`: the `*Api` call handle.
    pub(crate) calls: Option<String>,
}

/// The sources of the modules for `class`.
pub(crate) fn render(class: &Class, enums: &EnumTable) -> Result<ClassSources, String> {
    Ok(ClassSources {
        types: render_types(class, enums)?,
        calls: if has_api(class) {
            Some(render_calls(class)?)
        } else {
            None
        },
    })
}

/// `api/<class>.rs`: marker and record.
fn render_types(class: &Class, enums: &EnumTable) -> Result<String, String> {
    let names = ClassNames::of(&class.name);
    let mut uses = BTreeSet::new();
    let mut body = String::new();

    render_marker(&mut body, class, &names);
    render_record(&mut body, class, &names, enums, &mut uses)?;
    if class.name == "event" {
        render_event_batch(&mut body, &mut uses);
    }

    // Items this module defines itself are not imported.
    let mut local = vec![&names.marker, &names.record];
    let event_batch = "EventBatch".to_owned();
    if class.name == "event" {
        local.push(&event_batch);
    }
    let local: BTreeSet<String> = local.iter().map(|n| format!("super::{n}")).collect();

    let mut out = String::new();
    writeln!(out, "{HEADER}").unwrap();
    render_module_doc(&mut out, class, &names);
    writeln!(out, "{ALLOWS}\n").unwrap();
    uses.insert("serde::Deserialize".to_owned());
    uses.insert("serde::Serialize".to_owned());
    let imports: Vec<&String> = uses.difference(&local).collect();
    render_imports(&mut out, &imports);
    out.push_str(&body);
    Ok(out)
}

/// `client/calls/<class>.rs`: the call handle, with the datamodel's types from `crate::api`.
fn render_calls(class: &Class) -> Result<String, String> {
    let names = ClassNames::of(&class.name);
    let mut uses = BTreeSet::new();
    let mut body = String::new();
    render_api(&mut body, class, &names, &mut uses)?;

    let mut out = String::new();
    writeln!(out, "{HEADER}").unwrap();
    writeln!(
        out,
        "//! The calls of class `{}`: [`{}`], from [`SessionHandle::{}`](crate::client::SessionHandle::{}).\n//!\n\
         //! Its marker and record are [`crate::api::{}`] and [`crate::api::{}`].\n",
        class.name, names.api, names.module, names.module, names.marker, names.record
    )
    .unwrap();
    writeln!(out, "{ALLOWS}\n").unwrap();
    uses.insert("crate::Error".to_owned());
    if class
        .messages
        .iter()
        .any(|m| m.is_async && !m.lifecycle.is_removed() && takes_session(m))
    {
        uses.insert("crate::client::TaskHandle".to_owned());
    }
    // The types come from the datamodel's modules, not from this one.
    let uses: BTreeSet<String> = uses
        .into_iter()
        .map(|path| match path.strip_prefix("super::") {
            Some(item) => format!("crate::api::{item}"),
            None => path,
        })
        .collect();
    let imports: Vec<&String> = uses.iter().collect();
    render_imports(&mut out, &imports);
    out.push_str(&body);
    Ok(out)
}

/// `use` lines grouped as rustfmt and readers expect: std, external crates, `crate::`,
/// `super::`; one braced list per module.
fn render_imports(out: &mut String, paths: &[&String]) {
    let mut by_module: std::collections::BTreeMap<&str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for path in paths {
        let (module, item) = path.rsplit_once("::").expect("import paths contain `::`");
        by_module.entry(module).or_default().push(item);
    }
    let group = |module: &str| {
        if module.starts_with("std") {
            0
        } else if module.starts_with("crate") {
            2
        } else if module.starts_with("super") {
            3
        } else {
            1
        }
    };
    let mut modules: Vec<(&str, Vec<&str>)> = by_module.into_iter().collect();
    modules.sort_by_key(|(module, _)| (group(module), *module));
    let mut last_group = None;
    for (module, items) in modules {
        if last_group.is_some_and(|g| g != group(module)) {
            out.push('\n');
        }
        last_group = Some(group(module));
        if let [item] = items.as_slice() {
            writeln!(out, "use {module}::{item};").unwrap();
        } else {
            writeln!(out, "use {module}::{{{}}};", items.join(", ")).unwrap();
        }
    }
    out.push('\n');
}

fn render_module_doc(out: &mut String, class: &Class, names: &ClassNames) {
    let live = class
        .messages
        .iter()
        .filter(|m| !m.lifecycle.is_removed())
        .count();
    let removed = class.messages.len() - live;
    writeln!(
        out,
        "//! The `{}` class: marker [`{}`], record [`{}`]{}.",
        class.name,
        names.marker,
        names.record,
        if has_api(class) {
            format!(
                "; calls [`{}`](crate::client::calls::{}) with the `client` feature",
                names.api, names.api
            )
        } else {
            " (no messages: records only)".to_owned()
        }
    )
    .unwrap();
    writeln!(out, "//!").unwrap();
    writeln!(
        out,
        "//! Lifecycle: {}. {} fields, {live} messages{}.",
        class.lifecycle.describe(),
        class.fields.len(),
        if removed == 0 {
            String::new()
        } else {
            format!(" ({removed} removed messages left out)")
        }
    )
    .unwrap();
    writeln!(out, "//!").unwrap();
    writeln!(
        out,
        "//! Upstream reference: <https://xapi-project.github.io/new-docs/xen-api/classes/{}/>",
        class.name.to_ascii_lowercase()
    )
    .unwrap();
    out.push('\n');
}

fn render_marker(out: &mut String, class: &Class, names: &ClassNames) {
    writeln!(
        out,
        "/// Marker for the `{}` class: the `T` of [`Ref<{}>`](crate::wire::Ref).",
        class.name, names.marker
    )
    .unwrap();
    writeln!(
        out,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub struct {};\n",
        names.marker
    )
    .unwrap();
}

fn qualifier_text(qualifier: &str) -> &'static str {
    match qualifier {
        "RW" => "read/write",
        "RO/constructor" => "read-only, given at creation",
        _ => "read-only, maintained by the server",
    }
}

fn field_doc(field: &Field) -> String {
    let mut doc = format!(
        "/// `{}`: `{}`, {}; {}.",
        field.name,
        field.ty,
        qualifier_text(&field.qualifier),
        field.lifecycle.describe()
    );
    if let Some(default) = &field.default {
        write!(doc, " Default `{default}`.").unwrap();
    }
    doc
}

fn render_record(
    out: &mut String,
    class: &Class,
    names: &ClassNames,
    enums: &EnumTable,
    uses: &mut BTreeSet<String>,
) -> Result<(), String> {
    let has_secret = class.fields.iter().any(|f| {
        is_secret(&class.name, &f.name)
            || is_credential_map(&class.name, &f.name)
            || bears_session(&class.name, &f.name)
    });
    writeln!(
        out,
        "/// A record of class `{}`. Missing fields take their datamodel default (or the zero of \
         their type); unknown fields are ignored.{}",
        class.name,
        if has_secret {
            " `Debug` redacts secrets, credential values and session references."
        } else {
            ""
        }
    )
    .unwrap();
    // `event`'s snapshot is a record of any class: the record is generic over it, so that a
    // subscription decodes snapshots straight into the record type it watches.
    let generic_snapshot = class.name == "event";
    if generic_snapshot {
        uses.insert("crate::wire::Value".to_owned());
        out.push_str(
            "///\n/// `S` is the type of the snapshot: [`Value`] by default, or the record type \
             of the class watched (`EventRecord<VmRecord>`).\n",
        );
    }
    writeln!(
        out,
        "#[derive({}Clone, PartialEq, Serialize, Deserialize)]\n#[serde(default)]\npub struct {}{} {{",
        if has_secret { "" } else { "Debug, " },
        names.record,
        if generic_snapshot { "<S = Value>" } else { "" }
    )
    .unwrap();
    let mut defaults = String::new();
    let mut debug_fields = String::new();
    for field in &class.fields {
        let place = || format!("field `{}.{}`", class.name, field.name);
        let ty = Type::parse(&field.ty).map_err(|err| format!("{}: {err}", place()))?;
        let ident = snake_ident(&field.name);
        writeln!(out, "{}", field_doc(field)).unwrap();
        if unraw(&ident) != field.name {
            writeln!(out, "#[serde(rename = {:?})]", field.name).unwrap();
        }
        let value = if generic_snapshot && matches!(ty, Type::AnyRecord) {
            writeln!(out, "pub {ident}: Option<S>,").unwrap();
            "None".to_owned()
        } else {
            writeln!(out, "pub {ident}: {},", ty.owned(uses)).unwrap();
            default_expr(&ty, field.default.as_deref(), enums, uses)
                .map_err(|err| format!("{}: {err}", place()))?
        };
        writeln!(defaults, "{ident}: {value},").unwrap();
        if is_secret(&class.name, &field.name) {
            writeln!(debug_fields, ".field({:?}, &\"<redacted>\")", unraw(&ident)).unwrap();
        } else if bears_session(&class.name, &field.name) {
            writeln!(
                debug_fields,
                ".field({:?}, &crate::redact::RedactSessionRef(&self.{ident}))",
                unraw(&ident)
            )
            .unwrap();
        } else if is_credential_map(&class.name, &field.name) {
            writeln!(
                debug_fields,
                ".field({:?}, &crate::redact::RedactCredentials(&self.{ident}))",
                unraw(&ident)
            )
            .unwrap();
        } else {
            writeln!(debug_fields, ".field({:?}, &self.{ident})", unraw(&ident)).unwrap();
        }
    }
    writeln!(out, "}}\n").unwrap();
    writeln!(
        out,
        "impl{generics} Default for {}{generics} {{\n/// Every field at its datamodel default.\nfn default() -> Self {{\nSelf {{\n{defaults}}}\n}}\n}}\n",
        names.record,
        generics = if generic_snapshot { "<S>" } else { "" }
    )
    .unwrap();
    if has_secret {
        writeln!(
            out,
            "impl std::fmt::Debug for {0} {{\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\nf.debug_struct({0:?})\n{debug_fields}.finish()\n}}\n}}\n",
            names.record
        )
        .unwrap();
    }
    Ok(())
}

fn render_event_batch(out: &mut String, uses: &mut BTreeSet<String>) {
    uses.insert("std::collections::BTreeMap".to_owned());
    out.push_str(
        "/// The result of `event.from`: the events since the token, the number of valid \
         references per class, and the token for the next call.\n\
         ///\n\
         /// `S` is the type of the events' snapshots, as in [`EventRecord`].\n\
         #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\n\
         #[serde(default)]\n\
         pub struct EventBatch<S = Value> {\n\
         /// `events`: the events, oldest first.\n\
         pub events: Vec<EventRecord<S>>,\n\
         /// `valid_ref_counts`: for each class asked for, how many objects exist.\n\
         pub valid_ref_counts: BTreeMap<String, i64>,\n\
         /// `token`: pass it to the next `event.from`.\n\
         pub token: String,\n\
         }\n\n\
         impl<S> Default for EventBatch<S> {\n\
         /// No events, no counts, the empty token.\n\
         fn default() -> Self {\n\
         Self { events: Vec::new(), valid_ref_counts: BTreeMap::new(), token: String::new() }\n\
         }\n\
         }\n\n",
    );
}

fn render_api(
    out: &mut String,
    class: &Class,
    names: &ClassNames,
    uses: &mut BTreeSet<String>,
) -> Result<(), String> {
    let sessionless: Vec<&str> = class
        .messages
        .iter()
        .filter(|m| !m.lifecycle.is_removed() && !takes_session(m))
        .map(|m| m.name.as_str())
        .collect();
    writeln!(
        out,
        "/// The messages of class `{}`, called through a session: [`SessionHandle::{}`](crate::client::SessionHandle::{}).",
        class.name,
        names.module,
        names.module
    )
    .unwrap();
    if !sessionless.is_empty() {
        writeln!(
            out,
            "///\n/// Not here because they take no session: {} (the client logs in by itself).",
            sessionless
                .iter()
                .map(|m| format!("`{}.{m}`", class.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .unwrap();
    }
    writeln!(
        out,
        "#[derive(Clone, Copy)]\npub struct {}<'a> {{\nsession: &'a crate::client::SessionHandle,\n}}\n",
        names.api
    )
    .unwrap();
    writeln!(
        out,
        "impl crate::client::SessionHandle {{\n/// The messages of class `{}`.\npub fn {}(&self) -> {}<'_> {{\n{} {{ session: self }}\n}}\n}}\n",
        class.name, names.module, names.api, names.api
    )
    .unwrap();
    writeln!(out, "impl {}<'_> {{", names.api).unwrap();
    for message in &class.messages {
        if message.lifecycle.is_removed() || !takes_session(message) {
            continue;
        }
        render_message(out, class, message, uses)?;
    }
    writeln!(out, "}}").unwrap();
    Ok(())
}

/// Whether the class gets a call handle: it has a live message that takes a session (classes
/// such as `sr_stat` exist only as records).
pub(crate) fn has_api(class: &Class) -> bool {
    class
        .messages
        .iter()
        .any(|m| !m.lifecycle.is_removed() && takes_session(m))
}

fn takes_session(message: &Message) -> bool {
    message
        .params
        .first()
        .is_some_and(|p| p.name == "session_id" && p.ty == "session ref")
}

fn render_message(
    out: &mut String,
    class: &Class,
    message: &Message,
    uses: &mut BTreeSet<String>,
) -> Result<(), String> {
    let wire = format!("{}.{}", class.name, message.name);
    let place = |err: String| format!("message `{wire}`: {err}");
    let result_text = message.result.first().map_or("void", String::as_str);
    let result = Type::parse(result_text).map_err(place)?.owned(uses);
    let method = snake_ident(&message.name);
    let twin = snake_ident(&format!("{}_async", message.name));
    // Rustdoc cannot link to raw identifiers (`r#move`): name them without a link.
    let link = |ident: &str| {
        if ident.starts_with("r#") {
            format!("`{}`", unraw(ident))
        } else {
            format!("[`Self::{ident}`]")
        }
    };

    let mut signature = Vec::new();
    let mut args = Vec::new();
    let mut param_docs = Vec::new();
    for param in message.params.iter().skip(1) {
        let ty = Type::parse(&param.ty).map_err(place)?;
        let ident = snake_ident(&param.name);
        signature.push(format!("{ident}: {}", ty.param(uses)));
        args.push(ident);
        param_docs.push(format!("`{}` (`{}`)", param.name, param.ty));
    }
    let params_expr = match args.len() {
        0 => "[(); 0]".to_owned(),
        1 => format!("({},)", args[0]),
        n if n <= MAX_TUPLE => format!("({})", args.join(", ")),
        _ => {
            uses.insert("crate::wire::Value".to_owned());
            let values: Vec<String> = args
                .iter()
                .map(|a| format!("crate::wire::to_value(&{a})?"))
                .collect();
            format!(
                "{{ let params: Vec<Value> = vec![{}]; params }}",
                values.join(", ")
            )
        }
    };

    let mut doc = format!("/// `{wire}`");
    if param_docs.is_empty() {
        doc.push_str(": no parameters");
    } else {
        write!(doc, ": parameters {}", param_docs.join(", ")).unwrap();
    }
    write!(doc, "; result `{result_text}`.\n///\n").unwrap();
    write!(
        doc,
        "/// {} message; {}.",
        if message.implicit {
            "Implicit"
        } else {
            "Custom"
        },
        message.lifecycle.describe()
    )
    .unwrap();
    if !message.roles.is_empty() {
        write!(doc, " Roles: {}.", message.roles.join(", ")).unwrap();
    }
    if !message.errors.is_empty() {
        let errors: Vec<String> = message
            .errors
            .iter()
            .map(|e| format!("`{}`", e.name))
            .collect();
        write!(doc, "\n///\n/// Declared errors: {}.", errors.join(", ")).unwrap();
    }
    let deprecated = message.lifecycle.is_deprecated().then(|| {
        match message.lifecycle.release_of("deprecated") {
            Some(release) => {
                format!("#[deprecated(note = \"deprecated in XAPI release {release}\")]\n")
            }
            None => "#[deprecated]\n".to_owned(),
        }
    });
    let deprecated = deprecated.unwrap_or_default();
    let signature = signature
        .iter()
        .map(|s| format!(", {s}"))
        .collect::<Vec<_>>()
        .concat();

    if message.is_async {
        write!(doc, "\n///\n/// Also runs as a task: {}.", link(&twin)).unwrap();
    }
    writeln!(
        out,
        "{doc}\n{deprecated}pub async fn {method}(&self{signature}) -> Result<{result}, Error> {{\nself.session.call({wire:?}, {params_expr}).await\n}}\n"
    )
    .unwrap();
    if message.is_async {
        writeln!(
            out,
            "/// `Async.{wire}`: starts {} as a task; the handle resolves to its \
             result (`{result_text}`).\n{deprecated}pub async fn {twin}(&self{signature}) -> Result<TaskHandle<{result}>, Error> {{\nself.session.call_async({wire:?}, {params_expr}).await\n}}\n",
            link(&method)
        )
        .unwrap();
    }
    Ok(())
}
