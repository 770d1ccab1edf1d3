//! Writer round trip: extents encoded as a chunked-upload body read back as the same data at
//! the same offsets.
#![no_main]

use std::io::Cursor;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use xapi_backup::format::chunked::{ChunkedReader, encode_extents};
use xapi_fuzz::{DiskImage, block_on};

#[derive(Debug, Arbitrary)]
struct Input {
    /// (gap before the extent, its bytes)
    extents: Vec<(u16, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    let mut offset = 0u64;
    let mut placed = Vec::new();
    for (gap, data) in &input.extents {
        offset += u64::from(*gap);
        placed.push((offset, data.as_slice()));
        offset += data.len() as u64;
    }
    let size = offset;
    let body = encode_extents(placed.iter().copied());
    let mut expected = vec![0u8; size as usize];
    for (at, data) in &placed {
        expected[*at as usize..*at as usize + data.len()].copy_from_slice(data);
    }
    block_on(async {
        let mut reader = ChunkedReader::new(Cursor::new(body), Some(size));
        let mut image = DiskImage::default();
        while let Some(extent) = reader
            .next_extent()
            .await
            .unwrap_or_else(|err| panic!("the encoded body does not read back: {err}"))
        {
            image.place(extent.offset, &extent.data, size, true);
        }
        image.bytes.resize(expected.len(), 0);
        assert!(
            image.bytes == expected,
            "extents differ after a chunked round trip"
        );
    });
});
