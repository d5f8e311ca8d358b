//! The one error type of the engine and of every storage backend.

use std::fmt;

use crate::model::{ClientAuthMethod, GrantStatus, GrantType};

/// The kind of record an error talks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A registered client.
    Client,
    /// A delegated grant.
    Grant,
    /// An access or refresh token.
    Token,
    /// A personal grant.
    PersonalGrant,
    /// A device authorization.
    DeviceAuthorization,
    /// An authorization code.
    AuthorizationCode,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Client => "client",
            RecordKind::Grant => "grant",
            RecordKind::Token => "token",
            RecordKind::PersonalGrant => "personal grant",
            RecordKind::DeviceAuthorization => "device authorization",
            RecordKind::AuthorizationCode => "authorization code",
        })
    }
}

/// Why a presented token cannot be used for a grant (RFC 6749 `invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidGrantReason {
    /// No token with this value exists in the zone.
    UnknownToken,
    /// The token is not a refresh token.
    NotARefreshToken,
    /// The token has passed its own expiry.
    TokenExpired,
    /// The token was revoked.
    TokenRevoked,
    /// The token was issued to another client.
    ClientMismatch,
    /// The grant the token belongs to is no longer active.
    GrantInactive,
    /// The client's refresh grant was taken away after the token was issued.
    RefreshStopped,
    /// The device code was already exchanged for tokens.
    DeviceCodeRedeemed,
    /// No authorization code with this value is waiting in the zone for this
    /// client.
    UnknownCode,
    /// The authorization code has passed its expiry.
    CodeExpired,
    /// The authorization code was already redeemed; the grant it created has been
    /// revoked.
    CodeReused,
    /// The redirect URI differs from the one of the authorization request.
    RedirectUriMismatch,
    /// The code verifier does not match the code challenge, or a verifier came for
    /// a code issued without a challenge.
    PkceFailed,
}

impl fmt::Display for InvalidGrantReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidGrantReason::UnknownToken => "the token is unknown",
            InvalidGrantReason::NotARefreshToken => "the token is not a refresh token",
            InvalidGrantReason::TokenExpired => "the token has expired",
            InvalidGrantReason::TokenRevoked => "the token was revoked",
            InvalidGrantReason::ClientMismatch => "the token was issued to another client",
            InvalidGrantReason::GrantInactive => "the grant is no longer active",
            InvalidGrantReason::RefreshStopped => {
                "the client's refresh grant was withdrawn after the token was issued"
            }
            InvalidGrantReason::DeviceCodeRedeemed => "the device code was already used",
            InvalidGrantReason::UnknownCode => "the authorization code is unknown",
            InvalidGrantReason::CodeExpired => "the authorization code has expired",
            InvalidGrantReason::CodeReused => {
                "the authorization code was already used; the grant it created is revoked"
            }
            InvalidGrantReason::RedirectUriMismatch => {
                "the redirect URI differs from the authorization request's"
            }
            InvalidGrantReason::PkceFailed => "the code verifier does not match",
        })
    }
}

