//! How `tenure serve` is configured: a TOML file, then environment variables, then
//! flags, each overriding the one before; what none of them sets takes its default.
//!
//! The file is named by `--config FILE` or `TENURE_CONFIG`. Unknown keys are refused,
//! so a misspelt setting is an error, not a silent default. Every setting:
//!
//! | setting | file | environment | flag | default |
//! | --- | --- | --- | --- | --- |
//! | API listen address | `[http] addr` | `TENURE_ADDR` | `--addr` | `127.0.0.1:8080` |
//! | request timeout, seconds (then 503) | `[http] request_timeout_seconds` | `TENURE_REQUEST_TIMEOUT` | `--request-timeout` | 30 |
//! | shutdown deadline, seconds | `[http] shutdown_timeout_seconds` | `TENURE_SHUTDOWN_TIMEOUT` | `--shutdown-timeout` | 30 |
//! | largest request body, bytes (then 413) | `[http] body_limit_bytes` | `TENURE_BODY_LIMIT` | `--body-limit` | 1048576 |
//! | device verification URI (RFC 8628) | `[http] device_verification_uri` | `TENURE_DEVICE_VERIFICATION_URI` | `--device-verification-uri` | `https://localhost/device` |
//! | public base URL, for issuers and discovery (RFC 8414) | `[http] public_url` | `TENURE_PUBLIC_URL` | `--public-url` | `http://` and the request's `Host` |
//! | the host's authorization endpoint, `{zone_id}` replaced | `[http] authorization_endpoint` | `TENURE_AUTHORIZATION_ENDPOINT` | `--authorization-endpoint` | none |
//! | administrator token (secret) | `[http] admin_token` | `TENURE_ADMIN_TOKEN` | — | generated, printed once |
//! | Prometheus listen address | `[metrics] addr` | `TENURE_METRICS_ADDR` | `--metrics-addr` | none: no exporter |
//! | log format, `text` or `json` | `[log] format` | `TENURE_LOG_FORMAT` | `--log-format` | `text` |
//! | log filter | — | `RUST_LOG` | — | `info` |
//! | in-memory store | `[store] memory = true` | — | `--memory` | |
//! | sled store directory | `[store] data` | `TENURE_DATA` | `--data` | `./tenure-data` |
//! | redb store directory | `[store] redb` | `TENURE_REDB` | `--redb` | |
//! | PostgreSQL URL (secret) | `[store] postgres` | `TENURE_POSTGRES_URL` | `--postgres` | |
//! | cursor key (secret) | `[store] cursor_key` | `TENURE_CURSOR_KEY` | — | see below |
//! | PostgreSQL pool size | `[postgres] pool_size` | `TENURE_POSTGRES_POOL_SIZE` | `--postgres-pool-size` | deadpool's: 4 × CPUs |
//! | PostgreSQL pool wait, seconds (then 503) | `[postgres] wait_timeout_seconds` | `TENURE_POSTGRES_WAIT_TIMEOUT` | `--postgres-wait-timeout` | 5 |
//! | PostgreSQL connect timeout, seconds | `[postgres] connect_timeout_seconds` | `TENURE_POSTGRES_CONNECT_TIMEOUT` | `--postgres-connect-timeout` | 5 |
//! | PostgreSQL TLS: `auto`, `disable`, `require` | `[postgres] tls` | `TENURE_POSTGRES_TLS` | `--postgres-tls` | `auto` |
//! | PostgreSQL CA file (PEM; implies TLS) | `[postgres] ca_file` | `TENURE_POSTGRES_CA_FILE` | `--postgres-ca-file` | the system's roots |
//! | sweep interval, seconds (0: no sweeper) | `[sweep] interval_seconds` | `TENURE_SWEEP_INTERVAL` | `--sweep-interval` | 60 |
//! | records per sweep batch | `[sweep] batch` | `TENURE_SWEEP_BATCH` | `--sweep-batch` | 500 |
//! | batches per sweep run | `[sweep] max_batches` | `TENURE_SWEEP_MAX_BATCHES` | `--sweep-max-batches` | 100 |
//! | refresh-token reuse grace, seconds | `[engine] reuse_grace_seconds` | `TENURE_REUSE_GRACE` | `--reuse-grace` | 0 |
//! | device code lifetime, seconds | `[engine] device_code_lifetime_seconds` | `TENURE_DEVICE_CODE_LIFETIME` | `--device-code-lifetime` | 600 |
//! | authorization code lifetime, seconds (1 to 600) | `[engine] code_lifetime_seconds` | `TENURE_CODE_LIFETIME` | `--code-lifetime` | 60 |
//! | PKCE required of every client, not only public ones | `[engine] pkce_all_clients` | `TENURE_PKCE_ALL_CLIENTS` | `--pkce-all-clients` | false |
//! | access-token lifetime of clients registered without one, seconds | `[clients] access_token_ttl_seconds` | `TENURE_ACCESS_TOKEN_TTL` | `--access-token-ttl` | 3600 |
//! | refresh-token lifetime of clients registered without one, seconds | `[clients] refresh_token_ttl_seconds` | `TENURE_REFRESH_TOKEN_TTL` | `--refresh-token-ttl` | 2592000 |
//!
//! The store is the first of: `--memory`; `--postgres` or `TENURE_POSTGRES_URL`;
//! `--redb` or `TENURE_REDB`; `--data` or `TENURE_DATA`; the file's `[store]` (one
//! of `memory`, `postgres`, `redb`, `data`); sled in `./tenure-data`. Two of
//! `--memory`, `--postgres`, `--redb` and `--data` (or their environment variables)
//! together are refused.
//!
//! On PostgreSQL every process sweeps unless its sweep interval is 0. Their sweeps
//! are safe together (the engine retries what conflicts), only wasteful: one or two
//! sweeping processes are enough.
//!
//! PostgreSQL TLS is `auto` by default: as the URL's `sslmode` says, else plaintext
//! to a loopback host or a Unix socket and TLS to any other host. `require` always
//! encrypts and verifies the server's certificate and host name; `disable` never
//! encrypts. A CA file makes the connection require TLS, trusting only that CA;
//! otherwise the operating system's roots are trusted.
//!
//! # Secrets
//!
//! The administrator token and the cursor key are read from the environment or the
//! file only: given as flags they are refused, since `ps` shows every process's
//! command line to every user. `--help` never prints their values (nor the
//! PostgreSQL URL's). When no administrator token is set, one is generated and
//! printed once on standard output, never in the log (standard error).
//!
//! The **cursor key** signs pagination cursors; it is 32 bytes in base64 (`openssl
//! rand -base64 32` makes one). On the in-memory store, a fresh one is drawn at each
//! start. On sled and on redb, when none is set, the first start generates one and
//! keeps it in the file `cursor.key` (mode 0600) in the store's directory, where
//! later starts find it. On PostgreSQL it must be set, and set the same in every
//! process that shares the database (they accept each other's cursors): `serve`
//! refuses to start without it. The engine's built-in default key is never used.
//!
//! # Example
//!
//! ```toml
//! [http]
//! addr = "0.0.0.0:8080"
//! device_verification_uri = "https://id.example.com/device"
//!
//! [metrics]
//! addr = "127.0.0.1:9100"
//!
//! [log]
//! format = "json"
//!
//! [store]
//! postgres = "postgres://tenure:…@db.internal/tenure"
//! cursor_key = "…"
//!
//! [postgres]
//! pool_size = 32
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use clap::Args;
use clap::parser::{ArgMatches, ValueSource};
use serde::Deserialize;

