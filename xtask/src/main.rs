//! Project automation for xapi-rs.
//!
//! - `cargo xtask test`: every check CI runs, in order (format, lints, tests, Python tests).

mod python;
mod run;
mod system;
mod test;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run_all(),
        Some("help" | "--help" | "-h") | None => {
            print_usage();
            Ok(())
        }
        Some(other) => Err(format!("unknown xtask command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_usage() {
    println!("usage: cargo xtask <command>");
    println!();
    println!("commands:");
    println!(
        "  test    fmt check, clippy -D warnings, cargo test, Python tests (installs what it needs)"
    );
}
