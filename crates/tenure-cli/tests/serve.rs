//! `tenure serve` run as a process, as an operator runs it: its logs, its metrics,
//! its health routes, its background sweeper, its configuration and its help, and
//! that no token, secret or password ever reaches its output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "tnr_at_test-admin-token-0123456789";
const CURSOR_KEY: &str = "kZt9m0k4i1z2d3Yq8d7a6s5d4f3g2h1j0k9l8m7n6o4=";

fn tenure() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenure"));
    for var in [
        "TENURE_DATA",
        "TENURE_REDB",
        "TENURE_POSTGRES_URL",
        "TENURE_ADMIN_TOKEN",
        "TENURE_CURSOR_KEY",
        "TENURE_CONFIG",
        "TENURE_LOG_FORMAT",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

/// A running `tenure serve`, its output collected as it comes.
struct Server {
    child: Child,
    addr: String,
    metrics: Option<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped server left.
struct Stopped {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Stopped {
    /// Standard output and standard error together.
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The log lines that are JSON objects.
    fn json_lines(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

impl Server {
    /// Starts `tenure STORE_ARGS serve SERVE_ARGS` with `env`, on an ephemeral
    /// loopback port, and waits until it listens.
    fn start(store: &[&str], serve: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = tenure();
        command
            .args(store)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0"])
            .args(serve)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let wants_metrics = serve.contains(&"--metrics-addr");
        let started = Instant::now();
        loop {
            let out = stdout.lock().unwrap().clone();
            let find = |prefix: &str| {
                out.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(|a| a.trim_end_matches("/metrics").to_owned())
            };
            let addr = find("listening on http://");
            let metrics = find("metrics on http://");
            if let Some(addr) = addr {
                if metrics.is_some() || !wants_metrics {
                    return Server {
                        child,
                        addr,
                        metrics,
                        stdout,
                        stderr,
                        readers,
                    };
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}) before listening: {}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not listen in time: {}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then everything it printed.
    fn stop(mut self) -> Stopped {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        Stopped {
            status,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "this client reads whole bodies only"
    );
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}

fn admin_json(addr: &str, method: &str, path: &str, body: &Value) -> Answer {
    http(
        addr,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
}

fn form(addr: &str, path: &str, fields: &[(&str, &str)], bearer: Option<&str>) -> Answer {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    http(addr, "POST", path, &headers, &body)
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// Registers a confidential client, makes a grant, refreshes it, presents the
/// spent refresh token again (reuse), and walks a device authorization through
/// approval: every kind of secret the API hands out. Answers them all.
fn issue_every_secret(addr: &str) -> Vec<String> {
    let mut secrets = vec![ADMIN.to_owned()];
    let created = admin_json(
        addr,
        "POST",
        "/zones/z1/clients",
        &json!({
            "id": "web",
            "name": "Web",
            "client_type": "confidential",
            "allowed_scopes": ["read"],
            "allowed_grants": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let client_secret = text(&created.json()["client_secret"]);
    secrets.push(client_secret.clone());

    let granted = admin_json(
        addr,
        "POST",
        "/zones/z1/delegated-grants",
        &json!({"client_id": "web", "user_id": "alice", "resource_id": "api", "scopes": ["read"]}),
    );
    assert_eq!(granted.status, 201, "{}", granted.body);
    let access = text(&granted.json()["access_token"]);
    let first_refresh = text(&granted.json()["refresh_token"]);
    secrets.extend([access.clone(), first_refresh.clone()]);

    let client = [
        ("client_id", "web"),
        ("client_secret", client_secret.as_str()),
    ];
    let refresh = |token: &str| {
        let mut fields = client.to_vec();
        fields.extend([("grant_type", "refresh_token"), ("refresh_token", token)]);
        form(addr, "/zones/z1/oauth/token", &fields, None)
    };
    let refreshed = refresh(&first_refresh);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    secrets.push(text(&refreshed.json()["access_token"]));
    secrets.push(text(&refreshed.json()["refresh_token"]));
    let reused = refresh(&first_refresh);
    assert_eq!(reused.status, 400, "{}", reused.body);
    assert_eq!(reused.json()["error"], "invalid_grant");

    let introspected = form(
        addr,
        "/zones/z1/oauth/introspect",
        &[("token", access.as_str())],
        Some(ADMIN),
    );
    assert_eq!(introspected.status, 200, "{}", introspected.body);

    // A device authorization, approved by bob with an access token of his own.
    let mut fields = client.to_vec();
    fields.push(("scope", "read"));
    let device = form(addr, "/zones/z1/oauth/device_authorization", &fields, None);
    assert_eq!(device.status, 200, "{}", device.body);
    let device_code = text(&device.json()["device_code"]);
    let user_code = text(&device.json()["user_code"]);
    secrets.extend([device_code.clone(), user_code.clone()]);
    let bob = admin_json(
        addr,
        "POST",
        "/zones/z1/delegated-grants",
        &json!({"client_id": "web", "user_id": "bob", "resource_id": "api", "scopes": ["read"]}),
    );
    let bob_access = text(&bob.json()["access_token"]);
    secrets.extend([bob_access.clone(), text(&bob.json()["refresh_token"])]);
    let approved = form(
        addr,
        "/zones/z1/device/approve",
        &[("user_code", user_code.as_str()), ("action", "approve")],
        Some(&bob_access),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let mut fields = client.to_vec();
    fields.extend([
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
    ]);
    let polled = form(addr, "/zones/z1/oauth/token", &fields, None);
    assert_eq!(polled.status, 200, "{}", polled.body);
    secrets.push(text(&polled.json()["access_token"]));
    secrets.push(text(&polled.json()["refresh_token"]));
    secrets
}

fn assert_no_secret(output: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !output.contains(secret.as_str()),
            "a secret ({}…) reached the output",
            &secret[..secret.len().min(8)]
        );
    }
}

#[test]
fn json_logs_trace_each_request_and_never_show_a_secret() {
    // At trace, so that every line the engine, the layers and the libraries under
    // them can write is written.
    let server = Server::start(
        &["--memory"],
        &["--log-format", "json"],
        &[
            ("TENURE_ADMIN_TOKEN", ADMIN),
            ("TENURE_CURSOR_KEY", CURSOR_KEY),
            ("RUST_LOG", "trace"),
        ],
    );
    let secrets = issue_every_secret(&server.addr);
    let listed = http(
        &server.addr,
        "GET",
        "/zones/z1/delegated-grants",
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("x-request-id", "req-from-the-client"),
        ],
        "",
    );
    assert_eq!(listed.status, 200);
    assert_eq!(listed.headers["x-request-id"], "req-from-the-client");
    let stopped = server.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let mut secrets = secrets;
    secrets.push(CURSOR_KEY.to_owned());
    assert_no_secret(&stopped.all(), &secrets);

    let lines = stopped.json_lines();
    assert!(
        lines.len() == stopped.stderr.lines().count(),
        "every log line is JSON:\n{}",
        stopped.stderr
    );
    let access = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "finished processing request"
                && l["span"]["request_id"] == "req-from-the-client"
        })
        .expect("the request's own log line");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["fields"]["status"], 200);
    assert_eq!(access["span"]["route"], "/zones/{zone_id}/delegated-grants");
    assert_eq!(access["span"]["method"], "GET");
    // Requests without an id get one, and it is in their span.
    let generated = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "finished processing request")
        .filter_map(|l| l["span"]["request_id"].as_str())
        .filter(|id| *id != "req-from-the-client")
        .count();
    assert!(generated >= 8, "{generated}");
    assert!(
        lines
            .iter()
            .all(|l| l["span"]["request_id"] != "" || l["span"]["name"] != "request")
    );
}

#[test]
fn a_refresh_token_reuse_is_logged_at_warn() {
    let server = Server::start(
        &["--memory"],
        &["--log-format", "json"],
        &[("TENURE_ADMIN_TOKEN", ADMIN)],
    );
    issue_every_secret(&server.addr);
    let stopped = server.stop();
    let reuse: Vec<Value> = stopped
        .json_lines()
        .into_iter()
        .filter(|l| l["level"] == "WARN")
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reuse"))
        })
        .collect();
    assert_eq!(reuse.len(), 1, "{}", stopped.stderr);
    assert_eq!(reuse[0]["fields"]["zone"], "z1");
    assert_eq!(reuse[0]["fields"]["client_id"], "web");
    assert!(reuse[0]["fields"]["grant_id"].is_string());
    // In the span of the request that presented the token.
    assert_eq!(
        reuse[0]["spans"][0]["route"],
        "/zones/{zone_id}/oauth/token"
    );
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            (series == &name || series.starts_with(&format!("{name}{{")))
                && labels.iter().all(|label| series.contains(label))
        })
        .map(|(_, value)| value.parse().unwrap())
}

#[test]
fn metrics_count_requests_by_route_refreshes_and_reuse_on_their_own_listener() {
    let server = Server::start(
        &["--memory"],
        &["--metrics-addr", "127.0.0.1:0", "--sweep-interval", "1"],
        &[("TENURE_ADMIN_TOKEN", ADMIN)],
    );
    issue_every_secret(&server.addr);
    let metrics_addr = server.metrics.clone().unwrap();
    assert_ne!(metrics_addr, server.addr);
    // The API listener does not serve metrics.
    assert_eq!(http(&server.addr, "GET", "/metrics", &[], "").status, 404);
    std::thread::sleep(Duration::from_millis(1500));
    let scraped = http(&metrics_addr, "GET", "/metrics", &[], "");
    assert_eq!(scraped.status, 200);
    let m = scraped.body;
    let ops = "tenure_engine_operations_total";
    assert_eq!(
        sample(&m, ops, &[r#"operation="refresh""#, r#"outcome="rotated""#]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            ops,
            &[r#"operation="refresh""#, r#"outcome="reuse_detected""#]
        ),
        Some(1.0),
        "{m}"
    );
    let requests = "tenure_http_requests_total";
    let token_route = r#"route="/zones/{zone_id}/oauth/token""#;
    // Two refreshes and a device poll answered 200, the reuse 400.
    assert_eq!(
        sample(&m, requests, &[token_route, r#"status="200""#]),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, requests, &[token_route, r#"status="400""#]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, requests, &[r#"route="unmatched""#, r#"status="404""#]),
        Some(1.0),
        "{m}"
    );
    assert!(
        sample(
            &m,
            "tenure_http_request_duration_seconds_count",
            &[token_route]
        )
        .is_some_and(|n| n >= 3.0),
        "{m}"
    );
    // Routes, never raw paths: no zone id or grant id in any label.
    assert!(!m.contains("/zones/z1"), "{m}");
    assert!(
        sample(&m, "tenure_sweeper_runs_total", &[r#"outcome="done""#]).is_some_and(|n| n >= 1.0),
        "{m}"
    );
    assert!(m.contains("# HELP tenure_http_requests_total"), "{m}");
    let stopped = server.stop();
    assert_eq!(stopped.status.code(), Some(0));
}

#[test]
fn health_routes_need_no_token_and_a_generated_admin_token_goes_to_stdout_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let server = Server::start(&["--data", data.to_str().unwrap()], &[], &[]);
    let healthz = http(&server.addr, "GET", "/healthz", &[], "");
    assert_eq!(
        (healthz.status, healthz.json()),
        (200, json!({"status": "ok"}))
    );
    let readyz = http(&server.addr, "GET", "/readyz", &[], "");
    assert_eq!(
        (readyz.status, readyz.json()),
        (200, json!({"status": "ok"}))
    );
    let stdout = server.stdout.lock().unwrap().clone();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .expect("the generated token is printed")
        .to_owned();
    let listed = http(
        &server.addr,
        "GET",
        "/zones/z1/clients",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    let stopped = server.stop();
    assert_eq!(stopped.stdout.matches(token.as_str()).count(), 1);
    assert!(
        !stopped.stderr.contains(token.as_str()),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("generated one"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn the_sweeper_persists_expiry_without_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let server = Server::start(
        &["--data", data.to_str().unwrap()],
        &["--sweep-interval", "1"],
        &[("TENURE_ADMIN_TOKEN", ADMIN)],
    );
    let created = admin_json(
        &server.addr,
        "POST",
        "/zones/z1/clients",
        &json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}),
    );
    assert_eq!(created.status, 201);
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let granted = admin_json(
        &server.addr,
        "POST",
        "/zones/z1/delegated-grants",
        &json!({"client_id": "web", "user_id": "alice", "resource_id": "api", "scopes": ["read"], "expires_at": expires}),
    );
    assert_eq!(granted.status, 201, "{}", granted.body);
    let id = text(&granted.json()["grant"]["id"]);
    let started = Instant::now();
    let swept = loop {
        let log = server.stderr();
        if let Some(line) = log.lines().find(|l| l.contains("swept expired records")) {
            break line.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the sweeper did not sweep: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(swept.contains("INFO"), "{swept}");
    assert!(
        swept.contains(r#"zone="z1""#) && swept.contains("expired=1"),
        "{swept}"
    );
    let stopped = server.stop();
    assert_eq!(stopped.status.code(), Some(0));
    // Persisted: a sweep by another process finds nothing left to expire, and the
    // grant's history holds the transition.
    let store = ["--data", data.to_str().unwrap()];
    let out = tenure()
        .args(store)
        .args(["sweep", "--zone", "z1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["expired"], 0, "{report}");
    let out = tenure()
        .args(store)
        .args(["grants", "history", &id, "--zone", "z1", "--json"])
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["created", "expired"]);
}

#[test]
fn sled_keeps_the_cursor_key_it_generated_and_cursors_outlive_a_restart() {
    cursors_outlive_a_restart("--data");
}

#[test]
fn redb_keeps_the_cursor_key_it_generated_and_cursors_outlive_a_restart() {
    cursors_outlive_a_restart("--redb");
}

/// On the embedded store `flag` names, the first start generates a cursor key and
/// keeps it in the store's directory, and a cursor given out before a restart is
/// accepted after it.
fn cursors_outlive_a_restart(flag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = [flag, data.to_str().unwrap()];
    let env = [("TENURE_ADMIN_TOKEN", ADMIN)];
    let server = Server::start(&store, &[], &env);
    admin_json(
        &server.addr,
        "POST",
        "/zones/z1/clients",
        &json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}),
    );
    for user in ["alice", "bob"] {
        let granted = admin_json(
            &server.addr,
            "POST",
            "/zones/z1/delegated-grants",
            &json!({"client_id": "web", "user_id": user, "resource_id": "api", "scopes": ["read"]}),
        );
        assert_eq!(granted.status, 201);
    }
    let page = admin_json(
        &server.addr,
        "GET",
        "/zones/z1/delegated-grants?limit=1",
        &json!({}),
    );
    let cursor = text(&page.json()["pagination"]["after_cursor"]);
    assert_eq!(server.stop().status.code(), Some(0));

    let key_file = data.join("cursor.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim().len(), 43, "32 bytes of base64url");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let server = Server::start(&store, &[], &env);
    let next = admin_json(
        &server.addr,
        "GET",
        &format!("/zones/z1/delegated-grants?limit=1&after={cursor}"),
        &json!({}),
    );
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(next.json()["items"].as_array().unwrap().len(), 1);
    let stopped = server.stop();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key, "kept");
    assert!(!stopped.all().contains(key.trim()));
}

#[test]
fn a_config_file_names_a_redb_store_and_serve_keeps_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("grants");
    let file = dir.path().join("tenure.toml");
    std::fs::write(
        &file,
        format!(
            "[http]\nadmin_token = \"{ADMIN}\"\n[store]\nredb = \"{}\"\n",
            store.display()
        ),
    )
    .unwrap();
    let config = ["--config", file.to_str().unwrap()];
    let server = Server::start(&[], &config, &[]);
    let created = admin_json(
        &server.addr,
        "POST",
        "/zones/z1/clients",
        &json!({"id": "web", "name": "Web", "allowed_scopes": ["read"]}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let granted = admin_json(
        &server.addr,
        "POST",
        "/zones/z1/delegated-grants",
        &json!({"client_id": "web", "user_id": "alice", "resource_id": "api", "scopes": ["read"]}),
    );
    assert_eq!(granted.status, 201, "{}", granted.body);
    let id = text(&granted.json()["grant"]["id"]);
    let ready = http(&server.addr, "GET", "/readyz", &[], "");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let stopped = server.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(stopped.stderr.contains("Redb"), "{}", stopped.stderr);
    assert!(store.join("tenure.redb").exists());
    assert!(!dir.path().join("tenure-data").exists());
    // Reopened by another process, on the command line: the grant is there.
    let out = tenure()
        .args(["--redb", store.to_str().unwrap()])
        .args(["grants", "show", &id, "--zone", "z1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grant: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(grant["status"], "active");
    // A file naming two stores is refused, in one line.
    std::fs::write(
        &file,
        format!(
            "[store]\nredb = \"{}\"\ndata = \"{}\"\n",
            store.display(),
            dir.path().join("sled").display()
        ),
    )
    .unwrap();
    let out = tenure()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than one store"), "{err}");
}

#[test]
fn settings_come_from_the_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenure.toml");
    std::fs::write(
        &file,
        format!(
            "[http]\nadmin_token = \"{ADMIN}\"\ndevice_verification_uri = \"https://file.example/device\"\n\
             [log]\nformat = \"json\"\n[store]\nmemory = true\n[sweep]\ninterval_seconds = 0\n"
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let device_uri = |server: &Server| {
        let created = admin_json(
            &server.addr,
            "POST",
            "/zones/z1/clients",
            &json!({"id": "tv", "name": "TV", "allowed_scopes": ["read"], "allowed_grants": ["urn:ietf:params:oauth:grant-type:device_code"]}),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        let device = form(
            &server.addr,
            "/zones/z1/oauth/device_authorization",
            &[("client_id", "tv"), ("scope", "read")],
            None,
        );
        assert_eq!(device.status, 200, "{}", device.body);
        text(&device.json()["verification_uri"])
    };
    // The file alone: its token, its URI, JSON logs, no sweeper, the memory store.
    let server = Server::start(&[], &["--config", config], &[]);
    assert_eq!(device_uri(&server), "https://file.example/device");
    let stopped = server.stop();
    assert!(!stopped.json_lines().is_empty());
    assert!(!stopped.stderr.contains("sweeper started"));
    assert!(!stopped.all().contains(ADMIN));
    // The environment over the file, and a flag over both.
    let server = Server::start(
        &[],
        &["--device-verification-uri", "https://flag.example/device"],
        &[
            ("TENURE_CONFIG", config),
            ("TENURE_LOG_FORMAT", "text"),
            (
                "TENURE_DEVICE_VERIFICATION_URI",
                "https://env.example/device",
            ),
        ],
    );
    assert_eq!(device_uri(&server), "https://flag.example/device");
    let stopped = server.stop();
    assert!(stopped.json_lines().is_empty(), "{}", stopped.stderr);
    assert!(stopped.stderr.contains("listening"));
}

#[test]
fn help_and_errors_never_print_a_secret() {
    let password = "pg-pass-4f7e1b";
    let url = format!("postgres://tenure:{password}@127.0.0.1:1/tenure");
    let secrets = [ADMIN.to_owned(), password.to_owned(), CURSOR_KEY.to_owned()];
    let with_secrets = |args: &[&str]| -> Output {
        tenure()
            .args(args)
            .env("TENURE_ADMIN_TOKEN", ADMIN)
            .env("TENURE_POSTGRES_URL", &url)
            .env("TENURE_CURSOR_KEY", CURSOR_KEY)
            .output()
            .unwrap()
    };
    for args in [
        &["--help"][..],
        &["-h"],
        &["serve", "--help"],
        &["serve", "-h"],
        &["help", "serve"],
        &["grants", "list", "--help"],
        &["sweep", "--help"],
    ] {
        let out = with_secrets(args);
        assert!(out.status.success(), "{args:?}");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            printed.contains("TENURE_POSTGRES_URL"),
            "{args:?}: {printed}"
        );
        assert_no_secret(&printed, &secrets);
    }
    let serve_help = String::from_utf8(with_secrets(&["serve", "--help"]).stdout).unwrap();
    for documented in [
        "TENURE_ADMIN_TOKEN",
        "TENURE_CURSOR_KEY",
        "TENURE_CONFIG",
        "--metrics-addr",
        "--log-format",
        "--sweep-interval",
        "--shutdown-timeout",
        "--request-timeout",
        "RUST_LOG",
    ] {
        assert!(
            serve_help.contains(documented),
            "{documented}: {serve_help}"
        );
    }

    // Secrets given as flags are refused, without being echoed.
    for flag in ["--admin-token", "--cursor-key"] {
        let out = tenure()
            .args(["--memory", "serve", flag, "s3cret-on-argv"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not taken on the command line"), "{err}");
        assert!(!err.contains("s3cret-on-argv"), "{err}");
    }

    // PostgreSQL without a cursor key: refused, naming the setting, before connecting.
    let out = tenure()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("TENURE_POSTGRES_URL", &url)
        .env("TENURE_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("TENURE_CURSOR_KEY"), "{printed}");
    assert_no_secret(&printed, &secrets);

    // An unreachable database: the error says so without the URL's password.
    let out = with_secrets(&["serve", "--addr", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("tenure: "), "{printed}");
    assert_no_secret(&printed, &secrets);
}

/// Opens a request whose body never finishes arriving: it stays in flight.
fn stalled_request(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /zones/z1/delegated-grants HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"client"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

#[test]
fn a_request_that_outlasts_the_timeout_is_answered_503() {
    let server = Server::start(
        &["--memory"],
        &["--request-timeout", "1"],
        &[("TENURE_ADMIN_TOKEN", ADMIN)],
    );
    let started = Instant::now();
    let mut stream = stalled_request(&server.addr);
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.stop().status.code(), Some(0));
}

#[test]
fn after_sigterm_in_flight_requests_get_the_shutdown_deadline_then_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let server = Server::start(
        &["--data", data.to_str().unwrap()],
        &["--request-timeout", "600", "--shutdown-timeout", "1"],
        &[("TENURE_ADMIN_TOKEN", ADMIN)],
    );
    let _stream = stalled_request(&server.addr);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let stopped = server.stop();
    let took = started.elapsed();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        stopped.stderr.contains("shutdown deadline passed"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stdout.contains("stopped; the store is flushed"));
}

/// Runs SQL statements on `url`, one after the other.
fn sql(url: &str, statements: &[&str]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        for statement in statements {
            client.batch_execute(statement).await.unwrap();
        }
        drop(client);
        let _ = connection.await;
    });
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, rest) = url.rsplit_once('/').unwrap();
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}"));
    format!("{base}/{database}{}", query.unwrap_or_default())
}

fn wait_for_readyz(addr: &str, status: u16, server: &Server) -> Answer {
    let started = Instant::now();
    loop {
        let answer = http(addr, "GET", "/readyz", &[], "");
        if answer.status == status {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz stayed {} ({}): {}",
            answer.status,
            answer.body,
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readyz_turns_unready_when_postgres_is_gone_and_ready_when_it_returns() {
    let Ok(url) = std::env::var("TENURE_TEST_POSTGRES_URL") else {
        eprintln!(
            "note: TENURE_TEST_POSTGRES_URL is not set, so the PostgreSQL readiness test did \
             not run; run it under scripts/with-postgres.sh"
        );
        return;
    };
    // A database of its own, which the test can close to connections.
    let database = format!("tenure_readyz_{}", std::process::id());
    sql(
        &url,
        &[
            &format!("DROP DATABASE IF EXISTS {database}"),
            &format!("CREATE DATABASE {database}"),
        ],
    );
    let own = with_database(&url, &database);
    let server = Server::start(
        &[],
        &["--sweep-interval", "1", "--postgres-pool-size", "4"],
        &[
            ("TENURE_POSTGRES_URL", &own),
            ("TENURE_CURSOR_KEY", CURSOR_KEY),
            ("TENURE_ADMIN_TOKEN", ADMIN),
        ],
    );
    assert_eq!(http(&server.addr, "GET", "/readyz", &[], "").status, 200);
    let gone = [
        format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"),
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    ];
    sql(&url, &gone.iter().map(String::as_str).collect::<Vec<_>>());
    let unready = wait_for_readyz(&server.addr, 503, &server);
    assert_eq!(unready.json()["error"], "not_ready");
    // The process itself is still up.
    assert_eq!(http(&server.addr, "GET", "/healthz", &[], "").status, 200);
    sql(
        &url,
        &[&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true")],
    );
    wait_for_readyz(&server.addr, 200, &server);
    let stopped = server.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("not ready")),
        "{}",
        stopped.stderr
    );
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, password)| password.to_owned());
    if let Some(password) = password {
        assert_no_secret(&stopped.all(), &[password]);
    }
    sql(
        &url,
        &[
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ),
            &format!("DROP DATABASE IF EXISTS {database}"),
        ],
    );
}
