//! The pure rules of two grant types, table by table: `code::check_issue` for
//! authorization codes and `lifecycle::client_credentials` for client credentials.
//! Records, a request and a time go in; the decision or the error comes out. Each
//! check is shown failing in a case where every later check would fail too, so
//! the order of the checks is part of what is tested. The engine-level rules of
//! both grants are in the conformance kit, which runs on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration};
use tenure::code::{self, PkceRequirement, S256};
use tenure::event::Event;
use tenure::lifecycle::{self, Fresh, MachineRequest, STANDING_GRANT_LIFETIME, STANDING_PROVIDER};
use tenure::{
    AccessType, Actor, Client, ClientType, CodeRequest, Digest, Error, Grant, GrantStatus,
    GrantType, RefreshChain, ScopePolicy, SecretBytes, Timestamp, TokenKind, Transition,
    TransitionReason,
};

const ZONE: &str = "zone-a";
const OTHER_ZONE: &str = "zone-b";
const REDIRECT_URI: &str = "https://app.example/callback";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7636 Appendix B: the `S256` challenge of [`VERIFIER`].
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The access-token lifetime of the clients here.
const ACCESS_TTL: i64 = 600;

/// 2030-01-01T00:00:00Z plus `s` seconds.
fn at(s: i64) -> Timestamp {
    DateTime::from_timestamp(1_893_456_000 + s, 0).expect("a valid time")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

/// An enabled client of [`ZONE`] allowed `read` and `write` through every grant
/// type these rules look at, redirecting to [`REDIRECT_URI`].
fn client(id: &str, client_type: ClientType) -> Client {
    Client {
        id: id.into(),
        zone_id: ZONE.into(),
        organization_id: "org-1".into(),
        tenant: None,
        name: id.into(),
        description: None,
        business_name: None,
        homepage_url: None,
        client_type,
        internal: false,
        owner_account_id: None,
        allowed_scopes: strings(&["read", "write"]),
        allowed_grants: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        scope_policy: ScopePolicy::Explicit,
        access_type: AccessType::Offline,
        access_token_ttl_seconds: ACCESS_TTL as u32,
        refresh_token_ttl_seconds: 30 * 24 * 3_600,
        redirect_uris: vec![REDIRECT_URI.into()],
        enabled: true,
        strong_auth_supported: false,
        claims_supported: false,
        secret_digest: (client_type == ClientType::Confidential).then(|| Digest::of("secret")),
        previous_secret: None,
        created_at: at(0),
        updated_at: at(0),
        refresh_stopped_at: None,
        last_used_at: None,
    }
}

fn public() -> Client {
    client("app", ClientType::Public)
}

fn confidential() -> Client {
    client("service", ClientType::Confidential)
}

/// What a rule decided, in a form a table can hold.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// A code may be issued, with this parsed challenge.
    Challenge(Option<Digest>),
    /// A client-credentials token was issued.
    Token(Standing),
    ClientDisabled(String),
    GrantTypeNotAllowed(String, GrantType),
    InvalidInput(&'static str),
    InvalidScope(Vec<String>),
}

impl Outcome {
    fn of<T>(result: tenure::Result<T>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
        match result {
            Ok(value) => ok(value),
            Err(Error::ClientDisabled { client_id }) => Outcome::ClientDisabled(client_id),
            Err(Error::GrantTypeNotAllowed {
                client_id,
                grant_type,
            }) => Outcome::GrantTypeNotAllowed(client_id, grant_type),
            Err(Error::InvalidInput { field, .. }) => Outcome::InvalidInput(field),
            Err(Error::InvalidScope { scopes }) => Outcome::InvalidScope(scopes),
            Err(other) => panic!("an error no rule here returns: {other:?}"),
        }
    }
}

// ----- authorization codes: check_issue -----

/// `user-1`'s approval of `read` on `resource-1` for `app`, with the challenge of
/// RFC 7636 Appendix B.
fn approval() -> CodeRequest {
    CodeRequest::new("app", "user-1", "resource-1", ["read"], REDIRECT_URI).challenge(CHALLENGE)
}

/// An approval wrong from its redirect URI on: every check after the client's own
/// fails on it.
fn wrong_from_redirect() -> CodeRequest {
    CodeRequest {
        redirect_uri: "https://evil.example/callback".into(),
        ..wrong_from_challenge()
    }
}

/// An approval wrong from its challenge method on.
fn wrong_from_challenge() -> CodeRequest {
    CodeRequest {
        code_challenge: Some("short".into()),
        code_challenge_method: Some("plain".into()),
        scopes: Vec::new(),
        ..approval()
    }
}

/// An approval wrong from its challenge's form on (the method is right).
fn wrong_from_challenge_form(challenge: &str) -> CodeRequest {
    CodeRequest {
        code_challenge: Some(challenge.into()),
        code_challenge_method: Some(S256.into()),
        scopes: Vec::new(),
        ..approval()
    }
}

/// An approval without a challenge, and without scopes.
fn unchallenged(scopes: &[&str]) -> CodeRequest {
    CodeRequest {
        code_challenge: None,
        code_challenge_method: None,
        scopes: strings(scopes),
        ..approval()
    }
}

struct IssueCase {
    what: &'static str,
    client: Client,
    request: CodeRequest,
    /// What the client may be given now, its scope policy applied.
    allowed: &'static [&'static str],
    pkce: PkceRequirement,
    expected: Outcome,
}

