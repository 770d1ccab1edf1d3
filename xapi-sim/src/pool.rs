//! One simulated pool: its database, its credentials and the shared clock and faults.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

use tokio::task::AbortHandle;
use xapi_core::api::meta::ClassMeta;

use crate::cbt::Cbt;
use crate::clock::SimClock;
use crate::faults::Faults;
use crate::model::store::Db;
use crate::rpc::dr_storage::Mirror;
use crate::server::reachability::Reachability;
use crate::storage::Storage;

/// The state of one pool, shared by its HTTP server and its running tasks. Its `Debug` leaves
/// the password and the database (sessions included) out.
pub(crate) struct Pool {
    /// The pool's name (`primary`, `dr`, `sim`).
    pub(crate) name: String,
    /// The classes the pool models.
    pub(crate) classes: &'static [ClassMeta],
    db: Mutex<Db>,
    /// The password `root` logs in with.
    pub(crate) password: String,
    /// The simulated clock.
    pub(crate) clock: SimClock,
    /// The switchable faults.
    pub(crate) faults: Faults,
    /// The disk images.
    pub(crate) storage: Storage,
    /// Changed-block tracking of the pool's disks.
    pub(crate) cbt: Mutex<Cbt>,
    /// The NBD servers of the pool's hosts (the master's and each member's), by host reference:
    /// what `VDI.get_nbd_info` lists.
    nbd_servers: Mutex<BTreeMap<String, NbdServer>>,
    /// Foreign databases opened with `VDI.open_database`, by the read-only session bound to them.
    foreign: Mutex<HashMap<String, Arc<Pool>>>,
    /// The metadata VDIs of other pools read so far, by VDI reference (`metadata_cache`).
    metadata_vdi_cache: Mutex<HashMap<String, crate::rpc::metadata_cache::CachedDatabase>>,
    /// Storage mirrors this pool can reach (the recovery site of the demo).
    mirrors: Mutex<Vec<Mirror>>,
    /// Running Async tasks, by task reference, so that `task.cancel` can stop them.
    pub(crate) running: Mutex<HashMap<String, AbortHandle>>,
    /// Legacy `event.register` subscriptions, by session.
    pub(crate) legacy_events: Mutex<HashMap<String, LegacyRegistration>>,
    /// Whether the pool answers connections (a lost site does not).
    pub(crate) reachability: Reachability,
}

/// A session's legacy event registration (`event.register` / `event.next`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LegacyRegistration {
    /// The subscribed classes as given (`*`, `vm`, ...).
    pub(crate) classes: Vec<String>,
    /// The database generation up to which events were delivered.
    pub(crate) delivered: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("password", &crate::sim::Redacted)
            .field("clock", &self.clock)
            .field("faults", &self.faults)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool with an empty database.
    pub(crate) fn new(
        name: &str,
        classes: &'static [ClassMeta],
        password: &str,
        clock: SimClock,
        faults: Faults,
        storage: Storage,
    ) -> Self {
        Self {
            name: name.to_owned(),
            classes,
            db: Mutex::new(Db::new(classes, name)),
            password: password.to_owned(),
            clock,
            faults,
            storage,
            cbt: Mutex::new(Cbt::default()),
            nbd_servers: Mutex::new(BTreeMap::new()),
            foreign: Mutex::new(HashMap::new()),
            mirrors: Mutex::new(Vec::new()),
            metadata_vdi_cache: Mutex::new(HashMap::new()),
            legacy_events: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            reachability: Reachability::default(),
        }
    }

    /// The database, locked. Hold it only for short, non-async work.
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replace the whole database (a saved one loaded at start-up).
    pub(crate) fn replace_db(&self, db: Db) {
        *self.db() = db;
    }

    /// The foreign database a read-only session is bound to.
    pub(crate) fn foreign(&self, session: &str) -> Option<Arc<Pool>> {
        self.foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(session)
            .cloned()
    }

    /// Bind a read-only session to a foreign database.
    pub(crate) fn add_foreign(&self, session: &str, database: Arc<Pool>) {
        self.foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(session.to_owned(), database);
    }

    /// Forget a foreign session (logout).
    pub(crate) fn remove_foreign(&self, session: &str) {
        self.foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(session);
    }

    /// The storage mirrors this pool can reach.
    pub(crate) fn mirrors(&self) -> Vec<Mirror> {
        self.mirrors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Make a mirror reachable from this pool.
    pub(crate) fn add_mirror(&self, mirror: Mirror) {
        self.mirrors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(mirror);
    }

    /// The CBT state, locked.
    pub(crate) fn cbt(&self) -> MutexGuard<'_, Cbt> {
        self.cbt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes of a disk image were written (for changed-block tracking).
    pub(crate) fn note_write(&self, uuid: &str, offset: u64, length: u64) {
        self.cbt().note_write(uuid, offset, length);
    }

    /// Record the NBD server `host` runs.
    pub(crate) fn add_nbd_server(&self, host: &str, server: NbdServer) {
        self.nbd_servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_owned(), server);
    }

    /// The NBD server of `host`, if it runs one.
    pub(crate) fn nbd_server(&self, host: &str) -> Option<NbdServer> {
        self.nbd_servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    /// The cache of other pools' metadata VDIs, locked (see `rpc::metadata_cache`).
    pub(crate) fn metadata_vdi_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, crate::rpc::metadata_cache::CachedDatabase>>
    {
        self.metadata_vdi_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `SR_BACKEND_FAILURE_44` when the "SR full" fault is on for this SR.
    pub(crate) fn assert_sr_has_space(
        &self,
        db: &Db,
        sr: &str,
    ) -> Result<(), xapi_core::wire::Failure> {
        let uuid = db.str_field("SR", sr, "uuid").unwrap_or_default();
        if self.faults.is_sr_full(&uuid) {
            return Err(crate::api_error::failure(
                crate::api_error::sr_backend_failure_code(44),
                ["", "There is insufficient space", ""],
            ));
        }
        Ok(())
    }

    /// The running-task table, locked.
    pub(crate) fn running(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The class with this exact datamodel name.
    pub(crate) fn class(&self, name: &str) -> Option<&'static ClassMeta> {
        self.classes.iter().find(|c| c.name == name)
    }
}

/// Where one host serves NBD and the certificate it presents after `NBD_OPT_STARTTLS`.
#[derive(Debug, Clone)]
pub(crate) struct NbdServer {
    /// The listening address.
    pub(crate) addr: SocketAddr,
    /// The host's certificate, PEM.
    pub(crate) cert_pem: String,
    /// The name the certificate is issued to (`subject` in `VDI.get_nbd_info`).
    pub(crate) subject: String,
}
