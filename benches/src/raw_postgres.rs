//! The raw baseline of the PostgreSQL backend: plain tables with typed columns,
//! queried by hand with tokio-postgres over one connection.
//!
//! - `grants`: every field in a column of its own (times as milliseconds, enums
//!   as `smallint`), with indexes on `(user_id, created_at, id)` and on
//!   `(expires_at, id)` of active grants;
//! - `tokens`: keyed by digest (`bytea`), indexed by `(expires_at, digest)` for
//!   pruning expired ones;
//! - `history`: transitions in insertion order, indexed by grant;
//! - `clients`: keyed by id.
//!
//! Every statement is prepared once. A token is looked up with its grant in one
//! join. A write operation is one transaction sent the way the engine's backend
//! sends a write set: `BEGIN`, its statements in one pipeline, `COMMIT`; expired
//! tokens are pruned by one set-based `DELETE` through their expiry index.
//! Fixtures are loaded with `COPY`.
//!
//! One caller at a time: transactions are begun and committed on the shared
//! connection.

use std::future::Future;
use std::pin::{Pin, pin};

use futures_util::future::try_join_all;
use tenure::{Client, Digest, Grant, Timestamp, TransitionReason};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Statement};

use crate::fixture::{self, Family};
use crate::postgres::DropSchema;
use crate::raw_sled::{
    ACTIVE, EXPIRED, REVOKED, RawClient, RawGrant, RawToken, RawTransition, reason,
};
use crate::{OrDie, RawStore};

const GRANT_COLUMNS: [&str; 18] = [
    "id",
    "zone_id",
    "organization_id",
    "user_id",
    "resource_id",
    "provider_id",
    "client_id",
    "scopes",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "refreshed_at",
    "refresh_token_set",
    "refresh_generation",
    "refresh_family",
    "refresh_current",
    "refresh_previous",
];

const TOKEN_COLUMNS: [&str; 11] = [
    "digest",
    "zone_id",
    "grant_id",
    "client_id",
    "user_id",
    "kind",
    "scopes",
    "issued_at",
    "expires_at",
    "generation",
    "revoked_at",
];

const HISTORY_COLUMNS: [&str; 8] = [
    "zone_id",
    "grant_id",
    "from_status",
    "to_status",
    "reason",
    "actor_kind",
    "actor_id",
    "at",
];

const CLIENT_COLUMNS: [&str; 20] = [
    "id",
    "zone_id",
    "organization_id",
    "name",
    "description",
    "client_type",
    "owner_account_id",
    "allowed_scopes",
    "allowed_grants",
    "scope_policy",
    "access_type",
    "access_token_ttl",
    "refresh_token_ttl",
    "redirect_uris",
    "enabled",
    "secret_digest",
    "created_at",
    "updated_at",
    "refresh_stopped_at",
    "last_used_at",
];

