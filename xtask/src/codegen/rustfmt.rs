//! Formatting generated sources with `rustfmt --edition 2024`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Format `source` with rustfmt (run from `root`, so the workspace's rustfmt config applies).
pub(crate) fn format(source: &str, root: &Path, name: &str) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start rustfmt: {err}"))?;
    let mut stdin = child.stdin.take().expect("stdin was requested as piped");
    let input = source.to_owned();
    // Write from another thread: rustfmt may fill its stdout pipe before reading all of stdin.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|err| format!("rustfmt for {name}: {err}"))?;
    writer
        .join()
        .map_err(|_| format!("rustfmt input writer for {name} panicked"))?
        .map_err(|err| format!("rustfmt input for {name}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt rejected the generated {name} ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|err| format!("rustfmt output for {name}: {err}"))
}