use crate::error::CliError;
use tenure_postgres::TlsMode;

use crate::store::{PostgresPool, StoreArgs, StoreLocation};

/// The settings reference shown after `tenure serve --help`.
pub const HELP: &str = "\
Settings come from a TOML file (--config), then environment variables, then flags; \
each overrides the one before. The file's keys are shown beside each flag above \
(file: section.key); a file may also hold the secrets: http.admin_token, \
store.cursor_key, store.postgres.

The administrator token (TENURE_ADMIN_TOKEN) and the cursor key (TENURE_CURSOR_KEY) \
are taken from the environment or the file only, never from the command line. \
Without an administrator token, one is generated and printed once on standard \
output. The cursor key is 32 bytes in base64 (`openssl rand -base64 32`): on sled \
and redb, one is generated on first start and kept in the store's directory, as \
cursor.key; on PostgreSQL it is required, the same in every process; on --memory a \
fresh one is drawn.

Logs go to standard error, filtered by RUST_LOG (default: info).";

/// `tenure serve`: every flag, each with its environment variable.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// A TOML file of settings, overridden by environment variables and flags.
    #[arg(long, env = "TENURE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The API's listen address (file: http.addr) [default: 127.0.0.1:8080].
    #[arg(long, env = "TENURE_ADDR", value_name = "ADDR", help_heading = "HTTP")]
    pub addr: Option<String>,
    /// Seconds a request may take before it is answered 503 (file:
    /// http.request_timeout_seconds) [default: 30].
    #[arg(
        long,
        env = "TENURE_REQUEST_TIMEOUT",
        value_name = "SECONDS",
        help_heading = "HTTP"
    )]
    pub request_timeout: Option<u64>,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT; then the
    /// process exits (file: http.shutdown_timeout_seconds) [default: 30].
    #[arg(
        long,
        env = "TENURE_SHUTDOWN_TIMEOUT",
        value_name = "SECONDS",
        help_heading = "HTTP"
    )]
    pub shutdown_timeout: Option<u64>,
    /// The largest request body accepted, in bytes; larger ones get 413 (file:
    /// http.body_limit_bytes) [default: 1048576].
    #[arg(
        long,
        env = "TENURE_BODY_LIMIT",
        value_name = "BYTES",
        help_heading = "HTTP"
    )]
    pub body_limit: Option<usize>,
    /// Where users enter device user codes, RFC 8628's verification_uri (file:
    /// http.device_verification_uri) [default: https://localhost/device].
    #[arg(
        long,
        env = "TENURE_DEVICE_VERIFICATION_URI",
        value_name = "URI",
        help_heading = "HTTP"
    )]
    pub device_verification_uri: Option<String>,
    /// The server's public base URL, its scheme, host and port as clients reach it:
    /// each zone's issuer is {URL}/zones/{zone_id} (file: http.public_url)
    /// [default: http:// and each request's Host].
    #[arg(
        long,
        env = "TENURE_PUBLIC_URL",
        value_name = "URL",
        help_heading = "HTTP"
    )]
    pub public_url: Option<String>,
    /// The host's authorization endpoint, where users sign in and consent, named
    /// in discovery documents; {zone_id} is replaced by the zone (file:
    /// http.authorization_endpoint) [default: none].
    #[arg(
        long,
        env = "TENURE_AUTHORIZATION_ENDPOINT",
        value_name = "URL",
        help_heading = "HTTP"
    )]
    pub authorization_endpoint: Option<String>,
    /// The administrator token, from the environment or the file (file:
    /// http.admin_token) only; refused on the command line.
    #[arg(
        long,
        env = "TENURE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "HTTP"
    )]
    pub admin_token: Option<Sensitive>,

    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of its own
    /// (file: metrics.addr) [default: none].
    #[arg(
        long,
        env = "TENURE_METRICS_ADDR",
        value_name = "ADDR",
        help_heading = "Logs and metrics"
    )]
    pub metrics_addr: Option<String>,
    /// The log format on standard error (file: log.format) [default: text].
    #[arg(
        long,
        env = "TENURE_LOG_FORMAT",
        value_name = "FORMAT",
        help_heading = "Logs and metrics"
    )]
    pub log_format: Option<LogFormat>,

    /// The key cursors are signed with, 32 bytes in base64, from the environment
    /// or the file (file: store.cursor_key) only; refused on the command line.
    #[arg(
        long,
        env = "TENURE_CURSOR_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Store"
    )]
    pub cursor_key: Option<Sensitive>,
    /// The most connections the PostgreSQL pool opens (file: postgres.pool_size)
    /// [default: deadpool's, 4 × CPUs].
    #[arg(
        long,
        env = "TENURE_POSTGRES_POOL_SIZE",
        value_name = "N",
        help_heading = "Store"
    )]
    pub postgres_pool_size: Option<usize>,
    /// Seconds a request waits for a connection of a busy PostgreSQL pool before it
    /// is answered 503 (file: postgres.wait_timeout_seconds) [default: 5].
    #[arg(
        long,
        env = "TENURE_POSTGRES_WAIT_TIMEOUT",
        value_name = "SECONDS",
        help_heading = "Store"
    )]
    pub postgres_wait_timeout: Option<u64>,
    /// Seconds making a PostgreSQL connection may take (file:
    /// postgres.connect_timeout_seconds) [default: 5].
    #[arg(
        long,
        env = "TENURE_POSTGRES_CONNECT_TIMEOUT",
        value_name = "SECONDS",
        help_heading = "Store"
    )]
    pub postgres_connect_timeout: Option<u64>,
    /// Whether connections to PostgreSQL use TLS (file: postgres.tls) [default: auto].
    #[arg(
        long,
        env = "TENURE_POSTGRES_TLS",
        value_name = "MODE",
        help_heading = "Store"
    )]
    pub postgres_tls: Option<PostgresTls>,
    /// Trust only this CA's PEM certificates for PostgreSQL's TLS, which it turns
    /// on (file: postgres.ca_file) [default: the system's roots].
    #[arg(
        long,
        env = "TENURE_POSTGRES_CA_FILE",
        value_name = "FILE",
        help_heading = "Store"
    )]
    pub postgres_ca_file: Option<PathBuf>,

    /// Seconds between background sweeps; 0 runs none (file: sweep.interval_seconds)
    /// [default: 60].
    #[arg(
        long,
        env = "TENURE_SWEEP_INTERVAL",
        value_name = "SECONDS",
        help_heading = "Sweeper"
    )]
    pub sweep_interval: Option<u64>,
    /// Records of each kind one sweep batch expires or deletes in a zone (file:
    /// sweep.batch) [default: 500].
    #[arg(
        long,
        env = "TENURE_SWEEP_BATCH",
        value_name = "N",
        help_heading = "Sweeper"
    )]
    pub sweep_batch: Option<usize>,
    /// Batches one sweep run makes at most, over all zones; the next run goes on
    /// where it stopped (file: sweep.max_batches) [default: 100].
    #[arg(
        long,
        env = "TENURE_SWEEP_MAX_BATCHES",
        value_name = "N",
        help_heading = "Sweeper"
    )]
    pub sweep_max_batches: Option<usize>,

    /// Seconds after a refresh during which the spent refresh token is still
    /// accepted, for a client that lost the response (file:
    /// engine.reuse_grace_seconds) [default: 0].
    #[arg(
        long,
        env = "TENURE_REUSE_GRACE",
        value_name = "SECONDS",
        help_heading = "Engine"
    )]
    pub reuse_grace: Option<u64>,
    /// Seconds a device code and its user code live (file:
    /// engine.device_code_lifetime_seconds) [default: 600].
    #[arg(
        long,
        env = "TENURE_DEVICE_CODE_LIFETIME",
        value_name = "SECONDS",
        help_heading = "Engine"
    )]
    pub device_code_lifetime: Option<u64>,
    /// Seconds an authorization code lives, 1 to 600 (file:
    /// engine.code_lifetime_seconds) [default: 60].
    #[arg(
        long,
        env = "TENURE_CODE_LIFETIME",
        value_name = "SECONDS",
        help_heading = "Engine"
    )]
    pub code_lifetime: Option<u64>,
    /// Require PKCE of every client, confidential ones too; by default only public
    /// clients must use it (file: engine.pkce_all_clients) [default: false].
    #[arg(
        long,
        env = "TENURE_PKCE_ALL_CLIENTS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        help_heading = "Engine"
    )]
    pub pkce_all_clients: Option<bool>,

    /// The access-token lifetime a client registered over HTTP without one gets, in
    /// seconds (file: clients.access_token_ttl_seconds) [default: 3600]. Each client
    /// keeps its own; changing this affects clients registered from now on.
    #[arg(
        long,
        env = "TENURE_ACCESS_TOKEN_TTL",
        value_name = "SECONDS",
        help_heading = "Clients"
    )]
    pub access_token_ttl: Option<u32>,
    /// The refresh-token lifetime a client registered over HTTP without one gets, in
    /// seconds (file: clients.refresh_token_ttl_seconds) [default: 2592000].
    #[arg(
        long,
        env = "TENURE_REFRESH_TOKEN_TTL",
        value_name = "SECONDS",
        help_heading = "Clients"
    )]
    pub refresh_token_ttl: Option<u32>,
}