/// The tables, in schema `{s}` (quoted).
const TABLES: &str = r#"
CREATE SCHEMA {s};
CREATE TABLE {s}.clients (
    id text COLLATE "C" PRIMARY KEY,
    zone_id text NOT NULL,
    organization_id text NOT NULL,
    name text NOT NULL,
    description text,
    client_type smallint NOT NULL,
    owner_account_id text,
    allowed_scopes text[] NOT NULL,
    allowed_grants smallint[] NOT NULL,
    scope_policy smallint NOT NULL,
    access_type smallint NOT NULL,
    access_token_ttl integer NOT NULL,
    refresh_token_ttl integer NOT NULL,
    redirect_uris text[] NOT NULL,
    enabled boolean NOT NULL,
    secret_digest bytea,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    refresh_stopped_at bigint,
    last_used_at bigint
);
CREATE TABLE {s}.grants (
    id text COLLATE "C" PRIMARY KEY,
    zone_id text NOT NULL,
    organization_id text NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    resource_id text NOT NULL,
    provider_id text NOT NULL,
    client_id text NOT NULL,
    scopes text[] NOT NULL,
    status smallint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    refreshed_at bigint,
    refresh_token_set boolean NOT NULL,
    refresh_generation bigint NOT NULL,
    refresh_family bytea,
    refresh_current bytea,
    refresh_previous bytea
);
CREATE INDEX grants_by_user ON {s}.grants (user_id, created_at, id);
CREATE INDEX grants_by_expiry ON {s}.grants (expires_at, id) WHERE status = 0;
CREATE TABLE {s}.tokens (
    digest bytea PRIMARY KEY,
    zone_id text NOT NULL,
    grant_id text COLLATE "C" NOT NULL,
    client_id text NOT NULL,
    user_id text NOT NULL,
    kind smallint NOT NULL,
    scopes text[] NOT NULL,
    issued_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    generation bigint NOT NULL,
    revoked_at bigint
);
CREATE INDEX tokens_by_expiry ON {s}.tokens (expires_at, digest);
CREATE TABLE {s}.history (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id text NOT NULL,
    grant_id text COLLATE "C" NOT NULL,
    from_status smallint,
    to_status smallint NOT NULL,
    reason smallint NOT NULL,
    actor_kind smallint NOT NULL,
    actor_id text,
    at bigint NOT NULL
);
CREATE INDEX history_by_grant ON {s}.history (grant_id, seq);
"#;

