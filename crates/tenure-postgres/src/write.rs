//! Write sets as SQL transactions of conditional statements.
//!
//! Each write becomes one statement whose condition is its [`Expect`]: an insert
//! that does nothing when the key is taken (`Expect::Absent`), or an update or
//! delete that matches only the expected `version`. The statement's row count says
//! whether the expectation held. The row it wrote or deleted stays locked until the
//! transaction ends, so when every statement of a set has held, every expectation
//! holds at once at commit, and the set commits; if any did not, the transaction
//! rolls back and the set is [`Error::Conflict`]. That is why `READ COMMITTED` is
//! enough: the checks are the writes themselves, on locked rows, not reads of a
//! snapshot that may be stale.
//!
//! A [`Write::Check`] writes nothing, but holds its record the same way. One that
//! expects a version is `SELECT … FOR SHARE` of the row at that version: it matches
//! no row if the version differs, and its lock keeps any other set from changing or
//! deleting the row until this one ends (sets that only check the row share it).
//! One that expects the record absent cannot lock a row that is not there, so it
//! takes the key instead: it inserts a placeholder row (`record` JSON `null`, which
//! no record is) with `ON CONFLICT DO NOTHING`, which inserts nothing if the key is
//! taken, or is being taken by a set not yet committed once that one commits, and
//! deletes the placeholder again in the next statement. Another set inserting that
//! key meanwhile waits on it until this set ends, as it would on any insert, and no
//! reader ever sees the placeholder, which never outlives the transaction.
//!
//! The statements of a set are sent in one pipeline (the client does not wait for
//! one answer before sending the next), so a set costs about one round trip
//! besides `BEGIN` and `COMMIT`.
//!
//! A serialization failure or a deadlock (SQLSTATE 40001, 40P01) is a conflict like
//! any other: the set is not tried again here. The engine's retry policy reads
//! afresh and decides again, which a blind replay of the same set could not, and
//! keeps the one count of attempts and the one backoff.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::Pool;
use futures_util::future::join_all;
use tenure::{Error, Expect, RecordKey, Write, WriteSet};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};

use crate::error::PostgresError;
use crate::read::millis;
use crate::record::GrantRecord;
use crate::schema::SchemaName;

/// The write statements of one schema, rendered once.
#[derive(Debug)]
pub(crate) struct WriteSql {
    client_insert: String,
    client_update: String,
    client_delete: String,
    grant_insert: String,
    grant_update: String,
    grant_delete: String,
    token_insert: String,
    token_update: String,
    token_delete: String,
    transition_insert: String,
    personal_insert: String,
    personal_update: String,
    personal_delete: String,
    device_code_owner: String,
    device_insert: String,
    device_update: String,
    device_delete: String,
    code_insert: String,
    code_update: String,
    code_delete: String,
    client_check: CheckSql,
    grant_check: CheckSql,
    token_check: CheckSql,
}

/// The statements of a [`Write::Check`] on one table, keyed by `($1, $2)`: the
/// zone and the record's id or digest.
#[derive(Debug)]
struct CheckSql {
    /// Matches the row if it is at version `$3`, and locks it for share.
    version: String,
    /// Inserts a placeholder row if the key is free.
    claim: String,
    /// Deletes the placeholder.
    release: String,
}

impl CheckSql {
    /// The statements for `table`, whose key is `(zone_id, key)` and whose other
    /// required columns a placeholder fills with `placeholder_values` (after zone,
    /// key, version and record).
    fn new(s: &str, table: &str, key: &str, columns: &str, placeholder_values: &str) -> Self {
        CheckSql {
            version: format!(
                "SELECT 1 FROM {s}.{table} WHERE zone_id = $1 AND {key} = $2 AND version = $3 \
                 FOR SHARE"
            ),
            claim: format!(
                "INSERT INTO {s}.{table} (zone_id, {key}, version, record{columns}) \
                 VALUES ($1, $2, 1, 'null'{placeholder_values}) ON CONFLICT DO NOTHING"
            ),
            release: format!(
                "DELETE FROM {s}.{table} WHERE zone_id = $1 AND {key} = $2 \
                 AND record = 'null'::jsonb"
            ),
        }
    }
}

