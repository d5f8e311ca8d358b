//! The backend's schema: its name, its tables and indexes, and the migrations that
//! bring a database to the version this build knows.
//!
//! Everything lives in one schema of the backend's own (default `tenure`), next to
//! whatever else the database holds. Its `schema_version` table records which of
//! [`MIGRATIONS`] have run; it is the backend's alone, never a migrations table
//! shared with the host's.

use deadpool_postgres::Pool;

use crate::error::PostgresError;

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The schema name used when none is given.
pub const DEFAULT_SCHEMA: &str = "tenure";

/// The migrations, in order: the `n`-th brings the schema from version `n - 1` to
/// `n`. `{schema}` stands for the quoted schema name. Never edit one that has
/// shipped; append a new one.
const MIGRATIONS: [&str; 3] = [
    // Version 1. Every record is stored whole as `record` (the core's JSON form,
    // which round-trips exactly at the millisecond precision the core keeps), next
    // to typed copies of the fields that are looked up, filtered or sorted on.
    // Times are milliseconds since the Unix epoch, the precision the core keeps;
    // ids sort bytewise (`COLLATE "C"`), as Rust strings do.
    r#"
CREATE TABLE {schema}.clients (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);

CREATE TABLE {schema}.grants (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    client_id text COLLATE "C" NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'expired', 'revoked')),
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);
-- Listings: one index per way of narrowing, each in (created_at, id) order.
CREATE INDEX grants_by_created ON {schema}.grants (zone_id, created_at, id);
CREATE INDEX grants_by_user ON {schema}.grants (zone_id, user_id, created_at, id);
CREATE INDEX grants_by_resource ON {schema}.grants (zone_id, resource_id, created_at, id);
CREATE INDEX grants_by_client ON {schema}.grants (zone_id, client_id, created_at, id);
CREATE INDEX grants_by_status ON {schema}.grants (zone_id, status, created_at, id);
-- The expiry sweep: only grants stored active, in (expires_at, id) order.
CREATE INDEX grants_by_expiry ON {schema}.grants (zone_id, expires_at, id)
    WHERE status = 'active';

CREATE TABLE {schema}.transitions (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id text COLLATE "C" NOT NULL,
    grant_id text COLLATE "C" NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX transitions_by_grant ON {schema}.transitions (zone_id, grant_id, seq);

CREATE TABLE {schema}.tokens (
    zone_id text COLLATE "C" NOT NULL,
    digest bytea NOT NULL CHECK (octet_length(digest) = 32),
    -- The grant whose token list holds the token: set when the token is created,
    -- cleared when that grant is deleted.
    grant_id text COLLATE "C",
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, digest)
);
CREATE INDEX tokens_by_grant ON {schema}.tokens (zone_id, grant_id);

CREATE TABLE {schema}.personal_grants (
    zone_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, id)
);
CREATE INDEX personal_grants_by_user
    ON {schema}.personal_grants (zone_id, user_id, created_at, id);

CREATE TABLE {schema}.device_authorizations (
    zone_id text COLLATE "C" NOT NULL,
    device_code bytea NOT NULL CHECK (octet_length(device_code) = 32),
    user_code text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, device_code),
    CONSTRAINT device_authorizations_user_code_unique UNIQUE (zone_id, user_code)
);
CREATE INDEX device_authorizations_by_expiry
    ON {schema}.device_authorizations (zone_id, expires_at, device_code);
"#,
    // Version 2. Refresh tokens rotate by generation: a grant keeps its refresh
    // chain (under `refresh` in its record) and a token its `generation`, where a
    // refresh token was marked `spent_at` before; expired tokens are pruned through
    // an index on their expiry. Records written before are converted as the core's
    // legacy rule says: every grant gets the chain `{"generation": 1}`
    // (`RefreshChain::LEGACY`), every token generation 0 if it was spent and 1 if
    // not, so an unspent refresh token is current and a spent one reads as spent.
    // Every token and grant row is rewritten once. The core writes times as RFC 3339
    // with `Z`, which PostgreSQL reads as such whatever the session's time zone;
    // the `+` chrono writes before a year past 9999 is dropped, as PostgreSQL
    // does not take it.
    r#"