/// `a, b, c`, each prefixed with `{prefix}.` if one is given.
fn list(columns: &[&str], prefix: &str) -> String {
    columns
        .iter()
        .map(|c| {
            if prefix.is_empty() {
                (*c).to_owned()
            } else {
                format!("{prefix}.{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every statement, prepared once.
#[derive(Debug)]
struct Statements {
    get_client: Statement,
    insert_client: Statement,
    insert_grant: Statement,
    insert_token: Statement,
    insert_history: Statement,
    get_grant: Statement,
    token_and_grant: Statement,
    page: Statement,
    due: Statement,
    delete_token: Statement,
    refresh_grant: Statement,
    use_client: Statement,
    revoke_grant: Statement,
    expire_grant: Statement,
    prune_tokens: Statement,
}

impl Statements {
    async fn prepare(client: &tokio_postgres::Client, s: &str) -> Self {
        let (grant, token, history, clients) = (
            list(&GRANT_COLUMNS, ""),
            list(&TOKEN_COLUMNS, ""),
            list(&HISTORY_COLUMNS, ""),
            list(&CLIENT_COLUMNS, ""),
        );
        let sql = [
            format!("SELECT {clients} FROM {s}.clients WHERE id = $1"),
            format!(
                "INSERT INTO {s}.clients ({clients}) VALUES ({})",
                placeholders(CLIENT_COLUMNS.len())
            ),
            format!(
                "INSERT INTO {s}.grants ({grant}) VALUES ({})",
                placeholders(GRANT_COLUMNS.len())
            ),
            format!(
                "INSERT INTO {s}.tokens ({token}) VALUES ({})",
                placeholders(TOKEN_COLUMNS.len())
            ),
            format!(
                "INSERT INTO {s}.history ({history}) VALUES ({})",
                placeholders(HISTORY_COLUMNS.len())
            ),
            format!("SELECT {grant} FROM {s}.grants WHERE id = $1"),
            format!(
                "SELECT {}, {} FROM {s}.tokens t JOIN {s}.grants g ON g.id = t.grant_id \
                 WHERE t.digest = $1",
                list(&TOKEN_COLUMNS, "t"),
                list(&GRANT_COLUMNS, "g"),
            ),
            format!(
                "SELECT {grant} FROM {s}.grants WHERE user_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            format!(
                "SELECT id, zone_id, expires_at FROM {s}.grants \
                 WHERE status = {ACTIVE} AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2"
            ),
            format!("DELETE FROM {s}.tokens WHERE digest = $1"),
            format!(
                "UPDATE {s}.grants SET refreshed_at = $2, updated_at = $2, \
                 refresh_generation = $3, refresh_current = $4, refresh_previous = $5 \
                 WHERE id = $1"
            ),
            format!("UPDATE {s}.clients SET last_used_at = $2 WHERE id = $1"),
            format!(
                "UPDATE {s}.grants SET status = {REVOKED}, refresh_token_set = false, \
                 updated_at = $2 WHERE id = $1"
            ),
            format!(
                "UPDATE {s}.grants SET status = {EXPIRED}, refresh_token_set = false, \
                 updated_at = expires_at WHERE id = $1"
            ),
            format!(
                "DELETE FROM {s}.tokens WHERE digest IN (SELECT digest FROM {s}.tokens \
                 WHERE expires_at <= $1 ORDER BY expires_at, digest LIMIT $2)"
            ),
        ];
        let mut prepared = Vec::with_capacity(sql.len());
        for q in &sql {
            prepared.push(client.prepare(q).await.or_die("preparing a raw statement"));
        }
        let mut p = prepared.into_iter();
        let mut next = || p.next().or_die("a prepared statement");
        Statements {
            get_client: next(),
            insert_client: next(),
            insert_grant: next(),
            insert_token: next(),
            insert_history: next(),
            get_grant: next(),
            token_and_grant: next(),
            page: next(),
            due: next(),
            delete_token: next(),
            refresh_grant: next(),
            use_client: next(),
            revoke_grant: next(),
            expire_grant: next(),
            prune_tokens: next(),
        }
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

/// A statement under way in a pipeline.
type Pending<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

fn grant_of(row: &Row, at: usize) -> RawGrant {
    RawGrant {
        id: row.get(at),
        zone_id: row.get(at + 1),
        organization_id: row.get(at + 2),
        user_id: row.get(at + 3),
        resource_id: row.get(at + 4),
        provider_id: row.get(at + 5),
        client_id: row.get(at + 6),
        scopes: row.get(at + 7),
        status: row.get::<_, i16>(at + 8) as u8,
        created_ms: row.get(at + 9),
        updated_ms: row.get(at + 10),
        expires_ms: row.get(at + 11),
        refreshed_ms: row.get(at + 12),
        refresh_token_set: row.get(at + 13),
        generation: row.get::<_, i64>(at + 14) as u64,
        family: row.get::<_, Option<&[u8]>>(at + 15).map(digest_of),
        current: row.get::<_, Option<&[u8]>>(at + 16).map(digest_of),
        previous: row.get::<_, Option<&[u8]>>(at + 17).map(digest_of),
    }
}

fn digest_of(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().or_die("a 32-byte digest")
}

fn token_of(row: &Row, at: usize) -> RawToken {
    RawToken {
        digest: digest_of(row.get(at)),
        zone_id: row.get(at + 1),
        grant_id: row.get(at + 2),
        client_id: row.get(at + 3),
        user_id: row.get(at + 4),
        kind: row.get::<_, i16>(at + 5) as u8,
        scopes: row.get(at + 6),
        issued_ms: row.get(at + 7),
        expires_ms: row.get(at + 8),
        generation: row.get::<_, i64>(at + 9) as u64,
        revoked_ms: row.get(at + 10),
    }
}

fn client_of(row: &Row) -> RawClient {
    RawClient {
        id: row.get(0),
        zone_id: row.get(1),
        organization_id: row.get(2),
        name: row.get(3),
        description: row.get(4),
        client_type: row.get::<_, i16>(5) as u8,
        owner_account_id: row.get(6),
        allowed_scopes: row.get(7),
        allowed_grants: row
            .get::<_, Vec<i16>>(8)
            .into_iter()
            .map(|g| g as u8)
            .collect(),
        scope_policy: row.get::<_, i16>(9) as u8,
        access_type: row.get::<_, i16>(10) as u8,
        access_token_ttl_seconds: row.get::<_, i32>(11) as u32,
        refresh_token_ttl_seconds: row.get::<_, i32>(12) as u32,
        redirect_uris: row.get(13),
        enabled: row.get(14),
        secret_digest: row.get::<_, Option<&[u8]>>(15).map(digest_of),
        created_ms: row.get(16),
        updated_ms: row.get(17),
        refresh_stopped_ms: row.get(18),
        last_used_ms: row.get(19),
    }
}

/// A grant's columns as parameters (`status`, the generation and the chain's
/// digests kept alongside, as PostgreSQL takes them).
struct GrantRow<'a> {
    grant: &'a RawGrant,
    status: i16,
    generation: i64,
    chain: [Option<&'a [u8]>; 3],
}

impl<'a> GrantRow<'a> {
    fn new(grant: &'a RawGrant) -> Self {
        GrantRow {
            grant,
            status: i16::from(grant.status),
            generation: grant.generation as i64,
            chain: [
                grant.family.as_ref().map(|d| d.as_slice()),
                grant.current.as_ref().map(|d| d.as_slice()),
                grant.previous.as_ref().map(|d| d.as_slice()),
            ],
        }
    }

    fn params(&self) -> [Param<'_>; 18] {
        let g = self.grant;
        [
            &g.id,
            &g.zone_id,
            &g.organization_id,
            &g.user_id,
            &g.resource_id,
            &g.provider_id,
            &g.client_id,
            &g.scopes,
            &self.status,
            &g.created_ms,
            &g.updated_ms,
            &g.expires_ms,
            &g.refreshed_ms,
            &g.refresh_token_set,
            &self.generation,
            &self.chain[0],
            &self.chain[1],
            &self.chain[2],
        ]
    }
}

/// A token's columns as parameters.
struct TokenRow<'a> {
    token: &'a RawToken,
    digest: &'a [u8],
    kind: i16,
    generation: i64,
}

impl<'a> TokenRow<'a> {
    fn new(token: &'a RawToken) -> Self {
        TokenRow {
            token,
            digest: &token.digest,
            kind: i16::from(token.kind),
            generation: token.generation as i64,
        }
    }

    fn params(&self) -> [Param<'_>; 11] {
        let t = self.token;
        [
            &self.digest,
            &t.zone_id,
            &t.grant_id,
            &t.client_id,
            &t.user_id,
            &self.kind,
            &t.scopes,
            &t.issued_ms,
            &t.expires_ms,
            &self.generation,
            &t.revoked_ms,
        ]
    }
}

/// A transition's columns as parameters.
struct HistoryRow<'a> {
    t: &'a RawTransition,
    from: Option<i16>,
    to: i16,
    reason: i16,
    actor_kind: i16,
}

impl<'a> HistoryRow<'a> {
    fn new(t: &'a RawTransition) -> Self {
        HistoryRow {
            t,
            from: t.from.map(i16::from),
            to: i16::from(t.to),
            reason: i16::from(t.reason),
            actor_kind: i16::from(t.actor_kind),
        }
    }

    fn params(&self) -> [Param<'_>; 8] {
        let t = self.t;
        [
            &t.zone_id,
            &t.grant_id,
            &self.from,
            &self.to,
            &self.reason,
            &self.actor_kind,
            &t.actor_id,
            &t.at_ms,
        ]
    }
}

/// A client's columns as parameters.
struct ClientRow<'a> {
    c: &'a RawClient,
    small: [i16; 3],
    grants: Vec<i16>,
    ttls: [i32; 2],
    secret: Option<&'a [u8]>,
}

impl<'a> ClientRow<'a> {
    fn new(c: &'a RawClient) -> Self {
        ClientRow {
            c,
            small: [
                i16::from(c.client_type),
                i16::from(c.scope_policy),
                i16::from(c.access_type),
            ],
            grants: c.allowed_grants.iter().map(|g| i16::from(*g)).collect(),
            ttls: [
                c.access_token_ttl_seconds as i32,
                c.refresh_token_ttl_seconds as i32,
            ],
            secret: c.secret_digest.as_ref().map(|d| d.as_slice()),
        }
    }

    fn params(&self) -> [Param<'_>; 20] {
        let c = self.c;
        [
            &c.id,
            &c.zone_id,
            &c.organization_id,
            &c.name,
            &c.description,
            &self.small[0],
            &c.owner_account_id,
            &c.allowed_scopes,
            &self.grants,
            &self.small[1],
            &self.small[2],
            &self.ttls[0],
            &self.ttls[1],
            &c.redirect_uris,
            &c.enabled,
            &self.secret,
            &c.created_ms,
            &c.updated_ms,
            &c.refresh_stopped_ms,
            &c.last_used_ms,
        ]
    }
}

/// The types of the columns of `grants`, `tokens` and `history`, for `COPY`.
fn types(columns: &[&str]) -> Vec<Type> {
    columns
        .iter()
        .map(|c| match *c {
            "scopes" => Type::TEXT_ARRAY,
            "digest" | "refresh_family" | "refresh_current" | "refresh_previous" => Type::BYTEA,
            "refresh_token_set" => Type::BOOL,
            "status" | "kind" | "from_status" | "to_status" | "reason" | "actor_kind" => Type::INT2,
            "created_at" | "updated_at" | "expires_at" | "refreshed_at" | "issued_at"
            | "revoked_at" | "at" | "generation" | "refresh_generation" => Type::INT8,
            _ => Type::TEXT,
        })
        .collect()
}

/// A hand-written grant store on plain PostgreSQL tables, in a schema of its own
/// (dropped with the store).
#[derive(Debug)]
pub struct RawPostgres {
    client: tokio_postgres::Client,
    st: Statements,
    schema: String,
    /// Dropped after the connection.
    _drop: DropSchema,
}

impl RawPostgres {
    /// Connects to `url`, runs the connection on `runtime`, and creates the tables
    /// in the schema `guard` drops.
    pub fn connect(runtime: &tokio::runtime::Runtime, url: &str, guard: DropSchema) -> Self {
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
            .or_die("connecting raw PostgreSQL");
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("raw PostgreSQL connection: {e}");
            }
        });
        let schema = format!("\"{}\"", guard.schema());
        let st = runtime.block_on(async {
            client
                .batch_execute(&TABLES.replace("{s}", &schema))
                .await
                .or_die("creating the raw tables");
            Statements::prepare(&client, &schema).await
        });
        RawPostgres {
            client,
            st,
            schema,
            _drop: guard,
        }
    }

    /// Runs `statements` in one transaction: `BEGIN`, the statements in one
    /// pipeline, `COMMIT`.
    async fn transaction(&self, statements: Vec<Pending<'_>>) {
        self.client.batch_execute("BEGIN").await.or_die("BEGIN");
        try_join_all(statements).await.or_die("a raw write");
        self.client.batch_execute("COMMIT").await.or_die("COMMIT");
    }

    fn execute<'a, const N: usize>(
        &'a self,
        st: &'a Statement,
        params: [Param<'a>; N],
    ) -> Pending<'a> {
        Box::pin(self.client.execute_raw(st, params))
    }

    /// Copies rows into `table` (not timed: fixtures).
    async fn copy<const N: usize>(
        &self,
        table: &str,
        columns: &[&str; N],
        rows: Vec<[Param<'_>; N]>,
    ) {
        if rows.is_empty() {
            return;
        }
        let sql = format!(
            "COPY {}.{table} ({}) FROM STDIN BINARY",
            self.schema,
            list(columns, "")
        );
        let sink = self.client.copy_in(&sql).await.or_die("starting a COPY");
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types(columns)));
        for row in &rows {
            writer.as_mut().write(row).await.or_die("copying a row");
        }
        writer.finish().await.or_die("finishing a COPY");
    }

    async fn put(&self, grants: &[RawGrant], tokens: &[RawToken], history: &[RawTransition]) {
        let g: Vec<GrantRow<'_>> = grants.iter().map(GrantRow::new).collect();
        let t: Vec<TokenRow<'_>> = tokens.iter().map(TokenRow::new).collect();
        let h: Vec<HistoryRow<'_>> = history.iter().map(HistoryRow::new).collect();
        self.copy(
            "grants",
            &GRANT_COLUMNS,
            g.iter().map(GrantRow::params).collect(),
        )
        .await;
        self.copy(
            "tokens",
            &TOKEN_COLUMNS,
            t.iter().map(TokenRow::params).collect(),
        )
        .await;
        self.copy(
            "history",
            &HISTORY_COLUMNS,
            h.iter().map(HistoryRow::params).collect(),
        )
        .await;
    }

    async fn token_and_grant(&self, presented: &str) -> Option<(RawToken, RawGrant)> {
        let digest = Digest::of(presented);
        let key: &[u8] = digest.as_bytes();
        let row = self
            .client
            .query_opt(&self.st.token_and_grant, &[&key])
            .await
            .or_die("reading a token")?;
        Some((token_of(&row, 0), grant_of(&row, TOKEN_COLUMNS.len())))
    }

    async fn client(&self, id: &str) -> Option<RawClient> {
        let row = self
            .client
            .query_opt(&self.st.get_client, &[&id])
            .await
            .or_die("reading a client")?;
        Some(client_of(&row))
    }
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

