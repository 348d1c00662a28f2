//! `check`: prints one line per check of `dircache::check`, or one JSON object.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use dircache::check::{self, CheckPaths, CheckResult, Status};
use dircache::config::Config;
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::error::CliError;
use crate::output::write_json;

/// `check --configured` exits with this when the configuration is invalid: systemd's
/// ExecCondition= treats 255 as a failure of the unit (1–254 only skip it).
const INVALID_CONFIG_EXIT: u8 = 255;

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    checks: &'a [CheckResult],
}

pub fn run(
    config_path: &Path,
    args: &CheckArgs,
    now: u64,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    if args.configured {
        return configured(config_path, out);
    }
    let paths = CheckPaths {
        config: config_path.to_path_buf(),
        pam_dir: args.pam_dir.clone(),
        nsswitch: args.nsswitch.clone(),
        login_defs: args.login_defs.clone(),
        newuidmap: args.newuidmap.clone(),
        nscd_socket: args.nscd_socket.clone(),
        nscd_conf: args.nscd_conf.clone(),
    };
    let results = check::run_all(&paths, now);
    let failed = check::any_failed(&results);
    if args.json {
        write_json(out, &Report { ok: !failed, checks: &results }).map_err(CliError::Output)?;
    } else {
        write_lines(out, &results).map_err(CliError::Output)?;
    }
    if failed {
        let names: Vec<&str> =
            results.iter().filter(|r| r.status == Status::Fail).map(|r| r.name).collect();
        return Err(CliError::ChecksFailed(names.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ok    config      message — what to do`, the names padded so the messages line up.
fn write_lines(out: &mut impl Write, results: &[CheckResult]) -> std::io::Result<()> {
    let width = results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for result in results {
        let line = match &result.hint {
            Some(hint) => format!("{} — {hint}", result.message),
            None => result.message.clone(),
        };
        // One line per check, whatever a message quotes.
        let line = crate::output::one_printable_line(&line);
        writeln!(out, "{:<4}  {:<width$}  {line}", result.status.label(), result.name)?;
    }
    Ok(())
}

fn configured(config_path: &Path, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("dircache-sync: {}", crate::error::one_line(&error));
            return Ok(ExitCode::from(INVALID_CONFIG_EXIT));
        }
    };
    if let Some(snapshot) = config.snapshot.as_ref() {
        writeln!(out, "{}: this host pulls snapshots from {}", config_path.display(), snapshot.url)
            .map_err(CliError::Output)?;
        Ok(ExitCode::SUCCESS)
    } else if check::directory_configured(&config) {
        writeln!(
            out,
            "{}: a directory is configured ({})",
            config_path.display(),
            config.directory.kind.as_str()
        )
        .map_err(CliError::Output)?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "{}: directory.type is \"none\", nothing to synchronize; set [directory] to \
             enable syncing",
            config_path.display()
        )
        .map_err(CliError::Output)?;
        Ok(ExitCode::FAILURE)
    }
}