fn issue_case(
    what: &'static str,
    client: Client,
    request: CodeRequest,
    expected: Outcome,
) -> IssueCase {
    IssueCase {
        what,
        client,
        request,
        allowed: &["read", "write"],
        pkce: PkceRequirement::PublicClients,
        expected,
    }
}

#[test]
fn check_issue_runs_its_checks_in_order() {
    use Outcome::{Challenge, ClientDisabled, GrantTypeNotAllowed, InvalidInput, InvalidScope};
    let rfc_challenge = Some(Digest::of(VERIFIER));
    let disabled = Client {
        enabled: false,
        allowed_grants: Vec::new(),
        redirect_uris: Vec::new(),
        ..public()
    };
    let without_code_grant = Client {
        allowed_grants: vec![GrantType::RefreshToken, GrantType::ClientCredentials],
        redirect_uris: Vec::new(),
        ..public()
    };
    let without_redirects = Client {
        redirect_uris: Vec::new(),
        ..public()
    };
    let standard_alphabet = CHALLENGE.replace('-', "+");
    let cases = vec![
        issue_case(
            "1. a disabled client",
            disabled,
            wrong_from_redirect(),
            ClientDisabled("app".into()),
        ),
        issue_case(
            "2. a client not allowed authorization_code",
            without_code_grant,
            wrong_from_redirect(),
            GrantTypeNotAllowed("app".into(), GrantType::AuthorizationCode),
        ),
        issue_case(
            "3. an unregistered redirect URI",
            public(),
            wrong_from_redirect(),
            InvalidInput("redirect_uri"),
        ),
        issue_case(
            "3. a registered redirect URI with a trailing slash",
            public(),
            CodeRequest {
                redirect_uri: format!("{REDIRECT_URI}/"),
                ..wrong_from_challenge()
            },
            InvalidInput("redirect_uri"),
        ),
        issue_case(
            "3. a registered redirect URI with a query added",
            public(),
            CodeRequest {
                redirect_uri: format!("{REDIRECT_URI}?next=1"),
                ..wrong_from_challenge()
            },
            InvalidInput("redirect_uri"),
        ),
        issue_case(
            "3. a client with no redirect URI",
            without_redirects,
            approval(),
            InvalidInput("redirect_uri"),
        ),
        issue_case(
            "4. method plain",
            public(),
            wrong_from_challenge(),
            InvalidInput("code_challenge_method"),
        ),
        issue_case(
            "4. a challenge without a method, which means plain",
            public(),
            CodeRequest {
                code_challenge_method: None,
                scopes: Vec::new(),
                ..approval()
            },
            InvalidInput("code_challenge_method"),
        ),
        issue_case(
            "4. method s256, not S256",
            public(),
            CodeRequest {
                code_challenge_method: Some("s256".into()),
                ..wrong_from_challenge_form("short")
            },
            InvalidInput("code_challenge_method"),
        ),
        issue_case(
            "5. a challenge too short",
            public(),
            wrong_from_challenge_form("short"),
            InvalidInput("code_challenge"),
        ),
        issue_case(
            "5. a challenge with padding",
            public(),
            wrong_from_challenge_form(&format!("{CHALLENGE}=")),
            InvalidInput("code_challenge"),
        ),
        issue_case(
            "5. a challenge in the standard base64 alphabet",
            public(),
            wrong_from_challenge_form(&standard_alphabet),
            InvalidInput("code_challenge"),
        ),
        issue_case(
            "5. a challenge of 31 bytes",
            public(),
            wrong_from_challenge_form(&CHALLENGE[..42]),
            InvalidInput("code_challenge"),
        ),
        issue_case(
            "6. a method without a challenge",
            confidential(),
            CodeRequest {
                client_id: "service".into(),
                code_challenge: None,
                code_challenge_method: Some(S256.into()),
                scopes: Vec::new(),
                ..approval()
            },
            InvalidInput("code_challenge"),
        ),
        issue_case(
            "7. a public client without a challenge",
            public(),
            unchallenged(&[]),
            InvalidInput("code_challenge"),
        ),
        IssueCase {
            pkce: PkceRequirement::AllClients,
            ..issue_case(
                "7. a confidential client without a challenge, all clients required",
                confidential(),
                unchallenged(&[]),
                InvalidInput("code_challenge"),
            )
        },
        IssueCase {
            pkce: PkceRequirement::AllClientsIn(vec![OTHER_ZONE.into(), ZONE.into()]),
            ..issue_case(
                "7. a confidential client without a challenge, its zone's clients required",
                confidential(),
                unchallenged(&[]),
                InvalidInput("code_challenge"),
            )
        },
        IssueCase {
            pkce: PkceRequirement::AllClientsIn(vec![OTHER_ZONE.into()]),
            ..issue_case(
                "7. a public client without a challenge, another zone's clients required",
                public(),
                unchallenged(&[]),
                InvalidInput("code_challenge"),
            )
        },
        issue_case(
            "8. no scope",
            confidential(),
            unchallenged(&[]),
            InvalidInput("scopes"),
        ),
        issue_case(
            "9. scopes beyond the allowed, refused in request order",
            public(),
            CodeRequest {
                scopes: strings(&["root", "read", "admin"]),
                ..approval()
            },
            InvalidScope(strings(&["root", "admin"])),
        ),
        IssueCase {
            allowed: &["read"],
            ..issue_case(
                "9. a scope the client lists but its policy does not give now",
                public(),
                CodeRequest {
                    scopes: strings(&["read", "write"]),
                    ..approval()
                },
                InvalidScope(strings(&["write"])),
            )
        },
        issue_case(
            "a public client with an S256 challenge",
            public(),
            approval(),
            Challenge(rfc_challenge),
        ),
        issue_case(
            "a confidential client without a challenge, public clients required",
            confidential(),
            unchallenged(&["read"]),
            Challenge(None),
        ),
        IssueCase {
            pkce: PkceRequirement::AllClientsIn(vec![OTHER_ZONE.into()]),
            ..issue_case(
                "a confidential client without a challenge, another zone's clients required",
                confidential(),
                unchallenged(&["read"]),
                Challenge(None),
            )
        },
        IssueCase {
            pkce: PkceRequirement::AllClients,
            ..issue_case(
                "a confidential client with a challenge, all clients required",
                confidential(),
                CodeRequest {
                    client_id: "service".into(),
                    ..approval()
                },
                Challenge(rfc_challenge),
            )
        },
    ];
    for case in cases {
        let result = code::check_issue(
            &case.client,
            &case.request,
            &strings(case.allowed),
            &case.pkce,
        );
        assert_eq!(
            Outcome::of(result, Outcome::Challenge),
            case.expected,
            "{}",
            case.what
        );
    }
}

