//! Retries of a VM's backup: which errors are safe to retry, and how long to wait between
//! attempts (exponential backoff with jitter, a bounded number of attempts).
//!
//! Safe to retry: a connection that broke or timed out, an HTTP 5xx, `SESSION_INVALID` or
//! `HOST_IS_SLAVE` that the client's own re-login could not absorb, and an export stream that
//! ended early or carried a bad checksum (a fresh export of a fresh snapshot is read again from
//! the start). Not retried: refusals of the pool (`VM_BAD_POWER_STATE`, a full SR, a failed
//! task), repository errors, hooks that failed, cancellation.

use std::time::Duration;

use xapi_core::api::ErrorCode;

use crate::EngineError;

/// How a job retries a VM whose backup failed with an error safe to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// The wait before the second attempt; doubled for each later one.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// The share of each wait drawn at random (0: none, 1: anywhere between 0 and the wait),
    /// so that VMs that failed together do not retry together.
    pub jitter: f64,
    /// The seed of the jitter's generator (tests fix it; 0 picks one from the clock).
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            jitter: 0.5,
            seed: 0,
        }
    }
}

impl RetryPolicy {
    /// No retry at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based), jitter drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut Jitter) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self
            .initial_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let keep = 1.0 - jitter * rng.next_unit();
        base.mul_f64(keep)
    }
}

/// A small xorshift generator for the jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from `seed` (0: seeded from the clock).
    pub fn new(seed: u64) -> Self {
        let seed = if seed == 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |d| {
                    u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(1)
                })
                | 1
        } else {
            seed
        };
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }
}

/// Whether a backup that failed with `error` may be tried again from the start.
pub fn is_retryable(error: &EngineError) -> bool {
    match error {
        EngineError::Xapi { source, .. } => client_error_is_transient(source),
        EngineError::Backup { step, source } => {
            // the export stream broke, ended early or carried a bad checksum: a new export
            // reads it again; of the repository's errors only chunks that vanished before the
            // manifest (pruned meanwhile, or staged by another writer that failed) are retried,
            // a new export stores them again
            *step == EXPORT_READ_STEP
                || *step == EXPORT_OPEN_STEP
                || matches!(
                    &**source,
                    crate::Error::Repo(crate::repo::RepoError::ReusedChunksVanished { .. })
                )
                || (matches!(&**source, crate::Error::Io { .. }) && step.contains("export"))
        }
        _ => false,
    }
}

/// The step named in errors while reading the export stream.
pub(crate) const EXPORT_READ_STEP: &str = "reading the export";
/// The step named in errors while reading the export's `ova.xml`.
pub(crate) const EXPORT_OPEN_STEP: &str = "reading the export's ova.xml";

/// Whether a client error is transient: transport, timeout, HTTP 5xx, a session lost.
pub fn client_error_is_transient(error: &xapi_core::Error) -> bool {
    use xapi_core::Error;
    // the whole backup restarts (a snapshot call that may have run is checked first), so
    // what is safe for an idempotent call is safe here
    error.is_retryable_if_idempotent()
        || match error {
            Error::Http { status, .. } => *status >= 500,
            // xapi-core reports an RPC answered 5xx with a body (an HTML error page) as a
            // protocol error naming the status; it keeps no status field for it
            Error::Protocol { reason, .. } => reason.contains(": http status 5"),
            Error::Api(failure) => matches!(
                failure.code,
                ErrorCode::SessionInvalid | ErrorCode::HostIsSlave
            ),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_within_its_share() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            jitter: 0.0,
            seed: 7,
        };
        let mut rng = Jitter::new(7);
        let waits: Vec<u64> = (1..=5)
            .map(|a| policy.delay(a, &mut rng).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        let jittered = RetryPolicy {
            jitter: 0.5,
            ..policy
        };
        for attempt in 1..=5 {
            let wait = jittered.delay(attempt, &mut rng);
            let base = policy.delay(attempt, &mut rng);
            assert!(wait <= base && wait >= base / 2, "{wait:?} vs {base:?}");
        }
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let http = |status| EngineError::Xapi {
            step: "GET /export",
            source: Box::new(xapi_core::Error::Http {
                status,
                url: "https://pool/export".into(),
            }),
        };
        assert!(is_retryable(&http(500)));
        assert!(!is_retryable(&http(404)));
        assert!(!is_retryable(&EngineError::Cancelled));
        assert!(!is_retryable(&EngineError::Unexpected("x".into())));
        let repo = |error: crate::repo::RepoError| EngineError::Backup {
            step: "writing the manifest",
            source: Box::new(crate::Error::Repo(error)),
        };
        assert!(is_retryable(&repo(
            crate::repo::RepoError::ReusedChunksVanished {
                disk: "0".into(),
                count: 1,
                first_chunk: 7,
            }
        )));
        assert!(!is_retryable(&repo(
            crate::repo::RepoError::RestorePointExists {
                object: "manifests/vm/x".into(),
            }
        )));
    }
}
