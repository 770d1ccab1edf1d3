//! Generates a large pool database, writes it as an XML dump, then parses it back in a fresh
//! process (so that generation does not count) and reports the time taken and that process's
//! peak memory (Linux `VmHWM`).
//!
//! `cargo run -p xapi-dr --features testing --example parse_big_db -- 10000`

use std::io::BufReader;
use std::time::Instant;

use xapi_dr::metadata::testing::{PoolShape, generate_pool};
use xapi_dr::metadata::{read_db_xml, write_db_xml};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--parse") {
        let path = args.next().ok_or("--parse needs a file")?;
        return parse(std::path::Path::new(&path));
    }
    let vms: usize = first.map_or(Ok(10_000), |a| a.parse())?;
    let dir = tempfile_dir()?;
    let path = dir.join(format!("pool-{vms}.xml"));
    {
        let db = generate_pool(PoolShape::with_vms(vms));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        write_db_xml(&db, &mut out)?;
    }
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--parse")
        .arg(&path)
        .status()?;
    std::fs::remove_file(&path)?;
    if !status.success() {
        return Err(format!("parser process failed: {status}").into());
    }
    Ok(())
}

fn parse(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let size = std::fs::metadata(path)?.len();
    let before = peak_rss_kib();
    let start = Instant::now();
    let db = read_db_xml(BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(path)?,
    ))?;
    let elapsed = start.elapsed();
    println!(
        "parsed {} bytes of XML ({} VM rows, {} rows in all) in {:.2} s ({:.0} MB/s); \
         peak RSS {:?} KiB (before parsing {:?} KiB)",
        size,
        db.rows("VM").count(),
        db.tables().map(|(_, t)| t.len()).sum::<usize>(),
        elapsed.as_secs_f64(),
        size as f64 / 1e6 / elapsed.as_secs_f64(),
        peak_rss_kib(),
        before,
    );
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join("xapi-dr-parse-big-db");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
