//! The reads of the [`Storage`](tenure::Storage) trait as SQL: one statement each,
//! so that every read sees one snapshot of the database and never part of a write
//! set.
//!
//! Every statement is addressed by zone (`zone_id = $1` on every table) and answers
//! from an index. [`Read`] names them, so that
//! [`PostgresStorage::explain`](crate::PostgresStorage::explain) can show the plan
//! of exactly the statement a read runs.

use tenure::{
    Digest, GrantFilter, GrantQuery, GrantStatus, Keyset, Position, SortOrder, Timestamp,
};
use tokio_postgres::types::{ToSql, Type};

use crate::schema::SchemaName;

/// A query parameter, owned by its statement.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// An SQL statement and its parameters.
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
    /// The parameters' types, in order.
    pub(crate) types: Vec<Type>,
    /// Whether the statement is planned afresh each time with its parameters (a
    /// listing or a count, whose best index depends on the values), rather than
    /// prepared once per connection (a key lookup, planned the same for any key).
    pub(crate) one_shot: bool,
}

impl Statement {
    /// The parameters as `tokio-postgres` takes them.
    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// The parameters with their types, for a statement sent without preparing it.
    pub(crate) fn typed_params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params()
            .into_iter()
            .zip(self.types.iter().cloned())
            .collect()
    }
}

/// Numbers parameters as they are bound.
#[derive(Default)]
struct Binder {
    params: Vec<Param>,
    types: Vec<Type>,
}

/// A value with its SQL type.
trait Bind: ToSql + Sync + Send + 'static {
    const TYPE: Type;
}

impl Bind for String {
    const TYPE: Type = Type::TEXT;
}

impl Bind for i64 {
    const TYPE: Type = Type::INT8;
}

impl Bind for Vec<u8> {
    const TYPE: Type = Type::BYTEA;
}

impl Binder {
    /// Binds a value and returns its placeholder (`$n`).
    fn bind<T: Bind>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        self.types.push(T::TYPE);
        format!("${}", self.params.len())
    }

    fn finish(self, sql: String, one_shot: bool) -> Statement {
        Statement {
            sql,
            params: self.params,
            types: self.types,
            one_shot,
        }
    }
}

