//! Writer round trip: any disk written as a fixed or dynamic VHD (any valid block size) reads
//! back to exactly the same bytes and size.
#![no_main]

use std::io::Cursor;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use xapi_backup::format::vhd::{VhdReader, VhdWriteOptions, write_dynamic_vhd, write_fixed_vhd};
use xapi_fuzz::disk_recipe::{Run, build_disk};
use xapi_fuzz::{DiskImage, block_on};

#[derive(Debug, Arbitrary)]
struct Input {
    dynamic: bool,
    /// Block size 4 KiB << (n % 10): 4 KiB to 2 MiB.
    block_shift: u8,
    runs: Vec<Run>,
}

fuzz_target!(|input: Input| {
    let disk = build_disk(&input.runs, 3 << 20, 512);
    let size = disk.len() as u64;
    let options = VhdWriteOptions {
        block_size: 4096 << (input.block_shift % 10),
        uuid: [7; 16],
        timestamp: 1,
    };
    block_on(async {
        let mut vhd = Vec::new();
        let written = if input.dynamic {
            write_dynamic_vhd(Cursor::new(disk.clone()), size, options, &mut vhd).await
        } else {
            write_fixed_vhd(Cursor::new(disk.clone()), size, options, &mut vhd).await
        };
        let written =
            written.unwrap_or_else(|err| panic!("writing a {size}-byte VHD failed: {err}"));
        assert_eq!(
            written,
            vhd.len() as u64,
            "reported length differs from bytes written"
        );
        let mut reader = VhdReader::open(Cursor::new(vhd))
            .await
            .unwrap_or_else(|err| panic!("the written VHD does not open: {err}"));
        let mut image = DiskImage::default();
        while let Some(extent) = reader
            .next_extent()
            .await
            .unwrap_or_else(|err| panic!("the written VHD does not read back: {err}"))
        {
            image.place(extent.offset, &extent.data, size, true);
        }
        assert_eq!(reader.footer().map(|f| f.current_size), Some(size));
        image.bytes.resize(disk.len(), 0);
        assert!(
            image.bytes == disk,
            "disk bytes differ after a VHD round trip"
        );
    });
});
