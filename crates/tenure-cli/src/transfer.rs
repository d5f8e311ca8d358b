//! `tenure export` and `tenure import`: JSON Lines, one record a line, streamed.
//!
//! # Line format
//!
//! Each line is one JSON object, `{"kind": K, "record": R}`, with `K` one of:
//!
//! - `client`: a client, as the HTTP API shows it, with its secret's digest and,
//!   after a rotation, the replaced secret's digest and deadline;
//! - `grant`: a grant in the seed's Grant shape, and next to its record its
//!   refresh-token rotation state, which the seed's shape leaves out:
//!   `{"kind": "grant", "record": R, "refresh": {"generation": N, "family": D,
//!   "current": D, "previous": D}}` (digests in hex; `family`, `current` and
//!   `previous` only when set). A grant line without `refresh`, as versions before
//!   it wrote, imports as [`RefreshChain::LEGACY`];
//! - `transition`: an entry of the history of the grant before it;
//! - `token`: a token of that grant, with only its digest (secrets are never
//!   stored, so never exported) and its refresh `generation`. A token line in the
//!   older form, with a `spent_at` time and no `generation`, still imports (see
//!   [`tenure::Token::legacy_generation`]);
//! - `personal_grant`: a personal grant.
//!
//! A grant's transitions and tokens follow it. Only grant lines carry `refresh`.
//! Device authorizations and authorization codes live minutes and are not exported. Import applies each
//! line as one write set, whole or not at all, and is idempotent: a record already
//! stored as it is in the file is left alone.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tenure::client::validate_client;
use tenure::{
    Client, Expect, Grant, GrantFilter, GrantQuery, Keyset, PersonalGrant, Position, RefreshChain,
    SortOrder, Storage, Token, Transition, Write, WriteSet, validate,
};

use crate::commands::ZoneArg;
use crate::error::CliError;
use crate::store::{Store, StoreArgs};

/// Records read or written per storage call.
const BATCH: usize = 100;

/// One line of an export: a record, and for a grant its refresh chain.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    record: Record,
    /// The grant's refresh-token rotation state; only on grant lines, and absent
    /// from those written before it was exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<RefreshChain>,
}

impl Line {
    /// A line of a record other than a grant.
    fn of(record: Record) -> Line {
        Line {
            record,
            refresh: None,
        }
    }

    /// A grant's line, its refresh chain next to its seed-shaped record.
    fn grant(grant: Grant) -> Line {
        Line {
            refresh: Some(grant.refresh),
            record: Record::Grant(grant),
        }
    }
}

/// The record of a line, tagged with its kind.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
enum Record {
    Client(Client),
    Grant(Grant),
    Transition(Transition),
    Token(Token),
    PersonalGrant(PersonalGrant),
}

fn progress(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg}: {pos} records ({per_sec})")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_message(message);
    bar
}

/// `tenure export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    zone: ZoneArg,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes the zone's records, streaming, in constant memory.
pub async fn export(args: &StoreArgs, a: ExportArgs) -> Result<(), CliError> {
    let store = Store::open(args).await?;
    let zone = a.zone.zone;
    validate::reference("zone", &zone)?;
    let bar = progress("exporting");
    let count = match &a.out {
        // Written to a temporary file beside the target and renamed over it once
        // complete and synced: a failed export never looks like a finished one.
        Some(p) => {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| CliError::io(p, e))?;
            let mut out = BufWriter::new(temp);
            let count =
                export_zone(store.storage().as_ref(), &zone, &mut out, p, || bar.inc(1)).await?;
            let temp = out
                .into_inner()
                .map_err(|e| CliError::io(p, e.into_error()))?;
            temp.as_file().sync_all().map_err(|e| CliError::io(p, e))?;
            temp.persist(p).map_err(|e| CliError::io(p, e.error))?;
            count
        }
        None => {
            let path = PathBuf::from("<stdout>");
            let mut out = BufWriter::new(std::io::stdout().lock());
            let count = export_zone(store.storage().as_ref(), &zone, &mut out, &path, || {
                bar.inc(1)
            })
            .await?;
            out.flush().map_err(|e| CliError::io(&path, e))?;
            count
        }
    };
    bar.finish_and_clear();
    eprintln!("exported {count} records of zone {zone}");
    Ok(())
}

