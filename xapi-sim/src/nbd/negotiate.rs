//! Option haggling (fixed newstyle): `NBD_OPT_STARTTLS` and the TLS rules, `NBD_OPT_GO` /
//! `NBD_OPT_INFO` / `NBD_OPT_EXPORT_NAME` to choose an export, `NBD_OPT_LIST`, `NBD_OPT_ABORT`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Conn, Export, IHAVEOPT, invalid_data, resolve};
use crate::pool::Pool;

const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

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

/// Largest option payload accepted.
const MAX_OPTION: u32 = 64 << 10;

/// Where the connection stands with TLS during option haggling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsState {
    /// TLS is required and not negotiated yet.
    Required,
    /// The connection runs over TLS.
    Established,
    /// The server is plain.
    Unavailable,
}

/// How option haggling ended.
pub(super) enum Negotiated {
    /// The client chose an export: transmission follows.
    Export(Export),
    /// The client asked for TLS and got `NBD_REP_ACK`: the handshake follows.
    StartTls,
    /// The client aborted, or the connection must close.
    Closed,
}

/// Option haggling, until an export is chosen, TLS is to start, or the client leaves.
pub(super) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_requests_name_their_export() {
        let mut data = 5_u32.to_be_bytes().to_vec();
        data.extend_from_slice(b"/uuid");
        data.extend_from_slice(&0_u16.to_be_bytes());
        assert_eq!(info_request_name(&data).as_deref(), Some("/uuid"));
        assert_eq!(info_request_name(&data[..6]), None, "a cut name");
    }
}
