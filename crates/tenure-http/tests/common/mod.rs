//! A loopback server over the in-memory store with a manual clock, and the requests
//! the OAuth tests make of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tenure::{Engine, ManualClock};
use tenure_http::{HttpConfig, StaticAdminToken};
use tenure_memory::MemoryStorage;
use tenure_memory::testing::epoch;

pub const ADMIN: &str = "admin-token-for-tests";

/// A code verifier and its S256 challenge, base64url(SHA-256(verifier)) unpadded,
/// computed apart from tenure.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kKWjMrySeLPVJoVjeePkHmCQsps";
pub const CHALLENGE: &str = "avAiyIyamoACPcfnxDj-6dOrXk14NERzTlWlV4OAKrw";

pub struct Server {
    /// `http://127.0.0.1:port`.
    pub root: String,
    /// `{root}/zones/z1`.
    pub base: String,
    pub http: Client,
    pub clock: Arc<ManualClock>,
}

pub async fn server() -> Server {
    server_with(|_| HttpConfig::default()).await
}

/// A server whose settings may depend on its own address (`127.0.0.1:port`).
pub async fn server_with(config: impl FnOnce(&str) -> HttpConfig) -> Server {
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(Arc::new(MemoryStorage::new()))
        .clock(clock.clone())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = tenure_http::router_with(
        engine,
        Arc::new(StaticAdminToken::new(ADMIN)),
        config(&addr),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        root: format!("http://{addr}"),
        base: format!("http://{addr}/zones/z1"),
        http: Client::new(),
        clock,
    }
}

/// `Authorization: Basic` with each part form-urlencoded, as RFC 6749 §2.3.1 says.
pub fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// A form POST, with an `Authorization` header when given.
    pub async fn form_as(
        &self,
        path: &str,
        authorization: Option<&str>,
        form: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }

    pub async fn form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.form_as(path, None, form).await
    }

    /// Registers a client; answers its JSON, with `client_secret` when confidential.
    pub async fn client(&self, body: Value) -> Value {
        let r = self.admin(Method::POST, "/clients", Some(body)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    /// A delegated grant made by the administrator, with its tokens.
    pub async fn grant(&self, client: &str, user: &str, scopes: &[&str]) -> Value {
        let r = self
            .admin(
                Method::POST,
                "/delegated-grants",
                Some(json!({"client_id": client, "user_id": user, "resource_id": "api", "scopes": scopes})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    /// Has an authorization code issued, as the host's authorization endpoint does.
    pub async fn code(&self, body: Value) -> Response {
        self.admin(Method::POST, "/authorization-codes", Some(body))
            .await
    }

    /// The introspection of `token`, as a resource server sees it.
    pub async fn introspect(&self, token: &str) -> Value {
        let r = self
            .http
            .post(self.url("/oauth/introspect"))
            .bearer_auth(ADMIN)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

/// An error answer in the seed 004 shape, with this status and code.
pub async fn expect_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    for key in ["message", "suggested"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert!(body["metadata"].is_object(), "{body}");
    body
}

/// An RFC 6749 §5.2 error answer with this status and code; answers the body.
pub async fn expect_oauth_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body
}

/// A successful token answer: no-store, and its body.
pub async fn expect_tokens(r: Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    body
}
