//! Pool metadata: parsing (and writing) the XML dump of a 10,000-VM pool, and reading a redo
//! log whose valid half holds a database record followed by 100,000 deltas (replay included).

use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xapi_benches::pool_metadata::{db_xml_dump, redo_log_image};
use xapi_dr::metadata::{db_xml_bytes, read_db_xml, read_redo_log};

fn metadata(c: &mut Criterion) {
    let mut group = c.benchmark_group("metadata");
    group.sample_size(10);

    let xml = db_xml_dump(10_000);
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("db_xml_parse_10000_vms", |b| {
        b.iter(|| read_db_xml(&xml[..]).expect("the generated dump parses"));
    });
    let db = read_db_xml(&xml[..]).expect("the generated dump parses");
    group.bench_function("db_xml_write_10000_vms", |b| b.iter(|| db_xml_bytes(&db)));
    drop(db);
    drop(xml);

    let (image, _) = redo_log_image(1_000, 100_000, 5);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("redo_log_replay_100000_deltas", |b| {
        b.iter(|| {
            let replayed = read_redo_log(Cursor::new(&image[..])).expect("the image reads");
            assert_eq!(replayed.deltas_applied, 100_000);
            replayed
        });
    });
    group.finish();
}

criterion_group!(benches, metadata);
criterion_main!(benches);