// ----- client credentials -----

/// What a client-credentials decision comes to.
#[derive(Debug, PartialEq)]
struct Standing {
    /// The grant the token is under.
    grant_id: String,
    /// Its scopes after the request.
    grant_scopes: Vec<String>,
    /// Whether the grant is written (created, or its scopes widened).
    grant_written: bool,
    /// Whether the grant is new: a creation entry in its history.
    created: bool,
    /// The token's scopes.
    token_scopes: Vec<String>,
    /// The token's expiry.
    token_expires_at: Timestamp,
}

const NOW: i64 = 1_000;
const FRESH_ID: &str = "fresh-grant";

fn fresh() -> Fresh {
    let [access, refresh, family] = SecretBytes::generate_many::<3>().expect("random bits");
    Fresh {
        grant_id: FRESH_ID.into(),
        access,
        refresh,
        family,
    }
}

/// The standing grant of `service` on `api-1`, created at 0.
fn standing(scopes: &[&str], status: GrantStatus, expires_at: Timestamp) -> Grant {
    Grant {
        id: "standing".into(),
        zone_id: ZONE.into(),
        organization_id: "org-1".into(),
        user_id: "service".into(),
        resource_id: "api-1".into(),
        provider_id: STANDING_PROVIDER.into(),
        client_id: "service".into(),
        scopes: strings(scopes),
        status,
        created_at: at(0),
        updated_at: at(0),
        expires_at,
        refreshed_at: None,
        refresh_token_set: false,
        refresh: RefreshChain::default(),
    }
}

