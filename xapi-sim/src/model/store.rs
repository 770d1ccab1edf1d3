//! The object store of one pool: per class, reference → fields, driven by the datamodel.
//!
//! Every mutation bumps the database generation and stamps the object with it, which is what
//! `event.from` reads; deletions are kept in a bounded log for the same purpose.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use xapi_core::api::ErrorCode;

use tokio::sync::watch;
use xapi_core::api::meta::{ClassMeta, FieldMeta, Ty};
use xapi_core::wire::{Failure, Value};

use xapi_dr::metadata::Database;

use super::coerce::{coerce, coerce_record};
use super::db_form::{
    NON_PERSISTENT, column_name, default_float_fields, fields_of_row, stored_text, to_database,
    to_row,
};
use super::defaults::{NULL_REF, default_value};
use super::ids::IdSource;
use super::relations::{RELATIONS, Relation};
use super::replication::{Replica, xml_of};
use crate::api_error::{failure, field_type_error, handle_invalid, internal, uuid_invalid};
use xapi_dr::metadata::Delta;

/// How many deletions are remembered for `event.from`; a token older than the oldest one
/// remembered gets `EVENTS_LOST`.
const DELETION_LOG_LEN: usize = 100_000;

/// One object: its fields and the generations at which it was created and last modified.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// Field values by wire name, for every field of the class.
    pub(crate) fields: BTreeMap<&'static str, Value>,
    /// Float fields still holding the datamodel default they were created with (written as
    /// OCaml `string_of_float` in the database, not `%0.18g`).
    pub(crate) defaulted_floats: BTreeSet<&'static str>,
    /// Generation of the creation.
    pub(crate) created: u64,
    /// Generation of the last change.
    pub(crate) modified: u64,
}

/// All objects of one class.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// The class.
    pub(crate) meta: &'static ClassMeta,
    /// Objects by reference.
    pub(crate) objects: BTreeMap<String, Object>,
    by_uuid: HashMap<String, String>,
}

/// A deleted object, remembered for `event.from`.
#[derive(Debug, Clone)]
pub(crate) struct Deletion {
    /// Generation of the deletion.
    pub(crate) generation: u64,
    /// Class name.
    pub(crate) class: &'static str,
    /// The reference it had.
    pub(crate) reference: String,
}

/// The database of one pool.
#[derive(Debug)]
pub(crate) struct Db {
    tables: BTreeMap<&'static str, Table>,
    relations: Vec<Relation>,
    generation: u64,
    deletions: VecDeque<Deletion>,
    forgotten_before: u64,
    ids: IdSource,
    changed: watch::Sender<u64>,
    /// Active redo logs (`SR.enable_database_replication`).
    replicas: Vec<Replica>,
}

