//! The raw `format=tar` reader on arbitrary bytes; the first four bytes give the disk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::raw_tar::RawTarReader;
use xapi_backup::format::xva::{AfterEndOfArchive, ChecksumText, MismatchPolicy, ReadOptions};
use xapi_fuzz::{DiskImage, block_on, option_bit};

fuzz_target!(|data: &[u8]| {
    let Some((size, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let size = u64::from(u32::from_le_bytes(*size));
    let options = ReadOptions {
        max_chunk: 4 << 20,
        max_ova_xml: 4 << 20,
        // every option: bits of the last input byte pick (Record hands out mismatching
        // chunks, Stop reads nothing past the end-of-archive marker, Exact compares checksum
        // texts byte for byte)
        on_checksum_mismatch: if option_bit(body, 0) {
            MismatchPolicy::Record
        } else {
            MismatchPolicy::Fail
        },
        after_end_of_archive: if option_bit(body, 1) {
            AfterEndOfArchive::Stop
        } else {
            AfterEndOfArchive::Drain
        },
        checksum_text: if option_bit(body, 2) {
            ChecksumText::Exact
        } else {
            ChecksumText::Lenient
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
