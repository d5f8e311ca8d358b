//! The SailPoint and Storyden dialects on a real loopback server: each route and
//! its errors in the vendor's body, nothing changed by a refused request, and one
//! client read alike in both dialects and in tenure's own `/clients`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN, Server, basic, expect_error, expect_tokens, server};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

const SP: &str = "/oauth-clients/v1";
const SD: &str = "/admin/oauth/clients";
const MANAGE: &str = "sp:oauth-client:manage";

/// A request to `path` of the zone with `token` and a body of `content_type`.
async fn send(
    s: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Value)>,
) -> Response {
    let mut req = s.http.request(method, s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((content_type, value)) = body {
        req = req
            .header("content-type", content_type)
            .body(value.to_string());
    }
    req.send().await.unwrap()
}

async fn sp(s: &Server, method: Method, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| {
        let kind = if method == Method::PATCH {
            "application/json-patch+json"
        } else {
            "application/json"
        };
        (kind, b)
    });
    send(s, method, &format!("{SP}{path}"), Some(ADMIN), body).await
}

async fn sd(s: &Server, method: Method, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| ("application/json", b));
    send(s, method, path, Some(ADMIN), body).await
}

async fn ok_json(r: Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A SailPoint error answer with this status; answers the body.
async fn expect_sp_error(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    let code = body["detailCode"].as_str().unwrap();
    assert!(code.starts_with(status.as_str()), "{body}");
    assert_eq!(body["trackingId"].as_str().unwrap().len(), 32, "{body}");
    for list in ["messages", "causes"] {
        let first = &body[list][0];
        assert_eq!(first["locale"], "en-US", "{body}");
        assert_eq!(first["localeOrigin"], "DEFAULT", "{body}");
        assert!(first["text"].is_string(), "{body}");
    }
    body
}

fn message(body: &Value) -> String {
    body["messages"][0]["text"].as_str().unwrap().to_owned()
}

/// A SailPoint creation body with every required field.
fn sp_create(name: &str) -> Value {
    json!({
        "name": name,
        "description": null,
        "accessTokenValiditySeconds": 900,
        "grantTypes": ["CLIENT_CREDENTIALS"],
        "accessType": "ONLINE",
        "enabled": true,
        "scope": [MANAGE],
    })
}

/// Creates a client through SailPoint; answers the creation's body.
async fn sp_client(s: &Server, body: Value) -> Value {
    let r = sp(s, Method::POST, "", Some(body)).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    ok_json(r).await
}

/// A client-credentials access token of `id` with `secret`.
async fn cc_token(s: &Server, id: &str, secret: &str) -> String {
    let r = s
        .form_as(
            "/oauth/token",
            Some(&basic(id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    expect_tokens(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sailpoint_creates_with_its_secret_once_and_every_required_field() {
    let s = server().await;
    let created = sp_client(
        &s,
        json!({
            "businessName": "Acme",
            "name": "Reporter",
            "description": "reads reports",
            "accessTokenValiditySeconds": 600,
            "refreshTokenValiditySeconds": 7200,
            "redirectUris": ["https://app.example/cb"],
            "grantTypes": ["AUTHORIZATION_CODE", "REFRESH_TOKEN", "DEVICE_CODE"],
            "accessType": "OFFLINE",
            "type": "CONFIDENTIAL",
            "internal": true,
            "enabled": true,
            "strongAuthSupported": true,
            "claimsSupported": false,
            "scope": ["read", "write"],
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().len() > 20);
    for field in [
        "businessName",
        "homepageUrl",
        "name",
        "description",
        "accessTokenValiditySeconds",
        "refreshTokenValiditySeconds",
        "redirectUris",
        "grantTypes",
        "accessType",
        "type",
        "internal",
        "enabled",
        "strongAuthSupported",
        "claimsSupported",
        "created",
        "modified",
    ] {
        assert!(!created[field].is_null(), "{field} in {created}");
    }
    assert_eq!(created["homepageUrl"], "");
    assert_eq!(
        created["grantTypes"],
        json!(["AUTHORIZATION_CODE", "REFRESH_TOKEN", "DEVICE_CODE"])
    );
    assert_eq!(created["internal"], true);
    let created_at = created["created"].as_str().unwrap();
    assert_eq!(
        created_at.len(),
        "2024-01-01T00:00:00.000Z".len(),
        "{created}"
    );

    // Read back: the same, null where nothing was given, never the secret.
    let read = ok_json(sp(&s, Method::GET, &format!("/{id}"), None).await).await;
    assert_eq!(read["homepageUrl"], Value::Null);
    assert_eq!(read["businessName"], "Acme");
    assert_eq!(read["scope"], json!(["read", "write"]));
    assert_eq!(read["lastUsed"], Value::Null);
    assert!(read.get("secret").is_none());
    let list = ok_json(sp(&s, Method::GET, "", None).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0], read);

    // A public client has no secret; a client without scope inherits.
    let public = sp_client(
        &s,
        json!({"name": "SPA", "description": null, "accessTokenValiditySeconds": 60,
               "grantTypes": ["AUTHORIZATION_CODE"], "accessType": "ONLINE", "enabled": true,
               "type": "PUBLIC"}),
    )
    .await;
    assert!(public.get("secret").is_none());
    assert_eq!(public["scope"], Value::Null);
    assert_eq!(public["description"], "");
    let tenure = ok_json(
        s.admin(
            Method::GET,
            &format!("/clients/{}", public["id"].as_str().unwrap()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(tenure["scope_policy"], "inherit");
    assert_eq!(tenure["client_type"], "public");
}

#[tokio::test]
async fn a_client_reads_the_same_in_both_dialects_and_in_tenure() {
    let s = server().await;
    // Created through SailPoint.
    let created = sp_client(
        &s,
        json!({
            "name": "Both", "description": "d", "accessTokenValiditySeconds": 300,
            "refreshTokenValiditySeconds": 3000, "redirectUris": ["https://a.example/cb"],
            "grantTypes": ["AUTHORIZATION_CODE", "REFRESH_TOKEN"], "accessType": "OFFLINE",
            "enabled": true, "scope": ["read"],
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let story = ok_json(sd(&s, Method::GET, &format!("{SD}/{id}"), None).await).await;
    assert_eq!(story["id"], id);
    assert_eq!(story["client_id"], id);
    assert_eq!(story["type"], "confidential");
    assert_eq!(story["scope_policy"], "explicit");
    assert_eq!(story["allowed_scopes"], json!(["read"]));
    assert_eq!(
        story["allowed_grants"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(story["redirect_uris"], json!(["https://a.example/cb"]));
    assert!(story.get("account_id").is_none());
    assert_eq!(story["createdAt"], created["created"]);
    let tenure = ok_json(s.admin(Method::GET, &format!("/clients/{id}"), None).await).await;
    assert_eq!(tenure["id"], id);
    assert_eq!(tenure["allowed_grants"], story["allowed_grants"]);
    assert_eq!(tenure["allowed_scopes"], story["allowed_scopes"]);
    assert_eq!(tenure["access_token_ttl_seconds"], 300);
    assert_eq!(tenure["refresh_token_ttl_seconds"], 3000);
    assert_eq!(tenure["access_type"], "offline");
    assert_eq!(tenure["created_at"], created["created"]);

    // Created through Storyden, changed through SailPoint, read in all three.
    let made = ok_json(
        sd(
            &s,
            Method::POST,
            SD,
            Some(json!({"client_id": "forum-app", "name": "Forum", "type": "public",
                        "redirect_uris": ["https://forum.example/cb"], "allowed_scopes": ["read"],
                        "allowed_grants": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]})),
        )
        .await,
    )
    .await;
    assert_eq!(made["id"], "forum-app");
    assert!(made.get("client_secret").is_none());
    let patched = ok_json(
        sp(
            &s,
            Method::PATCH,
            "/forum-app",
            Some(json!([{"op": "replace", "path": "/name", "value": "Forum 2"}])),
        )
        .await,
    )
    .await;
    assert_eq!(
        patched["grantTypes"],
        json!(["AUTHORIZATION_CODE", "DEVICE_CODE"])
    );
    assert_eq!(patched["type"], "PUBLIC");
    let story = ok_json(sd(&s, Method::GET, &format!("{SD}/forum-app"), None).await).await;
    assert_eq!(story["name"], "Forum 2");
    assert_eq!(story["updatedAt"], patched["modified"]);
    let tenure = ok_json(s.admin(Method::GET, "/clients/forum-app", None).await).await;
    assert_eq!(tenure["name"], "Forum 2");
    let listed = ok_json(sd(&s, Method::GET, SD, None).await).await;
    let ids: Vec<&str> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"forum-app") && ids.contains(&id));
}

#[tokio::test]
async fn sailpoint_patches_every_operation_in_its_own_names() {
    let s = server().await;
    let created = sp_client(&s, sp_create("Ops")).await;
    let path = format!("/{}", created["id"].as_str().unwrap());
    let patch = json!([
        {"op": "test", "path": "/accessType", "value": "ONLINE"},
        {"op": "add", "path": "/grantTypes/-", "value": "REFRESH_TOKEN"},
        {"op": "replace", "path": "/accessType", "value": "OFFLINE"},
        {"op": "add", "path": "/businessName", "value": "Acme"},
        {"op": "add", "path": "/homepageUrl", "value": "https://acme.example"},
        {"op": "copy", "from": "/name", "path": "/description"},
        {"op": "replace", "path": "/name", "value": "Ops 2"},
        {"op": "add", "path": "/redirectUris", "value": ["https://x.example/cb"]},
        {"op": "move", "from": "/businessName", "path": "/tenant"},
        {"op": "replace", "path": "/strongAuthSupported", "value": true},
        {"op": "replace", "path": "/claimsSupported", "value": true},
        {"op": "replace", "path": "/accessTokenValiditySeconds", "value": 120},
        {"op": "replace", "path": "/refreshTokenValiditySeconds", "value": 1200},
        {"op": "replace", "path": "/enabled", "value": false},
        {"op": "remove", "path": "/homepageUrl"},
    ]);
    let after = ok_json(sp(&s, Method::PATCH, &path, Some(patch)).await).await;
    assert_eq!(
        after["grantTypes"],
        json!(["CLIENT_CREDENTIALS", "REFRESH_TOKEN"])
    );
    assert_eq!(after["accessType"], "OFFLINE");
    assert_eq!(after["description"], "Ops");
    assert_eq!(after["name"], "Ops 2");
    assert_eq!(after["businessName"], Value::Null);
    assert_eq!(after["homepageUrl"], Value::Null);
    assert_eq!(after["redirectUris"], json!(["https://x.example/cb"]));
    assert_eq!(after["strongAuthSupported"], true);
    assert_eq!(after["claimsSupported"], true);
    assert_eq!(after["accessTokenValiditySeconds"], 120);
    assert_eq!(after["refreshTokenValiditySeconds"], 1200);
    assert_eq!(after["enabled"], false);
    let tenure = ok_json(s.admin(Method::GET, &format!("/clients{path}"), None).await).await;
    assert_eq!(tenure["access_type"], "offline");
    assert_eq!(
        tenure["allowed_grants"],
        json!(["client_credentials", "refresh_token"])
    );
}

#[tokio::test]
async fn sailpoint_refuses_a_bad_patch_whole_and_changes_nothing() {
    let s = server().await;
    let created = sp_client(&s, sp_create("Guarded")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/{id}");
    let before = ok_json(sp(&s, Method::GET, &path, None).await).await;
    let refused = [
        // Outside seed 003's patchable fields, even after a good operation.
        (
            json!([{"op": "replace", "path": "/name", "value": "x"},
                {"op": "replace", "path": "/type", "value": "PUBLIC"}]),
            "/type",
        ),
        (
            json!([{"op": "replace", "path": "/scope", "value": ["all"]}]),
            "/scope",
        ),
        (
            json!([{"op": "replace", "path": "/internal", "value": true}]),
            "/internal",
        ),
        (
            json!([{"op": "replace", "path": "/id", "value": "other"}]),
            "/id",
        ),
        (
            json!([{"op": "test", "path": "/created", "value": "x"}]),
            "/created",
        ),
        (
            json!([{"op": "copy", "from": "/type", "path": "/name"}]),
            "/type",
        ),
        (json!([{"op": "replace", "path": "", "value": {}}]), ""),
        // Values SailPoint does not have.
        (
            json!([{"op": "add", "path": "/grantTypes/-", "value": "PASSWORD"}]),
            "/grantTypes/-",
        ),
        (
            json!([{"op": "replace", "path": "/accessType", "value": "online"}]),
            "/accessType",
        ),
        // The engine's rules, named by SailPoint's path.
        (
            json!([{"op": "replace", "path": "/name", "value": "x"},
                {"op": "replace", "path": "/accessTokenValiditySeconds", "value": 0}]),
            "/accessTokenValiditySeconds",
        ),
        (
            json!([{"op": "replace", "path": "/homepageUrl", "value": "ftp://x"}]),
            "/homepageUrl",
        ),
        (
            json!([{"op": "replace", "path": "/name", "value": "x"},
                {"op": "test", "path": "/name", "value": "y"}]),
            "/name",
        ),
        (
            json!([{"op": "remove", "path": "/redirectUris/3"}]),
            "/redirectUris/3",
        ),
    ];
    for (patch, named) in refused {
        let r = sp(&s, Method::PATCH, &path, Some(patch.clone())).await;
        let body = expect_sp_error(r, StatusCode::BAD_REQUEST).await;
        assert!(
            message(&body).contains(&format!("{named:?}")),
            "{patch} named {named}: {body}"
        );
    }
    // Not a JSON Patch at all, or not sent as one.
    let r = sp(&s, Method::PATCH, &path, Some(json!({"op": "add"}))).await;
    expect_sp_error(r, StatusCode::BAD_REQUEST).await;
    let r = sp(
        &s,
        Method::PATCH,
        &path,
        Some(json!([{"op": "frobnicate", "path": "/name"}])),
    )
    .await;
    expect_sp_error(r, StatusCode::BAD_REQUEST).await;
    let r = send(
        &s,
        Method::PATCH,
        &format!("{SP}{path}"),
        Some(ADMIN),
        Some(("application/json", json!([]))),
    )
    .await;
    expect_sp_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let r = sp(&s, Method::PATCH, "/nobody", Some(json!([]))).await;
    expect_sp_error(r, StatusCode::NOT_FOUND).await;
    let after = ok_json(sp(&s, Method::GET, &path, None).await).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn sailpoint_refuses_bad_input_with_its_body_and_creates_nothing() {
    let s = server().await;
    let cases = [
        json!({"description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true}),
        json!({"name": null, "description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": 60, "grantTypes": ["PASSWORD"], "accessType": "ONLINE", "enabled": true}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": -1, "grantTypes": [], "accessType": "ONLINE", "enabled": true}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": 0, "grantTypes": [], "accessType": "ONLINE", "enabled": true}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true, "tenant": "t"}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true, "homepageUrl": "not a url"}),
        json!({"name": "x", "description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true, "redirectUris": ["/relative"]}),
        json!({"name": "  ", "description": null, "accessTokenValiditySeconds": 60, "grantTypes": [], "accessType": "ONLINE", "enabled": true}),
        json!([]),
    ];
    for body in cases {
        let r = sp(&s, Method::POST, "", Some(body.clone())).await;
        let answer = expect_sp_error(r, StatusCode::BAD_REQUEST).await;
        assert_eq!(answer["detailCode"], "400.1 Bad Request Content", "{body}");
    }
    let r = sp(&s, Method::POST, "", Some(sp_create("x").clone())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &s,
        Method::POST,
        SP,
        Some(ADMIN),
        Some(("application/json", json!(1))),
    )
    .await;
    expect_sp_error(r, StatusCode::BAD_REQUEST).await;
    let r = s
        .http
        .post(s.url(SP))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_sp_error(r, StatusCode::BAD_REQUEST).await;
    let r = send(
        &s,
        Method::POST,
        SP,
        Some(ADMIN),
        Some(("text/plain", sp_create("y"))),
    )
    .await;
    expect_sp_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // The homepage refusal names SailPoint's field.
    let mut bad = sp_create("z");
    bad["homepageUrl"] = json!("ftp://x");
    let body = expect_sp_error(
        sp(&s, Method::POST, "", Some(bad)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message(&body).contains("homepageUrl"), "{body}");
    // Only the one good creation happened.
    let list = ok_json(sp(&s, Method::GET, "", None).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = sp(&s, Method::GET, "/nobody", None).await;
    expect_sp_error(r, StatusCode::NOT_FOUND).await;
    let r = sp(&s, Method::GET, &format!("/{}", "x".repeat(300)), None).await;
    expect_sp_error(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn sailpoint_takes_a_client_credentials_token_with_the_manage_scope() {
    let s = server().await;
    let manager = sp_client(&s, sp_create("Manager")).await;
    let mut other = sp_create("Other");
    other["scope"] = json!(["read"]);
    let other = sp_client(&s, other).await;
    let token = cc_token(
        &s,
        manager["id"].as_str().unwrap(),
        manager["secret"].as_str().unwrap(),
    )
    .await;
    let weak = cc_token(
        &s,
        other["id"].as_str().unwrap(),
        other["secret"].as_str().unwrap(),
    )
    .await;
    let other_path = format!("{SP}/{}", other["id"].as_str().unwrap());

    // The manager's token lists, reads, creates and patches.
    let r = send(&s, Method::GET, SP, Some(&token), None).await;
    assert_eq!(ok_json(r).await.as_array().unwrap().len(), 2);
    let r = send(&s, Method::GET, &other_path, Some(&token), None).await;
    assert_eq!(ok_json(r).await["name"], "Other");
    let r = send(
        &s,
        Method::POST,
        SP,
        Some(&token),
        Some(("application/json", sp_create("Third"))),
    )
    .await;
    ok_json(r).await;
    let rename = json!([{"op": "replace", "path": "/name", "value": "Renamed"}]);
    let r = send(
        &s,
        Method::PATCH,
        &other_path,
        Some(&token),
        Some(("application/json-patch+json", rename.clone())),
    )
    .await;
    assert_eq!(ok_json(r).await["name"], "Renamed");

    // A token without the scope is refused on every route, and changes nothing.
    for (method, path, body) in [
        (Method::GET, SP.to_owned(), None),
        (Method::GET, other_path.clone(), None),
        (
            Method::POST,
            SP.to_owned(),
            Some(("application/json", sp_create("No"))),
        ),
        (
            Method::PATCH,
            other_path.clone(),
            Some((
                "application/json-patch+json",
                json!([{"op": "replace", "path": "/name", "value": "No"}]),
            )),
        ),
    ] {
        let r = send(&s, method, &path, Some(&weak), body).await;
        let body = expect_sp_error(r, StatusCode::FORBIDDEN).await;
        assert!(message(&body).contains(MANAGE), "{body}");
    }
    // No token, or one that is nobody's.
    for token in [None, Some("not-a-token")] {
        let r = send(&s, Method::GET, SP, token, None).await;
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body = expect_sp_error(r, StatusCode::UNAUTHORIZED).await;
        assert!(body["error"].is_string(), "{body}");
    }
    let list = ok_json(sp(&s, Method::GET, "", None).await).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let other = ok_json(send(&s, Method::GET, &other_path, Some(ADMIN), None).await).await;
    assert_eq!(other["name"], "Renamed");
    // The Storyden routes are for administrators only.
    let r = send(&s, Method::GET, SD, Some(&token), None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// Whether `token` introspects active.
async fn introspects_active(s: &Server, token: &str) -> bool {
    s.introspect(token).await["active"].as_bool().unwrap()
}

/// A client deleted in either dialect answers 204, is gone from both dialects and
/// from `/clients`, and its tokens introspect inactive; deleting it again is 404.
#[tokio::test]
async fn both_dialects_delete_a_client_and_stop_its_tokens() {
    let s = server().await;
    for dialect in ["sailpoint", "storyden"] {
        let created = sp_client(&s, sp_create(dialect)).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let secret = created["secret"].as_str().unwrap();
        let token = cc_token(&s, &id, secret).await;
        assert!(introspects_active(&s, &token).await);
        let (sp_path, sd_path) = (format!("/{id}"), format!("{SD}/{id}"));
        let r = match dialect {
            "sailpoint" => sp(&s, Method::DELETE, &sp_path, None).await,
            _ => sd(&s, Method::DELETE, &sd_path, None).await,
        };
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{dialect}");
        assert!(r.bytes().await.unwrap().is_empty(), "{dialect}");
        assert!(
            !introspects_active(&s, &token).await,
            "{dialect}: a deleted client's token introspects active"
        );
        let r = sp(&s, Method::GET, &sp_path, None).await;
        expect_sp_error(r, StatusCode::NOT_FOUND).await;
        let r = sd(&s, Method::GET, &sd_path, None).await;
        expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = s.admin(Method::GET, &format!("/clients/{id}"), None).await;
        expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = sp(&s, Method::DELETE, &sp_path, None).await;
        expect_sp_error(r, StatusCode::NOT_FOUND).await;
        let r = sd(&s, Method::DELETE, &sd_path, None).await;
        expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert!(
        ok_json(sp(&s, Method::GET, "", None).await)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// SailPoint's DELETE takes the same callers as its other routes: a token with
/// `sp:oauth-client:manage` may delete, one without it is 403, none is 401, and a
/// refused deletion deletes nothing. Storyden's is for administrators only.
#[tokio::test]
async fn client_deletion_in_the_dialects_is_for_their_callers_only() {
    let s = server().await;
    let manager = sp_client(&s, sp_create("Manager")).await;
    let manager_token = cc_token(
        &s,
        manager["id"].as_str().unwrap(),
        manager["secret"].as_str().unwrap(),
    )
    .await;
    let plain = sp_client(
        &s,
        json!({"name": "Plain", "description": null, "accessTokenValiditySeconds": 900,
               "grantTypes": ["CLIENT_CREDENTIALS"], "accessType": "ONLINE",
               "enabled": true, "scope": ["read"]}),
    )
    .await;
    let plain_token = cc_token(
        &s,
        plain["id"].as_str().unwrap(),
        plain["secret"].as_str().unwrap(),
    )
    .await;
    let target = sp_client(&s, sp_create("Target")).await;
    let id = target["id"].as_str().unwrap();
    let sp_path = format!("{SP}/{id}");
    let r = send(&s, Method::DELETE, &sp_path, None, None).await;
    expect_sp_error(r, StatusCode::UNAUTHORIZED).await;
    let r = send(&s, Method::DELETE, &sp_path, Some(&plain_token), None).await;
    expect_sp_error(r, StatusCode::FORBIDDEN).await;
    let r = send(
        &s,
        Method::DELETE,
        &format!("{SD}/{id}"),
        Some(&manager_token),
        None,
    )
    .await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    ok_json(sp(&s, Method::GET, &format!("/{id}"), None).await).await;
    let r = send(&s, Method::DELETE, &sp_path, Some(&manager_token), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = sp(&s, Method::GET, &format!("/{id}"), None).await;
    expect_sp_error(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn storyden_creates_reads_and_merges_clients() {
    let s = server().await;
    let made = ok_json(
        sd(
            &s,
            Method::POST,
            SD,
            Some(json!({"name": "Bot", "type": "confidential", "redirect_uris": [],
                        "allowed_scopes": ["read", "write"], "allowed_grants": ["client_credentials"]})),
        )
        .await,
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["client_id"], id);
    assert!(made["client_secret"].as_str().unwrap().len() > 20);
    assert_eq!(made["scope_policy"], "explicit");
    let path = format!("{SD}/{id}");
    let read = ok_json(sd(&s, Method::GET, &path, None).await).await;
    assert!(read.get("client_secret").is_none());

    // A merge: absent fields stay, arrays are replaced whole; the immutable
    // fields may be given unchanged.
    let merged = ok_json(
        sd(
            &s,
            Method::PATCH,
            &path,
            Some(
                json!({"allowed_scopes": ["read"], "redirect_uris": ["https://b.example/cb"],
                        "type": "confidential", "client_id": id}),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(merged["allowed_scopes"], json!(["read"]));
    assert_eq!(merged["redirect_uris"], json!(["https://b.example/cb"]));
    assert_eq!(merged["name"], "Bot");
    assert_eq!(merged["allowed_grants"], json!(["client_credentials"]));
    let merged = ok_json(
        sd(
            &s,
            Method::PATCH,
            &path,
            Some(json!({"name": "Bot 2", "scope_policy": "inherit"})),
        )
        .await,
    )
    .await;
    assert_eq!(merged["name"], "Bot 2");
    assert_eq!(merged["scope_policy"], "inherit");
    assert_eq!(merged["allowed_scopes"], json!(["read"]));
    let empty = ok_json(sd(&s, Method::PATCH, &path, Some(json!({}))).await).await;
    assert_eq!(empty["name"], "Bot 2");
}

#[tokio::test]
async fn storyden_refuses_bad_input_with_the_seed_body_and_changes_nothing() {
    let s = server().await;
    ok_json(
        sd(
            &s,
            Method::POST,
            SD,
            Some(
                json!({"client_id": "c1", "name": "C1", "type": "public", "redirect_uris": [],
                        "allowed_scopes": ["read"], "allowed_grants": ["authorization_code"]}),
            ),
        )
        .await,
    )
    .await;
    let path = format!("{SD}/c1");
    let before = ok_json(sd(&s, Method::GET, &path, None).await).await;
    for (update, code) in [
        (json!({"type": "confidential"}), "invalid_field"),
        (json!({"client_id": "c2"}), "invalid_field"),
        (json!({"id": "c2"}), "invalid_field"),
        (json!({"account_id": "alice"}), "invalid_field"),
        (json!({"name": null}), "invalid_field"),
        (json!({"redirect_uris": null}), "invalid_field"),
        (json!({"client_secret_hash": "x"}), "invalid_field"),
        (json!({"colour": "red"}), "invalid_field"),
        (
            json!({"name": "ok", "allowed_grants": ["password"]}),
            "invalid_field",
        ),
        (json!({"redirect_uris": ["no scheme"]}), "invalid_field"),
        (json!({"scope_policy": "sometimes"}), "invalid_field"),
        (json!({"allowed_scopes": "read"}), "invalid_field"),
        (json!(["name"]), "malformed_request"),
    ] {
        let r = sd(&s, Method::PATCH, &path, Some(update.clone())).await;
        let body = expect_error(r, StatusCode::BAD_REQUEST, code).await;
        assert!(!body["message"].as_str().unwrap().is_empty(), "{update}");
    }
    let r = send(
        &s,
        Method::PATCH,
        &path,
        Some(ADMIN),
        Some(("text/plain", json!({}))),
    )
    .await;
    expect_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = sd(
        &s,
        Method::PATCH,
        &format!("{SD}/nobody"),
        Some(json!({"name": "x"})),
    )
    .await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        ok_json(sd(&s, Method::GET, &path, None).await).await,
        before
    );

    // Creation: a taken id, a secret hash, an owned client with scopes its owner
    // cannot grant (this server's resolver grants nothing), a missing field.
    let base = json!({"name": "N", "type": "public", "redirect_uris": [], "allowed_scopes": [], "allowed_grants": []});
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    for (body, code) in [
        (with("client_id", json!("c1")), "already_exists"),
        (
            with("client_secret_hash", json!("$2a$...")),
            "invalid_field",
        ),
        (
            json!({"account_id": "alice", "name": "Owned", "type": "public", "redirect_uris": [],
                   "allowed_scopes": ["read"], "allowed_grants": []}),
            "invalid_scope",
        ),
        (json!({"name": "N", "type": "public"}), "invalid_field"),
        (with("type", json!("secret")), "invalid_field"),
        (with("scope_policy", json!("explicit ")), "invalid_field"),
    ] {
        let r = sd(&s, Method::POST, SD, Some(body.clone())).await;
        expect_error(r, StatusCode::BAD_REQUEST, code).await;
    }
    let listed = ok_json(sd(&s, Method::GET, SD, None).await).await;
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);
    // An owned client whose policy inherits its owner's rights is fine.
    let owned = ok_json(
        sd(&s, Method::POST, SD, Some(json!({"account_id": "alice", "name": "Owned", "type": "public",
            "scope_policy": "inherit", "redirect_uris": [], "allowed_scopes": [], "allowed_grants": []}))).await,
    )
    .await;
    assert_eq!(owned["account_id"], "alice");
    let r = sd(&s, Method::GET, &format!("{SD}/nobody"), None).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    for (method, path) in [
        (Method::GET, SD.to_owned()),
        (Method::GET, format!("{SD}/c1")),
        (Method::GET, "/admin/oauth/device-authorizations".to_owned()),
        (Method::GET, "/admin/oauth/refresh-tokens".to_owned()),
        (Method::DELETE, "/admin/oauth/refresh-tokens/x".to_owned()),
    ] {
        let r = send(&s, method, &path, None, None).await;
        expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test]
async fn storyden_lists_device_authorizations_without_their_codes() {
    let s = server().await;
    s.client(json!({"id": "tv", "name": "TV", "allowed_scopes": ["read"],
                    "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code"]}))
        .await;
    s.client(json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}))
        .await;
    let user = s.grant("web", "alice", &["read"]).await;
    let user_token = user["access_token"].as_str().unwrap();
    let mut starts = Vec::new();
    for _ in 0..2 {
        let r = s
            .form(
                "/oauth/device_authorization",
                &[("client_id", "tv"), ("scope", "read")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        starts.push(r.json::<Value>().await.unwrap());
    }
    let r = s
        .http
        .post(s.url("/device/approve"))
        .bearer_auth(user_token)
        .json(&json!({"user_code": starts[0]["user_code"], "action": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = sd(&s, Method::GET, "/admin/oauth/device-authorizations", None).await;
    let text = r.text().await.unwrap();
    for start in &starts {
        assert!(!text.contains(start["device_code"].as_str().unwrap()));
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let records = body["device_authorisations"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let find = |code: &Value| {
        records
            .iter()
            .find(|r| r["user_code"] == *code)
            .unwrap()
            .clone()
    };
    let approved = find(&starts[0]["user_code"]);
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["approved_by_account_id"], "alice");
    assert_eq!(approved["client_id"], "tv");
    assert_eq!(approved["scope"], "read");
    assert_eq!(approved["poll_interval_seconds"], 5);
    assert_eq!(approved["id"].as_str().unwrap().len(), 64);
    let pending = find(&starts[1]["user_code"]);
    assert_eq!(pending["state"], "pending");
    assert!(pending.get("approved_by_account_id").is_none());
}

#[tokio::test]
async fn storyden_lists_live_refresh_chains_and_revokes_one_whole() {
    let s = server().await;
    s.client(
        json!({"id": "app", "name": "App", "allowed_scopes": ["read", "write"],
                    "allowed_grants": ["authorization_code", "refresh_token"]}),
    )
    .await;
    s.client(
        json!({"id": "online", "name": "Online", "allowed_scopes": ["read"],
                    "access_type": "online"}),
    )
    .await;
    let alice = s.grant("app", "alice", &["read", "write"]).await;
    let bob = s.grant("app", "bob", &["read"]).await;
    let online = s.grant("online", "carol", &["read"]).await;
    assert!(online.get("refresh_token").is_none());

    let list = ok_json(sd(&s, Method::GET, "/admin/oauth/refresh-tokens", None).await).await;
    assert_eq!(list["results"], 2);
    assert_eq!(list["page_size"], 50);
    assert_eq!(list["current_page"], 1);
    assert_eq!(list["total_pages"], 1);
    assert!(list.get("next_page").is_none());
    let tokens = list["tokens"].as_array().unwrap();
    let first = &tokens[0];
    assert_eq!(first["id"], alice["grant"]["id"]);
    assert_eq!(first["account_id"], "alice");
    assert_eq!(first["oauth_client_id"], "app");
    assert_eq!(first["client_id"], "app");
    assert_eq!(first["client_name"], "App");
    assert_eq!(first["scope"], "read write");
    assert_eq!(first["expires_at"], alice["grant"]["expires_at"]);
    let page2 =
        ok_json(sd(&s, Method::GET, "/admin/oauth/refresh-tokens?page=2", None).await).await;
    assert_eq!(page2["tokens"], json!([]));
    assert_eq!(page2["current_page"], 2);
    for bad in ["0", "-1", "one", "1.5", ""] {
        let r = sd(
            &s,
            Method::GET,
            &format!("/admin/oauth/refresh-tokens?page={bad}"),
            None,
        )
        .await;
        let body = expect_error(r, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        assert_eq!(body["metadata"]["parameter"], "page");
    }

    // Revoking alice's chain revokes her grant: the refresh token and the access
    // token stop at once.
    let id = alice["grant"]["id"].as_str().unwrap();
    let r = sd(
        &s,
        Method::DELETE,
        &format!("/admin/oauth/refresh-tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for token in ["refresh_token", "access_token"] {
        let answer = s.introspect(alice[token].as_str().unwrap()).await;
        assert_eq!(answer["active"], false, "{token}");
    }
    let grant = ok_json(
        s.admin(Method::GET, &format!("/delegated-grants/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(grant["status"], "revoked");
    let list = ok_json(sd(&s, Method::GET, "/admin/oauth/refresh-tokens", None).await).await;
    assert_eq!(list["results"], 1);
    assert_eq!(list["tokens"][0]["id"], bob["grant"]["id"]);
    // A revoked chain, a grant without one, and no grant at all are not found.
    let online_id = online["grant"]["id"].as_str().unwrap();
    for missing in [id, online_id, "no-such-grant"] {
        let r = sd(
            &s,
            Method::DELETE,
            &format!("/admin/oauth/refresh-tokens/{missing}"),
            None,
        )
        .await;
        expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(
        s.introspect(bob["access_token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test]
async fn the_dialects_are_in_the_openapi_document() {
    let s = server().await;
    let doc: Value = s
        .http
        .get(format!("{}/openapi.json", s.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method, tag) in [
        ("/zones/{zone_id}/oauth-clients/v1", "get", "sailpoint"),
        ("/zones/{zone_id}/oauth-clients/v1", "post", "sailpoint"),
        ("/zones/{zone_id}/oauth-clients/v1/{id}", "get", "sailpoint"),
        (
            "/zones/{zone_id}/oauth-clients/v1/{id}",
            "patch",
            "sailpoint",
        ),
        ("/zones/{zone_id}/admin/oauth/clients", "get", "storyden"),
        ("/zones/{zone_id}/admin/oauth/clients", "post", "storyden"),
        (
            "/zones/{zone_id}/admin/oauth/clients/{oauth_client_id}",
            "get",
            "storyden",
        ),
        (
            "/zones/{zone_id}/admin/oauth/clients/{oauth_client_id}",
            "patch",
            "storyden",
        ),
        (
            "/zones/{zone_id}/admin/oauth/device-authorizations",
            "get",
            "storyden",
        ),
        (
            "/zones/{zone_id}/admin/oauth/refresh-tokens",
            "get",
            "storyden",
        ),
        (
            "/zones/{zone_id}/admin/oauth/refresh-tokens/{oauth_refresh_token_id}",
            "delete",
            "storyden",
        ),
    ] {
        let op = &paths[path][method];
        assert_eq!(op["tags"], json!([tag]), "{method} {path}");
        let unavailable = op["responses"]["503"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let body = if tag == "sailpoint" {
            "SailPointErrorBody"
        } else {
            "ErrorBody"
        };
        assert!(
            unavailable.ends_with(body),
            "{method} {path}: {unavailable}"
        );
    }
}
