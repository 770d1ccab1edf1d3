//! Which handler answers a request, chosen as xapi's HTTP server chooses: among the paths
//! registered for the request's method, the longest one that is a prefix of the request path
//! (`http_svr.ml`'s radix tree). So `GET /export/?ref=...` (Xen Orchestra's spelling) is an
//! export, `POST /anything` is XML-RPC (registered on `/`), and a path no handler claims gets
//! 403 Forbidden.

use http::Method;

/// A handler of the simulated xapi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// XML-RPC (`/`, `/RPC2`, and the legacy `/json`, which also speaks XML-RPC).
    XmlRpc,
    /// JSON-RPC v1 and v2 (`/jsonrpc`).
    JsonRpc,
    /// CORS preflight for the RPC paths.
    Preflight,
    /// `GET /pool/xmldbdump`.
    DbDump,
    /// `PUT /pool/xmldbdump`.
    DbRestore,
    /// `GET /host_backup`.
    HostBackup,
    /// `PUT /host_restore`.
    HostRestore,
    /// `PUT /import`.
    Import,
    /// `PUT /import_metadata`.
    ImportMetadata,
    /// `PUT /import_raw_vdi`.
    ImportRawVdi,
    /// `GET /export`.
    Export,
    /// `GET /export_metadata`.
    ExportMetadata,
    /// `GET /export_raw_vdi`.
    ExportRawVdi,
}

impl Endpoint {
    /// Whether the endpoint is an RPC one (a pool member answers those with `HOST_IS_SLAVE`).
    pub(crate) fn is_rpc(self) -> bool {
        matches!(self, Self::XmlRpc | Self::JsonRpc)
    }
}

/// The registered `(method, path, handler)` triples the simulator serves.
const REGISTERED: &[(Method, &str, Endpoint)] = &[
    (Method::POST, "/", Endpoint::XmlRpc),
    (Method::POST, "/RPC2", Endpoint::XmlRpc),
    (Method::POST, "/json", Endpoint::XmlRpc),
    (Method::POST, "/jsonrpc", Endpoint::JsonRpc),
    (Method::OPTIONS, "/", Endpoint::Preflight),
    (Method::OPTIONS, "/json", Endpoint::Preflight),
    (Method::OPTIONS, "/jsonrpc", Endpoint::Preflight),
    (Method::GET, "/pool/xmldbdump", Endpoint::DbDump),
    (Method::PUT, "/pool/xmldbdump", Endpoint::DbRestore),
    (Method::GET, "/host_backup", Endpoint::HostBackup),
    (Method::PUT, "/host_restore", Endpoint::HostRestore),
    (Method::PUT, "/import", Endpoint::Import),
    (Method::PUT, "/import_metadata", Endpoint::ImportMetadata),
    (Method::PUT, "/import_raw_vdi", Endpoint::ImportRawVdi),
    (Method::GET, "/export", Endpoint::Export),
    (Method::GET, "/export_metadata", Endpoint::ExportMetadata),
    (Method::GET, "/export_raw_vdi", Endpoint::ExportRawVdi),
];

/// The handler for `method` on `path`: the longest registered prefix, or `None` (403).
pub(crate) fn route(method: &Method, path: &str) -> Option<Endpoint> {
    REGISTERED
        .iter()
        .filter(|(m, prefix, _)| m == method && path.starts_with(prefix))
        .max_by_key(|(_, prefix, _)| prefix.len())
        .map(|&(_, _, endpoint)| endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_registered_prefix_wins() {
        let cases = [
            (Method::GET, "/export", Some(Endpoint::Export)),
            (Method::GET, "/export/", Some(Endpoint::Export)),
            (
                Method::GET,
                "/export_metadata",
                Some(Endpoint::ExportMetadata),
            ),
            (
                Method::GET,
                "/export_raw_vdi/",
                Some(Endpoint::ExportRawVdi),
            ),
            (Method::PUT, "/import/", Some(Endpoint::Import)),
            (
                Method::PUT,
                "/import_metadata/",
                Some(Endpoint::ImportMetadata),
            ),
            (Method::PUT, "/import_raw_vdi", Some(Endpoint::ImportRawVdi)),
            (Method::POST, "/", Some(Endpoint::XmlRpc)),
            (Method::POST, "/RPC2", Some(Endpoint::XmlRpc)),
            (Method::POST, "/json", Some(Endpoint::XmlRpc)),
            (Method::POST, "/jsonrpc", Some(Endpoint::JsonRpc)),
            (Method::POST, "/anything", Some(Endpoint::XmlRpc)),
            (Method::OPTIONS, "/jsonrpc", Some(Endpoint::Preflight)),
            (Method::GET, "/pool/xmldbdump", Some(Endpoint::DbDump)),
            (Method::PUT, "/pool/xmldbdump", Some(Endpoint::DbRestore)),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn unregistered_method_or_path_has_no_handler() {
        assert_eq!(route(&Method::GET, "/"), None);
        assert_eq!(route(&Method::GET, "/import"), None);
        assert_eq!(route(&Method::PUT, "/export"), None);
        assert_eq!(route(&Method::DELETE, "/"), None);
        assert_eq!(route(&Method::GET, "/pool"), None);
    }
}
