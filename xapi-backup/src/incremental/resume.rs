//! The resume state of an incremental run: which snapshot it reads and which chunks of each
//! disk it has stored, kept in a small JSON file per VM (`<state dir>/<vm uuid>.json`, written
//! to a temporary name then renamed) so that a run interrupted mid-transfer continues from the
//! last chunk stored, as long as its snapshot still exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine_error::EngineError;
use crate::repo::ChunkId;

/// What an interrupted run had done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResumeState {
    /// The VM backed up.
    pub vm_uuid: String,
    /// The snapshot the run reads (kept until the run ends).
    pub snapshot_uuid: String,
    /// Per disk (the snapshot VDI's UUID): the chunks settled, `(chunk number, chunk id in hex)`, the id empty
    /// for a chunk of zeros.
    pub stored: BTreeMap<String, Vec<(u64, String)>>,
}

impl ResumeState {
    /// The chunks settled for the stream `key`, by chunk number (`None`: zeros; unreadable
    /// ids are skipped: those chunks are read again).
    pub(crate) fn stored_chunks(&self, key: &str) -> BTreeMap<u64, Option<ChunkId>> {
        self.stored
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|(n, id)| {
                if id.is_empty() {
                    Some((*n, None))
                } else {
                    ChunkId::from_hex(id).map(|id| (*n, Some(id)))
                }
            })
            .collect()
    }

    /// Records chunks settled for `key`.
    pub(crate) fn add(&mut self, key: &str, chunks: &[(u64, Option<ChunkId>)]) {
        self.stored.entry(key.to_owned()).or_default().extend(
            chunks
                .iter()
                .map(|(n, id)| (*n, id.as_ref().map(ChunkId::to_hex).unwrap_or_default())),
        );
    }
}

/// Where the resume state of one VM lives.
#[derive(Debug, Clone)]
pub(crate) struct ResumeFile {
    path: PathBuf,
}

impl ResumeFile {
    /// The state file of `vm_uuid` under `dir`.
    pub(crate) fn new(dir: &Path, vm_uuid: &str) -> Self {
        Self {
            path: dir.join(format!("{vm_uuid}.json")),
        }
    }

    fn fail(&self) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        move |source| EngineError::ResumeState {
            path: self.path.clone(),
            source,
        }
    }

    /// The saved state, `None` when there is none (or it cannot be parsed: then it is ignored
    /// with a warning, and the run starts afresh).
    pub(crate) async fn load(&self) -> Result<Option<ResumeState>, EngineError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => Ok(Some(state)),
                Err(error) => {
                    tracing::warn!(path = %self.path.display(), %error, "ignoring an unreadable resume state");
                    Ok(None)
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.fail()(err)),
        }
    }

    /// Saves `state` (temporary file, then rename).
    pub(crate) async fn save(&self, state: &ResumeState) -> Result<(), EngineError> {
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(self.fail())?;
        }
        let bytes = serde_json::to_vec(state).map_err(|e| self.fail()(e.into()))?;
        let temporary = self.path.with_extension("json.tmp");
        tokio::fs::write(&temporary, bytes)
            .await
            .map_err(self.fail())?;
        tokio::fs::rename(&temporary, &self.path)
            .await
            .map_err(self.fail())
    }

    /// Removes the state (the run ended).
    pub(crate) async fn remove(&self) -> Result<(), EngineError> {
        match tokio::fs::remove_file(&self.path).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(self.fail()(err)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_state_survives_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = ResumeFile::new(dir.path(), "vm");
        assert_eq!(file.load().await.unwrap(), None);
        let mut state = ResumeState {
            vm_uuid: "vm".into(),
            snapshot_uuid: "snap".into(),
            ..ResumeState::default()
        };
        let id = ChunkId([7; 32]);
        state.add("Ref:1", &[(3, Some(id)), (4, None)]);
        file.save(&state).await.unwrap();
        let loaded = file.load().await.unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.stored_chunks("Ref:1").get(&3), Some(&Some(id)));
        assert_eq!(loaded.stored_chunks("Ref:1").get(&4), Some(&None));
        file.remove().await.unwrap();
        assert_eq!(file.load().await.unwrap(), None);
        tokio::fs::write(dir.path().join("vm.json"), b"{")
            .await
            .unwrap();
        assert_eq!(file.load().await.unwrap(), None, "damaged state ignored");
    }
}
