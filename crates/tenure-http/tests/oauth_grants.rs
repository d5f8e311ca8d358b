//! Client authentication, the authorization-code and client-credentials grants,
//! secret rotation and discovery, over HTTP on a loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Duration;
use common::{
    CHALLENGE, VERIFIER, basic, expect_error, expect_oauth_error, expect_tokens, server,
    server_with,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenure_http::HttpConfig;
use tenure_memory::testing::epoch;

const CB: &str = "https://spa.example/cb";

fn code_request(client: &str) -> Value {
    json!({
        "client_id": client,
        "user_id": "alice",
        "resource_id": "api",
        "scopes": ["read"],
        "redirect_uri": CB,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    })
}

async fn spa(s: &common::Server) {
    s.client(json!({"id": "spa", "name": "SPA", "allowed_scopes": ["read", "write"], "redirect_uris": [CB]}))
        .await;
}

async fn issued_code(s: &common::Server, body: Value) -> String {
    let r = s.code(body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let issued: Value = r.json().await.unwrap();
    assert_eq!(issued["expires_in"], 60);
    issued["code"].as_str().unwrap().to_owned()
}

fn no_basic_challenge(r: &reqwest::Response) -> bool {
    r.headers()
        .get("www-authenticate")
        .is_none_or(|v| !v.to_str().unwrap().starts_with("Basic"))
}

#[tokio::test]
async fn invalid_client_is_401_with_a_basic_challenge_only_after_basic() {
    let s = server().await;
    // A colon in the id: Basic carries it form-urlencoded (RFC 6749 §2.3.1).
    let c = s
        .client(json!({"id": "svc:1", "name": "Svc", "client_type": "confidential", "allowed_scopes": ["read"], "allowed_grants": ["client_credentials"]}))
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    s.client(json!({"id": "pub", "name": "Public", "allowed_scopes": ["read"]}))
        .await;
    let cc = [("grant_type", "client_credentials")];
    expect_tokens(
        s.form_as("/oauth/token", Some(&basic("svc:1", &secret)), &cc)
            .await,
    )
    .await;
    expect_tokens(
        s.form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc:1"),
                ("client_secret", &secret),
            ],
        )
        .await,
    )
    .await;
    // The same client_id beside Basic is fine.
    expect_tokens(
        s.form_as(
            "/oauth/token",
            Some(&basic("svc:1", &secret)),
            &[("grant_type", "client_credentials"), ("client_id", "svc:1")],
        )
        .await,
    )
    .await;

    // Through Basic: a Basic challenge, and one body whatever failed.
    let mut bodies = Vec::new();
    for authorization in [
        basic("svc:1", "wrong"),
        basic("ghost", &secret),
        basic("pub", "a-secret-it-does-not-have"),
        "Basic !!!".to_owned(),
        // base64 of "no-colon".
        "Basic bm8tY29sb24=".to_owned(),
    ] {
        let r = s.form_as("/oauth/token", Some(&authorization), &cc).await;
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"tenure\"",
            "{authorization}"
        );
        bodies.push(expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await);
    }
    // In the form: no Basic challenge, and the same body again.
    for form in [
        vec![("client_id", "svc:1"), ("client_secret", "wrong")],
        vec![("client_id", "ghost"), ("client_secret", secret.as_str())],
        vec![("client_id", "ghost")],
        // A confidential client without its secret.
        vec![("client_id", "svc:1")],
        // A public client with a secret.
        vec![("client_id", "pub"), ("client_secret", "x")],
    ] {
        let mut form = form;
        form.push(("grant_type", "client_credentials"));
        let r = s.form("/oauth/token", &form).await;
        assert!(no_basic_challenge(&r), "{form:?}");
        bodies.push(expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");

    // Two methods at once, or two ids, are malformed requests.
    let r = s
        .form_as(
            "/oauth/token",
            Some(&basic("svc:1", &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let r = s
        .form_as(
            "/oauth/token",
            Some(&basic("svc:1", &secret)),
            &[("grant_type", "client_credentials"), ("client_id", "pub")],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;

    // Revocation and device authorization authenticate the same way.
    let r = s
        .form_as(
            "/oauth/revoke",
            Some(&basic("svc:1", "wrong")),
            &[("token", "anything")],
        )
        .await;
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tenure\"");
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = s
        .form(
            "/oauth/revoke",
            &[("token", "anything"), ("client_id", "ghost")],
        )
        .await;
    assert!(no_basic_challenge(&r));
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = s
        .form_as(
            "/oauth/revoke",
            Some(&basic("svc:1", &secret)),
            &[("token", "anything")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .form(
            "/oauth/device_authorization",
            &[
                ("client_id", "svc:1"),
                ("client_secret", "wrong"),
                ("scope", "read"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn a_code_redeems_once_and_its_reuse_revokes_the_grant() {
    let s = server().await;
    spa(&s).await;
    let code = issued_code(&s, code_request("spa")).await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
        ("client_id", "spa"),
    ];
    let tokens = expect_tokens(s.form("/oauth/token", &redeem).await).await;
    assert_eq!(
        (tokens["scope"].clone(), tokens["expires_in"].clone()),
        (json!("read"), json!(3600))
    );
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let active = s.introspect(access).await;
    assert_eq!(
        (
            active["active"].clone(),
            active["sub"].clone(),
            active["client_id"].clone(),
            active["aud"].clone()
        ),
        (json!(true), json!("alice"), json!("spa"), json!("api"))
    );
    let grant_id = active["grant_id"].as_str().unwrap().to_owned();

    // Presented again: invalid_grant, and the grant and its tokens are gone.
    let r = s.form("/oauth/token", &redeem).await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(s.introspect(access).await, json!({"active": false}));
    assert_eq!(s.introspect(refresh).await, json!({"active": false}));
    let grant: Value = s
        .admin(Method::GET, &format!("/delegated-grants/{grant_id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grant["status"], "revoked");
    let history: Value = s
        .admin(
            Method::GET,
            &format!("/delegated-grants/{grant_id}/history"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["reason"].clone(), last["actor"]["type"].clone()),
        (json!("code_reused"), json!("system"))
    );
}

#[tokio::test]
async fn redemption_checks_the_redirect_uri_the_verifier_the_client_and_the_time() {
    let s = server().await;
    spa(&s).await;
    s.client(
        json!({"id": "other", "name": "Other", "allowed_scopes": ["read"], "redirect_uris": [CB]}),
    )
    .await;
    let code = issued_code(&s, code_request("spa")).await;
    let attempt = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        form.extend_from_slice(extra);
        form
    };
    let wrong_verifier = "dBjftJeZ4CVP-mJ0kKWjMrySeLPVJoVjeePkHmCQspt";
    for (form, code_wanted) in [
        (
            attempt(&[
                ("client_id", "spa"),
                ("redirect_uri", "https://spa.example/cb/"),
                ("code_verifier", VERIFIER),
            ]),
            "invalid_grant",
        ),
        (
            attempt(&[("client_id", "spa"), ("code_verifier", VERIFIER)]),
            "invalid_grant",
        ),
        (
            attempt(&[
                ("client_id", "spa"),
                ("redirect_uri", CB),
                ("code_verifier", wrong_verifier),
            ]),
            "invalid_grant",
        ),
        (
            attempt(&[
                ("client_id", "other"),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ]),
            "invalid_grant",
        ),
        (
            attempt(&[("client_id", "spa"), ("redirect_uri", CB)]),
            "invalid_request",
        ),
        (
            attempt(&[
                ("client_id", "spa"),
                ("redirect_uri", CB),
                ("code_verifier", "too-short"),
            ]),
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("redirect_uri", CB),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "tnr_ac_unknown"),
                ("client_id", "spa"),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
    ] {
        let r = s.form("/oauth/token", &form).await;
        let body = expect_oauth_error(r, StatusCode::BAD_REQUEST, code_wanted).await;
        assert!(body["error_description"].is_string(), "{form:?}: {body}");
    }
    // None of that spent the code.
    let good = attempt(&[
        ("client_id", "spa"),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ]);
    expect_tokens(s.form("/oauth/token", &good).await).await;

    // A code past its minute is invalid_grant.
    let late = issued_code(&s, code_request("spa")).await;
    s.clock.advance(Duration::seconds(61));
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &late),
                ("client_id", "spa"),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A confidential client may go without PKCE; a verifier for a code issued
    // without a challenge is then refused.
    let conf = s
        .client(json!({"id": "web", "name": "Web", "client_type": "confidential", "allowed_scopes": ["read"], "redirect_uris": [CB]}))
        .await;
    let secret = conf["client_secret"].as_str().unwrap().to_owned();
    let code = issued_code(
        &s,
        json!({"client_id": "web", "user_id": "bob", "resource_id": "api", "scopes": ["read"], "redirect_uri": CB}),
    )
    .await;
    let auth = basic("web", &secret);
    let r = s
        .form_as(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let tokens = expect_tokens(
        s.form_as(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        s.introspect(tokens["access_token"].as_str().unwrap()).await["sub"],
        "bob"
    );
}

#[tokio::test]
async fn a_client_that_lost_the_grant_type_or_was_disabled_is_unauthorized_client() {
    let s = server().await;
    spa(&s).await;
    let first = issued_code(&s, code_request("spa")).await;
    let second = issued_code(&s, code_request("spa")).await;
    let redeem = |code: String| {
        let s = &s;
        async move {
            s.form(
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", "spa"),
                    ("redirect_uri", CB),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await
        }
    };
    let r = s
        .admin(
            Method::PATCH,
            "/clients/spa",
            Some(json!({"allowed_grants": ["refresh_token"]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_oauth_error(
        redeem(first).await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
    )
    .await;
    let r = s
        .admin(
            Method::PATCH,
            "/clients/spa",
            Some(json!({"allowed_grants": ["authorization_code", "refresh_token"], "enabled": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    expect_oauth_error(
        redeem(second).await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn the_authorization_codes_route_answers_bad_input_with_the_seed_body() {
    let s = server().await;
    spa(&s).await;
    s.client(json!({"id": "devices", "name": "Devices", "allowed_scopes": ["read"], "redirect_uris": [CB], "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code"]}))
        .await;
    let r = s
        .http
        .post(s.url("/authorization-codes"))
        .json(&code_request("spa"))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let with = |patch: Value| {
        let mut body = code_request("spa");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (body, status, code, field) in [
        (
            with(json!({"client_id": "ghost"})),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(json!({"redirect_uri": "https://evil.example/cb"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("redirect_uri"),
        ),
        (
            with(json!({"code_challenge": null, "code_challenge_method": null})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("code_challenge"),
        ),
        (
            with(json!({"code_challenge_method": "plain"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("code_challenge_method"),
        ),
        (
            with(json!({"code_challenge": "abc"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("code_challenge"),
        ),
        (
            with(json!({"scopes": ["admin"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope",
            None,
        ),
        (
            with(json!({"scopes": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("scopes"),
        ),
        (
            with(json!({"client_id": "devices"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "grant_type_not_allowed",
            None,
        ),
        (
            with(json!({"redirect_uri": null})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("redirect_uri"),
        ),
        (
            with(json!({"state": "xyz"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
    ] {
        let r = s.code(body.clone()).await;
        let answer = expect_error(r, status, code).await;
        if let Some(field) = field {
            assert_eq!(answer["metadata"]["field"], field, "{body}: {answer}");
        }
    }
    let r = s
        .http
        .post(s.url("/authorization-codes"))
        .bearer_auth(common::ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "malformed_request").await;
    let r = s
        .http
        .post(s.url("/authorization-codes"))
        .bearer_auth(common::ADMIN)
        .body("client_id=spa")
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    s.admin(
        Method::PATCH,
        "/clients/spa",
        Some(json!({"enabled": false})),
    )
    .await;
    expect_error(
        s.code(code_request("spa")).await,
        StatusCode::CONFLICT,
        "client_disabled",
    )
    .await;
}

#[tokio::test]
async fn client_credentials_tokens_have_the_resource_as_audience() {
    let s = server().await;
    let c = s
        .client(json!({"id": "svc", "name": "Service", "client_type": "confidential", "allowed_scopes": ["read", "write"], "allowed_grants": ["client_credentials"]}))
        .await;
    let auth = basic("svc", c["client_secret"].as_str().unwrap());
    let token = |form: Vec<(&'static str, &'static str)>| {
        let s = &s;
        let auth = auth.clone();
        async move {
            let mut form = form;
            form.push(("grant_type", "client_credentials"));
            s.form_as("/oauth/token", Some(&auth), &form).await
        }
    };
    let tokens = expect_tokens(
        token(vec![
            ("scope", "read"),
            ("resource", "https://api.example/orders"),
        ])
        .await,
    )
    .await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "read");
    let seen = s.introspect(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (
            seen["active"].clone(),
            seen["aud"].clone(),
            seen["client_id"].clone(),
            seen["scope"].clone(),
            seen["token_type"].clone()
        ),
        (
            json!(true),
            json!("https://api.example/orders"),
            json!("svc"),
            json!("read"),
            json!("Bearer")
        )
    );
    // Without scope or resource: everything the client may have, for itself.
    let all = expect_tokens(token(vec![]).await).await;
    assert_eq!(all["scope"], "read write");
    let seen_all = s.introspect(all["access_token"].as_str().unwrap()).await;
    assert_eq!(seen_all["aud"], "svc");

    for (form, code) in [
        (
            vec![
                ("resource", "https://api.example/a"),
                ("resource", "https://api.example/b"),
            ],
            "invalid_target",
        ),
        (vec![("resource", "orders")], "invalid_target"),
        (
            vec![("resource", "https://api.example/orders#part")],
            "invalid_target",
        ),
        (vec![("scope", "admin")], "invalid_scope"),
    ] {
        let r = token(form.clone()).await;
        expect_oauth_error(r, StatusCode::BAD_REQUEST, code).await;
    }
    // Public clients, and clients without the grant type, may not.
    s.client(json!({"id": "pubsvc", "name": "P", "allowed_scopes": ["read"], "allowed_grants": ["client_credentials"]}))
        .await;
    let r = s
        .form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "pubsvc"),
            ],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    let other = s
        .client(json!({"id": "web", "name": "W", "client_type": "confidential", "allowed_scopes": ["read"]}))
        .await;
    let r = s
        .form_as(
            "/oauth/token",
            Some(&basic("web", other["client_secret"].as_str().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    // Disabling the client takes its tokens and its grant type away.
    s.admin(
        Method::PATCH,
        "/clients/svc",
        Some(json!({"enabled": false})),
    )
    .await;
    expect_oauth_error(
        token(vec![]).await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
    )
    .await;
    assert_eq!(
        s.introspect(tokens["access_token"].as_str().unwrap()).await,
        json!({"active": false})
    );
    let r = s
        .form(
            "/oauth/token",
            &[("grant_type", "password"), ("client_id", "svc")],
        )
        .await;
    expect_oauth_error(r, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn a_rotated_secret_works_until_its_deadline() {
    let s = server().await;
    let c = s
        .client(json!({"id": "svc", "name": "Service", "client_type": "confidential", "allowed_scopes": ["read"], "allowed_grants": ["client_credentials"]}))
        .await;
    let first = c["client_secret"].as_str().unwrap().to_owned();
    let works = |secret: String| {
        let s = &s;
        async move {
            s.form_as(
                "/oauth/token",
                Some(&basic("svc", &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .status()
        }
    };
    let r = s
        .admin(
            Method::POST,
            "/clients/svc/secret",
            Some(json!({"previous_secret_expires_in": 3600})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let rotated: Value = r.json().await.unwrap();
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(
        (
            rotated["id"].clone(),
            rotated["client_type"].clone(),
            rotated["client_secret_set"].clone()
        ),
        (json!("svc"), json!("confidential"), json!(true))
    );
    let deadline = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(deadline, epoch() + Duration::hours(1));
    assert_eq!(works(first.clone()).await, StatusCode::OK);
    assert_eq!(works(second.clone()).await, StatusCode::OK);
    s.clock.advance(Duration::seconds(3599));
    assert_eq!(works(first.clone()).await, StatusCode::OK);
    s.clock.advance(Duration::seconds(1));
    assert_eq!(works(first.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(works(second.clone()).await, StatusCode::OK);

    // Without a body the replaced secret stops at once.
    let r = s
        .http
        .post(s.url("/clients/svc/secret"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let third = rotated["client_secret"].as_str().unwrap().to_owned();
    let deadline = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(deadline, epoch() + Duration::hours(1));
    assert_eq!(works(second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(works(third).await, StatusCode::OK);

    for (body, field) in [
        (
            json!({"previous_secret_expires_in": 7_776_001}),
            "previous_secret_expires_in",
        ),
        (
            json!({"previous_secret_expires_in": -1}),
            "previous_secret_expires_in",
        ),
        (json!({"grace": 10}), "grace"),
    ] {
        let r = s
            .admin(Method::POST, "/clients/svc/secret", Some(body))
            .await;
        let answer = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
        assert_eq!(answer["metadata"]["field"], field, "{answer}");
    }
    s.client(json!({"id": "pub", "name": "Public", "allowed_scopes": ["read"]}))
        .await;
    expect_error(
        s.admin(Method::POST, "/clients/pub/secret", Some(json!({})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
    expect_error(
        s.admin(Method::POST, "/clients/ghost/secret", Some(json!({})))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = s
        .http
        .post(s.url("/clients/svc/secret"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn discovery_lists_what_the_server_takes() {
    let s = server().await;
    let url = s.url("/.well-known/oauth-authorization-server");
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    let issuer = s.base.clone();
    assert_eq!(
        doc,
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "response_types_supported": [],
            "grant_types_supported": [
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["Bearer"],
        })
    );
    // RFC 8414 §3.1's place for an issuer with a path serves the same document.
    let again: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/zones/z1",
            s.root
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, doc);
    // Every endpoint it names is there: each answers a bare POST with an OAuth error.
    for key in [
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let r = s
            .http
            .post(doc[key].as_str().unwrap())
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::UNAUTHORIZED,
            "{key}: {}",
            r.status()
        );
    }
    // Zone ids are encoded as a path segment.
    let spaced: Value = s
        .http
        .get(format!(
            "{}/zones/a%20b/.well-known/oauth-authorization-server",
            s.root
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spaced["issuer"], format!("{}/zones/a%20b", s.root));
    // A Host that is not a host[:port] is not published.
    let r = s
        .http
        .get(&url)
        .header("host", "evil@example.com")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "malformed_request").await;
}

#[tokio::test]
async fn discovery_uses_the_configured_base_and_authorization_endpoint() {
    let s = server_with(|_| HttpConfig {
        public_base_url: Some("https://auth.example.com/".to_owned()),
        authorization_endpoint: Some("https://login.example.com/{zone_id}/authorize".to_owned()),
        ..HttpConfig::default()
    })
    .await;
    let doc: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .header("host", "ignored.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], "https://auth.example.com/zones/z1");
    assert_eq!(
        doc["token_endpoint"],
        "https://auth.example.com/zones/z1/oauth/token"
    );
    assert_eq!(
        doc["authorization_endpoint"],
        "https://login.example.com/z1/authorize"
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
}
