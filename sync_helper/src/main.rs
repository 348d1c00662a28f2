//! `dircache-sync`: fills and manages the dircache user cache. All decisions live in the
//! `dircache` library; this binary parses the command line, reads passwords and prints.

mod cli;
mod error;
mod output;
mod password_input;
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
    let ctx = Context::new(config, now);
    let mut out = io::stdout().lock();
    match cli.command {
        Command::User(command) => user_cmd::run(&ctx, command, &mut out)?,
    }
    out.flush().map_err(CliError::Output)
}

fn now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| CliError::ClockBeforeEpoch)
}