/// Everything that can go wrong in tenure, as variants a caller can act on.
///
/// Bad input of any kind is reported with one of these and changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No record of this kind with this id exists in the zone it was asked for.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// The kind of record.
        kind: RecordKind,
        /// The id that was asked for.
        id: String,
    },

    /// A record with this id already exists in the zone.
    #[error("{kind} {id:?} already exists")]
    AlreadyExists {
        /// The kind of record.
        kind: RecordKind,
        /// The id that is taken.
        id: String,
    },

    /// The grant cannot move from its current state to the requested one.
    #[error("a grant that is {from} cannot become {to}")]
    InvalidTransition {
        /// The state the grant is in.
        from: GrantStatus,
        /// The state that was requested.
        to: GrantStatus,
    },

    /// Scopes were asked for that the grant or the client does not allow.
    #[error("scopes not allowed: {}", scopes.join(" "))]
    InvalidScope {
        /// The scopes that were refused.
        scopes: Vec<String>,
    },

    /// The client is disabled and can neither authorize nor refresh.
    #[error("client {client_id:?} is disabled")]
    ClientDisabled {
        /// The disabled client.
        client_id: String,
    },

    /// The client is not allowed to use this grant type.
    #[error("client {client_id:?} may not use the {grant_type} grant type")]
    GrantTypeNotAllowed {
        /// The client.
        client_id: String,
        /// The grant type it asked for.
        grant_type: GrantType,
    },

    /// A spent refresh token was presented again; the whole grant has been revoked.
    #[error("refresh token reused: grant {grant_id:?} has been revoked")]
    RefreshTokenReused {
        /// The grant that was revoked because of the reuse.
        grant_id: String,
    },

    /// The presented token cannot be used (RFC 6749 `invalid_grant`).
    #[error("invalid grant: {reason}")]
    InvalidGrant {
        /// Why the token was refused.
        reason: InvalidGrantReason,
    },

    /// Client authentication failed (RFC 6749 §5.2 `invalid_client`): the client is
    /// unknown, its secret is wrong or missing, or it presented a secret it does not
    /// have. Which of these is never said, and each takes as long.
    #[error("client authentication failed")]
    InvalidClient {
        /// How the client tried to authenticate; an HTTP front answers
        /// `WWW-Authenticate: Basic` when it was [`ClientAuthMethod::ClientSecretBasic`].
        method: ClientAuthMethod,
    },

    /// A write set was refused because a record changed since it was read.
    ///
    /// Backends return it from [`Storage::apply`](crate::Storage::apply); the engine
    /// retries and only passes it on once its retries are exhausted.
    #[error("conflicting concurrent change; try again")]
    Conflict,

    /// A pagination cursor was malformed, tampered with, or made for another zone or query.
    #[error("invalid cursor: {reason}")]
    InvalidCursor {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A JSON Patch `test` operation did not hold; nothing was changed.
    #[error("patch operation {index} failed: test at {path:?} did not hold")]
    PatchTestFailed {
        /// The index of the failing operation in the patch.
        index: usize,
        /// Its path.
        path: String,
    },

    /// A JSON Patch could not be applied, or its result is not a valid client;
    /// nothing was changed.
    #[error("patch operation {index} at {path:?} is invalid: {reason}")]
    InvalidPatch {
        /// The index of the offending operation in the patch.
        index: usize,
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// The user code is unknown, expired, or already in another user's hands.
    #[error("the user code is not valid")]
    InvalidUserCode,

    /// Too many attempts; try again after the given number of seconds.
    #[error("too many attempts; retry in {retry_after_seconds} s")]
    TooManyAttempts {
        /// When trying again makes sense.
        retry_after_seconds: u64,
    },

    /// A field of the input is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The store cannot be reached for now: no connection could be had in time, or
    /// the connection was lost. Nothing was changed by the failed call; trying again
    /// later makes sense (an HTTP front answers 503 with `Retry-After`).
    ///
    /// Backends return it through [`Error::unavailable`]; the engine does not retry
    /// it itself, since the backend has already waited as long as it was told to.
    #[error("{backend} storage is unavailable")]
    #[non_exhaustive]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why: a pool timeout, a refused connection, a connection lost mid-call.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The storage backend failed.
    #[error("{backend} storage failed")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: RecordKind, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// An [`Error::Unavailable`] of `backend` caused by `source`.
    pub fn unavailable(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Unavailable {
            backend,
            source: Box::new(source),
        }
    }

    /// Whether the same call may well succeed if made again later, unchanged: the
    /// store was unavailable, or concurrent changes outlasted the engine's retries.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Conflict)
    }

    /// This error and every error in its [`source`](std::error::Error::source)
    /// chain, on one line, `error: cause: cause`, for a log line that keeps the
    /// whole chain (a plain `%error` keeps only the first link).
    pub fn chain(&self) -> ErrorChain<'_> {
        ErrorChain(self)
    }
}

/// Displays an error followed by each of its causes, `error: cause: cause`, so that a
/// log line keeps the whole chain (a plain `%error` keeps only the first link, and
/// some subscribers' JSON output drops the causes of an error recorded as a value).
///
/// ```
/// # use tenure::Error;
/// let e = Error::unavailable("postgres", std::io::Error::other("connection refused"));
/// assert_eq!(
///     e.chain().to_string(),
///     "postgres storage is unavailable: connection refused"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The result type of tenure.
pub type Result<T, E = Error> = std::result::Result<T, E>;