fn request(scopes: Option<&[&str]>) -> MachineRequest {
    MachineRequest {
        zone_id: ZONE.into(),
        resource_id: "api-1".into(),
        scopes: scopes.map(strings),
    }
}

struct MachineCase {
    what: &'static str,
    client: Client,
    /// What the client may be given now, its scope policy applied.
    allowed: &'static [&'static str],
    scopes: Option<&'static [&'static str]>,
    standing: Option<Grant>,
    now: Timestamp,
    expected: Outcome,
}

fn machine_case(
    what: &'static str,
    client: Client,
    scopes: Option<&'static [&'static str]>,
    standing: Option<Grant>,
    expected: Outcome,
) -> MachineCase {
    MachineCase {
        what,
        client,
        allowed: &["read", "write"],
        scopes,
        standing,
        now: at(NOW),
        expected,
    }
}

fn token(
    grant_id: &str,
    grant_scopes: &[&str],
    grant_written: bool,
    created: bool,
    token_scopes: &[&str],
    token_expires_at: Timestamp,
) -> Outcome {
    Outcome::Token(Standing {
        grant_id: grant_id.into(),
        grant_scopes: strings(grant_scopes),
        grant_written,
        created,
        token_scopes: strings(token_scopes),
        token_expires_at,
    })
}

