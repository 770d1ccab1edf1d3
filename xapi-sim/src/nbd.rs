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

use std::io::SeekFrom;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::pool::Pool;
use crate::server::tls::TlsIdentity;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const CLIENT_NO_ZEROES: u32 = 2;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;

const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const REP_ERR_POLICY: u32 = 0x8000_0002;
const REP_ERR_INVALID: u32 = 0x8000_0003;
const REP_ERR_TLS_REQD: u32 = 0x8000_0005;
const REP_ERR_UNKNOWN: u32 = 0x8000_0006;

const INFO_EXPORT: u16 = 0;

const TRANS_HAS_FLAGS: u16 = 1;
const TRANS_SEND_FLUSH: u16 = 1 << 2;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;

const EPERM: u32 = 1;
const EIO: u32 = 5;
const EINVAL: u32 = 22;

/// Largest read or write accepted in one request (qemu uses 32 MiB at most).
const MAX_REQUEST: u32 = 32 << 20;
/// Largest option payload accepted.
const MAX_OPTION: u32 = 64 << 10;

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
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let pool = Arc::clone(&pool);
                    let identity = identity.clone();
                    tokio::spawn(async move {
                        if let Err(err) = serve(&pool, stream, &identity).await {
                            tracing::debug!(%peer, error = %err, "nbd connection ended");
                        }
                    });
                }
                Err(err) => tracing::warn!(error = %err, "nbd accept failed"),
            }
        }
    });
    Ok((local, task))
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

/// Where the connection stands with TLS during option haggling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsState {
    /// TLS is required and not negotiated yet.
    Required,
    /// The connection runs over TLS.
    Established,
    /// The server is plain.
    Unavailable,
}

/// How option haggling ended.
enum Negotiated {
    /// The client chose an export: transmission follows.
    Export(Export),
    /// The client asked for TLS and got `NBD_REP_ACK`: the handshake follows.
    StartTls,
    /// The client aborted, or the connection must close.
    Closed,
}

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

/// Option haggling, until an export is chosen, TLS is to start, or the client leaves.
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    conn: &mut Conn<S>,
    no_zeroes: bool,
    tls: TlsState,
) -> std::io::Result<Negotiated> {
    loop {
        if conn.read_u64().await? != IHAVEOPT {
            return Err(invalid_data("bad option magic"));
        }
        let option = conn.read_u32().await?;
        let length = conn.read_u32().await?;
        if length > MAX_OPTION {
            return Err(invalid_data("option too large"));
        }
        let mut data = vec![0_u8; length as usize];
        conn.read_exact(&mut data).await?;
        if option == OPT_STARTTLS {
            if length != 0 {
                // as qemu-nbd: a client that cannot start TLS correctly is dropped
                reply(conn, option, REP_ERR_INVALID, b"STARTTLS takes no data").await?;
                return Ok(Negotiated::Closed);
            }
            match tls {
                TlsState::Required => {
                    reply(conn, option, REP_ACK, &[]).await?;
                    return Ok(Negotiated::StartTls);
                }
                TlsState::Established => {
                    reply(conn, option, REP_ERR_INVALID, b"TLS already enabled").await?;
                }
                TlsState::Unavailable => {
                    reply(conn, option, REP_ERR_POLICY, b"TLS not configured").await?;
                }
            }
            continue;
        }
        if tls == TlsState::Required {
            if option == OPT_EXPORT_NAME {
                // no error reply exists for this option: drop the connection
                return Ok(Negotiated::Closed);
            }
            let message = format!("Option 0x{option:x} not permitted before TLS");
            reply(conn, option, REP_ERR_TLS_REQD, message.as_bytes()).await?;
            if option == OPT_ABORT {
                return Ok(Negotiated::Closed);
            }
            continue;
        }
        match option {
            OPT_EXPORT_NAME => {
                let name = String::from_utf8_lossy(&data).into_owned();
                // the old-style option has no error reply: an unknown export closes the connection
                let Some(export) = resolve(pool, &name) else {
                    return Ok(Negotiated::Closed);
                };
                conn.write_u64(export.size).await?;
                conn.write_u16(TRANS_HAS_FLAGS | TRANS_SEND_FLUSH).await?;
                if !no_zeroes {
                    conn.write_all(&[0_u8; 124]).await?;
                }
                conn.flush().await?;
                return Ok(Negotiated::Export(export));
            }
            OPT_INFO | OPT_GO => {
                let Some(name) = info_request_name(&data) else {
                    reply(conn, option, REP_ERR_INVALID, b"malformed request").await?;
                    continue;
                };
                let Some(export) = resolve(pool, &name) else {
                    reply(
                        conn,
                        option,
                        REP_ERR_UNKNOWN,
                        b"unknown export or invalid session",
                    )
                    .await?;
                    continue;
                };
                let mut info = Vec::with_capacity(12);
                info.extend_from_slice(&INFO_EXPORT.to_be_bytes());
                info.extend_from_slice(&export.size.to_be_bytes());
                info.extend_from_slice(&(TRANS_HAS_FLAGS | TRANS_SEND_FLUSH).to_be_bytes());
                reply(conn, option, REP_INFO, &info).await?;
                reply(conn, option, REP_ACK, &[]).await?;
                if option == OPT_GO {
                    return Ok(Negotiated::Export(export));
                }
            }
            OPT_LIST => {
                // export names embed a session, so none is listed
                reply(conn, option, REP_ERR_POLICY, b"exports are not listed").await?;
            }
            OPT_ABORT => {
                reply(conn, option, REP_ACK, &[]).await?;
                return Ok(Negotiated::Closed);
            }
            _ => reply(conn, option, REP_ERR_UNSUP, b"unsupported option").await?,
        }
    }
}

