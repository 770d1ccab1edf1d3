//! Generates a large pool database, writes it as an XML dump, then parses it back and reports
//! the time taken and the process's peak memory (Linux `VmHWM`).
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
    let vms: usize = std::env::args().nth(1).map_or(Ok(10_000), |a| a.parse())?;
    let dir = tempfile_dir()?;
    let path = dir.join(format!("pool-{vms}.xml"));
    {
        let db = generate_pool(PoolShape::with_vms(vms));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        write_db_xml(&db, &mut out)?;
    }
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {vms} VMs: {size} bytes of XML; peak RSS so far {:?} KiB",
        peak_rss_kib()
    );
    let start = Instant::now();
    let db = read_db_xml(BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&path)?,
    ))?;
    let elapsed = start.elapsed();
    println!(
        "parsed {} VM rows in {:.2} s ({:.0} MB/s); peak RSS {:?} KiB",
        db.rows("VM").count(),
        elapsed.as_secs_f64(),
        size as f64 / 1e6 / elapsed.as_secs_f64(),
        peak_rss_kib()
    );
    std::fs::remove_file(&path)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join("xapi-dr-parse-big-db");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
