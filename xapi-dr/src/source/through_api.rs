//! One metadata copy read through the API of the pool that sees its VDI: the generation from
//! the VDI's framing, the records from `VDI.open_database`'s read-only session, checked to be
//! of the same database, into the same [`InspectReport`](crate::metadata::InspectReport) as an
//! offline read.

use xapi_core::api::{Vdi, VdiType};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use super::raw_generation::read_generation;
use super::records::read_pool_views;
use super::{ForeignDatabase, MetadataCopy, Origin, SourceError};
use crate::Error;
use crate::metadata::{PoolViews, RedoLogGeneration, Source, summarise};

/// How many times a copy is read before [`SourceError::ChangedWhileReading`] is returned.
pub const READ_ATTEMPTS: usize = 3;

/// Whether two scans of a VDI's framing describe the same database.
fn same_database(before: &RedoLogGeneration, after: &RedoLogGeneration) -> bool {
    before.validity == after.validity
        && before.marker == after.marker
        && before.record_generation == after.record_generation
        && before.final_generation == after.final_generation
        && before.deltas_applied + before.deltas_skipped
            == after.deltas_applied + after.deltas_skipped
}

/// Opens the database on `vdi`, reads it in bulk and logs the read-only session out, also
/// when a read fails.
async fn read_foreign(
    session: &SessionHandle,
    vdi: &Ref<Vdi>,
    framing: &RedoLogGeneration,
) -> Result<PoolViews, Error> {
    let foreign = ForeignDatabase::open(session, vdi).await?;
    // nine bulk reads joined: a large future, kept on the heap
    let views = Box::pin(read_pool_views(foreign.session(), framing)).await;
    let closed = foreign.close().await;
    let views = views?;
    closed?;
    Ok(views)
}

impl MetadataCopy {
    /// Reads the metadata VDI `vdi` through the pool `session` is logged in to (pool-operator
    /// role or higher): its generation from its redo-log framing
    /// (`/export_raw_vdi?format=raw`, streamed, a few bytes past the valid half's last delta),
    /// its objects through `VDI.open_database` (one `get_all_records` per class, the read-only
    /// session logged out afterwards, also on error). The framing is read again after the
    /// records; if the database moved in between (its pool is alive and replicating), the
    /// read is repeated, up to [`READ_ATTEMPTS`] times.
    ///
    /// The report equals the one [`MetadataCopy::from_bytes`] gives for the VDI's bytes, but
    /// for its `source` ([`Source::ForeignDatabase`]) and diagnostics (no other-half summary).
    ///
    /// Dropping the future while the foreign database is open leaves its read-only session to
    /// expire on the pool.
    pub async fn from_vdi(session: &SessionHandle, vdi: &Ref<Vdi>) -> Result<Self, Error> {
        let record = session.vdi().get_record(vdi).await?;
        let vdi_uuid = (*record.uuid).to_owned();
        if record.r#type != VdiType::Metadata {
            return Err(SourceError::NotMetadata {
                vdi_uuid,
                vdi_type: record.r#type.to_string(),
            }
            .into());
        }
        let sr_uuid = session.sr().get_uuid(&record.sr).await?.into_string();
        let mut before = read_generation(session, vdi, &vdi_uuid).await?;
        let mut bytes_read = before.bytes_read;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let views = read_foreign(session, vdi, &before).await?;
            let after = read_generation(session, vdi, &vdi_uuid).await?;
            bytes_read += after.bytes_read;
            if same_database(&before, &after) {
                let source = Source::ForeignDatabase {
                    vdi_uuid: vdi_uuid.clone(),
                    sr_uuid: sr_uuid.clone(),
                    validity: after.validity,
                    marker: after.marker,
                    record_generation: after.record_generation,
                    deltas_applied: after.deltas_applied,
                    deltas_skipped: after.deltas_skipped,
                    raw_bytes_read: bytes_read,
                };
                return Ok(MetadataCopy {
                    origin: Origin::Vdi { vdi_uuid, sr_uuid },
                    metadata: summarise(views, source, after.diagnostics),
                });
            }
            if attempts == READ_ATTEMPTS {
                return Err(SourceError::ChangedWhileReading {
                    vdi_uuid,
                    before: before.final_generation,
                    after: after.final_generation,
                    attempts,
                }
                .into());
            }
            // the pool wrote to the VDI meanwhile: read again against the newer framing
            before = after;
        }
    }
}
