//! The `tenure` binary, run as a process: every subcommand, its exit codes, its
//! `--json` output, export and import, and `serve` until SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

/// Where a command runs: a path is a sled store (`--data`), [`Redb`] a redb one.
trait At {
    /// The flag naming the store.
    fn flag(&self) -> &'static str;
    /// The store's directory.
    fn dir(&self) -> &Path;
}

impl At for Path {
    fn flag(&self) -> &'static str {
        "--data"
    }
    fn dir(&self) -> &Path {
        self
    }
}

impl At for PathBuf {
    fn flag(&self) -> &'static str {
        "--data"
    }
    fn dir(&self) -> &Path {
        self
    }
}

/// A redb store in this directory (`--redb`).
struct Redb<'a>(&'a Path);

impl At for Redb<'_> {
    fn flag(&self) -> &'static str {
        "--redb"
    }
    fn dir(&self) -> &Path {
        self.0
    }
}

/// The binary, on the store `at`, with no store named by the environment.
fn command(at: &(impl At + ?Sized)) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenure"));
    command
        .arg(at.flag())
        .arg(at.dir())
        .env_remove("TENURE_DATA")
        .env_remove("TENURE_REDB")
        .env_remove("TENURE_POSTGRES_URL");
    command
}

fn tenure(data: &(impl At + ?Sized), args: &[&str]) -> Output {
    command(data).args(args).output().unwrap()
}

fn ok(data: &(impl At + ?Sized), args: &[&str]) -> String {
    let out = tenure(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(data: &(impl At + ?Sized), args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok(data, &args)).unwrap()
}

/// Fails with one line on stderr, no panic, no backtrace.
fn fails(data: &(impl At + ?Sized), args: &[&str], fragment: &str) {
    let out = tenure(data, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("tenure: "), "{err}");
    assert!(
        err.contains(fragment),
        "{err:?} should mention {fragment:?}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

/// Runs the demo and answers the zone it used.
fn demo(data: &(impl At + ?Sized)) -> String {
    let out = ok(data, &["demo"]);
    assert!(out.contains("reuse detected"), "{out}");
    assert!(out.contains("reads expired before any sweep"), "{out}");
    let first = out.lines().next().unwrap();
    first.rsplit("zone ").next().unwrap().trim().to_owned()
}

/// Runs the demo twice on `at` and checks what it left.
fn demo_leaves_an_expired_and_a_revoked_grant(at: &(impl At + ?Sized)) {
    let zone = demo(at);
    let listing = json_of(at, &["grants", "list", "--zone", &zone, "--total-count"]);
    assert_eq!(listing["pagination"]["total_count"], 2);
    let statuses: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["expired", "revoked"]);
    // A second demo run gets a zone of its own.
    assert_ne!(demo(at), zone);
}

#[test]
fn demo_walks_a_grant_through_its_life_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    demo_leaves_an_expired_and_a_revoked_grant(&data);
    // And on memory too.
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["--memory", "demo"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn demo_runs_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = ok(&Redb(&store), &["demo"]);
    assert!(
        out.starts_with(&format!("demo on the redb store in {}", store.display())),
        "{out}"
    );
    demo_leaves_an_expired_and_a_revoked_grant(&Redb(&store));
    assert!(store.join("tenure.redb").exists());
}

#[test]
fn grants_list_show_history_revoke_delete() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let zone = demo(&data);
    let z = ["--zone", zone.as_str()];
    let listing = json_of(
        &data,
        &[
            "grants",
            "list",
            z[0],
            z[1],
            "--sort",
            "created_at",
            "--limit",
            "1",
        ],
    );
    let first = listing["items"][0].clone();
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["status"], "revoked");
    let after = listing["pagination"]["after_cursor"].as_str().unwrap();
    let next = json_of(
        &data,
        &[
            "grants",
            "list",
            z[0],
            z[1],
            "--sort",
            "created_at",
            "--limit",
            "1",
            "--after",
            after,
        ],
    );
    assert_eq!(next["items"][0]["status"], "expired");
    let filtered = json_of(&data, &["grants", "list", z[0], z[1], "--user-id", "bob"]);
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let revoked = json_of(
        &data,
        &["grants", "list", z[0], z[1], "--status", "revoked"],
    );
    assert_eq!(revoked["items"][0]["id"], json!(id));

    let shown = json_of(&data, &["grants", "show", &id, z[0], z[1]]);
    assert_eq!(shown, first);
    assert!(ok(&data, &["grants", "show", &id, z[0], z[1]]).contains("revoked"));
    let history = json_of(&data, &["grants", "history", &id, z[0], z[1]]);
    let reasons: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    // A grant's history keeps its latest refresh, not one entry per rotation.
    assert_eq!(reasons, ["created", "refreshed", "reuse_detected"]);
    // Revoking a revoked grant succeeds unchanged; an expired one is refused.
    assert_eq!(
        json_of(&data, &["grants", "revoke", &id, z[0], z[1]]),
        first
    );
    let expired_id = next["items"][0]["id"].as_str().unwrap().to_owned();
    fails(
        &data,
        &["grants", "revoke", &expired_id, z[0], z[1]],
        "expired",
    );
    assert_eq!(
        json_of(&data, &["grants", "delete", &id, z[0], z[1]]),
        json!({"deleted": id})
    );
    fails(&data, &["grants", "show", &id, z[0], z[1]], "not found");
    fails(
        &data,
        &["grants", "list", z[0], z[1], "--limit", "0"],
        "limit",
    );
    fails(
        &data,
        &["grants", "list", z[0], z[1], "--after", "forged"],
        "cursor",
    );
    fails(
        &data,
        &["grants", "list", z[0], z[1], "--status", "paused"],
        "status",
    );
    fails(
        &data,
        &["grants", "list", z[0], z[1], "--sort", "name"],
        "sort",
    );
}