/// Writes every record of `zone` to `out` as JSON Lines; returns how many.
pub async fn export_zone(
    storage: &dyn Storage,
    zone: &str,
    out: &mut dyn std::io::Write,
    path: &std::path::Path,
    mut on_record: impl FnMut(),
) -> Result<u64, CliError> {
    let mut count = 0;
    let mut emit = |line: &Line| -> Result<(), CliError> {
        serde_json::to_writer(&mut *out, line).map_err(|e| CliError::io(path, e.into()))?;
        out.write_all(b"\n").map_err(|e| CliError::io(path, e))?;
        count += 1;
        on_record();
        Ok(())
    };
    let mut after: Option<String> = None;
    loop {
        let clients = storage.list_clients(zone, after.as_deref(), BATCH).await?;
        for c in &clients {
            emit(&Line::of(Record::Client(c.record.clone())))?;
        }
        match clients.last() {
            Some(last) if clients.len() == BATCH => after = Some(last.record.id.clone()),
            _ => break,
        }
    }
    let mut position = Position::First;
    loop {
        let page = storage
            .list_grants(&GrantQuery {
                zone_id: zone.to_owned(),
                filter: GrantFilter::default(),
                order: SortOrder::Ascending,
                position: position.clone(),
                limit: BATCH,
                now: chrono::Utc::now(),
            })
            .await?;
        for g in &page.items {
            emit(&Line::grant(g.record.clone()))?;
            for t in storage.grant_history(zone, &g.record.id).await? {
                emit(&Line::of(Record::Transition(t)))?;
            }
            let mut tokens = storage.grant_tokens(zone, &g.record.id).await?;
            tokens.sort_by(|a, b| {
                (a.record.issued_at, a.record.digest).cmp(&(b.record.issued_at, b.record.digest))
            });
            for t in tokens {
                emit(&Line::of(Record::Token(t.record)))?;
            }
        }
        match page.items.last() {
            Some(last) if page.more_after => position = Position::After(Keyset::of(&last.record)),
            _ => break,
        }
    }
    let mut after: Option<String> = None;
    loop {
        let personal = storage
            .list_zone_personal_grants(zone, after.as_deref(), BATCH)
            .await?;
        for p in &personal {
            emit(&Line::of(Record::PersonalGrant(p.record.clone())))?;
        }
        match personal.last() {
            Some(last) if personal.len() == BATCH => after = Some(last.record.id.clone()),
            _ => break,
        }
    }
    Ok(count)
}

/// `tenure import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read here instead of standard input.
    #[arg(long = "in")]
    input: Option<PathBuf>,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Records that were not stored before.
    pub created: u64,
    /// Records stored differently before.
    pub updated: u64,
    /// Records already stored as they are in the file.
    pub unchanged: u64,
}

fn check_grant(g: &Grant) -> tenure::Result<()> {
    validate::reference("zone_id", &g.zone_id)?;
    validate::record_id("id", &g.id)?;
    validate::record_id("client_id", &g.client_id)?;
    for (field, value) in [
        ("organization_id", &g.organization_id),
        ("user_id", &g.user_id),
        ("resource_id", &g.resource_id),
        ("provider_id", &g.provider_id),
    ] {
        validate::reference(field, value)?;
    }
    validate::scopes("scopes", &g.scopes)?;
    Ok(())
}

fn check_personal_grant(p: &PersonalGrant) -> tenure::Result<()> {
    validate::reference("zone_id", &p.zone_id)?;
    validate::record_id("id", &p.id)?;
    validate::reference("user_id", &p.user_id)?;
    validate::scopes("scopes", &p.scopes)?;
    let challenge_ok = p.challenge.starts_with(tenure::personal::CHALLENGE_PREFIX)
        && (10..=100).contains(&p.challenge.len());
    if !challenge_ok {
        return Err(tenure::Error::invalid_input(
            "challenge",
            "must be auth-grant:… of 10 to 100 characters",
        ));
    }
    Ok(())
}

fn check_token(t: &Token) -> tenure::Result<()> {
    validate::reference("zone_id", &t.zone_id)?;
    validate::record_id("grant_id", &t.grant_id)?;
    validate::record_id("client_id", &t.client_id)?;
    validate::reference("user_id", &t.user_id)?;
    validate::scopes("scopes", &t.scopes)?;
    Ok(())
}

