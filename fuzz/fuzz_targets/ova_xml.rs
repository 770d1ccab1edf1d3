//! `ova.xml` parsing on arbitrary bytes; whatever parses must survive the writer. The reader is
//! lenient (it takes characters XML forbids, such as NUL, which the writer drops as xapi's
//! does), so the property is on the written form: it parses, and writing it again gives the
//! same bytes; where nothing was dropped, the document itself comes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::ova_xml::OvaXml;

/// Whether the input may carry characters XML forbids: raw control bytes or character
/// references (`&#1;`).
fn has_forbidden_characters(data: &[u8]) -> bool {
    data.iter()
        .any(|&b| b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r'))
        || data.windows(2).any(|w| w == b"&#")
}

fuzz_target!(|data: &[u8]| {
    let Ok(ova) = OvaXml::parse(data) else {
        return;
    };
    let _ = ova.disks();
    let _ = ova.vms();
    let _ = ova.vifs();
    let written = ova.to_xml();
    let again = OvaXml::parse(written.as_bytes())
        .unwrap_or_else(|err| panic!("the writer's output does not parse: {err}\n{written}"));
    assert_eq!(
        again.to_xml(),
        written,
        "writing a written ova.xml changed it"
    );
    if !has_forbidden_characters(data) {
        assert_eq!(ova, again, "ova.xml round trip changed the document");
    }
});
