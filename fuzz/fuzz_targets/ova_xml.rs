//! `ova.xml` parsing on arbitrary bytes; whatever parses must survive the writer: parsing what
//! `to_xml` writes gives the same document back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_backup::format::ova_xml::OvaXml;

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
    assert_eq!(ova, again, "ova.xml round trip changed the document");
});
