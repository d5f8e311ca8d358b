//! Device authorization (RFC 8628) through the engine.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Duration;

use super::Read;
use crate::device::{
    self, DeviceAuthorization, DeviceState, PollDecision, display_user_code, generate_user_code,
    normalize_user_code,
};
use crate::error::{Error, InvalidGrantReason, RecordKind, Result};
use crate::lifecycle::{self, NewGrant};
use crate::model::{Actor, Grant, GrantType, ScopePolicy};
use crate::secret::{Digest, Secret, SecretKind};
use crate::storage::{Expect, Write, WriteSet};
use crate::time::Timestamp;
use crate::validate;

use super::observe;
use super::{Engine, Issued, issued};

/// Limits on wrong user-code guesses, counted in fixed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimits {
    /// Wrong guesses one signed-in user may make per window.
    pub per_user: u32,
    /// Wrong guesses a whole zone may take per window.
    pub per_zone: u32,
    /// The window.
    pub window: Duration,
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
            per_user: 5,
            per_zone: 100,
            window: Duration::minutes(15),
        }
    }
}

/// Counts wrong guesses per window, in this process.
#[derive(Debug, Default)]
pub(crate) struct GuessCounter {
    windows: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl GuessCounter {
    fn keys(zone_id: &str, user_id: &str) -> [String; 2] {
        [
            format!("zone\u{0}{zone_id}"),
            format!("user\u{0}{zone_id}\u{0}{user_id}"),
        ]
    }

    /// Refuses when either count is used up in its current window.
    fn check(
        &self,
        limits: &GuessLimits,
        zone_id: &str,
        user_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let [zone_key, user_key] = Self::keys(zone_id, user_id);
        for (key, max) in [(zone_key, limits.per_zone), (user_key, limits.per_user)] {
            if let Some((start, count)) = windows.get(&key) {
                let ends = *start + limits.window;
                if now < ends && *count >= max {
                    return Err(Error::TooManyAttempts {
                        retry_after_seconds: u64::try_from((ends - now).num_seconds().max(1))
                            .unwrap_or(1),
                    });
                }
            }
        }
        Ok(())
    }

    fn record_failure(&self, limits: &GuessLimits, zone_id: &str, user_id: &str, now: Timestamp) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now < *start + limits.window);
        }
        for key in Self::keys(zone_id, user_id) {
            let entry = windows.entry(key).or_insert((now, 0));
            if now >= entry.0 + limits.window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
    }
}

/// A device authorization request (RFC 8628 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// The client asking.
    pub client_id: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The resource the grant will be for.
    pub resource_id: String,
}

/// What the device shows and keeps (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceStart {
    /// The device code: a secret, shown this once.
    pub device_code: Secret,
    /// The user code, as people type it: `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: u32,
}

/// A page of a zone's device authorizations, for an administrator's list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceAuthorizationPage {
    /// The device authorizations, pending and decided alike, as stored, in order
    /// of the digest of their device codes. They carry that digest, never a
    /// device code.
    pub items: Vec<DeviceAuthorization>,
    /// Present when more follow: the hex of the last item's device-code digest,
    /// to pass as `after`.
    pub after_cursor: Option<String>,
}

/// A listing cursor: the digest of a device code as 64 lowercase hex digits, the
/// form [`DeviceAuthorizationPage::after_cursor`] gives.
fn device_cursor(after: &str) -> Result<Digest> {
    let canonical = after.len() == 64
        && after
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical
        .then(|| Digest::from_hex(after))
        .flatten()
        .ok_or(Error::InvalidCursor {
            reason: "not a device authorization cursor",
        })
}