impl Db {
    /// An empty database with a table for every class of `classes` that has a `uuid` field.
    pub(crate) fn new(classes: &'static [ClassMeta], salt: &str) -> Self {
        let tables: BTreeMap<&'static str, Table> = classes
            .iter()
            .filter(|c| c.fields.iter().any(|f| f.name == "uuid"))
            .map(|c| {
                (
                    c.name,
                    Table {
                        meta: c,
                        objects: BTreeMap::new(),
                        by_uuid: HashMap::new(),
                    },
                )
            })
            .collect();
        let has_field = |class: &str, field: &str| {
            tables
                .get(class)
                .is_some_and(|t| t.meta.fields.iter().any(|f| f.name == field))
        };
        let relations = RELATIONS
            .iter()
            .filter(|r| {
                has_field(r.many_class, r.many_field) && has_field(r.one_class, r.one_field)
            })
            .copied()
            .collect();
        let (changed, _) = watch::channel(0);
        Self {
            tables,
            relations,
            generation: 0,
            deletions: VecDeque::new(),
            forgotten_before: 0,
            ids: IdSource::new(salt),
            changed,
            replicas: Vec::new(),
        }
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// A receiver that sees the generation after every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A fresh UUID.
    pub(crate) fn new_uuid(&mut self) -> String {
        self.ids.next_uuid()
    }

    /// The tables, by class name.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    /// The table of `class` (exact datamodel name).
    pub(crate) fn table(&self, class: &str) -> Result<&Table, Failure> {
        self.tables
            .get(class)
            .ok_or_else(|| internal(format!("class {class} is not modelled")))
    }

    fn table_mut(&mut self, class: &str) -> Result<&mut Table, Failure> {
        self.tables
            .get_mut(class)
            .ok_or_else(|| internal(format!("class {class} is not modelled")))
    }

    /// The object `reference` of `class`, or `HANDLE_INVALID`.
    pub(crate) fn object(&self, class: &str, reference: &str) -> Result<&Object, Failure> {
        self.table(class)?
            .objects
            .get(reference)
            .ok_or_else(|| handle_invalid(class, reference))
    }

    /// Whether `reference` names an object of `class`.
    pub(crate) fn exists(&self, class: &str, reference: &str) -> bool {
        self.tables
            .get(class)
            .is_some_and(|t| t.objects.contains_key(reference))
    }

    /// The references of every object of `class`, in reference order.
    pub(crate) fn refs(&self, class: &str) -> Result<Vec<String>, Failure> {
        Ok(self.table(class)?.objects.keys().cloned().collect())
    }

    /// The reference of the object of `class` with `uuid`, or `UUID_INVALID`.
    pub(crate) fn by_uuid(&self, class: &str, uuid: &str) -> Result<String, Failure> {
        self.table(class)?
            .by_uuid
            .get(uuid)
            .cloned()
            .ok_or_else(|| uuid_invalid(class, uuid))
    }

    /// The references of the objects of `class` whose `field` equals `value`.
    pub(crate) fn find(
        &self,
        class: &str,
        field: &str,
        value: &Value,
    ) -> Result<Vec<String>, Failure> {
        Ok(self
            .table(class)?
            .objects
            .iter()
            .filter(|(_, o)| o.fields.get(field) == Some(value))
            .map(|(r, _)| r.clone())
            .collect())
    }

    /// One field of an object.
    pub(crate) fn field(
        &self,
        class: &str,
        reference: &str,
        field: &str,
    ) -> Result<&Value, Failure> {
        self.object(class, reference)?
            .fields
            .get(field)
            .ok_or_else(|| internal(format!("{class} has no field {field}")))
    }

    /// A string field (refs, enums, strings); `""` when it holds something else.
    pub(crate) fn str_field(
        &self,
        class: &str,
        reference: &str,
        field: &str,
    ) -> Result<String, Failure> {
        Ok(match self.field(class, reference, field)? {
            Value::String(s) => s.clone(),
            _ => String::new(),
        })
    }

    /// An int field; 0 when it holds something else.
    pub(crate) fn int_field(
        &self,
        class: &str,
        reference: &str,
        field: &str,
    ) -> Result<i64, Failure> {
        Ok(match self.field(class, reference, field)? {
            Value::Int(i) => *i,
            _ => 0,
        })
    }

    /// A reference-set field as strings.
    pub(crate) fn refs_field(
        &self,
        class: &str,
        reference: &str,
        field: &str,
    ) -> Result<Vec<String>, Failure> {
        Ok(match self.field(class, reference, field)? {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// The whole record of an object, as a struct keyed by field name.
    pub(crate) fn record(&self, class: &str, reference: &str) -> Result<Value, Failure> {
        let object = self.object(class, reference)?;
        Ok(record_of(object))
    }

    /// Create an object of `class` from the given fields (the rest take their defaults) and
    /// return its new reference. A `uuid` field, when given and not empty, is kept.
    pub(crate) fn create(
        &mut self,
        class: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<String, Failure> {
        let reference = self.ids.next_ref();
        self.create_with_ref(class, &reference, fields)?;
        Ok(reference)
    }

    /// Create an object with a reference chosen by the caller.
    pub(crate) fn create_with_ref(
        &mut self,
        class: &str,
        reference: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<(), Failure> {
        let meta = self.table(class)?.meta;
        let defaulted_floats: BTreeSet<&'static str> = meta
            .fields
            .iter()
            .filter(|f| matches!(f.ty, Ty::Float) && !fields.contains_key(f.name))
            .map(|f| f.name)
            .collect();
        let mut record = coerce_record(meta, fields).map_err(|f| field_type_error(&f))?;
        let uuid = match record.get("uuid") {
            Some(Value::String(u)) if !u.is_empty() => u.clone(),
            _ => self.ids.next_uuid(),
        };
        if self.table(class)?.by_uuid.contains_key(&uuid) {
            return Err(failure(
                ErrorCode::DbUniquenessConstraintViolation,
                [class, "uuid", &uuid],
            ));
        }
        record.insert("uuid".to_owned(), Value::String(uuid.clone()));
        // the one side of a relation starts empty: it is derived from the many side
        for relation in self.relations.iter().filter(|r| r.one_class == class) {
            record.insert(relation.one_field.to_owned(), Value::Array(Vec::new()));
        }
        let generation = self.bump();
        let fields = meta
            .fields
            .iter()
            .map(|f| {
                (
                    f.name,
                    record.remove(f.name).unwrap_or_else(|| default_value(f)),
                )
            })
            .collect::<BTreeMap<_, _>>();
        let links: Vec<(Relation, Value)> = self
            .relations
            .iter()
            .filter(|r| r.many_class == class)
            .filter_map(|r| fields.get(r.many_field).map(|v| (*r, v.clone())))
            .collect();
        let table = self.table_mut(class)?;
        table.by_uuid.insert(uuid, reference.to_owned());
        table.objects.insert(
            reference.to_owned(),
            Object {
                fields,
                defaulted_floats,
                created: generation,
                modified: generation,
            },
        );
        if self.is_replicated(class) {
            let columns = self
                .object(class, reference)
                .map(|o| to_row(meta, reference, o))
                .unwrap_or_default();
            self.replicate(&Delta::CreateRow {
                table: meta.name.to_owned(),
                reference: reference.to_owned(),
                columns,
            });
        }
        for (relation, parent) in links {
            self.link(&relation, &parent, reference, true);
        }
        self.publish();
        Ok(())
    }

    /// A store holding the persistent rows of a saved database (`--state`, a redo log): the
    /// generation, references, creation and modification generations are kept; one-to-many
    /// sets are recomputed from the many side, as xapi does on load.
    pub(crate) fn from_database(
        classes: &'static [ClassMeta],
        salt: &str,
        saved: &Database,
    ) -> Self {
        let mut db = Self::new(classes, salt);
        let metas: Vec<&'static ClassMeta> = db.tables.values().map(|t| t.meta).collect();
        for meta in metas {
            for (reference, row) in saved.rows(meta.name) {
                let fields = fields_of_row(meta, row);
                if db.create_with_ref(meta.name, reference, fields).is_err() {
                    continue;
                }
                if let Some(object) = db
                    .tables
                    .get_mut(meta.name)
                    .and_then(|t| t.objects.get_mut(reference))
                {
                    object.created = row.ctime.max(0) as u64;
                    object.modified = row.mtime.max(0) as u64;
                    object
                        .defaulted_floats
                        .extend(default_float_fields(meta, row));
                }
            }
        }
        // children may have been loaded before their parents: link every relation again
        for (relation, child, parent) in db.relation_links() {
            db.link(&relation, &parent, &child, true);
        }
        // linking stamped the parents: restore the saved generations
        for meta in db.tables.values().map(|t| t.meta).collect::<Vec<_>>() {
            for (reference, row) in saved.rows(meta.name) {
                if let Some(object) = db
                    .tables
                    .get_mut(meta.name)
                    .and_then(|t| t.objects.get_mut(reference))
                {
                    object.modified = row.mtime.max(0) as u64;
                }
            }
        }
        db.generation = saved.generation().max(0) as u64;
        db.deletions.clear();
        db.forgotten_before = db.generation;
        db.publish();
        db
    }

    /// Destroy an object, or `HANDLE_INVALID`.
    pub(crate) fn destroy(&mut self, class: &str, reference: &str) -> Result<(), Failure> {
        let table = self.table_mut(class)?;
        let class_name = table.meta.name;
        let object = table
            .objects
            .remove(reference)
            .ok_or_else(|| handle_invalid(class, reference))?;
        if let Some(Value::String(uuid)) = object.fields.get("uuid") {
            table.by_uuid.remove(uuid);
        }
        let generation = self.bump();
        if self.is_replicated(class_name) {
            self.replicate(&Delta::DeleteRow {
                table: class_name.to_owned(),
                reference: reference.to_owned(),
            });
        }
        let relations: Vec<Relation> = self
            .relations
            .iter()
            .filter(|r| r.many_class == class)
            .copied()
            .collect();
        for relation in relations {
            if let Some(parent) = object.fields.get(relation.many_field) {
                self.link(&relation, parent, reference, false);
            }
        }
        self.deletions.push_back(Deletion {
            generation,
            class: class_name,
            reference: reference.to_owned(),
        });
        while self.deletions.len() > DELETION_LOG_LEN {
            if let Some(old) = self.deletions.pop_front() {
                // a token at the dropped deletion's generation would miss it: EVENTS_LOST
                self.forgotten_before = old.generation + 1;
            }
        }
        self.publish();
        Ok(())
    }

    /// Every one-to-many link the objects hold: `(relation, child, parent)` for each object of
    /// a relation's many-side class that has the reference field (the parent may be null).
    pub(crate) fn relation_links(&self) -> Vec<(Relation, String, Value)> {
        let mut links = Vec::new();
        for relation in &self.relations {
            let Some(table) = self.tables.get(relation.many_class) else {
                continue;
            };
            for (child, object) in &table.objects {
                if let Some(parent) = object.fields.get(relation.many_field) {
                    links.push((*relation, child.clone(), parent.clone()));
                }
            }
        }
        links
    }

    /// Set one field, checking its type; keeps relations in step.
    pub(crate) fn set_field(
        &mut self,
        class: &str,
        reference: &str,
        field: &str,
        value: Value,
    ) -> Result<(), Failure> {
        let field_meta = self.field_meta(class, field)?;
        let value = coerce(value, &field_meta.ty).ok_or_else(|| field_type_error(field))?;
        let relations: Vec<Relation> = self
            .relations
            .iter()
            .filter(|r| r.many_class == class && r.many_field == field)
            .copied()
            .collect();
        let old = self.field(class, reference, field)?.clone();
        let generation = self.bump();
        let object = self
            .table_mut(class)?
            .objects
            .get_mut(reference)
            .ok_or_else(|| handle_invalid(class, reference))?;
        object.fields.insert(field_meta.name, value.clone());
        object.defaulted_floats.remove(field_meta.name);
        object.modified = generation;
        if self.is_replicated(class) {
            self.replicate(&Delta::WriteField {
                table: class.to_owned(),
                reference: reference.to_owned(),
                column: column_name(class, field_meta.name),
                value: stored_text(&value, &field_meta.ty),
            });
        }
        for relation in relations {
            self.link(&relation, &old, reference, false);
            self.link(&relation, &value, reference, true);
        }
        self.publish();
        Ok(())
    }

    /// Mark an object as changed without changing it (`event.inject`).
    pub(crate) fn touch(&mut self, class: &str, reference: &str) -> Result<(), Failure> {
        self.object(class, reference)?;
        let generation = self.bump();
        if let Some(object) = self.table_mut(class)?.objects.get_mut(reference) {
            object.modified = generation;
        }
        self.publish();
        Ok(())
    }

    /// The metadata of a field of `class`.
    pub(crate) fn field_meta(
        &self,
        class: &str,
        field: &str,
    ) -> Result<&'static FieldMeta, Failure> {
        self.table(class)?
            .meta
            .fields
            .iter()
            .find(|f| f.name == field)
            .ok_or_else(|| internal(format!("{class} has no field {field}")))
    }

    /// Deletions at or after `generation`, and whether the log still reaches back that far.
    pub(crate) fn deletions_since(
        &self,
        generation: u64,
    ) -> Option<impl Iterator<Item = &Deletion>> {
        (generation >= self.forgotten_before).then(|| {
            self.deletions
                .iter()
                .filter(move |d| d.generation >= generation)
        })
    }

    /// Add `child` to (or remove it from) the set that mirrors `relation` on `parent`.
    fn link(&mut self, relation: &Relation, parent: &Value, child: &str, add: bool) {
        let Value::String(parent) = parent else {
            return;
        };
        if parent == NULL_REF || parent.is_empty() {
            return;
        }
        let generation = self.generation;
        let Some(object) = self
            .tables
            .get_mut(relation.one_class)
            .and_then(|t| t.objects.get_mut(parent))
        else {
            return;
        };
        let Some(Value::Array(set)) = object.fields.get_mut(relation.one_field) else {
            return;
        };
        let present = set
            .iter()
            .position(|v| matches!(v, Value::String(s) if s == child));
        match (add, present) {
            (true, None) => set.push(Value::String(child.to_owned())),
            (false, Some(i)) => {
                set.remove(i);
            }
            _ => return,
        }
        object.modified = generation;
        let set = Value::Array(set.clone());
        // the set changed: that is a change of its own, with its own generation
        self.generation = generation + 1;
        if self.is_replicated(relation.one_class) {
            let ty = self
                .field_meta(relation.one_class, relation.one_field)
                .map_or(Ty::Set(&Ty::String), |f| f.ty);
            self.replicate(&Delta::WriteField {
                table: relation.one_class.to_owned(),
                reference: parent.clone(),
                column: column_name(relation.one_class, relation.one_field),
                value: stored_text(&set, &ty),
            });
        }
    }

    /// Whether changes of `class` go to the redo logs (persistent tables only).
    fn is_replicated(&self, class: &str) -> bool {
        !self.replicas.is_empty() && !NON_PERSISTENT.contains(&class)
    }

    /// Append a delta, at the current generation, to every active redo log. A log that fails
    /// is dropped (as xapi marks it inaccessible).
    fn replicate(&mut self, delta: &Delta) {
        let mut replicas = std::mem::take(&mut self.replicas);
        let generation = self.generation as i64;
        replicas.retain_mut(|replica| {
            match replica.append(delta, generation, || xml_of(&to_database(self))) {
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(vdi = %replica.vdi_uuid, error = %err, "redo log write failed; replication stopped");
                    false
                }
            }
        });
        self.replicas = replicas;
    }

    /// Start replicating into a metadata VDI's image: the whole database first.
    pub(crate) fn start_replica(&mut self, mut replica: Replica) -> Result<(), String> {
        if self.replicas.iter().any(|r| r.vdi_uuid == replica.vdi_uuid) {
            return Ok(());
        }
        replica
            .write_database(&xml_of(&to_database(self)), self.generation as i64)
            .map_err(|e| e.to_string())?;
        self.replicas.push(replica);
        Ok(())
    }

    /// Stop replicating into a metadata VDI.
    pub(crate) fn stop_replica(&mut self, vdi_uuid: &str) -> bool {
        let before = self.replicas.len();
        self.replicas.retain(|r| r.vdi_uuid != vdi_uuid);
        self.replicas.len() != before
    }

    /// How many redo logs are active.
    pub(crate) fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    /// Write the whole database into every redo log (`pool.sync_database`).
    pub(crate) fn flush_replicas(&mut self) -> Result<(), String> {
        let xml = xml_of(&to_database(self));
        let generation = self.generation as i64;
        for replica in &mut self.replicas {
            replica
                .write_database(&xml, generation)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Count one change: returns the stamp of the rows it touches, the generation before the
    /// change, as xapi's `Db_cache_types` stamps `__ctime`/`__mtime`.
    fn bump(&mut self) -> u64 {
        let stamp = self.generation;
        self.generation += 1;
        stamp
    }

    fn publish(&self) {
        self.changed.send_replace(self.generation);
    }
}

/// The record of an object as a struct.
pub(crate) fn record_of(object: &Object) -> Value {
    Value::Struct(
        object
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// Whether a field type is a map (for `add_to_`/`remove_from_`).
pub(crate) fn is_map(ty: &Ty) -> bool {
    matches!(ty, Ty::Map(_, _))
}

#[cfg(test)]
pub(crate) mod tests {
    use xapi_core::api::meta::{MessageMeta, Qualifier};

    use super::*;

    static REF_VM: Ty = Ty::Ref("VM");
    static STRING: Ty = Ty::String;

    const fn field(
        name: &'static str,
        ty: Ty,
        qualifier: Qualifier,
        default: Option<&'static str>,
    ) -> FieldMeta {
        FieldMeta {
            name,
            ty,
            qualifier,
            default,
        }
    }

    /// A two-class datamodel (VM and VBD) for tests that must not depend on the generated one.
    pub(crate) static TEST_CLASSES: &[ClassMeta] = &[
        ClassMeta {
            name: "VM",
            fields: &[
                field("uuid", Ty::String, Qualifier::ReadOnlyRuntime, None),
                field("name_label", Ty::String, Qualifier::ReadWrite, Some("\"\"")),
                field(
                    "memory_static_max",
                    Ty::Int,
                    Qualifier::ReadWrite,
                    Some("0"),
                ),
                field(
                    "VBDs",
                    Ty::Set(&Ty::Ref("VBD")),
                    Qualifier::ReadOnlyRuntime,
                    None,
                ),
                field(
                    "other_config",
                    Ty::Map(&STRING, &STRING),
                    Qualifier::ReadWrite,
                    Some("{}"),
                ),
            ],
            messages: &[] as &[MessageMeta],
        },
        ClassMeta {
            name: "VBD",
            fields: &[
                field("uuid", Ty::String, Qualifier::ReadOnlyRuntime, None),
                field("VM", REF_VM, Qualifier::ReadOnlyConstructor, None),
                field("device", Ty::String, Qualifier::ReadWrite, Some("\"xvda\"")),
            ],
            messages: &[],
        },
    ];

    fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn created_object_has_defaults_and_a_uuid() {
        let mut db = Db::new(TEST_CLASSES, "t");
        let vm = db
            .create("VM", fields(&[("name_label", Value::String("web".into()))]))
            .unwrap();
        let Value::Struct(record) = db.record("VM", &vm).unwrap() else {
            panic!("record is a struct")
        };
        assert_eq!(record["name_label"], Value::String("web".into()));
        assert_eq!(record["memory_static_max"], Value::Int(0));
        let Value::String(uuid) = &record["uuid"] else {
            panic!("uuid is a string")
        };
        assert_eq!(db.by_uuid("VM", uuid).unwrap(), vm);
    }

    #[test]
    fn one_side_set_follows_the_many_side() {
        let mut db = Db::new(TEST_CLASSES, "t");
        let vm1 = db.create("VM", BTreeMap::new()).unwrap();
        let vm2 = db.create("VM", BTreeMap::new()).unwrap();
        let vbd = db
            .create("VBD", fields(&[("VM", Value::String(vm1.clone()))]))
            .unwrap();
        assert_eq!(
            db.refs_field("VM", &vm1, "VBDs").unwrap(),
            vec![vbd.clone()]
        );
        db.set_field("VBD", &vbd, "VM", Value::String(vm2.clone()))
            .unwrap();
        assert!(db.refs_field("VM", &vm1, "VBDs").unwrap().is_empty());
        assert_eq!(
            db.refs_field("VM", &vm2, "VBDs").unwrap(),
            vec![vbd.clone()]
        );
        db.destroy("VBD", &vbd).unwrap();
        assert!(db.refs_field("VM", &vm2, "VBDs").unwrap().is_empty());
    }

    #[test]
    fn wrong_type_and_unknown_handle_fail_like_xapi() {
        let mut db = Db::new(TEST_CLASSES, "t");
        let vm = db.create("VM", BTreeMap::new()).unwrap();
        let err = db
            .set_field("VM", &vm, "memory_static_max", Value::String("lots".into()))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::FieldTypeError);
        assert_eq!(err.params, vec!["memory_static_max"]);
        let err = db.record("VM", "OpaqueRef:nope").unwrap_err();
        assert_eq!(err.code, ErrorCode::HandleInvalid);
        assert_eq!(err.params, vec!["VM", "OpaqueRef:nope"]);
        let err = db.by_uuid("VM", "nope").unwrap_err();
        assert_eq!(err.params, vec!["VM", "nope"]);
    }

    #[test]
    fn a_token_at_a_dropped_deletion_has_lost_events() {
        let mut db = Db::new(TEST_CLASSES, "t");
        let first = db.create("VM", BTreeMap::new()).unwrap();
        let before_first = db.generation();
        db.destroy("VM", &first).unwrap();
        for _ in 0..DELETION_LOG_LEN {
            let vm = db.create("VM", BTreeMap::new()).unwrap();
            db.destroy("VM", &vm).unwrap();
        }
        // the first deletion left the log: a token from before it cannot see it any more
        assert!(db.deletions_since(before_first).is_none());
        assert!(db.deletions_since(before_first + 1).is_some());
    }

    #[test]
    fn every_change_bumps_the_generation() {
        let mut db = Db::new(TEST_CLASSES, "t");
        let rx = db.subscribe();
        let vm = db.create("VM", BTreeMap::new()).unwrap();
        let after_create = db.generation();
        db.set_field("VM", &vm, "name_label", Value::String("x".into()))
            .unwrap();
        assert!(db.generation() > after_create);
        assert_eq!(*rx.borrow(), db.generation());
        // rows are stamped with the generation before the change, as in xapi
        assert_eq!(db.object("VM", &vm).unwrap().modified, db.generation() - 1);
        db.destroy("VM", &vm).unwrap();
        assert_eq!(db.deletions_since(after_create).unwrap().count(), 1);
    }
}
