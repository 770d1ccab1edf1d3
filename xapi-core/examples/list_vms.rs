//! List the VMs of a pool with their power state, vApp, and disks with their SRs.
//!
//! ```sh
//! # against the simulator (prints its address):  xapi-sim --listen 127.0.0.1:0 --scenario demo
//! XAPI_URL=http://127.0.0.1:PORT XAPI_PASSWORD=xapi-sim cargo run -p xapi-core --example list_vms
//! # against a real host, pinned to its certificate fingerprint:
//! XAPI_URL=https://10.0.0.1 XAPI_PASSWORD=... XAPI_FINGERPRINT=sha256:AB:CD:... \
//!     cargo run -p xapi-core --example list_vms
//! ```
//!
//! Environment: `XAPI_URL` (default `http://127.0.0.1:8080`), `XAPI_USER` (default `root`),
//! `XAPI_PASSWORD` (default `xapi-sim`, the simulator's), `XAPI_FINGERPRINT` (optional SHA-256 pin).

use std::collections::HashMap;

use xapi_core::api::{SrRecord, VbdRecord, VbdType, VdiRecord, VmApplianceRecord, VmRecord};
use xapi_core::client::{Client, Password, TlsPolicy};
use xapi_core::wire::Ref;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = env_or("XAPI_URL", "http://127.0.0.1:8080");
    let user = env_or("XAPI_USER", "root");
    let password = Password::new(env_or("XAPI_PASSWORD", "xapi-sim"));

    let mut builder = Client::builder(&url);
    if let Ok(pin) = std::env::var("XAPI_FINGERPRINT") {
        builder = builder.tls(TlsPolicy::Pinned(pin.parse()?));
    }
    let client = builder.build()?;
    let session = client
        .login_with_password(&user, password, "1.0", "xapi-rs list_vms example")
        .await?;

    // Four bulk reads instead of one call per VM: this is what scales to thousands of VMs.
    let vms = session.vm().get_all_records().await?;
    let appliances = session.vm_appliance().get_all_records().await?;
    let vbds = session.vbd().get_all_records().await?;
    let vdis = session.vdi().get_all_records().await?;
    let srs = session.sr().get_all_records().await?;

    let mut listed: Vec<&VmRecord> = vms
        .values()
        .filter(|vm| !vm.is_a_template && !vm.is_control_domain && !vm.is_a_snapshot)
        .collect();
    listed.sort_by(|a, b| a.name_label.cmp(&b.name_label));

    for vm in listed {
        println!(
            "{}  {:<10} vApp: {}",
            vm.name_label,
            vm.power_state.as_str(),
            appliance_name(&appliances, &vm.appliance)
        );
        for vbd_ref in &vm.vbds {
            let Some(vbd) = vbds.get(vbd_ref) else {
                continue;
            };
            println!("    {}", describe_disk(vbd, &vdis, &srs));
        }
    }

    session.logout().await?;
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn appliance_name(
    appliances: &HashMap<Ref<xapi_core::api::VmAppliance>, VmApplianceRecord>,
    appliance: &Ref<xapi_core::api::VmAppliance>,
) -> String {
    if appliance.is_null() {
        return "-".to_owned();
    }
    appliances
        .get(appliance)
        .map_or_else(|| appliance.to_string(), |a| a.name_label.to_string())
}

fn describe_disk(
    vbd: &VbdRecord,
    vdis: &HashMap<Ref<xapi_core::api::Vdi>, VdiRecord>,
    srs: &HashMap<Ref<xapi_core::api::Sr>, SrRecord>,
) -> String {
    let kind = if vbd.r#type == VbdType::Cd {
        "cd  "
    } else {
        "disk"
    };
    if vbd.empty || vbd.vdi.is_null() {
        return format!("{kind} {:<6} (empty)", vbd.device);
    }
    match vdis.get(&vbd.vdi) {
        Some(vdi) => {
            let sr = srs.get(&vdi.sr).map_or("?", |sr| sr.name_label.as_str());
            format!(
                "{kind} {:<6} {} ({}) on SR {sr}",
                vbd.device,
                vdi.name_label,
                human_size(vdi.virtual_size)
            )
        }
        None => format!("{kind} {:<6} {} (not visible)", vbd.device, vbd.vdi),
    }
}

fn human_size(bytes: i64) -> String {
    const MIB: i64 = 1 << 20;
    const GIB: i64 = 1 << 30;
    if bytes >= GIB {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}
