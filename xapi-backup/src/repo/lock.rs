//! The maintenance lock: an object under `locks/` that says who runs prune and until when. It
//! expires if its owner dies (stops renewing it); backups never take it.
//!
//! Taking it: remove expired locks; refuse if another live lock exists; write our own with a
//! conditional create; list again and back off if another live lock appeared meanwhile (two
//! racers both back off rather than both proceed).

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};

use super::error::RepoError;
use super::object::{self, ObjectKind};
use super::repository::Repository;

/// The content of a lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LockRecord {
    owner: String,
    pid: u32,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// A held maintenance lock. Renew it ([`MaintenanceLock::ensure_held`]) while working; release
/// it at the end. If the process dies the lock expires on its own.
#[derive(Debug)]
pub struct MaintenanceLock {
    repo: Repository,
    object: String,
    record: LockRecord,
    ttl: TimeDelta,
}

impl Repository {
    /// Takes the maintenance lock for `ttl` (renewable), or fails with [`RepoError::Locked`]
    /// naming the holder.
    pub async fn lock_maintenance(
        &self,
        owner: &str,
        ttl: TimeDelta,
    ) -> crate::Result<MaintenanceLock> {
        self.check_locks(None).await?;
        let now = self.clock().now();
        let object = format!(
            "locks/{}-{}",
            now.format("%Y%m%dT%H%M%SZ"),
            super::crypto::random_hex(8)
        );
        let record = LockRecord {
            owner: owner.to_owned(),
            pid: std::process::id(),
            acquired_at: now,
            expires_at: now + ttl,
        };
        let lock = MaintenanceLock {
            repo: self.clone(),
            object,
            record,
            ttl,
        };
        self.store().put_new(&lock.object, lock.encode()).await?;
        if let Err(err) = self.check_locks(Some(&lock.object)).await {
            self.store().delete(&lock.object).await?;
            return Err(err.into());
        }
        Ok(lock)
    }

    /// Fails with [`RepoError::Locked`] if a live lock other than `ours` exists; deletes expired
    /// ones.
    async fn check_locks(&self, ours: Option<&str>) -> Result<(), RepoError> {
        let names: Vec<String> = self
            .store()
            .list("locks")
            .map_ok(|info| info.name)
            .try_collect()
            .await?;
        let now = self.clock().now();
        for name in names {
            if Some(name.as_str()) == ours {
                continue;
            }
            let bytes = match self.store().get(&name).await {
                Ok(bytes) => bytes,
                Err(RepoError::NotFound { .. }) => continue,
                Err(err) => return Err(err),
            };
            let record = decode(&self.clone(), &name, &bytes)?;
            if record.expires_at <= now {
                tracing::info!(lock = %name, owner = %record.owner, "removing an expired maintenance lock");
                self.store().delete(&name).await?;
            } else {
                return Err(RepoError::Locked {
                    owner: format!("{} (pid {}, {name})", record.owner, record.pid),
                    expires_at: record.expires_at.to_rfc3339(),
                });
            }
        }
        Ok(())
    }
}

fn decode(repo: &Repository, name: &str, bytes: &[u8]) -> Result<LockRecord, RepoError> {
    let json = object::decode(ObjectKind::Lock, name, repo.sealer(), bytes, 64 * 1024)?;
    serde_json::from_slice(&json).map_err(|err| RepoError::CorruptObject {
        object: name.to_owned(),
        offset: 0,
        reason: format!("lock record: {err}"),
    })
}

impl MaintenanceLock {
    /// The lock object's name.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// When the lock expires unless renewed.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.record.expires_at
    }

    fn encode(&self) -> Bytes {
        let json = serde_json::to_vec(&self.record).expect("a lock record serializes");
        Bytes::from(object::encode(
            ObjectKind::Lock,
            &self.object,
            self.repo.sealer(),
            &json,
            None,
        ))
    }

    /// Fails with [`RepoError::LockLost`] if the lock expired or its object is gone; renews it
    /// once half its time has passed.
    pub async fn ensure_held(&mut self) -> crate::Result<()> {
        let now = self.repo.clock().now();
        let lost = || RepoError::LockLost {
            object: self.object.clone(),
        };
        if now >= self.record.expires_at || !self.repo.store().exists(&self.object).await? {
            return Err(lost().into());
        }
        if self.record.expires_at - now < self.ttl / 2 {
            self.record.expires_at = now + self.ttl;
            self.repo.store().put(&self.object, self.encode()).await?;
        }
        Ok(())
    }

    /// Releases the lock.
    pub async fn release(self) -> crate::Result<()> {
        Ok(self.repo.store().delete(&self.object).await?)
    }
}