/// The flags that carry secrets, by argument id: refused on the command line.
const SECRET_ARGS: [(&str, &str); 2] = [
    ("admin_token", "TENURE_ADMIN_TOKEN"),
    ("cursor_key", "TENURE_CURSOR_KEY"),
];

/// Refuses a secret given as a flag of `tenure serve` (`matches` are the
/// subcommand's), without echoing it.
pub fn refuse_secret_flags(matches: &ArgMatches) -> Result<(), CliError> {
    for (id, env) in SECRET_ARGS {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(CliError::Usage(format!(
                "--{} is not taken on the command line, where `ps` shows it to every user: \
                 set {env} or put it in the config file",
                id.replace('_', "-")
            )));
        }
    }
    Ok(())
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, with the event's spans, for log pipelines.
    Json,
}

/// Whether connections to PostgreSQL use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostgresTls {
    /// As the URL's `sslmode` says; else plaintext to a loopback host or a Unix
    /// socket, TLS to any other.
    Auto,
    /// Never.
    Disable,
    /// Always, verifying the server's certificate and host name.
    Require,
}

/// A string that is a secret: `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Sensitive {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Sensitive(s.to_owned()))
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The TOML file, as written. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    postgres: PostgresSection,
    #[serde(default)]
    sweep: SweepSection,
    #[serde(default)]
    engine: EngineSection,
    #[serde(default)]
    clients: ClientsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    addr: Option<String>,
    request_timeout_seconds: Option<u64>,
    shutdown_timeout_seconds: Option<u64>,
    body_limit_bytes: Option<usize>,
    device_verification_uri: Option<String>,
    public_url: Option<String>,
    authorization_endpoint: Option<String>,
    admin_token: Option<Sensitive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    #[serde(default)]
    memory: bool,
    data: Option<PathBuf>,
    redb: Option<PathBuf>,
    postgres: Option<Sensitive>,
    cursor_key: Option<Sensitive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresSection {
    pool_size: Option<usize>,
    wait_timeout_seconds: Option<u64>,
    connect_timeout_seconds: Option<u64>,
    tls: Option<PostgresTls>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepSection {
    interval_seconds: Option<u64>,
    batch: Option<usize>,
    max_batches: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsSection {
    access_token_ttl_seconds: Option<u32>,
    refresh_token_ttl_seconds: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    reuse_grace_seconds: Option<u64>,
    device_code_lifetime_seconds: Option<u64>,
    code_lifetime_seconds: Option<u64>,
    pkce_all_clients: Option<bool>,
}

/// The background sweeper's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// Time between runs; `None`: no sweeper.
    pub interval: Option<Duration>,
    /// Records of each kind per batch.
    pub batch: usize,
    /// Batches per run.
    pub max_batches: usize,
}

/// Everything `serve` runs with, resolved.
#[derive(Debug)]
pub struct Settings {
    /// The API's listen address.
    pub addr: String,
    /// The Prometheus listener's address, if any.
    pub metrics_addr: Option<String>,
    /// The log format.
    pub log_format: LogFormat,
    /// The administrator token, if set.
    pub admin_token: Option<Sensitive>,
    /// Where the store is.
    pub store: StoreLocation,
    /// The cursor key, if set.
    pub cursor_key: Option<tenure::CursorKey>,
    /// RFC 8628 `verification_uri`.
    pub device_verification_uri: String,
    /// The public base URL, if set.
    pub public_url: Option<String>,
    /// The host's authorization endpoint, if set.
    pub authorization_endpoint: Option<String>,
    /// How long a request may take.
    pub request_timeout: Duration,
    /// How long in-flight requests get after a stop signal.
    pub shutdown_timeout: Duration,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The sweeper.
    pub sweep: SweepSettings,
    /// The reuse grace window.
    pub reuse_grace: Duration,
    /// How long device codes live.
    pub device_code_lifetime: Duration,
    /// How long authorization codes live.
    pub code_lifetime: Duration,
    /// Whether every client must use PKCE.
    pub pkce_all_clients: bool,
    /// The access-token lifetime of clients registered without one, in seconds.
    pub access_token_ttl_seconds: u32,
    /// The refresh-token lifetime of clients registered without one, in seconds.
    pub refresh_token_ttl_seconds: u32,
}

/// The longest sweep interval: a year.
const MAX_SWEEP_INTERVAL_SECONDS: u64 = 365 * 24 * 3600;

/// The default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

impl Settings {
    /// Reads the file (if any) and layers the environment and flags (both already
    /// in `args` and `store`, flags winning, as clap reads them) over it.
    /// `data_given` says whether `--data` or `TENURE_DATA` was set, rather than
    /// left at its default.
    pub fn resolve(
        store: &StoreArgs,
        data_given: bool,
        args: ServeArgs,
    ) -> Result<Settings, CliError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let pool = postgres_pool(&args, file.postgres)?;
        let http = file.http;
        let defaults = tenure::EngineConfig::default();
        let default_http = tenure_http::HttpConfig::default();

        let request_timeout = positive_seconds(
            args.request_timeout.or(http.request_timeout_seconds),
            30,
            "the request timeout (--request-timeout, TENURE_REQUEST_TIMEOUT, [http] request_timeout_seconds)",
        )?;
        let shutdown_timeout = Duration::from_secs(
            args.shutdown_timeout
                .or(http.shutdown_timeout_seconds)
                .unwrap_or(30),
        );
        let body_limit = args
            .body_limit
            .or(http.body_limit_bytes)
            .unwrap_or(default_http.body_limit);
        if body_limit == 0 {
            return Err(CliError::Usage(
                "the body limit (--body-limit, TENURE_BODY_LIMIT, [http] body_limit_bytes) must be positive"
                    .to_owned(),
            ));
        }
        let device_verification_uri = args
            .device_verification_uri
            .or(http.device_verification_uri)
            .unwrap_or(default_http.verification_uri);
        check_uri(
            &device_verification_uri,
            "the device verification URI (--device-verification-uri, TENURE_DEVICE_VERIFICATION_URI, [http] device_verification_uri)",
        )?;
        let public_url = args.public_url.or(http.public_url);
        if let Some(url) = &public_url {
            check_uri(
                url,
                "the public URL (--public-url, TENURE_PUBLIC_URL, [http] public_url)",
            )?;
        }
        let authorization_endpoint = args.authorization_endpoint.or(http.authorization_endpoint);
        if let Some(url) = &authorization_endpoint {
            check_uri(
                url,
                "the authorization endpoint (--authorization-endpoint, TENURE_AUTHORIZATION_ENDPOINT, [http] authorization_endpoint)",
            )?;
        }

        let interval = args
            .sweep_interval
            .or(file.sweep.interval_seconds)
            .unwrap_or(60);
        // A longer period would overflow the timer; nobody needs a sweep a year apart.
        if interval > MAX_SWEEP_INTERVAL_SECONDS {
            return Err(CliError::Usage(format!(
                "the sweep interval (--sweep-interval, TENURE_SWEEP_INTERVAL, sweep.interval_seconds) \
                 must be at most {MAX_SWEEP_INTERVAL_SECONDS} seconds"
            )));
        }
        let sweep = SweepSettings {
            interval: (interval > 0).then(|| Duration::from_secs(interval)),
            batch: positive(
                args.sweep_batch.or(file.sweep.batch),
                500,
                "the sweep batch (--sweep-batch, TENURE_SWEEP_BATCH, [sweep] batch)",
            )?,
            max_batches: positive(
                args.sweep_max_batches.or(file.sweep.max_batches),
                100,
                "the sweep's batches per run (--sweep-max-batches, TENURE_SWEEP_MAX_BATCHES, [sweep] max_batches)",
            )?,
        };

        let access_token_ttl_seconds = args
            .access_token_ttl
            .or(file.clients.access_token_ttl_seconds)
            .unwrap_or(default_http.default_access_token_ttl_seconds);
        let refresh_token_ttl_seconds = args
            .refresh_token_ttl
            .or(file.clients.refresh_token_ttl_seconds)
            .unwrap_or(default_http.default_refresh_token_ttl_seconds);
        if access_token_ttl_seconds == 0 || refresh_token_ttl_seconds == 0 {
            return Err(CliError::Usage(
                "token lifetimes (--access-token-ttl, --refresh-token-ttl, [clients]) must be positive"
                    .to_owned(),
            ));
        }
        let reuse_grace = args
            .reuse_grace
            .or(file.engine.reuse_grace_seconds)
            .map_or_else(
                || defaults.reuse_grace.to_std().unwrap_or_default(),
                Duration::from_secs,
            );
        let device_code_lifetime = match args
            .device_code_lifetime
            .or(file.engine.device_code_lifetime_seconds)
        {
            Some(s) => positive_seconds(
                Some(s),
                0,
                "the device code lifetime (--device-code-lifetime, TENURE_DEVICE_CODE_LIFETIME, [engine] device_code_lifetime_seconds)",
            )?,
            None => defaults
                .device_code_lifetime
                .to_std()
                .unwrap_or(Duration::from_secs(600)),
        };

        let code_lifetime = args
            .code_lifetime
            .or(file.engine.code_lifetime_seconds)
            .unwrap_or(60);
        if !(1..=600).contains(&code_lifetime) {
            return Err(CliError::Usage(
                "the authorization code lifetime (--code-lifetime, TENURE_CODE_LIFETIME, [engine] code_lifetime_seconds) must be 1 to 600 seconds"
                    .to_owned(),
            ));
        }
        let code_lifetime = Duration::from_secs(code_lifetime);
        let pkce_all_clients = args
            .pkce_all_clients
            .or(file.engine.pkce_all_clients)
            .unwrap_or(false);

        let store = store_location(store, data_given, file.store.location()?)?.with_pool(pool);

        let cursor_key = args
            .cursor_key
            .or(file.store.cursor_key)
            .map(|k| parse_cursor_key(k.expose()).map_err(CliError::Usage))
            .transpose()?
            .map(tenure::CursorKey::new);

        Ok(Settings {
            addr: args
                .addr
                .or(http.addr)
                .unwrap_or_else(|| DEFAULT_ADDR.to_owned()),
            metrics_addr: args.metrics_addr.or(file.metrics.addr),
            log_format: args.log_format.or(file.log.format).unwrap_or_default(),
            admin_token: args
                .admin_token
                .or(http.admin_token)
                .filter(|t| !t.expose().is_empty()),
            store,
            cursor_key,
            device_verification_uri,
            public_url,
            authorization_endpoint,
            request_timeout,
            shutdown_timeout,
            body_limit,
            sweep,
            reuse_grace,
            device_code_lifetime,
            code_lifetime,
            pkce_all_clients,
            access_token_ttl_seconds,
            refresh_token_ttl_seconds,
        })
    }
}