/// A time as stored: milliseconds since the Unix epoch.
pub(crate) fn millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// A count as an SQL `LIMIT`, saturating.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One read of the [`Storage`](tenure::Storage) trait, with its arguments.
///
/// [`PostgresStorage::explain`](crate::PostgresStorage::explain) takes one to show
/// the plan PostgreSQL picks for it on the data at hand.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Read<'a> {
    /// [`Storage::get_client`](tenure::Storage::get_client).
    Client {
        /// The zone.
        zone_id: &'a str,
        /// The client.
        id: &'a str,
    },
    /// [`Storage::list_clients`](tenure::Storage::list_clients).
    Clients {
        /// The zone.
        zone_id: &'a str,
        /// Exclusive start.
        after: Option<&'a str>,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::list_zone_personal_grants`](tenure::Storage::list_zone_personal_grants).
    ZonePersonalGrants {
        /// The zone.
        zone_id: &'a str,
        /// Exclusive start.
        after: Option<&'a str>,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::get_grant`](tenure::Storage::get_grant).
    Grant {
        /// The zone.
        zone_id: &'a str,
        /// The grant.
        id: &'a str,
    },
    /// [`Storage::list_grants`](tenure::Storage::list_grants): one page and both of
    /// its flags, in one statement.
    Grants(&'a GrantQuery),
    /// [`Storage::count_grants`](tenure::Storage::count_grants).
    CountGrants {
        /// The zone.
        zone_id: &'a str,
        /// Which grants.
        filter: &'a GrantFilter,
        /// The time status filters are read at.
        now: Timestamp,
    },
    /// [`Storage::zones`](tenure::Storage::zones): a loose index scan over the
    /// clients' and the grants' primary keys, one index probe per zone listed.
    Zones {
        /// Exclusive start.
        after: Option<&'a str>,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::expired_grants`](tenure::Storage::expired_grants).
    ExpiredGrants {
        /// The zone.
        zone_id: &'a str,
        /// Due at or before this time.
        now: Timestamp,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::grant_history`](tenure::Storage::grant_history).
    History {
        /// The zone.
        zone_id: &'a str,
        /// The grant.
        grant_id: &'a str,
    },
    /// [`Storage::get_token`](tenure::Storage::get_token).
    Token {
        /// The zone.
        zone_id: &'a str,
        /// The token's digest.
        digest: &'a Digest,
    },
    /// [`Storage::get_token_and_grant`](tenure::Storage::get_token_and_grant): the
    /// token joined with its grant, in one statement.
    TokenAndGrant {
        /// The zone.
        zone_id: &'a str,
        /// The token's digest.
        digest: &'a Digest,
    },
    /// [`Storage::grant_tokens`](tenure::Storage::grant_tokens).
    GrantTokens {
        /// The zone.
        zone_id: &'a str,
        /// The grant.
        grant_id: &'a str,
    },
    /// [`Storage::expired_tokens`](tenure::Storage::expired_tokens).
    ExpiredTokens {
        /// The zone.
        zone_id: &'a str,
        /// Due at or before this time.
        now: Timestamp,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::get_personal_grant`](tenure::Storage::get_personal_grant).
    PersonalGrant {
        /// The zone.
        zone_id: &'a str,
        /// The personal grant.
        id: &'a str,
    },
    /// [`Storage::list_personal_grants`](tenure::Storage::list_personal_grants).
    PersonalGrants {
        /// The zone.
        zone_id: &'a str,
        /// The owner.
        user_id: &'a str,
        /// Exclusive start, newest first.
        after: Option<&'a Keyset>,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::get_device_authorization`](tenure::Storage::get_device_authorization).
    DeviceAuthorization {
        /// The zone.
        zone_id: &'a str,
        /// The digest of the device code.
        device_code: &'a Digest,
    },
    /// [`Storage::find_device_authorization`](tenure::Storage::find_device_authorization).
    DeviceByUserCode {
        /// The zone.
        zone_id: &'a str,
        /// The canonical user code.
        user_code: &'a str,
    },
    /// [`Storage::list_device_authorizations`](tenure::Storage::list_device_authorizations):
    /// in primary-key order.
    DeviceAuthorizations {
        /// The zone.
        zone_id: &'a str,
        /// Exclusive start: the digest of a device code.
        after: Option<&'a Digest>,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::expired_device_authorizations`](tenure::Storage::expired_device_authorizations).
    ExpiredDeviceAuthorizations {
        /// The zone.
        zone_id: &'a str,
        /// Due at or before this time.
        now: Timestamp,
        /// At most this many.
        limit: usize,
    },
    /// [`Storage::get_authorization_code`](tenure::Storage::get_authorization_code).
    AuthorizationCode {
        /// The zone.
        zone_id: &'a str,
        /// The digest of the code.
        code: &'a Digest,
    },
    /// [`Storage::expired_authorization_codes`](tenure::Storage::expired_authorization_codes).
    ExpiredAuthorizationCodes {
        /// The zone.
        zone_id: &'a str,
        /// Due at or before this time.
        now: Timestamp,
        /// At most this many.
        limit: usize,
    },
}

impl Read<'_> {
    /// The statement that answers the read.
    pub(crate) fn statement(&self, schema: &SchemaName) -> Statement {
        let s = schema.quoted();
        let mut b = Binder::default();
        let sql = match *self {
            Read::Client { zone_id, id } => format!(
                "SELECT version, record FROM {s}.clients WHERE zone_id = {} AND id = {}",
                b.bind(zone_id.to_owned()),
                b.bind(id.to_owned())
            ),
            Read::Clients {
                zone_id,
                after,
                limit,
            } => {
                let zone = b.bind(zone_id.to_owned());
                let after = match after {
                    Some(a) => format!(" AND id > {}", b.bind(a.to_owned())),
                    None => String::new(),
                };
                format!(
                    "SELECT version, record FROM {s}.clients WHERE zone_id = {zone}{after} \
                     ORDER BY id LIMIT {}",
                    b.bind(sql_limit(limit))
                )
            }
            Read::ZonePersonalGrants {
                zone_id,
                after,
                limit,
            } => {
                let zone = b.bind(zone_id.to_owned());
                let after = match after {
                    Some(a) => format!(" AND id > {}", b.bind(a.to_owned())),
                    None => String::new(),
                };
                format!(
                    "SELECT version, record FROM {s}.personal_grants WHERE zone_id = {zone}{after} \
                     ORDER BY id LIMIT {}",
                    b.bind(sql_limit(limit))
                )
            }
            Read::Zones { after, limit } => {
                let after = b.bind(after.unwrap_or_default().to_owned());
                let limit = b.bind(sql_limit(limit));
                let next = |from: &str| {
                    format!(
                        "SELECT min(zone_id) FROM (\
                         (SELECT zone_id FROM {s}.clients WHERE zone_id > {from} \
                          ORDER BY zone_id LIMIT 1) \
                         UNION ALL \
                         (SELECT zone_id FROM {s}.grants WHERE zone_id > {from} \
                          ORDER BY zone_id LIMIT 1)) next"
                    )
                };
                format!(
                    "WITH RECURSIVE z(zone_id, n) AS (\
                     SELECT ({first}), 1::bigint \
                     UNION ALL \
                     SELECT ({then}), n + 1 FROM z WHERE z.zone_id IS NOT NULL AND n < {limit}\
                     ) SELECT zone_id FROM z WHERE zone_id IS NOT NULL ORDER BY zone_id",
                    first = next(&format!("{after}::text")),
                    then = next("z.zone_id"),
                )
            }
            Read::Grant { zone_id, id } => format!(
                "SELECT version, record FROM {s}.grants WHERE zone_id = {} AND id = {}",
                b.bind(zone_id.to_owned()),
                b.bind(id.to_owned())
            ),
            Read::Grants(query) => return grants_page(schema, query),
            Read::CountGrants {
                zone_id,
                filter,
                now,
            } => {
                let filter = grant_filter(&mut b, zone_id, filter, now);
                let sql = format!("SELECT count(*) FROM {s}.grants WHERE {filter}");
                return b.finish(sql, true);
            }
            Read::ExpiredGrants {
                zone_id,
                now,
                limit,
            } => format!(
                "SELECT version, record FROM {s}.grants \
                 WHERE zone_id = {} AND status = 'active' AND expires_at <= {} \
                 ORDER BY expires_at, id LIMIT {}",
                b.bind(zone_id.to_owned()),
                b.bind(millis(now)),
                b.bind(sql_limit(limit))
            ),
            Read::History { zone_id, grant_id } => format!(
                "SELECT record FROM {s}.transitions WHERE zone_id = {} AND grant_id = {} \
                 ORDER BY seq",
                b.bind(zone_id.to_owned()),
                b.bind(grant_id.to_owned())
            ),
            Read::Token { zone_id, digest } => format!(
                "SELECT version, record FROM {s}.tokens WHERE zone_id = {} AND digest = {}",
                b.bind(zone_id.to_owned()),
                b.bind(digest.as_bytes().to_vec())
            ),
            Read::TokenAndGrant { zone_id, digest } => format!(
                "SELECT t.version, t.record, g.version AS grant_version, \
                 g.record AS grant_record \
                 FROM {s}.tokens t LEFT JOIN {s}.grants g \
                 ON g.zone_id = t.zone_id AND g.id = t.grant_id \
                 WHERE t.zone_id = {} AND t.digest = {}",
                b.bind(zone_id.to_owned()),
                b.bind(digest.as_bytes().to_vec())
            ),
            Read::GrantTokens { zone_id, grant_id } => format!(
                "SELECT version, record FROM {s}.tokens WHERE zone_id = {} AND grant_id = {}",
                b.bind(zone_id.to_owned()),
                b.bind(grant_id.to_owned())
            ),
            Read::ExpiredTokens {
                zone_id,
                now,
                limit,
            } => format!(
                "SELECT version, record FROM {s}.tokens \
                 WHERE zone_id = {} AND expires_at <= {} \
                 ORDER BY expires_at, digest LIMIT {}",
                b.bind(zone_id.to_owned()),
                b.bind(millis(now)),
                b.bind(sql_limit(limit))
            ),
            Read::PersonalGrant { zone_id, id } => format!(
                "SELECT version, record FROM {s}.personal_grants \
                 WHERE zone_id = {} AND id = {}",
                b.bind(zone_id.to_owned()),
                b.bind(id.to_owned())
            ),
            Read::PersonalGrants {
                zone_id,
                user_id,
                after,
                limit,
            } => {
                let zone = b.bind(zone_id.to_owned());
                let user = b.bind(user_id.to_owned());
                let after = match after {
                    Some(k) => format!(
                        " AND (created_at, id) < ({}, {})",
                        b.bind(millis(k.created_at)),
                        b.bind(k.id.clone())
                    ),
                    None => String::new(),
                };
                format!(
                    "SELECT version, record FROM {s}.personal_grants \
                     WHERE zone_id = {zone} AND user_id = {user}{after} \
                     ORDER BY created_at DESC, id DESC LIMIT {}",
                    b.bind(sql_limit(limit))
                )
            }
            Read::DeviceAuthorization {
                zone_id,
                device_code,
            } => format!(
                "SELECT version, record FROM {s}.device_authorizations \
                 WHERE zone_id = {} AND device_code = {}",
                b.bind(zone_id.to_owned()),
                b.bind(device_code.as_bytes().to_vec())
            ),
            Read::DeviceByUserCode { zone_id, user_code } => format!(
                "SELECT version, record FROM {s}.device_authorizations \
                 WHERE zone_id = {} AND user_code = {}",
                b.bind(zone_id.to_owned()),
                b.bind(user_code.to_owned())
            ),
            Read::DeviceAuthorizations {
                zone_id,
                after,
                limit,
            } => {
                // bytea compares byte by byte, as the digests' own order does.
                let zone = b.bind(zone_id.to_owned());
                let after = match after {
                    Some(d) => format!(" AND device_code > {}", b.bind(d.as_bytes().to_vec())),
                    None => String::new(),
                };
                format!(
                    "SELECT version, record FROM {s}.device_authorizations \
                     WHERE zone_id = {zone}{after} ORDER BY device_code LIMIT {}",
                    b.bind(sql_limit(limit))
                )
            }
            Read::ExpiredDeviceAuthorizations {
                zone_id,
                now,
                limit,
            } => format!(
                "SELECT version, record FROM {s}.device_authorizations \
                 WHERE zone_id = {} AND expires_at <= {} \
                 ORDER BY expires_at, device_code LIMIT {}",
                b.bind(zone_id.to_owned()),
                b.bind(millis(now)),
                b.bind(sql_limit(limit))
            ),
            Read::AuthorizationCode { zone_id, code } => format!(
                "SELECT version, record FROM {s}.authorization_codes \
                 WHERE zone_id = {} AND code = {}",
                b.bind(zone_id.to_owned()),
                b.bind(code.as_bytes().to_vec())
            ),
            Read::ExpiredAuthorizationCodes {
                zone_id,
                now,
                limit,
            } => format!(
                "SELECT version, record FROM {s}.authorization_codes \
                 WHERE zone_id = {} AND expires_at <= {} \
                 ORDER BY expires_at, code LIMIT {}",
                b.bind(zone_id.to_owned()),
                b.bind(millis(now)),
                b.bind(sql_limit(limit))
            ),
        };
        b.finish(sql, false)
    }
}

/// The `WHERE` clause of a grant listing or count: the zone, then each filter. A
/// status filter compares against the query's time, never the database's clock.
fn grant_filter(b: &mut Binder, zone_id: &str, filter: &GrantFilter, now: Timestamp) -> String {
    let mut sql = format!("zone_id = {}", b.bind(zone_id.to_owned()));
    for (column, value) in [
        ("user_id", &filter.user_id),
        ("resource_id", &filter.resource_id),
        ("client_id", &filter.client_id),
    ] {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = {}", b.bind(value.clone())));
        }
    }
    match filter.status {
        None => {}
        Some(GrantStatus::Active) => sql.push_str(&format!(
            " AND status = 'active' AND expires_at > {}",
            b.bind(millis(now))
        )),
        Some(GrantStatus::Expired) => sql.push_str(&format!(
            " AND (status = 'expired' OR (status = 'active' AND expires_at <= {}))",
            b.bind(millis(now))
        )),
        Some(GrantStatus::Revoked) => sql.push_str(" AND status = 'revoked'"),
    }
    sql
}

/// Which part of a listing's answer a row is.
pub(crate) const PART_PAGE: i32 = 0;
/// The row that says a matching grant lies on the other side of the position.
pub(crate) const PART_PROBE: i32 = 1;

/// A page of a listing and its flags as one statement.
///
/// The page is a keyset scan from the position, one row longer than the limit so
/// that the extra row tells whether more follow in the scan's direction. For a
/// position `After(k)` or `Before(k)`, a probe scans one row the other way from `k`
/// (including `k` itself, as [`tenure::GrantPage`] prescribes) for the other flag.
/// Both scans walk an index in `(created_at, id)` order and stop early.
fn grants_page(schema: &SchemaName, query: &GrantQuery) -> Statement {
    let mut b = Binder::default();
    let filter = grant_filter(&mut b, &query.zone_id, &query.filter, query.now);
    let table = format!("{}.grants", schema.quoted());
    let ascending = query.order == SortOrder::Ascending;
    let fetch = b.bind(sql_limit(query.limit).saturating_add(1));
    let key = match &query.position {
        Position::First => None,
        Position::After(k) | Position::Before(k) => {
            Some((b.bind(millis(k.created_at)), b.bind(k.id.clone())))
        }
    };
    // A scan in ascending or descending key order, bounded by `op` against the key.
    let scan = |columns: &str, up: bool, op: Option<&str>, limit: &str| {
        let bound = match (op, &key) {
            (Some(op), Some((created, id))) => {
                format!(" AND (created_at, id) {op} ({created}, {id})")
            }
            _ => String::new(),
        };
        let order = if up {
            "created_at, id"
        } else {
            "created_at DESC, id DESC"
        };
        format!(
            "SELECT {columns} FROM {table} WHERE {filter}{bound} ORDER BY {order} LIMIT {limit}"
        )
    };
    let page_columns = "version, record, created_at, id";
    let (page, probe) = match &query.position {
        Position::First => (scan(page_columns, ascending, None, &fetch), None),
        Position::After(_) => (
            scan(
                page_columns,
                ascending,
                Some(if ascending { ">" } else { "<" }),
                &fetch,
            ),
            Some(scan(
                "1",
                !ascending,
                Some(if ascending { "<=" } else { ">=" }),
                "1",
            )),
        ),
        Position::Before(_) => (
            scan(
                page_columns,
                !ascending,
                Some(if ascending { "<" } else { ">" }),
                &fetch,
            ),
            Some(scan(
                "1",
                ascending,
                Some(if ascending { ">=" } else { "<=" }),
                "1",
            )),
        ),
    };
    let mut sql = format!(
        "SELECT {PART_PAGE} AS part, version, record, created_at, id FROM ({page}) AS page"
    );
    if let Some(probe) = probe {
        sql.push_str(&format!(
            " UNION ALL SELECT {PART_PROBE}, NULL, NULL, NULL, NULL FROM ({probe}) AS probe"
        ));
    }
    b.finish(sql, true)
}
