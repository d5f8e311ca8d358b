//! Shared fixtures of the fuzz targets: a runtime, and a small in-memory engine on a
//! manual clock with records in two zones.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use tenure::{AuthorizeRequest, ClientRegistration, Engine, GrantType, ManualClock};
use tenure_memory::MemoryStorage;

/// The zone the targets query.
pub const ZONE: &str = "zone-a";
/// The zone whose data must never show through `ZONE`.
pub const OTHER_ZONE: &str = "zone-b";

/// One runtime for every iteration.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// A fresh engine with a client and a few grants in each zone.
pub fn seeded_engine() -> Engine {
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_893_456_000, 0).expect("a valid time"),
    ));
    let engine = Engine::builder(Arc::new(MemoryStorage::new())).clock(clock.clone()).build();
    runtime().block_on(async {
        for zone in [ZONE, OTHER_ZONE] {
            engine
                .register_client(
                    zone,
                    ClientRegistration::new("c")
                        .id("c")
                        .scopes(["read", "write"])
                        .grants([GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::DeviceCode]),
                )
                .await
                .expect("register");
            for (i, user) in ["alice", "bob", "carol", "alice"].into_iter().enumerate() {
                clock.advance(chrono::Duration::milliseconds(i as i64));
                engine
                    .authorize(zone, AuthorizeRequest::new("c", user, "r", ["read"]))
                    .await
                    .expect("authorize");
            }
        }
    });
    engine
}