impl RawStore for RawPostgres {
    async fn put_client(&self, client: Client) {
        let c = RawClient::of(&client);
        let row = ClientRow::new(&c);
        self.client
            .execute_raw(&self.st.insert_client, row.params())
            .await
            .or_die("writing a client");
    }

    async fn load_families(&self, families: Vec<Family>) {
        let grants: Vec<RawGrant> = families.iter().map(|f| RawGrant::of(&f.grant)).collect();
        let tokens: Vec<RawToken> = families
            .iter()
            .flat_map(|f| f.tokens.iter().map(RawToken::of))
            .collect();
        let history: Vec<RawTransition> = families
            .iter()
            .flat_map(|f| f.transitions.iter().map(RawTransition::of))
            .collect();
        self.put(&grants, &tokens, &history).await;
    }

    async fn load_grants(&self, grants: Vec<Grant>) {
        let grants: Vec<RawGrant> = grants.iter().map(RawGrant::of).collect();
        self.put(&grants, &[], &[]).await;
    }

    async fn introspect(&self, presented: &str, now: Timestamp) -> bool {
        let Some((token, grant)) = self.token_and_grant(presented).await else {
            return false;
        };
        token.live_under(&grant, ms(now))
    }

    async fn authorize(&self, i: u64, now: Timestamp) {
        let Some(client) = self.client(fixture::CLIENT).await else {
            return;
        };
        let mut f = fixture::family(i, 1);
        f.grant.client_id = client.id.clone();
        f.grant.created_at = now;
        let grant = RawGrant::of(&f.grant);
        let tokens: Vec<RawToken> = f.tokens.iter().map(RawToken::of).collect();
        let history: Vec<RawTransition> = f.transitions.iter().map(RawTransition::of).collect();
        let g = GrantRow::new(&grant);
        let t: Vec<TokenRow<'_>> = tokens.iter().map(TokenRow::new).collect();
        let h: Vec<HistoryRow<'_>> = history.iter().map(HistoryRow::new).collect();
        let now_ms = ms(now);
        let mut statements = vec![self.execute(&self.st.insert_grant, g.params())];
        statements.extend(
            t.iter()
                .map(|t| self.execute(&self.st.insert_token, t.params())),
        );
        statements.extend(
            h.iter()
                .map(|h| self.execute(&self.st.insert_history, h.params())),
        );
        if client.use_due(now_ms) {
            statements.push(self.execute(&self.st.use_client, [&client.id, &now_ms]));
        }
        self.transaction(statements).await;
    }

