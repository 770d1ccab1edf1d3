//! Pool metadata inputs: a database dump of a pool of any size (from
//! [`xapi_dr::metadata::testing`]) and a redo log carrying that database followed by a long run
//! of realistic deltas, written by the project's own redo-log writer.

use std::io::Cursor;

use xapi_dr::metadata::redo_log::{HALF_SIZE, LOG_SIZE};
use xapi_dr::metadata::testing::{PoolShape, generate_pool};
use xapi_dr::metadata::{Database, Delta, RedoLogWriter, db_xml_bytes};

use crate::api_records::{opaque_ref, uuid};
use crate::rng::SplitMix64;

/// The XML dump of a generated pool of `vms` VMs.
pub fn db_xml_dump(vms: usize) -> Vec<u8> {
    db_xml_bytes(&generate_pool(PoolShape::with_vms(vms)))
}

/// The changes a running pool logs: VM power cycles and metrics updates (`WriteField`),
/// tasks created and destroyed (`CreateRow` / `DeleteRow`). Every delta applies to `db` in
/// order; `db` is updated as it goes.
pub fn realistic_deltas(db: &mut Database, count: usize, seed: u64) -> Vec<Delta> {
    let mut rng = SplitMix64::new(seed);
    let vms: Vec<String> = db.rows("VM").map(|(r, _)| r.to_owned()).collect();
    assert!(!vms.is_empty(), "the pool has VMs to change");
    let mut tasks: Vec<String> = Vec::new();
    let mut deltas = Vec::with_capacity(count);
    // Rows touched by a replayed delta are stamped with the database's own running generation
    // (which starts at the loaded one and moves only when a delta changes something), not with
    // the delta's: track it the same way so `db` equals what a reader replays.
    let mut stamp = db.generation();
    while deltas.len() < count {
        let roll = rng.below(10);
        let delta = if roll < 2 {
            let reference = opaque_ref(&mut rng);
            tasks.push(reference.clone());
            Delta::CreateRow {
                table: "task".to_owned(),
                reference: reference.clone(),
                columns: vec![
                    ("_ref".to_owned(), reference),
                    ("uuid".to_owned(), uuid(&mut rng)),
                    ("name__label".to_owned(), "Async.VM.start".to_owned()),
                    ("status".to_owned(), "pending".to_owned()),
                    ("progress".to_owned(), "0.".to_owned()),
                    ("created".to_owned(), "20261122T01:23:45Z".to_owned()),
                    ("other_config".to_owned(), "()".to_owned()),
                ],
            }
        } else if roll < 4 && !tasks.is_empty() {
            let at = rng.below(tasks.len() as u64) as usize;
            Delta::DeleteRow {
                table: "task".to_owned(),
                reference: tasks.swap_remove(at),
            }
        } else {
            let vm = rng.pick(&vms).clone();
            let (column, value) = match rng.below(4) {
                0 => (
                    "power_state",
                    (*rng.pick(&["Running", "Halted", "Paused", "Suspended"])).to_owned(),
                ),
                1 => ("domid", rng.below(5000).to_string()),
                2 => (
                    "other_config",
                    format!(
                        "(('last_shutdown_time' '20261122T0{}:00:00Z') ('mac_seed' '{}'))",
                        rng.below(10),
                        uuid(&mut rng)
                    ),
                ),
                _ => ("name__description", format!("owner team-{}", rng.below(40))),
            };
            Delta::WriteField {
                table: "VM".to_owned(),
                reference: vm,
                column: column.to_owned(),
                value,
            }
        };
        let changed = delta
            .apply(db, stamp)
            .expect("generated deltas apply in order");
        if changed {
            stamp += 1;
        }
        deltas.push(delta);
    }
    deltas
}

/// A redo-log image (the 120 MiB the reader looks at) holding a database record of a pool of
/// `vms` VMs followed by `deltas` deltas, with the database as it is after them.
///
/// # Panics
/// If the database and deltas do not fit one 60 MiB half (choose fewer VMs).
pub fn redo_log_image(vms: usize, deltas: usize, seed: u64) -> (Vec<u8>, Database) {
    let mut db = generate_pool(PoolShape::with_vms(vms));
    let start = db.generation();
    let mut writer = RedoLogWriter::create(
        Cursor::new(Vec::with_capacity(LOG_SIZE as usize)),
        "7b9ce4e0-49d6-4a47-8d0c-1e7c6b3b2a10",
    )
    .expect("creating a redo log in memory cannot fail");
    writer
        .write_database(&db, start)
        .expect("the database fits one half");
    let changes = realistic_deltas(&mut db, deltas, seed);
    for (i, delta) in changes.iter().enumerate() {
        let outcome = writer
            .append_with(delta, start + i as i64 + 1, || {
                panic!("the deltas must fit in one {HALF_SIZE}-byte half")
            })
            .expect("appending to a redo log in memory cannot fail");
        let _ = outcome;
    }
    (writer.into_inner().into_inner(), db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xapi_dr::metadata::{read_db_xml, read_redo_log};

    #[test]
    fn dump_parses_back_with_its_vms() {
        let xml = db_xml_dump(20);
        let db = read_db_xml(&xml[..]).expect("the generated dump parses");
        assert!(db.rows("VM").count() >= 20);
    }

    #[test]
    fn redo_log_replays_to_the_database_after_the_deltas() {
        let (image, expected) = redo_log_image(10, 500, 3);
        let replayed = read_redo_log(Cursor::new(image)).expect("the image reads");
        assert_eq!(replayed.deltas_applied, 500);
        assert_eq!(replayed.deltas_skipped, 0);
        assert_eq!(replayed.final_generation, replayed.record_generation + 500);
        for table in ["VM", "task"] {
            let got: Vec<_> = replayed.database.rows(table).collect();
            let want: Vec<_> = expected.rows(table).collect();
            assert!(
                got == want,
                "table {table} differs after replay (values or row stamps)"
            );
        }
    }
}
