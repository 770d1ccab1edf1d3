//! VHD read and write throughput (dynamic and fixed) on a 64 MiB synthetic disk.

use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xapi_backup::format::vhd::{write_dynamic_vhd, write_fixed_vhd};
use xapi_benches::disk_image::{dynamic_vhd_bytes, fixed_vhd_bytes, generate_disk, vhd_options};
use xapi_benches::drain::drain_vhd;

const DISK_MIB: usize = 64;

fn vhd(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime can always be built");
    let disk = generate_disk(DISK_MIB, 42);
    let size = disk.len() as u64;
    let mut group = c.benchmark_group("vhd");
    group.sample_size(10);
    for (name, image) in [
        ("dynamic", dynamic_vhd_bytes(&disk)),
        ("fixed", fixed_vhd_bytes(&disk)),
    ] {
        group.throughput(Throughput::Bytes(image.len() as u64));
        group.bench_function(format!("read_{name}"), |b| {
            b.iter(|| {
                rt.block_on(drain_vhd(Cursor::new(image.clone())))
                    .expect("the generated VHD reads back")
            });
        });
    }
    group.throughput(Throughput::Bytes(size));
    group.bench_function("write_dynamic", |b| {
        b.iter(|| {
            rt.block_on(write_dynamic_vhd(
                Cursor::new(disk.clone()),
                size,
                vhd_options(),
                &mut tokio::io::sink(),
            ))
            .expect("writing into a sink succeeds")
        });
    });
    group.bench_function("write_fixed", |b| {
        b.iter(|| {
            rt.block_on(write_fixed_vhd(
                Cursor::new(disk.clone()),
                size,
                vhd_options(),
                &mut tokio::io::sink(),
            ))
            .expect("writing into a sink succeeds")
        });
    });
    group.finish();
}

criterion_group!(benches, vhd);
criterion_main!(benches);
