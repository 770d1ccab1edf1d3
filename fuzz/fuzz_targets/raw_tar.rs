//! The raw `format=tar` reader on arbitrary bytes; the first four bytes give the disk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::raw_tar::RawTarReader;
use xapi_fuzz::{DiskImage, block_on, fuzzed_read_options};

fuzz_target!(|data: &[u8]| {
    let Some((size, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let size = u64::from(u32::from_le_bytes(*size));
    let options = fuzzed_read_options(body);
    block_on(async {
        let Ok(mut reader) =
            RawTarReader::open(std::io::Cursor::new(body.to_vec()), size, options).await
        else {
            return;
        };
        let mut image = DiskImage::default();
        while let Ok(Some(chunk)) = reader.next_chunk().await {
            image.place(chunk.offset, &chunk.data, size, false);
        }
    });
});
