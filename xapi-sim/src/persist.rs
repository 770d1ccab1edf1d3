//! `--state`: each pool's database saved as xapi's DB XML (`<state>/<pool>/state.db`) shortly
//! after every change, and loaded instead of the scenario when present.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use xapi_core::api::meta::ClassMeta;
use xapi_dr::metadata::{read_db_xml, write_db_xml};

use crate::error::Error;
use crate::model::db_form::to_database;
use crate::model::store::Db;
use crate::pool::Pool;

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

/// Write the database now (to a temporary name, then renamed over the old copy).
pub(crate) fn save(pool: &Pool, path: &Path) -> std::io::Result<()> {
    let database = to_database(&pool.db());
    let temporary = path.with_extension("db.tmp");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
        write_db_xml(&database, &mut out)?;
        std::io::Write::flush(&mut out)?;
    }
    std::fs::rename(&temporary, path)
}

/// Save the database after changes, until aborted.
pub(crate) fn spawn_saver(pool: Arc<Pool>, path: PathBuf) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = pool.db().subscribe();
        let mut saved = None;
        loop {
            let generation = *changes.borrow_and_update();
            if saved != Some(generation) {
                if let Err(err) = save(&pool, &path) {
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
}
