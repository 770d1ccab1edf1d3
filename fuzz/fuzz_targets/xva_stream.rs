//! The XVA reader on arbitrary bytes: tar framing, ova.xml, chunk names, checksums and
//! compression detection together. It must return an error or well-placed chunks, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::xva::XvaReader;
use xapi_fuzz::{DiskImage, block_on, fuzzed_read_options};

fuzz_target!(|data: &[u8]| {
    let options = fuzzed_read_options(data);
    block_on(async {
        let Ok(mut reader) = XvaReader::open(std::io::Cursor::new(data.to_vec()), options).await
        else {
            return;
        };
        let sizes: Vec<u64> = reader.disks().iter().map(|d| d.virtual_size).collect();
        let mut images: Vec<DiskImage> = sizes.iter().map(|_| DiskImage::default()).collect();
        let mut last_disk = 0;
        while let Ok(Some(chunk)) = reader.next_chunk().await {
            assert!(chunk.disk >= last_disk, "disks come in order");
            last_disk = chunk.disk;
            images[chunk.disk].place(chunk.offset, &chunk.data, sizes[chunk.disk], false);
        }
    });
});
