//! `tenure serve`: the HTTP API on the configured store, for running unattended.
//!
//! It logs to standard error ([`telemetry`]), serves Prometheus metrics on a
//! listener of their own when `--metrics-addr` is set, answers `/healthz` and
//! `/readyz` outside the zones, sweeps expired records in the background
//! ([`sweeper`]), and on SIGINT or SIGTERM stops taking connections, gives
//! in-flight requests the shutdown deadline to finish, flushes the store and exits
//! 0. Its settings are described in [`crate::config`].
//!
//! Standard output carries only what the person starting it reads:
//! `listening on http://ADDR`, `metrics on http://ADDR/metrics`, a generated
//! administrator token (`admin token: …`, when none is set), and `stopped; the store
//! is flushed`.

mod sweeper;
mod telemetry;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use tenure::{CursorKey, Engine, EngineConfig, Secret, SecretKind};
use tenure_http::{HttpConfig, StaticAdminToken};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::config::ServeArgs;
use crate::config::{self, Settings};
use crate::error::CliError;
use crate::store::{Store, StoreArgs, StoreLocation};

use self::sweeper::Sweeper;

/// The file a sled or redb store keeps its generated cursor key in, in its
/// directory.
const CURSOR_KEY_FILE: &str = "cursor.key";

/// Listens for SIGINT and SIGTERM from now on (so that neither kills the process
/// once this is called); the future resolves on the first of them.
#[cfg(unix)]
fn stop_signals() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        // A handler that could not be installed leaves the other to stop the server.
        let received = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
            match installed {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signals() -> impl Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn bind(addr: &str, what: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {addr} for {what}: {e}")))
}

/// Prints a line for the person who started the server, now.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // Nobody reading standard output is no reason to stop serving.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the server until SIGINT or SIGTERM; in-flight requests get the shutdown
/// deadline to finish, the store is flushed, and the exit code is 0.
/// `data_given` says whether `--data` or `TENURE_DATA` named the sled directory.
pub async fn run(
    store_args: &StoreArgs,
    data_given: bool,
    args: ServeArgs,
) -> Result<(), CliError> {
    let settings = Settings::resolve(store_args, data_given, args)?;
    telemetry::init_logs(settings.log_format)?;
    if matches!(settings.store, StoreLocation::Postgres { .. }) && settings.cursor_key.is_none() {
        return Err(CliError::Usage(
            "PostgreSQL needs a cursor key, the same in every process that serves the database: \
             set TENURE_CURSOR_KEY, or cursor_key under [store] in the config file \
             (`openssl rand -base64 32` makes one)"
                .to_owned(),
        ));
    }

    let listener = bind(&settings.addr, "the API").await?;
    let metrics = match &settings.metrics_addr {
        Some(addr) => Some((bind(addr, "metrics").await?, telemetry::install_metrics()?)),
        None => None,
    };

    let store = Store::open_at(&settings.store, true).await?;
    let cursor_key = cursor_key(&settings)?;
    let engine = Engine::builder(store.storage())
        .config(engine_config(&settings)?)
        .cursor_key(cursor_key)
        .build();
    let token = match &settings.admin_token {
        Some(t) => t.expose().to_owned(),
        None => {
            let t = Secret::generate(SecretKind::AccessToken)?
                .expose()
                .to_owned();
            // Printed once, on standard output only, so the operator can use it; the
            // log says that it happened, never what it is.
            say(&format!("admin token: {t}"));
            tracing::info!(
                "no administrator token set (TENURE_ADMIN_TOKEN): generated one, printed on standard output"
            );
            t
        }
    };
    let http = HttpConfig {
        body_limit: settings.body_limit,
        verification_uri: settings.device_verification_uri.clone(),
        default_access_token_ttl_seconds: settings.access_token_ttl_seconds,
        default_refresh_token_ttl_seconds: settings.refresh_token_ttl_seconds,
        public_base_url: settings.public_url.clone(),
        authorization_endpoint: settings.authorization_endpoint.clone(),
    };
    let api = tenure_http::router_with(
        engine.clone(),
        Arc::new(StaticAdminToken::new(&token)),
        http,
    );
    drop(token);
    // Probes stay outside the access log, the request metrics and the timeout:
    // they are the orchestrator's, and `/readyz` bounds its own wait.
    let app = telemetry::layered(api, settings.request_timeout, settings.body_limit)
        .merge(tenure_http::health_router(engine.clone()));

    let mut signals = std::pin::pin!(stop_signals());
    let (stop_tx, stop_rx) = watch::channel(false);
    let local = listener.local_addr().map_err(CliError::Serve)?;
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(telemetry::stopped(stop_rx.clone()))
            .into_future(),
    );
    say(&format!("listening on http://{local}"));
    tracing::info!(addr = %local, store = ?settings.store, "listening");
    let mut helpers = Vec::new();
    if let Some((listener, handle)) = metrics {
        let addr = listener.local_addr().map_err(CliError::Serve)?;
        helpers.push(tokio::spawn(async move {
            if let Err(e) = telemetry::serve_metrics(listener, handle, stop_rx).await {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "the metrics listener failed"
                );
            }
        }));
        say(&format!("metrics on http://{addr}/metrics"));
        tracing::info!(%addr, "serving metrics");
    } else {
        drop(stop_rx);
    }
    if let Some(sweeper) = Sweeper::new(engine, settings.sweep) {
        helpers.push(tokio::spawn(sweeper.run(stop_tx.subscribe())));
    }

    let deadline = settings.shutdown_timeout;
    let served = tokio::select! {
        // The server ends by itself only if it fails.
        served = &mut server => served,
        () = &mut signals => {
            tracing::info!(deadline_seconds = deadline.as_secs(), "stopping: finishing in-flight requests");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(deadline, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!(
                        deadline_seconds = deadline.as_secs(),
                        "shutdown deadline passed: abandoning the requests still in flight"
                    );
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    let _ = stop_tx.send(true);
    for helper in helpers {
        if tokio::time::timeout(deadline, helper).await.is_err() {
            tracing::warn!("a background task outlasted the shutdown deadline");
        }
    }
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(CliError::Serve(e)),
        Err(e) => return Err(CliError::Serve(std::io::Error::other(e))),
    }
    store.flush().await?;
    tracing::info!("stopped; the store is flushed");
    say("stopped; the store is flushed");
    Ok(())
}

/// The engine's settings: the defaults, with what the configuration sets.
fn engine_config(settings: &Settings) -> Result<EngineConfig, CliError> {
    let duration = |d: std::time::Duration, what: &str| {
        chrono::Duration::from_std(d)
            .map_err(|_| CliError::Usage(format!("the {what} is too long")))
    };
    Ok(EngineConfig {
        reuse_grace: duration(settings.reuse_grace, "reuse grace")?,
        device_code_lifetime: duration(settings.device_code_lifetime, "device code lifetime")?,
        code_lifetime: duration(settings.code_lifetime, "authorization code lifetime")?,
        pkce: if settings.pkce_all_clients {
            tenure::PkceRequirement::AllClients
        } else {
            tenure::PkceRequirement::PublicClients
        },
        ..EngineConfig::default()
    })
}

/// The cursor key: the configured one; else, on sled and redb, the one kept in the
/// store's directory (made on first start); on memory, a fresh one. Never the
/// engine's default.
fn cursor_key(settings: &Settings) -> Result<CursorKey, CliError> {
    if let Some(key) = &settings.cursor_key {
        return Ok(key.clone());
    }
    match &settings.store {
        StoreLocation::Sled(dir) | StoreLocation::Redb(dir) => {
            kept_cursor_key(&dir.join(CURSOR_KEY_FILE))
        }
        StoreLocation::Memory => Ok(CursorKey::new(random_key()?)),
        // Refused before the store was opened.
        StoreLocation::Postgres { .. } => Err(CliError::Usage(
            "PostgreSQL needs a cursor key: set TENURE_CURSOR_KEY".to_owned(),
        )),
    }
}

fn random_key() -> Result<[u8; 32], CliError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| {
        CliError::Usage(format!("the operating system's random source failed: {e}"))
    })?;
    Ok(key)
}

/// Reads an embedded (sled or redb) store's cursor key from `path`, or makes one
/// and keeps it there (mode 0600, written whole or not at all). Called with the
/// store open, so no other process holds the directory.
fn kept_cursor_key(path: &Path) -> Result<CursorKey, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let key = config::parse_cursor_key(&text)
                .map_err(|reason| CliError::Usage(format!("{}: {reason}", path.display())))?;
            return Ok(CursorKey::new(key));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::io(path, e)),
    }
    let key = random_key()?;
    let temporary = path.with_extension("key.new");
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        writeln!(file, "{}", config::encode_cursor_key(&key))?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|e| CliError::io(path, e))?;
    tracing::info!(file = %path.display(), "generated the cursor key and kept it with the store");
    Ok(CursorKey::new(key))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the cursor key file is readable by others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
