//! An NBD client for reading VDIs from XenServer / XCP-ng hosts (`VDI.get_nbd_info`), and from
//! any NBD server (`qemu-nbd`).
//!
//! Fixed newstyle handshake; `NBD_OPT_STARTTLS` trusting exactly the certificate that
//! `VDI.get_nbd_info` returns for that host (pinned by its SHA-256 fingerprint: the host's
//! certificate is self-signed and its name is the host's, not the address); `NBD_OPT_GO` with
//! the block-size information; pipelined `NBD_CMD_READ` with several requests in flight, their
//! replies matched by handle in whatever order they come; `NBD_CMD_DISC` to end.
//! [`connect_any`] tries the hosts `get_nbd_info` lists in turn.

mod error;
mod handshake;
mod protocol;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use xapi_core::api::VdiNbdServerInfoRecord;
use xapi_core::client::{Sha256Fingerprint, TlsPolicy};

pub use error::NbdError;
use protocol::{
    CMD_DISC, CMD_READ, TRANSMISSION_READ_ONLY, errno_name, request, simple_reply_header,
};

/// A byte stream to an NBD server, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection after the handshake.
type Connection = Box<dyn Io>;

/// What `NBD_OPT_GO` said about the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Export {
    /// Size in bytes.
    pub size: u64,
    /// Transmission flags.
    pub flags: u16,
    /// Minimum block size (reads must be aligned to it).
    pub min_block: u32,
    /// Preferred block size.
    pub preferred_block: u32,
    /// Largest request the server accepts.
    pub max_block: u32,
}

impl Export {
    /// Whether the server exports the disk read-only.
    pub fn is_read_only(&self) -> bool {
        self.flags & TRANSMISSION_READ_ONLY != 0
    }
}

/// Where and how to reach one export.
#[derive(Clone)]
pub struct NbdTarget {
    /// `host:port`.
    pub address: String,
    /// The export name (`/<vdi-uuid>?session_id=<ref>` for xapi: a credential, never logged).
    pub export_name: String,
    /// TLS: the client configuration and the name to present, or `None` for plain NBD.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for NbdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdTarget")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl NbdTarget {
    /// A plain (no TLS) export: `qemu-nbd` without `--tls-creds`, or a host whose NBD network
    /// has the `insecure_nbd` purpose.
    pub fn plain(address: impl Into<String>, export_name: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            export_name: export_name.into(),
            tls: None,
        }
    }

    /// The target of one `VDI.get_nbd_info` record: TLS pinned to its `cert` when it has one.
    pub fn from_info(info: &VdiNbdServerInfoRecord) -> Result<Self, NbdError> {
        let host = &*info.address;
        let address = if host.contains(':') {
            format!("[{host}]:{}", info.port)
        } else {
            format!("{host}:{}", info.port)
        };
        let tls = if info.cert.is_empty() {
            None
        } else {
            let bad = |reason: String| NbdError::Tls {
                address: address.clone(),
                reason,
            };
            let der = CertificateDer::from_pem_slice(info.cert.as_bytes())
                .map_err(|e| bad(format!("the certificate get_nbd_info returned: {e}")))?;
            let config = TlsPolicy::Pinned(Sha256Fingerprint::of_der(&der))
                .rustls_config()
                .map_err(|e| bad(e.to_string()))?;
            let name = if info.subject.is_empty() {
                host
            } else {
                &*info.subject
            };
            let server_name = ServerName::try_from(name.to_owned())
                .map_err(|e| bad(format!("server name {name:?}: {e}")))?;
            Some((config, server_name))
        };
        Ok(Self {
            address,
            export_name: (*info.exportname).to_owned(),
            tls,
        })
    }
}

/// An open NBD export.
pub struct NbdClient {
    address: String,
    connection: Connection,
    export: Export,
    next_handle: u64,
}

impl std::fmt::Debug for NbdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdClient")
            .field("address", &self.address)
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

/// Connects to the first of `targets` that answers (the hosts `VDI.get_nbd_info` lists, in
/// order); the error says how many were tried and the last failure.
pub async fn connect_any(targets: &[NbdTarget]) -> Result<NbdClient, NbdError> {
    let mut last = None;
    for target in targets {
        match NbdClient::connect(target).await {
            Ok(client) => return Ok(client),
            Err(error) => {
                tracing::warn!(address = %target.address, %error, "nbd server failed; trying the next");
                last = Some(error);
            }
        }
    }
    Err(NbdError::NoServer {
        tried: targets.len(),
        last: Box::new(last.unwrap_or(NbdError::Protocol {
            address: String::new(),
            reason: "no server given".into(),
        })),
    })
}

impl NbdClient {
    /// Connects to `target` and opens its export.
    pub async fn connect(target: &NbdTarget) -> Result<Self, NbdError> {
        let (connection, export) =
            handshake::open(&target.address, &target.export_name, target.tls.clone()).await?;
        Ok(Self {
            address: target.address.clone(),
            connection,
            export,
            next_handle: 1,
        })
    }

