//! The inspection and change commands: grants, clients, tokens, sweep.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use tenure::time::format_rfc3339;
use tenure::{
    AccessType, Actor, ClientChange, ClientRegistration, ClientType, Engine, GrantStatus,
    GrantType, Introspection, ListGrants, ScopePolicy, SortOrder,
};

use crate::error::CliError;
use crate::output::{Format, print, print_record};
use crate::store::{Store, StoreArgs};

/// The zone a command works in.
#[derive(Debug, Clone, Args)]
pub struct ZoneArg {
    /// The zone.
    #[arg(long, default_value = "default")]
    pub zone: String,
}

/// Opens the store, which must exist, and an engine on the system clock.
async fn engine(args: &StoreArgs) -> Result<(Store, Engine), CliError> {
    engine_on(Store::open(args).await?)
}

fn engine_on(store: Store) -> Result<(Store, Engine), CliError> {
    let engine = Engine::builder(store.storage()).build();
    Ok((store, engine))
}

/// `tenure grants …`
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List grants, with the filters and cursors of the HTTP API.
    List(ListArgs),
    /// Show one grant.
    Show(GrantIdArgs),
    /// Show a grant's transitions.
    History(GrantIdArgs),
    /// Revoke a grant and every token under it.
    Revoke(GrantIdArgs),
    /// Delete a grant and every trace of it.
    Delete(GrantIdArgs),
}

/// A grant by id.
#[derive(Debug, Args)]
pub struct GrantIdArgs {
    /// The grant's id.
    pub id: String,
    #[command(flatten)]
    zone: ZoneArg,
    #[command(flatten)]
    format: Format,
}

/// `tenure grants list`
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    zone: ZoneArg,
    /// Only this user's grants.
    #[arg(long)]
    user_id: Option<String>,
    /// Only grants on this resource.
    #[arg(long)]
    resource_id: Option<String>,
    /// Only grants to this client.
    #[arg(long)]
    client_id: Option<String>,
    /// active, expired or revoked.
    #[arg(long)]
    status: Option<String>,
    /// Only active grants.
    #[arg(long)]
    active: bool,
    /// The page after this cursor.
    #[arg(long)]
    after: Option<String>,
    /// The page before this cursor.
    #[arg(long)]
    before: Option<String>,
    /// Page size, 1 to 100.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// created_at or -created_at (newest first, the default).
    #[arg(long, default_value = "-created_at", allow_hyphen_values = true)]
    sort: String,
    /// Count every matching grant.
    #[arg(long)]
    total_count: bool,
    #[command(flatten)]
    format: Format,
}

fn grant_row(g: &tenure::Grant) -> Vec<String> {
    vec![
        g.id.clone(),
        g.status.to_string(),
        g.user_id.clone(),
        g.client_id.clone(),
        g.resource_id.clone(),
        g.scopes.join(" "),
        format_rfc3339(&g.expires_at),
    ]
}

const GRANT_HEADER: [&str; 7] = [
    "id",
    "status",
    "user",
    "client",
    "resource",
    "scopes",
    "expires_at",
];

