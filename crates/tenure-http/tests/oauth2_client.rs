//! End-to-end OAuth flows driven by a real OAuth client, the `oauth2` crate, against
//! the router on a loopback server: authorization code with PKCE (the test plays
//! the host's authorization endpoint), refresh, client credentials, the device
//! flow, and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, basic, server, server_with};
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicRequestTokenError};
use oauth2::http::uri::Scheme;
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, HttpRequest, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, StandardDeviceAuthorizationResponse,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenure_http::HttpConfig;

const CB: &str = "https://spa.example/cb";

/// The HTTP client oauth2 recommends: one that does not follow redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn metadata(s: &Server) -> Value {
    s.http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The error code of an OAuth error answer.
fn error_code<E: std::error::Error>(
    e: &BasicRequestTokenError<E>,
) -> Option<BasicErrorResponseType> {
    match e {
        RequestTokenError::ServerResponse(r) => Some(r.error().clone()),
        _ => None,
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh() {
    let s = server_with(|_| HttpConfig {
        authorization_endpoint: Some("https://host.example/{zone_id}/authorize".to_owned()),
        ..HttpConfig::default()
    })
    .await;
    s.client(json!({"id": "spa", "name": "SPA", "allowed_scopes": ["read", "write"], "redirect_uris": [CB]}))
        .await;
    // The client configures itself from the discovery document.
    let doc = metadata(&s).await;
    let client = BasicClient::new(ClientId::new("spa".to_owned()))
        .set_auth_uri(
            AuthUrl::new(doc["authorization_endpoint"].as_str().unwrap().to_owned()).unwrap(),
        )
        .set_token_uri(TokenUrl::new(doc["token_endpoint"].as_str().unwrap().to_owned()).unwrap())
        .set_redirect_uri(RedirectUrl::new(CB.to_owned()).unwrap());
    let http = http();

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, _state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        authorize
            .as_str()
            .starts_with("https://host.example/z1/authorize?")
    );
    // The host reads the authorization request, signs alice in, gets her consent,
    // and has tenure issue the code it redirects back with.
    let query: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["code_challenge_method"], "S256");
    let r = s
        .code(json!({
            "client_id": query["client_id"],
            "user_id": "alice",
            "resource_id": "api",
            "scopes": query["scope"].split(' ').collect::<Vec<_>>(),
            "redirect_uri": query["redirect_uri"],
            "code_challenge": query["code_challenge"],
            "code_challenge_method": query["code_challenge_method"],
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let code = r.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        tokens.scopes().unwrap(),
        &vec![Scope::new("read".to_owned())]
    );
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
    let seen = s.introspect(tokens.access_token().secret()).await;
    assert_eq!(
        (seen["sub"].clone(), seen["client_id"].clone()),
        (json!("alice"), json!("spa"))
    );

    // Refresh rotates; the spent refresh token, presented again, ends the grant.
    let first_refresh = tokens.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        first_refresh.secret()
    );
    assert_eq!(
        s.introspect(refreshed.access_token().secret()).await["active"],
        true
    );
    let reused = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&http)
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&reused),
        Some(BasicErrorResponseType::InvalidGrant)
    );
    assert_eq!(
        s.introspect(refreshed.access_token().secret()).await,
        json!({"active": false})
    );

    // The code, presented again, is invalid_grant too.
    let (_, verifier) = PkceCodeChallenge::new_random_sha256();
    let replay = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&replay),
        Some(BasicErrorResponseType::InvalidGrant)
    );
}

#[tokio::test]
async fn client_credentials_by_basic_and_in_the_body() {
    let s = server().await;
    let c = s
        .client(json!({"id": "svc", "name": "Service", "client_type": "confidential", "allowed_scopes": ["read", "write"], "allowed_grants": ["client_credentials"]}))
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let token_url = TokenUrl::new(s.url("/oauth/token")).unwrap();
    let http = http();
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = BasicClient::new(ClientId::new("svc".to_owned()))
            .set_client_secret(ClientSecret::new(secret.clone()))
            .set_auth_type(auth_type)
            .set_token_uri(token_url.clone());
        let tokens = client
            .exchange_client_credentials()
            .add_scope(Scope::new("read".to_owned()))
            .add_extra_param("resource", "https://api.example/orders")
            .request_async(&http)
            .await
            .unwrap();
        assert!(tokens.refresh_token().is_none());
        let seen = s.introspect(tokens.access_token().secret()).await;
        assert_eq!(
            (seen["aud"].clone(), seen["scope"].clone()),
            (json!("https://api.example/orders"), json!("read"))
        );
    }
    let wrong = BasicClient::new(ClientId::new("svc".to_owned()))
        .set_client_secret(ClientSecret::new("wrong".to_owned()))
        .set_token_uri(token_url);
    let refused = wrong
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&refused),
        Some(BasicErrorResponseType::InvalidClient)
    );
}