    async fn refresh(&self, presented: &str, i: u64, now: Timestamp) -> Option<String> {
        let (token, grant) = self.token_and_grant(presented).await?;
        let client = self.client(&token.client_id).await?;
        let now_ms = ms(now);
        if !token.rotatable(&grant, &client, now_ms) {
            return None;
        }
        // The spent token is the grant's current one, which is the one presented.
        let spent: &[u8] = &token.digest;
        let mut next = grant;
        let (fresh, refresh) = next.rotate(i, token.digest, now_ms);
        let fresh_rows = [TokenRow::new(&fresh[0]), TokenRow::new(&fresh[1])];
        let generation = next.generation as i64;
        let (current, previous): (&[u8], &[u8]) = (&fresh[1].digest, &token.digest);
        let mut statements = vec![self.execute(
            &self.st.refresh_grant,
            [&next.id, &now_ms, &generation, &current, &previous],
        )];
        statements.push(self.execute(&self.st.delete_token, [&spent]));
        statements.extend(
            fresh_rows
                .iter()
                .map(|t| self.execute(&self.st.insert_token, t.params())),
        );
        if client.use_due(now_ms) {
            statements.push(self.execute(&self.st.use_client, [&client.id, &now_ms]));
        }
        self.transaction(statements).await;
        Some(refresh)
    }

