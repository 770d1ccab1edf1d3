//! xapi's cache of other pools' metadata VDIs (`Xapi_dr.db_vdi_cache`). When a shared SR is
//! plugged, every metadata VDI on it is opened: the generation and pool UUID of the database it
//! holds are remembered (`VDI.read_database_pool_uuid` answers from here, `""` for a VDI that
//! was never cached), and, per foreign pool, the cached VDIs with the highest generation get
//! `metadata_latest`, the others lose it (`update_metadata_latest`). A VDI whose database cannot
//! be read is left out, as xapi leaves it. Unplugging the SR takes its VDIs out again and clears
//! their `metadata_latest`.

use std::collections::HashMap;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};
use xapi_dr::metadata::RedoLogImage;

use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;

/// What the cache remembers of one metadata VDI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedDatabase {
    /// The database generation after replaying the redo log.
    pub(crate) generation: i64,
    /// The UUID of the pool whose database it is.
    pub(crate) pool_uuid: String,
}

/// The pool a metadata VDI holds the database of (`metadata_of_pool`); `None` when `vdi` is
/// not of type `metadata`.
pub(crate) fn metadata_owner(db: &Db, vdi: &str) -> Option<String> {
    db.str_field("VDI", vdi, "type")
        .is_ok_and(|t| t == "metadata")
        .then(|| db.str_field("VDI", vdi, "metadata_of_pool").ok())
        .flatten()
}

/// Replay the redo log in the image of the VDI `uuid` (`COULD_NOT_IMPORT_DATABASE` when it
/// cannot be read).
pub(crate) fn read_image(pool: &Pool, uuid: &str) -> Result<RedoLogImage, Failure> {
    let could_not = |reason: String| failure(ErrorCode::CouldNotImportDatabase, [reason]);
    let file = std::fs::File::open(pool.storage.path(uuid))
        .map_err(|e| could_not(format!("opening the VDI: {e}")))?;
    xapi_dr::metadata::read_redo_log(file).map_err(|e| could_not(e.to_string()))
}

/// What the cache keeps of a replayed image.
pub(crate) fn summary(image: &RedoLogImage) -> CachedDatabase {
    CachedDatabase {
        generation: image.final_generation,
        pool_uuid: image
            .database
            .rows("pool")
            .next()
            .and_then(|(_, row)| row.get("uuid"))
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Remember `vdi` (already read) and recompute `metadata_latest`.
pub(crate) fn remember(pool: &Pool, db: &mut Db, vdi: &str, cached: CachedDatabase) {
    pool.metadata_vdi_cache().insert(vdi.to_owned(), cached);
    update_metadata_latest(pool, db);
}

/// Open and remember every metadata VDI in `vdis`, then recompute `metadata_latest`.
pub(crate) fn add_vdis(pool: &Pool, db: &mut Db, vdis: &[String]) {
    for vdi in vdis {
        let Ok(uuid) = db.str_field("VDI", vdi, "uuid") else {
            continue;
        };
        match read_image(pool, &uuid) {
            Ok(image) => {
                pool.metadata_vdi_cache()
                    .insert(vdi.clone(), summary(&image));
            }
            Err(err) => tracing::debug!(vdi = %uuid, code = err.code.as_str(), ?err.params,
                "metadata VDI not cached: its database cannot be read"),
        }
    }
    update_metadata_latest(pool, db);
}

/// Forget `vdis` and clear their `metadata_latest`.
pub(crate) fn remove_vdis(pool: &Pool, db: &mut Db, vdis: &[String]) {
    {
        let mut cache = pool.metadata_vdi_cache();
        for vdi in vdis {
            cache.remove(vdi);
        }
    }
    for vdi in vdis {
        let _ = db.set_field("VDI", vdi, "metadata_latest", Value::Bool(false));
    }
    update_metadata_latest(pool, db);
}

/// The pool UUID of the database in `vdi`, `""` when it was never cached.
pub(crate) fn pool_uuid(pool: &Pool, vdi: &str) -> String {
    pool.metadata_vdi_cache()
        .get(vdi)
        .map(|c| c.pool_uuid.clone())
        .unwrap_or_default()
}

fn update_metadata_latest(pool: &Pool, db: &mut Db) {
    let mut cache = pool.metadata_vdi_cache();
    cache.retain(|vdi, _| db.exists("VDI", vdi));
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for cached in cache.values() {
        let best = newest.entry(cached.pool_uuid.as_str()).or_insert(0);
        *best = (*best).max(cached.generation);
    }
    for (vdi, cached) in cache.iter() {
        let latest = newest.get(cached.pool_uuid.as_str()) == Some(&cached.generation);
        let _ = db.set_field("VDI", vdi, "metadata_latest", Value::Bool(latest));
    }
}
