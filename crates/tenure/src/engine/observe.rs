//! What the engine tells operators: metrics through the `metrics` facade and log
//! events through `tracing`, recorded here so that every backend gets the same.
//!
//! Nothing here ever sees a secret: operations are named, outcomes classified, and
//! events carry ids only (see [`Event`]).

use std::time::Duration;

use crate::error::Error;
use crate::event::Event;

/// `tenure_engine_operations_total{operation, outcome}`: engine operations by how
/// they ended.
pub(super) const OPERATIONS_TOTAL: &str = "tenure_engine_operations_total";
/// `tenure_engine_conflict_retries_total{operation}`: attempts made again after a
/// write set met a concurrent change.
pub(super) const CONFLICT_RETRIES_TOTAL: &str = "tenure_engine_conflict_retries_total";
/// `tenure_sweep_expired_total`: grants whose expiry a sweep persisted.
pub(super) const SWEEP_EXPIRED_TOTAL: &str = "tenure_sweep_expired_total";
/// `tenure_sweep_tokens_removed_total`: expired tokens a sweep deleted.
pub(super) const SWEEP_TOKENS_REMOVED_TOTAL: &str = "tenure_sweep_tokens_removed_total";
/// `tenure_sweep_devices_removed_total`: expired device authorizations a sweep
/// deleted.
pub(super) const SWEEP_DEVICES_REMOVED_TOTAL: &str = "tenure_sweep_devices_removed_total";
/// `tenure_sweep_codes_removed_total`: expired authorization codes a sweep deleted.
pub(super) const SWEEP_CODES_REMOVED_TOTAL: &str = "tenure_sweep_codes_removed_total";
/// `tenure_store_apply_seconds`: how long `Storage::apply` took, committed or not.
pub(super) const STORE_APPLY_SECONDS: &str = "tenure_store_apply_seconds";

/// How an operation ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It did what was asked (or found that nothing needed doing).
    Ok,
    /// A refresh token was rotated.
    Rotated,
    /// Something was revoked.
    Revoked,
    /// A spent refresh token was presented; its grant was revoked.
    ReuseDetected,
    /// The record asked for does not exist.
    NotFound,
    /// The request was refused by a rule or by validation.
    Refused,
    /// Concurrent changes outlasted every attempt.
    ConflictExhausted,
    /// The store could not be reached.
    Unavailable,
    /// The store failed.
    Error,
}

impl Outcome {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rotated => "rotated",
            Outcome::Revoked => "revoked",
            Outcome::ReuseDetected => "reuse_detected",
            Outcome::NotFound => "not_found",
            Outcome::Refused => "refused",
            Outcome::ConflictExhausted => "conflict_exhausted",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }

    /// [`Outcome::Revoked`] if something was revoked, else [`Outcome::Ok`].
    pub(super) fn revoked_if(revoked: bool) -> Outcome {
        if revoked {
            Outcome::Revoked
        } else {
            Outcome::Ok
        }
    }

    /// The outcome of a failed operation.
    pub(super) fn of_error(error: &Error) -> Outcome {
        match error {
            Error::RefreshTokenReused { .. } => Outcome::ReuseDetected,
            Error::NotFound { .. } => Outcome::NotFound,
            Error::Conflict => Outcome::ConflictExhausted,
            Error::Unavailable { .. } => Outcome::Unavailable,
            Error::Backend { .. } => Outcome::Error,
            _ => Outcome::Refused,
        }
    }
}

/// Counts an operation that ended in `outcome`.
pub(super) fn count(operation: &'static str, outcome: Outcome) {
    metrics::counter!(OPERATIONS_TOTAL, "operation" => operation, "outcome" => outcome.as_str())
        .increment(1);
}

/// Counts and logs a failed operation: a store failure at `error` with its whole
/// cause chain, a store out of reach at `warn`; refusals are answers, not faults,
/// and are left to the caller.
pub(super) fn failed(operation: &'static str, error: &Error) {
    let outcome = Outcome::of_error(error);
    count(operation, outcome);
    match outcome {
        Outcome::Error => {
            tracing::error!(operation, error = %error.chain(), "storage failed");
        }
        Outcome::Unavailable => {
            tracing::warn!(operation, error = %error.chain(), "storage unavailable");
        }
        Outcome::ConflictExhausted => {
            tracing::warn!(operation, "concurrent changes outlasted every attempt");
        }
        _ => {}
    }
}