impl WriteSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        WriteSql {
            client_insert: format!(
                "INSERT INTO {s}.clients (zone_id, id, version, record) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING"
            ),
            client_update: format!(
                "UPDATE {s}.clients SET version = version + 1, record = $3 \
                 WHERE zone_id = $1 AND id = $2 AND version = $4"
            ),
            // The client alone: its grants and tokens stay, as the contract says.
            client_delete: format!(
                "DELETE FROM {s}.clients WHERE zone_id = $1 AND id = $2 AND version = $3"
            ),
            grant_insert: format!(
                "INSERT INTO {s}.grants (zone_id, id, user_id, resource_id, client_id, status, \
                 created_at, expires_at, version, record) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9) ON CONFLICT DO NOTHING"
            ),
            grant_update: format!(
                "UPDATE {s}.grants SET user_id = $3, resource_id = $4, client_id = $5, \
                 status = $6, created_at = $7, expires_at = $8, record = $9, \
                 version = version + 1 \
                 WHERE zone_id = $1 AND id = $2 AND version = $10"
            ),
            // The grant, its history, and its place as the owner of token lists go
            // together; the history and token lists only if the grant did.
            grant_delete: format!(
                "WITH gone AS ( \
                     DELETE FROM {s}.grants WHERE zone_id = $1 AND id = $2 AND version = $3 \
                     RETURNING zone_id, id \
                 ), history AS ( \
                     DELETE FROM {s}.transitions t USING gone \
                     WHERE t.zone_id = gone.zone_id AND t.grant_id = gone.id \
                 ), listed AS ( \
                     UPDATE {s}.tokens k SET grant_id = NULL FROM gone \
                     WHERE k.zone_id = gone.zone_id AND k.grant_id = gone.id \
                 ) \
                 SELECT 1 FROM gone"
            ),
            token_insert: format!(
                "INSERT INTO {s}.tokens (zone_id, digest, grant_id, expires_at, version, record) \
                 VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT DO NOTHING"
            ),
            token_update: format!(
                "UPDATE {s}.tokens SET expires_at = $3, record = $4, version = version + 1 \
                 WHERE zone_id = $1 AND digest = $2 AND version = $5"
            ),
            token_delete: format!(
                "DELETE FROM {s}.tokens WHERE zone_id = $1 AND digest = $2 AND version = $3"
            ),
            transition_insert: format!(
                "INSERT INTO {s}.transitions (zone_id, grant_id, record) VALUES ($1, $2, $3)"
            ),
            personal_insert: format!(
                "INSERT INTO {s}.personal_grants (zone_id, id, user_id, created_at, version, \
                 record) VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT DO NOTHING"
            ),
            personal_update: format!(
                "UPDATE {s}.personal_grants SET user_id = $3, created_at = $4, record = $5, \
                 version = version + 1 WHERE zone_id = $1 AND id = $2 AND version = $6"
            ),
            personal_delete: format!(
                "DELETE FROM {s}.personal_grants WHERE zone_id = $1 AND id = $2 AND version = $3"
            ),
            device_code_owner: format!(
                "SELECT device_code FROM {s}.device_authorizations \
                 WHERE zone_id = $1 AND user_code = $2"
            ),
            device_insert: format!(
                "INSERT INTO {s}.device_authorizations (zone_id, device_code, user_code, \
                 expires_at, version, record) VALUES ($1, $2, $3, $4, 1, $5) \
                 ON CONFLICT DO NOTHING"
            ),
            device_update: format!(
                "UPDATE {s}.device_authorizations SET user_code = $3, expires_at = $4, \
                 record = $5, version = version + 1 \
                 WHERE zone_id = $1 AND device_code = $2 AND version = $6"
            ),
            device_delete: format!(
                "DELETE FROM {s}.device_authorizations \
                 WHERE zone_id = $1 AND device_code = $2 AND version = $3"
            ),
            code_insert: format!(
                "INSERT INTO {s}.authorization_codes (zone_id, code, expires_at, version, \
                 record) VALUES ($1, $2, $3, 1, $4) ON CONFLICT DO NOTHING"
            ),
            code_update: format!(
                "UPDATE {s}.authorization_codes SET expires_at = $3, record = $4, \
                 version = version + 1 WHERE zone_id = $1 AND code = $2 AND version = $5"
            ),
            code_delete: format!(
                "DELETE FROM {s}.authorization_codes \
                 WHERE zone_id = $1 AND code = $2 AND version = $3"
            ),
            client_check: CheckSql::new(s, "clients", "id", "", ""),
            grant_check: CheckSql::new(
                s,
                "grants",
                "id",
                ", user_id, resource_id, client_id, status, created_at, expires_at",
                ", '', '', '', 'revoked', 0, 0",
            ),
            token_check: CheckSql::new(s, "tokens", "digest", ", expires_at", ", 0"),
        }
    }
}