/// Runs a `grants` command.
pub async fn grants(args: &StoreArgs, command: GrantsCommand) -> Result<(), CliError> {
    let (store, engine) = engine(args).await?;
    match command {
        GrantsCommand::List(a) => {
            let status = match a.status.as_deref() {
                None => None,
                Some(s) => Some(s.parse::<GrantStatus>()?),
            };
            let order = match a.sort.as_str() {
                "-created_at" => SortOrder::Descending,
                "created_at" => SortOrder::Ascending,
                other => {
                    return Err(CliError::Usage(format!(
                        "--sort {other:?}: expected created_at or -created_at"
                    )));
                }
            };
            let request = ListGrants {
                user_id: a.user_id,
                resource_id: a.resource_id,
                client_id: a.client_id,
                status,
                active: a.active,
                order,
                after: a.after,
                before: a.before,
                limit: Some(a.limit),
                total_count: a.total_count,
            };
            let page = engine.list_grants(&a.zone.zone, &request).await?;
            let value = json!({
                "items": page.items,
                "pagination": {
                    "after_cursor": page.after_cursor,
                    "before_cursor": page.before_cursor,
                    "total_count": page.total_count,
                },
            });
            print(
                a.format,
                &value,
                &GRANT_HEADER,
                page.items.iter().map(grant_row).collect(),
            );
            if !a.format.json {
                if let Some(c) = &page.after_cursor {
                    println!("next page: --after {c}");
                }
                if let Some(c) = &page.before_cursor {
                    println!("previous page: --before {c}");
                }
                if let Some(n) = page.total_count {
                    println!("{n} grants in all");
                }
            }
        }
        GrantsCommand::Show(a) => {
            let g = engine.get_grant(&a.zone.zone, &a.id).await?;
            show_grant(a.format, &g);
        }
        GrantsCommand::History(a) => {
            let history = engine.grant_history(&a.zone.zone, &a.id).await?;
            let rows = history
                .iter()
                .map(|t| {
                    vec![
                        format_rfc3339(&t.at),
                        t.from.map_or("-".to_owned(), |s| s.to_string()),
                        t.to.to_string(),
                        t.reason.to_string(),
                        t.actor.to_string(),
                    ]
                })
                .collect();
            print(
                a.format,
                &history,
                &["at", "from", "to", "reason", "actor"],
                rows,
            );
        }
        GrantsCommand::Revoke(a) => {
            let g = engine
                .revoke_grant(&a.zone.zone, &a.id, Actor::Admin)
                .await?;
            show_grant(a.format, &g);
        }
        GrantsCommand::Delete(a) => {
            engine.delete_grant(&a.zone.zone, &a.id).await?;
            if a.format.json {
                println!("{}", json!({"deleted": a.id}));
            } else {
                println!("deleted grant {}", a.id);
            }
        }
    }
    store.flush().await
}

fn show_grant(format: Format, g: &tenure::Grant) {
    print_record(
        format,
        g,
        vec![
            ("id", g.id.clone()),
            ("status", g.status.to_string()),
            ("user_id", g.user_id.clone()),
            ("client_id", g.client_id.clone()),
            ("resource_id", g.resource_id.clone()),
            ("provider_id", g.provider_id.clone()),
            ("organization_id", g.organization_id.clone()),
            ("scopes", g.scopes.join(" ")),
            ("created_at", format_rfc3339(&g.created_at)),
            ("updated_at", format_rfc3339(&g.updated_at)),
            ("expires_at", format_rfc3339(&g.expires_at)),
            (
                "refreshed_at",
                g.refreshed_at
                    .as_ref()
                    .map_or("-".to_owned(), format_rfc3339),
            ),
            ("refresh_token_set", g.refresh_token_set.to_string()),
        ],
    );
}

/// `tenure clients …`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// List clients by id.
    List {
        #[command(flatten)]
        zone: ZoneArg,
        /// The page after this id.
        #[arg(long)]
        after: Option<String>,
        /// Page size, 1 to 100.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        format: Format,
    },
    /// Show one client.
    Show {
        /// The client's id.
        id: String,
        #[command(flatten)]
        zone: ZoneArg,
        #[command(flatten)]
        format: Format,
    },
    /// Register a client; a confidential client's secret is printed once.
    Create(CreateClientArgs),
    /// Patch a client with a JSON Patch (RFC 6902) or a merge object (RFC 7396).
    Patch {
        /// The client's id.
        id: String,
        /// The patch: a JSON array of operations, or a JSON object to merge.
        #[arg(long, conflicts_with = "file")]
        patch: Option<String>,
        /// Read the patch from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Only say what the change would do to existing grants.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        zone: ZoneArg,
        #[command(flatten)]
        format: Format,
    },
    /// Delete a client, revoking every active grant made to it first.
    Delete {
        /// The client's id.
        id: String,
        #[command(flatten)]
        zone: ZoneArg,
        #[command(flatten)]
        format: Format,
    },
}

