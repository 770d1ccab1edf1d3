//! The `<SRlist>` document `SR.probe` answers with `sm_config = {metadata: true}`: the SRs
//! behind a device config that hold pool metadata (reference §8).
//!
//! ```xml
//! <SRlist><SR><UUID>...</UUID><name_label>...</name_label><name_description>...</name_description></SR></SRlist>
//! ```
//! Whitespace between elements (SM's pretty-printed form) and elements other than these three
//! inside an `<SR>` are allowed; text is unescaped.

use quick_xml::Reader;
use quick_xml::events::Event;
use serde::Serialize;

use super::SourceError;

/// An SR listed by `SR.probe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbedSr {
    /// Its UUID (what `DR_task.create`'s whitelist takes).
    pub uuid: String,
    /// Its name on the pool that created it.
    pub name_label: String,
    /// Its description.
    pub name_description: String,
}

/// Which field of the current `<SR>` text goes to.
#[derive(Clone, Copy)]
enum Field {
    Uuid,
    NameLabel,
    NameDescription,
    Other,
}

/// Parses an `<SRlist>` document.
pub fn parse_sr_list(xml: &str) -> Result<Vec<ProbedSr>, SourceError> {
    let bad = |reason: String| SourceError::BadSrList {
        reason,
        excerpt: xml.chars().take(80).collect(),
    };
    let mut reader = Reader::from_str(xml);
    let mut srs = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut current: Option<ProbedSr> = None;
    let mut field: Option<Field> = None;
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                match (depth, name.as_ref()) {
                    (0, "SRlist") => seen_root = true,
                    (0, other) => return Err(bad(format!("byte {offset}: root <{other}>"))),
                    (1, "SR") => {
                        current = Some(ProbedSr {
                            uuid: String::new(),
                            name_label: String::new(),
                            name_description: String::new(),
                        });
                    }
                    (2, child) => {
                        field = Some(match child {
                            "UUID" => Field::Uuid,
                            "name_label" => Field::NameLabel,
                            "name_description" => Field::NameDescription,
                            _ => Field::Other,
                        });
                    }
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 0 => {
                if e.local_name().as_ref() != "SRlist" {
                    return Err(bad(format!(
                        "byte {offset}: root <{}>",
                        e.local_name().as_ref()
                    )));
                }
                seen_root = true;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    2 => field = None,
                    1 => {
                        if let Some(sr) = current.take() {
                            if sr.uuid.is_empty() {
                                return Err(bad(format!("byte {offset}: an <SR> without <UUID>")));
                            }
                            srs.push(sr);
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(text) => {
                let text = text.xml10_content();
                push_text(current.as_mut(), field, &text);
            }
            Event::CData(text) => {
                let text = text.xml10_content();
                push_text(current.as_mut(), field, &text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match reference.xml10_content().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(bad(format!("byte {offset}: unknown entity &{other};")));
                        }
                    },
                    Err(e) => return Err(bad(format!("byte {offset}: {e}"))),
                };
                push_text(current.as_mut(), field, resolved.encode_utf8(&mut [0; 4]));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(bad("no <SRlist> element".to_owned()));
    }
    if depth != 0 {
        return Err(bad(format!(
            "the document ends inside {depth} open element(s)"
        )));
    }
    Ok(srs)
}

fn push_text(sr: Option<&mut ProbedSr>, field: Option<Field>, text: &str) {
    let (Some(sr), Some(field)) = (sr, field) else {
        return;
    };
    match field {
        Field::Uuid => sr.uuid.push_str(text.trim()),
        Field::NameLabel => sr.name_label.push_str(text),
        Field::NameDescription => sr.name_description.push_str(text),
        Field::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xapis_one_line_list_is_read() {
        let xml = "<?xml version=\"1.0\" ?><SRlist><SR><UUID>u-1</UUID><name_label>Replicated &amp; mirrored</name_label>\
                   <name_description>site &lt;B&gt;</name_description></SR><SR><UUID>u-2</UUID><name_label/></SR></SRlist>";
        let srs = parse_sr_list(xml).unwrap();
        assert_eq!(
            srs,
            [
                ProbedSr {
                    uuid: "u-1".into(),
                    name_label: "Replicated & mirrored".into(),
                    name_description: "site <B>".into(),
                },
                ProbedSr {
                    uuid: "u-2".into(),
                    name_label: String::new(),
                    name_description: String::new(),
                },
            ]
        );
    }

    #[test]
    fn pretty_printed_lists_and_unknown_elements_are_read() {
        let xml = "<?xml version=\"1.0\" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>\n\t\t\tu-1\n\t\t</UUID>\n\
                   \t\t<pool_metadata_detected>true</pool_metadata_detected>\n\
                   \t\t<name_label>DR&#32;LUN</name_label>\n\t</SR>\n</SRlist>\n";
        let srs = parse_sr_list(xml).unwrap();
        assert_eq!(srs.len(), 1);
        assert_eq!(srs[0].uuid, "u-1");
        assert_eq!(srs[0].name_label, "DR LUN");
        assert!(parse_sr_list("<SRlist/>").unwrap().is_empty());
    }

    #[test]
    fn other_documents_are_typed_errors() {
        for xml in [
            "",
            "not xml",
            "<SRs><SR><UUID>u</UUID></SR></SRs>",
            "<SRlist><SR><name_label>x</name_label></SR></SRlist>",
            "<SRlist><SR><UUID>u</UUID></SR>",
            "<SRlist><SR><UUID>&nbsp;</UUID></SR></SRlist>",
        ] {
            let err = parse_sr_list(xml).unwrap_err();
            assert!(matches!(err, SourceError::BadSrList { .. }), "{xml}: {err}");
        }
    }
}
