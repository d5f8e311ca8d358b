//! `tenure`: the grant-lifecycle engine on the command line.
//!
//! The embedded default store is sled in `./tenure-data` (`--data DIR` or
//! `TENURE_DATA` name another); `--memory` runs on an empty in-memory store.
//! Every command takes `--zone` (default `default`); the ones that print records
//! print a table, or JSON with `--json`. Errors are one line on stderr and a
//! non-zero exit code.

mod commands;
mod demo;
mod error;
mod output;
mod serve;
mod store;
mod transfer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::store::StoreArgs;

/// The grant-lifecycle engine on the command line.
#[derive(Debug, Parser)]
#[command(name = "tenure", version, about)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(serve::ServeArgs),
    /// Walk a grant through its whole life on the store, printing a timeline.
    Demo,
    /// Inspect and change delegated grants.
    #[command(subcommand)]
    Grants(commands::GrantsCommand),
    /// Inspect, register and patch clients.
    #[command(subcommand)]
    Clients(commands::ClientsCommand),
    /// Introspect and revoke tokens.
    #[command(subcommand)]
    Tokens(commands::TokensCommand),
    /// Persist the expiry of grants whose time has passed and prune expired tokens.
    Sweep(commands::SweepArgs),
    /// Write a zone's records as JSON Lines.
    Export(transfer::ExportArgs),
    /// Read records written by `export`; each line applies whole or not at all.
    Import(transfer::ImportArgs),
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.store, args).await,
        Command::Demo => demo::run(&cli.store).await,
        Command::Grants(c) => commands::grants(&cli.store, c).await,
        Command::Clients(c) => commands::clients(&cli.store, c).await,
        Command::Tokens(c) => commands::tokens(&cli.store, c).await,
        Command::Sweep(a) => commands::sweep(&cli.store, a).await,
        Command::Export(a) => transfer::export(&cli.store, a).await,
        Command::Import(a) => transfer::import(&cli.store, a).await,
    }
}

/// The error and its causes on one line.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message, on one line: what is wrong and where.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!("tenure: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tenure: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenure: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}
