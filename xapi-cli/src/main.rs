//! `xapictl`: backup, restore and disaster recovery of XenServer / XCP-ng pools.
//!
//! This binary will expose the demo, the simulator, backup, restore, DR and offline inspection
//! with progress bars and JSON output. Nothing is implemented yet.

fn main() {
    eprintln!("xapictl: no commands yet; see the README for the project status");
    std::process::exit(2);
}
