//! The datamodel type grammar (SOURCE.md, "Type strings") and its Rust rendering.

use std::collections::BTreeSet;

use super::names::camel_case;

/// A parsed datamodel type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    Int,
    Float,
    Bool,
    DateTime,
    /// `enum NAME`
    Enum(String),
    /// `CLASS ref`
    Ref(String),
    /// `CLASS record`
    Record(String),
    /// `T set`
    Set(Box<Type>),
    /// `(K -> V) map`
    Map(Box<Type>, Box<Type>),
    /// `T option`
    Option(Box<Type>),
    /// `void`
    Void,
    /// `an event batch` (result of `event.from`)
    EventBatch,
    /// `<class> record` (field `event.snapshot`)
    AnyRecord,
}

impl Type {
    /// Parse a type string; an error naming the problem when it does not fit the grammar.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "void" => return Ok(Self::Void),
            "an event batch" => return Ok(Self::EventBatch),
            "<class> record" => return Ok(Self::AnyRecord),
            _ => {}
        }
        let tokens = tokenize(text);
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
        };
        let ty = parser
            .parse_type()
            .map_err(|err| format!("type `{text}`: {err}"))?;
        if parser.pos != tokens.len() {
            return Err(format!(
                "type `{text}`: unexpected `{}` after a complete type",
                tokens[parser.pos]
            ));
        }
        Ok(ty)
    }

    /// Whether a parameter of this type is passed by value (Copy types).
    fn is_copy(&self) -> bool {
        matches!(self, Self::Int | Self::Float | Self::Bool | Self::DateTime)
    }

    /// The Rust map type for a map with values of type `value`, its path collected into `uses`.
    ///
    /// Maps of records (the results of `get_all_records` and friends: thousands of entries,
    /// looked up by reference) are `HashMap`s; every other map (`other_config`, `platform`,
    /// `current_operations`...: a handful of entries) is a `xapi_core::wire::SmallMap`, one
    /// sorted vector with `BTreeMap`'s API and order: no block when empty, one block of the
    /// entries' size otherwise (a `BTreeMap` node of string pairs is about 900 bytes).
    pub(crate) fn map_type(value: &Self, uses: &mut BTreeSet<String>) -> &'static str {
        if matches!(value, Self::Record(_)) {
            uses.insert("std::collections::HashMap".to_owned());
            "HashMap"
        } else {
            uses.insert("crate::wire::SmallMap".to_owned());
            "SmallMap"
        }
    }

    /// The owned Rust type; collects the paths it needs into `uses`.
    ///
    /// A `string` is a `xapi_core::wire::SmallString`: inline up to 38 bytes (every
    /// UUID, most names, map keys and values), so that decoding a record does not allocate one
    /// heap block per string.
    pub(crate) fn owned(&self, uses: &mut BTreeSet<String>) -> String {
        match self {
            Self::String => {
                uses.insert("crate::wire::SmallString".to_owned());
                "SmallString".to_owned()
            }
            Self::Int => "i64".to_owned(),
            Self::Float => "f64".to_owned(),
            Self::Bool => "bool".to_owned(),
            Self::DateTime => {
                uses.insert("crate::wire::DateTime".to_owned());
                "DateTime".to_owned()
            }
            Self::Enum(name) => {
                let rust = camel_case(name);
                uses.insert(format!("super::{rust}"));
                rust
            }
            Self::Ref(class) => {
                uses.insert("crate::wire::Ref".to_owned());
                let marker = camel_case(class);
                uses.insert(format!("super::{marker}"));
                format!("Ref<{marker}>")
            }
            Self::Record(class) => {
                let record = format!("{}Record", camel_case(class));
                uses.insert(format!("super::{record}"));
                record
            }
            Self::Set(item) => format!("Vec<{}>", item.owned(uses)),
            Self::Map(key, value) => {
                let map = Self::map_type(value, uses);
                format!("{map}<{}, {}>", key.owned(uses), value.owned(uses))
            }
            Self::Option(inner) => format!("Option<{}>", inner.owned(uses)),
            Self::Void => "()".to_owned(),
            Self::EventBatch => {
                uses.insert("super::EventBatch".to_owned());
                "EventBatch".to_owned()
            }
            Self::AnyRecord => {
                uses.insert("crate::wire::Value".to_owned());
                "Option<Value>".to_owned()
            }
        }
    }

    /// The Rust type of a parameter: borrowed (`&str`, `&Ref<Vm>`, `&[T]`), Copy types by value.
    pub(crate) fn param(&self, uses: &mut BTreeSet<String>) -> String {
        match self {
            _ if self.is_copy() => self.owned(uses),
            Self::String => "&str".to_owned(),
            Self::Set(item) => format!("&[{}]", item.owned(uses)),
            Self::Option(inner) => format!("Option<{}>", inner.param(uses)),
            _ => format!("&{}", self.owned(uses)),
        }
    }

    /// The `meta::Ty` expression for this type.
    pub(crate) fn meta(&self) -> String {
        match self {
            Self::String => "Ty::String".to_owned(),
            Self::Int => "Ty::Int".to_owned(),
            Self::Float => "Ty::Float".to_owned(),
            Self::Bool => "Ty::Bool".to_owned(),
            Self::DateTime => "Ty::DateTime".to_owned(),
            Self::Enum(name) => format!("Ty::Enum({name:?})"),
            Self::Ref(class) => format!("Ty::Ref({class:?})"),
            Self::Record(class) => format!("Ty::Record({class:?})"),
            Self::Set(item) => format!("Ty::Set(&{})", item.meta()),
            Self::Map(key, value) => format!("Ty::Map(&{}, &{})", key.meta(), value.meta()),
            Self::Option(inner) => format!("Ty::Option(&{})", inner.meta()),
            Self::Void => "Ty::Void".to_owned(),
            Self::EventBatch => "Ty::EventBatch".to_owned(),
            Self::AnyRecord => "Ty::AnyRecord".to_owned(),
        }
    }

    /// Every class name and enum name the type mentions.
    pub(crate) fn visit_names<'a>(&'a self, classes: &mut Vec<&'a str>, enums: &mut Vec<&'a str>) {
        match self {
            Self::Enum(name) => enums.push(name),
            Self::Ref(class) | Self::Record(class) => classes.push(class),
            Self::Set(inner) | Self::Option(inner) => inner.visit_names(classes, enums),
            Self::Map(key, value) => {
                key.visit_names(classes, enums);
                value.visit_names(classes, enums);
            }
            _ => {}
        }
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | ')' => {
                flush(&mut word, &mut tokens);
                tokens.push(c.to_string());
            }
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                flush(&mut word, &mut tokens);
                tokens.push("->".to_owned());
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

fn flush(word: &mut String, tokens: &mut Vec<String>) {
    if !word.is_empty() {
        tokens.push(std::mem::take(word));
    }
}

struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&str> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn expect(&mut self, wanted: &str) -> Result<(), String> {
        match self.next() {
            Some(token) if token == wanted => Ok(()),
            Some(token) => Err(format!("expected `{wanted}`, found `{token}`")),
            None => Err(format!("expected `{wanted}`, found the end")),
        }
    }

    fn parse_type(&mut self) -> Result<Type, String> {
        let mut ty = self.parse_atom()?;
        loop {
            match self.peek() {
                Some("set") => ty = Type::Set(Box::new(ty)),
                Some("option") => ty = Type::Option(Box::new(ty)),
                _ => return Ok(ty),
            }
            self.pos += 1;
        }
    }

    fn parse_atom(&mut self) -> Result<Type, String> {
        let token = self.next().ok_or("empty type")?.to_owned();
        match token.as_str() {
            "(" => {
                let key = self.parse_type()?;
                self.expect("->")?;
                let value = self.parse_type()?;
                self.expect(")")?;
                self.expect("map")?;
                Ok(Type::Map(Box::new(key), Box::new(value)))
            }
            "string" => Ok(Type::String),
            "int" => Ok(Type::Int),
            "float" => Ok(Type::Float),
            "bool" => Ok(Type::Bool),
            "datetime" => Ok(Type::DateTime),
            "enum" => {
                let name = self.next().ok_or("`enum` without a name")?;
                Ok(Type::Enum(name.to_owned()))
            }
            ")" | "->" | "set" | "map" | "option" | "ref" | "record" => {
                Err(format!("unexpected `{token}`"))
            }
            class => match self.next() {
                Some("ref") => Ok(Type::Ref(class.to_owned())),
                Some("record") => Ok(Type::Record(class.to_owned())),
                Some(other) => Err(format!(
                    "expected `ref` or `record` after `{class}`, found `{other}`"
                )),
                None => Err(format!("expected `ref` or `record` after `{class}`")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(text: &str) -> String {
        Type::parse(text).unwrap().owned(&mut BTreeSet::new())
    }

    #[test]
    fn grammar_maps_to_rust_types() {
        assert_eq!(rust("VM ref"), "Ref<Vm>");
        assert_eq!(rust("enum vm_operations set"), "Vec<VmOperations>");
        assert_eq!(
            rust("(VM ref -> (string -> string) map) map"),
            "SmallMap<Ref<Vm>, SmallMap<SmallString, SmallString>>"
        );
        assert_eq!(rust("string set set"), "Vec<Vec<SmallString>>");
        assert_eq!(rust("sr_stat record option"), "Option<SrStatRecord>");
        assert_eq!(rust("(int -> float) map"), "SmallMap<i64, f64>");
        assert_eq!(
            rust("(VM ref -> VM record) map"),
            "HashMap<Ref<Vm>, VmRecord>"
        );
        assert_eq!(rust("void"), "()");
        assert_eq!(rust("an event batch"), "EventBatch");
        assert_eq!(rust("<class> record"), "Option<Value>");
    }

    #[test]
    fn parameters_are_borrowed() {
        let param = |text: &str| Type::parse(text).unwrap().param(&mut BTreeSet::new());
        assert_eq!(param("string"), "&str");
        assert_eq!(param("VM ref set"), "&[Ref<Vm>]");
        assert_eq!(param("int"), "i64");
        assert_eq!(
            param("(string -> string) map"),
            "&SmallMap<SmallString, SmallString>"
        );
        assert_eq!(param("VM record"), "&VmRecord");
    }

    #[test]
    fn malformed_types_are_rejected_with_the_reason() {
        let err = Type::parse("(string -> string map").unwrap_err();
        assert!(err.contains("expected `)`"), "{err}");
        assert!(Type::parse("VM").is_err());
        assert!(Type::parse("string string").is_err());
    }

    #[test]
    fn meta_expressions_nest() {
        assert_eq!(
            Type::parse("(string -> enum x) map").unwrap().meta(),
            "Ty::Map(&Ty::String, &Ty::Enum(\"x\"))"
        );
    }
}
