//! `xapictl dr inspect`: what a recovery from a metadata VDI image or database dump would bring
//! back, read offline (no pool needed).

use std::path::PathBuf;

use clap::Args;
use xapi_dr::metadata::InspectReport;

use crate::exit::Failure;
use crate::output::{human_bytes, print_json, print_table};

/// Options of `xapictl dr inspect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    /// A metadata VDI image (`dd` of the VDI, or `/export_raw_vdi?format=raw`), an XML database
    /// dump (`/pool/xmldbdump`, `xe pool-dump-database`) or a gzipped `state.db`.
    image: PathBuf,
}

/// Read the image and summarise it.
pub(crate) fn inspect(args: &InspectArgs) -> Result<InspectReport, Failure> {
    xapi_dr::metadata::inspect(&args.image)
        .map_err(|err| Failure::failed(format!("{}: {err}", args.image.display())))
}

/// Print the summary as text or JSON.
pub(crate) fn print(report: &InspectReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    println!(
        "pool {} ({}), database generation {}, schema {}",
        if report.pool.name_label.is_empty() {
            &report.pool.master_name
        } else {
            &report.pool.name_label
        },
        report.pool.uuid,
        report.generation,
        report.schema_version
    );
    println!(
        "{} VMs, {} vApps, {} SRs ({} templates, snapshots and control domains left out)",
        report.vms.len(),
        report.vapps.len(),
        report.srs.len(),
        report.other_vm_rows
    );
    println!();
    let vms: Vec<Vec<String>> = report
        .vms
        .iter()
        .map(|vm| {
            let vapp = vm
                .vapp
                .as_ref()
                .and_then(|uuid| report.vapps.iter().find(|a| &a.uuid == uuid))
                .map_or_else(|| "-".to_owned(), |a| a.name_label.clone());
            vec![
                vm.name_label.clone(),
                vm.power_state.to_string(),
                vapp,
                vm.order.to_string(),
                format!("{} s", vm.start_delay),
                vm.version.to_string(),
                human_bytes(vm.disks.iter().map(|d| d.virtual_size).sum()),
                vm.uuid.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "VM", "POWER", "VAPP", "ORDER", "DELAY", "VERSION", "DISKS", "UUID",
        ],
        &vms,
    );
    println!();
    let srs: Vec<Vec<String>> = report
        .srs
        .iter()
        .map(|sr| {
            vec![
                sr.name_label.clone(),
                sr.sr_type.clone(),
                if sr.shared { "shared" } else { "local" }.into(),
                if sr.required { "yes" } else { "-" }.into(),
                sr.uuid.clone(),
            ]
        })
        .collect();
    print_table(&["SR", "TYPE", "SHARING", "NEEDED", "UUID"], &srs);
    for diagnostic in &report.diagnostics {
        let text = serde_json::to_string(diagnostic).expect("a diagnostic is plain data");
        eprintln!("note: {text}");
    }
}
