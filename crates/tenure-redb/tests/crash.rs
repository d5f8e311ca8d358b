//! A crash test in the style of sled's own: this test binary runs itself again as a
//! child that writes under load in `Immediate` mode and reports every acknowledged
//! write on stdout; the parent kills it with SIGKILL at a random moment, reopens the
//! store and checks that every acknowledged write is there, that no grant breaks a
//! lifecycle invariant (among them: a grant keeps one refresh token record however
//! often it rotated), and that every index agrees with the records. The store is
//! kept across cycles, so later cycles recover a store that has been killed before.
//! The same child in `Periodic` mode is killed too, and the store it leaves must be
//! whole, though it may have lost the last acknowledged writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenure::{
    Actor, AuthorizeRequest, ClientRegistration, Engine, Error, GrantFilter, GrantQuery,
    GrantStatus, Position, RefreshRequest, Secret, SortOrder, Storage, TokenKind, TransitionReason,
    lifecycle,
};
use tenure_redb::{Durability, RedbConfig, RedbStorage};

const ZONE: &str = "crash-zone";
const CLIENT: &str = "crash-app";
const CHILD_ENV: &str = "TENURE_REDB_CRASH_STORE";
/// `periodic` when the child writes in `Periodic` mode; `Immediate` otherwise.
const CHILD_MODE_ENV: &str = "TENURE_REDB_CRASH_MODE";

/// Starts every acknowledgement the child prints. The test harness prints the
/// test's name on the same line as the first one, so it is searched for, not
/// expected at the start.
const ACK: &str = "ACK ";

