//! Where a backup reads from: the pool and its master, recorded in every restore point this
//! engine writes.

use xapi_core::api::Host;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::engine_error::{EngineError, xapi};
use crate::repo::SourceInfo;

/// The session's pool and its master, the host that serves the session's data plane.
pub(crate) async fn pool_source(
    session: &SessionHandle,
) -> Result<(SourceInfo, Ref<Host>), EngineError> {
    let pools = session
        .pool()
        .get_all()
        .await
        .map_err(xapi("pool.get_all"))?;
    let pool = pools
        .first()
        .ok_or_else(|| EngineError::Unexpected("the pool has no pool object".into()))?;
    let master = session
        .pool()
        .get_master(pool)
        .await
        .map_err(xapi("pool.get_master"))?;
    let source = SourceInfo {
        pool_uuid: Some(
            session
                .pool()
                .get_uuid(pool)
                .await
                .map_err(xapi("pool.get_uuid"))?
                .into(),
        ),
        pool_name: Some(
            session
                .pool()
                .get_name_label(pool)
                .await
                .map_err(xapi("pool.get_name_label"))?
                .into(),
        ),
        host_uuid: Some(
            session
                .host()
                .get_uuid(&master)
                .await
                .map_err(xapi("host.get_uuid"))?
                .into(),
        ),
        host_name: Some(
            session
                .host()
                .get_name_label(&master)
                .await
                .map_err(xapi("host.get_name_label"))?
                .into(),
        ),
    };
    Ok((source, master))
}
