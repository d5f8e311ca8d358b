//! Device authorization (RFC 8628) through the engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use tenure::{
    ClientRegistration, DevicePoll, DeviceRequest, DeviceState, Error, GrantStatus, GrantType,
    InvalidGrantReason, RecordKind,
};
use tenure_memory::testing::TestBed;

async fn device_client(bed: &TestBed) -> tenure::Client {
    bed.register(
        ClientRegistration::new("tv")
            .id("tv")
            .scopes(["read", "write"])
            .grants([GrantType::DeviceCode, GrantType::RefreshToken]),
    )
    .await
    .unwrap()
}

async fn start(bed: &TestBed) -> tenure::DeviceStart {
    bed.engine
        .start_device_authorization(
            bed.zone,
            DeviceRequest {
                client_id: "tv".into(),
                scopes: vec!["read".into()],
                resource_id: "r".into(),
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn start_returns_a_secret_device_code_and_a_readable_user_code() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    assert!(s.device_code.expose().starts_with("tnr_dc_"));
    assert_eq!(
        s.device_code.expose().len(),
        "tnr_dc_".len() + 43,
        "256 bits, base64url"
    );
    assert_eq!(s.user_code.len(), 9);
    assert_eq!(&s.user_code[4..5], "-");
    assert!(
        s.user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );
    assert_eq!((s.expires_in, s.interval), (600, 5));
    // Only the digest is stored.
    let stored =
        tenure::Storage::get_device_authorization(&bed.storage, bed.zone, &s.device_code.digest())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.record.state, DeviceState::Pending);
    assert!(!format!("{stored:?}").contains(s.device_code.expose()));
}

#[tokio::test]
async fn the_full_flow_claim_approve_poll_hands_out_tokens_once() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "tv", s.device_code.expose())
            .await
            .unwrap(),
        DevicePoll::Pending
    ));
    // Typed in lower case with a space instead of the dash.
    let typed = s.user_code.to_lowercase().replace('-', " ");
    let claimed = bed
        .engine
        .claim_device(bed.zone, "alice", &typed)
        .await
        .unwrap();
    assert_eq!(
        (claimed.state, claimed.user_id.as_deref()),
        (DeviceState::Claimed, Some("alice"))
    );
    bed.clock.advance(Duration::seconds(5));
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "tv", s.device_code.expose())
            .await
            .unwrap(),
        DevicePoll::Pending
    ));
    let grant = bed
        .engine
        .approve_device(bed.zone, "alice", &s.user_code)
        .await
        .unwrap();
    assert_eq!(
        (grant.user_id.as_str(), grant.status),
        ("alice", GrantStatus::Active)
    );
    assert!(!grant.refresh_token_set, "tokens wait for the poll");
    bed.clock.advance(Duration::seconds(5));
    let DevicePoll::Issued(issued) = bed
        .engine
        .poll_device(bed.zone, "tv", s.device_code.expose())
        .await
        .unwrap()
    else {
        panic!("expected tokens");
    };
    assert_eq!(issued.grant.id, grant.id);
    assert!(issued.grant.refresh_token_set);
    assert_eq!(issued.scopes, vec!["read"]);
    assert!(
        bed.engine
            .introspect(bed.zone, issued.access_token.expose())
            .await
            .unwrap()
            .is_active()
    );
    // Single use.
    bed.clock.advance(Duration::seconds(5));
    let again = bed
        .engine
        .poll_device(bed.zone, "tv", s.device_code.expose())
        .await;
    assert!(matches!(
        again,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::DeviceCodeRedeemed
        })
    ));
    let history = bed.engine.grant_history(bed.zone, &grant.id).await.unwrap();
    assert_eq!(history[0].actor, tenure::Actor::User { id: "alice".into() });
}

