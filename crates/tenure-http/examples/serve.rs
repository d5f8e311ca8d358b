//! Serves the router on the in-memory backend, for trying the API and for
//! schemathesis: `cargo run -p tenure-http --example serve -- 127.0.0.1:8080`.
//!
//! The administrator token comes from `TENURE_ADMIN_TOKEN` (one is generated and
//! printed when it is unset). Zone `demo` gets a public client `demo-client`
//! (redirect URI `http://127.0.0.1/callback`, so codes can be issued for it) and a
//! grant for user `demo-user`, whose access token is printed, so the user-side
//! routes can be tried too; a public client `dialect-client` for the vendor
//! dialects' client routes; and one client per route that deletes clients
//! (`deletable-client`, `deletable-sailpoint-client`, `deletable-storyden-client`),
//! which schemathesis pins those routes to, so that they delete neither of the
//! others.

use std::sync::Arc;

use tenure::{AuthorizeRequest, ClientRegistration, Engine, GrantType, Secret, SecretKind};
use tenure_http::StaticAdminToken;
use tenure_memory::MemoryStorage;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let admin = match std::env::var("TENURE_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => {
            let t = Secret::generate(SecretKind::AccessToken)?
                .expose()
                .to_owned();
            println!("admin token: {t}");
            t
        }
    };
    let engine = Engine::new(MemoryStorage::new());
    engine
        .register_client(
            "demo",
            ClientRegistration {
                redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
                ..ClientRegistration::new("Demo")
                    .id("demo-client")
                    .scopes(["read", "write"])
                    .grants([
                        GrantType::AuthorizationCode,
                        GrantType::RefreshToken,
                        GrantType::DeviceCode,
                    ])
            },
        )
        .await?;
    // A second client for the vendor dialects' client routes, which schemathesis
    // pins (`path.oauth_client_id`), so that fuzzed changes leave the first alone.
    engine
        .register_client(
            "demo",
            ClientRegistration::new("Dialects")
                .id("dialect-client")
                .scopes(["read"]),
        )
        .await?;
    for id in [
        "deletable-client",
        "deletable-sailpoint-client",
        "deletable-storyden-client",
    ] {
        engine
            .register_client(
                "demo",
                ClientRegistration::new("Deletable").id(id).scopes(["read"]),
            )
            .await?;
    }
    let issued = engine
        .authorize(
            "demo",
            AuthorizeRequest::new("demo-client", "demo-user", "demo-api", ["read"])
                .expires_at(chrono::Utc::now() + chrono::Duration::days(1)),
        )
        .await?;
    println!("user access token: {}", issued.access_token.expose());
    let app = tenure_http::router(engine, Arc::new(StaticAdminToken::new(&admin)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
