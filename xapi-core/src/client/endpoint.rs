//! Where a client connects: `http://`, `https://` or `unix://` URLs, parsed once.

use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// TCP, optionally with TLS.
    Tcp {
        /// Host name or IP address, without IPv6 brackets.
        host: String,
        /// Port.
        port: u16,
        /// Whether to speak TLS.
        tls: bool,
    },
    /// A Unix-domain socket (the local xapi socket, `/var/lib/xcp/xapi`).
    Unix {
        /// The socket path.
        path: PathBuf,
    },
}

/// A parsed server URL: the target plus the path prefix requests go under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    pub(crate) target: Target,
    /// Path prefix without a trailing slash (`""` for the root).
    pub(crate) base_path: String,
}

impl Endpoint {
    /// Parse `http://host[:port][/prefix]`, `https://...` or `unix:///path/to/socket`.
    ///
    /// URLs carrying `user:password@` are refused: credentials go through
    /// `login_with_password`, never in a URL that may be logged.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact_url(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("missing scheme (http://, https:// or unix://)"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "unix" {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(invalid("unix:// needs an absolute socket path"));
            }
            return Ok(Self {
                target: Target::Unix {
                    path: PathBuf::from(rest),
                },
                base_path: String::new(),
            });
        }
        let tls = match scheme.as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(invalid("unsupported scheme (use http, https or unix)")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the url are not accepted; use login_with_password",
            ));
        }
        if path.contains(['?', '#']) {
            return Err(invalid("query strings and fragments are not accepted"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port).map_err(invalid)?;
        Ok(Self {
            target: Target::Tcp { host, port, tls },
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The same scheme and port as `self`, on another host (a pool master named by
    /// `HOST_IS_SLAVE`, which gives a bare address).
    pub(crate) fn with_host(&self, host: &str) -> Result<Self, Error> {
        match &self.target {
            Target::Tcp { port, tls, .. } => {
                let host = host.trim().trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(Error::InvalidUrl {
                        url: host.to_owned(),
                        reason: "empty host address".into(),
                    });
                }
                Ok(Self {
                    target: Target::Tcp {
                        host: host.to_owned(),
                        port: *port,
                        tls: *tls,
                    },
                    base_path: self.base_path.clone(),
                })
            }
            Target::Unix { .. } => Err(Error::InvalidUrl {
                url: self.to_string(),
                reason: "a unix socket endpoint cannot move to another host".into(),
            }),
        }
    }

    /// The same host and path prefix over plain HTTP on `port` (a host serves plain HTTP on
    /// port 80 next to HTTPS on 443).
    pub(crate) fn plain_http(&self, port: u16) -> Result<Self, Error> {
        match &self.target {
            Target::Tcp { host, .. } => Ok(Self {
                target: Target::Tcp {
                    host: host.clone(),
                    port,
                    tls: false,
                },
                base_path: self.base_path.clone(),
            }),
            Target::Unix { .. } => Err(Error::InvalidUrl {
                url: self.to_string(),
                reason: "a unix socket endpoint has no plain HTTP port".into(),
            }),
        }
    }

    /// Resolve a `Location` header (absolute URL or absolute path) against this endpoint.
    /// Returns the new endpoint and the path-and-query to request there.
    pub(crate) fn resolve_location(&self, location: &str) -> Result<(Self, String), Error> {
        if location.starts_with('/') {
            return Ok((
                Self {
                    target: self.target.clone(),
                    base_path: String::new(),
                },
                location.to_owned(),
            ));
        }
        let (scheme, rest) = location
            .split_once("://")
            .ok_or_else(|| Error::InvalidUrl {
                url: redact_url(location),
                reason: "redirect location is neither an absolute url nor an absolute path".into(),
            })?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let path_and_query = match &rest[split..] {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let mut endpoint = Self::parse(&format!("{scheme}://{}", &rest[..split]))?;
        endpoint.base_path = String::new();
        Ok((endpoint, path_and_query))
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        match &self.target {
            Target::Tcp { host, port, tls } => {
                let host = bracket_ipv6(host);
                if (*tls && *port == 443) || (!*tls && *port == 80) {
                    host
                } else {
                    format!("{host}:{port}")
                }
            }
            Target::Unix { .. } => "localhost".to_owned(),
        }
    }

    /// The key under which per-host TLS pins are stored: `host:port`.
    pub(crate) fn authority(&self) -> String {
        match &self.target {
            Target::Tcp { host, port, .. } => format!("{}:{port}", bracket_ipv6(host)),
            Target::Unix { path } => path.display().to_string(),
        }
    }

    /// Whether connections use TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.target, Target::Tcp { tls: true, .. })
    }

    /// The full URL of `path_and_query` on this endpoint, for messages (credentials redacted).
    pub(crate) fn url_for(&self, path_and_query: &str) -> String {
        redact_url(&format!("{self}{path_and_query}"))
    }

    /// `base_path` + `path`.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tcp { host, port, tls } => write!(
                f,
                "{}://{}:{port}{}",
                if *tls { "https" } else { "http" },
                bracket_ipv6(host),
                self.base_path
            ),
            Target::Unix { path } => write!(f, "unix://{}", path.display()),
        }
    }
}

