//! `dircache-sync`: fills and manages the dircache user cache. All decisions live in the
//! `dircache` library; this binary parses the command line, reads passwords and prints.

mod check;
mod cli;
mod daemon;
mod error;
mod manpages;
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
        Ok(code) => code,
        Err(error) if error.is_broken_pipe() => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("dircache-sync: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let now = now()?;
    let mut out = io::stdout().lock();
    // These must work without a valid configuration: `check` reports on it, and `keygen`
    // comes before one.
    let command = match cli.command {
        Command::Check(args) => {
            let code = check::run(&cli.config, &args, now, &mut out);
            out.flush().map_err(CliError::Output)?;
            return code;
        }
        Command::Keygen(args) => {
            let id = dircache::snapshot::keygen(&args.secret_key, &args.public_key)?;
            writeln!(
                out,
                "key id {id}: secret key {} (0600, unencrypted: keep it on the publisher), \
                 public key {} (give it to every host)",
                args.secret_key.display(),
                args.public_key.display()
            )
            .map_err(CliError::Output)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Manpages(args) => {
            for name in manpages::write_all(&args.out_dir)? {
                writeln!(out, "{}", args.out_dir.join(name).display()).map_err(CliError::Output)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        command => command,
    };
    let config = Config::load(&cli.config)?;
    match command {
        Command::User(command) => user_cmd::run(&Context::new(config, now), command, &mut out)?,
        Command::Sync(args) => sync_cmd::sync(&config, &args, now, &mut out)?,
        Command::Publish(args) => sync_cmd::publish(&config, &args, now, &mut out)?,
        Command::Status(args) => sync_cmd::status(&config, &args, &mut out)?,
        Command::Daemon(args) => daemon::run(&cli.config, config, &args)?,
        // Answered above, before the configuration was read.
        Command::Check(_) | Command::Manpages(_) | Command::Keygen(_) => {}
    }
    out.flush().map_err(CliError::Output)?;
    Ok(ExitCode::SUCCESS)
}

fn now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| CliError::ClockBeforeEpoch)
}