/// `tenure clients create`
#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// The id; generated when absent.
    #[arg(long)]
    id: Option<String>,
    /// Human-readable name.
    #[arg(long)]
    name: String,
    /// Allowed scopes.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Allowed grant types (default: authorization_code and refresh_token).
    #[arg(long = "grant-type", value_name = "GRANT_TYPE")]
    grant_types: Vec<String>,
    /// A confidential client, with a secret.
    #[arg(long)]
    confidential: bool,
    /// Online access: no refresh tokens.
    #[arg(long)]
    online: bool,
    /// Inherit scopes from the owning account.
    #[arg(long)]
    inherit: bool,
    /// The owning account.
    #[arg(long)]
    owner: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    access_ttl: u32,
    /// Refresh-token lifetime in seconds.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    refresh_ttl: u32,
    #[command(flatten)]
    zone: ZoneArg,
    #[command(flatten)]
    format: Format,
}

fn client_row(c: &tenure::Client) -> Vec<String> {
    vec![
        c.id.clone(),
        c.name.clone(),
        if c.enabled { "enabled" } else { "disabled" }.to_owned(),
        c.allowed_scopes.join(" "),
        c.allowed_grants
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ]
}

fn show_client(format: Format, c: &tenure::Client, secret: Option<&str>) {
    let mut view = tenure::client::client_view(c);
    if let (Some(map), Some(s)) = (view.as_object_mut(), secret) {
        map.insert("client_secret".into(), json!(s));
    }
    let mut fields = vec![
        ("id", c.id.clone()),
        ("name", c.name.clone()),
        ("enabled", c.enabled.to_string()),
        ("client_type", format!("{:?}", c.client_type).to_lowercase()),
        (
            "scope_policy",
            format!("{:?}", c.scope_policy).to_lowercase(),
        ),
        ("access_type", format!("{:?}", c.access_type).to_lowercase()),
        ("allowed_scopes", c.allowed_scopes.join(" ")),
        (
            "allowed_grants",
            c.allowed_grants
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "access_token_ttl_seconds",
            c.access_token_ttl_seconds.to_string(),
        ),
        (
            "refresh_token_ttl_seconds",
            c.refresh_token_ttl_seconds.to_string(),
        ),
        (
            "last_used_at",
            c.last_used_at
                .as_ref()
                .map_or("-".to_owned(), format_rfc3339),
        ),
    ];
    if let Some(s) = secret {
        fields.push(("client_secret (shown once)", s.to_owned()));
    }
    print_record(format, &view, fields);
}

fn parse_grant_type(s: &str) -> Result<GrantType, CliError> {
    serde_json::from_value(json!(s)).map_err(|_| {
        CliError::Usage(format!(
            "--grant-type {s:?}: expected authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code"
        ))
    })
}