#[tokio::test]
async fn polling_too_fast_slows_down_by_five_seconds_each_time() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    let code = s.device_code.expose();
    assert!(matches!(
        bed.engine.poll_device(bed.zone, "tv", code).await.unwrap(),
        DevicePoll::Pending
    ));
    bed.clock.advance(Duration::seconds(2));
    assert!(matches!(
        bed.engine.poll_device(bed.zone, "tv", code).await.unwrap(),
        DevicePoll::SlowDown {
            interval_seconds: 10
        }
    ));
    // The new interval holds for later polls.
    bed.clock.advance(Duration::seconds(6));
    assert!(matches!(
        bed.engine.poll_device(bed.zone, "tv", code).await.unwrap(),
        DevicePoll::SlowDown {
            interval_seconds: 15
        }
    ));
    bed.clock.advance(Duration::seconds(15));
    assert!(matches!(
        bed.engine.poll_device(bed.zone, "tv", code).await.unwrap(),
        DevicePoll::Pending
    ));
}

#[tokio::test]
async fn denial_answers_access_denied() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    let denied = bed
        .engine
        .deny_device(bed.zone, "alice", &s.user_code)
        .await
        .unwrap();
    assert_eq!(denied.state, DeviceState::Denied);
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "tv", s.device_code.expose())
            .await
            .unwrap(),
        DevicePoll::Denied
    ));
    assert!(matches!(
        bed.engine
            .approve_device(bed.zone, "alice", &s.user_code)
            .await,
        Err(Error::InvalidUserCode)
    ));
}

#[tokio::test]
async fn the_codes_expire() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    bed.clock.advance(Duration::minutes(10));
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "tv", s.device_code.expose())
            .await
            .unwrap(),
        DevicePoll::Expired
    ));
    assert!(matches!(
        bed.engine
            .claim_device(bed.zone, "alice", &s.user_code)
            .await,
        Err(Error::InvalidUserCode)
    ));
    let report = bed.engine.sweep_expired(bed.zone, 10).await.unwrap();
    assert_eq!(report.devices_removed, 1);
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "tv", s.device_code.expose())
            .await,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::UnknownToken
        })
    ));
}

#[tokio::test]
async fn another_user_cannot_take_over_a_claimed_code() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    bed.engine
        .claim_device(bed.zone, "alice", &s.user_code)
        .await
        .unwrap();
    assert!(matches!(
        bed.engine
            .claim_device(bed.zone, "mallory", &s.user_code)
            .await,
        Err(Error::InvalidUserCode)
    ));
    assert!(matches!(
        bed.engine
            .approve_device(bed.zone, "mallory", &s.user_code)
            .await,
        Err(Error::InvalidUserCode)
    ));
    assert!(
        bed.engine
            .approve_device(bed.zone, "alice", &s.user_code)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn wrong_guesses_are_limited_per_user_and_per_zone() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let s = start(&bed).await;
    for _ in 0..5 {
        assert!(matches!(
            bed.engine
                .claim_device(bed.zone, "mallory", "BBBB-BBBB")
                .await,
            Err(Error::InvalidUserCode)
        ));
    }
    // Mallory is locked out even with the right code; others are not.
    let r = bed
        .engine
        .claim_device(bed.zone, "mallory", &s.user_code)
        .await;
    assert!(matches!(r, Err(Error::TooManyAttempts { .. })));
    assert!(
        bed.engine
            .claim_device(bed.zone, "alice", &s.user_code)
            .await
            .is_ok()
    );
    bed.clock.advance(Duration::minutes(15));
    assert!(matches!(
        bed.engine
            .claim_device(bed.zone, "mallory", "BBBB-BBBB")
            .await,
        Err(Error::InvalidUserCode)
    ));

    // Many users guessing together exhaust the zone's budget.
    let bed = TestBed::with(|b| {
        b.config(tenure::EngineConfig {
            user_code_guesses: tenure::GuessLimits {
                per_user: 5,
                per_zone: 20,
                window: Duration::minutes(15),
            },
            ..tenure::EngineConfig::default()
        })
    });
    device_client(&bed).await;
    let s = start(&bed).await;
    for i in 0..20 {
        let r = bed
            .engine
            .claim_device(bed.zone, &format!("bot-{i}"), "zzzz-zzzz")
            .await;
        assert!(matches!(r, Err(Error::InvalidUserCode)));
    }
    let r = bed
        .engine
        .claim_device(bed.zone, "alice", &s.user_code)
        .await;
    assert!(
        matches!(r, Err(Error::TooManyAttempts { retry_after_seconds }) if retry_after_seconds > 0)
    );
}