    /// The export as the server described it.
    pub fn export(&self) -> Export {
        self.export
    }

    /// Reads `length` bytes at `offset`.
    pub async fn read(&mut self, offset: u64, length: u32) -> Result<Bytes, NbdError> {
        let mut out = BytesMut::with_capacity(length as usize);
        self.read_ranges(&[(offset, u64::from(length))], 1, |at, data| {
            debug_assert_eq!(at, offset + out.len() as u64);
            out.extend_from_slice(&data);
            Ok(())
        })
        .await?;
        Ok(out.freeze())
    }

    /// Reads every `(offset, length)` range, split into requests of at most the server's
    /// maximum block size and 4 MiB, with up to `in_flight` requests outstanding. `sink`
    /// gets each piece with its offset, in offset order (pieces that arrive early wait, so at
    /// most `in_flight` pieces are held).
    pub async fn read_ranges(
        &mut self,
        ranges: &[(u64, u64)],
        in_flight: usize,
        mut sink: impl FnMut(u64, Bytes) -> std::io::Result<()>,
    ) -> Result<(), NbdError> {
        let piece = u64::from(self.export.max_block.clamp(4096, 4 << 20));
        let mut pieces = Vec::new();
        for &(offset, length) in ranges {
            let min = u64::from(self.export.min_block);
            if offset
                .checked_add(length)
                .is_none_or(|end| end > self.export.size)
                || offset % min != 0
                || length % min != 0
            {
                return Err(NbdError::BadRange {
                    offset,
                    length,
                    size: self.export.size,
                    min_block: self.export.min_block,
                });
            }
            let mut at = offset;
            while at < offset + length {
                let len = piece.min(offset + length - at);
                pieces.push((at, u32::try_from(len).expect("at most 4 MiB")));
                at += len;
            }
        }
        let in_flight = in_flight.max(1);
        // handle -> index into pieces
        let mut outstanding: HashMap<u64, usize> = HashMap::new();
        let mut arrived: HashMap<usize, Bytes> = HashMap::new();
        let (mut sent, mut delivered) = (0, 0);
        while delivered < pieces.len() {
            while sent < pieces.len() && outstanding.len() + arrived.len() < in_flight {
                let (offset, length) = pieces[sent];
                let handle = self.next_handle;
                self.next_handle += 1;
                self.connection
                    .write_all(&request(CMD_READ, handle, offset, length))
                    .await
                    .map_err(|source| self.io("sending a read request", source))?;
                outstanding.insert(handle, sent);
                sent += 1;
            }
            self.connection
                .flush()
                .await
                .map_err(|source| self.io("sending read requests", source))?;
            let (handle, data) = self.read_reply(&outstanding, &pieces).await?;
            let index = outstanding.remove(&handle).expect("checked in read_reply");
            arrived.insert(index, data);
            while let Some(data) = arrived.remove(&delivered) {
                let offset = pieces[delivered].0;
                sink(offset, data).map_err(|source| NbdError::Sink { offset, source })?;
                delivered += 1;
            }
        }
        Ok(())
    }

    async fn read_reply(
        &mut self,
        outstanding: &HashMap<u64, usize>,
        pieces: &[(u64, u32)],
    ) -> Result<(u64, Bytes), NbdError> {
        let mut header = [0_u8; 16];
        self.connection
            .read_exact(&mut header)
            .await
            .map_err(|source| self.io("reading a reply", source))?;
        let (error, handle) = simple_reply_header(&header).map_err(|magic| NbdError::Protocol {
            address: self.address.clone(),
            reason: format!("reply magic {magic:#010x} (structured replies were not asked for)"),
        })?;
        let Some(&index) = outstanding.get(&handle) else {
            return Err(NbdError::Protocol {
                address: self.address.clone(),
                reason: format!("a reply to handle {handle}, which is not outstanding"),
            });
        };
        let (offset, length) = pieces[index];
        if error != 0 {
            return Err(NbdError::Read {
                address: self.address.clone(),
                offset,
                length,
                error,
                errno: errno_name(error),
            });
        }
        let mut data = BytesMut::zeroed(length as usize);
        self.connection
            .read_exact(&mut data)
            .await
            .map_err(|source| self.io("reading read data", source))?;
        Ok((handle, data.freeze()))
    }

    fn io(&self, during: &'static str, source: std::io::Error) -> NbdError {
        NbdError::Io {
            address: self.address.clone(),
            during,
            source,
        }
    }

    /// Ends the session with `NBD_CMD_DISC` and closes the connection.
    pub async fn disconnect(mut self) -> Result<(), NbdError> {
        let handle = self.next_handle;
        self.connection
            .write_all(&request(CMD_DISC, handle, 0, 0))
            .await
            .map_err(|source| self.io("sending NBD_CMD_DISC", source))?;
        self.connection
            .shutdown()
            .await
            .map_err(|source| self.io("closing", source))
    }
}
