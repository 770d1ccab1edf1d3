//! Database replication into metadata VDIs: each active redo log gets the whole database when
//! it starts, then one delta per persistent change, and a new full database in the other half
//! when the valid half is full or on `pool.sync_database` (xapi's `Redo_log`).

use std::fs::File;

use xapi_dr::metadata::redo_log::AppendOutcome;
use xapi_dr::metadata::{Delta, RedoLogError, RedoLogWriter, db_xml_bytes};

/// One active redo log.
#[derive(Debug)]
pub(crate) struct Replica {
    /// The metadata VDI written to.
    pub(crate) vdi_uuid: String,
    writer: RedoLogWriter<File>,
}

impl Replica {
    /// Start a log on `file` (an existing log keeps its valid half until the first full
    /// database lands) with a writer `marker`.
    pub(crate) fn open(vdi_uuid: &str, file: File, marker: &str) -> Result<Self, RedoLogError> {
        Ok(Self {
            vdi_uuid: vdi_uuid.to_owned(),
            writer: RedoLogWriter::open(file, marker)?,
        })
    }

    /// Write the whole database (as DB XML) with its generation.
    pub(crate) fn write_database(
        &mut self,
        xml: &[u8],
        generation: i64,
    ) -> Result<(), RedoLogError> {
        self.writer.write_database_xml(xml, generation)
    }

    /// Append one delta; `current_xml` gives the database with it applied, for a rollover.
    pub(crate) fn append(
        &mut self,
        delta: &Delta,
        generation: i64,
        current_xml: impl FnOnce() -> Vec<u8>,
    ) -> Result<AppendOutcome, RedoLogError> {
        self.writer.append_with(delta, generation, current_xml)
    }
}

/// The DB XML of a database, for rollovers.
pub(crate) fn xml_of(db: &xapi_dr::metadata::Database) -> Vec<u8> {
    db_xml_bytes(db)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use xapi_core::wire::Value;
    use xapi_dr::metadata::read_redo_log;
    use xapi_dr::metadata::redo_log::LOG_SIZE;

    use super::*;
    use crate::model::db_form::to_database;
    use crate::model::store::Db;
    use crate::model::store::tests::TEST_CLASSES;

    fn text(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[test]
    fn redo_log_image_reads_back_as_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.img");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(LOG_SIZE)
            .unwrap();
        let mut db = Db::new(TEST_CLASSES, "t");
        let early = db
            .create(
                "VM",
                BTreeMap::from([("name_label".to_owned(), text("early"))]),
            )
            .unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        db.start_replica(
            Replica::open("vdi", file, "00000000-0000-4000-8000-000000000001").unwrap(),
        )
        .unwrap();
        let started_at = db.generation() as i64;

        // creates, field writes (with spaces and quotes), relations, deletes
        let vm = db
            .create(
                "VM",
                BTreeMap::from([("name_label".to_owned(), text("web 01"))]),
            )
            .unwrap();
        let vbd = db
            .create("VBD", BTreeMap::from([("VM".to_owned(), text(&vm))]))
            .unwrap();
        db.set_field(
            "VM",
            &vm,
            "other_config",
            Value::Struct(BTreeMap::from([(
                "k".to_owned(),
                text("it's 50% \"full\""),
            )])),
        )
        .unwrap();
        db.set_field("VBD", &vbd, "VM", text(&early)).unwrap();
        let doomed = db.create("VM", BTreeMap::new()).unwrap();
        db.destroy("VM", &doomed).unwrap();
        // enough large writes to fill a 60 MiB half and roll over into the other
        let big = "x".repeat(512 << 10);
        for i in 0..130 {
            db.set_field("VM", &vm, "name_label", text(&format!("{i} {big}")))
                .unwrap();
        }
        db.set_field("VM", &vm, "name_label", text("final name"))
            .unwrap();
        db.destroy("VBD", &vbd).unwrap();

        let image = read_redo_log(std::fs::File::open(&path).unwrap()).unwrap();
        assert!(
            image.record_generation > started_at,
            "a rollover wrote a newer full database"
        );
        assert!(
            image.deltas_applied > 0,
            "deltas follow the rollover's database"
        );
        assert_eq!(image.final_generation, db.generation() as i64);
        let mut replayed = image.database;
        replayed.recompute_relations();
        let mut live = to_database(&db);
        live.recompute_relations();
        assert_eq!(replayed, live);
    }
}
