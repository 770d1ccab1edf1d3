//! The simulated clock: every wait the simulator models (VM start delays, shutdown delays, task
//! progress) sleeps on it, and tests speed it up instead of waiting in real time.
//!
//! The clock also tells the simulated time ([`SimClock::now`]): the wall time when it was made,
//! plus the real time elapsed since, plus the simulated time that fast sleeps skipped. Sleeps
//! that overlap skip time once, not once each: a sleep of `d` that began when the skipped total
//! was `s` leaves it at least `s + d - d / speed`, so a group of VMs sleeping their start delays
//! side by side moves the clock by the longest delay, as the same group does on a real host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A clock whose sleeps run `speed` times faster than real time. Cheap to clone; clones share
/// the speed, the account of simulated time slept and the simulated time.
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
    /// Simulated nanoseconds that fast sleeps skipped (a high-water mark, see the module docs).
    skipped_nanos: AtomicU64,
    /// Wall time when the clock was made.
    started_wall: SystemTime,
    /// Real time when the clock was made.
    started: Instant,
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
                skipped_nanos: AtomicU64::new(0),
                started_wall: SystemTime::now(),
                started: Instant::now(),
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

    /// Sleep for `simulated` time, which takes `simulated / speed` of real time; the simulated
    /// time ([`SimClock::now`]) moves on by `simulated` all the same.
    pub async fn sleep(&self, simulated: Duration) {
        if simulated.is_zero() {
            return;
        }
        self.inner
            .slept_millis
            .fetch_add(simulated.as_millis() as u64, Ordering::Relaxed);
        let skipped_before = self.inner.skipped_nanos.load(Ordering::Relaxed);
        let real = simulated.div_f64(self.speed());
        tokio::time::sleep(real).await;
        let skipped = simulated.saturating_sub(real).as_nanos() as u64;
        self.inner
            .skipped_nanos
            .fetch_max(skipped_before.saturating_add(skipped), Ordering::Relaxed);
    }

    /// Total simulated time slept by everyone since the clock was made.
    pub fn slept(&self) -> Duration {
        Duration::from_millis(self.inner.slept_millis.load(Ordering::Relaxed))
    }

    /// The simulated time: what a host of the simulated pools reads on its clock (the wall time
    /// when the simulator started, plus the real time since, plus what fast sleeps skipped).
    /// `VM_metrics.start_time` is stamped with it.
    pub fn now(&self) -> SystemTime {
        let skipped = Duration::from_nanos(self.inner.skipped_nanos.load(Ordering::Relaxed));
        self.inner.started_wall + self.inner.started.elapsed() + skipped
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

    #[tokio::test]
    async fn overlapping_sleeps_move_the_simulated_time_by_the_longest() {
        let clock = SimClock::new(10_000.0);
        let before = clock.now();
        tokio::join!(
            clock.sleep(Duration::from_secs(30)),
            clock.sleep(Duration::from_secs(10))
        );
        let moved = clock.now().duration_since(before).unwrap();
        assert!(
            moved >= Duration::from_secs(30) && moved < Duration::from_secs(31),
            "{moved:?}"
        );
    }
}