#[test]
fn client_credentials_runs_its_checks_in_order() {
    use Outcome::{ClientDisabled, GrantTypeNotAllowed, InvalidScope};
    let token_expiry = at(NOW + ACCESS_TTL);
    let active = |scopes: &[&str]| Some(standing(scopes, GrantStatus::Active, at(NOW + 86_400)));
    let disabled_public = Client {
        id: "service".into(),
        enabled: false,
        allowed_grants: Vec::new(),
        ..public()
    };
    let without_grant = Client {
        allowed_grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        ..confidential()
    };
    let public_with_grant = Client {
        id: "service".into(),
        ..public()
    };
    let not_allowed = GrantTypeNotAllowed("service".into(), GrantType::ClientCredentials);
    let cases = vec![
        machine_case(
            "1. a disabled client",
            disabled_public,
            Some(&["admin"]),
            active(&["read"]),
            ClientDisabled("service".into()),
        ),
        machine_case(
            "2. a client not allowed client_credentials",
            without_grant,
            Some(&["admin"]),
            active(&["read"]),
            GrantTypeNotAllowed("service".into(), GrantType::ClientCredentials),
        ),
        machine_case(
            "3. a public client allowed client_credentials",
            public_with_grant,
            Some(&["admin"]),
            active(&["read"]),
            not_allowed,
        ),
        machine_case(
            "4. scopes beyond the allowed, refused in request order",
            confidential(),
            Some(&["root", "read", "admin"]),
            active(&["read"]),
            InvalidScope(strings(&["root", "admin"])),
        ),
        MachineCase {
            allowed: &["read"],
            ..machine_case(
                "4. a scope the client lists but its policy does not give now",
                confidential(),
                Some(&["write"]),
                active(&["read"]),
                InvalidScope(strings(&["write"])),
            )
        },
        machine_case(
            "5. an empty list of scopes asked for",
            confidential(),
            Some(&[]),
            active(&["read"]),
            InvalidScope(Vec::new()),
        ),
        MachineCase {
            allowed: &[],
            ..machine_case(
                "5. every scope asked for, and none allowed",
                confidential(),
                None,
                active(&["read"]),
                InvalidScope(Vec::new()),
            )
        },
        machine_case(
            "no standing grant: a new one, with every allowed scope",
            confidential(),
            None,
            None,
            token(
                FRESH_ID,
                &["read", "write"],
                true,
                true,
                &["read", "write"],
                token_expiry,
            ),
        ),
        machine_case(
            "no standing grant: a new one, with the scopes asked for",
            confidential(),
            Some(&["read"]),
            None,
            token(FRESH_ID, &["read"], true, true, &["read"], token_expiry),
        ),
        machine_case(
            "an active standing grant covering the scopes: reused, not written",
            confidential(),
            Some(&["read"]),
            active(&["read", "write"]),
            token(
                "standing",
                &["read", "write"],
                false,
                false,
                &["read"],
                token_expiry,
            ),
        ),
        machine_case(
            "an active standing grant of fewer scopes: widened",
            confidential(),
            None,
            active(&["read"]),
            token(
                "standing",
                &["read", "write"],
                true,
                false,
                &["read", "write"],
                token_expiry,
            ),
        ),
        machine_case(
            "a revoked standing grant: a new one",
            confidential(),
            None,
            Some(standing(&["read"], GrantStatus::Revoked, at(NOW + 86_400))),
            token(
                FRESH_ID,
                &["read", "write"],
                true,
                true,
                &["read", "write"],
                token_expiry,
            ),
        ),
        machine_case(
            "a standing grant stored expired: a new one",
            confidential(),
            None,
            Some(standing(&["read"], GrantStatus::Expired, at(NOW - 1))),
            token(
                FRESH_ID,
                &["read", "write"],
                true,
                true,
                &["read", "write"],
                token_expiry,
            ),
        ),
        machine_case(
            "a standing grant stored active, at its expiry: a new one",
            confidential(),
            None,
            Some(standing(&["read"], GrantStatus::Active, at(NOW))),
            token(
                FRESH_ID,
                &["read", "write"],
                true,
                true,
                &["read", "write"],
                token_expiry,
            ),
        ),
        machine_case(
            "a standing grant a second before its expiry: reused, the token held to it",
            confidential(),
            Some(&["read"]),
            Some(standing(&["read"], GrantStatus::Active, at(NOW + 1))),
            token("standing", &["read"], false, false, &["read"], at(NOW + 1)),
        ),
    ];
    for case in cases {
        let result = lifecycle::client_credentials(
            &case.client,
            &strings(case.allowed),
            request(case.scopes),
            case.standing.as_ref(),
            &fresh(),
            case.now,
        );
        let outcome = Outcome::of(result, |(grant, changes)| {
            assert!(
                changes.refresh_token.is_none()
                    && changes
                        .issued_tokens
                        .iter()
                        .all(|t| t.kind == TokenKind::Access),
                "{}: client credentials issued a refresh token",
                case.what
            );
            assert_eq!(
                changes.issued_tokens.len(),
                1,
                "{}: one access token per request",
                case.what
            );
            let issued = &changes.issued_tokens[0];
            Outcome::Token(Standing {
                grant_written: changes.grant.as_ref() == Some(&grant),
                created: !changes.transitions.is_empty(),
                grant_id: grant.id,
                grant_scopes: grant.scopes,
                token_scopes: issued.scopes.clone(),
                token_expires_at: issued.expires_at,
            })
        });
        assert_eq!(outcome, case.expected, "{}", case.what);
    }
}

