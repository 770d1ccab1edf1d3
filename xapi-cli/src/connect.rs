//! The connection options every pool command takes, and the login they lead to.
//!
//! The password is never a command-line argument (it would show in `ps` and shell history): it
//! comes from `XAPI_PASSWORD`, from `--password-file`, or from a prompt on a terminal. TLS is
//! verified by default; `--pin sha256:...` accepts exactly one certificate, `--ca FILE` a private
//! CA, and `--insecure` turns verification off, loudly. A certificate that cannot be verified
//! gets its fingerprint printed with the option that pins it.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use xapi_core::client::{Client, Password, SessionHandle, TlsPolicy, fetch_fingerprint};

use crate::exit::{Failure, explain};

/// How to reach and log in to a pool.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Connection {
    /// A pool named in the config file (~/.config/xapictl/config.toml or XAPICTL_CONFIG):
    /// its url, user, pin, ca and password_file; options given here win.
    #[arg(long, env = "XAPI_POOL", global = true)]
    pool: Option<String>,
    /// The pool master: https://HOST (or http://HOST on a trusted network).
    #[arg(long, env = "XAPI_URL", global = true)]
    url: Option<String>,
    /// The user to log in as [default: root].
    #[arg(long, env = "XAPI_USER", global = true)]
    user: Option<String>,
    /// A file holding the password (its first line). Otherwise XAPI_PASSWORD, else a prompt.
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// Accept exactly the certificate with this SHA-256 fingerprint (sha256:AB:CD:...).
    #[arg(long, env = "XAPI_PIN", global = true)]
    pin: Option<String>,
    /// Verify the pool's certificate against the CA certificates in this PEM file.
    #[arg(long, global = true, conflicts_with = "pin")]
    ca: Option<PathBuf>,
    /// Do not verify the pool's certificate (anyone on the path can read the password).
    #[arg(long, global = true, conflicts_with_all = ["pin", "ca"])]
    insecure: bool,
}

impl Connection {
    /// Fills what the command line and environment left out from the named pool, if any.
    pub(crate) fn resolve(&mut self) -> Result<(), Failure> {
        let Some(name) = &self.pool else {
            return Ok(());
        };
        let entry = crate::config::named_pool(name)?;
        self.url = self.url.take().or(entry.url);
        self.user = self.user.take().or(entry.user);
        self.password_file = self.password_file.take().or(entry.password_file);
        if self.pin.is_none() && self.ca.is_none() && !self.insecure {
            self.pin = entry.pin;
            self.ca = entry.ca;
        }
        Ok(())
    }

    /// The same options for another URL (a host named in a URL argument).
    pub(crate) fn with_url(&self, url: &str) -> Connection {
        Connection {
            url: Some(url.to_owned()),
            ..self.clone()
        }
    }

    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("root")
    }

    /// The URL, or a usage error saying how to give one.
    pub(crate) fn url(&self) -> Result<&str, Failure> {
        self.url.as_deref().ok_or_else(|| {
            Failure::usage(
                "no pool given: use --url https://HOST, set XAPI_URL, or name a pool of the \
                     config file with --pool",
            )
        })
    }

    fn tls_policy(&self) -> Result<TlsPolicy, Failure> {
        if self.insecure {
            eprintln!(
                "xapictl: WARNING: --insecure: the pool's certificate is not checked; anyone on \
                 the network path can read the password and change what is sent"
            );
            return Ok(TlsPolicy::DangerAcceptInvalid);
        }
        if let Some(pin) = &self.pin {
            return pin
                .parse()
                .map(TlsPolicy::Pinned)
                .map_err(|err| Failure::usage(format!("--pin {pin:?}: {err}")));
        }
        if let Some(path) = &self.ca {
            return std::fs::read(path)
                .map(TlsPolicy::CustomCa)
                .map_err(|err| Failure::usage(format!("--ca {}: {err}", path.display())));
        }
        Ok(TlsPolicy::Verified)
    }

    fn password(&self) -> Result<Password, Failure> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                Failure::usage(format!("--password-file {}: {err}", path.display()))
            })?;
            return Ok(Password::new(text.lines().next().unwrap_or_default()));
        }
        if let Ok(password) = std::env::var("XAPI_PASSWORD") {
            return Ok(Password::new(password));
        }
        if std::io::stdin().is_terminal() {
            let prompt = format!("password for {}: ", self.user());
            return rpassword::prompt_password(prompt)
                .map(Password::new)
                .map_err(|err| Failure::failed(format!("cannot read the password: {err}")));
        }
        Err(Failure::usage(
            "no password: set XAPI_PASSWORD, use --password-file FILE, or run on a terminal to be asked",
        ))
    }

    /// Log in; on an untrusted certificate, say its fingerprint and how to pin it.
    pub(crate) async fn login(&self) -> Result<SessionHandle, Failure> {
        let url = self.url()?;
        let policy = self.tls_policy()?;
        let verified = matches!(policy, TlsPolicy::Verified);
        let password = self.password()?;
        let client = Client::builder(url)
            .tls(policy)
            .build()
            .map_err(|err| explain(url, &err))?;
        match client
            .login_with_password(self.user(), password, "1.0", "xapictl")
            .await
        {
            Ok(session) => {
                tracing::info!(url, user = self.user(), "logged in");
                Ok(session)
            }
            Err(err @ xapi_core::Error::Tls { .. }) if verified => {
                let hint = match fetch_fingerprint(url).await {
                    Ok(fingerprint) => format!(
                        "; the pool presents the certificate sha256:{fingerprint}: if it is \
                         the pool's own, trust it with --pin sha256:{fingerprint} (or XAPI_PIN)"
                    ),
                    Err(_) => String::new(),
                };
                let mut failure = explain(url, &err);
                failure.message.push_str(&hint);
                Err(failure)
            }
            Err(err) => Err(explain(url, &err)),
        }
    }
}
