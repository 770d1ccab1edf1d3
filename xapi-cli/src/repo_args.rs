//! Where the backup repository is and what opens it: a local directory or `s3://bucket/prefix`
//! (endpoint from `--s3-endpoint`, credentials from the usual `AWS_*` variables), and for an
//! encrypted repository a key file or a passphrase (`XAPI_REPO_PASSPHRASE` or a prompt; never an
//! argument).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::Args;
use xapi_backup::repo::{OpenOptions, RepoError, Repository, S3Target, Secret, Target};

use crate::exit::Failure;

/// The environment variable holding a repository passphrase.
const PASSPHRASE_VAR: &str = "XAPI_REPO_PASSPHRASE";

/// Where the repository is, and its key when it is encrypted.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Repository")]
pub(crate) struct RepoArgs {
    /// The repository: a local directory, or s3://BUCKET/PREFIX on S3-compatible storage
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "XAPI_REPO", value_name = "PATH|s3://BUCKET/PREFIX")]
    repo: Option<String>,
    /// The S3 endpoint, an https URL (plain http only on a trusted network). Default:
    /// AWS_ENDPOINT_URL, else AWS itself.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    s3_endpoint: Option<String>,
    /// The S3 region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// The key file of an encrypted repository (`backup init --encrypt --key-file` writes one).
    /// Without it, an encrypted repository asks for its passphrase (or reads
    /// XAPI_REPO_PASSPHRASE).
    #[arg(long)]
    pub(crate) key_file: Option<PathBuf>,
}

impl std::fmt::Display for RepoArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.repo.as_deref().unwrap_or("(no repository given)"))
    }
}

impl RepoArgs {
    /// The repository's location, or a usage error saying how to give one.
    pub(crate) fn location(&self) -> Result<&str, Failure> {
        self.repo.as_deref().ok_or_else(|| {
            Failure::usage("no repository: use --repo PATH|s3://BUCKET/PREFIX or set XAPI_REPO")
        })
    }

    /// The storage target the repository lives on.
    pub(crate) fn target(&self) -> Result<Target, Failure> {
        let location = self.location()?;
        let Some(rest) = location.strip_prefix("s3://") else {
            return Ok(Target::LocalDir(PathBuf::from(location)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Failure::usage(format!(
                "--repo {location}: no bucket: use s3://BUCKET/PREFIX"
            )));
        }
        let credential = |name: &str| {
            std::env::var(name).map_err(|_| {
                Failure::usage(format!(
                    "--repo {location}: set {name} (the S3 credentials come from \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                ))
            })
        };
        let endpoint = self.s3_endpoint.clone();
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        S3Target {
            endpoint,
            bucket: bucket.to_owned(),
            region: self.s3_region.clone(),
            access_key_id: credential("AWS_ACCESS_KEY_ID")?,
            secret_access_key: credential("AWS_SECRET_ACCESS_KEY")?,
            allow_http,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
        .into_target()
        .map_err(|e| Failure::usage(format!("--repo {location}: {e}")))
    }

    /// The secret given on the command line or in the environment, if any.
    fn given_secret(&self) -> Result<Option<Secret>, Failure> {
        if let Some(path) = &self.key_file {
            return Secret::key_file(path)
                .map(Some)
                .map_err(|e| Failure::usage(format!("--key-file {}: {e}", path.display())));
        }
        Ok(std::env::var(PASSPHRASE_VAR).ok().map(Secret::Passphrase))
    }

    /// Opens the repository; an encrypted one without a key file asks for its passphrase on a
    /// terminal.
    pub(crate) async fn open(&self) -> Result<Repository, Failure> {
        let target = self.target()?;
        let secret = self.given_secret()?;
        let asked = secret.is_none();
        match Repository::open(&target, options(secret)).await {
            Err(xapi_backup::Error::Repo(RepoError::KeyMismatch { .. }))
                if asked && std::io::stdin().is_terminal() =>
            {
                let passphrase = prompt("passphrase of the repository: ")?;
                Repository::open(&target, options(Some(Secret::Passphrase(passphrase))))
                    .await
                    .map_err(|e| self.failure(&e))
            }
            result => result.map_err(|e| self.failure(&e)),
        }
    }

    /// The secret a new encrypted repository gets: a new key file at `--key-file`, else the
    /// passphrase from XAPI_REPO_PASSPHRASE or typed twice.
    pub(crate) fn new_secret(&self) -> Result<Secret, Failure> {
        if let Some(path) = &self.key_file {
            return Secret::generate_key_file(path)
                .map_err(|e| Failure::failed(format!("--key-file {}: {e}", path.display())));
        }
        if let Ok(passphrase) = std::env::var(PASSPHRASE_VAR) {
            return Ok(Secret::Passphrase(passphrase));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(format!(
                "--encrypt needs a key: --key-file FILE (written now), {PASSPHRASE_VAR}, or a \
                 terminal to type a passphrase"
            )));
        }
        let first = prompt("new passphrase of the repository: ")?;
        let second = prompt("the same passphrase again: ")?;
        if first != second {
            return Err(Failure::usage("the two passphrases differ"));
        }
        if first.chars().count() < 12 {
            return Err(Failure::usage(
                "the passphrase is shorter than 12 characters: choose a longer one, or use \
                 --key-file",
            ));
        }
        Ok(Secret::Passphrase(first))
    }

    /// A failure naming the repository, with what to do for the errors people meet.
    pub(crate) fn failure(&self, error: &xapi_backup::Error) -> Failure {
        let xapi_backup::Error::Repo(repo_error) = error else {
            return Failure::failed(format!("{self}: {error}"));
        };
        let hint = match repo_error {
            RepoError::NotARepository { .. } => ": create one with `xapictl backup init`",
            RepoError::KeyMismatch { .. } => {
                ": give --key-file, or XAPI_REPO_PASSPHRASE, or run on a terminal to be asked"
            }
            RepoError::WrongKey => ": check --key-file or the passphrase",
            RepoError::UnsupportedVersion { .. } => ": use an xapictl release that reads it",
            _ => "",
        };
        let usage = matches!(
            repo_error,
            RepoError::NotARepository { .. }
                | RepoError::KeyMismatch { .. }
                | RepoError::WrongKey
                | RepoError::InvalidKeyFile { .. }
                | RepoError::UnsupportedVersion { .. }
        );
        let message = format!("{self}: {error}{hint}");
        if usage {
            Failure::usage(message)
        } else {
            Failure::failed(message)
        }
    }
}

fn options(secret: Option<Secret>) -> OpenOptions {
    OpenOptions {
        secret,
        ..OpenOptions::default()
    }
}

fn prompt(text: &str) -> Result<String, Failure> {
    rpassword::prompt_password(text)
        .map_err(|err| Failure::failed(format!("cannot read the passphrase: {err}")))
}
