//! Chunks: naming, encoding and checking one chunk of disk data.
//!
//! A chunk is stored at `chunks/<first 2 hex digits>/<64 hex digits>` under the name of its
//! content hash; its body is zstd-compressed (when that helps) and sealed. Reading one back
//! checks the seal, the zstd checksum and that the content hashes to the name.

use bytes::Bytes;

use super::crypto::{ChunkId, Sealer};
use super::error::RepoError;
use super::object::{self, ObjectKind};

/// The object name of chunk `id`.
pub fn chunk_object(id: &ChunkId) -> String {
    let hex = id.to_hex();
    format!("chunks/{}/{hex}", &hex[..2])
}

/// The id of a chunk object name, `None` if the name is not one.
pub(super) fn chunk_id_of(name: &str) -> Option<ChunkId> {
    let rest = name.strip_prefix("chunks/")?;
    let (dir, hex) = rest.split_once('/')?;
    let id = ChunkId::from_hex(hex)?;
    (hex.len() == 64 && dir == &hex[..2]).then_some(id)
}

/// True if every byte is zero (such chunks are not stored).
pub(super) use crate::format::xva::chunk::is_all_zeros as is_zero;

/// A chunk ready to store: its object name and encoded bytes.
#[derive(Debug)]
pub(super) struct EncodedChunk {
    /// Its object name.
    pub object: String,
    /// Header ‖ sealed body, in pieces to be written one after the other (a body stored as is
    /// is one of them, not copied).
    pub pieces: Vec<Bytes>,
}

impl EncodedChunk {
    /// Bytes of the stored object.
    pub(super) fn stored_len(&self) -> u64 {
        self.pieces.iter().map(|piece| piece.len() as u64).sum()
    }
}

/// Encodes a chunk with id `id` (computed by the caller with [`Sealer::chunk_id`]). Without
/// compression in an unencrypted repository the data is stored as is, without a copy.
pub(super) fn encode(
    sealer: &Sealer,
    id: ChunkId,
    data: Bytes,
    zstd_level: Option<i32>,
) -> EncodedChunk {
    let object = chunk_object(&id);
    let pieces = if zstd_level.is_none() && !sealer.is_encrypted() {
        Vec::from(
            object::encode_as_is(ObjectKind::Chunk, &object, sealer, data)
                .expect("an unencrypted repository stores a body as is"),
        )
    } else {
        vec![Bytes::from(object::encode(
            ObjectKind::Chunk,
            &object,
            sealer,
            &data,
            zstd_level,
        ))]
    };
    EncodedChunk { object, pieces }
}

/// Decodes the stored bytes of chunk `id`: checks the seal, decompresses, and checks that the
/// content hashes to `id`.
pub(super) fn decode(
    sealer: &Sealer,
    id: &ChunkId,
    stored: &[u8],
    chunk_size: usize,
) -> Result<Vec<u8>, RepoError> {
    let object = chunk_object(id);
    let data = object::decode(ObjectKind::Chunk, &object, sealer, stored, chunk_size)?;
    let actual = sealer.chunk_id(&data);
    if actual != *id {
        return Err(RepoError::ChunkHashMismatch {
            object,
            actual: actual.to_hex(),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_round_trip() {
        let id = Sealer::plain().chunk_id(b"abc");
        let name = chunk_object(&id);
        assert!(name.starts_with("chunks/"));
        assert_eq!(chunk_id_of(&name), Some(id));
        assert_eq!(chunk_id_of("chunks/00/xyz"), None);
        assert_eq!(chunk_id_of(&name.replace("chunks/", "chunks/z")), None);
    }

    #[test]
    fn zero_detection_sees_a_single_set_byte_anywhere() {
        let mut data = vec![0u8; 4099];
        assert!(is_zero(&data));
        assert!(is_zero(&[]));
        for at in [0, 7, 8, 255, 256, 4095, 4096, 4098] {
            data[at] = 1;
            assert!(!is_zero(&data), "byte {at}");
            data[at] = 0;
        }
    }

    #[test]
    fn a_chunk_whose_content_does_not_match_its_name_is_refused() {
        let sealer = Sealer::plain();
        let id = sealer.chunk_id(b"right");
        let wrong = encode(&sealer, id, Bytes::from_static(b"wrong"), Some(3));
        assert!(matches!(
            decode(&sealer, &id, &wrong.pieces.concat(), 1 << 20),
            Err(RepoError::ChunkHashMismatch { .. })
        ));
        let right = encode(&sealer, id, Bytes::from_static(b"right"), None);
        assert_eq!(right.stored_len(), right.pieces.concat().len() as u64);
        assert_eq!(
            decode(&sealer, &id, &right.pieces.concat(), 1 << 20).unwrap(),
            b"right"
        );
    }
}
