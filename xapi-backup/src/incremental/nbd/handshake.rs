//! The fixed-newstyle handshake: greeting, optional `NBD_OPT_STARTTLS`, then `NBD_OPT_GO` with
//! the block-size information.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::error::NbdError;
use super::protocol::{
    CLIENT_FIXED_NEWSTYLE, CLIENT_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT,
    INFO_BLOCK_SIZE, INFO_EXPORT, NBD_MAGIC, OPT_GO, OPT_STARTTLS, REP_ACK, REP_ERROR_BIT,
    REP_INFO, go_data, option_reply_header, option_request, reply_error_name,
};
use super::{Connection, Export};

/// The longest option reply accepted (names, descriptions and info are short).
const MAX_OPTION_REPLY: u32 = 64 * 1024;

fn io<'a>(address: &'a str, during: &'static str) -> impl Fn(std::io::Error) -> NbdError + 'a {
    move |source| NbdError::Io {
        address: address.to_owned(),
        during,
        source,
    }
}

/// Reads the greeting and answers it; the server's handshake flags.
async fn greet(stream: &mut TcpStream, address: &str) -> Result<u16, NbdError> {
    let mut greeting = [0_u8; 18];
    stream
        .read_exact(&mut greeting)
        .await
        .map_err(io(address, "reading the greeting"))?;
    let magic = u64::from_be_bytes(greeting[0..8].try_into().expect("8 bytes"));
    let opt = u64::from_be_bytes(greeting[8..16].try_into().expect("8 bytes"));
    if magic != NBD_MAGIC || opt != IHAVEOPT {
        return Err(NbdError::NotNbd {
            address: address.to_owned(),
            reason: format!("greeting {magic:#018x} {opt:#018x}"),
        });
    }
    let flags = u16::from_be_bytes([greeting[16], greeting[17]]);
    if flags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(NbdError::NotNbd {
            address: address.to_owned(),
            reason: "the server is not fixed-newstyle".into(),
        });
    }
    let mut client = CLIENT_FIXED_NEWSTYLE;
    if flags & FLAG_NO_ZEROES != 0 {
        client |= CLIENT_NO_ZEROES;
    }
    stream
        .write_all(&client.to_be_bytes())
        .await
        .map_err(io(address, "sending the client flags"))?;
    Ok(flags)
}

/// Reads one option reply: (reply type, data).
async fn option_reply<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    address: &str,
    option: u32,
    option_name: &'static str,
) -> Result<(u32, Vec<u8>), NbdError> {
    let mut header = [0_u8; 20];
    stream
        .read_exact(&mut header)
        .await
        .map_err(io(address, "reading an option reply"))?;
    let (answered, reply, length) =
        option_reply_header(&header).map_err(|magic| NbdError::NotNbd {
            address: address.to_owned(),
            reason: format!("option reply magic {magic:#018x}"),
        })?;
    if answered != option || length > MAX_OPTION_REPLY {
        return Err(NbdError::NotNbd {
            address: address.to_owned(),
            reason: format!(
                "reply to option {answered} ({length} bytes) while {option_name} was asked"
            ),
        });
    }
    let mut data = vec![0_u8; length as usize];
    stream
        .read_exact(&mut data)
        .await
        .map_err(io(address, "reading an option reply"))?;
    if reply & REP_ERROR_BIT != 0 {
        return Err(NbdError::OptionRefused {
            address: address.to_owned(),
            option: option_name,
            reply: reply_error_name(reply),
            message: String::from_utf8_lossy(&data).into_owned(),
        });
    }
    Ok((reply, data))
}

/// `NBD_OPT_GO`: the export's size, flags and block sizes.
async fn go<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    address: &str,
    name: &str,
) -> Result<Export, NbdError> {
    stream
        .write_all(&option_request(OPT_GO, &go_data(name)))
        .await
        .map_err(io(address, "sending NBD_OPT_GO"))?;
    let mut export = Export {
        size: 0,
        flags: 0,
        min_block: 1,
        preferred_block: 4096,
        max_block: 32 * 1024 * 1024,
    };
    let mut sized = false;
    loop {
        let (reply, data) = option_reply(stream, address, OPT_GO, "NBD_OPT_GO").await?;
        match reply {
            REP_ACK => break,
            REP_INFO if data.len() >= 2 => {
                let kind = u16::from_be_bytes([data[0], data[1]]);
                if kind == INFO_EXPORT && data.len() >= 12 {
                    export.size = u64::from_be_bytes(data[2..10].try_into().expect("8 bytes"));
                    export.flags = u16::from_be_bytes([data[10], data[11]]);
                    sized = true;
                } else if kind == INFO_BLOCK_SIZE && data.len() >= 14 {
                    let word = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().expect("4"));
                    export.min_block = word(2).max(1);
                    export.preferred_block = word(6);
                    export.max_block = word(10);
                }
            }
            _ => {}
        }
    }
    if !sized {
        return Err(NbdError::NotNbd {
            address: address.to_owned(),
            reason: "NBD_OPT_GO ended without the export's size".into(),
        });
    }
    Ok(export)
}

/// Connects, upgrades to TLS with `tls` when given (the server name is `server_name`), and
/// opens the export `name`.
pub(super) async fn open(
    address: &str,
    name: &str,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
) -> Result<(Connection, Export), NbdError> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|source| NbdError::Connect {
            address: address.to_owned(),
            source,
        })?;
    stream.set_nodelay(true).ok();
    greet(&mut stream, address).await?;
    match tls {
        None => {
            let export = go(&mut stream, address, name).await?;
            Ok((Box::new(stream), export))
        }
        Some((config, server_name)) => {
            stream
                .write_all(&option_request(OPT_STARTTLS, &[]))
                .await
                .map_err(io(address, "sending NBD_OPT_STARTTLS"))?;
            let (reply, _) =
                option_reply(&mut stream, address, OPT_STARTTLS, "NBD_OPT_STARTTLS").await?;
            if reply != REP_ACK {
                return Err(NbdError::NotNbd {
                    address: address.to_owned(),
                    reason: format!("NBD_OPT_STARTTLS answered with reply {reply}"),
                });
            }
            let mut tls = TlsConnector::from(config)
                .connect(server_name, stream)
                .await
                .map_err(|err| NbdError::Tls {
                    address: address.to_owned(),
                    reason: err.to_string(),
                })?;
            let export = go(&mut tls, address, name).await?;
            Ok((Box::new(tls), export))
        }
    }
}