#[tokio::test]
async fn the_device_flow_with_the_users_approval() {
    let s = server().await;
    s.client(json!({"id": "tv", "name": "TV", "allowed_scopes": ["read"], "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]}))
        .await;
    s.client(json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}))
        .await;
    let alice = s.grant("web", "alice", &["read"]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = metadata(&s).await;
    let client = BasicClient::new(ClientId::new("tv".to_owned()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(
                doc["device_authorization_endpoint"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .unwrap(),
        )
        .set_token_uri(TokenUrl::new(doc["token_endpoint"].as_str().unwrap().to_owned()).unwrap());
    let http = http();
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read".to_owned()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(details.interval(), Duration::from_secs(5));
    let user_code = details.user_code().secret().clone();

    // Between polls the engine's clock moves on by the interval the client waits;
    // after the first (pending) poll, alice approves on her own device.
    let approved = Arc::new(AtomicBool::new(false));
    let sleep = |wait: Duration| {
        let s = &s;
        let approved = approved.clone();
        let user_code = user_code.clone();
        let alice = alice.clone();
        async move {
            s.clock.advance(chrono::Duration::from_std(wait).unwrap());
            if !approved.swap(true, Ordering::SeqCst) {
                let r = s
                    .http
                    .post(s.url("/device/approve"))
                    .bearer_auth(&alice)
                    .json(&json!({"user_code": user_code, "action": "approve"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        }
    };
    let tokens = client
        .exchange_device_access_token(&details)
        .request_async(&http, sleep, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        approved.load(Ordering::SeqCst),
        "the first poll was pending"
    );
    let seen = s.introspect(tokens.access_token().secret()).await;
    assert_eq!(
        (seen["sub"].clone(), seen["client_id"].clone()),
        (json!("alice"), json!("tv"))
    );
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        s.introspect(refreshed.access_token().secret()).await["active"],
        true
    );
}

#[tokio::test]
async fn tokens_revoked_through_the_client() {
    let s = server().await;
    let c = s
        .client(json!({"id": "conf", "name": "Conf", "client_type": "confidential", "allowed_scopes": ["read"]}))
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let first = s.grant("conf", "alice", &["read"]).await;
    let second = s.grant("conf", "bob", &["read"]).await;
    let addr = s.root.trim_start_matches("http://").to_owned();
    // oauth2 revokes only at an https URL (RFC 7009 §2); this transport stands in
    // for the TLS terminator in front of the server, forwarding to it over plain
    // HTTP through oauth2's own reqwest client.
    let http = http();
    let tls_terminator = |mut request: HttpRequest| {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTP);
        *request.uri_mut() = oauth2::http::Uri::from_parts(parts).unwrap();
        http.call(request)
    };
    let client = BasicClient::new(ClientId::new("conf".to_owned()))
        .set_client_secret(ClientSecret::new(secret))
        .set_revocation_url(
            RevocationUrl::new(format!("https://{addr}/zones/z1/oauth/revoke")).unwrap(),
        );

    // A refresh token takes its grant's access token along.
    let refresh = RefreshToken::new(first["refresh_token"].as_str().unwrap().to_owned());
    client
        .revoke_token(StandardRevocableToken::RefreshToken(refresh))
        .unwrap()
        .request_async(&tls_terminator)
        .await
        .unwrap();
    for token in ["access_token", "refresh_token"] {
        assert_eq!(
            s.introspect(first[token].as_str().unwrap()).await,
            json!({"active": false})
        );
    }
    let access = oauth2::AccessToken::new(second["access_token"].as_str().unwrap().to_owned());
    client
        .revoke_token(StandardRevocableToken::AccessToken(access))
        .unwrap()
        .request_async(&tls_terminator)
        .await
        .unwrap();
    assert_eq!(
        s.introspect(second["access_token"].as_str().unwrap()).await,
        json!({"active": false})
    );
    // Revoking an unknown token succeeds, as RFC 7009 §2.2 says.
    client
        .revoke_token(StandardRevocableToken::AccessToken(
            oauth2::AccessToken::new("tnr_at_unknown".to_owned()),
        ))
        .unwrap()
        .request_async(&tls_terminator)
        .await
        .unwrap();
    // The server checks the client: a wrong secret is invalid_client.
    let r = s
        .form_as(
            "/oauth/revoke",
            Some(&basic("conf", "wrong")),
            &[("token", second["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