impl StoreSection {
    /// The store the file names, if it names one; refuses more than one.
    fn location(&self) -> Result<Option<StoreLocation>, CliError> {
        let named = [
            self.memory,
            self.data.is_some(),
            self.redb.is_some(),
            self.postgres.is_some(),
        ]
        .into_iter()
        .filter(|&b| b)
        .count();
        if named > 1 {
            return Err(CliError::Usage(
                "the config file's [store] names more than one store: keep one of memory, data, redb and postgres"
                    .to_owned(),
            ));
        }
        Ok(if self.memory {
            Some(StoreLocation::Memory)
        } else if let Some(url) = &self.postgres {
            Some(StoreLocation::postgres(url.expose()))
        } else if let Some(dir) = &self.redb {
            Some(StoreLocation::Redb(dir.clone()))
        } else {
            self.data.clone().map(StoreLocation::Sled)
        })
    }
}

/// The PostgreSQL pool's settings.
fn postgres_pool(args: &ServeArgs, file: PostgresSection) -> Result<PostgresPool, CliError> {
    let size = args.postgres_pool_size.or(file.pool_size);
    if size == Some(0) {
        return Err(CliError::Usage(
            "the PostgreSQL pool size (--postgres-pool-size, TENURE_POSTGRES_POOL_SIZE, [postgres] pool_size) must be positive"
                .to_owned(),
        ));
    }
    let seconds = |value: Option<u64>, what: &str| {
        value
            .map(|s| positive_seconds(Some(s), 0, what))
            .transpose()
    };
    let wait_timeout = seconds(
        args.postgres_wait_timeout.or(file.wait_timeout_seconds),
        "the PostgreSQL wait timeout (--postgres-wait-timeout, TENURE_POSTGRES_WAIT_TIMEOUT, [postgres] wait_timeout_seconds)",
    )?;
    let connect_timeout = seconds(
        args.postgres_connect_timeout
            .or(file.connect_timeout_seconds),
        "the PostgreSQL connect timeout (--postgres-connect-timeout, TENURE_POSTGRES_CONNECT_TIMEOUT, [postgres] connect_timeout_seconds)",
    )?;
    let ca_file = args.postgres_ca_file.clone().or(file.ca_file);
    let tls = match (args.postgres_tls.or(file.tls), ca_file) {
        (Some(PostgresTls::Disable), Some(_)) => {
            return Err(CliError::Usage(
                "a PostgreSQL CA file (--postgres-ca-file, TENURE_POSTGRES_CA_FILE, [postgres] ca_file) \
                 needs TLS, which --postgres-tls disable turns off"
                    .to_owned(),
            ));
        }
        (_, Some(ca)) => Some(TlsMode::ca_file(ca)),
        (Some(PostgresTls::Disable), None) => Some(TlsMode::Disable),
        (Some(PostgresTls::Require), None) => Some(TlsMode::system_roots()),
        (Some(PostgresTls::Auto) | None, None) => None,
    };
    Ok(PostgresPool {
        size,
        wait_timeout,
        connect_timeout,
        tls,
    })
}

