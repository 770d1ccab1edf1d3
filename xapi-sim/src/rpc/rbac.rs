//! Role-based access control for the sessions of users other than `root`.
//!
//! The pools hold xapi's six roles (`pool-admin`, `pool-operator`, `vm-power-admin`,
//! `vm-admin`, `vm-operator`, `read-only`) and one external user, [`READ_ONLY_USER`], whose
//! `subject` has the role `read-only` (it logs in with the pool's password, as an Active
//! Directory user the pool admin added would). Its sessions have `is_local_superuser = false`,
//! that `subject`, and in `rbac_permissions` the lower-case names (`vm.get_record`) of the
//! calls the role allows: every getter, the event and logout calls, the memory and boot checks
//! (`host.compute_free_memory`, `VM.assert_can_boot_here`), and the recovery calls that
//! xapi lets the read-only DR session make (`VM.recover` and friends, which then check
//! `session_to` themselves). Any other call is refused with
//! `RBAC_PERMISSION_DENIED [permission; reason]`. `root` is the local superuser and may do
//! everything.

use std::collections::BTreeMap;

use xapi_core::api::ErrorCode;
use xapi_core::api::meta::ClassMeta;
use xapi_core::wire::{Failure, Value};

use crate::api_error::failure;
use crate::model::store::Db;

/// The user whose sessions have the `read-only` role.
pub const READ_ONLY_USER: &str = "readonly";

/// The role of [`READ_ONLY_USER`].
const READ_ONLY_ROLE: &str = "read-only";

/// xapi's roles, from the most to the least powerful, with their descriptions.
const ROLES: &[(&str, &str)] = &[
    (
        "pool-admin",
        "The Pool Administrator role has full access to all features and settings",
    ),
    (
        "pool-operator",
        "The Pool Operator role manages host- and pool-wide resources",
    ),
    (
        "vm-power-admin",
        "The VM Power Administrator role has full access to VM and template management",
    ),
    (
        "vm-admin",
        "The VM Administrator role can manage VMs and templates",
    ),
    (
        "vm-operator",
        "The VM Operator role can use VMs and interact with VM consoles",
    ),
    (
        "read-only",
        "The Read-Only role can log in with basic read-only access",
    ),
];

/// The reason xapi gives with `RBAC_PERMISSION_DENIED`.
const DENIED: &str = "No permission in user session";

/// Whether the `read-only` role allows `class.message`.
pub(crate) fn is_read_only(class: &str, message: &str) -> bool {
    message.starts_with("get_")
        || matches!(
            (class, message),
            ("event", "from" | "next" | "register" | "unregister")
                | ("session", "logout" | "local_logout")
                | ("VM" | "VM_appliance", "recover" | "assert_can_be_recovered")
                | ("VM", "assert_can_boot_here" | "compute_memory_overhead")
                | ("host", "compute_free_memory" | "compute_memory_overhead")
        )
}

/// The permission name of `class.message` as `rbac_permissions` lists it.
pub(crate) fn permission(class: &str, message: &str) -> String {
    format!("{class}.{message}").to_lowercase()
}

/// Every permission of the `read-only` role in the datamodel `classes`.
pub(crate) fn read_only_permissions(classes: &[ClassMeta]) -> Vec<Value> {
    classes
        .iter()
        .flat_map(|class| {
            class
                .messages
                .iter()
                .filter(|m| is_read_only(class.name, m.name))
                .map(|m| Value::String(permission(class.name, m.name)))
        })
        .collect()
}

