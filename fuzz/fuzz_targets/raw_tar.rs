//! The raw `format=tar` reader on arbitrary bytes; the first four bytes give the disk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::raw_tar::RawTarReader;
use xapi_backup::format::xva::{MismatchPolicy, ReadOptions};
use xapi_fuzz::{DiskImage, block_on};

fuzz_target!(|data: &[u8]| {
    let Some((size, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let size = u64::from(u32::from_le_bytes(*size));
    let options = ReadOptions {
        max_chunk: 4 << 20,
        max_ova_xml: 4 << 20,
        // both policies: the last input byte picks (Record hands out mismatching chunks)
        on_checksum_mismatch: if body.last().is_some_and(|b| b & 1 == 1) {
            MismatchPolicy::Record
        } else {
            MismatchPolicy::Fail
        },
    };
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