#[test]
fn clients_create_list_show_patch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let created = json_of(
        &data,
        &[
            "clients",
            "create",
            "--id",
            "web",
            "--name",
            "Web",
            "--scope",
            "read",
            "--scope",
            "write",
            "--confidential",
        ],
    );
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("tnr_cs_")
    );
    let shown = json_of(&data, &["clients", "show", "web"]);
    assert!(shown.get("client_secret").is_none(), "shown once");
    assert_eq!(shown["allowed_scopes"], json!(["read", "write"]));
    ok(
        &data,
        &[
            "clients",
            "create",
            "--id",
            "tv",
            "--name",
            "TV",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
    );
    let list = json_of(&data, &["clients", "list"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tv", "web"]);
    assert!(ok(&data, &["clients", "list"]).contains("Web"));
    let impact = json_of(
        &data,
        &[
            "clients",
            "patch",
            "web",
            "--dry-run",
            "--patch",
            r#"{"enabled": false}"#,
        ],
    );
    assert_eq!(impact["stops_authorization"], true);
    assert_eq!(
        json_of(&data, &["clients", "show", "web"])["enabled"],
        true,
        "a dry run changes nothing"
    );
    let patched = json_of(
        &data,
        &[
            "clients",
            "patch",
            "web",
            "--patch",
            r#"[{"op":"replace","path":"/allowed_scopes","value":["read"]}]"#,
        ],
    );
    assert_eq!(patched["allowed_scopes"], json!(["read"]));
    let file = dir.path().join("merge.json");
    std::fs::write(&file, r#"{"name": "Renamed"}"#).unwrap();
    assert_eq!(
        json_of(
            &data,
            &["clients", "patch", "web", "--file", file.to_str().unwrap()]
        )["name"],
        "Renamed"
    );
    fails(
        &data,
        &[
            "clients",
            "patch",
            "web",
            "--patch",
            r#"[{"op":"test","path":"/name","value":"x"}]"#,
        ],
        "patch operation 0",
    );
    fails(
        &data,
        &[
            "clients",
            "patch",
            "web",
            "--patch",
            r#"[{"op":"replace","path":"/id","value":"x"}]"#,
        ],
        "not a patchable field",
    );
    fails(
        &data,
        &["clients", "patch", "web", "--patch", "{"],
        "not JSON",
    );
    fails(
        &data,
        &["clients", "create", "--id", "web", "--name", "dup"],
        "already exists",
    );
    fails(
        &data,
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--grant-type",
            "password",
        ],
        "--grant-type",
    );
    fails(&data, &["clients", "show", "nobody"], "not found");
    assert_eq!(
        json_of(&data, &["clients", "delete", "tv"]),
        json!({"deleted": "tv"})
    );
    let list = json_of(&data, &["clients", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    fails(&data, &["clients", "show", "tv"], "not found");
    fails(&data, &["clients", "delete", "tv"], "not found");
    assert!(ok(&data, &["clients", "delete", "web"]).contains("deleted client web"));
}

/// The demo's grants are no longer active when it ends, so this shows what the
/// CLI can: the client goes, its grants stay listed, another client stays.
#[test]
fn deleting_a_client_leaves_its_grants_listed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let zone = demo(&data);
    let z = ["--zone", zone.as_str()];
    ok(
        &data,
        &[
            "clients", "create", "--id", "kept", "--name", "Kept", z[0], z[1],
        ],
    );
    ok(&data, &["clients", "delete", "calendar", z[0], z[1]]);
    fails(
        &data,
        &["clients", "show", "calendar", z[0], z[1]],
        "not found",
    );
    let listing = json_of(&data, &["grants", "list", z[0], z[1], "--total-count"]);
    assert_eq!(listing["pagination"]["total_count"], 2, "{listing}");
    json_of(&data, &["clients", "show", "kept", z[0], z[1]]);
}

#[test]
fn bad_arguments_and_missing_stores_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    fails(&missing, &["grants", "list"], "no store at");
    assert!(!missing.exists(), "reading does not create a store");
    let out = tenure(&missing, &["grants", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    fails(&missing, &["sweep", "--batch", "many"], "many");
    let not_a_store = dir.path().join("file");
    std::fs::write(&not_a_store, "hello").unwrap();
    fails(
        &not_a_store,
        &["grants", "list"],
        &not_a_store.display().to_string(),
    );
}

#[test]
fn redb_stores_that_cannot_be_opened_are_one_line_errors() {
    use redb::TableDefinition;
    use tenure_redb::{DATABASE_FILE, FORMAT_VERSION};

    let dir = tempfile::tempdir().unwrap();
    // Reading never creates a store.
    let missing = dir.path().join("nowhere");
    fails(&Redb(&missing), &["grants", "list"], "no store at");
    fails(&Redb(&missing), &["export"], "--redb or TENURE_REDB");
    assert!(!missing.exists(), "reading does not create a store");
    // Nor does it put a redb database into a directory holding something else.
    let sled = dir.path().join("sled");
    ok(
        &sled,
        &["clients", "create", "--id", "web", "--name", "Web"],
    );
    fails(&Redb(&sled), &["clients", "list"], "no store at");
    assert!(!sled.join(DATABASE_FILE).exists());
    // A file where the directory belongs.
    let file = dir.path().join("file");
    std::fs::write(&file, "hello").unwrap();
    fails(
        &Redb(&file),
        &["grants", "list"],
        &file.display().to_string(),
    );
    // A database file that is not redb's.
    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join(DATABASE_FILE), vec![0x5a; 16 * 1024]).unwrap();
    fails(
        &Redb(&garbage),
        &["grants", "list"],
        &garbage.display().to_string(),
    );
    // A redb database of someone else's.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    {
        let db = redb::Database::create(foreign.join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let other: TableDefinition<'static, &str, &str> = TableDefinition::new("theirs");
        txn.open_table(other).unwrap().insert("k", "v").unwrap();
        txn.commit().unwrap();
    }
    fails(
        &Redb(&foreign),
        &["grants", "list"],
        "no tenure-redb format marker",
    );
    // A store written by a later tenure-redb, in a format this one does not read:
    // refused by every command, `serve` and `import` included, and left unchanged.
    let later = dir.path().join("later");
    ok(
        &Redb(&later),
        &["clients", "create", "--id", "web", "--name", "Web"],
    );
    {
        let db = redb::Database::open(later.join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tenure_meta");
        txn.open_table(meta)
            .unwrap()
            .insert(
                b"format_version".as_slice(),
                (FORMAT_VERSION + 1).to_be_bytes().as_slice(),
            )
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(later.join(DATABASE_FILE)).unwrap();
    let unsupported = format!("format version {}", FORMAT_VERSION + 1);
    fails(&Redb(&later), &["clients", "list"], &unsupported);
    fails(
        &Redb(&later),
        &["import", "--in", "/dev/null"],
        &later.display().to_string(),
    );
    let out = tenure(
        &Redb(&later),
        &["serve", "--addr", "127.0.0.1:0", "--log-format", "json"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("tenure: ") && last.contains(&unsupported),
        "{err}"
    );
    assert_eq!(
        std::fs::read(later.join(DATABASE_FILE)).unwrap(),
        before,
        "refused, not changed"
    );
    // Two stores at once are refused before anything is opened.
    for args in [
        &["--redb", "r", "--data", "d", "grants", "list"][..],
        &["--redb", "r", "--memory", "grants", "list"],
        &["--redb", "r", "--postgres", "host=db", "grants", "list"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .current_dir(dir.path())
            .args(args)
            .env_remove("TENURE_DATA")
            .env_remove("TENURE_REDB")
            .env_remove("TENURE_POSTGRES_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("cannot be used with"), "{err}");
    }
    assert!(!dir.path().join("r").exists() && !dir.path().join("d").exists());
}

#[test]
fn tokens_and_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let zone = demo(&data);
    // Tokens are read from a file (or standard input), never from the command line.
    let unknown_file = dir.path().join("unknown-token");
    std::fs::write(&unknown_file, "tnr_at_unknown\n").unwrap();
    let unknown = unknown_file.display().to_string();
    assert_eq!(
        json_of(&data, &["tokens", "introspect", &unknown, "--zone", &zone]),
        json!({"active": false})
    );
    assert_eq!(
        json_of(&data, &["tokens", "revoke", &unknown, "--zone", &zone]),
        json!({"revoked": false})
    );
    // The demo swept its own expiry already; nothing is left.
    assert_eq!(
        json_of(&data, &["sweep", "--zone", &zone]),
        json!({"expired": 0, "tokens_removed": 0, "devices_removed": 0})
    );
}

#[test]
fn export_then_import_into_another_store_gives_the_same_listing() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let zone = demo(&a);
    let file = dir.path().join("zone.jsonl");
    let out = tenure(
        &a,
        &["export", "--zone", &zone, "--out", file.to_str().unwrap()],
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        kinds.iter().any(|k| k == "client")
            && kinds.iter().any(|k| k == "grant")
            && kinds.iter().any(|k| k == "token")
    );
    let first = tenure(&b, &["import", "--in", file.to_str().unwrap()]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("0 unchanged"));
    let second = tenure(&b, &["import", "--in", file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains(&format!("0 created, 0 updated, {} unchanged", kinds.len()))
    );
    let list = |data: &Path| json_of(data, &["grants", "list", "--zone", &zone, "--total-count"]);
    assert_eq!(list(&a), list(&b));
    // Export to standard output gives the same bytes.
    assert_eq!(ok(&b, &["export", "--zone", &zone]), text);
    // A corrupt file is refused at its line, and the store keeps what came before.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!(
            "{}\n{{\"kind\":\"grant\",\"record\":{{}}}}\n",
            text.lines().next().unwrap()
        ),
    )
    .unwrap();
    fails(
        &dir.path().join("c"),
        &["import", "--in", bad.to_str().unwrap()],
        "line 2",
    );
    fails(
        &dir.path().join("c"),
        &["import", "--in", "/no/such/file"],
        "/no/such/file",
    );
}

struct Server {
    child: Child,
    addr: String,
}

fn serve(data: &(impl At + ?Sized)) -> Server {
    let mut child = command(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("TENURE_ADMIN_TOKEN", "admin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            break a.to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

impl Server {
    /// SIGTERM, and the exit code.
    fn stop(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }
}

#[test]
fn serve_answers_and_stops_on_sigterm_with_the_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    serve_until_sigterm(&dir.path().join("store"), dir.path());
}

#[test]
fn serve_on_redb_answers_and_stops_on_sigterm_with_the_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    serve_until_sigterm(&Redb(&store), dir.path());
    assert!(store.join("tenure.redb").exists());
    assert!(store.join("cursor.key").exists(), "kept with the store");
}

/// Serves the store `data`, makes a grant over HTTP, checks that no other process
/// can open the store meanwhile, stops the server with SIGTERM and finds the grant
/// and its token in the store. `scratch` is a directory for files.
fn serve_until_sigterm(data: &(impl At + ?Sized), scratch: &Path) {
    ok(
        data,
        &[
            "clients", "create", "--id", "web", "--name", "Web", "--scope", "read",
        ],
    );
    let server = serve(data);
    let body = r#"{"client_id":"web","user_id":"alice","resource_id":"api","scopes":["read"]}"#;
    let response = http(
        &server.addr,
        &format!(
            "POST /zones/default/delegated-grants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let json: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let grant_id = json["grant"]["id"].as_str().unwrap().to_owned();
    let access_token = json["access_token"].as_str().unwrap().to_owned();
    // A second process cannot open the same store: a clear error naming the path.
    fails(data, &["grants", "list"], &data.dir().display().to_string());
    fails(data, &["grants", "list"], "open in another process");
    assert_eq!(server.stop(), Some(0), "graceful shutdown exits 0");
    // The grant survived and its token still introspects.
    let token_path = scratch.join("access-token");
    std::fs::write(&token_path, format!("{access_token}\n")).unwrap();
    let token_file = token_path.display().to_string();
    assert_eq!(
        json_of(data, &["grants", "show", &grant_id])["status"],
        "active"
    );
    assert_eq!(
        json_of(data, &["tokens", "introspect", &token_file])["active"],
        true
    );
    assert_eq!(
        json_of(data, &["tokens", "revoke", &token_file])["revoked"],
        true
    );
    assert_eq!(
        json_of(data, &["tokens", "introspect", &token_file])["active"],
        false
    );
}

/// An HTTP answer's status and JSON body.
fn answer(response: &str) -> (u16, Value) {
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `POST path` on the server with a body of `content_type`, as the administrator.
fn post(server: &Server, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    answer(&http(
        &server.addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    ))
}

/// Presents a refresh token of public client `web` in `zone`.
fn refresh(server: &Server, zone: &str, token: &str) -> (u16, Value) {
    post(
        server,
        &format!("/zones/{zone}/oauth/token"),
        "application/x-www-form-urlencoded",
        &format!("grant_type=refresh_token&client_id=web&refresh_token={token}"),
    )
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

#[test]
fn a_zone_moves_from_sled_to_redb_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let sled = dir.path().join("sled");
    let redb = dir.path().join("redb");
    let back = dir.path().join("back");
    let zone = demo(&sled);
    // A grant whose refresh token rotated twice, through the API.
    ok(
        &sled,
        &[
            "clients", "create", "--id", "web", "--name", "Web", "--scope", "read", "--zone", &zone,
        ],
    );
    let server = serve(&sled);
    let (status, granted) = post(
        &server,
        &format!("/zones/{zone}/delegated-grants"),
        "application/json",
        r#"{"client_id":"web","user_id":"carol","resource_id":"api","scopes":["read"]}"#,
    );
    assert_eq!(status, 201, "{granted}");
    let grant_id = text(&granted["grant"]["id"]);
    let first = text(&granted["refresh_token"]);
    let (status, rotated) = refresh(&server, &zone, &first);
    assert_eq!(status, 200, "{rotated}");
    let (status, rotated) = refresh(&server, &zone, &text(&rotated["refresh_token"]));
    assert_eq!(status, 200, "{rotated}");
    let current = text(&rotated["refresh_token"]);
    assert_eq!(server.stop(), Some(0));

    // sled → redb: the same listing and history; a second import changes nothing.
    let from_sled = dir.path().join("from-sled.jsonl");
    let from_sled_arg = from_sled.to_str().unwrap();
    ok(&sled, &["export", "--zone", &zone, "--out", from_sled_arg]);
    let lines = std::fs::read_to_string(&from_sled).unwrap().lines().count();
    let first_import = tenure(&Redb(&redb), &["import", "--in", from_sled_arg]);
    assert!(
        first_import.status.success(),
        "{}",
        String::from_utf8_lossy(&first_import.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first_import.stderr)
            .contains(&format!("{lines} created, 0 updated, 0 unchanged"))
    );
    let again = tenure(&Redb(&redb), &["import", "--in", from_sled_arg]);
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains(&format!("0 created, 0 updated, {lines} unchanged")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let list = |at: &dyn Fn(&[&str]) -> Value| {
        (
            at(&["grants", "list", "--zone", &zone, "--total-count"]),
            at(&["grants", "history", &grant_id, "--zone", &zone]),
            at(&["clients", "list", "--zone", &zone]),
        )
    };
    let on_sled = list(&|args| json_of(&sled, args));
    assert_eq!(on_sled.0["pagination"]["total_count"], 3);
    assert_eq!(list(&|args| json_of(&Redb(&redb), args)), on_sled);
    // redb exports the zone byte for byte as sled did.
    let from_redb = dir.path().join("from-redb.jsonl");
    let from_redb_arg = from_redb.to_str().unwrap();
    ok(
        &Redb(&redb),
        &["export", "--zone", &zone, "--out", from_redb_arg],
    );
    assert_eq!(
        std::fs::read_to_string(&from_redb).unwrap(),
        std::fs::read_to_string(&from_sled).unwrap()
    );

    // redb → sled again.
    ok(&back, &["import", "--in", from_redb_arg]);
    assert_eq!(list(&|args| json_of(&back, args)), on_sled);

    // On redb, the rotated grant's current refresh token refreshes, and a token
    // spent on sled is still caught as reuse, revoking the grant.
    let server = serve(&Redb(&redb));
    let (status, next) = refresh(&server, &zone, &current);
    assert_eq!(status, 200, "{next}");
    let (status, reused) = refresh(&server, &zone, &first);
    assert_eq!(status, 400, "{reused}");
    assert_eq!(reused["error"], "invalid_grant");
    assert_eq!(server.stop(), Some(0));
    let grant = json_of(
        &Redb(&redb),
        &["grants", "show", &grant_id, "--zone", &zone],
    );
    assert_eq!(grant["status"], "revoked");
    let reasons: Vec<String> = json_of(
        &Redb(&redb),
        &["grants", "history", &grant_id, "--zone", &zone],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|t| text(&t["reason"]))
    .collect();
    assert_eq!(reasons, ["created", "refreshed", "reuse_detected"]);
}

fn postgres_url() -> String {
    std::env::var("TENURE_TEST_POSTGRES_URL").expect(
        "TENURE_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, \
         which starts a throwaway PostgreSQL, or point it at a database",
    )
}

/// The tool on PostgreSQL, the URL (which holds a password) in the environment:
/// the command line refuses one.
fn tenure_pg(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .env("TENURE_POSTGRES_URL", url)
        .env_remove("TENURE_DATA")
        .env_remove("TENURE_REDB")
        .output()
        .unwrap()
}

#[test]
fn import_into_postgres_and_serve_from_it() {
    let url = postgres_url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let zone = demo(&data);
    let file = dir.path().join("zone.jsonl");
    assert!(
        tenure(
            &data,
            &["export", "--zone", &zone, "--out", file.to_str().unwrap()]
        )
        .status
        .success()
    );
    let imported = tenure_pg(&url, &["import", "--in", file.to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let listed = tenure_pg(
        &url,
        &["grants", "list", "--zone", &zone, "--total-count", "--json"],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let from_pg: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        from_pg,
        json_of(&data, &["grants", "list", "--zone", &zone, "--total-count"])
    );
    // And on from PostgreSQL to redb.
    let from_pg_file = dir.path().join("from-pg.jsonl");
    let exported = tenure_pg(
        &url,
        &[
            "export",
            "--zone",
            &zone,
            "--out",
            from_pg_file.to_str().unwrap(),
        ],
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let redb = dir.path().join("redb");
    ok(
        &Redb(&redb),
        &["import", "--in", from_pg_file.to_str().unwrap()],
    );
    assert_eq!(
        json_of(
            &Redb(&redb),
            &["grants", "list", "--zone", &zone, "--total-count"]
        ),
        from_pg
    );

    // A password on the command line is refused, without being echoed.
    let refused = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["--postgres", &url, "grants", "list"])
        .env_remove("TENURE_POSTGRES_URL")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("TENURE_POSTGRES_URL"), "{stderr}");
    assert!(!stderr.contains(&url), "the URL was echoed: {stderr}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("TENURE_POSTGRES_URL", &url)
        .env(
            "TENURE_CURSOR_KEY",
            "dGVudXJlLWNsaS10ZXN0LWN1cnNvci1rZXktMzJieXQ=",
        )
        .env("TENURE_ADMIN_TOKEN", "admin")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            break a.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let response = http(
        &addr,
        &format!(
            "GET /zones/{zone}/delegated-grants?expand[]=total_count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"total_count\":2"), "{response}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn tokens_are_read_from_standard_input_or_a_file_never_from_the_command_line() {
    use std::io::Write as _;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let zone = demo(&data);
    // A token where the file belongs is refused, and not echoed back.
    let out = tenure(
        &data,
        &[
            "tokens",
            "introspect",
            "tnr_at_secretvalue",
            "--zone",
            &zone,
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("standard input"), "{stderr}");
    assert!(
        !stderr.contains("secretvalue"),
        "the token was echoed: {stderr}"
    );
    // Standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg("--data")
        .arg(&data)
        .args(["tokens", "introspect", "-", "--json", "--zone", &zone])
        .env_remove("TENURE_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tnr_at_unknown\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer, json!({"active": false}));
    // Two lines are refused.
    let two = dir.path().join("two");
    std::fs::write(&two, "tnr_at_a\ntnr_at_b\n").unwrap();
    fails(
        &data,
        &[
            "tokens",
            "revoke",
            &two.display().to_string(),
            "--zone",
            &zone,
        ],
        "one line",
    );
}