#[test]
fn client_credentials_creates_the_standing_grant_of_the_client_itself() {
    let client = confidential();
    let drawn = fresh();
    let now = at(NOW);
    let (grant, changes) = lifecycle::client_credentials(
        &client,
        &client.allowed_scopes,
        request(Some(&["read"])),
        None,
        &drawn,
        now,
    )
    .unwrap();
    assert_eq!(
        grant,
        Grant {
            id: FRESH_ID.into(),
            created_at: now,
            updated_at: now,
            expires_at: now + STANDING_GRANT_LIFETIME,
            ..standing(&["read"], GrantStatus::Active, now)
        },
        "a standing grant: provider {STANDING_PROVIDER}, user and client the client, \
         its organization, the resource asked for"
    );
    assert_eq!(changes.grant.as_ref(), Some(&grant));
    assert_eq!(
        changes.transitions,
        [Transition {
            zone_id: ZONE.into(),
            grant_id: FRESH_ID.into(),
            from: None,
            to: GrantStatus::Active,
            reason: TransitionReason::Created,
            actor: Actor::Client {
                id: "service".into()
            },
            at: now,
        }]
    );
    assert_eq!(
        changes.events,
        [
            Event::GrantCreated {
                zone_id: ZONE.into(),
                grant_id: FRESH_ID.into(),
                client_id: "service".into(),
                user_id: "service".into(),
                at: now,
            },
            Event::ClientTokenIssued {
                zone_id: ZONE.into(),
                grant_id: FRESH_ID.into(),
                client_id: "service".into(),
                at: now,
            },
        ]
    );
    let access = changes
        .access_token
        .as_ref()
        .expect("client credentials issue an access token");
    assert!(access.expose().starts_with("tnr_at_"));
    let [issued] = changes.issued_tokens.as_slice() else {
        panic!("one token per request: {:?}", changes.issued_tokens);
    };
    assert_eq!(
        (
            issued.digest,
            issued.kind,
            issued.grant_id.as_str(),
            issued.client_id.as_str(),
            issued.user_id.as_str(),
            issued.issued_at,
            issued.expires_at,
            issued.revoked_at,
        ),
        (
            access.digest(),
            TokenKind::Access,
            FRESH_ID,
            "service",
            "service",
            now,
            now + Duration::seconds(ACCESS_TTL),
            None,
        )
    );
    assert!(changes.refresh_token.is_none() && changes.removed_tokens.is_empty());

    // Reused, the grant is neither written nor given a history entry.
    let later = now + Duration::seconds(5);
    let (again, changes) = lifecycle::client_credentials(
        &client,
        &client.allowed_scopes,
        request(Some(&["read"])),
        Some(&grant),
        &fresh(),
        later,
    )
    .unwrap();
    assert_eq!(again, grant);
    assert!(changes.grant.is_none() && changes.transitions.is_empty());
    assert_eq!(
        changes.events,
        [Event::ClientTokenIssued {
            zone_id: ZONE.into(),
            grant_id: FRESH_ID.into(),
            client_id: "service".into(),
            at: later,
        }]
    );
}
