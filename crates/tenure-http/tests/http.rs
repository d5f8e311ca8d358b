//! The router on a real loopback server, driven by a real HTTP client through every
//! route and every error answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tenure::{Engine, EngineConfig, ManualClock, Storage};
use tenure_http::{HttpConfig, StaticAdminToken};
use tenure_memory::MemoryStorage;
use tenure_memory::testing::{Fault, Instrumented, epoch};

const ADMIN: &str = "admin-token-for-tests";

struct Server {
    base: String,
    http: Client,
    clock: Arc<ManualClock>,
}

async fn server() -> Server {
    server_with(HttpConfig::default()).await
}

async fn server_with(config: HttpConfig) -> Server {
    server_on(
        Arc::new(MemoryStorage::new()),
        EngineConfig::default(),
        config,
    )
    .await
}

/// The router over an engine on `storage`, on a loopback port.
async fn server_on(
    storage: Arc<dyn Storage>,
    engine_config: EngineConfig,
    config: HttpConfig,
) -> Server {
    let clock = Arc::new(ManualClock::new(epoch()));
    let engine = Engine::builder(storage)
        .clock(clock.clone())
        .config(engine_config)
        .build();
    let app = tenure_http::router_with(engine, Arc::new(StaticAdminToken::new(ADMIN)), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        base: format!("http://{addr}/zones/z1"),
        http: Client::new(),
        clock,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn client(&self, body: Value) -> Value {
        let r = self.admin(Method::POST, "/clients", Some(body)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    async fn grant(&self, client: &str, user: &str, scopes: &[&str]) -> Value {
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
}

/// An error answer in the seed 004 shape, with this status and code.
async fn expect_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    for key in ["message", "suggested"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert!(body["metadata"].is_object(), "{body}");
    body
}

async fn expect_oauth_error(r: Response, status: StatusCode, code: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
}

#[tokio::test]
async fn zone_routes_need_the_admin_token() {
    let s = server().await;
    for (method, path) in [
        (Method::GET, "/delegated-grants"),
        (Method::POST, "/delegated-grants"),
        (Method::GET, "/delegated-grants/x"),
        (Method::PATCH, "/delegated-grants/x"),
        (Method::DELETE, "/delegated-grants/x"),
        (Method::GET, "/delegated-grants/x/history"),
        (Method::GET, "/clients"),
        (Method::POST, "/clients"),
        (Method::GET, "/clients/x"),
        (Method::PATCH, "/clients/x"),
        (Method::DELETE, "/clients/x"),
        (Method::POST, "/clients/x/impact"),
    ] {
        for (auth, challenge) in CHALLENGES {
            let mut req = s.http.request(method.clone(), s.url(path));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.headers()["www-authenticate"],
                challenge,
                "{method} {path} with {auth:?}"
            );
            expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }
}

/// What each kind of Authorization header is answered with when it does not admit
/// the caller (RFC 6750 §3.1): no bearer token gets a bare challenge, a bearer
/// token that was refused gets `error="invalid_token"`.
const CHALLENGES: [(Option<&str>, &str); 5] = [
    (None, "Bearer realm=\"tenure\""),
    (Some("Basic abc"), "Bearer realm=\"tenure\""),
    (Some("Bearer "), "Bearer realm=\"tenure\""),
    (
        Some("Bearer wrong"),
        "Bearer realm=\"tenure\", error=\"invalid_token\"",
    ),
    (
        Some("Bearer tnr_at_unknown"),
        "Bearer realm=\"tenure\", error=\"invalid_token\"",
    ),
];

#[tokio::test]
async fn introspection_and_user_routes_challenge_as_rfc_6750_says() {
    let s = server().await;
    for (auth, challenge) in CHALLENGES {
        let mut req = s
            .http
            .post(s.url("/oauth/introspect"))
            .form(&[("token", "x")]);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], challenge, "{auth:?}");
        expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
        for (method, path) in [
            (Method::POST, "/auth-grant/create"),
            (Method::GET, "/auth-grant/x"),
            (Method::DELETE, "/auth-grant/x"),
            (Method::POST, "/auth-grant/update/x"),
            (Method::POST, "/auth-grant/x/revoke"),
            (Method::POST, "/profile/auth-grants"),
            (Method::POST, "/device/approve"),
        ] {
            let mut req = s.http.request(method.clone(), s.url(path)).json(&json!({}));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.headers()["www-authenticate"],
                challenge,
                "{method} {path} with {auth:?}"
            );
            expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }
}

#[tokio::test]
async fn create_get_list_revoke_delete_a_grant() {
    let s = server().await;
    s.client(json!({"id": "c", "name": "C", "allowed_scopes": ["read", "write"]}))
        .await;
    let created = s.grant("c", "alice", &["read"]).await;
    assert_eq!(created["token_type"], "Bearer");
    assert_eq!(created["expires_in"], 3600);
    assert_eq!(created["scope"], "read");
    assert!(
        created["access_token"]
            .as_str()
            .unwrap()
            .starts_with("tnr_at_")
    );
    assert!(
        created["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("tnr_rt_")
    );
    let id = created["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["grant"]["status"], "active");
    assert_eq!(created["grant"]["active"], true);
    assert!(created["grant"].get("refreshed_at").is_none());

    let r = s
        .admin(Method::GET, &format!("/delegated-grants/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got, created["grant"]);

    let r = s
        .admin(
            Method::GET,
            "/delegated-grants?user_id=alice&expand[]=total_count",
            None,
        )
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["pagination"], json!({"total_count": 1}));

    let r = s
        .admin(
            Method::PATCH,
            &format!("/delegated-grants/{id}"),
            Some(json!({"status": "revoked"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let revoked: Value = r.json().await.unwrap();
    assert_eq!(
        (revoked["status"].clone(), revoked["active"].clone()),
        (json!("revoked"), json!(false))
    );
    // Again: 200, unchanged.
    let r = s
        .admin(
            Method::PATCH,
            &format!("/delegated-grants/{id}"),
            Some(json!({"status": "revoked"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), revoked);

    let r = s
        .admin(
            Method::GET,
            &format!("/delegated-grants/{id}/history"),
            None,
        )
        .await;
    let history: Value = r.json().await.unwrap();
    let reasons: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["created", "revoked"]);
    assert_eq!(history["items"][1]["actor"], json!({"type": "admin"}));

    let r = s
        .admin(Method::DELETE, &format!("/delegated-grants/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .admin(Method::GET, &format!("/delegated-grants/{id}"), None)
        .await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s
        .admin(Method::DELETE, &format!("/delegated-grants/{id}"), None)
        .await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn revoking_an_expired_grant_is_409_and_another_zones_grant_is_404() {
    let s = server().await;
    s.client(json!({"id": "c", "name": "C", "allowed_scopes": ["read"]}))
        .await;
    let created = s.grant("c", "alice", &["read"]).await;
    let id = created["grant"]["id"].as_str().unwrap();
    let other_zone = s.base.replace("/zones/z1", "/zones/z2");
    let r = s
        .http
        .get(format!("{other_zone}/delegated-grants/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    s.clock.advance(Duration::days(31));
    let r = s
        .admin(
            Method::PATCH,
            &format!("/delegated-grants/{id}"),
            Some(json!({"status": "revoked"})),
        )
        .await;
    let body = expect_error(r, StatusCode::CONFLICT, "invalid_transition").await;
    assert_eq!(
        body["metadata"],
        json!({"from": "expired", "to": "revoked"})
    );
    let r = s
        .admin(
            Method::PATCH,
            &format!("/delegated-grants/{id}"),
            Some(json!({"status": "active"})),
        )
        .await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
}

#[tokio::test]
async fn listing_pages_both_ways_with_cursors() {
    let s = server().await;
    s.client(json!({"id": "c", "name": "C", "allowed_scopes": ["read"]}))
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        s.clock.advance(Duration::milliseconds(1));
        let g = s
            .grant("c", if i % 2 == 0 { "alice" } else { "bob" }, &["read"])
            .await;
        ids.push(g["grant"]["id"].as_str().unwrap().to_owned());
    }
    let page = |q: String| {
        let s = &s;
        async move {
            let r = s
                .admin(Method::GET, &format!("/delegated-grants?{q}"), None)
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let ids_of = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let p1 = page("sort=created_at&limit=2".into()).await;
    assert_eq!(ids_of(&p1), ids[0..2]);
    assert!(p1["pagination"].get("before_cursor").is_none());
    let after = p1["pagination"]["after_cursor"].as_str().unwrap();
    let p2 = page(format!("sort=created_at&limit=2&after={after}")).await;
    assert_eq!(ids_of(&p2), ids[2..4]);
    let before = p2["pagination"]["before_cursor"].as_str().unwrap();
    let back = page(format!("sort=created_at&limit=2&before={before}")).await;
    assert_eq!(ids_of(&back), ids[0..2]);
    let newest = page("limit=1".into()).await;
    assert_eq!(ids_of(&newest), [ids[4].clone()]);
    let active_bob = page("active=true&user_id=bob&expand[]=total_count".into()).await;
    assert_eq!(active_bob["pagination"]["total_count"], 2);
    let revoked = page("status=revoked".into()).await;
    assert!(ids_of(&revoked).is_empty());
}

#[tokio::test]
async fn bad_list_parameters_are_4xx_with_the_seed_body() {
    let s = server().await;
    // A value the API document does not allow is a 400 naming its parameter.
    for (q, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("status=paused", "status"),
        ("status=Active", "status"),
        ("active=yes", "active"),
        // Seed 001 documents `active` as "true" only.
        ("active=false", "active"),
        ("active=TRUE", "active"),
        ("active=", "active"),
        ("sort=name", "sort"),
        ("expand[]=everything", "expand[]"),
        ("after=a&before=b", "before"),
        ("user_id=%00", "user_id"),
        ("client_id=%00", "client_id"),
    ] {
        let r = s
            .admin(Method::GET, &format!("/delegated-grants?{q}"), None)
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let body = expect_error(r, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        assert_eq!(body["metadata"], json!({"parameter": parameter}), "{q}");
    }
    for (q, status, code) in [
        ("after=forged", StatusCode::BAD_REQUEST, "invalid_cursor"),
        ("before=%00%01", StatusCode::BAD_REQUEST, "invalid_cursor"),
        (
            "limit=1&limit=2",
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ] {
        let r = s
            .admin(Method::GET, &format!("/delegated-grants?{q}"), None)
            .await;
        assert_eq!(r.status(), status, "{q}");
        expect_error(r, status, code).await;
    }
    for (q, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("after=%00", "after"),
    ] {
        let r = s.admin(Method::GET, &format!("/clients?{q}"), None).await;
        let body = expect_error(r, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        assert_eq!(body["metadata"], json!({"parameter": parameter}), "{q}");
    }
}

#[tokio::test]
async fn every_page_of_clients_but_the_last_has_a_cursor() {
    let s = server().await;
    let mut registered = HashSet::new();
    for i in 0..201 {
        let id = format!("client-{i:03}");
        s.client(json!({"id": id, "name": "C"})).await;
        registered.insert(id);
    }
    // 201 clients: pages of 100, 100 and 1; then 3 pages of 67 exactly.
    for (limit, sizes) in [(100, vec![100, 100, 1]), (67, vec![67, 67, 67])] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut page_sizes = Vec::new();
        loop {
            let path = match &after {
                Some(a) => format!("/clients?limit={limit}&after={a}"),
                None => format!("/clients?limit={limit}"),
            };
            let r = s.admin(Method::GET, &path, None).await;
            assert_eq!(r.status(), StatusCode::OK);
            let page: Value = r.json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            page_sizes.push(items.len());
            seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
            match page["pagination"].get("after_cursor") {
                Some(cursor) => {
                    assert_eq!(cursor, &items.last().unwrap()["id"]);
                    after = Some(cursor.as_str().unwrap().to_owned());
                }
                None => break,
            }
        }
        assert_eq!(page_sizes, sizes, "limit {limit}");
        assert_eq!(seen.len(), registered.len(), "each client once");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), registered);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "by id");
    }
}

#[tokio::test]
async fn malformed_wrong_type_and_oversized_bodies() {
    let s = server_with(HttpConfig {
        body_limit: 1024,
        ..HttpConfig::default()
    })
    .await;
    let r = s
        .http
        .post(s.url("/clients"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "malformed_request").await;
    let r = s
        .http
        .post(s.url("/clients"))
        .bearer_auth(ADMIN)
        .body("name=x")
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = s
        .admin(
            Method::POST,
            "/clients",
            Some(json!({"name": "x", "unknown": 1})),
        )
        .await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = s
        .admin(Method::POST, "/clients", Some(json!({"name": 5})))
        .await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = s
        .admin(
            Method::POST,
            "/clients",
            Some(json!({"name": "x", "client_type": "weird"})),
        )
        .await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let big = json!({"name": "x".repeat(2000)});
    let r = s.admin(Method::POST, "/clients", Some(big)).await;
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let r = s.admin(Method::POST, "/delegated-grants", Some(json!({"client_id": "nope", "user_id": "u", "resource_id": "r", "scopes": ["read"]}))).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s.admin(Method::POST, "/delegated-grants", Some(json!({"client_id": "c", "user_id": "u", "resource_id": "r", "scopes": ["read"], "expires_at": "tomorrow"}))).await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    // Unknown routes and methods get the seed body too.
    let r = s.admin(Method::GET, "/nowhere", None).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s.admin(Method::PUT, "/clients", None).await;
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn clients_register_read_list_patch_and_dry_run() {
    let s = server().await;
    let confidential = s
        .client(json!({"id": "conf", "name": "Confidential", "client_type": "confidential", "allowed_scopes": ["read"]}))
        .await;
    assert!(
        confidential["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("tnr_cs_")
    );
    assert_eq!(confidential["client_secret_set"], true);
    let r = s.admin(Method::GET, "/clients/conf", None).await;
    let read: Value = r.json().await.unwrap();
    assert!(
        read.get("client_secret").is_none(),
        "the secret is shown once"
    );
    let r = s
        .admin(
            Method::POST,
            "/clients",
            Some(json!({"id": "conf", "name": "dup"})),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT, "already_exists").await;
    for i in 0..3 {
        s.client(json!({"id": format!("c{i}"), "name": "C", "allowed_scopes": ["read", "write"]}))
            .await;
    }
    let r = s.admin(Method::GET, "/clients?limit=2", None).await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let after = page["pagination"]["after_cursor"].as_str().unwrap();
    let r = s
        .admin(
            Method::GET,
            &format!("/clients?limit=2&after={after}"),
            None,
        )
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["pagination"].get("after_cursor").is_none());

    s.grant("c0", "alice", &["read", "write"]).await;
    let patch = json!([{"op": "replace", "path": "/allowed_scopes", "value": ["read"]}]);
    let send = |path: &str, ct: &str, body: Value| {
        s.http
            .request(
                if path.ends_with("impact") {
                    Method::POST
                } else {
                    Method::PATCH
                },
                s.url(path),
            )
            .bearer_auth(ADMIN)
            .header("content-type", ct)
            .body(body.to_string())
            .send()
    };
    let r = send(
        "/clients/c0/impact",
        "application/json-patch+json",
        patch.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let impact: Value = r.json().await.unwrap();
    assert_eq!(impact["narrowed_grants"], 1);
    assert_eq!(impact["active_grants"], 1);
    let r = send("/clients/c0", "application/json-patch+json", patch)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["allowed_scopes"],
        json!(["read"])
    );
    let r = send("/clients/c0", "application/json", json!({"name": "Merged"}))
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Merged");
    let r = send(
        "/clients/c0",
        "application/json-patch+json",
        json!([{"op": "test", "path": "/name", "value": "Other"}]),
    )
    .await
    .unwrap();
    let body = expect_error(r, StatusCode::CONFLICT, "patch_test_failed").await;
    assert_eq!(body["metadata"]["index"], 0);
    let r = send(
        "/clients/c0",
        "application/json-patch+json",
        json!([{"op": "replace", "path": "/id", "value": "x"}]),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_patch").await;
    let r = send(
        "/clients/c0",
        "application/json-patch+json",
        json!({"op": "add"}),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = send("/clients/c0", "text/plain", json!({})).await.unwrap();
    expect_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = send(
        "/clients/c0",
        "application/json",
        json!({"access_token_ttl_seconds": 0}),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = send("/clients/nope", "application/json", json!({"name": "x"}))
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s.admin(Method::GET, "/clients/c0", None).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "Merged",
        "failed patches changed nothing"
    );
}

#[tokio::test]
async fn the_token_endpoint_refreshes_with_rotation_and_rfc_errors() {
    let s = server().await;
    s.client(json!({"id": "pub", "name": "Public", "allowed_scopes": ["read", "write"]}))
        .await;
    let created = s.grant("pub", "alice", &["read", "write"]).await;
    let rt = created["refresh_token"].as_str().unwrap();
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "pub"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read");
    let new_rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Widening is invalid_scope.
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &new_rt),
                ("client_id", "pub"),
                ("scope", "admin"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // The spent one is invalid_grant, and revokes the grant.
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "pub"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &new_rt),
                ("client_id", "pub"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "tnr_rt_unknown"),
                ("client_id", "pub"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    for (form, code) in [
        (
            vec![("grant_type", "password"), ("client_id", "pub")],
            "unsupported_grant_type",
        ),
        (vec![("client_id", "pub")], "invalid_request"),
        (
            vec![("grant_type", "refresh_token"), ("client_id", "pub")],
            "invalid_request",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
                ("client_id", "pub"),
            ],
            "invalid_request",
        ),
    ] {
        let r = s.form("/oauth/token", &form).await;
        expect_oauth_error(r, StatusCode::BAD_REQUEST, code).await;
    }
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "ghost"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .json(&json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    expect_oauth_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request").await;
    // A disabled client is unauthorized_client.
    let other = s.grant("pub", "bob", &["read"]).await;
    s.admin(
        Method::PATCH,
        "/clients/pub",
        Some(json!({"enabled": false})),
    )
    .await;
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", other["refresh_token"].as_str().unwrap()),
                ("client_id", "pub"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn confidential_clients_authenticate_by_basic_or_post() {
    let s = server().await;
    let c = s.client(json!({"id": "conf", "name": "Conf", "client_type": "confidential", "allowed_scopes": ["read"]})).await;
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let g1 = s.grant("conf", "alice", &["read"]).await;
    let g2 = s.grant("conf", "bob", &["read"]).await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth("conf", Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", g1["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", g2["refresh_token"].as_str().unwrap()),
                ("client_id", "conf"),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Without or with a wrong secret: invalid_client, with a Basic challenge when Basic was tried.
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "conf"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth("conf", Some("wrong"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn introspection_and_revocation() {
    let s = server().await;
    s.client(json!({"id": "c", "name": "C", "allowed_scopes": ["read"]}))
        .await;
    let g = s.grant("c", "alice", &["read"]).await;
    let at = g["access_token"].as_str().unwrap();
    let rt = g["refresh_token"].as_str().unwrap();
    let introspect = |token: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .post(s.url("/oauth/introspect"))
                .bearer_auth(ADMIN)
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let active = introspect(at.to_owned()).await;
    assert_eq!(active["active"], true);
    assert_eq!(
        (
            active["sub"].clone(),
            active["client_id"].clone(),
            active["scope"].clone()
        ),
        (json!("alice"), json!("c"), json!("read"))
    );
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(introspect("nope".into()).await, json!({"active": false}));
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // Revocation: unknown tokens are 200 too; a refresh token takes the access token along.
    let r = s.form("/oauth/revoke", &[("token", "unknown")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .form(
            "/oauth/revoke",
            &[
                ("token", rt),
                ("token_type_hint", "refresh_token"),
                ("client_id", "c"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(at.to_owned()).await, json!({"active": false}));
    let r = s
        .form(
            "/oauth/revoke",
            &[("token", rt), ("token_type_hint", "id_token")],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unsupported_token_type").await;
    let r = s.form("/oauth/revoke", &[]).await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let g2 = s.grant("c", "bob", &["read"]).await;
    s.client(json!({"id": "other", "name": "O", "allowed_scopes": ["read"]}))
        .await;
    let r = s
        .form(
            "/oauth/revoke",
            &[
                ("token", g2["access_token"].as_str().unwrap()),
                ("client_id", "other"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    assert_eq!(
        introspect(g2["access_token"].as_str().unwrap().to_owned()).await["active"],
        true
    );
}

#[tokio::test]
async fn the_device_flow_end_to_end() {
    let s = server().await;
    s.client(json!({"id": "tv", "name": "TV", "allowed_scopes": ["read"], "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]})).await;
    s.client(json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}))
        .await;
    let user = s.grant("web", "alice", &["read"]).await;
    let user_token = user["access_token"].as_str().unwrap().to_owned();
    let r = s
        .form(
            "/oauth/device_authorization",
            &[("client_id", "tv"), ("scope", "read")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let start: Value = r.json().await.unwrap();
    let device_code = start["device_code"].as_str().unwrap().to_owned();
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        (start["interval"].clone(), start["expires_in"].clone()),
        (json!(5), json!(600))
    );
    assert!(
        start["verification_uri_complete"]
            .as_str()
            .unwrap()
            .contains(&user_code)
    );
    let poll_form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        ("client_id", "tv"),
    ];
    let poll = || s.form("/oauth/token", &poll_form);
    expect_oauth_error(
        poll().await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    expect_oauth_error(poll().await, StatusCode::BAD_REQUEST, "slow_down").await;
    // The user approves with their access token; without one it is 401.
    let r = s
        .http
        .post(s.url("/device/approve"))
        .json(&json!({"user_code": user_code, "action": "approve"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = s
        .http
        .post(s.url("/device/approve"))
        .bearer_auth(&user_token)
        .json(&json!({"user_code": "BBBB-BBBB", "action": "approve"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_user_code").await;
    let r = s
        .http
        .post(s.url("/device/approve"))
        .bearer_auth(&user_token)
        .json(&json!({"user_code": user_code, "action": "maybe"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = s
        .http
        .post(s.url("/device/approve"))
        .bearer_auth(&user_token)
        .form(&[
            ("user_code", user_code.to_lowercase().as_str()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["status"], "approved");
    s.clock.advance(Duration::seconds(30));
    let r = poll().await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("tnr_at_")
    );
    s.clock.advance(Duration::seconds(30));
    expect_oauth_error(poll().await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Denied and expired.
    let r = s
        .form(
            "/oauth/device_authorization",
            &[("client_id", "tv"), ("scope", "read")],
        )
        .await;
    let start: Value = r.json().await.unwrap();
    let code = start["device_code"].as_str().unwrap().to_owned();
    let r = s
        .http
        .post(s.url("/device/approve"))
        .bearer_auth(&user_token)
        .json(&json!({"user_code": start["user_code"], "action": "deny"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "denied");
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &code),
                ("client_id", "tv"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "access_denied").await;
    let r = s
        .form(
            "/oauth/device_authorization",
            &[("client_id", "tv"), ("scope", "read")],
        )
        .await;
    let code = r.json::<Value>().await.unwrap()["device_code"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(Duration::minutes(11));
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &code),
                ("client_id", "tv"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "expired_token").await;
    // A client without the device grant is unauthorized_client.
    let r = s
        .form(
            "/oauth/device_authorization",
            &[("client_id", "web"), ("scope", "read")],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn personal_grants_belong_to_the_token_holder() {
    let s = server().await;
    s.client(json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}))
        .await;
    let alice = s.grant("web", "alice", &["read"]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mallory = s.grant("web", "mallory", &["read"]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = s.http.request(method, s.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let r = call(
        Method::POST,
        "/auth-grant/create",
        &alice,
        Some(json!({"name": "ci", "description": "d", "scope": "read write", "expiresAt": null})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id: String = r.json().await.unwrap();
    let r = call(Method::GET, &format!("/auth-grant/{id}"), &alice, None)
        .await
        .unwrap();
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["scope"], "read write");
    assert_eq!(got["status"], "active");
    assert_eq!(got["expiresAt"], Value::Null);
    assert!(
        got["challenge"]
            .as_str()
            .unwrap()
            .starts_with("auth-grant:")
    );
    assert!(got["createdAt"].is_string());
    // Mallory sees nothing of it and changes nothing.
    for (method, path) in [
        (Method::GET, format!("/auth-grant/{id}")),
        (Method::DELETE, format!("/auth-grant/{id}")),
        (Method::POST, format!("/auth-grant/{id}/revoke")),
    ] {
        let r = call(method, &path, &mallory, None).await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = call(
        Method::POST,
        &format!("/auth-grant/update/{id}"),
        &mallory,
        Some(json!({"name": "x"})),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = call(
        Method::POST,
        "/profile/auth-grants",
        &mallory,
        Some(json!({})),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    // The owner lists, updates, revokes, deletes.
    for _ in 0..2 {
        call(
            Method::POST,
            "/auth-grant/create",
            &alice,
            Some(json!({"name": "more"})),
        )
        .await
        .unwrap();
    }
    let r = call(
        Method::POST,
        "/profile/auth-grants",
        &alice,
        Some(json!({"limit": 2})),
    )
    .await
    .unwrap();
    let cursor = r.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    assert_eq!(
        r.json::<Value>().await.unwrap().as_array().unwrap().len(),
        2
    );
    let r = call(
        Method::POST,
        "/profile/auth-grants",
        &alice,
        Some(json!({"limit": 2, "cursor": cursor})),
    )
    .await
    .unwrap();
    assert!(r.headers().get("x-next-cursor").is_none());
    assert_eq!(r.json::<Value>().await.unwrap()[0]["id"], json!(id));
    let r = call(
        Method::POST,
        &format!("/auth-grant/update/{id}"),
        &alice,
        Some(json!({"name": "renamed"})),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!(true));
    let r = call(
        Method::POST,
        &format!("/auth-grant/{id}/revoke"),
        &alice,
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!(true));
    let r = call(Method::GET, &format!("/auth-grant/{id}"), &alice, None)
        .await
        .unwrap();
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        (got["status"].clone(), got["name"].clone()),
        (json!("revoked"), json!("renamed"))
    );
    let r = call(Method::DELETE, &format!("/auth-grant/{id}"), &alice, None)
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!(true));
    let r = call(Method::GET, &format!("/auth-grant/{id}"), &alice, None)
        .await
        .unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    // Bad input and bad tokens.
    let r = call(
        Method::POST,
        "/auth-grant/create",
        &alice,
        Some(json!({"scope": "a\u{0}b"})),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = call(
        Method::POST,
        "/auth-grant/create",
        &alice,
        Some(json!({"expiresAt": "soon"})),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = call(
        Method::POST,
        "/profile/auth-grants",
        &alice,
        Some(json!({"cursor": "forged"})),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    let r = call(Method::POST, "/auth-grant/create", ADMIN, Some(json!({})))
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A refresh token is not an access token.
    let refresh = s.grant("web", "alice", &["read"]).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        Method::POST,
        "/profile/auth-grants",
        &refresh,
        Some(json!({})),
    )
    .await
    .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let s = server().await;
    let doc: Value = s
        .http
        .get(s.base.replace("/zones/z1", "/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/zones/{zone_id}/delegated-grants",
        "/zones/{zone_id}/delegated-grants/{id}",
        "/zones/{zone_id}/delegated-grants/{id}/history",
        "/zones/{zone_id}/clients",
        "/zones/{zone_id}/clients/{id}",
        "/zones/{zone_id}/clients/{id}/impact",
        "/zones/{zone_id}/oauth/token",
        "/zones/{zone_id}/oauth/introspect",
        "/zones/{zone_id}/oauth/revoke",
        "/zones/{zone_id}/oauth/device_authorization",
        "/zones/{zone_id}/device/approve",
        "/zones/{zone_id}/auth-grant/create",
        "/zones/{zone_id}/auth-grant/{id}",
        "/zones/{zone_id}/auth-grant/update/{id}",
        "/zones/{zone_id}/auth-grant/{id}/revoke",
        "/zones/{zone_id}/profile/auth-grants",
        "/zones/{zone_id}/clients/{id}/secret",
        "/zones/{zone_id}/authorization-codes",
        "/zones/{zone_id}/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/zones/{zone_id}",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    let mut ids = std::collections::HashSet::new();
    for item in paths.values() {
        for op in item.as_object().unwrap().values() {
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "operation ids are unique"
            );
        }
    }
    // tenure's own 27, the SailPoint dialect's 5 and the Storyden dialect's 8.
    assert_eq!(ids.len(), 40);
}

#[tokio::test]
async fn clients_registered_without_lifetimes_get_the_configured_defaults() {
    let s = server_with(HttpConfig {
        default_access_token_ttl_seconds: 300,
        default_refresh_token_ttl_seconds: 7200,
        ..HttpConfig::default()
    })
    .await;
    let created: Value = s
        .http
        .post(s.url("/clients"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Defaults", "allowed_scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["access_token_ttl_seconds"], 300);
    assert_eq!(created["refresh_token_ttl_seconds"], 7200);
    // A lifetime given in the request wins.
    let given: Value = s
        .http
        .post(s.url("/clients"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Given", "allowed_scopes": ["read"], "access_token_ttl_seconds": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(given["access_token_ttl_seconds"], 60);
    assert_eq!(given["refresh_token_ttl_seconds"], 7200);
}

/// Asserts that a response may not be stored by any cache.
fn assert_not_stored(r: &Response, what: &str) {
    assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
    assert_eq!(r.headers()["pragma"], "no-cache", "{what}");
}

#[tokio::test]
async fn answers_carrying_secrets_or_token_facts_are_never_stored() {
    let s = server().await;
    let r = s
        .admin(
            Method::POST,
            "/clients",
            Some(json!({"id": "conf", "name": "Conf", "client_type": "confidential", "allowed_scopes": ["read"]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_not_stored(&r, "client registration (client secret)");
    s.client(json!({"id": "tv", "name": "TV", "allowed_scopes": ["read"], "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]})).await;
    s.client(json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}))
        .await;
    let r = s
        .admin(
            Method::POST,
            "/delegated-grants",
            Some(json!({"client_id": "web", "user_id": "alice", "resource_id": "api", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_not_stored(&r, "grant creation (tokens)");
    let created: Value = r.json().await.unwrap();
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", created["refresh_token"].as_str().unwrap()),
                ("client_id", "web"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_not_stored(&r, "token response");
    let r = s
        .form(
            "/oauth/device_authorization",
            &[("client_id", "tv"), ("scope", "read")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_not_stored(&r, "device authorization (device code)");
    for token in [created["access_token"].as_str().unwrap(), "unknown"] {
        let r = s
            .http
            .post(s.url("/oauth/introspect"))
            .bearer_auth(ADMIN)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_not_stored(&r, "introspection (token facts)");
    }
    // A plain read carries no secret.
    let r = s.admin(Method::GET, "/clients/conf", None).await;
    assert!(r.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn conflicts_outlasting_the_retries_are_503_at_the_token_endpoint() {
    let storage = Arc::new(Instrumented::new());
    let s = server_on(
        storage.clone(),
        EngineConfig {
            max_attempts: 3,
            ..EngineConfig::default()
        },
        HttpConfig::default(),
    )
    .await;
    s.client(json!({"id": "c", "name": "C", "allowed_scopes": ["read"]}))
        .await;
    let created = s.grant("c", "alice", &["read"]).await;
    storage.inject(Fault::Conflict, usize::MAX);
    let before = storage.applies();
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", created["refresh_token"].as_str().unwrap()),
                ("client_id", "c"),
            ],
        )
        .await;
    assert_eq!(storage.applies() - before, 3, "every attempt was made");
    assert_eq!(r.headers()["retry-after"], "1");
    expect_oauth_error(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    // The seed routes keep their 409.
    let r = s
        .admin(
            Method::PATCH,
            &format!(
                "/delegated-grants/{}",
                created["grant"]["id"].as_str().unwrap()
            ),
            Some(json!({"status": "revoked"})),
        )
        .await;
    expect_error(r, StatusCode::CONFLICT, "conflict").await;
    // Once the store heals, the same refresh token works.
    storage.heal();
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", created["refresh_token"].as_str().unwrap()),
                ("client_id", "c"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A store that cannot be reached: every call fails as a backend does when its
/// database is down.
#[derive(Debug)]
struct Unreachable;

fn down<T>() -> tenure::Result<T> {
    Err(tenure::Error::unavailable(
        "unreachable",
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    ))
}

#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl Storage for Unreachable {
    async fn zones(&self, _: Option<&str>, _: usize) -> tenure::Result<Vec<String>> {
        down()
    }
    async fn get_client(
        &self,
        _: &str,
        _: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Client>>> {
        down()
    }
    async fn list_clients(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Client>>> {
        down()
    }
    async fn get_grant(
        &self,
        _: &str,
        _: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Grant>>> {
        down()
    }
    async fn list_grants(&self, _: &tenure::GrantQuery) -> tenure::Result<tenure::GrantPage> {
        down()
    }
    async fn count_grants(
        &self,
        _: &str,
        _: &tenure::GrantFilter,
        _: tenure::Timestamp,
    ) -> tenure::Result<u64> {
        down()
    }
    async fn expired_grants(
        &self,
        _: &str,
        _: tenure::Timestamp,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Grant>>> {
        down()
    }
    async fn grant_history(&self, _: &str, _: &str) -> tenure::Result<Vec<tenure::Transition>> {
        down()
    }
    async fn get_token(
        &self,
        _: &str,
        _: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::Token>>> {
        down()
    }
    async fn get_token_and_grant(
        &self,
        _: &str,
        _: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::TokenAndGrant>> {
        down()
    }
    async fn get_token_and_grant_facts(
        &self,
        _: &str,
        _: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::TokenAndGrantFacts>> {
        down()
    }
    async fn grant_tokens(
        &self,
        _: &str,
        _: &str,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Token>>> {
        down()
    }
    async fn expired_tokens(
        &self,
        _: &str,
        _: tenure::Timestamp,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::Token>>> {
        down()
    }
    async fn get_personal_grant(
        &self,
        _: &str,
        _: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::PersonalGrant>>> {
        down()
    }
    async fn list_personal_grants(
        &self,
        _: &str,
        _: &str,
        _: Option<&tenure::Keyset>,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        down()
    }
    async fn list_zone_personal_grants(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::PersonalGrant>>> {
        down()
    }
    async fn get_device_authorization(
        &self,
        _: &str,
        _: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        down()
    }
    async fn find_device_authorization(
        &self,
        _: &str,
        _: &str,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::DeviceAuthorization>>> {
        down()
    }
    async fn expired_device_authorizations(
        &self,
        _: &str,
        _: tenure::Timestamp,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        down()
    }
    async fn list_device_authorizations(
        &self,
        _: &str,
        _: Option<&tenure::Digest>,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::DeviceAuthorization>>> {
        down()
    }
    async fn get_authorization_code(
        &self,
        _: &str,
        _: &tenure::Digest,
    ) -> tenure::Result<Option<tenure::Versioned<tenure::AuthorizationCode>>> {
        down()
    }
    async fn expired_authorization_codes(
        &self,
        _: &str,
        _: tenure::Timestamp,
        _: usize,
    ) -> tenure::Result<Vec<tenure::Versioned<tenure::AuthorizationCode>>> {
        down()
    }
    async fn apply(&self, _: tenure::WriteSet) -> tenure::Result<()> {
        down()
    }
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after_on_every_kind_of_route() {
    let s = server_on(
        Arc::new(Unreachable),
        EngineConfig::default(),
        HttpConfig::default(),
    )
    .await;
    for (method, path, body) in [
        (Method::GET, "/delegated-grants", None),
        (Method::GET, "/delegated-grants/g", None),
        (Method::GET, "/clients?limit=100", None),
        (
            Method::POST,
            "/clients",
            Some(json!({"id": "c", "name": "C"})),
        ),
    ] {
        let r = s.admin(method.clone(), path, body).await;
        assert_eq!(r.headers()["retry-after"], "1", "{method} {path}");
        expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    // A user route cannot tell a token it cannot look up from a wrong one: 503, not 401.
    let r = s
        .http
        .post(s.url("/profile/auth-grants"))
        .bearer_auth("tnr_at_whatever")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    for (path, form, admin) in [
        (
            "/oauth/token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "c"),
            ],
            false,
        ),
        ("/oauth/introspect", vec![("token", "x")], true),
        (
            "/oauth/device_authorization",
            vec![("client_id", "c"), ("scope", "read")],
            false,
        ),
    ] {
        let mut req = s.http.post(s.url(path)).form(&form);
        if admin {
            req = req.bearer_auth(ADMIN);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.headers()["retry-after"], "1", "{path}");
        expect_oauth_error(
            r,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        )
        .await;
    }
}

#[tokio::test]
async fn the_openapi_document_describes_503_on_every_route() {
    let s = server().await;
    let doc: Value = s
        .http
        .get(s.base.replace("/zones/z1", "/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let unavailable = &op["responses"]["503"];
            assert!(
                unavailable["headers"]["retry-after"].is_object(),
                "{method} {path}: {unavailable}"
            );
        }
    }
    let token = &paths["/zones/{zone_id}/oauth/token"]["post"]["responses"];
    assert!(token.get("409").is_none(), "{token}");
    assert_eq!(
        token["503"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OAuthErrorBody"
    );
    assert!(token["200"]["headers"]["cache-control"].is_object());
}

#[tokio::test]
async fn the_openapi_document_describes_strict_list_parameters() {
    let s = server().await;
    let doc: Value = s
        .http
        .get(s.base.replace("/zones/z1", "/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let list = &paths["/zones/{zone_id}/delegated-grants"]["get"];
    assert!(list["responses"]["400"].is_object());
    let active = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "active")
        .unwrap();
    assert_eq!(active["schema"]["pattern"], "^true$");
    assert!(paths["/zones/{zone_id}/clients"]["get"]["responses"]["400"].is_object());
}

/// `DELETE /clients/{id}` revokes the client's grants, so its access and refresh
/// tokens introspect inactive and the refresh token is refused; the client is then
/// 404 at every route, deleting it again is 404, and its grants stay, revoked.
#[tokio::test]
async fn deleting_a_client_revokes_its_grants_and_answers_404_after() {
    let s = server().await;
    let active = |token: &str| {
        let request = s
            .http
            .post(s.url("/oauth/introspect"))
            .bearer_auth(ADMIN)
            .form(&[("token", token)]);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["active"].as_bool().unwrap()
        }
    };
    s.client(json!({"id": "doomed", "name": "Doomed", "allowed_scopes": ["read"]}))
        .await;
    let created = s.grant("doomed", "alice", &["read"]).await;
    let access = created["access_token"].as_str().unwrap();
    let refresh = created["refresh_token"].as_str().unwrap();
    let grant_id = created["grant"]["id"].as_str().unwrap();
    assert!(active(access).await);

    let r = s.admin(Method::DELETE, "/clients/doomed", None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for token in [access, refresh] {
        assert!(!active(token).await);
    }
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "doomed"),
            ],
        )
        .await;
    // The client is gone, so it fails to authenticate before its token is read.
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    for path in [
        "/clients/doomed",
        "/oauth-clients/v1/doomed",
        "/admin/oauth/clients/doomed",
    ] {
        let r = s.admin(Method::GET, path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = s.admin(Method::DELETE, "/clients/doomed", None).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s
        .admin(Method::GET, &format!("/delegated-grants/{grant_id}"), None)
        .await;
    let grant: Value = r.json().await.unwrap();
    assert_eq!(grant["status"], "revoked", "{grant}");
}
