//! The transmission phase: `NBD_CMD_READ`, `NBD_CMD_WRITE` (noted for changed-block
//! tracking, refused on a read-only mirror replica), `NBD_CMD_FLUSH`, `NBD_CMD_DISC`, with
//! simple replies.

use std::io::SeekFrom;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::{Conn, Export, invalid_data};
use crate::pool::Pool;

const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;

const EPERM: u32 = 1;
const EIO: u32 = 5;
const EINVAL: u32 = 22;

/// Largest read or write accepted in one request (qemu uses 32 MiB at most).
const MAX_REQUEST: u32 = 32 << 20;

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
pub(super) async fn transmit<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    export: &Export,
    conn: &mut Conn<S>,
) -> std::io::Result<()> {
    let path = pool.storage.path(&export.uuid);
    let mut buffer = Vec::new();
    // the `cut_after_bytes` fault: this connection drops after that many bytes of read data
    let mut cut = pool.faults.take_cut();
    loop {
        if conn.read_u32().await? != REQUEST_MAGIC {
            return Err(invalid_data("bad request magic"));
        }
        let _flags = conn.read_u16().await?;
        let command = conn.read_u16().await?;
        let handle = conn.read_u64().await?;
        let offset = conn.read_u64().await?;
        let length = conn.read_u32().await?;
        // a write to an image that snapshots still share splits it first (copy-on-write)
        if command == CMD_WRITE
            && pool
                .storage
                .prepare_write_async(&export.uuid)
                .await
                .is_err()
        {
            skip_payload(conn, length, &mut buffer).await?;
            simple_reply(conn, EIO, handle, &[]).await?;
            continue;
        }
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
                if let (Ok(()), Some(left)) = (&read, cut.as_mut()) {
                    if *left < u64::from(length) {
                        let partial = &buffer[..usize::try_from(*left).unwrap_or(0)];
                        conn.write_u32(SIMPLE_REPLY_MAGIC).await?;
                        conn.write_u32(0).await?;
                        conn.write_u64(handle).await?;
                        conn.write_all(partial).await?;
                        conn.flush().await?;
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "cut by the cut_after_bytes fault",
                        ));
                    }
                    *left -= u64::from(length);
                }
                match read {
                    Ok(()) => simple_reply(conn, 0, handle, &buffer).await?,
                    Err(_) => simple_reply(conn, EIO, handle, &[]).await?,
                }
            }
            CMD_WRITE => {
                if length > MAX_REQUEST {
                    return Err(invalid_data("write too large"));
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
        return Err(invalid_data("write too large"));
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
