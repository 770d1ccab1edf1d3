//! Named pools in a TOML file, so that `--pool prod` stands for a URL, a user, a pin or CA and
//! a password file. The file is `$XAPICTL_CONFIG`, else `$XDG_CONFIG_HOME/xapictl/config.toml`,
//! else `~/.config/xapictl/config.toml`:
//!
//! ```toml
//! [pools.prod]
//! url = "https://xcp-master.example.com"
//! user = "backup"
//! pin = "sha256:AB:CD:..."
//! password_file = "/etc/xapictl/prod.password"
//! ```
//!
//! Passwords are never in this file, only the path of a file holding one. Options given on the
//! command line or in the environment win over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exit::Failure;

/// One pool of the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolEntry {
    /// The pool master's URL.
    pub(crate) url: Option<String>,
    /// The user to log in as.
    pub(crate) user: Option<String>,
    /// A file holding the password (its first line).
    pub(crate) password_file: Option<PathBuf>,
    /// The certificate's SHA-256 fingerprint.
    pub(crate) pin: Option<String>,
    /// A PEM file of CA certificates.
    pub(crate) ca: Option<PathBuf>,
}

/// The config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Pools by name.
    #[serde(default)]
    pub(crate) pools: BTreeMap<String, PoolEntry>,
}

/// Where the config file is looked for.
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("XAPICTL_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("xapictl").join("config.toml"))
}

/// Parses a config file's text; errors name the file, line and column.
pub(crate) fn parse(path: &Path, text: &str) -> Result<ConfigFile, Failure> {
    toml::from_str(text).map_err(|err| {
        Failure::usage(format!(
            "{}: {}",
            path.display(),
            err.to_string().trim_end()
        ))
    })
}

/// The pool called `name` in the config file.
pub(crate) fn named_pool(name: &str) -> Result<PoolEntry, Failure> {
    let path = config_path().ok_or_else(|| {
        Failure::usage(format!(
            "--pool {name}: no config file (set XAPICTL_CONFIG or HOME)"
        ))
    })?;
    let text = std::fs::read_to_string(&path).map_err(|err| {
        Failure::usage(format!(
            "--pool {name}: cannot read {}: {err} (define [pools.{name}] there, or use --url)",
            path.display()
        ))
    })?;
    let mut config = parse(&path, &text)?;
    let known: Vec<String> = config.pools.keys().cloned().collect();
    config.pools.remove(name).ok_or_else(|| {
        Failure::usage(format!(
            "--pool {name}: no [pools.{name}] in {} (it defines: {})",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_reads_with_every_field() {
        let config = parse(
            Path::new("c.toml"),
            "[pools.prod]\nurl = \"https://m\"\nuser = \"backup\"\npin = \"sha256:00\"\n\
             password_file = \"/p\"\n",
        )
        .unwrap();
        let prod = &config.pools["prod"];
        assert_eq!(prod.url.as_deref(), Some("https://m"));
        assert_eq!(prod.user.as_deref(), Some("backup"));
        assert_eq!(prod.password_file.as_deref(), Some(Path::new("/p")));
        assert_eq!(prod.ca, None);
    }

    #[test]
    fn a_password_in_the_file_is_refused_with_its_place() {
        let err = parse(
            Path::new("c.toml"),
            "[pools.prod]\nurl = \"https://m\"\npassword = \"secret\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("c.toml"), "{}", err.message);
        assert!(err.message.contains("password"), "{}", err.message);
        assert!(err.message.contains("line 3"), "{}", err.message);
    }
}