#[tokio::test]
async fn malformed_user_codes_and_bad_requests_get_typed_errors() {
    let bed = TestBed::new();
    device_client(&bed).await;
    for (i, typed) in [
        "",
        "AEIO-UAEI",
        "BCDF",
        "BCDF-GHJK-LMNP",
        "\u{0}",
        &"B".repeat(1000),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            matches!(
                bed.engine
                    .claim_device(bed.zone, &format!("u{i}"), typed)
                    .await,
                Err(Error::InvalidUserCode)
            ),
            "{typed:?}"
        );
    }
    let req = |client: &str, scopes: &[&str]| DeviceRequest {
        client_id: client.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        resource_id: "r".into(),
    };
    assert!(matches!(
        bed.engine
            .start_device_authorization(bed.zone, req("nope", &["read"]))
            .await,
        Err(Error::NotFound {
            kind: RecordKind::Client,
            ..
        })
    ));
    assert!(matches!(
        bed.engine
            .start_device_authorization(bed.zone, req("tv", &["admin"]))
            .await,
        Err(Error::InvalidScope { .. })
    ));
    assert!(matches!(
        bed.engine
            .start_device_authorization(bed.zone, req("tv", &["a b"]))
            .await,
        Err(Error::InvalidInput { field: "scope", .. })
    ));
    let web = bed.client(["read"]).await.unwrap();
    assert!(matches!(
        bed.engine
            .start_device_authorization(bed.zone, req(&web.id, &["read"]))
            .await,
        Err(Error::GrantTypeNotAllowed {
            grant_type: GrantType::DeviceCode,
            ..
        })
    ));
    let s = start(&bed).await;
    assert!(matches!(
        bed.engine
            .poll_device(bed.zone, "someone-else", s.device_code.expose())
            .await,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::ClientMismatch
        })
    ));
    assert!(matches!(
        bed.engine
            .poll_device("zone-2", "tv", s.device_code.expose())
            .await,
        Err(Error::InvalidGrant {
            reason: InvalidGrantReason::UnknownToken
        })
    ));
}

#[tokio::test]
async fn an_administrator_lists_device_authorizations_by_code_with_a_cursor() {
    let bed = TestBed::new();
    device_client(&bed).await;
    let mut starts = Vec::new();
    for _ in 0..5 {
        starts.push(start(&bed).await);
    }
    let claimed = bed
        .engine
        .claim_device(bed.zone, "alice", &starts[0].user_code)
        .await
        .unwrap();
    let mut digests: Vec<_> = starts.iter().map(|s| s.device_code.digest()).collect();
    digests.sort();

    let all = bed
        .engine
        .list_device_authorizations(bed.zone, None, 100)
        .await
        .unwrap();
    assert_eq!(all.after_cursor, None);
    assert_eq!(
        all.items.iter().map(|d| d.device_code).collect::<Vec<_>>(),
        digests,
        "every one, pending and claimed, in device-code order"
    );
    assert!(all.items.contains(&claimed));
    let listed = format!("{all:?}");
    for s in &starts {
        assert!(
            !listed.contains(s.device_code.expose()),
            "never a device code"
        );
    }

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = bed
            .engine
            .list_device_authorizations(bed.zone, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        walked.extend(page.items.iter().map(|d| d.device_code));
        match page.after_cursor {
            Some(c) => {
                assert_eq!(
                    Some(c.as_str()),
                    page.items.last().map(|d| d.device_code.to_hex()).as_deref()
                );
                after = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(walked, digests, "pages of two, end to end");
    assert!(
        bed.engine
            .list_device_authorizations("zone-2", None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let upper = digests[0].to_hex().to_uppercase();
    let signed = format!("+{}", &digests[0].to_hex()[1..]);
    for bad in ["", "zz", &digests[0].to_hex()[1..], &upper, &signed] {
        let r = bed
            .engine
            .list_device_authorizations(bed.zone, Some(bad), 10)
            .await;
        assert!(
            matches!(r, Err(Error::InvalidCursor { .. })),
            "{bad:?}: {r:?}"
        );
    }
    for limit in [0, 101] {
        let r = bed
            .engine
            .list_device_authorizations(bed.zone, None, limit)
            .await;
        assert!(
            matches!(&r, Err(Error::InvalidInput { field: "limit", .. })),
            "limit {limit}: {r:?}"
        );
    }
}
