//! The envelope of every object but `config`: an 8-byte header naming the object's kind and
//! how its body is stored, then the sealed body (see REPOSITORY.md, "Objects").

use bytes::Bytes;

use super::crypto::Sealer;
use super::error::RepoError;

/// The first four bytes of every object but `config`.
pub(super) const MAGIC: [u8; 4] = *b"XBR1";
/// Bytes of the header.
pub(super) const HEADER_LEN: usize = 8;

/// Header flag: the body is a zstd frame.
const FLAG_ZSTD: u8 = 1;
/// Header flag: the body is encrypted (XChaCha20-Poly1305) rather than checksummed.
const FLAG_ENCRYPTED: u8 = 2;

/// What an object is, byte 4 of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum ObjectKind {
    /// A chunk of disk data.
    Chunk = 1,
    /// A disk's chunk index (framed, see [`super::index`]).
    Index = 2,
    /// A restore point's manifest.
    Manifest = 3,
    /// Prune's mark of unreferenced objects.
    Mark = 4,
    /// A maintenance lock.
    Lock = 5,
}

/// The header of an object of `kind`.
pub(super) fn header(kind: ObjectKind, compressed: bool, encrypted: bool) -> [u8; HEADER_LEN] {
    let mut flags = 0;
    if compressed {
        flags |= FLAG_ZSTD;
    }
    if encrypted {
        flags |= FLAG_ENCRYPTED;
    }
    [
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], kind as u8, flags, 0, 0,
    ]
}

/// Checks a header: magic, kind, encryption as the repository says; returns whether the body
/// is compressed.
pub(super) fn check_header(
    bytes: &[u8],
    kind: ObjectKind,
    sealer: &Sealer,
    name: &str,
) -> Result<bool, RepoError> {
    let corrupt = |offset: u64, reason: String| RepoError::CorruptObject {
        object: name.to_owned(),
        offset,
        reason,
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            0,
            format!("{} bytes, shorter than a header", bytes.len()),
        ));
    }
    if bytes[..4] != MAGIC {
        return Err(corrupt(0, "not a repository object (bad magic)".to_owned()));
    }
    if bytes[4] != kind as u8 {
        return Err(corrupt(
            4,
            format!("object kind {} where {kind:?} was expected", bytes[4]),
        ));
    }
    let flags = bytes[5];
    if flags & !(FLAG_ZSTD | FLAG_ENCRYPTED) != 0 || bytes[6..8] != [0, 0] {
        return Err(corrupt(5, format!("unknown flags {flags:#04x}")));
    }
    if (flags & FLAG_ENCRYPTED != 0) != sealer.is_encrypted() {
        return Err(corrupt(
            5,
            "encryption flag differs from the repository's config".to_owned(),
        ));
    }
    Ok(flags & FLAG_ZSTD != 0)
}

/// The associated data binding a body to its header and name.
fn aad(header: &[u8], name: &str) -> Vec<u8> {
    [header, name.as_bytes()].concat()
}

/// Encodes a whole object: header ‖ seal(body, optionally zstd-compressed). A body that does
/// not shrink under zstd is stored as is.
pub(super) fn encode(
    kind: ObjectKind,
    name: &str,
    sealer: &Sealer,
    body: &[u8],
    zstd_level: Option<i32>,
) -> Vec<u8> {
    let compressed = zstd_level
        .and_then(|level| compress(body, level).filter(|packed| packed.len() < body.len()));
    let stored = compressed.as_deref().unwrap_or(body);
    let header = header(kind, compressed.is_some(), sealer.is_encrypted());
    let mut out = Vec::with_capacity(HEADER_LEN + stored.len() + sealer.overhead());
    out.extend_from_slice(&header);
    sealer.seal_into(&aad(&header, name), stored, &mut out);
    out
}