ALTER TABLE {schema}.tokens ADD COLUMN expires_at bigint;
UPDATE {schema}.tokens SET
    expires_at = round(
        extract(epoch FROM ltrim(record->>'expires_at', '+')::timestamptz) * 1000
    )::bigint,
    record = (record - 'spent_at') || jsonb_build_object(
        'generation',
        CASE WHEN record->>'spent_at' IS NULL THEN 1 ELSE 0 END
    );
ALTER TABLE {schema}.tokens ALTER COLUMN expires_at SET NOT NULL;
-- Pruning expired tokens: (expires_at, digest) order.
CREATE INDEX tokens_by_expiry ON {schema}.tokens (zone_id, expires_at, digest);

UPDATE {schema}.grants SET record = record || '{"refresh": {"generation": 1}}'::jsonb;
"#,
    // Version 3. Authorization codes, keyed by the digest of the code, like device
    // authorizations, and pruned through an index on their expiry in
    // (expires_at, code) order. Only adds: no row written before is touched.
    r#"
CREATE TABLE {schema}.authorization_codes (
    zone_id text COLLATE "C" NOT NULL,
    code bytea NOT NULL CHECK (octet_length(code) = 32),
    expires_at bigint NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    record jsonb NOT NULL,
    PRIMARY KEY (zone_id, code)
);
CREATE INDEX authorization_codes_by_expiry
    ON {schema}.authorization_codes (zone_id, expires_at, code);
"#,
];

/// A validated schema name, and its quoted form for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaName {
    name: String,
    quoted: String,
}

impl SchemaName {
    /// Accepts plain lower-case identifiers only, so that the name needs no escaping
    /// and means the same quoted or not.
    pub(crate) fn new(name: &str) -> Result<Self, PostgresError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with("pg_")
            && !name.as_bytes()[0].is_ascii_digit()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(PostgresError::InvalidSchemaName {
                name: name.to_owned(),
            });
        }
        Ok(SchemaName {
            name: name.to_owned(),
            quoted: format!("\"{name}\""),
        })
    }

    /// The bare name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The name quoted as an SQL identifier.
    pub(crate) fn quoted(&self) -> &str {
        &self.quoted
    }
}

/// Creates or migrates the schema to [`SCHEMA_VERSION`], in one transaction.
///
/// A transaction-scoped advisory lock keyed on the schema name serializes processes
/// that start together, so exactly one of them creates the schema and the others
/// find it made. At the current version the transaction only reads, so a role that
/// may not create anything can still open a store someone else set up. A schema at
/// a newer version is refused with [`PostgresError::SchemaTooNew`], and nothing is
/// changed.
pub(crate) async fn ensure(pool: &Pool, schema: &SchemaName) -> Result<(), PostgresError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let lock_key = format!("tenure-postgres schema {}", schema.name());
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&lock_key],
    )
    .await?;
    let version_table = format!("{}.schema_version", schema.quoted());
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&version_table])
        .await?
        .try_get(0)?;
    let found: i32 = if exists {
        tx.query_opt(
            &format!("SELECT version FROM {version_table} WHERE singleton"),
            &[],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0)
    } else {
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE {version_table} (
                 singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                 version integer NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now()
             );",
            schema = schema.quoted(),
        ))
        .await?;
        0
    };
    if found > SCHEMA_VERSION {
        return Err(PostgresError::SchemaTooNew {
            schema: schema.name().to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        tx.commit().await?;
        return Ok(());
    }
    let pending = usize::try_from(found).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(pending) {
        tx.batch_execute(&migration.replace("{schema}", schema.quoted()))
            .await?;
    }
    tx.execute(
        &format!(
            "INSERT INTO {version_table} (singleton, version) VALUES (true, $1)
             ON CONFLICT (singleton) DO UPDATE SET version = $1, updated_at = now()"
        ),
        &[&SCHEMA_VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["tenure", "t_1", "_x", "a".repeat(63).as_str()] {
            assert!(SchemaName::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "Tenure",
            "1abc",
            "pg_tenure",
            "a-b",
            "a\"b",
            "a b",
            "tenure; DROP TABLE x",
            "é",
            "a".repeat(64).as_str(),
        ] {
            assert!(
                matches!(
                    SchemaName::new(bad),
                    Err(PostgresError::InvalidSchemaName { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            SchemaName::new("tenure").ok().map(|s| s.quoted),
            Some("\"tenure\"".to_owned())
        );
    }
}