/// Counts and logs a retry after a conflict.
pub(super) fn conflict_retry(operation: &'static str, failed: u32, delay: Duration) {
    metrics::counter!(CONFLICT_RETRIES_TOTAL, "operation" => operation).increment(1);
    tracing::debug!(
        operation,
        attempt = failed,
        delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
        "write set met a concurrent change; retrying"
    );
}

/// Times a `Storage::apply`.
pub(super) fn apply_took(elapsed: Duration) {
    metrics::histogram!(STORE_APPLY_SECONDS).record(elapsed.as_secs_f64());
}

/// Adds what a sweep did to one of the sweep counters.
pub(super) fn swept(counter: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(counter).increment(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// Logs a committed event: a reuse detection is a security event (`warn`), a
/// revocation or a deletion an operator's question later (`info`), the rest of a
/// grant's ordinary life `debug`.
pub(super) fn committed(event: &Event) {
    match event {
        Event::RefreshTokenReused {
            zone_id,
            grant_id,
            client_id,
            ..
        } => tracing::warn!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            client_id = client_id.as_str(),
            "refresh token reuse detected; grant revoked"
        ),
        Event::GrantRevoked {
            zone_id,
            grant_id,
            reason,
            actor,
            ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            reason = %reason,
            actor = %actor,
            "grant revoked"
        ),
        Event::TokenRevoked {
            zone_id,
            grant_id,
            kind,
            ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            kind = ?kind,
            "token revoked"
        ),
        Event::GrantDeleted {
            zone_id, grant_id, ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            "grant deleted"
        ),
        Event::GrantExpired {
            zone_id, grant_id, ..
        } => tracing::debug!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            "grant expired"
        ),
        Event::GrantCreated {
            zone_id,
            grant_id,
            client_id,
            ..
        } => tracing::debug!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            client_id = client_id.as_str(),
            "grant created"
        ),
        Event::GrantRefreshed {
            zone_id, grant_id, ..
        } => tracing::debug!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            "grant refreshed"
        ),
        Event::ClientTokenIssued {
            zone_id,
            grant_id,
            client_id,
            ..
        } => tracing::debug!(
            zone = zone_id.as_str(),
            grant_id = grant_id.as_str(),
            client_id = client_id.as_str(),
            "client credentials token issued"
        ),
        Event::ClientRegistered {
            zone_id, client_id, ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            client_id = client_id.as_str(),
            "client registered"
        ),
        Event::ClientUpdated {
            zone_id, client_id, ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            client_id = client_id.as_str(),
            "client updated"
        ),
        Event::ClientDeleted {
            zone_id, client_id, ..
        } => tracing::info!(
            zone = zone_id.as_str(),
            client_id = client_id.as_str(),
            "client deleted"
        ),
    }
}

/// Gives every metric the engine records its description and unit.
pub(super) fn describe() {
    use metrics::Unit;
    metrics::describe_counter!(
        OPERATIONS_TOTAL,
        Unit::Count,
        "Engine operations by operation and outcome."
    );
    metrics::describe_counter!(
        CONFLICT_RETRIES_TOTAL,
        Unit::Count,
        "Attempts made again after a write set met a concurrent change."
    );
    metrics::describe_counter!(
        SWEEP_EXPIRED_TOTAL,
        Unit::Count,
        "Grants whose expiry a sweep persisted."
    );
    metrics::describe_counter!(
        SWEEP_TOKENS_REMOVED_TOTAL,
        Unit::Count,
        "Expired tokens a sweep deleted."
    );
    metrics::describe_counter!(
        SWEEP_DEVICES_REMOVED_TOTAL,
        Unit::Count,
        "Expired device authorizations a sweep deleted."
    );
    metrics::describe_counter!(
        SWEEP_CODES_REMOVED_TOTAL,
        Unit::Count,
        "Expired authorization codes a sweep deleted."
    );
    metrics::describe_histogram!(
        STORE_APPLY_SECONDS,
        Unit::Seconds,
        "Time of each Storage::apply, committed or not."
    );
}

/// Counts a finished operation, logs it if it failed, and passes its result on;
/// `ok` names the outcome of a success.
pub(super) fn finish<T>(
    operation: &'static str,
    result: Result<T, Error>,
    ok: impl FnOnce(&T) -> Outcome,
) -> Result<T, Error> {
    match &result {
        Ok(value) => count(operation, ok(value)),
        Err(e) => failed(operation, e),
    }
    result
}

/// [`finish`] for an operation whose every success is [`Outcome::Ok`].
pub(super) fn finish_ok<T>(operation: &'static str, result: Result<T, Error>) -> Result<T, Error> {
    finish(operation, result, |_| Outcome::Ok)
}
