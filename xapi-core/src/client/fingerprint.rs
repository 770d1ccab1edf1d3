//! SHA-256 certificate fingerprints, the pins of [`TlsPolicy::Pinned`](super::TlsPolicy).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a certificate's DER encoding, as XAPI's `Certificate.fingerprint_sha256`
/// and the `x-xenapi-response-host-certificate-thumbprint` header carry it.
///
/// Parses `AA:BB:...`, plain hex (either case), and optional `sha256:` / `sha-256:` prefixes;
/// displays as upper-case colon-separated hex, like XAPI. Comparisons run in constant time.
#[derive(Clone, Copy)]
pub struct Sha256Fingerprint([u8; 32]);

/// Why a fingerprint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sha-256 fingerprint at character {position}: {reason}")]
pub struct FingerprintParseError {
    /// Character position (0-based) in the input where the problem was found.
    pub position: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl Sha256Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The fingerprint from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex without separators.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// Constant-time comparison (the time taken does not depend on where the bytes differ).
    pub fn matches(&self, other: &Self) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

impl PartialEq for Sha256Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for Sha256Fingerprint {}

impl FromStr for Sha256Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        let mut offset = input.len() - input.trim_start().len();
        let lower = trimmed.to_ascii_lowercase();
        let mut rest = trimmed;
        for prefix in ["sha256:", "sha-256:", "sha256=", "sha-256="] {
            if lower.starts_with(prefix) {
                rest = &trimmed[prefix.len()..];
                offset += prefix.len();
                break;
            }
        }
        let mut bytes = [0u8; 32];
        let mut nibbles = 0usize;
        for (i, c) in rest.char_indices() {
            let value = match c {
                ':' | '-' | ' ' => continue,
                _ => c.to_digit(16).ok_or(FingerprintParseError {
                    position: offset + i,
                    reason: "not a hex digit",
                })?,
            };
            if nibbles == 64 {
                return Err(FingerprintParseError {
                    position: offset + i,
                    reason: "more than 32 bytes",
                });
            }
            let byte = &mut bytes[nibbles / 2];
            *byte = (*byte << 4) | value as u8;
            nibbles += 1;
        }
        if nibbles != 64 {
            return Err(FingerprintParseError {
                position: input.len(),
                reason: "fewer than 32 bytes (64 hex digits)",
            });
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_colon_separated_upper_case() {
        let colon = "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08";
        let fp: Sha256Fingerprint = colon.parse().unwrap();
        assert_eq!(fp.to_hex(), HEX);
        assert_eq!(fp.to_string(), colon);
    }

    #[test]
    fn parses_plain_hex_and_prefixes() {
        let plain: Sha256Fingerprint = HEX.parse().unwrap();
        let prefixed: Sha256Fingerprint = format!("sha256:{HEX}").parse().unwrap();
        let header: Sha256Fingerprint = format!("SHA-256:{}", HEX.to_uppercase()).parse().unwrap();
        assert_eq!(plain, prefixed);
        assert_eq!(plain, header);
        assert_eq!(plain, Sha256Fingerprint::of_der(b"test"));
    }

    #[test]
    fn refuses_short_long_and_non_hex_input_with_a_position() {
        let short = HEX[..62].parse::<Sha256Fingerprint>().unwrap_err();
        assert!(short.reason.contains("fewer"));
        let long = format!("{HEX}00").parse::<Sha256Fingerprint>().unwrap_err();
        assert_eq!(long.position, 64);
        let bad = format!("sha256:zz{}", &HEX[2..])
            .parse::<Sha256Fingerprint>()
            .unwrap_err();
        assert_eq!(bad.position, 7);
        assert_eq!(bad.reason, "not a hex digit");
    }

    #[test]
    fn differing_fingerprints_do_not_match() {
        let a = Sha256Fingerprint::of_der(b"a");
        let b = Sha256Fingerprint::of_der(b"b");
        assert!(!a.matches(&b));
        assert!(a.matches(&a));
    }
}
