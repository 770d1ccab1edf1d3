//! Networks: the target's networks noted before the first recovery (to know which ones the
//! import creates), the test's isolated network, and recovered VIFs moved where the plan puts
//! them (a network map, or the isolated network). xapi's import matches networks itself (by
//! name, then bridge, else it creates one); a VIF is only moved when the plan wants it
//! elsewhere.

use std::collections::{BTreeSet, HashMap};

use xapi_core::api::{Network, NetworkRecord};
use xapi_core::wire::{Ref, SmallMap};

use super::{Run, RunError};
use crate::plan::NetworkTarget;

/// `other_config` key marking the network a test failover creates.
pub const ISOLATED_NETWORK_KEY: &str = "xapi-dr-isolated-test-network";

impl Run {
    /// Notes the target's networks before the first run changes anything, and creates the
    /// isolated network of a test.
    pub(super) async fn note_networks_before(&mut self) -> Result<(), RunError> {
        let session = self.session.clone();
        if self.journal.networks_before.is_empty() {
            let networks = self
                .recorder
                .call(
                    "network.get_all_records",
                    "pool",
                    session.network().get_all_records(),
                )
                .await?;
            self.journal.networks_before =
                networks.values().map(|n| (*n.uuid).to_owned()).collect();
            self.save()?;
        }
        let isolated = self
            .plan
            .networks
            .iter()
            .any(|m| m.target == NetworkTarget::Isolated);
        if isolated && self.journal.isolated_network.is_none() {
            let mut other_config = SmallMap::new();
            other_config.insert(ISOLATED_NETWORK_KEY.into(), "true".into());
            let record = NetworkRecord {
                name_label: "xapi-dr test failover (isolated)".into(),
                name_description: "Created by a test failover so that recovered VMs cannot reach production; removed by its clean-up".into(),
                mtu: 1500,
                other_config,
                ..NetworkRecord::default()
            };
            let network = self
                .recorder
                .call(
                    "network.create",
                    "isolated",
                    session.network().create(&record),
                )
                .await?;
            let uuid = self
                .recorder
                .call(
                    "network.get_uuid",
                    "isolated",
                    session.network().get_uuid(&network),
                )
                .await?;
            self.journal.isolated_network = Some((*uuid).to_owned());
            self.save()?;
        }
        Ok(())
    }

    /// Moves recovered VIFs to the network the plan chose when the import put them elsewhere,
    /// and notes the networks the import created.
    pub(super) async fn place_vifs(&mut self) -> Result<(), RunError> {
        let session = self.session.clone();
        let networks = self
            .recorder
            .call(
                "network.get_all_records",
                "pool",
                session.network().get_all_records(),
            )
            .await?;
        let isolated = self.journal.isolated_network.clone();
        let created: Vec<String> = networks
            .values()
            .map(|n| (*n.uuid).to_owned())
            .filter(|uuid| {
                !self.journal.networks_before.contains(uuid) && isolated.as_ref() != Some(uuid)
            })
            .collect();
        for uuid in created {
            if !self.journal.created_networks.contains(&uuid) {
                self.journal.created_networks.push(uuid);
            }
        }
        self.save()?;
        // source network UUID -> where the plan wants its VIFs, when that is not the import's
        // own matching
        let mut wanted: HashMap<&str, String> = HashMap::new();
        for mapping in &self.plan.networks {
            let target = match &mapping.target {
                NetworkTarget::Existing { uuid, .. } => uuid.clone(),
                NetworkTarget::Isolated => match &isolated {
                    Some(uuid) => uuid.clone(),
                    None => continue,
                },
                NetworkTarget::Created => continue,
            };
            wanted.insert(mapping.source.uuid.as_str(), target);
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let network_by_uuid: HashMap<String, Ref<Network>> = networks
            .iter()
            .map(|(r, n)| ((*n.uuid).to_owned(), r.clone()))
            .collect();
        let network_uuid: HashMap<&Ref<Network>, &str> =
            networks.iter().map(|(r, n)| (r, &*n.uuid)).collect();
        // (recovered VM UUID, VIF device) -> source network
        let recovered: BTreeSet<&str> = self
            .journal
            .recovered_vms
            .iter()
            .map(String::as_str)
            .collect();
        let mut source_network: HashMap<(&str, &str), &str> = HashMap::new();
        for vm in &self.plan.vms {
            if recovered.contains(vm.uuid.as_str()) {
                for (device, network) in &vm.vif_networks {
                    source_network.insert((vm.uuid.as_str(), device.as_str()), network.as_str());
                }
            }
        }
        let vms = self
            .recorder
            .call("VM.get_all_records", "pool", session.vm().get_all_records())
            .await?;
        let vifs = self
            .recorder
            .call(
                "VIF.get_all_records",
                "pool",
                session.vif().get_all_records(),
            )
            .await?;
        let mut moves = Vec::new();
        for vm in vms.values() {
            if vm.is_a_snapshot || !recovered.contains(&*vm.uuid) {
                continue;
            }
            for vif_ref in &vm.vifs {
                let Some(vif) = vifs.get(vif_ref) else {
                    continue;
                };
                if self.journal.moved_vifs.contains(&*vif.uuid) {
                    continue;
                }
                let Some(source) = source_network.get(&(&*vm.uuid, &*vif.device)) else {
                    continue;
                };
                let Some(target) = wanted.get(source) else {
                    continue;
                };
                if network_uuid.get(&vif.network) == Some(&target.as_str()) {
                    continue;
                }
                if let Some(network) = network_by_uuid.get(target) {
                    moves.push((vif_ref.clone(), (*vif.uuid).to_owned(), network.clone()));
                }
            }
        }
        for (vif, uuid, network) in moves {
            self.recorder
                .call("VIF.move", &uuid, session.vif().r#move(&vif, &network))
                .await?;
            self.journal.moved_vifs.insert(uuid);
            self.save()?;
        }
        Ok(())
    }
}
