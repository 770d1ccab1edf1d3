//! The streaming VHD reader on arbitrary bytes: footer, dynamic header, BAT, parent locators,
//! sector bitmaps. Extents must lie inside the disk, in increasing order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::vhd::VhdReader;
use xapi_fuzz::{DiskImage, block_on};

fuzz_target!(|data: &[u8]| {
    block_on(async {
        let Ok(mut reader) = VhdReader::open(std::io::Cursor::new(data.to_vec())).await else {
            return;
        };
        let _ = reader.parent_locators();
        let mut image = DiskImage::default();
        let mut extents = Vec::new();
        loop {
            match reader.next_extent().await {
                Ok(Some(extent)) => extents.push(extent),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        // Only a stream that ended cleanly has a known size (fixed disks: the trailing footer).
        let size = reader
            .footer()
            .expect("a VHD that read to its end has a footer")
            .current_size;
        for extent in &extents {
            image.place(extent.offset, &extent.data, size, false);
        }
    });
});