/// [`encode`] of a body stored as is (no compression, no encryption), as three pieces to be
/// written one after the other: header, the body itself (not copied), checksum. `None` when
/// the repository encrypts bodies.
pub(super) fn encode_as_is(
    kind: ObjectKind,
    name: &str,
    sealer: &Sealer,
    body: Bytes,
) -> Option<[Bytes; 3]> {
    let header = header(kind, false, false);
    let trailer = sealer.plain_trailer(&aad(&header, name), &body)?;
    Some([
        Bytes::copy_from_slice(&header),
        body,
        Bytes::copy_from_slice(&trailer),
    ])
}

/// Decodes a whole object: checks the header, opens the seal, decompresses (at most
/// `max_size` bytes).
pub(super) fn decode(
    kind: ObjectKind,
    name: &str,
    sealer: &Sealer,
    bytes: &[u8],
    max_size: usize,
) -> Result<Vec<u8>, RepoError> {
    let compressed = check_header(bytes, kind, sealer, name)?;
    let (header, sealed) = bytes.split_at(HEADER_LEN);
    let body =
        sealer
            .open(&aad(header, name), sealed)
            .map_err(|reason| RepoError::CorruptObject {
                object: name.to_owned(),
                offset: HEADER_LEN as u64,
                reason: reason.to_owned(),
            })?;
    if !compressed {
        return Ok(body);
    }
    zstd::bulk::decompress(&body, max_size).map_err(|err| RepoError::CorruptObject {
        object: name.to_owned(),
        offset: HEADER_LEN as u64,
        reason: format!("zstd: {err}"),
    })
}

/// A zstd frame of `body` with the content checksum, `None` if zstd fails.
fn compress(body: &[u8], level: i32) -> Option<Vec<u8>> {
    let mut compressor = zstd::bulk::Compressor::new(level).ok()?;
    compressor
        .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .ok()?;
    compressor.compress(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_compressed_and_not() {
        let sealer = Sealer::plain();
        let zeros = vec![0u8; 4096];
        let packed = encode(ObjectKind::Chunk, "c", &sealer, &zeros, Some(3));
        assert!(packed.len() < 200, "zeros compress");
        assert_eq!(packed[5] & FLAG_ZSTD, FLAG_ZSTD);
        assert_eq!(
            decode(ObjectKind::Chunk, "c", &sealer, &packed, 4096).unwrap(),
            zeros
        );
        let mut noise = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        let stored = encode(ObjectKind::Chunk, "c", &sealer, &noise, Some(3));
        assert_eq!(
            stored[5] & FLAG_ZSTD,
            0,
            "incompressible bodies are stored as is"
        );
        assert_eq!(
            decode(ObjectKind::Chunk, "c", &sealer, &stored, 4096).unwrap(),
            noise
        );
    }

    #[test]
    fn a_body_stored_as_is_in_pieces_is_byte_for_byte_the_encoded_object() {
        let body = Bytes::from_static(b"some chunk data that is stored as is");
        let pieces = encode_as_is(
            ObjectKind::Chunk,
            "chunks/ab/ab",
            &Sealer::plain(),
            body.clone(),
        )
        .expect("a plain repository stores bodies as is");
        let whole = encode(
            ObjectKind::Chunk,
            "chunks/ab/ab",
            &Sealer::plain(),
            &body,
            None,
        );
        assert_eq!(pieces.concat(), whole);
        assert_eq!(pieces[1].as_ptr(), body.as_ptr(), "the body is not copied");
        let keys = super::super::crypto::MasterKeys::generate();
        assert!(
            encode_as_is(ObjectKind::Chunk, "c", &Sealer::encrypted(&keys), body).is_none(),
            "an encrypted body is never stored as is"
        );
    }

    #[test]
    fn a_wrong_kind_or_flipped_byte_is_reported_with_its_offset() {
        let sealer = Sealer::plain();
        let mut bytes = encode(ObjectKind::Manifest, "m", &sealer, b"{}", None);
        assert!(matches!(
            decode(ObjectKind::Chunk, "m", &sealer, &bytes, 10),
            Err(RepoError::CorruptObject { offset: 4, .. })
        ));
        bytes[9] ^= 0x40;
        assert!(matches!(
            decode(ObjectKind::Manifest, "m", &sealer, &bytes, 10),
            Err(RepoError::CorruptObject { offset: 8, .. })
        ));
    }
}
