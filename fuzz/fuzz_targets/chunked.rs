//! The chunked-upload reader on arbitrary bytes; the first byte says whether a disk size (the
//! next four bytes) bounds the extents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::chunked::ChunkedReader;
use xapi_fuzz::block_on;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (size, body) = match rest.split_first_chunk::<4>() {
        Some((size, body)) if flag & 1 == 1 => (Some(u64::from(u32::from_le_bytes(*size))), body),
        _ => (None, rest),
    };
    block_on(async {
        let mut reader = ChunkedReader::new(std::io::Cursor::new(body.to_vec()), size);
        let mut consumed = 0u64;
        while let Ok(Some(extent)) = reader.next_extent().await {
            consumed += extent.data.len() as u64;
            assert!(consumed <= body.len() as u64, "more data out than in");
            if let Some(size) = size {
                assert!(
                    extent.offset + extent.data.len() as u64 <= size,
                    "extent beyond the disk"
                );
            }
        }
    });
});