    async fn revoke(&self, grant_id: &str, now: Timestamp) -> bool {
        let Some(row) = self
            .client
            .query_opt(&self.st.get_grant, &[&grant_id])
            .await
            .or_die("reading a grant")
        else {
            return false;
        };
        let grant = grant_of(&row, 0);
        let now_ms = ms(now);
        if !grant.active_at(now_ms) {
            return false;
        }
        let transition = RawTransition {
            zone_id: grant.zone_id.clone(),
            grant_id: grant.id.clone(),
            from: Some(ACTIVE),
            to: REVOKED,
            reason: reason(TransitionReason::Revoked),
            actor_kind: 1,
            actor_id: None,
            at_ms: now_ms,
        };
        let history = HistoryRow::new(&transition);
        self.transaction(vec![
            self.execute(&self.st.revoke_grant, [&grant.id, &now_ms]),
            self.execute(&self.st.insert_history, history.params()),
        ])
        .await;
        true
    }

    async fn page(&self, user_id: &str, limit: usize) -> usize {
        let items: Vec<RawGrant> = self
            .client
            .query(&self.st.page, &[&user_id, &(limit as i64 + 1)])
            .await
            .or_die("reading a page")
            .iter()
            .map(|row| grant_of(row, 0))
            .collect();
        items.len().min(limit)
    }

    async fn sweep(&self, now: Timestamp, limit: usize) -> usize {
        let (now_ms, limit) = (ms(now), limit as i64);
        let due = self
            .client
            .query(&self.st.due, &[&now_ms, &limit])
            .await
            .or_die("reading expired grants");
        for row in &due {
            let (id, zone_id, expires_ms): (String, String, i64) =
                (row.get(0), row.get(1), row.get(2));
            let transition = RawTransition {
                zone_id,
                grant_id: id.clone(),
                from: Some(ACTIVE),
                to: EXPIRED,
                reason: reason(TransitionReason::Expired),
                actor_kind: 0,
                actor_id: None,
                at_ms: expires_ms,
            };
            let history = HistoryRow::new(&transition);
            self.transaction(vec![
                self.execute(&self.st.expire_grant, [&id]),
                self.execute(&self.st.insert_history, history.params()),
            ])
            .await;
        }
        self.client
            .execute(&self.st.prune_tokens, &[&now_ms, &limit])
            .await
            .or_die("pruning expired tokens");
        due.len()
    }
}
