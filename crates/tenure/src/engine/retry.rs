//! The one retry policy: an operation whose write set met a concurrent change is
//! read and decided afresh, a bounded number of times, with jittered exponential
//! backoff between attempts. Backends never retry a conflict themselves.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long the engine waits before a retry: the future a [`RetrySleep`] returns.
pub(super) type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the engine waits with between attempts; Tokio's timer by default.
#[derive(Clone)]
pub(super) struct RetrySleep(Arc<dyn Fn(Duration) -> SleepFuture + Send + Sync>);

impl RetrySleep {
    pub(super) fn new<F, Fut>(sleep: F) -> Self
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        RetrySleep(Arc::new(move |d| Box::pin(sleep(d))))
    }

    /// Waits `delay`; a zero delay returns at once, without touching a timer.
    pub(super) async fn sleep(&self, delay: Duration) {
        if !delay.is_zero() {
            (self.0)(delay).await;
        }
    }
}

impl Default for RetrySleep {
    fn default() -> Self {
        RetrySleep::new(tokio::time::sleep)
    }
}

impl fmt::Debug for RetrySleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetrySleep(..)")
    }
}

/// The longest a retry may wait after `failed` attempts (1 or more) have failed:
/// zero after the first (the conflict was most likely a single racer that has
/// finished), then `base`, doubling with each further attempt, up to `cap`.
pub(super) fn ceiling(failed: u32, base: Duration, cap: Duration) -> Duration {
    if failed <= 1 {
        return Duration::ZERO;
    }
    let doublings = (failed - 2).min(31);
    base.saturating_mul(1 << doublings).min(cap)
}

/// The wait before the next attempt after `failed` failed ones: "full jitter", a
/// uniformly random time between zero and the [`ceiling`], so that racers that
/// collided once do not collide again in step.
pub(super) fn delay(failed: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = ceiling(failed, base, cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    // A rare event (a conflict), so a read of the operating system's random source is
    // cheap enough; should it fail, half the ceiling is as good a wait as any.
    let drawn = getrandom::u64().map_or(nanos / 2, |r| r % nanos.saturating_add(1));
    Duration::from_nanos(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_retry_is_immediate_then_the_ceiling_doubles_to_the_cap() {
        let ceilings: Vec<Duration> = (1..=10).map(|n| ceiling(n, MS, 50 * MS)).collect();
        assert_eq!(
            ceilings,
            [0, 1, 2, 4, 8, 16, 32, 50, 50, 50].map(|ms| ms * MS)
        );
        // No overflow however many attempts are allowed.
        assert_eq!(ceiling(u32::MAX, MS, 50 * MS), 50 * MS);
        assert_eq!(
            ceiling(u32::MAX, Duration::MAX, Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        for failed in 1..=12 {
            let ceiling = ceiling(failed, MS, 50 * MS);
            for _ in 0..50 {
                assert!(delay(failed, MS, 50 * MS) <= ceiling);
            }
        }
        let drawn: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(8, MS, 50 * MS)).collect();
        assert!(drawn.len() > 1, "the delays are not jittered: {drawn:?}");
    }

    #[test]
    fn zero_delays_never_sleep() {
        assert_eq!(delay(5, Duration::ZERO, 50 * MS), Duration::ZERO);
        assert_eq!(delay(5, MS, Duration::ZERO), Duration::ZERO);
    }
}
