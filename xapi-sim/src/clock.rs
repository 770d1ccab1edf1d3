//! The simulated clock: every wait the simulator models (VM start delays, shutdown delays, task
//! progress) sleeps on it, and tests speed it up instead of waiting in real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A clock whose sleeps run `speed` times faster than real time. Cheap to clone; clones share
/// the speed and the account of simulated time slept.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    /// `f64` bits of the speed factor.
    speed_bits: AtomicU64,
    /// Simulated milliseconds slept so far, all sleepers together.
    slept_millis: AtomicU64,
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl SimClock {
    /// A clock running `speed` times faster than real time (1.0 = real time).
    pub fn new(speed: f64) -> Self {
        let clock = Self {
            inner: Arc::new(ClockState {
                speed_bits: AtomicU64::new(1.0_f64.to_bits()),
                slept_millis: AtomicU64::new(0),
            }),
        };
        clock.set_speed(speed);
        clock
    }

    /// Change the speed factor; values that are not finite and positive are ignored.
    pub fn set_speed(&self, speed: f64) {
        if speed.is_finite() && speed > 0.0 {
            self.inner
                .speed_bits
                .store(speed.to_bits(), Ordering::Relaxed);
        }
    }

    /// The current speed factor.
    pub fn speed(&self) -> f64 {
        f64::from_bits(self.inner.speed_bits.load(Ordering::Relaxed))
    }

    /// Sleep for `simulated` time, which takes `simulated / speed` of real time.
    pub async fn sleep(&self, simulated: Duration) {
        if simulated.is_zero() {
            return;
        }
        self.inner
            .slept_millis
            .fetch_add(simulated.as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(simulated.div_f64(self.speed())).await;
    }

    /// Total simulated time slept by everyone since the clock was made.
    pub fn slept(&self) -> Duration {
        Duration::from_millis(self.inner.slept_millis.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fast_clock_sleeps_less_real_time_and_counts_simulated_time() {
        let clock = SimClock::new(1000.0);
        let start = std::time::Instant::now();
        clock.sleep(Duration::from_secs(2)).await;
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(clock.slept(), Duration::from_secs(2));
        clock.set_speed(-3.0);
        assert!((clock.speed() - 1000.0).abs() < f64::EPSILON);
    }
}
