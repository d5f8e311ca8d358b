//! `tenure serve`: the HTTP API on the chosen store, shut down gracefully on SIGINT
//! or SIGTERM.

use std::sync::Arc;

use clap::Args;
use tenure::{Engine, Secret, SecretKind};
use tenure_http::StaticAdminToken;

use crate::error::CliError;
use crate::store::{Store, StoreArgs};

/// `tenure serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
}

/// Resolves when the process is asked to stop.
async fn shutdown_signal() {
    let interrupt = async {
        // If the handler cannot be installed, only SIGTERM stops the server.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Runs the server until SIGINT or SIGTERM; in-flight requests finish, the store is
/// flushed, and the exit code is 0.
pub async fn run(store_args: &StoreArgs, args: ServeArgs) -> Result<(), CliError> {
    let store = Store::create(store_args).await?;
    let token = match std::env::var("TENURE_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => {
            let t = Secret::generate(SecretKind::AccessToken)?
                .expose()
                .to_owned();
            // Printed once, so the operator can use it; set TENURE_ADMIN_TOKEN to avoid.
            println!("admin token: {t}");
            t
        }
    };
    let engine = Engine::builder(store.storage()).build();
    let app = tenure_http::router(engine, Arc::new(StaticAdminToken::new(&token)));
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.addr)))?;
    let local = listener.local_addr().map_err(CliError::Serve)?;
    println!("listening on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(CliError::Serve)?;
    store.flush().await?;
    println!("stopped; the store is flushed");
    Ok(())
}
