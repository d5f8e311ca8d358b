//! Time: the [`Clock`] the engine reads, and the wire format of timestamps.
//!
//! Every time tenure keeps is UTC with millisecond precision, and serializes as
//! RFC 3339 with exactly three fractional digits and `Z`, as in the seed documents
//! (`2019-12-27T18:11:19.117Z`).

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};

/// A point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// Truncates a time to whole milliseconds, the precision tenure keeps. Works for
/// every representable time (rounding by duration fails past the year 2262).
pub fn to_millis(t: Timestamp) -> Timestamp {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000_000).unwrap_or(t)
}

/// Formats a time the way the seed documents do: `2019-12-27T18:11:19.117Z`.
pub fn format_rfc3339(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The source of the current time. The engine reads time only through this.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that moves only when told to; for tests.
///
/// Reading it takes no lock (a sequence lock: readers only load), so threads that
/// read it at once do not slow each other down.
///
/// ```
/// use chrono::Duration;
/// use tenure::{Clock, ManualClock};
///
/// let clock = ManualClock::new("2030-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(Duration::hours(2));
/// assert_eq!(clock.now().to_rfc3339(), "2030-01-01T02:00:00+00:00");
/// ```
#[derive(Debug)]
pub struct ManualClock {
    /// Even while the time below is whole; odd while a writer is storing it.
    sequence: AtomicU64,
    seconds: AtomicI64,
    nanos: AtomicU32,
    /// Serializes writers.
    writer: Mutex<()>,
}

impl ManualClock {
    /// A clock standing still at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            sequence: AtomicU64::new(0),
            seconds: AtomicI64::new(start.timestamp()),
            nanos: AtomicU32::new(start.timestamp_subsec_nanos()),
            writer: Mutex::new(()),
        }
    }

    /// Moves the clock forward (or, with a negative duration, back).
    pub fn advance(&self, by: Duration) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.store(self.load() + by);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.store(to);
    }

    /// Stores a time; the caller holds the writer lock.
    fn store(&self, t: Timestamp) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.seconds.store(t.timestamp(), Ordering::Relaxed);
        self.nanos
            .store(t.timestamp_subsec_nanos(), Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// Loads the time, retrying while a writer is storing it.
    fn load(&self) -> Timestamp {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            if before % 2 == 0 {
                let seconds = self.seconds.load(Ordering::Relaxed);
                let nanos = self.nanos.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.sequence.load(Ordering::Relaxed) == before {
                    // Both halves came from one stored time, which was valid.
                    return DateTime::from_timestamp(seconds, nanos).unwrap_or_default();
                }
            }
            std::hint::spin_loop();
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.load()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// Serde for [`Timestamp`] in the seed format; use with `#[serde(with = "tenure::time::rfc3339")]`.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Timestamp, format_rfc3339, to_millis};

    /// Serializes as RFC 3339 with milliseconds and `Z`.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(t))
    }

    /// Parses any RFC 3339 time and keeps it to the millisecond, in UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| to_millis(t.with_timezone(&chrono::Utc)))
            .map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Timestamp>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::{Timestamp, format_rfc3339, to_millis};

        /// Serializes `Some` as RFC 3339 with milliseconds and `Z`, `None` as null.
        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format_rfc3339(t)),
                None => s.serialize_none(),
            }
        }

        /// Parses an optional RFC 3339 time.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            text.map(|text| {
                chrono::DateTime::parse_from_rfc3339(&text)
                    .map(|t| to_millis(t.with_timezone(&chrono::Utc)))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_reads_are_never_torn() {
        let a = DateTime::from_timestamp(100, 999_999_999).unwrap();
        let b = DateTime::from_timestamp(200, 0).unwrap();
        let clock = ManualClock::new(a);
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                for i in 0..20_000 {
                    clock.set(if i % 2 == 0 { b } else { a });
                }
            });
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let now = clock.now();
                        assert!(now == a || now == b, "torn read: {now}");
                    }
                });
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_893_456_000, 123_000_000).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::milliseconds(-1_500));
        assert_eq!(clock.now(), start - Duration::milliseconds(1_500));
        let far = DateTime::from_timestamp(253_402_300_799, 999_000_000).unwrap();
        clock.set(far);
        assert_eq!(clock.now(), far, "the year 9999 round-trips");
    }
}
