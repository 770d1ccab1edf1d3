//! Finding pool objects from what people type: a UUID or a name.

use xapi_core::api::Sr;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::exit::{Failure, explain};

/// The SR with this UUID, or the one SR with this name.
pub(crate) async fn sr(session: &SessionHandle, url: &str, text: &str) -> Result<Ref<Sr>, Failure> {
    if let Ok(sr) = session.sr().get_by_uuid(text).await {
        return Ok(sr);
    }
    let named = session
        .sr()
        .get_by_name_label(text)
        .await
        .map_err(|e| explain(url, &e))?;
    match named.as_slice() {
        [sr] => Ok(sr.clone()),
        [] => Err(Failure::usage(format!(
            "no SR with the UUID or name {text:?} in the pool (see `xapictl pool info`)"
        ))),
        more => Err(Failure::usage(format!(
            "{} SRs are called {text:?}: give the UUID",
            more.len()
        ))),
    }
}
