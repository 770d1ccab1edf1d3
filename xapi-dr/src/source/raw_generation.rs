//! The generation of a metadata VDI's database, read from its bytes through the data plane:
//! the API does not expose a foreign database's generation (xapi computes it on replay and
//! keeps it in its cache, reference §5.2, §10.1), so the redo log's framing is scanned from
//! `GET /export_raw_vdi?format=raw`, streaming, and the connection is dropped once the valid
//! half's delta list ends.

use futures::StreamExt as _;
use xapi_core::api::Vdi;
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use super::SourceError;
use crate::Error;
use crate::metadata::{GenerationScan, RedoLogGeneration};

/// Reads the framing of the redo log on `vdi` (UUID `vdi_uuid`, for errors) and returns the
/// generation its replay reaches. Memory: one body chunk at a time; bytes read: up to the end
/// of the valid half's delta list (plus at most one chunk), never the rest of the VDI.
pub async fn read_generation(
    session: &SessionHandle,
    vdi: &Ref<Vdi>,
    vdi_uuid: &str,
) -> Result<RedoLogGeneration, Error> {
    let download = session
        .get(
            "/export_raw_vdi",
            &[("vdi", vdi.as_str()), ("format", "raw")],
            None,
        )
        .await?;
    let raw = |source| SourceError::RawVdi {
        vdi_uuid: vdi_uuid.to_owned(),
        source: Box::new(source),
    };
    let mut body = download.into_stream();
    let mut scan = GenerationScan::new();
    while !scan.is_done() {
        let Some(chunk) = body.next().await else {
            break;
        };
        scan.feed(&chunk?).map_err(raw)?;
    }
    // dropping the body closes the connection: the rest of the VDI is never sent for
    drop(body);
    Ok(scan.finish().map_err(raw)?)
}
