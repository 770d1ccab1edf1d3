//! A bandwidth limit shared by every export of a job: a token bucket of bytes per second.
//!
//! Each chunk read from an export takes its size in tokens before it goes on; the bucket holds
//! at most one second's worth, so a burst after an idle spell stays within a second's budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

/// A shared bytes-per-second limit. Cheap to clone: clones share the bucket.
#[derive(Debug, Clone)]
pub struct Throttle {
    rate: u64,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Throttle {
    /// A limit of `bytes_per_second` (at least 1) for all streams that share it.
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            rate: bytes_per_second.max(1),
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: 0.0,
                refilled: Instant::now(),
            })),
        }
    }

    /// The limit in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Wait until `bytes` may pass. Callers are served one at a time, in order.
    pub async fn take(&self, bytes: u64) {
        #[allow(clippy::cast_precision_loss)]
        let (rate, wanted) = (self.rate as f64, bytes as f64);
        let mut bucket = self.bucket.lock().await;
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate.max(wanted));
        bucket.refilled = now;
        bucket.tokens -= wanted;
        if bucket.tokens < 0.0 {
            // hold the lock while waiting: the next caller's wait starts after this one's
            let wait = Duration::from_secs_f64(-bucket.tokens / rate);
            tokio::time::sleep(wait).await;
            bucket.tokens = 0.0;
            bucket.refilled = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_megabyte_at_half_a_megabyte_per_second_takes_two_seconds() {
        let throttle = Throttle::new(512 * 1024);
        let started = tokio::time::Instant::now();
        for _ in 0..16 {
            throttle.take(64 * 1024).await;
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }
}
