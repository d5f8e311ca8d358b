//! tenure: an embedded grant-lifecycle engine for OAuth authorization servers.
//!
//! tenure keeps the truth about delegated grants: a user lets a client act on a
//! resource with some scopes, until the grant expires or is revoked, while refresh
//! tokens rotate underneath. It issues and checks the secrets that carry a grant,
//! detects refresh-token reuse, and applies client policy changes to future issuance
//! only. Everything sits behind the async [`Storage`] trait, with backends in
//! sibling crates (`tenure-memory`, `tenure-sled`, `tenure-postgres`).
//!
//! The core decides, the backends store: the rules are pure functions in
//! [`lifecycle`], the [`Engine`] loads records, applies a rule and commits the
//! result as one atomic [`WriteSet`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use chrono::Duration;
//! use tenure::{AuthorizeRequest, ClientRegistration, Engine, ManualClock, RefreshRequest};
//! use tenure_memory::MemoryStorage;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tenure::Error> {
//! let clock = Arc::new(ManualClock::new("2030-01-01T00:00:00Z".parse().unwrap()));
//! let engine = Engine::builder(Arc::new(MemoryStorage::new()))
//!     .clock(clock.clone())
//!     .build();
//!
//! engine
//!     .register_client("zone-1", ClientRegistration::new("Calendar").id("calendar").scopes(["read", "write"]))
//!     .await?;
//! let issued = engine
//!     .authorize("zone-1", AuthorizeRequest::new("calendar", "alice", "calendar-api", ["read"]))
//!     .await?;
//! assert!(engine.introspect("zone-1", issued.access_token.expose()).await?.is_active());
//!
//! // Rotate the refresh token; presenting the old one again revokes the grant.
//! let old = issued.refresh_token.expect("offline clients get refresh tokens");
//! engine.refresh("zone-1", RefreshRequest::new("calendar", &old)).await?;
//! let reuse = engine.refresh("zone-1", RefreshRequest::new("calendar", &old)).await;
//! assert!(matches!(reuse, Err(tenure::Error::RefreshTokenReused { .. })));
//! assert_eq!(engine.get_grant("zone-1", &issued.grant.id).await?.status, tenure::GrantStatus::Revoked);
//! # Ok(())
//! # }
//! ```

/// The README's examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub mod client;
pub mod code;
pub mod cursor;
pub mod device;
mod engine;
mod error;
pub mod event;
pub mod lifecycle;
mod model;
pub mod personal;
pub mod secret;
pub mod storage;
pub mod time;
pub mod validate;

pub use client::{
    ClientRegistration, ClientUpdate, Grantable, GrantsNothing, Impact, PermissionResolver,
    RegisteredClient,
};
pub use code::{AuthorizationCode, CodeRequest, PkceRequirement};
pub use cursor::CursorKey;
pub use device::{DeviceAuthorization, DeviceState};
pub use engine::{
    AuthorizeRequest, ClientChange, ClientCredentials, ClientCredentialsRequest, ClientPage,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_BASE_DELAY, DEFAULT_RETRY_MAX_DELAY,
    DeviceAuthorizationPage, DevicePoll, DeviceRequest, DeviceStart, Engine, EngineBuilder,
    EngineConfig, GrantsOf, GuessLimits, Issued, IssuedCode, ListGrants, MAX_SECRET_OVERLAP, Page,
    PersonalGrantPage, RefreshRequest, SweepReport,
};
pub use error::{Error, ErrorChain, InvalidGrantReason, RecordKind, Result};
pub use event::{Event, EventSubscriber};
pub use lifecycle::{ActiveToken, Introspection};
pub use model::{
    AccessType, Actor, Client, ClientAuthMethod, ClientType, Grant, GrantFacts, GrantStatus,
    GrantType, RefreshChain, RetiringSecret, ScopePolicy, Token, TokenKind, Transition,
    TransitionReason,
};
pub use personal::{NewPersonalGrant, PersonalGrant, PersonalGrantUpdate};
pub use secret::{Digest, RefreshReference, Secret, SecretBytes, SecretKind};
pub use storage::{
    DynStorage, Expect, GrantFilter, GrantPage, GrantQuery, Keyset, Position, RecordKey, SortOrder,
    Storage, TokenAndGrant, TokenAndGrantFacts, Version, Versioned, Write, WriteSet,
};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