/// The export name inside an `NBD_OPT_INFO` / `NBD_OPT_GO` payload.
fn info_request_name(data: &[u8]) -> Option<String> {
    let length = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let name = data.get(4..4 + length)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

async fn reply<W: AsyncWrite + Unpin>(
    output: &mut W,
    option: u32,
    kind: u32,
    data: &[u8],
) -> std::io::Result<()> {
    output.write_u64(REPLY_MAGIC).await?;
    output.write_u32(option).await?;
    output.write_u32(kind).await?;
    output.write_u32(data.len() as u32).await?;
    output.write_all(data).await?;
    output.flush().await
}

async fn simple_reply<W: AsyncWrite + Unpin>(
    output: &mut W,
    error: u32,
    handle: u64,
    data: &[u8],
) -> std::io::Result<()> {
    output.write_u32(SIMPLE_REPLY_MAGIC).await?;
    output.write_u32(error).await?;
    output.write_u64(handle).await?;
    output.write_all(data).await?;
    output.flush().await
}

/// The transmission phase: serve requests until `NBD_CMD_DISC` or the connection closes.
async fn transmit<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    export: &Export,
    conn: &mut Conn<S>,
) -> std::io::Result<()> {
    let path = pool.storage.path(&export.uuid);
    let mut buffer = Vec::new();
    loop {
        if conn.read_u32().await? != REQUEST_MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad request magic",
            ));
        }
        let _flags = conn.read_u16().await?;
        let command = conn.read_u16().await?;
        let handle = conn.read_u64().await?;
        let offset = conn.read_u64().await?;
        let length = conn.read_u32().await?;
        // opened per request: breaking or resyncing the storage mirror replaces the image file
        let opened = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await;
        let mut file = match opened {
            Ok(file) => file,
            Err(_) if command == CMD_DISC => return Ok(()),
            Err(_) => {
                if command == CMD_WRITE {
                    skip_payload(conn, length, &mut buffer).await?;
                }
                simple_reply(conn, EIO, handle, &[]).await?;
                continue;
            }
        };
        let in_range = length <= MAX_REQUEST
            && offset
                .checked_add(u64::from(length))
                .is_some_and(|end| end <= export.size);
        match command {
            CMD_READ => {
                if !in_range {
                    simple_reply(conn, EINVAL, handle, &[]).await?;
                    continue;
                }
                buffer.resize(length as usize, 0);
                let read = async {
                    file.seek(SeekFrom::Start(offset)).await?;
                    read_full(&mut file, &mut buffer).await
                }
                .await;
                match read {
                    Ok(()) => simple_reply(conn, 0, handle, &buffer).await?,
                    Err(_) => simple_reply(conn, EIO, handle, &[]).await?,
                }
            }
            CMD_WRITE => {
                if length > MAX_REQUEST {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "write too large",
                    ));
                }
                buffer.resize(length as usize, 0);
                conn.read_exact(&mut buffer).await?;
                if !in_range {
                    simple_reply(conn, EINVAL, handle, &[]).await?;
                    continue;
                }
                if crate::mirror::is_read_only_replica(pool, &export.uuid) {
                    simple_reply(conn, EPERM, handle, &[]).await?;
                    continue;
                }
                let written = async {
                    file.seek(SeekFrom::Start(offset)).await?;
                    file.write_all(&buffer).await
                }
                .await;
                match written {
                    Ok(()) => {
                        pool.note_write(&export.uuid, offset, u64::from(length));
                        simple_reply(conn, 0, handle, &[]).await?;
                    }
                    Err(_) => simple_reply(conn, EIO, handle, &[]).await?,
                }
            }
            CMD_FLUSH => {
                let error = if file.sync_data().await.is_ok() {
                    0
                } else {
                    EIO
                };
                simple_reply(conn, error, handle, &[]).await?;
            }
            CMD_DISC => return Ok(()),
            _ => simple_reply(conn, EPERM, handle, &[]).await?,
        }
    }
}

/// Read and drop the `length`-byte payload of a write that cannot be served.
async fn skip_payload<R: AsyncRead + Unpin>(
    input: &mut R,
    length: u32,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    if length > MAX_REQUEST {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "write too large",
        ));
    }
    buffer.resize(length as usize, 0);
    input.read_exact(buffer).await.map(|_| ())
}

/// Fill `buffer` from the file; bytes past the end of the file (a shrunk image) read as zero.
async fn read_full(file: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = file.read(&mut buffer[filled..]).await?;
        if n == 0 {
            buffer[filled..].fill(0);
            break;
        }
        filled += n;
    }
    Ok(())
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

    #[test]
    fn info_requests_name_their_export() {
        let mut data = 5_u32.to_be_bytes().to_vec();
        data.extend_from_slice(b"/uuid");
        data.extend_from_slice(&0_u16.to_be_bytes());
        assert_eq!(info_request_name(&data).as_deref(), Some("/uuid"));
        assert_eq!(info_request_name(&data[..6]), None, "a cut name");
    }
}
