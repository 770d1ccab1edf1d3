//! A session on a foreign pool database: `VDI.open_database` replays a metadata VDI and
//! returns a read-only session bound to that database. Getters called with it read the
//! foreign pool's objects, and the recovery calls (`VM.recover`, ...) take it as their first
//! session and a session of the pool to recover into as `session_to` (reference §7, §9.2).

use xapi_core::api::{Session, Vdi};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::Error;

/// An open foreign database. Log it out with [`ForeignDatabase::close`]: xapi keeps a foreign
/// database in memory until its session ends, and dropping this value does not end it.
#[derive(Clone)]
pub struct ForeignDatabase {
    vdi: Ref<Vdi>,
    session: SessionHandle,
}

impl std::fmt::Debug for ForeignDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the session reference is a credential: never shown
        f.debug_struct("ForeignDatabase")
            .field("vdi", &self.vdi)
            .finish_non_exhaustive()
    }
}

impl ForeignDatabase {
    /// Opens the database held by the metadata VDI `vdi` of the pool `session` is logged in
    /// to (`VDI.open_database`; pool-operator role or higher).
    pub async fn open(session: &SessionHandle, vdi: &Ref<Vdi>) -> Result<Self, Error> {
        let reference: Ref<Session> = session.vdi().open_database(vdi).await?;
        Ok(Self::attach(session, vdi.clone(), reference))
    }

    /// The database behind `reference`, the session a `VDI.open_database` of `vdi` returned
    /// (for callers that make that call themselves, to record it).
    pub(crate) fn attach(session: &SessionHandle, vdi: Ref<Vdi>, reference: Ref<Session>) -> Self {
        Self {
            vdi,
            session: session.client().attach_session(reference),
        }
    }

    /// The metadata VDI this database was read from.
    pub fn vdi(&self) -> &Ref<Vdi> {
        &self.vdi
    }

    /// The read-only session bound to the foreign database.
    pub fn session(&self) -> &SessionHandle {
        &self.session
    }

    /// Logs the read-only session out.
    pub async fn close(self) -> Result<(), Error> {
        self.session.logout().await?;
        Ok(())
    }
}
