//! Debian packages the tests use, installed when missing.

use std::process::Command;

use crate::run::run;

/// A program the tests call, and the Debian package that provides it.
pub(crate) struct Requirement {
    pub(crate) program: &'static str,
    pub(crate) package: &'static str,
}

/// Programs the test suite calls.
pub(crate) const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        program: "qemu-img",
        package: "qemu-utils",
    },
    Requirement {
        program: "qemu-nbd",
        package: "qemu-utils",
    },
    Requirement {
        program: "python3",
        package: "python3",
    },
    // pyo3 links `cargo test --workspace`'s xapi-py target against libpython (maturin builds
    // the extension without it)
    Requirement {
        program: "python3-config",
        package: "python3-dev",
    },
    Requirement {
        program: "node",
        package: "nodejs",
    },
    Requirement {
        program: "npm",
        package: "npm",
    },
];

/// Whether `program` is on the PATH.
pub(crate) fn has_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|status| status.success())
}

/// Install the Debian packages of every missing program with apt-get.
pub(crate) fn ensure_requirements() -> Result<(), String> {
    let mut packages: Vec<&str> = REQUIREMENTS
        .iter()
        .filter(|req| !has_program(req.program))
        .map(|req| req.package)
        .collect();
    packages.dedup();
    if packages.is_empty() {
        return Ok(());
    }
    println!(
        "==> missing programs; installing Debian packages: {}",
        packages.join(" ")
    );
    let sudo = if is_root() { None } else { Some("sudo") };
    let apt = |args: &[&str]| {
        let mut command = match sudo {
            Some(sudo) => {
                let mut command = Command::new(sudo);
                command.arg("apt-get");
                command
            }
            None => Command::new("apt-get"),
        };
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        command
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&packages);
    run(&mut install)?;
    for req in REQUIREMENTS {
        if !has_program(req.program) {
            return Err(format!(
                "`{}` is still missing after installing {}",
                req.program, req.package
            ));
        }
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Print how much room the target directory's filesystem has left (CI disks can be small, and a
/// linker that runs out of room dies with SIGBUS rather than a clear message).
pub(crate) fn report_disk(stage: &str, dir: &std::path::Path) {
    let probe = if dir.exists() {
        dir
    } else {
        dir.parent().unwrap_or(dir)
    };
    let output = Command::new("df").args(["-Pk"]).arg(probe).output();
    let free_kib = output.ok().and_then(|out| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.split_whitespace().nth(3)?.parse::<u64>().ok())
    });
    match free_kib {
        Some(kib) => println!(
            "==> disk {stage}: {:.1} GiB free under {}",
            kib as f64 / (1024.0 * 1024.0),
            probe.display()
        ),
        None => println!("==> disk {stage}: could not read free space (df)"),
    }
}
