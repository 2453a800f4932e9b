//! `heimdall`: the owner's command line. `register` puts the slash commands into Discord,
//! `doctor` checks every credential and endpoint of a deployment, `config` turns Terraform's
//! outputs into what a Spin host needs.

mod config;
mod discord;
mod doctor;
mod manifest;
mod permissions;
mod progress;
mod register;
mod values;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The owner's command line for Heimdall, the Valheim server driven from Discord.
///
/// The app's values are its Spin variables: SPIN_VARIABLE_<NAME> in the environment (what
/// `spin up` reads), or an env file (--env-file) as `heimdall config --host spin-up` writes it.
#[derive(Parser, Debug)]
#[command(name = "heimdall", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register /start, /stop, /status and /help with Discord (only what changed).
    Register(register::Args),
    /// Check every credential and endpoint the deployment uses, and say how to fix what is wrong.
    Doctor(doctor::Args),
    /// Write a Spin host's configuration from `terraform output -json` and the secrets.
    Config(config::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = manifest::Manifest::embedded().and_then(|manifest| match &cli.command {
        Command::Register(args) => register::run(args, &manifest),
        Command::Doctor(args) => doctor::run(args, &manifest),
        Command::Config(args) => config::run(args, &manifest),
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("heimdall: {error:#}");
            ExitCode::FAILURE
        }
    }
}
