//! Fresh UUIDs and opaque references.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// A source of version-4-shaped UUIDs: SHA-256 of a per-process seed and a counter, so that ids
/// never repeat within a run and differ between runs.
#[derive(Debug, Clone)]
pub(crate) struct IdSource {
    seed: [u8; 32],
    counter: u64,
}

impl IdSource {
    /// A source seeded from the clock, the process id and `salt` (the pool name).
    pub(crate) fn new(salt: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut hasher = Sha256::new();
        hasher.update(nanos.to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        hasher.update(salt.as_bytes());
        Self {
            seed: hasher.finalize().into(),
            counter: 0,
        }
    }

    /// The next UUID, in the lower-case 8-4-4-4-12 form.
    pub(crate) fn next_uuid(&mut self) -> String {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        let digest = hasher.finalize();
        let mut b = [0_u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex = crate::server::tls::hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    /// The next opaque reference (`OpaqueRef:<uuid>`).
    pub(crate) fn next_ref(&mut self) -> String {
        format!("OpaqueRef:{}", self.next_uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let mut ids = IdSource::new("t");
        let a = ids.next_uuid();
        let b = ids.next_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(ids.next_ref().starts_with("OpaqueRef:"));
    }
}