/// A poll's answer (RFC 8628 §3.5).
#[derive(Debug, Clone)]
pub enum DevicePoll {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`: wait this many seconds between polls from now on.
    SlowDown {
        /// The new interval.
        interval_seconds: u32,
    },
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// The tokens, handed out once.
    Issued(Box<Issued>),
}

impl Engine {
    /// Starts a device authorization for a client allowed the device-code grant.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = request.client_id.as_str(),
            attempt = tracing::field::Empty
        )
    )]
    pub async fn start_device_authorization(
        &self,
        zone_id: &str,
        request: DeviceRequest,
    ) -> Result<DeviceStart> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            validate::record_id("client_id", &request.client_id)?;
            validate::reference("resource_id", &request.resource_id)?;
            let scopes = validate::scopes("scope", &request.scopes)?;
            if scopes.is_empty() {
                return Err(Error::invalid_input(
                    "scope",
                    "at least one scope is needed",
                ));
            }
            let client = self.load_client(zone_id, &request.client_id).await?.record;
            lifecycle::check_client_may(&client, GrantType::DeviceCode)?;
            if client.scope_policy == ScopePolicy::Explicit {
                lifecycle::refuse_outside(&scopes, &client.allowed_scopes)?;
            }
            let config = &self.inner.config;
            // A fresh user code that collides with a live one conflicts; draw again.
            self.retrying("start_device_authorization", || async {
                let now = self.now();
                let device_code = Secret::generate(SecretKind::DeviceCode)?;
                let user_code = generate_user_code()?;
                let record = DeviceAuthorization {
                    device_code: device_code.digest(),
                    zone_id: zone_id.to_owned(),
                    user_code: user_code.clone(),
                    client_id: client.id.clone(),
                    scopes: scopes.clone(),
                    resource_id: request.resource_id.clone(),
                    state: DeviceState::Pending,
                    user_id: None,
                    grant_id: None,
                    created_at: now,
                    expires_at: now + config.device_code_lifetime,
                    interval_seconds: config.device_poll_interval,
                    last_polled_at: None,
                };
                let mut set = WriteSet::new();
                set.push(Write::PutDeviceAuthorization {
                    device: record,
                    expect: Expect::Absent,
                });
                self.apply(set).await?;
                Ok(DeviceStart {
                    device_code,
                    user_code: display_user_code(&user_code),
                    expires_in: config.device_code_lifetime.num_seconds(),
                    interval: config.device_poll_interval,
                })
            })
            .await
        }
        .await;
        observe::finish_ok("start_device_authorization", result)
    }

    /// Finds the device authorization a signed-in user typed the code of, counting
    /// wrong guesses against the user and the zone.
    async fn device_by_user_code(
        &self,
        zone_id: &str,
        user_id: &str,
        typed: &str,
        act: impl Fn(&DeviceAuthorization, Timestamp) -> Result<DeviceAuthorization>,
    ) -> Result<(
        crate::storage::Versioned<DeviceAuthorization>,
        DeviceAuthorization,
        Timestamp,
    )> {
        validate::reference("zone_id", zone_id)?;
        validate::reference("user_id", user_id)?;
        let limits = &self.inner.config.user_code_guesses;
        let now = self.now();
        self.inner.guesses.check(limits, zone_id, user_id, now)?;
        let found = match normalize_user_code(typed) {
            Some(code) => {
                self.inner
                    .storage
                    .find_device_authorization(zone_id, &code)
                    .await?
            }
            None => None,
        };
        if let Some(stored) = &found {
            tracing::Span::current().record("client_id", stored.record.client_id.as_str());
        }
        let outcome = match found {
            Some(stored) => act(&stored.record, now).map(|next| (stored, next, now)),
            None => Err(Error::InvalidUserCode),
        };
        if matches!(outcome, Err(Error::InvalidUserCode)) {
            self.inner
                .guesses
                .record_failure(limits, zone_id, user_id, now);
        }
        outcome
    }

    /// A zone's device authorizations, pending and decided, in order of the digest
    /// of their device codes: those after the cursor `after` (the `after_cursor` of
    /// the page before), at most `limit` (1 to 100). Expired ones are listed until
    /// the sweeper deletes them. A malformed cursor is [`Error::InvalidCursor`].
    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone_id))]
    pub async fn list_device_authorizations(
        &self,
        zone_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DeviceAuthorizationPage> {
        let result = async {
            validate::reference("zone_id", zone_id)?;
            let limit = validate::limit(limit)?;
            let after = after.map(device_cursor).transpose()?;
            // One more than the page tells whether more follow.
            let mut items = self
                .inner
                .storage
                .list_device_authorizations(zone_id, after.as_ref(), limit + 1)
                .await?;
            let more = items.len() > limit;
            items.truncate(limit);
            let after_cursor = if more {
                items.last().map(|d| d.record.device_code.to_hex())
            } else {
                None
            };
            Ok(DeviceAuthorizationPage {
                items: items.into_iter().map(|d| d.record).collect(),
                after_cursor,
            })
        }
        .await;
        observe::finish_ok("list_device_authorizations", result)
    }

    /// A signed-in user claims a device authorization by its user code (matched
    /// case-insensitively, punctuation ignored).
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn claim_device(
        &self,
        zone_id: &str,
        user_id: &str,
        user_code: &str,
    ) -> Result<DeviceAuthorization> {
        let result = async {
            self.retrying("claim_device", || async {
                let (stored, next, _) = self
                    .device_by_user_code(zone_id, user_id, user_code, |d, now| {
                        device::claim(d, user_id, now)
                    })
                    .await?;
                if next != stored.record {
                    let mut set = WriteSet::new();
                    set.push(Write::PutDeviceAuthorization {
                        device: next.clone(),
                        expect: Expect::Version(stored.version),
                    });
                    self.apply(set).await?;
                }
                Ok(next)
            })
            .await
        }
        .await;
        observe::finish_ok("claim_device", result)
    }

    /// The user approves: the grant is created now, its tokens go to the device's
    /// next poll.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = tracing::field::Empty,
            grant_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn approve_device(
        &self,
        zone_id: &str,
        user_id: &str,
        user_code: &str,
    ) -> Result<Grant> {
        let result = async {
            let (grant, changes) = self
                .retrying("approve_device", || async {
                    let (stored, _, now) = self
                        .device_by_user_code(zone_id, user_id, user_code, |d, now| {
                            device::claim(d, user_id, now)
                        })
                        .await?;
                    let device = &stored.record;
                    let client = self.load_client(zone_id, &device.client_id).await?.record;
                    let allowed = self
                        .allowed_scopes(&client, user_id, &device.scopes)
                        .await?;
                    let grant_id = self.new_id(now);
                    let (grant, changes) = lifecycle::create_grant(
                        &client,
                        &allowed,
                        NewGrant {
                            zone_id: zone_id.to_owned(),
                            organization_id: client.organization_id.clone(),
                            user_id: user_id.to_owned(),
                            resource_id: device.resource_id.clone(),
                            provider_id: "device".to_owned(),
                            scopes: device.scopes.clone(),
                            expires_at: None,
                            grant_type: GrantType::DeviceCode,
                            actor: Actor::User {
                                id: user_id.to_owned(),
                            },
                        },
                        &grant_id,
                        now,
                    )?;
                    let approved = device::decide(device, user_id, Some(&grant_id), now)?;
                    let read = Read {
                        device: Some((approved, stored.version)),
                        ..Read::zone(zone_id)
                    };
                    self.commit(&changes, read).await?;
                    Ok((grant, changes))
                })
                .await?;
            self.publish(&changes.events);
            Ok(grant)
        }
        .await;
        if let Ok(grant) = &result {
            tracing::Span::current().record("grant_id", grant.id.as_str());
        }
        observe::finish_ok("approve_device", result)
    }

    /// The user denies; the device's next poll hears `access_denied`.
    #[tracing::instrument(
        skip_all,
        fields(
            zone = zone_id,
            client_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn deny_device(
        &self,
        zone_id: &str,
        user_id: &str,
        user_code: &str,
    ) -> Result<DeviceAuthorization> {
        let result = async {
            self.retrying("deny_device", || async {
                let (stored, denied, _) = self
                    .device_by_user_code(zone_id, user_id, user_code, |d, now| {
                        device::decide(d, user_id, None, now)
                    })
                    .await?;
                let mut set = WriteSet::new();
                set.push(Write::PutDeviceAuthorization {
                    device: denied.clone(),
                    expect: Expect::Version(stored.version),
                });
                self.apply(set).await?;
                Ok(denied)
            })
            .await
        }
        .await;
        observe::finish_ok("deny_device", result)
    }

    /// The device polls with its device code (RFC 8628 §3.4). The tokens are handed
    /// out once; the device code is single-use.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            zone = zone_id,
            client_id = client_id,
            grant_id = tracing::field::Empty,
            attempt = tracing::field::Empty
        )
    )]
    pub async fn poll_device(
        &self,
        zone_id: &str,
        client_id: &str,
        device_code: &str,
    ) -> Result<DevicePoll> {
        let result =
            async {
                validate::reference("zone_id", zone_id)?;
                validate::record_id("client_id", client_id)?;
                let digest = Digest::of(device_code);
                let storage = &self.inner.storage;
                let (answer, changes) = self
                    .retrying("poll_device", || async {
                        let stored = storage
                            .get_device_authorization(zone_id, &digest)
                            .await?
                            .ok_or(Error::InvalidGrant {
                                reason: InvalidGrantReason::UnknownToken,
                            })?;
                        let now = self.now();
                        let (decision, next) = device::poll(&stored.record, client_id, now)?;
                        let write_device =
                            |set: &mut WriteSet, next: Option<DeviceAuthorization>| {
                                if let Some(device) = next {
                                    set.push(Write::PutDeviceAuthorization {
                                        device,
                                        expect: Expect::Version(stored.version),
                                    });
                                }
                            };
                        match decision {
                            PollDecision::Redeem => {
                                let grant_id = stored.record.grant_id.clone().unwrap_or_default();
                                tracing::Span::current().record("grant_id", grant_id.as_str());
                                let grant =
                                    storage.get_grant(zone_id, &grant_id).await?.ok_or_else(
                                        || Error::not_found(RecordKind::Grant, grant_id.clone()),
                                    )?;
                                let client = self.load_client(zone_id, client_id).await?.record;
                                let fresh = self.fresh(now)?;
                                let (grant_now, mut changes) =
                                    lifecycle::redeem(&grant.record, &client, &fresh, now)?;
                                let mut read = Read::zone(zone_id).grant(&grant);
                                read.device = next.map(|d| (d, stored.version));
                                self.commit(&changes, read).await?;
                                let tokens = issued(grant_now, &mut changes, now);
                                Ok((DevicePoll::Issued(Box::new(tokens)), changes))
                            }
                            decision => {
                                let mut set = WriteSet::new();
                                let interval = next
                                    .as_ref()
                                    .map_or(stored.record.interval_seconds, |d| d.interval_seconds);
                                write_device(&mut set, next);
                                if !set.is_empty() {
                                    self.apply(set).await?;
                                }
                                let answer = match decision {
                                    PollDecision::SlowDown => DevicePoll::SlowDown {
                                        interval_seconds: interval,
                                    },
                                    PollDecision::Denied => DevicePoll::Denied,
                                    PollDecision::Expired => DevicePoll::Expired,
                                    _ => DevicePoll::Pending,
                                };
                                Ok((answer, lifecycle::Changes::default()))
                            }
                        }
                    })
                    .await?;
                self.publish(&changes.events);
                Ok(answer)
            }
            .await;
        observe::finish_ok("poll_device", result)
    }

    /// Deletes up to `limit` expired device authorizations of a zone; returns how
    /// many.
    pub(crate) async fn sweep_devices(
        &self,
        zone_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        let storage = &self.inner.storage;
        let expired = storage
            .expired_device_authorizations(zone_id, now, limit)
            .await?;
        let mut removed = 0;
        for device in expired {
            let mut set = WriteSet::new();
            set.push(Write::DeleteDeviceAuthorization {
                zone_id: zone_id.to_owned(),
                device_code: device.record.device_code,
                expect: device.version,
            });
            match self.apply(set).await {
                Ok(()) => removed += 1,
                // Changed meanwhile (a late poll): the next sweep takes it.
                Err(Error::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}
