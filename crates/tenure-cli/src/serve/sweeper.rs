//! The background sweeper: on an interval, persists the expiry of grants whose time
//! has passed and deletes expired tokens and device authorizations, in every zone
//! of the store, so that `serve` needs no `tenure sweep` beside it.
//!
//! A run visits the zones in order ([`Engine::zones`]) and sweeps each in batches
//! ([`Engine::sweep_expired`]) until the zone has nothing left to sweep. A run makes
//! at most `max_batches` batches in all; a run that reaches that bound stops, and
//! the next run starts again at the zone where it stopped, so every zone gets its
//! turn however large the others. A failed read or sweep ends the run (the store is
//! likely unreachable as a whole) and the next one resumes at the same zone. A stop
//! request is heeded between batches.
//!
//! The engine counts what each batch did (`tenure_sweep_expired_total` and its
//! siblings); the sweeper adds, for its runs:
//!
//! | metric | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `tenure_sweeper_runs_total` | counter | `outcome`: `done` (every zone visited), `bounded` (stopped at `max_batches`), `stopped` (shutdown), `error` | runs by how they ended |
//! | `tenure_sweeper_run_duration_seconds` | histogram | | how long a run took |
//!
//! Each zone where something was swept is logged at `INFO` with the counts; a run's
//! summary is logged at `DEBUG`, a failure at `WARN` with its cause chain.

use std::time::{Duration, Instant};

use tenure::{Engine, SweepReport};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::config::SweepSettings;

/// `tenure_sweeper_runs_total{outcome}`.
const RUNS_TOTAL: &str = "tenure_sweeper_runs_total";
/// `tenure_sweeper_run_duration_seconds`.
const RUN_DURATION_SECONDS: &str = "tenure_sweeper_run_duration_seconds";
/// Zones read per page.
const ZONE_PAGE: usize = 100;

/// Sweeps every zone of an engine's store on an interval.
#[derive(Debug)]
pub struct Sweeper {
    engine: Engine,
    interval: Duration,
    batch: usize,
    max_batches: usize,
    /// The last zone a run finished; the next run starts after it.
    resume_after: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Done,
    Bounded,
    Stopped,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Done => "done",
            Ending::Bounded => "bounded",
            Ending::Stopped => "stopped",
        }
    }
}

/// Whether a stop was asked for.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

impl Sweeper {
    /// A sweeper over `engine` with these settings; `None` if they run no sweeper.
    pub fn new(engine: Engine, settings: SweepSettings) -> Option<Sweeper> {
        Some(Sweeper {
            engine,
            interval: settings.interval?,
            batch: settings.batch,
            max_batches: settings.max_batches,
            resume_after: None,
        })
    }

    /// Runs now and then every interval, until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            interval_seconds = self.interval.as_secs(),
            batch = self.batch,
            max_batches = self.max_batches,
            "sweeper started"
        );
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = ticks.tick() => {}
            }
            self.run_once(&stop)
                .instrument(tracing::info_span!("sweep"))
                .await;
        }
        tracing::info!("sweeper stopped");
    }

    /// One bounded run over the zones, recorded in the log and the metrics.
    async fn run_once(&mut self, stop: &watch::Receiver<bool>) {
        let started = Instant::now();
        let mut total = Totals::default();
        let outcome = self.sweep_zones(stop, &mut total).await;
        let elapsed = started.elapsed();
        metrics::histogram!(RUN_DURATION_SECONDS).record(elapsed.as_secs_f64());
        let label = match &outcome {
            Ok(ending) => ending.as_str(),
            Err(_) => "error",
        };
        metrics::counter!(RUNS_TOTAL, "outcome" => label).increment(1);
        match outcome {
            Ok(ending) => tracing::debug!(
                outcome = ending.as_str(),
                zones = total.zones,
                batches = total.batches,
                expired = total.report.expired,
                tokens_removed = total.report.tokens_removed,
                devices_removed = total.report.devices_removed,
                elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                "sweep run finished"
            ),
            Err(e) => tracing::warn!(
                error = %e.chain(),
                zones = total.zones,
                batches = total.batches,
                "sweep run failed; the next run resumes where it stopped"
            ),
        }
    }

    async fn sweep_zones(
        &mut self,
        stop: &watch::Receiver<bool>,
        total: &mut Totals,
    ) -> tenure::Result<Ending> {
        loop {
            let zones = self
                .engine
                .zones(self.resume_after.as_deref(), ZONE_PAGE)
                .await?;
            let last_page = zones.len() < ZONE_PAGE;
            for zone in zones {
                if let Some(ending) = self.sweep_zone(&zone, stop, total).await? {
                    return Ok(ending);
                }
                self.resume_after = Some(zone);
            }
            if last_page {
                self.resume_after = None;
                return Ok(Ending::Done);
            }
        }
    }

    /// Sweeps one zone until it has nothing left, or the run must end (answered).
    async fn sweep_zone(
        &self,
        zone: &str,
        stop: &watch::Receiver<bool>,
        total: &mut Totals,
    ) -> tenure::Result<Option<Ending>> {
        let mut swept = SweepReport::default();
        let ending = loop {
            if stopping(stop) {
                break Some(Ending::Stopped);
            }
            if total.batches >= self.max_batches {
                break Some(Ending::Bounded);
            }
            let report = self.engine.sweep_expired(zone, self.batch).await?;
            total.batches += 1;
            swept.expired += report.expired;
            swept.tokens_removed += report.tokens_removed;
            swept.devices_removed += report.devices_removed;
            if !report.more {
                break None;
            }
        };
        if swept != SweepReport::default() {
            tracing::info!(
                zone,
                expired = swept.expired,
                tokens_removed = swept.tokens_removed,
                devices_removed = swept.devices_removed,
                "swept expired records"
            );
        }
        if ending.is_none() {
            total.zones += 1;
        }
        total.report.expired += swept.expired;
        total.report.tokens_removed += swept.tokens_removed;
        total.report.devices_removed += swept.devices_removed;
        Ok(ending)
    }
}