/// Writes `record` unless it is stored as it is: created, updated or unchanged.
async fn upsert(
    storage: &dyn Storage,
    current: Option<u64>,
    same: bool,
    write: impl FnOnce(Expect) -> Write,
    tally: &mut Tally,
) -> tenure::Result<()> {
    let expect = match current {
        Some(_) if same => {
            tally.unchanged += 1;
            return Ok(());
        }
        Some(v) => {
            tally.updated += 1;
            Expect::Version(v)
        }
        None => {
            tally.created += 1;
            Expect::Absent
        }
    };
    let mut set = WriteSet::new();
    set.push(write(expect));
    storage.apply(set).await
}

async fn apply_line(storage: &dyn Storage, line: Line, tally: &mut Tally) -> tenure::Result<()> {
    let Line { record, refresh } = line;
    if refresh.is_some() && !matches!(record, Record::Grant(_)) {
        return Err(tenure::Error::invalid_input(
            "refresh",
            "only a grant line carries a refresh chain",
        ));
    }
    match record {
        Record::Client(c) => {
            let c = validate_client(c)?;
            let stored = storage.get_client(&c.zone_id, &c.id).await?;
            let same = stored.as_ref().is_some_and(|s| s.record == c);
            upsert(
                storage,
                stored.map(|s| s.version),
                same,
                |expect| Write::PutClient { client: c, expect },
                tally,
            )
            .await
        }
        Record::Grant(mut g) => {
            g.refresh = refresh.unwrap_or(RefreshChain::LEGACY);
            check_grant(&g)?;
            let stored = storage.get_grant(&g.zone_id, &g.id).await?;
            let same = stored.as_ref().is_some_and(|s| s.record == g);
            upsert(
                storage,
                stored.map(|s| s.version),
                same,
                |expect| Write::PutGrant { grant: g, expect },
                tally,
            )
            .await
        }
        Record::Token(t) => {
            check_token(&t)?;
            if storage.get_grant(&t.zone_id, &t.grant_id).await?.is_none() {
                return Err(tenure::Error::not_found(
                    tenure::RecordKind::Grant,
                    t.grant_id,
                ));
            }
            let stored = storage.get_token(&t.zone_id, &t.digest).await?;
            let same = stored.as_ref().is_some_and(|s| s.record == t);
            upsert(
                storage,
                stored.map(|s| s.version),
                same,
                |expect| Write::PutToken { token: t, expect },
                tally,
            )
            .await
        }
        Record::PersonalGrant(p) => {
            check_personal_grant(&p)?;
            let stored = storage.get_personal_grant(&p.zone_id, &p.id).await?;
            let same = stored.as_ref().is_some_and(|s| s.record == p);
            upsert(
                storage,
                stored.map(|s| s.version),
                same,
                |expect| Write::PutPersonalGrant { grant: p, expect },
                tally,
            )
            .await
        }
        Record::Transition(t) => {
            validate::reference("zone_id", &t.zone_id)?;
            validate::record_id("grant_id", &t.grant_id)?;
            let Some(grant) = storage.get_grant(&t.zone_id, &t.grant_id).await? else {
                return Err(tenure::Error::not_found(
                    tenure::RecordKind::Grant,
                    t.grant_id,
                ));
            };
            if storage
                .grant_history(&t.zone_id, &t.grant_id)
                .await?
                .contains(&t)
            {
                tally.unchanged += 1;
                return Ok(());
            }
            tally.created += 1;
            // The grant's version guards the append, as the storage contract asks.
            let mut set = WriteSet::new();
            set.push(Write::PutGrant {
                grant: grant.record,
                expect: Expect::Version(grant.version),
            });
            set.push(Write::AppendTransition(t));
            storage.apply(set).await
        }
    }
}

/// Reads records written by `export`, streaming; stops at the first bad line,
/// naming it, with every earlier line applied and nothing of the bad one.
pub async fn import(args: &StoreArgs, a: ImportArgs) -> Result<(), CliError> {
    let store = Store::create(args).await?;
    let (reader, path): (Box<dyn BufRead>, PathBuf) = match &a.input {
        Some(p) => (
            Box::new(BufReader::new(
                File::open(p).map_err(|e| CliError::io(p, e))?,
            )),
            p.clone(),
        ),
        None => (
            Box::new(BufReader::new(std::io::stdin().lock())),
            PathBuf::from("<stdin>"),
        ),
    };
    let bar = progress("importing");
    let result = import_lines(store.storage().as_ref(), reader, &path, || bar.inc(1)).await;
    // What was applied before a bad line stays applied, and durable.
    store.flush().await?;
    bar.finish_and_clear();
    let tally = result?;
    eprintln!(
        "imported {} records: {} created, {} updated, {} unchanged",
        tally.created + tally.updated + tally.unchanged,
        tally.created,
        tally.updated,
        tally.unchanged
    );
    Ok(())
}