/// The store: the command line and environment first, then the file, then sled in
/// the default directory.
fn store_location(
    args: &StoreArgs,
    data_given: bool,
    from_file: Option<StoreLocation>,
) -> Result<StoreLocation, CliError> {
    if args.memory || args.postgres.is_some() || args.redb.is_some() || data_given {
        return Ok(StoreLocation::from_args(args));
    }
    Ok(from_file.unwrap_or_else(|| StoreLocation::from_args(args)))
}

/// Reads and parses the file; a TOML error names its line and column but never
/// quotes the line, which may hold a secret.
fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        CliError::Usage(format!(
            "config file {}: {at}{}",
            path.display(),
            without_values(e.message())
        ))
    })
}

/// A deserializer's message without the value it quotes: "invalid type: integer
/// `123`, expected a string" becomes "invalid type: integer, expected a string",
/// since the value may be a secret under the wrong key.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((unexpected, expected)) = rest.split_once(", expected") {
                let kind = unexpected.split([' ', '`', '"']).next().unwrap_or("value");
                return format!("{prefix}{kind}, expected{expected}");
            }
            return format!("{prefix}a value that does not fit");
        }
    }
    message.to_owned()
}

fn positive(value: Option<usize>, default: usize, what: &str) -> Result<usize, CliError> {
    match value.unwrap_or(default) {
        0 => Err(CliError::Usage(format!("{what} must be positive"))),
        n => Ok(n),
    }
}

