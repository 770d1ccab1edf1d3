//! `--state`: each pool's database saved as xapi's DB XML (`<state>/<pool>/state.db`) shortly
//! after every change, and loaded instead of the scenario when present; its changed-block
//! tracking next to it (`<state>/<pool>/cbt.txt`, see [`crate::cbt`]).
//!
//! On a restart, as xapi does when the master plugs an SR holding a metadata VDI of its own
//! pool, database replication starts again on every such VDI whose SR is attached to the
//! master: the log on the VDI continues (its next record is the whole database, written into
//! the half that is not valid, then deltas again).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use xapi_core::api::meta::ClassMeta;
use xapi_core::wire::Value;
use xapi_dr::metadata::{read_db_xml, write_db_xml};

use crate::cbt::Cbt;
use crate::error::Error;
use crate::model::db_form::to_database;
use crate::model::replication::Replica;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::metadata_cache::metadata_owner;

/// Changes are written at most this often.
const SAVE_DELAY: Duration = Duration::from_millis(200);

/// Where a pool's database is saved.
pub(crate) fn state_file(state_dir: &Path, pool: &str) -> PathBuf {
    state_dir.join(pool).join("state.db")
}

/// The saved database of a pool, if there is one.
pub(crate) fn load(
    classes: &'static [ClassMeta],
    pool: &str,
    path: &Path,
) -> Result<Option<Db>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::State {
                path: path.to_owned(),
                source,
            });
        }
    };
    let saved = read_db_xml(BufReader::new(file)).map_err(|e| Error::State {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(Some(Db::from_database(classes, pool, &saved)))
}

/// Where a pool's changed-block tracking is saved, next to its database file.
pub(crate) fn cbt_file(state_file: &Path) -> PathBuf {
    state_file.with_file_name("cbt.txt")
}

/// The saved changed-block tracking next to the database file `state_file`, if there is one.
pub(crate) fn load_cbt(state_file: &Path) -> Result<Option<Cbt>, Error> {
    let path = cbt_file(state_file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::State { path, source }),
    };
    Cbt::from_text(&text).map(Some).map_err(|e| Error::State {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Write the changed-block tracking now (to a temporary name, then renamed over the old copy).
pub(crate) fn save_cbt(pool: &Pool, state_file: &Path) -> std::io::Result<()> {
    let path = cbt_file(state_file);
    let text = pool.cbt().to_text();
    let temporary = path.with_extension("txt.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)
}

/// Write the database and the changed-block tracking now.
pub(crate) fn save(pool: &Pool, path: &Path) -> std::io::Result<()> {
    save_database(pool, path)?;
    save_cbt(pool, path)
}

/// Write the database now (to a temporary name, then renamed over the old copy).
fn save_database(pool: &Pool, path: &Path) -> std::io::Result<()> {
    let database = to_database(&pool.db());
    let temporary = path.with_extension("db.tmp");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
        write_db_xml(&database, &mut out)?;
        std::io::Write::flush(&mut out)?;
    }
    std::fs::rename(&temporary, path)
}

/// Save the database after changes, and the changed-block tracking after writes to tracked
/// disks (checked every [`SAVE_DELAY`]), until aborted.
pub(crate) fn spawn_saver(pool: Arc<Pool>, path: PathBuf) -> [JoinHandle<()>; 2] {
    let database = {
        let pool = Arc::clone(&pool);
        let path = path.clone();
        tokio::spawn(async move {
            let mut changes = pool.db().subscribe();
            let mut saved = None;
            loop {
                let generation = *changes.borrow_and_update();
                if saved != Some(generation) {
                    if let Err(err) = save_database(&pool, &path) {
                        tracing::warn!(path = %path.display(), error = %err, "cannot save the pool database");
                    }
                    saved = Some(generation);
                }
                if changes.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(SAVE_DELAY).await;
            }
        })
    };
    let cbt = tokio::spawn(async move {
        let mut saved = None;
        loop {
            let revision = pool.cbt().revision();
            if saved != Some(revision) {
                if let Err(err) = save_cbt(&pool, &path) {
                    tracing::warn!(path = %path.display(), error = %err, "cannot save the changed-block tracking");
                }
                saved = Some(revision);
            }
            tokio::time::sleep(SAVE_DELAY).await;
        }
    });
    [database, cbt]
}

/// After loading a saved pool: its changed-block tracking back (disks whose `cbt_enabled` is
/// set but that have no saved tracking, from an older state directory, start a fresh log), and
/// database replication started again on the metadata VDIs of this pool whose SR is attached
/// to the master.
pub(crate) fn resume(pool: &Pool, cbt: Option<Cbt>) {
    if let Some(cbt) = cbt {
        *pool.cbt() = cbt;
    }
    let mut db = pool.db();
    let vdis = db.refs("VDI").unwrap_or_default();
    for vdi in &vdis {
        let enabled = matches!(db.field("VDI", vdi, "cbt_enabled"), Ok(Value::Bool(true)));
        let Ok(uuid) = db.str_field("VDI", vdi, "uuid") else {
            continue;
        };
        if enabled && !pool.cbt().has_metadata(&uuid) {
            pool.cbt().enable(&uuid);
        }
    }
    let Some(pool_ref) = db.refs("pool").ok().and_then(|p| p.into_iter().next()) else {
        return;
    };
    let master = crate::rpc::session::master_host(&db);
    // xapi's cache_metadata_vdis at start-up: other pools' metadata VDIs join the cache
    let foreign: Vec<String> = vdis
        .iter()
        .filter(|vdi| metadata_owner(&db, vdi).is_some_and(|p| p != pool_ref))
        .cloned()
        .collect();
    crate::rpc::metadata_cache::add_vdis(pool, &mut db, &foreign);
    for vdi in vdis {
        let is_ours = metadata_owner(&db, &vdi).is_some_and(|p| p == pool_ref);
        if !is_ours || !attached_to(&db, &vdi, &master) {
            continue;
        }
        let Ok(uuid) = db.str_field("VDI", &vdi, "uuid") else {
            continue;
        };
        let marker = db.new_uuid();
        let started = pool
            .storage
            .open_for_update(&uuid)
            .map_err(|e| e.to_string())
            .and_then(|file| Replica::open(&uuid, file, &marker).map_err(|e| e.to_string()))
            .and_then(|replica| db.start_replica(replica));
        let latest = match started {
            Ok(()) => true,
            Err(reason) => {
                tracing::warn!(vdi = %uuid, %reason, "cannot resume database replication");
                false
            }
        };
        let _ = db.set_field("VDI", &vdi, "metadata_latest", Value::Bool(latest));
    }
}

/// Whether the SR of `vdi` has a PBD on `host` that is currently attached.
fn attached_to(db: &Db, vdi: &str, host: &str) -> bool {
    db.str_field("VDI", vdi, "SR")
        .is_ok_and(|sr| crate::rpc::vm_placement::sr_attached_on(db, &sr, host))
}