/// Applies JSON Lines from `reader`, each line whole or not at all.
pub async fn import_lines(
    storage: &dyn Storage,
    reader: impl BufRead,
    path: &std::path::Path,
    mut on_record: impl FnMut(),
) -> Result<Tally, CliError> {
    let mut tally = Tally::default();
    for (index, text) in reader.lines().enumerate() {
        let number = index + 1;
        let text = text.map_err(|e| CliError::io(path, e))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| CliError::Line {
            line: number,
            reason: e.to_string(),
        })?;
        apply_line(storage, line, &mut tally)
            .await
            .map_err(|e| CliError::Line {
                line: number,
                reason: e.to_string(),
            })?;
        on_record();
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tenure::{
        AuthorizeRequest, ClientRegistration, Engine, ListGrants, ManualClock, RefreshRequest,
    };
    use tenure_memory::MemoryStorage;
    use tenure_redb::RedbStorage;
    use tenure_sled::SledStorage;

    use super::*;

    async fn listing(storage: Arc<dyn Storage>) -> serde_json::Value {
        let engine = Engine::builder(storage).build();
        let page = engine
            .list_grants(
                "z",
                &ListGrants {
                    limit: Some(100),
                    ..ListGrants::default()
                },
            )
            .await
            .unwrap();
        serde_json::to_value(page.items).unwrap()
    }

    #[tokio::test]
    async fn export_from_memory_import_into_sled_gives_the_same_listing_twice() {
        let memory = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let engine = Engine::builder(Arc::new(memory.clone()))
            .clock(clock.clone())
            .build();
        // A client with seed 003's descriptive fields set, so that they travel too.
        engine
            .register_client(
                "z",
                ClientRegistration {
                    tenant: Some("acme-solar".into()),
                    business_name: Some("Acme Solar".into()),
                    homepage_url: Some("https://acme-solar.example/".into()),
                    internal: true,
                    strong_auth_supported: true,
                    claims_supported: true,
                    ..ClientRegistration::new("c")
                        .id("c")
                        .scopes(["read"])
                        .confidential()
                },
            )
            .await
            .unwrap();
        engine
            .create_personal_grant(
                "z",
                "a",
                tenure::NewPersonalGrant {
                    scope: Some("read".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for user in ["a", "b", "c"] {
            let issued = engine
                .authorize("z", AuthorizeRequest::new("c", user, "r", ["read"]))
                .await
                .unwrap();
            engine
                .refresh(
                    "z",
                    RefreshRequest::new("c", issued.refresh_token.as_ref().unwrap()),
                )
                .await
                .unwrap();
        }
        let mut file = Vec::new();
        let exported = export_zone(&memory, "z", &mut file, std::path::Path::new("mem"), || {})
            .await
            .unwrap();
        // 1 client; per grant: 1 grant, 1 transition (the latest refresh is the
        // grant's `refreshed_at`), 3 tokens (a rotation deletes the spent refresh
        // token's record); 1 personal grant.
        assert_eq!(exported, 1 + 3 * 5 + 1);

        let dir = tempfile::tempdir().unwrap();
        let sled = SledStorage::open(dir.path()).unwrap();
        let first = import_lines(&sled, &file[..], std::path::Path::new("f"), || {})
            .await
            .unwrap();
        assert_eq!(
            (first.created, first.updated, first.unchanged),
            (exported, 0, 0)
        );
        let again = import_lines(&sled, &file[..], std::path::Path::new("f"), || {})
            .await
            .unwrap();
        assert_eq!(
            (again.created, again.updated, again.unchanged),
            (0, 0, exported),
            "idempotent"
        );
        assert_eq!(
            listing(Arc::new(sled.clone())).await,
            listing(Arc::new(memory.clone())).await
        );
        // History and tokens came along: a token introspects the same on both.
        let mut back = Vec::new();
        export_zone(&sled, "z", &mut back, std::path::Path::new("sled"), || {})
            .await
            .unwrap();
        assert_eq!(back, file, "a round trip is byte for byte");
        let client = sled.get_client("z", "c").await.unwrap().unwrap().record;
        assert_eq!(
            Some(client),
            memory.get_client("z", "c").await.unwrap().map(|c| c.record),
            "the client arrives whole"
        );
    }

    /// An engine over `storage` on `clock`, with client `c` in zone `z` when asked.
    async fn engine_on(
        storage: Arc<dyn Storage>,
        clock: &Arc<ManualClock>,
        register: bool,
    ) -> Engine {
        let engine = Engine::builder(storage).clock(clock.clone()).build();
        if register {
            engine
                .register_client("z", ClientRegistration::new("c").id("c").scopes(["read"]))
                .await
                .unwrap();
        }
        engine
    }

    #[tokio::test]
    async fn a_rotated_grant_keeps_its_refresh_chain_across_export_and_import_into_sled() {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStorage::open(dir.path()).unwrap();
        a_rotated_grant_keeps_its_refresh_chain(Arc::new(sled)).await;
    }

    #[tokio::test]
    async fn a_rotated_grant_keeps_its_refresh_chain_across_export_and_import_into_redb() {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStorage::open(dir.path()).unwrap();
        a_rotated_grant_keeps_its_refresh_chain(Arc::new(redb)).await;
    }

    /// A grant rotated three times on memory, exported and imported into `target`:
    /// its current refresh token refreshes there, and a spent one is reuse.
    async fn a_rotated_grant_keeps_its_refresh_chain(target: Arc<dyn Storage>) {
        let memory = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let engine = engine_on(Arc::new(memory.clone()), &clock, true).await;
        let mut issued = engine
            .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
            .await
            .unwrap();
        let mut spent = Vec::new();
        for _ in 0..3 {
            clock.advance(chrono::Duration::seconds(1));
            let token = issued.refresh_token.clone().unwrap();
            issued = engine
                .refresh("z", RefreshRequest::new("c", &token))
                .await
                .unwrap();
            spent.push(token);
        }
        let mut file = Vec::new();
        export_zone(&memory, "z", &mut file, std::path::Path::new("mem"), || {})
            .await
            .unwrap();
        let grant_line: serde_json::Value = String::from_utf8(file.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["kind"] == "grant")
            .unwrap();
        assert_eq!(grant_line["refresh"]["generation"], 4);
        assert!(
            grant_line["record"].get("refresh").is_none(),
            "the seed's Grant shape is unchanged"
        );

        import_lines(target.as_ref(), &file[..], std::path::Path::new("f"), || {})
            .await
            .unwrap();
        let imported = target
            .get_grant("z", &issued.grant.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(imported.record, issued.grant.clone());
        let target = engine_on(target, &clock, false).await;
        clock.advance(chrono::Duration::seconds(1));
        let current = issued.refresh_token.clone().unwrap();
        let next = target
            .refresh("z", RefreshRequest::new("c", &current))
            .await
            .unwrap();
        assert!(
            target
                .introspect("z", next.access_token.expose())
                .await
                .unwrap()
                .is_active()
        );
        let reuse = target
            .refresh("z", RefreshRequest::new("c", &spent[0]))
            .await;
        assert!(
            matches!(reuse, Err(tenure::Error::RefreshTokenReused { .. })),
            "{reuse:?}"
        );
        assert_eq!(
            target
                .get_grant("z", &issued.grant.id)
                .await
                .unwrap()
                .status,
            tenure::GrantStatus::Revoked
        );
    }

    #[tokio::test]
    async fn an_export_written_before_refresh_chains_imports_as_legacy() {
        use tenure::{Secret, SecretKind};
        // The client and the grant as an older version exported them: the grant in
        // the seed's shape with no `refresh`, tokens with `spent_at` and no
        // `generation`, refresh tokens without a reference in their text.
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let scratch = MemoryStorage::new();
        let engine = engine_on(Arc::new(scratch.clone()), &clock, true).await;
        let grant = engine
            .authorize("z", AuthorizeRequest::new("c", "alice", "r", ["read"]))
            .await
            .unwrap()
            .grant;
        let client = engine.get_client("z", "c").await.unwrap();
        let spent = Secret::generate(SecretKind::RefreshToken).unwrap();
        let live = Secret::generate(SecretKind::RefreshToken).unwrap();
        let at = |t: tenure::Timestamp| tenure::time::format_rfc3339(&t);
        let token = |secret: &Secret, spent_at: Option<tenure::Timestamp>| {
            let mut t = serde_json::json!({
                "digest": secret.digest(),
                "zone_id": "z",
                "grant_id": grant.id,
                "client_id": "c",
                "user_id": "alice",
                "kind": "refresh",
                "scopes": ["read"],
                "issued_at": at(grant.created_at),
                "expires_at": at(grant.expires_at),
            });
            if let Some(s) = spent_at {
                t["spent_at"] = serde_json::json!(at(s));
            }
            serde_json::json!({"kind": "token", "record": t}).to_string()
        };
        let lines = [
            serde_json::json!({"kind": "client", "record": client}).to_string(),
            serde_json::json!({"kind": "grant", "record": grant}).to_string(),
            token(&spent, Some(grant.created_at)),
            token(&live, None),
        ];
        assert!(!lines[1].contains("refresh\":"), "{}", lines[1]);
        let text = lines.join("\n");

        let memory = MemoryStorage::new();
        import_lines(&memory, text.as_bytes(), std::path::Path::new("old"), || {})
            .await
            .unwrap();
        let stored = memory.get_grant("z", &grant.id).await.unwrap().unwrap();
        assert_eq!(stored.record.refresh, tenure::RefreshChain::LEGACY);
        let stored_spent = memory
            .get_token("z", &spent.digest())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored_spent.record.generation,
            tenure::Token::legacy_generation(true)
        );
        let target = engine_on(Arc::new(memory.clone()), &clock, false).await;
        assert!(
            target
                .introspect("z", live.expose())
                .await
                .unwrap()
                .is_active()
        );
        assert!(
            !target
                .introspect("z", spent.expose())
                .await
                .unwrap()
                .is_active()
        );
        clock.advance(chrono::Duration::seconds(1));
        let rotated = target
            .refresh("z", RefreshRequest::new("c", &live))
            .await
            .unwrap();
        assert!(rotated.refresh_token.unwrap().refresh_reference().is_some());
        let reuse = target.refresh("z", RefreshRequest::new("c", &spent)).await;
        assert!(
            matches!(reuse, Err(tenure::Error::RefreshTokenReused { .. })),
            "{reuse:?}"
        );
    }

    #[tokio::test]
    async fn only_a_grant_line_carries_a_refresh_chain() {
        let memory = MemoryStorage::new();
        let line = r#"{"kind":"client","record":{"id":"c","zone_id":"z","organization_id":"o","name":"C","client_type":"public","allowed_scopes":["read"],"allowed_grants":["refresh_token"],"scope_policy":"explicit","access_type":"offline","access_token_ttl_seconds":60,"refresh_token_ttl_seconds":60,"enabled":true,"created_at":"2030-01-01T00:00:00.000Z","updated_at":"2030-01-01T00:00:00.000Z"},"refresh":{"generation":1}}"#;
        let err = import_lines(&memory, line.as_bytes(), std::path::Path::new("f"), || {})
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: invalid refresh"),
            "{err}"
        );
        assert!(memory.list_clients("z", None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_bad_line_is_named_and_applies_nothing() {
        let memory = MemoryStorage::new();
        let good = r#"{"kind":"client","record":{"id":"c","zone_id":"z","organization_id":"o","name":"C","client_type":"public","allowed_scopes":["read"],"allowed_grants":["refresh_token"],"scope_policy":"explicit","access_type":"offline","access_token_ttl_seconds":60,"refresh_token_ttl_seconds":60,"enabled":true,"created_at":"2030-01-01T00:00:00.000Z","updated_at":"2030-01-01T00:00:00.000Z"}}"#;
        for (bad, fragment) in [
            ("{not json", "line 2"),
            (r#"{"kind":"spaceship","record":{}}"#, "line 2"),
            (
                &good.replace("\"c\",\"zone_id\"", "\"\",\"zone_id\""),
                "line 2: invalid id",
            ),
            (
                &good.replace(
                    "\"access_token_ttl_seconds\":60",
                    "\"access_token_ttl_seconds\":0",
                ),
                "line 2: invalid access_token_ttl_seconds",
            ),
        ] {
            let text = format!("{good}\n{bad}\n");
            let err = import_lines(&memory, text.as_bytes(), std::path::Path::new("f"), || {})
                .await
                .unwrap_err();
            assert!(err.to_string().starts_with(fragment), "{err}");
        }
        // The good line was applied once; no bad line left anything.
        assert_eq!(memory.list_clients("z", None, 10).await.unwrap().len(), 1);
    }
}