fn positive_seconds(value: Option<u64>, default: u64, what: &str) -> Result<Duration, CliError> {
    match value.unwrap_or(default) {
        0 => Err(CliError::Usage(format!("{what} must be positive"))),
        n => Ok(Duration::from_secs(n)),
    }
}

fn check_uri(uri: &str, what: &str) -> Result<(), CliError> {
    let ok = (uri.starts_with("https://") || uri.starts_with("http://"))
        && !uri.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{what} must be an http or https URL, not {uri:?}"
        )))
    }
}

/// A cursor key from its base64 text (standard or URL-safe alphabet, padded or
/// not). The error never quotes the key.
pub fn parse_cursor_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let bytes = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok());
    match bytes.map(<[u8; 32]>::try_from) {
        Some(Ok(key)) => Ok(key),
        Some(Err(bytes)) => Err(format!(
            "the cursor key (TENURE_CURSOR_KEY or [store] cursor_key) must be 32 bytes, not {}; \
             `openssl rand -base64 32` makes one",
            bytes.len()
        )),
        None => Err(
            "the cursor key (TENURE_CURSOR_KEY or [store] cursor_key) is not base64; \
             `openssl rand -base64 32` makes one"
                .to_owned(),
        ),
    }
}

/// The text a generated cursor key is kept as.
pub fn encode_cursor_key(key: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store_args() -> StoreArgs {
        StoreArgs {
            data: PathBuf::from("./tenure-data"),
            memory: false,
            redb: None,
            postgres: None,
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenure.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let (_dir, path) = file(
            "[http]\naddr = \"0.0.0.0:1\"\nrequest_timeout_seconds = 5\n\
             [sweep]\ninterval_seconds = 7\n[store]\nmemory = true\n",
        );
        let args = ServeArgs {
            config: Some(path),
            addr: Some("127.0.0.1:2".to_owned()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), false, args).unwrap();
        assert_eq!(s.addr, "127.0.0.1:2");
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.sweep.interval, Some(Duration::from_secs(7)));
        assert_eq!(s.sweep.batch, 500);
        assert_eq!(s.store, StoreLocation::Memory);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.device_verification_uri, "https://localhost/device");
    }

    #[test]
    fn client_token_lifetimes_come_from_the_file_unless_a_flag_says_otherwise() {
        let (_dir, path) =
            file("[clients]\naccess_token_ttl_seconds = 300\nrefresh_token_ttl_seconds = 7200\n");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), false, args).unwrap();
        assert_eq!(
            (s.access_token_ttl_seconds, s.refresh_token_ttl_seconds),
            (300, 7200)
        );
        let args = ServeArgs {
            config: Some(path),
            access_token_ttl: Some(60),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), false, args).unwrap();
        assert_eq!(
            (s.access_token_ttl_seconds, s.refresh_token_ttl_seconds),
            (60, 7200)
        );
        let args = ServeArgs {
            refresh_token_ttl: Some(0),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("positive"), "{e}");
    }

    #[test]
    fn a_store_on_the_command_line_beats_the_file() {
        let (_dir, path) = file("[store]\nmemory = true\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), true, args).unwrap();
        assert_eq!(s.store, StoreLocation::Sled(PathBuf::from("./tenure-data")));
    }

    #[test]
    fn redb_is_named_by_the_file_or_the_command_line_and_alone() {
        let (_dir, path) = file("[store]\nredb = \"/var/lib/tenure\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), false, args).unwrap();
        assert_eq!(
            s.store,
            StoreLocation::Redb(PathBuf::from("/var/lib/tenure"))
        );
        // --redb (or TENURE_REDB) beats the file's store.
        let (_dir, path) = file("[store]\nmemory = true\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let store = StoreArgs {
            redb: Some(PathBuf::from("here")),
            ..store_args()
        };
        let s = Settings::resolve(&store, false, args).unwrap();
        assert_eq!(s.store, StoreLocation::Redb(PathBuf::from("here")));
        // Without any, sled in the default directory stays the store.
        let s = Settings::resolve(&store_args(), false, ServeArgs::default()).unwrap();
        assert_eq!(s.store, StoreLocation::Sled(PathBuf::from("./tenure-data")));
        // A file naming two stores is refused.
        let (_dir, path) = file("[store]\nredb = \"a\"\ndata = \"b\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than one store"), "{e}");
    }

    #[test]
    fn a_bad_file_names_the_line_but_never_quotes_it() {
        let (_dir, path) = file("[http]\nadmin_token = 12345678\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("12345678"), "{e}");
        let (_dir, path) = file("[postgres]\npool_size = \"hunter2\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type: string, expected"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let (_dir, path) = file("[http]\nadress = \"x\"\n");
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("adress"), "unknown keys are refused: {e}");
    }

    #[test]
    fn postgres_pool_settings_reach_the_store_location() {
        let (_dir, path) = file(
            "[store]\npostgres = \"postgres://u:p@db/x\"\n\
             [postgres]\npool_size = 8\nwait_timeout_seconds = 2\nca_file = \"/etc/ca.pem\"\n",
        );
        let args = ServeArgs {
            config: Some(path.clone()),
            postgres_connect_timeout: Some(3),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&store_args(), false, args).unwrap();
        let StoreLocation::Postgres { url, pool } = s.store else {
            panic!("{:?}", s.store)
        };
        assert_eq!(url, "postgres://u:p@db/x");
        assert_eq!(
            pool,
            PostgresPool {
                size: Some(8),
                wait_timeout: Some(Duration::from_secs(2)),
                connect_timeout: Some(Duration::from_secs(3)),
                tls: Some(TlsMode::ca_file("/etc/ca.pem")),
            }
        );
        let args = ServeArgs {
            config: Some(path),
            postgres_tls: Some(PostgresTls::Disable),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&store_args(), false, args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs TLS"), "{e}");
    }

    #[test]
    fn cursor_keys_are_32_bytes_of_base64() {
        let key = [7u8; 32];
        assert_eq!(parse_cursor_key(&encode_cursor_key(&key)).unwrap(), key);
        assert_eq!(parse_cursor_key(&STANDARD.encode(key)).unwrap(), key);
        let short = parse_cursor_key(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(short.contains("32 bytes, not 16"), "{short}");
        let garbage = parse_cursor_key("not base64 at all!").unwrap_err();
        assert!(!garbage.contains("at all"), "{garbage}");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Sensitive::from_str("hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
