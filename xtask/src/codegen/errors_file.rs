//! `wire/error_code.rs`: `ErrorCode`, one variant per code of `errors.json` plus `Other(String)`.
//!
//! It is generated into the wire layer, below `api`, because the decoders there turn a failure
//! answer into a typed `Failure`; `api` re-exports it.

use std::fmt::Write as _;

use super::HEADER;
use super::model::ErrorDef;
use super::names::camel_case;

/// Parameter names the project fixed before the generator existed (the xapi-core contract and
/// the client's master redirect use them): `(code, upstream name, name)`.
const PARAM_RENAMES: &[(&str, &str, &str)] = &[("HOST_IS_SLAVE", "Master IP address", "master")];

/// The name `param_names` gives parameter `name` of error `code`.
fn param_name(code: &str, name: &str) -> String {
    PARAM_RENAMES
        .iter()
        .find(|(c, upstream, _)| *c == code && *upstream == name)
        .map_or_else(
            || param_ident(name),
            |(_, _, renamed)| (*renamed).to_owned(),
        )
}

/// A parameter name as an identifier: upstream names some with phrases or acronyms (`PIF`,
/// `current auth_type`); `param_names` gives `pif` and `current_auth_type`, so every name reads
/// the same way and works as a Python keyword.
pub(crate) fn param_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Where the file goes, relative to `xapi-core/src`.
pub(crate) const PATH: &str = "wire/error_code.rs";

/// The source of `error_code.rs` (unformatted).
pub(crate) fn render(errors: &[ErrorDef]) -> Result<String, String> {
    let mut sorted: Vec<&ErrorDef> = errors.iter().collect();
    sorted.sort_by(|a, b| a.code.cmp(&b.code));
    let mut variants = std::collections::BTreeSet::new();
    for error in &sorted {
        let mut params = std::collections::BTreeSet::new();
        for param in &error.params {
            let ident = param_name(&error.code, param);
            if ident.is_empty() || !params.insert(ident) {
                return Err(format!(
                    "error code `{}`: parameter `{param}` is empty or clashes with another as an identifier",
                    error.code
                ));
            }
        }
        let variant = camel_case(&error.code);
        if variant == "Other" || !variants.insert(variant) {
            return Err(format!(
                "error code `{}`: its variant name clashes with another",
                error.code
            ));
        }
    }

    let mut out = String::new();
    writeln!(out, "{HEADER}").unwrap();
    writeln!(
        out,
        "//! XAPI error codes ({} known), with the names of their parameters.\n\n\
         use std::fmt;\n",
        sorted.len()
    )
    .unwrap();
    out.push_str(
        "/// The code of a XAPI failure: one variant per known code, `Other` for the rest (servers \
         send codes outside any list, such as `SR_BACKEND_FAILURE_<n>`).\n\
         #[derive(Debug, Clone, PartialEq, Eq, Hash)]\n#[non_exhaustive]\npub enum ErrorCode {\n",
    );
    for error in &sorted {
        let params = if error.params.is_empty() {
            "no parameters".to_owned()
        } else {
            format!(
                "parameters {}",
                error
                    .params
                    .iter()
                    .map(|p| {
                        let ident = param_name(&error.code, p);
                        if ident == *p {
                            format!("`{p}`")
                        } else {
                            format!("`{ident}` (upstream: \"{p}\")")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let declared = if error.declared {
            ""
        } else {
            " (no parameter declaration upstream)"
        };
        writeln!(
            out,
            "/// `{}`: {params}{declared}.\n{},",
            error.code,
            camel_case(&error.code)
        )
        .unwrap();
    }
    out.push_str("/// A code this client does not know, as sent.\nOther(String),\n}\n\n");

    let from_code = sorted
        .iter()
        .map(|e| format!("{:?} => Self::{},\n", e.code, camel_case(&e.code)))
        .collect::<Vec<_>>()
        .concat();
    let as_str = sorted
        .iter()
        .map(|e| format!("Self::{} => {:?},\n", camel_case(&e.code), e.code))
        .collect::<Vec<_>>()
        .concat();
    // Group codes by parameter list so that each list appears once.
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for error in sorted.iter().filter(|e| !e.params.is_empty()) {
        let variant = format!("Self::{}", camel_case(&error.code));
        let params: Vec<String> = error
            .params
            .iter()
            .map(|p| param_name(&error.code, p))
            .collect();
        match groups.iter_mut().find(|(p, _)| *p == params) {
            Some((_, members)) => members.push(variant),
            None => groups.push((params, vec![variant])),
        }
    }
    let param_names = groups
        .iter()
        .map(|(params, members)| {
            format!(
                "{} => &[{}],\n",
                members.join(" | "),
                params
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .concat();
    let undeclared: Vec<String> = sorted
        .iter()
        .filter(|e| !e.declared)
        .map(|e| format!("Self::{}", camel_case(&e.code)))
        .collect();
    let undeclared = if undeclared.is_empty() {
        "Self::Other(_)".to_owned()
    } else {
        format!("Self::Other(_) | {}", undeclared.join(" | "))
    };
    writeln!(
        out,
        "impl ErrorCode {{\n\
         /// The code for its wire text; unknown text becomes `Other`.\n\
         pub fn from_code(code: &str) -> Self {{\nmatch code {{\n{from_code}other => Self::Other(other.to_owned()),\n}}\n}}\n\n\
         /// The wire text.\n\
         pub fn as_str(&self) -> &str {{\nmatch self {{\n{as_str}Self::Other(code) => code,\n}}\n}}\n\n\
         /// The names of the parameters that follow the code on the wire, in order (empty for \
         codes without parameters and for unknown codes). Names are identifiers: upstream's \
         `current auth_type` is `current_auth_type`, and `HOST_IS_SLAVE`'s `Master IP address` \
         is `master`.\n\
         pub fn param_names(&self) -> &'static [&'static str] {{\nmatch self {{\n{param_names}_ => &[],\n}}\n}}\n\n\
         /// Whether upstream declares the parameters of this code (false for `Other` and for the \
         codes whose parameter list is unknown).\n\
         pub fn is_declared(&self) -> bool {{\n!matches!(self, {undeclared})\n}}\n}}\n\n\
         impl fmt::Display for ErrorCode {{\nfn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\nf.write_str(self.as_str())\n}}\n}}"
    )
    .unwrap();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{param_ident, param_name};

    #[test]
    fn parameter_names_become_identifiers() {
        assert_eq!(param_ident("vm"), "vm");
        assert_eq!(param_ident("Master IP address"), "master_ip_address");
        assert_eq!(param_ident("PIF"), "pif");
        assert_eq!(param_ident("current auth_type"), "current_auth_type");
        assert_eq!(param_ident(" (x) "), "x");
        assert_eq!(param_name("HOST_IS_SLAVE", "Master IP address"), "master");
        assert_eq!(
            param_name("OTHER", "Master IP address"),
            "master_ip_address"
        );
    }
}
