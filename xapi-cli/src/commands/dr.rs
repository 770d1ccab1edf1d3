//! `xapictl dr inspect`: what a recovery from a metadata VDI image or database dump would bring
//! back, read offline (no pool needed) — or first downloaded from a URL on a pool (e.g. the
//! metadata VDI through `/export_raw_vdi`), then read the same way.

use std::path::Path;

use clap::Args;
use xapi_dr::metadata::InspectReport;

use crate::connect::Connection;
use crate::exit::{Failure, explain};
use crate::output::{human_bytes, print_json, print_table};

/// Options of `xapictl dr inspect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    /// A metadata VDI image (`dd` of the VDI, or `/export_raw_vdi?format=raw`), an XML database
    /// dump (`/pool/xmldbdump`, `xe pool-dump-database`) or a gzipped `state.db`; or a URL on a
    /// pool that serves one, fetched with the connection's credentials, e.g.
    /// https://HOST/export_raw_vdi?vdi=UUID&format=raw or https://HOST/pool/xmldbdump.
    #[arg(value_name = "IMAGE|URL")]
    image: String,
}

/// Read the image (downloaded first when it is a URL) and summarise it.
pub(crate) async fn inspect(
    args: &InspectArgs,
    connection: &Connection,
) -> Result<InspectReport, Failure> {
    if !(args.image.starts_with("https://") || args.image.starts_with("http://")) {
        return inspect_file(Path::new(&args.image), &args.image);
    }
    let (base, path, query) = split_url(&args.image)?;
    let session = connection.with_url(&base).login().await?;
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let download = session
        .get(&path, &query, None)
        .await
        .map_err(|e| explain(&base, &e))?;
    let spool = tempfile::NamedTempFile::new()
        .map_err(|e| Failure::failed(format!("a temporary file: {e}")))?;
    let mut file = tokio::fs::File::create(spool.path())
        .await
        .map_err(|e| Failure::failed(format!("a temporary file: {e}")))?;
    let mut body = download.into_async_read();
    tokio::io::copy(&mut body, &mut file)
        .await
        .map_err(|e| Failure::failed(format!("{}: reading the download: {e}", args.image)))?;
    drop(file);
    let _ = session.logout().await;
    inspect_file(spool.path(), &args.image)
}

fn inspect_file(path: &Path, shown: &str) -> Result<InspectReport, Failure> {
    xapi_dr::metadata::inspect(path).map_err(|err| Failure::failed(format!("{shown}: {err}")))
}

/// The decoded `name=value` pairs of a URL's query.
type Query = Vec<(String, String)>;

/// `scheme://host[:port]`, the path, and the decoded query pairs of a URL.
fn split_url(url: &str) -> Result<(String, String, Query), Failure> {
    let (scheme, rest) = url.split_once("://").expect("checked by the caller");
    let (authority, path_and_query) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    if authority.is_empty() {
        return Err(Failure::usage(format!("{url}: no host in the URL")));
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k, url)?, decode(v, url)?))
        })
        .collect::<Result<_, Failure>>()?;
    Ok((format!("{scheme}://{authority}"), path.to_owned(), pairs))
}

/// Percent-decoding of one query component.
fn decode(text: &str, url: &str) -> Result<String, Failure> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Failure::usage(format!("{url}: a bad %-escape in the query")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Failure::usage(format!("{url}: the query is not UTF-8")))
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

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn a_url_splits_into_host_path_and_decoded_query() {
        let (base, path, query) =
            split_url("https://10.0.0.1:443/export_raw_vdi?vdi=ab%2Dcd&format=raw").unwrap();
        assert_eq!(base, "https://10.0.0.1:443");
        assert_eq!(path, "/export_raw_vdi");
        assert_eq!(
            query,
            vec![
                ("vdi".to_owned(), "ab-cd".to_owned()),
                ("format".to_owned(), "raw".to_owned())
            ]
        );
        let (base, path, query) = split_url("http://host").unwrap();
        assert_eq!((base.as_str(), path.as_str()), ("http://host", "/"));
        assert!(query.is_empty());
        assert!(split_url("https:///x").is_err());
        assert!(split_url("https://h/x?a=%zz").is_err());
    }
}