/// Runs a `clients` command.
pub async fn clients(args: &StoreArgs, command: ClientsCommand) -> Result<(), CliError> {
    // Registering a client may start a new store; everything else needs one.
    let (store, engine) = match command {
        ClientsCommand::Create(_) => engine_on(Store::create(args).await?)?,
        _ => engine(args).await?,
    };
    match command {
        ClientsCommand::List {
            zone,
            after,
            limit,
            format,
        } => {
            let clients = engine
                .list_clients(&zone.zone, after.as_deref(), limit)
                .await?;
            let views: Vec<_> = clients.iter().map(tenure::client::client_view).collect();
            print(
                format,
                &views,
                &["id", "name", "state", "scopes", "grant types"],
                clients.iter().map(client_row).collect(),
            );
        }
        ClientsCommand::Show { id, zone, format } => {
            let c = engine.get_client(&zone.zone, &id).await?;
            show_client(format, &c, None);
        }
        ClientsCommand::Create(a) => {
            let mut registration = ClientRegistration::new(a.name)
                .scopes(a.scopes)
                .lifetimes(a.access_ttl, a.refresh_ttl);
            registration.id = a.id;
            if !a.grant_types.is_empty() {
                registration.allowed_grants = a
                    .grant_types
                    .iter()
                    .map(|g| parse_grant_type(g))
                    .collect::<Result<_, _>>()?;
            }
            if a.confidential {
                registration.client_type = ClientType::Confidential;
            }
            if a.online {
                registration.access_type = AccessType::Online;
            }
            if a.inherit {
                registration.scope_policy = ScopePolicy::Inherit;
            }
            registration.owner_account_id = a.owner;
            let registered = engine.register_client(&a.zone.zone, registration).await?;
            show_client(
                a.format,
                &registered.client,
                registered.secret.as_ref().map(|s| s.expose()),
            );
        }
        ClientsCommand::Patch {
            id,
            patch,
            file,
            dry_run,
            zone,
            format,
        } => {
            let text = match (patch, file) {
                (Some(p), None) => p,
                (None, Some(path)) => {
                    std::fs::read_to_string(&path).map_err(|e| CliError::io(path, e))?
                }
                _ => {
                    return Err(CliError::Usage(
                        "give the patch with --patch or --file".into(),
                    ));
                }
            };
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("the patch is not JSON: {e}")))?;
            let change = if value.is_array() {
                ClientChange::Patch(
                    serde_json::from_value(value)
                        .map_err(|e| CliError::Usage(format!("not a JSON Patch: {e}")))?,
                )
            } else {
                ClientChange::Merge(value)
            };
            if dry_run {
                let i = engine
                    .client_change_impact(&zone.zone, &id, &change)
                    .await?;
                let value = json!({
                    "active_grants": i.active_grants,
                    "refresh_chains": i.refresh_chains,
                    "narrowed_grants": i.narrowed_grants,
                    "stopped_refresh_chains": i.stopped_refresh_chains,
                    "stops_authorization": i.stops_authorization,
                });
                print_record(
                    format,
                    &value,
                    vec![
                        ("active grants", i.active_grants.to_string()),
                        ("refresh chains", i.refresh_chains.to_string()),
                        (
                            "grants narrowed at next refresh",
                            i.narrowed_grants.to_string(),
                        ),
                        (
                            "refresh chains stopped",
                            i.stopped_refresh_chains.to_string(),
                        ),
                        (
                            "stops new authorizations",
                            i.stops_authorization.to_string(),
                        ),
                    ],
                );
            } else {
                let c = engine.change_client(&zone.zone, &id, &change).await?;
                show_client(format, &c, None);
            }
        }
        ClientsCommand::Delete { id, zone, format } => {
            engine.delete_client(&zone.zone, &id).await?;
            if format.json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("deleted client {id}");
            }
        }
    }
    store.flush().await
}

/// `tenure tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Say what a token is worth now (RFC 7662).
    Introspect {
        /// Where the token is read from: `-` for standard input, or a file that
        /// holds it. Never the token itself: a command line is visible to `ps` and
        /// kept in shell history.
        #[arg(value_name = "FILE|-")]
        token: PathBuf,
        #[command(flatten)]
        zone: ZoneArg,
        #[command(flatten)]
        format: Format,
    },
    /// Revoke a token (RFC 7009); a refresh token takes its grant along.
    Revoke {
        /// Where the token is read from: `-` for standard input, or a file that
        /// holds it. Never the token itself.
        #[arg(value_name = "FILE|-")]
        token: PathBuf,
        #[command(flatten)]
        zone: ZoneArg,
        #[command(flatten)]
        format: Format,
    },
}