/// What one run did.
#[derive(Debug, Default)]
struct Totals {
    zones: usize,
    batches: usize,
    report: SweepReport,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use tenure::{AuthorizeRequest, ClientRegistration, ManualClock};
    use tenure_memory::MemoryStorage;

    use super::*;

    async fn engine_with_expired(zones: &[&str], grants_each: usize) -> Engine {
        let clock = Arc::new(ManualClock::new("2030-01-01T00:00:00Z".parse().unwrap()));
        let engine = Engine::builder(Arc::new(MemoryStorage::new()))
            .clock(clock.clone())
            .build();
        for zone in zones {
            engine
                .register_client(zone, ClientRegistration::new("c").id("c").scopes(["r"]))
                .await
                .unwrap();
            for i in 0..grants_each {
                engine
                    .authorize(
                        zone,
                        AuthorizeRequest::new("c", format!("u{i}"), "api", ["r"])
                            .expires_at("2030-01-01T00:01:00Z".parse().unwrap()),
                    )
                    .await
                    .unwrap();
            }
        }
        clock.advance(chrono::Duration::days(60));
        engine
    }

    fn sweeper(engine: &Engine, batch: usize, max_batches: usize) -> Sweeper {
        Sweeper::new(
            engine.clone(),
            SweepSettings {
                interval: Some(Duration::from_secs(60)),
                batch,
                max_batches,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_bounded_run_resumes_where_it_stopped_and_every_zone_gets_its_turn() {
        let engine = engine_with_expired(&["a", "b", "c"], 3).await;
        let (_tx, stop) = watch::channel(false);
        let mut s = sweeper(&engine, 2, 3);
        let mut total = Totals::default();
        // Zone a takes the three batches (six tokens, two at a time); b waits.
        assert_eq!(
            s.sweep_zones(&stop, &mut total).await.unwrap(),
            Ending::Bounded
        );
        assert_eq!((total.batches, total.report.expired), (3, 3));
        assert_eq!(s.resume_after.as_deref(), Some("a"));
        let mut total = Totals::default();
        assert_eq!(
            s.sweep_zones(&stop, &mut total).await.unwrap(),
            Ending::Bounded
        );
        assert_eq!(s.resume_after.as_deref(), Some("b"));
        let mut total = Totals::default();
        assert_eq!(
            s.sweep_zones(&stop, &mut total).await.unwrap(),
            Ending::Done
        );
        assert_eq!(s.resume_after, None);
        for zone in ["a", "b", "c"] {
            assert_eq!(engine.sweep_expired(zone, 100).await.unwrap().expired, 0);
        }
    }

    #[tokio::test]
    async fn a_stop_is_heeded_between_batches() {
        let engine = engine_with_expired(&["a"], 2).await;
        let (tx, stop) = watch::channel(false);
        tx.send(true).unwrap();
        let mut s = sweeper(&engine, 1, 100);
        let mut total = Totals::default();
        assert_eq!(
            s.sweep_zones(&stop, &mut total).await.unwrap(),
            Ending::Stopped
        );
        assert_eq!(total.batches, 0);
    }

    #[tokio::test]
    async fn run_returns_once_stopped() {
        let engine = engine_with_expired(&["a"], 1).await;
        let (tx, stop) = watch::channel(false);
        let task = tokio::spawn(sweeper(&engine, 10, 10).run(stop));
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn no_interval_no_sweeper() {
        let engine = Engine::new(MemoryStorage::new());
        let settings = SweepSettings {
            interval: None,
            batch: 1,
            max_batches: 1,
        };
        assert!(Sweeper::new(engine, settings).is_none());
    }
}
