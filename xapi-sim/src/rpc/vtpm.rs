//! Virtual TPMs: the `VTPM` rows of a VM and their secret contents, as xapi keeps them.
//!
//! xapi stores a vTPM's state (swtpm's, base64-encoded) in a `secret` object that a hidden field
//! of the `VTPM` row names; the public datamodel the simulator is built from has no such field,
//! so the simulator finds a vTPM's secret by its `other_config` key [`CONTENTS_OF`]. Snapshots
//! and clones copy a VM's vTPMs (`xapi_vm_clone`), `VM.destroy` removes them, and an export
//! carries them with their contents (`export.ml`, the `vtpm'` record of `importexport.ml`).

use std::collections::BTreeMap;

use xapi_core::wire::{Failure, Value};

use crate::model::store::Db;

/// The `secret.other_config` key that names the vTPM (by reference) whose contents it holds.
pub(crate) const CONTENTS_OF: &str = "xapi-sim:vtpm_contents_of";

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// Create a vTPM for `vm` holding `contents` (an opaque string); its reference.
pub(crate) fn create(
    db: &mut Db,
    vm: &str,
    contents: &str,
    is_unique: bool,
) -> Result<String, Failure> {
    let fields: BTreeMap<String, Value> = [
        ("VM", s(vm)),
        ("backend", s(crate::model::defaults::NULL_REF)),
        ("persistence_backend", s("xapi")),
        ("is_unique", Value::Bool(is_unique)),
        ("is_protected", Value::Bool(false)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let vtpm = db.create("VTPM", fields)?;
    let secret: BTreeMap<String, Value> = [
        ("value".to_owned(), s(contents)),
        (
            "other_config".to_owned(),
            Value::Struct(BTreeMap::from([(CONTENTS_OF.to_owned(), s(&vtpm))])),
        ),
    ]
    .into_iter()
    .collect();
    db.create("secret", secret)?;
    Ok(vtpm)
}

/// The secret that holds the contents of `vtpm`, if any.
fn secret_of(db: &Db, vtpm: &str) -> Option<String> {
    let table = db.table("secret").ok()?;
    table.objects.iter().find_map(
        |(reference, object)| match object.fields.get("other_config") {
            Some(Value::Struct(other)) if other.get(CONTENTS_OF) == Some(&s(vtpm)) => {
                Some(reference.clone())
            }
            _ => None,
        },
    )
}

/// The contents of `vtpm` (`""` when it has none yet, as a vTPM never started).
pub(crate) fn contents(db: &Db, vtpm: &str) -> String {
    secret_of(db, vtpm)
        .and_then(|secret| db.str_field("secret", &secret, "value").ok())
        .unwrap_or_default()
}

/// Give `to` a copy of each vTPM of `from`, contents included.
pub(crate) fn copy_all(db: &mut Db, from: &str, to: &str) -> Result<(), Failure> {
    for vtpm in db.refs_field("VM", from, "VTPMs").unwrap_or_default() {
        let is_unique = matches!(db.field("VTPM", &vtpm, "is_unique"), Ok(Value::Bool(true)));
        let data = contents(db, &vtpm);
        create(db, to, &data, is_unique)?;
    }
    Ok(())
}

/// Destroy the vTPMs of `vm` and their secrets.
pub(crate) fn destroy_all(db: &mut Db, vm: &str) -> Result<(), Failure> {
    for vtpm in db.refs_field("VM", vm, "VTPMs").unwrap_or_default() {
        if let Some(secret) = secret_of(db, &vtpm) {
            db.destroy("secret", &secret)?;
        }
        db.destroy("VTPM", &vtpm)?;
    }
    Ok(())
}
