//! Rust names for datamodel names.

/// CamelCase with acronyms as words: `VM` -> `Vm`, `VM_appliance` -> `VmAppliance`,
/// `balance-slb` -> `BalanceSlb`, `IPv4` -> `Ipv4`, `restartHVM` -> `RestartHvm` (a lower-case
/// letter followed by an upper-case one starts a word).
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word_start = true;
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            word_start = true;
            previous_lower = false;
            continue;
        }
        if word_start || (previous_lower && c.is_ascii_uppercase()) {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        word_start = false;
        previous_lower = c.is_ascii_lowercase();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// The variant for an enum value. The catch-all variant of every generated enum is
/// `Unknown(String)`, so a declared value `unknown` becomes `UnknownState`.
pub(crate) fn enum_variant(value: &str) -> String {
    let name = camel_case(value);
    if name == "Unknown" {
        "UnknownState".to_owned()
    } else {
        name
    }
}

/// The snake_case identifier for a field, parameter or message name, with Rust keywords
/// escaped: `HVM_boot_policy` -> `hvm_boot_policy`, `type` -> `r#type`, `self` -> `self_`.
pub(crate) fn snake_ident(name: &str) -> String {
    let lower: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    escape_keyword(lower)
}

/// The module name of a class: `VM_appliance` -> `vm_appliance`.
pub(crate) fn module_name(class: &str) -> String {
    snake_ident(class)
}

/// The identifier without a raw prefix (`r#type` -> `type`), as serde sees it.
pub(crate) fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

fn escape_keyword(ident: String) -> String {
    // These cannot be raw identifiers.
    if matches!(ident.as_str(), "self" | "super" | "crate" | "extern") {
        return format!("{ident}_");
    }
    if KEYWORDS.contains(&ident.as_str()) {
        return format!("r#{ident}");
    }
    ident
}

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "static",
    "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

/// The names generated for one class.
pub(crate) struct ClassNames {
    /// Module: `vm_appliance`.
    pub(crate) module: String,
    /// Marker type: `VmAppliance`.
    pub(crate) marker: String,
    /// Record: `VmApplianceRecord`.
    pub(crate) record: String,
    /// Call handle: `VmApplianceApi`.
    pub(crate) api: String,
}

impl ClassNames {
    /// The names for the class with datamodel name `class`.
    pub(crate) fn of(class: &str) -> Self {
        let marker = camel_case(class);
        Self {
            module: module_name(class),
            record: format!("{marker}Record"),
            api: format!("{marker}Api"),
            marker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_follow_the_conventions() {
        for (class, marker) in [
            ("VM", "Vm"),
            ("VDI", "Vdi"),
            ("SR", "Sr"),
            ("PBD", "Pbd"),
            ("VM_appliance", "VmAppliance"),
            ("DR_task", "DrTask"),
            ("VGPU_type", "VgpuType"),
            ("host_cpu", "HostCpu"),
            ("PVS_cache_storage", "PvsCacheStorage"),
        ] {
            assert_eq!(camel_case(class), marker, "{class}");
        }
        assert_eq!(ClassNames::of("VM_appliance").module, "vm_appliance");
        assert_eq!(ClassNames::of("DR_task").record, "DrTaskRecord");
    }

    #[test]
    fn enum_values_become_variants() {
        assert_eq!(camel_case("balance-slb"), "BalanceSlb");
        assert_eq!(camel_case("IPv4"), "Ipv4");
        assert_eq!(camel_case("soft_reboot"), "SoftReboot");
        assert_eq!(camel_case("4k"), "V4k");
        assert_eq!(camel_case("restartHVM"), "RestartHvm");
        assert_eq!(camel_case("restartHost"), "RestartHost");
        assert_eq!(camel_case("VM_BAD_POWER_STATE"), "VmBadPowerState");
        assert_eq!(camel_case("V6D_FAILURE"), "V6dFailure");
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(snake_ident("type"), "r#type");
        assert_eq!(snake_ident("ref"), "r#ref");
        assert_eq!(snake_ident("self"), "self_");
        assert_eq!(snake_ident("HVM_boot_policy"), "hvm_boot_policy");
        assert_eq!(unraw("r#type"), "type");
    }
}