/// The most a token file may hold; tokens are a few hundred bytes.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Reads a token from standard input (`-`) or a file, without its trailing line
/// end. A token typed where the file belongs is refused without being echoed.
fn read_token(from: &Path) -> Result<String, CliError> {
    let mut text = String::new();
    let read = if from == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_TOKEN_BYTES + 1)
            .read_to_string(&mut text)
    } else {
        match std::fs::File::open(from) {
            Ok(file) => file.take(MAX_TOKEN_BYTES + 1).read_to_string(&mut text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let looks_like_a_token = from.to_str().is_some_and(|s| s.starts_with("tnr_"));
                return Err(CliError::Usage(if looks_like_a_token {
                    "a token is not taken on the command line: pass it on standard input \
                     (`-`) or in a file"
                        .to_owned()
                } else {
                    format!("no token file at {}", from.display())
                }));
            }
            Err(e) => Err(e),
        }
    };
    read.map_err(|e| CliError::Usage(format!("cannot read the token: {e}")))?;
    if text.len() as u64 > MAX_TOKEN_BYTES {
        return Err(CliError::Usage(format!(
            "the token input is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let token = text.trim_end_matches(['\n', '\r']).to_owned();
    if token.is_empty() || token.contains(['\n', '\r']) {
        return Err(CliError::Usage(
            "the token input must hold exactly one token, on one line".to_owned(),
        ));
    }
    Ok(token)
}

/// Runs a `tokens` command.
pub async fn tokens(args: &StoreArgs, command: TokensCommand) -> Result<(), CliError> {
    let (store, engine) = engine(args).await?;
    match command {
        TokensCommand::Introspect {
            token,
            zone,
            format,
        } => match engine.introspect(&zone.zone, &read_token(&token)?).await? {
            Introspection::Inactive => print_record(
                format,
                &json!({"active": false}),
                vec![("active", "false".into())],
            ),
            Introspection::Active(t) => {
                let value = json!({
                    "active": true,
                    "token_type": t.kind.as_str(),
                    "scope": t.scopes.join(" "),
                    "client_id": t.client_id,
                    "sub": t.user_id,
                    "aud": t.resource_id,
                    "grant_id": t.grant_id,
                    "iat": t.issued_at.timestamp(),
                    "exp": t.expires_at.timestamp(),
                });
                print_record(
                    format,
                    &value,
                    vec![
                        ("active", "true".into()),
                        ("kind", t.kind.as_str().into()),
                        ("scopes", t.scopes.join(" ")),
                        ("client_id", t.client_id.clone()),
                        ("user_id", t.user_id.clone()),
                        ("grant_id", t.grant_id.clone()),
                        ("expires_at", format_rfc3339(&t.expires_at)),
                    ],
                );
            }
        },
        TokensCommand::Revoke {
            token,
            zone,
            format,
        } => {
            let revoked = engine
                .revoke_token(&zone.zone, &read_token(&token)?, None)
                .await?;
            if format.json {
                println!("{}", json!({"revoked": revoked}));
            } else if revoked {
                println!("revoked");
            } else {
                println!("nothing to revoke: the token is unknown or already unusable");
            }
        }
    }
    store.flush().await
}

/// `tenure sweep`
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    zone: ZoneArg,
    /// Grants to expire, and expired tokens and device authorizations to prune,
    /// per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[command(flatten)]
    format: Format,
}

/// Runs `sweep`: batches until nothing expired remains (no grant or token beyond
/// the batch, and fewer device authorizations pruned than the batch allowed).
pub async fn sweep(args: &StoreArgs, a: SweepArgs) -> Result<(), CliError> {
    let (store, engine) = engine(args).await?;
    let (mut expired, mut tokens, mut devices) = (0, 0, 0);
    loop {
        let report = engine.sweep_expired(&a.zone.zone, a.batch).await?;
        expired += report.expired;
        tokens += report.tokens_removed;
        devices += report.devices_removed;
        if !report.more && report.devices_removed < a.batch {
            break;
        }
    }
    store.flush().await?;
    if a.format.json {
        println!(
            "{}",
            json!({"expired": expired, "tokens_removed": tokens, "devices_removed": devices})
        );
    } else {
        println!(
            "expired {expired} grants, removed {tokens} expired tokens and {devices} device authorizations"
        );
    }
    Ok(())
}
