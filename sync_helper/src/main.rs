//! `dircache-sync`: fills and manages the dircache user cache. All decisions live in the
//! `dircache` library; this binary parses the command line, reads passwords and prints.

mod cli;
mod daemon;
mod error;
mod output;
mod password_input;
mod progress;
mod sync_cmd;
mod user_cmd;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use dircache::config::Config;

use crate::cli::{Cli, Command};
use crate::error::{one_line, CliError};
use crate::user_cmd::Context;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("dircache-sync: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let now = now()?;
    let config = Config::load(&cli.config)?;
    let mut out = io::stdout().lock();
    match cli.command {
        Command::User(command) => user_cmd::run(&Context::new(config, now), command, &mut out)?,
        Command::Sync(args) => sync_cmd::sync(&config, &args, now, &mut out)?,
        Command::Status(args) => sync_cmd::status(&config, &args, &mut out)?,
        Command::Daemon(args) => daemon::run(&cli.config, config, &args)?,
    }
    out.flush().map_err(CliError::Output)
}

fn now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| CliError::ClockBeforeEpoch)
}
