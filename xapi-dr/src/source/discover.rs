//! Finding the metadata VDIs a recovery pool already sees (reference §12.2 step 3): VDIs of
//! type `metadata` on attached, shared, non-ISO SRs, less the ones in use (a live pool's own
//! redo log) and, unless asked, the pool's own.

use std::collections::HashSet;

use serde::Serialize;
use xapi_core::api::{Pool, Sr, Vdi, VdiType};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::Error;

/// What [`discover`] keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// Keep only VDIs with `metadata_latest` (XenCenter's filter). Off by default: the
    /// generations decide later, with a reason ([`crate::reconcile`]).
    pub latest_only: bool,
    /// Keep the metadata VDIs of the pool itself (`metadata_of_pool` is this pool).
    pub include_own_pool: bool,
}

/// A metadata VDI the pool sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundVdi {
    /// The VDI (pass it to [`MetadataCopy::from_vdi`](super::MetadataCopy::from_vdi)).
    pub vdi: Ref<Vdi>,
    /// Its UUID.
    pub vdi_uuid: String,
    /// The SR holding it.
    pub sr: Ref<Sr>,
    /// The SR's UUID.
    pub sr_uuid: String,
    /// The SR's name.
    pub sr_name_label: String,
    /// Whether xapi holds it for the newest copy of its pool's database
    /// (`VDI.metadata_latest`).
    pub metadata_latest: bool,
    /// The UUID of the pool whose database it holds, as xapi cached it
    /// (`VDI.read_database_pool_uuid`); empty when xapi could not open it.
    pub pool_uuid: String,
}

/// The metadata VDIs on the SRs the pool of `session` has attached (shared, not ISO, not the
/// tools SR), skipping any with a currently attached VBD (a live pool's redo log) and, unless
/// [`DiscoverOptions::include_own_pool`], the pool's own; by SR name, then VDI UUID.
///
/// Reads SRs, PBDs, VDIs and VBDs in bulk, then one `VDI.read_database_pool_uuid` per VDI kept.
pub async fn discover(
    session: &SessionHandle,
    options: &DiscoverOptions,
) -> Result<Vec<FoundVdi>, Error> {
    let this_pool: Ref<Pool> = session
        .pool()
        .get_all()
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(Ref::null);
    let srs = session.sr().get_all_records().await?;
    let pbds = session.pbd().get_all_records().await?;
    let vdis = session.vdi().get_all_records().await?;
    let vbds = session.vbd().get_all_records().await?;
    let attached: HashSet<&Ref<Sr>> = pbds
        .values()
        .filter(|pbd| pbd.currently_attached)
        .map(|pbd| &pbd.sr)
        .collect();
    let mut found = Vec::new();
    for (reference, vdi) in &vdis {
        if vdi.r#type != VdiType::Metadata {
            continue;
        }
        let Some(sr) = srs.get(&vdi.sr) else {
            continue;
        };
        let offered = sr.shared
            && !sr.is_tools_sr
            && &*sr.content_type != "iso"
            && &*sr.r#type != "iso"
            && attached.contains(&vdi.sr);
        let in_use = vdi
            .vbds
            .iter()
            .any(|vbd| vbds.get(vbd).is_some_and(|v| v.currently_attached));
        let own = vdi.metadata_of_pool == this_pool;
        if !offered
            || in_use
            || (own && !options.include_own_pool)
            || (options.latest_only && !vdi.metadata_latest)
        {
            continue;
        }
        let pool_uuid = session
            .vdi()
            .read_database_pool_uuid(reference)
            .await?
            .into_string();
        found.push(FoundVdi {
            vdi: reference.clone(),
            vdi_uuid: (*vdi.uuid).to_owned(),
            sr: vdi.sr.clone(),
            sr_uuid: (*sr.uuid).to_owned(),
            sr_name_label: (*sr.name_label).to_owned(),
            metadata_latest: vdi.metadata_latest,
            pool_uuid,
        });
    }
    found.sort_by(|a, b| {
        a.sr_name_label
            .cmp(&b.sr_name_label)
            .then_with(|| a.vdi_uuid.cmp(&b.vdi_uuid))
    });
    Ok(found)
}