/// Kill cycles per run: `TENURE_REDB_CRASH_CYCLES` when set, 20 otherwise.
fn cycles() -> usize {
    std::env::var("TENURE_REDB_CRASH_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

fn random(below: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % below
}

// ----- the child -----

/// Writers in the child, each with its own grants.
const WRITERS: usize = 3;

/// How long a child writes if no one kills it: a bound, not a wait.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

#[test]
#[ignore = "the child half of acknowledged_writes_survive_sigkill"]
fn crash_child() {
    let path = std::env::var_os(CHILD_ENV).expect("run by the parent test, which sets the store");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let durability = match std::env::var(CHILD_MODE_ENV).as_deref() {
            Ok("periodic") => Durability::Periodic,
            _ => Durability::Immediate,
        };
        // In periodic mode a short interval, so that kills land between flushes,
        // before them and during them.
        let config = RedbConfig::new()
            .durability(durability)
            .flush_every(Duration::from_millis(20))
            .flush_after(8);
        let store = RedbStorage::open_with(&path, config).unwrap();
        let engine = Engine::new(store);
        match engine
            .register_client(
                ZONE,
                ClientRegistration::new("Crash")
                    .id(CLIENT)
                    .scopes(["read", "write"]),
            )
            .await
        {
            Ok(_) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => panic!("registering the client: {e:?}"),
        }
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let report = move |line: String| {
            let mut out = out.lock().unwrap();
            writeln!(out, "{ACK}{line}").unwrap();
            out.flush().unwrap();
        };
        let deadline = Instant::now() + CHILD_LIFETIME;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let engine = engine.clone();
                let report = report.clone();
                tokio::spawn(async move {
                    // This writer's active grants: id, refresh token, refreshes so far.
                    let mut mine: Vec<(String, Secret, u32)> = Vec::new();
                    while Instant::now() < deadline {
                        let dice = random(100);
                        if mine.is_empty() || dice < 55 {
                            let request = AuthorizeRequest::new(
                                CLIENT,
                                format!("user-{w}"),
                                "files",
                                ["read"],
                            );
                            let issued = engine.authorize(ZONE, request).await.unwrap();
                            report(format!("A {}", issued.grant.id));
                            mine.push((issued.grant.id, issued.refresh_token.unwrap(), 0));
                        } else if dice < 85 {
                            let i = random(mine.len() as u64) as usize;
                            let (id, token, n) = &mut mine[i];
                            let issued = engine
                                .refresh(ZONE, RefreshRequest::new(CLIENT, token))
                                .await
                                .unwrap();
                            *n += 1;
                            *token = issued.refresh_token.unwrap();
                            report(format!("R {id} {n}"));
                        } else {
                            let i = random(mine.len() as u64) as usize;
                            let (id, _, _) = mine.swap_remove(i);
                            engine.revoke_grant(ZONE, &id, Actor::Admin).await.unwrap();
                            report(format!("V {id}"));
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

// ----- the parent -----

/// What the child acknowledged about one grant.
#[derive(Debug, Default, Clone)]
struct Acknowledged {
    refreshes: u32,
    revoked: bool,
}

fn spawn_child(path: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(CHILD_MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs one child, kills it after a random number of acknowledgements (and a
/// random extra moment), and records every acknowledgement it printed.
fn run_and_kill(path: &Path, mode: &str, acked: &mut HashMap<String, Acknowledged>) -> usize {
    let mut child = spawn_child(path, mode);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let kill_after = 1 + random(60) as usize;
    let mut seen = Vec::new();
    let mut count = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        count += usize::from(line.contains(ACK));
        seen.push(line);
        if count >= kill_after {
            break;
        }
    }
    std::thread::sleep(Duration::from_micros(random(5_000)));
    // SIGKILL on unix.
    child.kill().unwrap();
    child.wait().unwrap();
    // Whole lines still in the pipe were acknowledged before the kill too; a torn
    // last line is an acknowledgement that was never completed.
    seen.extend(lines.map_while(Result::ok));
    let acks: Vec<&str> = seen
        .iter()
        .filter_map(|line| line.find(ACK).map(|i| &line[i + ACK.len()..]))
        .collect();
    for line in &acks {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["A", id] => {
                acked.insert((*id).to_owned(), Acknowledged::default());
            }
            ["R", id, n] => {
                let entry = acked.get_mut(*id).unwrap();
                entry.refreshes = entry.refreshes.max(n.parse().unwrap());
            }
            ["V", id] => acked.get_mut(*id).unwrap().revoked = true,
            _ => panic!("unexpected acknowledgement {line:?}"),
        }
    }
    assert!(
        !acks.is_empty(),
        "the child acknowledged nothing (did it fail to start?): {seen:?}"
    );
    acks.len()
}

/// Reopens the store and checks it against the acknowledgements.
async fn verify(path: &PathBuf, acked: &HashMap<String, Acknowledged>) {
    let store = RedbStorage::open(path).unwrap();
    let report = store.check_integrity().await.unwrap();
    assert!(
        report.is_consistent(),
        "indexes disagree with records: {report:#?}"
    );
    assert_eq!(report.orphan_tokens, 0, "a token outlived its grant");

    // Every acknowledged write is there.
    for (id, ack) in acked {
        let grant = store
            .get_grant(ZONE, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged grant {id} is gone"))
            .record;
        if ack.revoked {
            assert_eq!(grant.status, GrantStatus::Revoked, "grant {id} was revoked");
        }
        // Authorizing issues generation 1; each rotation counts one more.
        let refreshes = grant.refresh.generation.saturating_sub(1);
        assert!(
            refreshes >= u64::from(ack.refreshes),
            "grant {id}: {} refreshes acknowledged, {refreshes} stored",
            ack.refreshes
        );
        if ack.refreshes > 0 {
            assert!(grant.refreshed_at.is_some(), "grant {id}");
        }
    }
    let Some(client) = store.get_client(ZONE, CLIENT).await.unwrap() else {
        // Only in periodic mode, killed before its first durable commit: what
        // survives a crash is a prefix of the commits, and the client came first.
        assert!(acked.is_empty(), "the client is gone");
        assert_eq!(report.grants, 0, "grants survived without their client");
        return;
    };
    let client = client.record;
    // No operation of the child is slow enough for its tokens to expire.
    let now = chrono::Utc::now();

    // No grant breaks a lifecycle invariant.
    let mut position = Position::First;
    let mut grants = 0;
    loop {
        let page = store
            .list_grants(&GrantQuery {
                zone_id: ZONE.to_owned(),
                filter: GrantFilter::default(),
                order: SortOrder::Ascending,
                position: position.clone(),
                limit: 100,
                now: chrono::Utc::now(),
            })
            .await
            .unwrap();
        for stored in &page.items {
            grants += 1;
            let grant = &stored.record;
            let history = store.grant_history(ZONE, &grant.id).await.unwrap();
            let first = history
                .first()
                .unwrap_or_else(|| panic!("grant {} has no history", grant.id));
            assert_eq!(
                (first.reason, first.from),
                (TransitionReason::Created, None)
            );
            for pair in history.windows(2) {
                assert_eq!(
                    pair[1].from,
                    Some(pair[0].to),
                    "grant {}: {history:?}",
                    grant.id
                );
            }
            assert_eq!(
                history.last().map(|t| t.to),
                Some(grant.status),
                "grant {}",
                grant.id
            );
            assert!(grant.updated_at >= grant.created_at);
            let tokens = store.grant_tokens(ZONE, &grant.id).await.unwrap();
            // A rotation deletes the token it spends: one refresh token per grant,
            // whatever its history, and it is the grant's current one.
            let refresh: Vec<_> = tokens
                .iter()
                .filter(|t| t.record.kind == TokenKind::Refresh)
                .collect();
            assert_eq!(refresh.len(), 1, "grant {}: {refresh:?}", grant.id);
            assert!(refresh[0].record.is_current(grant), "grant {}", grant.id);
            assert_eq!(
                grant.refresh.current,
                Some(refresh[0].record.digest),
                "grant {}",
                grant.id
            );
            // Each authorization and rotation issued one access token.
            assert_eq!(
                tokens.len() as u64,
                grant.refresh.generation + 1,
                "grant {}",
                grant.id
            );
            let active = |t: &tenure::Versioned<tenure::Token>| {
                lifecycle::introspect(&t.record, grant, Some(&client), now).is_active()
            };
            match grant.status {
                GrantStatus::Active => {
                    assert!(grant.refresh_token_set, "grant {}", grant.id);
                    assert!(tokens.iter().all(active), "grant {}", grant.id);
                }
                GrantStatus::Revoked => {
                    assert!(!grant.refresh_token_set);
                    assert!(
                        !tokens.iter().any(active),
                        "revoked grant {} has an active token",
                        grant.id
                    );
                }
                GrantStatus::Expired => panic!("nothing expires in this test"),
            }
        }
        match (page.more_after, page.items.last()) {
            (true, Some(last)) => position = Position::After(tenure::Keyset::of(&last.record)),
            _ => break,
        }
    }
    assert!(
        grants >= acked.len(),
        "{grants} grants listed, {} acknowledged",
        acked.len()
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked = HashMap::new();
    let mut lines = 0;
    for _ in 0..cycles() {
        lines += run_and_kill(&path, "immediate", &mut acked);
        runtime.block_on(verify(&path, &acked));
    }
    assert!(
        lines >= cycles(),
        "every cycle acknowledged at least one write"
    );
    eprintln!(
        "{} kill cycles, {lines} acknowledged writes, {} grants",
        cycles(),
        acked.len()
    );
}

/// In `Periodic` mode a kill may lose the writes since the last durable commit, but
/// only whole write sets: after every kill the store opens, every index agrees with
/// the records, and no grant breaks an invariant (a lost rotation takes its tokens
/// with it, a lost revocation leaves the grant active with its tokens live).
#[test]
fn periodic_writes_are_lost_only_whole_under_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cycles = cycles().div_ceil(2);
    let mut lines = 0;
    for _ in 0..cycles {
        // Acknowledged writes may be gone: only the store's own consistency is held.
        lines += run_and_kill(&path, "periodic", &mut HashMap::new());
        runtime.block_on(verify(&path, &HashMap::new()));
    }
    eprintln!("{cycles} kill cycles in periodic mode, {lines} acknowledged writes");
}