/// `[addr]` for an IPv6 literal, the input otherwise.
pub(crate) fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    if authority.is_empty() {
        return Err("missing host");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed '[' in ipv6 address")?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("junk after ipv6 address")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("ipv6 addresses need [brackets]"),
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| "port is not a number from 0 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

/// Remove credentials from a URL for messages: `user:pass@`, and the values of `session_id`,
/// `task_id` and `pool_secret` query arguments.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out = format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if matches!(k, "session_id" | "task_id" | "pool_secret") => {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(url: &str) -> (String, u16, bool, String) {
        let e = Endpoint::parse(url).unwrap();
        match e.target {
            Target::Tcp { host, port, tls } => (host, port, tls, e.base_path),
            Target::Unix { .. } => panic!("expected tcp"),
        }
    }

    #[test]
    fn plain_http_keeps_the_host_and_prefix() {
        let tls = Endpoint::parse("https://[fd00::1]:8443/xapi").unwrap();
        let plain = tls.plain_http(8080).unwrap();
        assert!(!plain.is_tls());
        assert_eq!(plain.authority(), "[fd00::1]:8080");
        assert_eq!(plain.path("/export"), "/xapi/export");
        assert!(
            Endpoint::parse("unix:///var/lib/xcp/xapi")
                .unwrap()
                .plain_http(80)
                .is_err()
        );
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        assert_eq!(
            tcp("https://10.0.0.1"),
            ("10.0.0.1".into(), 443, true, String::new())
        );
        assert_eq!(
            tcp("http://host/"),
            ("host".into(), 80, false, String::new())
        );
        assert_eq!(
            tcp("HTTPS://h:8443/x/"),
            ("h".into(), 8443, true, "/x".into())
        );
    }

    #[test]
    fn ipv6_literals_need_and_keep_brackets() {
        let e = Endpoint::parse("https://[fe80::1]:4443/").unwrap();
        assert_eq!(e.host_header(), "[fe80::1]:4443");
        assert_eq!(e.to_string(), "https://[fe80::1]:4443");
        assert!(Endpoint::parse("https://fe80::1/").is_err());
        let master = e.with_host("fd00::2").unwrap();
        assert_eq!(master.to_string(), "https://[fd00::2]:4443");
    }

    #[test]
    fn unix_socket_urls_name_an_absolute_path() {
        let e = Endpoint::parse("unix:///var/lib/xcp/xapi").unwrap();
        assert_eq!(
            e.target,
            Target::Unix {
                path: "/var/lib/xcp/xapi".into()
            }
        );
        assert_eq!(e.host_header(), "localhost");
        assert!(Endpoint::parse("unix://relative").is_err());
    }

    #[test]
    fn credentials_in_urls_are_refused_and_never_echoed() {
        let err = Endpoint::parse("https://root:hunter2@10.0.0.1/").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("login_with_password"));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("10.0.0.1", "missing scheme"),
            ("ftp://h/", "unsupported scheme"),
            ("https://h:99999/", "port"),
            ("https://h/?a=b", "query"),
            ("https://[::1/", "unclosed"),
        ] {
            let text = Endpoint::parse(url).unwrap_err().to_string();
            assert!(text.contains(why), "{url}: {text}");
        }
    }

    #[test]
    fn redirect_locations_resolve_to_another_host() {
        let e = Endpoint::parse("https://10.0.0.1/").unwrap();
        let (other, pq) = e
            .resolve_location("https://10.0.0.2/export?uuid=abc&session_id=OpaqueRef:s")
            .unwrap();
        assert_eq!(other.authority(), "10.0.0.2:443");
        assert_eq!(pq, "/export?uuid=abc&session_id=OpaqueRef:s");
        let (same, pq) = e.resolve_location("/import?sr_id=x").unwrap();
        assert_eq!(same.authority(), "10.0.0.1:443");
        assert_eq!(pq, "/import?sr_id=x");
    }

    #[test]
    fn redaction_hides_credentials_in_messages() {
        assert_eq!(
            redact_url("https://u:p@h/export?uuid=1&session_id=OpaqueRef:abc&task_id=t"),
            "https://***@h/export?uuid=1&session_id=***&task_id=***"
        );
    }
}