/// Make sure the pool has xapi's roles and the subject of [`READ_ONLY_USER`] (at build and at
/// every start, as xapi registers its static roles).
pub(crate) fn register_roles(db: &mut Db) -> Result<(), Failure> {
    if db.table("role").is_err() || db.table("subject").is_err() {
        return Ok(());
    }
    for (name, description) in ROLES {
        if db
            .find("role", "name_label", &Value::String((*name).to_owned()))?
            .is_empty()
        {
            db.create(
                "role",
                BTreeMap::from([
                    ("name_label".to_owned(), Value::String((*name).to_owned())),
                    (
                        "name_description".to_owned(),
                        Value::String((*description).to_owned()),
                    ),
                ]),
            )?;
        }
    }
    if read_only_subject(db).is_none() {
        let role = role_named(db, READ_ONLY_ROLE)?;
        db.create(
            "subject",
            BTreeMap::from([
                (
                    "subject_identifier".to_owned(),
                    Value::String(format!("S-1-5-21-xapi-sim-{READ_ONLY_USER}")),
                ),
                (
                    "other_config".to_owned(),
                    Value::Struct(BTreeMap::from([
                        (
                            "subject-name".to_owned(),
                            Value::String(READ_ONLY_USER.to_owned()),
                        ),
                        (
                            "subject-is-group".to_owned(),
                            Value::String("false".to_owned()),
                        ),
                    ])),
                ),
                ("roles".to_owned(), Value::Array(vec![Value::String(role)])),
            ]),
        )?;
    }
    Ok(())
}

fn role_named(db: &Db, name: &str) -> Result<String, Failure> {
    db.find("role", "name_label", &Value::String(name.to_owned()))?
        .into_iter()
        .next()
        .ok_or_else(|| crate::api_error::internal(format!("no role {name}")))
}

/// The subject of [`READ_ONLY_USER`].
fn read_only_subject(db: &Db) -> Option<String> {
    db.table("subject")
        .ok()?
        .objects
        .iter()
        .find_map(|(r, o)| match o.fields.get("other_config") {
            Some(Value::Struct(config))
                if config.get("subject-name")
                    == Some(&Value::String(READ_ONLY_USER.to_owned())) =>
            {
                Some(r.clone())
            }
            _ => None,
        })
}

/// The session fields of a login as [`READ_ONLY_USER`]: not the local superuser, its subject
/// and SID, and the permissions of its role.
pub(crate) fn read_only_session_fields(
    db: &Db,
    classes: &[ClassMeta],
) -> Result<Vec<(&'static str, Value)>, Failure> {
    let subject = read_only_subject(db)
        .ok_or_else(|| crate::api_error::internal("the read-only subject is missing"))?;
    let sid = db.str_field("subject", &subject, "subject_identifier")?;
    Ok(vec![
        ("is_local_superuser", Value::Bool(false)),
        ("subject", Value::String(subject)),
        ("auth_user_sid", Value::String(sid)),
        (
            "rbac_permissions",
            Value::Array(read_only_permissions(classes)),
        ),
    ])
}

/// Whether `session` may make calls that need `permission` (lower case).
pub(crate) fn session_has(db: &Db, session: &str, permission: &str) -> bool {
    if matches!(
        db.field("session", session, "is_local_superuser"),
        Ok(Value::Bool(true))
    ) {
        return true;
    }
    db.refs_field("session", session, "rbac_permissions")
        .unwrap_or_default()
        .iter()
        .any(|p| p == permission)
}

/// `RBAC_PERMISSION_DENIED [permission; reason]` unless `session` may call `class.message`.
pub(crate) fn check(db: &Db, session: &str, class: &str, message: &str) -> Result<(), Failure> {
    if session_has(db, session, &permission(class, message)) {
        return Ok(());
    }
    Err(denied(&format!("{class}.{message}")))
}

/// `RBAC_PERMISSION_DENIED [action; reason]`.
pub(crate) fn denied(action: &str) -> Failure {
    failure(ErrorCode::RbacPermissionDenied, [action, DENIED])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_only_role_reads_and_checks_but_changes_nothing() {
        for (class, message) in [
            ("VM", "get_record"),
            ("event", "from"),
            ("session", "logout"),
            ("VM", "recover"),
            ("host", "compute_free_memory"),
        ] {
            assert!(is_read_only(class, message), "{class}.{message}");
        }
        for (class, message) in [
            ("VM", "start"),
            ("VM", "set_name_label"),
            ("VDI", "open_database"),
            ("DR_task", "create"),
            ("pool", "enable_ha"),
        ] {
            assert!(!is_read_only(class, message), "{class}.{message}");
        }
        assert_eq!(permission("VDI", "open_database"), "vdi.open_database");
        let permissions = read_only_permissions(xapi_core::api::meta::CLASSES);
        assert!(permissions.contains(&Value::String("vm.get_record".to_owned())));
        assert!(!permissions.contains(&Value::String("vm.start".to_owned())));
    }
}
