//! `gust`: the server (`gust serve`) and the client CLI (`gust deploy`, `gust functions …`),
//! one binary.

mod bridge;
mod cli;
mod client;
mod datadir;
mod delivery;
mod doctor;
mod events;
mod mappings;
mod observability;
mod s3_events;
mod scaling;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Gust: run AWS Lambda functions on your own machines.
#[derive(Debug, Parser)]
#[command(name = "gust", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Start the server (embedded store, no other service needed).
    Serve(serve::ServeArgs),
    /// Zip a directory and create the function, or update its code and configuration.
    Deploy(cli::deploy::DeployArgs),
    /// Invoke a function and print its result.
    Invoke(cli::invoke::InvokeArgs),
    /// Print a function's log (optionally following it).
    Logs(cli::invoke::LogsArgs),
    /// Show the account's usage and its AWS-equivalent price in a month.
    Usage(cli::usage::UsageArgs),
    /// Report what this host offers execution environments (cgroups, freezer, namespaces, ...).
    Doctor,
    /// Show which interpreter each runtime id runs on; `install` Node.js releases and the SDKs.
    Runtimes(cli::runtimes::RuntimesArgs),
    /// List, show or delete functions.
    Functions {
        #[command(subcommand)]
        command: cli::functions::FunctionsCommand,
    },
}

/// Where a client finds its server: flags, then environment, then the data directory.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Server URL (default: the one recorded in the data directory by `gust serve`).
    #[arg(long, env = "GUST_ENDPOINT")]
    endpoint: Option<String>,
    /// Data directory of a local server, to find its endpoint and credentials.
    #[arg(long, env = "GUST_DATA_DIR", default_value = ".gust-data")]
    data_dir: PathBuf,
    /// Region to sign requests for.
    #[arg(long, env = "GUST_REGION")]
    region: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // An environment's supervisor: the server runs its own binary for it, before anything
    // else (no threads, no async runtime) is started.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(gust_sandbox::isolate::INIT_ARG)) {
        let rest: Vec<_> = args.collect();
        std::process::exit(gust_sandbox::isolate::init_main(&rest));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Deploy(args) => cli::deploy::run(args),
        Command::Functions { command } => cli::functions::run(command),
        Command::Invoke(args) => cli::invoke::run_invoke(args),
        Command::Doctor => doctor::run(),
        Command::Runtimes(args) => cli::runtimes::run(args),
        Command::Logs(args) => cli::invoke::run_logs(args),
        Command::Usage(args) => cli::usage::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
