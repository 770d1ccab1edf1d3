//! An NBD server (fixed newstyle handshake, simple replies; xapi listens on port 10809, the
//! simulator on a free port) serving the pool's VDIs under the
//! export names `VDI.get_nbd_info` hands out: `/<vdi-uuid>?session_id=<session ref>`. The
//! session must be valid when the export is chosen.
//!
//! TLS follows the networks' `purpose`, read for every connection as xapi-nbd does: with a
//! network of purpose `nbd` the client must upgrade with `NBD_OPT_STARTTLS` (the server
//! presents the pool master's certificate, the `cert` of `VDI.get_nbd_info`), and any other
//! option before it gets `NBD_REP_ERR_TLS_REQD` (`NBD_OPT_EXPORT_NAME`, which has no error
//! reply, closes the connection) as qemu-nbd answers in that mode; with only `insecure_nbd`
//! networks the server is plain and `NBD_OPT_STARTTLS` gets `NBD_REP_ERR_POLICY`; with both
//! purposes in the pool, or none, connections are refused.
//!
//! Supported: `NBD_OPT_EXPORT_NAME`, `NBD_OPT_INFO`, `NBD_OPT_GO`, `NBD_OPT_LIST`,
//! `NBD_OPT_ABORT`, `NBD_OPT_STARTTLS`; other options get `NBD_REP_ERR_UNSUP` (no structured
//! replies). Commands: `READ`, `WRITE` (tracked for changed-block tracking), `FLUSH`, `DISC`.

mod negotiate;
mod transmit;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::pool::Pool;
use crate::server::accept::accept_loop;
use crate::server::tls::TlsIdentity;
use negotiate::{Negotiated, TlsState, negotiate};
use transmit::transmit;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const CLIENT_NO_ZEROES: u32 = 2;

/// Whether the pool's NBD traffic must be encrypted, from the networks' purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NbdSecurity {
    /// A network has purpose `nbd`: TLS is required.
    Tls,
    /// Only `insecure_nbd` networks: plain NBD.
    Plain,
}

/// The pool's NBD security, or why connections are refused (no NBD network, or both purposes:
/// xapi-nbd calls that configuration contradictory).
pub(crate) fn security(pool: &Pool) -> Result<NbdSecurity, &'static str> {
    let db = pool.db();
    let mut tls = false;
    let mut plain = false;
    for network in db.refs("network").unwrap_or_default() {
        for purpose in db
            .refs_field("network", &network, "purpose")
            .unwrap_or_default()
        {
            tls |= purpose == "nbd";
            plain |= purpose == "insecure_nbd";
        }
    }
    match (tls, plain) {
        (true, true) => Err("contradictory configuration: nbd and insecure_nbd network purposes"),
        (true, false) => Ok(NbdSecurity::Tls),
        (false, true) => Ok(NbdSecurity::Plain),
        (false, false) => Err("no network has purpose nbd or insecure_nbd"),
    }
}

/// Bind `addr` and serve the pool's VDIs over NBD until the task is aborted.
pub(crate) async fn listen(
    pool: Arc<Pool>,
    addr: SocketAddr,
    identity: TlsIdentity,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    accept_loop(addr, "nbd", move |stream, peer| {
        let pool = Arc::clone(&pool);
        let identity = identity.clone();
        async move {
            pool.reachability
                .guard(stream, |stream| async {
                    if let Err(err) = serve(&pool, stream, &identity).await {
                        tracing::debug!(%peer, error = %err, "nbd connection ended");
                    }
                })
                .await;
        }
    })
    .await
}

/// The disk an export name designates.
struct Export {
    uuid: String,
    size: u64,
}

/// Resolve `/<vdi-uuid>?session_id=<ref>` (the leading slash is optional).
fn resolve(pool: &Pool, name: &str) -> Option<Export> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let (uuid, query) = name.split_once('?')?;
    let session = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("session_id="))?;
    let db = pool.db();
    if !db.exists("session", session) {
        return None;
    }
    let vdi = db.by_uuid("VDI", uuid).ok()?;
    if db.str_field("VDI", &vdi, "type").ok()? == "cbt_metadata" {
        return None;
    }
    let size = db.int_field("VDI", &vdi, "virtual_size").ok()?.max(0) as u64;
    Some(Export {
        uuid: uuid.to_owned(),
        size,
    })
}

/// A connection, buffered both ways (over TCP, then over TLS after `NBD_OPT_STARTTLS`).
type Conn<S> = BufReader<BufWriter<S>>;

fn invalid_data(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

async fn serve(pool: &Pool, stream: TcpStream, identity: &TlsIdentity) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let security = match security(pool) {
        Ok(security) => security,
        Err(reason) => {
            tracing::info!(reason, "nbd connection refused");
            return Ok(());
        }
    };
    let mut conn = BufReader::new(BufWriter::new(stream));
    conn.write_u64(NBDMAGIC).await?;
    conn.write_u64(IHAVEOPT).await?;
    conn.write_u16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).await?;
    conn.flush().await?;
    let client_flags = conn.read_u32().await?;
    let no_zeroes = client_flags & CLIENT_NO_ZEROES != 0;
    let state = match security {
        NbdSecurity::Tls => TlsState::Required,
        NbdSecurity::Plain => TlsState::Unavailable,
    };
    match negotiate(pool, &mut conn, no_zeroes, state).await? {
        Negotiated::Export(export) => transmit(pool, &export, &mut conn).await,
        Negotiated::Closed => Ok(()),
        Negotiated::StartTls => {
            // the client waits for the handshake: nothing of its may be buffered yet
            if !conn.buffer().is_empty() {
                return Err(invalid_data("data after NBD_OPT_STARTTLS"));
            }
            let tcp = conn.into_inner().into_inner();
            let tls = identity.acceptor.accept(tcp).await?;
            let mut conn = BufReader::new(BufWriter::new(tls));
            match negotiate(pool, &mut conn, no_zeroes, TlsState::Established).await? {
                Negotiated::Export(export) => transmit(pool, &export, &mut conn).await,
                Negotiated::Closed | Negotiated::StartTls => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use xapi_core::wire::Value;

    use super::*;
    use crate::clock::SimClock;
    use crate::faults::Faults;
    use crate::storage::Storage;

    fn pool_with_purposes(purposes: &[&[&str]]) -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let pool = Pool::new(
            "t",
            xapi_core::api::meta::CLASSES,
            "pw",
            SimClock::new(1.0),
            Faults::default(),
            storage,
        );
        for purpose in purposes {
            let purpose = purpose
                .iter()
                .map(|p| Value::String((*p).to_owned()))
                .collect();
            pool.db()
                .create(
                    "network",
                    BTreeMap::from([("purpose".to_owned(), Value::Array(purpose))]),
                )
                .unwrap();
        }
        (dir, pool)
    }

    #[test]
    fn the_networks_purposes_decide_tls_as_xapi_nbd_does() {
        let (_dir, pool) = pool_with_purposes(&[&[], &["nbd"]]);
        assert_eq!(security(&pool), Ok(NbdSecurity::Tls));
        let (_dir, pool) = pool_with_purposes(&[&["insecure_nbd"], &[]]);
        assert_eq!(security(&pool), Ok(NbdSecurity::Plain));
        let (_dir, pool) = pool_with_purposes(&[&["insecure_nbd"], &["nbd"]]);
        assert!(security(&pool).unwrap_err().contains("contradictory"));
        let (_dir, pool) = pool_with_purposes(&[&[]]);
        assert!(security(&pool).unwrap_err().contains("no network"));
    }
}