type Params<'a> = Vec<Box<dyn ToSql + Sync + Send + 'a>>;

/// What a statement's answer must be for its write's expectation to hold.
enum Holds {
    /// It wrote (or deleted) exactly one row.
    OneRow,
    /// Always: an appended transition, or the release of a check's placeholder.
    Always,
    /// The user code it asks about is free, or already this device code's.
    CodeFreeFor([u8; 32]),
}

/// One statement of a set.
struct Step<'a> {
    sql: &'a str,
    params: Params<'a>,
    holds: Holds,
}

impl<'a> Step<'a> {
    fn new(sql: &'a str, params: Params<'a>, holds: Holds) -> Self {
        Step { sql, params, holds }
    }
}

/// Why a set did not commit.
enum Failure {
    /// An expectation did not hold, a user code was taken meanwhile, or the
    /// database aborted the transaction to resolve a serialization failure or a
    /// deadlock.
    Conflict,
    /// Anything else.
    Backend(PostgresError),
}

/// A stored version as a parameter; `None` for one no row can have.
fn version_param(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// Turns a set into statements: pre-checks of user codes first (they must see the
/// store as it was before the set), then one statement per write, in order.
fn plan<'a>(sql: &'a WriteSql, set: &'a WriteSet) -> Result<Vec<Step<'a>>, Error> {
    let mut checks = Vec::new();
    let mut steps = Vec::with_capacity(set.writes.len());
    // User codes taken by earlier writes of the same set.
    let mut claimed: HashMap<(&str, &str), [u8; 32]> = HashMap::new();
    for write in &set.writes {
        let step = match write {
            Write::PutClient { client, expect } => match *expect {
                Expect::Absent => Step::new(
                    &sql.client_insert,
                    vec![
                        Box::new(client.zone_id.as_str()),
                        Box::new(client.id.as_str()),
                        Box::new(Json(client)),
                    ],
                    Holds::OneRow,
                ),
                Expect::Version(v) => Step::new(
                    &sql.client_update,
                    vec![
                        Box::new(client.zone_id.as_str()),
                        Box::new(client.id.as_str()),
                        Box::new(Json(client)),
                        Box::new(version_param(v).ok_or(Error::Conflict)?),
                    ],
                    Holds::OneRow,
                ),
            },
            Write::DeleteClient {
                zone_id,
                id,
                expect,
            } => Step::new(
                &sql.client_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(id.as_str()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            Write::PutGrant { grant, expect } => {
                let mut params: Params<'a> = vec![
                    Box::new(grant.zone_id.as_str()),
                    Box::new(grant.id.as_str()),
                    Box::new(grant.user_id.as_str()),
                    Box::new(grant.resource_id.as_str()),
                    Box::new(grant.client_id.as_str()),
                    Box::new(grant.status.as_str()),
                    Box::new(millis(grant.created_at)),
                    Box::new(millis(grant.expires_at)),
                    Box::new(Json(GrantRecord::new(grant))),
                ];
                match *expect {
                    Expect::Absent => Step::new(&sql.grant_insert, params, Holds::OneRow),
                    Expect::Version(v) => {
                        params.push(Box::new(version_param(v).ok_or(Error::Conflict)?));
                        Step::new(&sql.grant_update, params, Holds::OneRow)
                    }
                }
            }
            Write::DeleteGrant {
                zone_id,
                id,
                expect,
            } => Step::new(
                &sql.grant_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(id.as_str()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            Write::PutToken { token, expect } => match *expect {
                Expect::Absent => Step::new(
                    &sql.token_insert,
                    vec![
                        Box::new(token.zone_id.as_str()),
                        Box::new(token.digest.as_bytes().as_slice()),
                        Box::new(token.grant_id.as_str()),
                        Box::new(millis(token.expires_at)),
                        Box::new(Json(token)),
                    ],
                    Holds::OneRow,
                ),
                Expect::Version(v) => Step::new(
                    &sql.token_update,
                    vec![
                        Box::new(token.zone_id.as_str()),
                        Box::new(token.digest.as_bytes().as_slice()),
                        Box::new(millis(token.expires_at)),
                        Box::new(Json(token)),
                        Box::new(version_param(v).ok_or(Error::Conflict)?),
                    ],
                    Holds::OneRow,
                ),
            },
            Write::DeleteToken {
                zone_id,
                digest,
                expect,
            } => Step::new(
                &sql.token_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(digest.as_bytes().as_slice()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            Write::Check { record, expect } => {
                steps.extend(check(sql, record, *expect)?);
                continue;
            }
            Write::AppendTransition(t) => Step::new(
                &sql.transition_insert,
                vec![
                    Box::new(t.zone_id.as_str()),
                    Box::new(t.grant_id.as_str()),
                    Box::new(Json(t)),
                ],
                Holds::Always,
            ),
            Write::PutPersonalGrant { grant, expect } => {
                let mut params: Params<'a> = vec![
                    Box::new(grant.zone_id.as_str()),
                    Box::new(grant.id.as_str()),
                    Box::new(grant.user_id.as_str()),
                    Box::new(millis(grant.created_at)),
                    Box::new(Json(grant)),
                ];
                match *expect {
                    Expect::Absent => Step::new(&sql.personal_insert, params, Holds::OneRow),
                    Expect::Version(v) => {
                        params.push(Box::new(version_param(v).ok_or(Error::Conflict)?));
                        Step::new(&sql.personal_update, params, Holds::OneRow)
                    }
                }
            }
            Write::DeletePersonalGrant {
                zone_id,
                id,
                expect,
            } => Step::new(
                &sql.personal_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(id.as_str()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            Write::PutDeviceAuthorization { device, expect } => {
                let code = *device.device_code.as_bytes();
                let first_claim = *claimed
                    .entry((device.zone_id.as_str(), device.user_code.as_str()))
                    .or_insert(code);
                if first_claim != code {
                    return Err(Error::Conflict);
                }
                checks.push(Step::new(
                    &sql.device_code_owner,
                    vec![
                        Box::new(device.zone_id.as_str()),
                        Box::new(device.user_code.as_str()),
                    ],
                    Holds::CodeFreeFor(code),
                ));
                let mut params: Params<'a> = vec![
                    Box::new(device.zone_id.as_str()),
                    Box::new(device.device_code.as_bytes().as_slice()),
                    Box::new(device.user_code.as_str()),
                    Box::new(millis(device.expires_at)),
                    Box::new(Json(device)),
                ];
                match *expect {
                    Expect::Absent => Step::new(&sql.device_insert, params, Holds::OneRow),
                    Expect::Version(v) => {
                        params.push(Box::new(version_param(v).ok_or(Error::Conflict)?));
                        Step::new(&sql.device_update, params, Holds::OneRow)
                    }
                }
            }
            Write::DeleteDeviceAuthorization {
                zone_id,
                device_code,
                expect,
            } => Step::new(
                &sql.device_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(device_code.as_bytes().as_slice()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            Write::PutAuthorizationCode { code, expect } => {
                let mut params: Params<'a> = vec![
                    Box::new(code.zone_id.as_str()),
                    Box::new(code.code.as_bytes().as_slice()),
                    Box::new(millis(code.expires_at)),
                    Box::new(Json(code)),
                ];
                match *expect {
                    Expect::Absent => Step::new(&sql.code_insert, params, Holds::OneRow),
                    Expect::Version(v) => {
                        params.push(Box::new(version_param(v).ok_or(Error::Conflict)?));
                        Step::new(&sql.code_update, params, Holds::OneRow)
                    }
                }
            }
            Write::DeleteAuthorizationCode {
                zone_id,
                code,
                expect,
            } => Step::new(
                &sql.code_delete,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(code.as_bytes().as_slice()),
                    Box::new(version_param(*expect).ok_or(Error::Conflict)?),
                ],
                Holds::OneRow,
            ),
            _ => return Err(PostgresError::UnsupportedWrite.into()),
        };
        steps.push(step);
    }
    checks.extend(steps);
    Ok(checks)
}

/// The statements of a [`Write::Check`]: one that holds the row at its version, or
/// a claim of the free key and its release.
fn check<'a>(
    sql: &'a WriteSql,
    record: &'a RecordKey,
    expect: Expect,
) -> Result<Vec<Step<'a>>, Error> {
    // The table's statements and the key's parameters, afresh for each statement.
    let keyed = || -> Result<(&'a CheckSql, Params<'a>), Error> {
        Ok(match record {
            RecordKey::Client { zone_id, id } => (
                &sql.client_check,
                vec![Box::new(zone_id.as_str()), Box::new(id.as_str())],
            ),
            RecordKey::Grant { zone_id, id } => (
                &sql.grant_check,
                vec![Box::new(zone_id.as_str()), Box::new(id.as_str())],
            ),
            RecordKey::Token { zone_id, digest } => (
                &sql.token_check,
                vec![
                    Box::new(zone_id.as_str()),
                    Box::new(digest.as_bytes().as_slice()),
                ],
            ),
            _ => return Err(PostgresError::UnsupportedWrite.into()),
        })
    };
    let (table, mut params) = keyed()?;
    Ok(match expect {
        Expect::Version(v) => {
            params.push(Box::new(version_param(v).ok_or(Error::Conflict)?));
            vec![Step::new(&table.version, params, Holds::OneRow)]
        }
        Expect::Absent => {
            let (_, release) = keyed()?;
            vec![
                Step::new(&table.claim, params, Holds::OneRow),
                Step::new(&table.release, release, Holds::Always),
            ]
        }
    })
}

/// Sorts a failed statement's error.
fn classify(error: tokio_postgres::Error) -> Failure {
    match error.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => Failure::Conflict,
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => Failure::Conflict,
        // A user code taken by a set that committed while this one ran.
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => Failure::Conflict,
        _ => Failure::Backend(error.into()),
    }
}

type StepFuture<'a> =
    Pin<Box<dyn Future<Output = Result<bool, tokio_postgres::Error>> + Send + 'a>>;

/// Begins, sends every statement, then commits if every expectation held.
async fn attempt(pool: &Pool, steps: &[Step<'_>]) -> Result<(), Failure> {
    let mut client = pool.get().await.map_err(|e| Failure::Backend(e.into()))?;
    let tx = client.transaction().await.map_err(classify)?;
    let mut statements = Vec::with_capacity(steps.len());
    for result in join_all(steps.iter().map(|step| tx.prepare_cached(step.sql))).await {
        statements.push(result.map_err(classify)?);
    }
    let runs: Vec<StepFuture<'_>> = steps
        .iter()
        .zip(&statements)
        .map(|(step, statement)| {
            let params: Vec<&(dyn ToSql + Sync)> = step
                .params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let tx = &tx;
            let run: StepFuture<'_> = match step.holds {
                Holds::OneRow => {
                    Box::pin(async move { Ok(tx.execute(statement, &params).await? == 1) })
                }
                Holds::Always => Box::pin(async move {
                    tx.execute(statement, &params).await?;
                    Ok(true)
                }),
                Holds::CodeFreeFor(code) => Box::pin(async move {
                    let owners = tx.query(statement, &params).await?;
                    for owner in owners {
                        let owner: &[u8] = owner.try_get(0)?;
                        if owner != code.as_slice() {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }),
            };
            run
        })
        .collect();
    let mut held = true;
    // Statements run in the order they were sent; after the first error the rest
    // fail only because the transaction is aborted, so the first error is the cause.
    for result in join_all(runs).await {
        held &= result.map_err(classify)?;
    }
    if !held {
        // Dropping the transaction would roll it back too; waiting for it hands the
        // connection back clean.
        let _ = tx.rollback().await;
        return Err(Failure::Conflict);
    }
    tx.commit().await.map_err(classify)
}

/// Applies a set: all of it, or nothing and [`Error::Conflict`] (serialization
/// failures and deadlocks included), once; the engine retries with fresh reads.
pub(crate) async fn apply(pool: &Pool, sql: &WriteSql, set: &WriteSet) -> Result<(), Error> {
    if set.is_empty() {
        return Ok(());
    }
    let steps = plan(sql, set)?;
    match attempt(pool, &steps).await {
        Ok(()) => Ok(()),
        Err(Failure::Conflict) => Err(Error::Conflict),
        Err(Failure::Backend(e)) => Err(e.into()),
    }
}
