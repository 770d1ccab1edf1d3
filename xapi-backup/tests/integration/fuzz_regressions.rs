//! Inputs the fuzz targets in `fuzz/` found to crash a reader, kept so the fixes stay fixed.
//! Each test names its target and says what went wrong.

use xapi_backup::Error;
use xapi_backup::format::chunked::{ChunkedError, ChunkedReader};

async fn drain_chunked(body: &[u8], size: Option<u64>) -> Result<Vec<(u64, usize)>, Error> {
    let mut reader = ChunkedReader::new(body, size);
    let mut extents = Vec::new();
    while let Some(extent) = reader.next_extent().await? {
        extents.push((extent.offset, extent.data.len()));
    }
    Ok(extents)
}

/// Target `chunked`: an extent at disk offset 2^64 - 2 with 4 bytes made `offset + n` overflow
/// (a panic in debug builds, silently wrapped offsets in release builds) when no disk size
/// bounded the body.
#[tokio::test]
async fn chunked_extent_whose_end_overflows_is_refused() {
    let mut body = Vec::new();
    body.extend_from_slice(&0xFFFF_FFFF_FFFF_FFFEu64.to_le_bytes());
    body.extend_from_slice(&4u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0, 0xFD]);
    let err = drain_chunked(&body, None)
        .await
        .expect_err("an extent ending past 2^64 cannot be placed");
    match err {
        Error::Chunked(ChunkedError::ExtentOverflows {
            stream_offset,
            offset,
            len,
        }) => {
            assert_eq!(stream_offset, 0);
            assert_eq!(offset, 0xFFFF_FFFF_FFFF_FFFE);
            assert_eq!(len, 4);
        }
        other => panic!("unexpected error: {other}"),
    }
    // The largest extent that still fits is accepted.
    let mut body = Vec::new();
    body.extend_from_slice(&(u64::MAX - 4).to_le_bytes());
    body.extend_from_slice(&4u32.to_le_bytes());
    body.extend_from_slice(&[1, 2, 3, 4]);
    body.extend_from_slice(&[0; 12]);
    assert_eq!(
        drain_chunked(&body, None).await.expect("a fitting extent"),
        vec![(u64::MAX - 4, 4)]
    );
}
