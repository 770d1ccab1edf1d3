//! The validated view of the datamodel the emitters work from: parsed types, Rust names, the
//! enum table, and the checks that generated names never clash.

use std::collections::{BTreeMap, BTreeSet};

use super::defaults::EnumValues;
use super::model::{Class, Datamodel};
use super::names::{ClassNames, camel_case, enum_variant, snake_ident};
use super::types::Type;

/// Module names the generator uses for itself.
pub(crate) const RESERVED_MODULES: &[&str] = &["enums", "errors", "meta"];

/// Every enum by datamodel name, with its values in datamodel order.
pub(crate) struct EnumTable(pub(crate) BTreeMap<String, Vec<String>>);

impl EnumValues for EnumTable {
    fn values(&self, name: &str) -> Option<&[String]> {
        self.0.get(name).map(Vec::as_slice)
    }
}

/// Build the enum table; an enum listed in several classes must have the same values in each.
pub(crate) fn enum_table(model: &Datamodel) -> Result<EnumTable, String> {
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for class in &model.classes {
        for def in &class.enums {
            let values: Vec<String> = def.values.iter().map(|v| v.name.clone()).collect();
            if let Some(known) = table.get(&def.name) {
                if *known != values {
                    return Err(format!(
                        "enum `{}` in class `{}` has values that differ from another class's",
                        def.name, class.name
                    ));
                }
            } else {
                table.insert(def.name.clone(), values);
            }
        }
    }
    Ok(EnumTable(table))
}

/// Check that every type parses and names an existing class or enum, and that generated names
/// never clash (classes, enums, fields, methods, parameters, enum variants).
pub(crate) fn validate(model: &Datamodel, enums: &EnumTable) -> Result<(), String> {
    let class_names: BTreeSet<&str> = model.classes.iter().map(|c| c.name.as_str()).collect();
    let mut top_level: BTreeMap<String, String> = BTreeMap::new();
    let mut modules: BTreeMap<String, String> = RESERVED_MODULES
        .iter()
        .map(|m| ((*m).to_owned(), "the generator".to_owned()))
        .collect();
    let claim = |map: &mut BTreeMap<String, String>, name: String, owner: String| {
        if let Some(previous) = map.insert(name.clone(), owner.clone()) {
            return Err(format!(
                "`{name}` is generated for both {previous} and {owner}"
            ));
        }
        Ok(())
    };
    for class in &model.classes {
        let names = ClassNames::of(&class.name);
        let owner = format!("class `{}`", class.name);
        claim(&mut modules, names.module.clone(), owner.clone())?;
        for item in [&names.marker, &names.record, &names.api] {
            claim(&mut top_level, item.clone(), owner.clone())?;
        }
        validate_class(class, &class_names, enums)?;
    }
    claim(
        &mut top_level,
        "EventBatch".to_owned(),
        "the `event.from` result".to_owned(),
    )?;
    claim(&mut top_level, "ErrorCode".to_owned(), "errors".to_owned())?;
    for (name, values) in &enums.0 {
        claim(&mut top_level, camel_case(name), format!("enum `{name}`"))?;
        let mut variants = BTreeSet::new();
        for value in values {
            if !variants.insert(enum_variant(value)) {
                return Err(format!(
                    "enum `{name}`: value `{value}` clashes with another value's variant"
                ));
            }
        }
    }
    Ok(())
}

fn validate_class(
    class: &Class,
    class_names: &BTreeSet<&str>,
    enums: &EnumTable,
) -> Result<(), String> {
    let check_type = |text: &str, place: &str| -> Result<Type, String> {
        let ty = Type::parse(text).map_err(|err| format!("{place}: {err}"))?;
        let (mut classes, mut enum_names) = (Vec::new(), Vec::new());
        ty.visit_names(&mut classes, &mut enum_names);
        if let Some(missing) = classes.iter().find(|c| !class_names.contains(*c)) {
            return Err(format!("{place}: unknown class `{missing}`"));
        }
        if let Some(missing) = enum_names.iter().find(|e| !enums.0.contains_key(**e)) {
            return Err(format!("{place}: unknown enum `{missing}`"));
        }
        Ok(ty)
    };
    let mut fields = BTreeSet::new();
    for field in &class.fields {
        let place = format!("field `{}.{}`", class.name, field.name);
        check_type(&field.ty, &place)?;
        if !fields.insert(snake_ident(&field.name)) {
            return Err(format!(
                "{place}: its Rust name clashes with another field's"
            ));
        }
    }
    let mut methods = BTreeSet::new();
    for message in class.messages.iter().filter(|m| !m.lifecycle.is_removed()) {
        let place = format!("message `{}.{}`", class.name, message.name);
        let result = message
            .result
            .first()
            .ok_or_else(|| format!("{place}: no result type"))?;
        check_type(result, &place)?;
        let method = snake_ident(&message.name);
        if !methods.insert(method.clone())
            || (message.is_async
                && !methods.insert(snake_ident(&format!("{}_async", message.name))))
        {
            return Err(format!(
                "{place}: its Rust name clashes with another message's"
            ));
        }
        let mut params = BTreeSet::new();
        for param in &message.params {
            check_type(&param.ty, &format!("{place}, parameter `{}`", param.name))?;
            if !params.insert(snake_ident(&param.name)) {
                return Err(format!(
                    "{place}: parameter `{}` clashes with another parameter",
                    param.name
                ));
            }
        }
    }
    Ok(())
}
