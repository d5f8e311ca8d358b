//! `tenure`: the grant-lifecycle engine on the command line.
//!
//! The embedded default store is sled in `./tenure-data` (`--data DIR` or
//! `TENURE_DATA` name another); `--redb DIR` (or `TENURE_REDB`) runs on redb in
//! that directory, `--postgres` on PostgreSQL, and `--memory` on an empty in-memory
//! store.
//! Every command takes `--zone` (default `default`); the ones that print records
//! print a table, or JSON with `--json`. Errors are one line on stderr and a
//! non-zero exit code.

mod commands;
mod config;
mod demo;
mod error;
mod output;
mod serve;
mod store;
mod transfer;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::error::CliError;
use crate::store::StoreArgs;

/// The binary's allocator. A long-running server that allocates and frees
/// records of many sizes fragments glibc's heap; mimalloc keeps per-thread
/// free lists by size class and returns memory without long scans. The
/// libraries leave the choice to the program that links them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Serve the HTTP API, with logs, metrics, health checks and a background
    /// sweeper.
    #[command(after_long_help = config::HELP)]
    Serve(Box<serve::ServeArgs>),
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

/// What clap read, beyond the values themselves.
struct Sources {
    /// Whether `--data` or `TENURE_DATA` was set, rather than left at its default.
    data_given: bool,
}

async fn run(cli: Cli, sources: Sources) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.store, sources.data_given, *args).await,
        Command::Demo => demo::run(&cli.store).await,
        Command::Grants(c) => commands::grants(&cli.store, c).await,
        Command::Clients(c) => commands::clients(&cli.store, c).await,
        Command::Tokens(c) => commands::tokens(&cli.store, c).await,
        Command::Sweep(a) => commands::sweep(&cli.store, a).await,
        Command::Export(a) => transfer::export(&cli.store, a).await,
        Command::Import(a) => transfer::import(&cli.store, a).await,
    }
}

/// Whether a PostgreSQL connection string carries a password: in a URL's user
/// information or query, or as a `password=` key of the key-value form.
fn carries_password(connection: &str) -> bool {
    match url::Url::parse(connection) {
        Ok(u) if u.scheme() == "postgres" || u.scheme() == "postgresql" => {
            u.password().is_some()
                || u.query_pairs()
                    .any(|(k, _)| k.eq_ignore_ascii_case("password"))
        }
        _ => connection
            .split_whitespace()
            .any(|part| part.to_ascii_lowercase().starts_with("password=")),
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
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
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
    if let Some(("serve", serve)) = matches.subcommand() {
        if let Err(e) = config::refuse_secret_flags(serve) {
            eprintln!("tenure: {e}");
            return ExitCode::from(2);
        }
    }
    // A PostgreSQL password on the command line is where `ps` and shell history see
    // it: only the environment or the configuration file may carry one.
    let postgres_on_command_line =
        matches.value_source("postgres") == Some(ValueSource::CommandLine);
    if postgres_on_command_line && cli.store.postgres.as_deref().is_some_and(carries_password) {
        eprintln!(
            "tenure: a PostgreSQL password is not taken on the command line, where `ps` shows \
             it: set TENURE_POSTGRES_URL, or store.postgres in the configuration file"
        );
        return ExitCode::from(2);
    }
    let sources = Sources {
        data_given: matches
            .value_source("data")
            .is_some_and(|s| s != ValueSource::DefaultValue),
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
    match runtime.block_on(run(cli, sources)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenure: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::carries_password;

    #[test]
    fn passwords_are_found_in_every_form_of_connection_string() {
        assert!(carries_password("postgres://u:secret@db/x"));
        assert!(carries_password("postgresql://u@db/x?password=secret"));
        assert!(carries_password("host=db user=u password=secret"));
        assert!(!carries_password("postgres://u@db/x"));
        assert!(!carries_password("host=db user=u"));
    }
}
