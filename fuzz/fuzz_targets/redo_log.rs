//! The redo-log reader on arbitrary images (header, validity byte, database record, deltas,
//! replay), read both seekable and as a forward-only stream: both must reach the same outcome.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use xapi_dr::metadata::{read_redo_log, read_redo_log_stream};

fuzz_target!(|data: &[u8]| {
    let seekable = read_redo_log(Cursor::new(data));
    let streamed = read_redo_log_stream(data);
    match (&seekable, &streamed) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.final_generation, b.final_generation);
            assert_eq!(a.deltas_applied, b.deltas_applied);
            assert!(
                a.database == b.database,
                "seekable and streamed replays differ"
            );
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "seekable and streamed reads disagree: {:?} vs {:?}",
            seekable.as_ref().map(|i| i.final_generation),
            streamed.as_ref().map(|i| i.final_generation)
        ),
    }
});
