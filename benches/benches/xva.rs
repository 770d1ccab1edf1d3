//! XVA read (with xxhash and sha1 verification) and write throughput, and the raw-tar and
//! chunked readers, on a 64 MiB synthetic disk.

use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xapi_backup::format::xva::ChecksumKind;
use xapi_benches::disk_image::{
    chunked_bytes, generate_disk, raw_tar_bytes, write_xva_into, xva_bytes,
};
use xapi_benches::drain::{drain_chunked, drain_raw_tar, drain_xva};

const DISK_MIB: usize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime can always be built")
}

fn xva(c: &mut Criterion) {
    let rt = runtime();
    let disk = generate_disk(DISK_MIB, 42);
    let mut group = c.benchmark_group("xva");
    group.sample_size(10);
    for (name, kind) in [
        ("xxhash", ChecksumKind::Xxhash),
        ("sha1", ChecksumKind::Sha1),
    ] {
        let file = xva_bytes(&disk, kind);
        group.throughput(Throughput::Bytes(file.len() as u64));
        group.bench_function(format!("read_verify_{name}"), |b| {
            b.iter(|| {
                rt.block_on(drain_xva(Cursor::new(file.clone())))
                    .expect("the generated XVA reads back")
            });
        });
        group.bench_function(format!("write_{name}"), |b| {
            b.iter(|| {
                rt.block_on(write_xva_into(&disk, kind, &mut tokio::io::sink()))
                    .expect("writing into a sink succeeds")
            });
        });
    }
    let tar = raw_tar_bytes(&disk, ChecksumKind::Xxhash);
    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.bench_function("raw_tar_read_verify_xxhash", |b| {
        b.iter(|| {
            rt.block_on(drain_raw_tar(Cursor::new(tar.clone()), disk.len() as u64))
                .expect("the generated raw tar reads back")
        });
    });
    let body = chunked_bytes(&disk);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked_read", |b| {
        b.iter(|| {
            rt.block_on(drain_chunked(
                Cursor::new(body.clone()),
                Some(disk.len() as u64),
            ))
            .expect("the generated chunked body reads back")
        });
    });
    group.finish();
}

criterion_group!(benches, xva);
criterion_main!(benches);
