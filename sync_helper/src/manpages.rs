//! The manual pages of `dircache-sync` and each of its subcommands, generated from the same
//! clap definitions as `--help` (section 8: the helper is an administrator's command).

use std::fs;
use std::io;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::CliError;

/// Writes `dircache-sync.8`, `dircache-sync-sync.8`, `dircache-sync-user-add.8`, … into
/// `out_dir` and returns their file names.
pub fn write_all(out_dir: &Path) -> Result<Vec<String>, CliError> {
    let failed = |source: io::Error| CliError::ManPages { dir: out_dir.to_path_buf(), source };
    fs::create_dir_all(out_dir).map_err(failed)?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_page(&command, "dircache-sync", out_dir, &mut written).map_err(failed)?;
    Ok(written)
}

fn write_page(
    command: &clap::Command,
    name: &str,
    out_dir: &Path,
    written: &mut Vec<String>,
) -> io::Result<()> {
    let page = command.clone().name(name.to_string());
    let man = clap_mangen::Man::new(page)
        .section("8")
        .manual("dircache")
        .source(format!("dircache {}", env!("CARGO_PKG_VERSION")));
    let file_name = format!("{name}.8");
    let mut bytes = Vec::new();
    man.render(&mut bytes)?;
    fs::write(out_dir.join(&file_name), bytes)?;
    written.push(file_name);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_page(sub, &format!("{name}-{}", sub.get_name()), out_dir, written)?;
    }
    Ok(())
}
