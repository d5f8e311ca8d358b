//! `lifecycle::introspect_owned`, the engine's path over a token and its grant's
//! `GrantFacts`, decides and answers exactly as `lifecycle::introspect` does over
//! the whole records, whatever state the token, grant and client are in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use proptest::prelude::*;
use tenure::lifecycle::{introspect, introspect_owned};
use tenure::{GrantFacts, GrantStatus, Storage, TokenKind};
use tenure_memory::testing::{TestBed, epoch};

/// Offsets from the test bed's epoch, in minutes, around the records' times.
fn offset() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(-120i64..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn owned_and_borrowed_introspection_agree(
        refresh in any::<bool>(),
        token_generation in 0u64..4,
        grant_generation in 0u64..4,
        revoked in offset(),
        token_expiry in -120i64..120,
        grant_status in prop::sample::select(vec![GrantStatus::Active, GrantStatus::Revoked, GrantStatus::Expired]),
        grant_expiry in -120i64..120,
        client_present in any::<bool>(),
        stopped in offset(),
        now in -60i64..60,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (mut token, mut grant, mut client) = rt.block_on(async {
            let bed = TestBed::new();
            let client = bed.client(["read"]).await.unwrap();
            let issued = bed.grant(&client, "alice", ["read"]).await.unwrap();
            let tokens = bed.storage.grant_tokens(bed.zone, &issued.grant.id).await.unwrap();
            let kind = if refresh { TokenKind::Refresh } else { TokenKind::Access };
            let token = tokens.into_iter().find(|t| t.record.kind == kind).unwrap().record;
            (token, issued.grant, client)
        });
        let at = |m: i64| epoch() + Duration::minutes(m);
        token.generation = token_generation;
        grant.refresh.generation = grant_generation;
        token.revoked_at = revoked.map(at);
        token.expires_at = at(token_expiry);
        grant.status = grant_status;
        grant.expires_at = at(grant_expiry);
        client.refresh_stopped_at = stopped.map(at);
        let client = client_present.then_some(&client);
        let now = at(now);
        prop_assert_eq!(
            introspect_owned(token.clone(), GrantFacts::from(grant.clone()), client, now),
            introspect(&token, &grant, client, now)
        );
    }
}
