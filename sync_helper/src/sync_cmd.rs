//! `sync` and `status`.

use std::io::Write;
use std::time::Instant;

use dircache::config::Config;
use dircache::directory::{self, Listing};
use dircache::snapshot::{self, PublishReport};
use dircache::sync::{self, read_status, SyncOptions, SyncReport, SyncStatus};

use crate::cli::{PublishArgs, StatusArgs, SyncArgs};
use crate::error::{one_line, CliError};
use crate::output::{shown, write_json};
use crate::progress::TerminalProgress;

/// One sync; records the outcome in the status file unless it is a dry run.
pub fn sync(
    config: &Config,
    args: &SyncArgs,
    now: u64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let options = SyncOptions { dry_run: args.dry_run, force: args.force };
    let started = Instant::now();
    let mut progress = TerminalProgress::new();
    let result = match &config.snapshot {
        // A fleet host pulls the publisher's snapshot: no directory administrator needed.
        Some(settings) => {
            snapshot::http_fetcher(settings).map_err(CliError::from).and_then(|mut fetcher| {
                snapshot::pull(config, fetcher.as_mut(), options, now).map_err(CliError::from)
            })
        }
        None => directory::connect(config).map_err(CliError::from).and_then(|mut dir| {
            sync::run_sync(config, dir.as_mut(), options, now, &mut progress)
                .map_err(CliError::from)
        }),
    };
    progress.finish();
    // The report is printed first: a status file that cannot be written (a full disk, a
    // wrong cache.dir) must not swallow it, nor hide the sync's own error.
    match result {
        Ok(outcome) => {
            let printed = if args.json {
                write_json(out, &outcome.report)
            } else {
                write_report(out, &outcome.report, outcome.listing.as_ref())
            };
            // The cache is committed: its status is recorded even if stdout is gone.
            if !args.dry_run {
                sync::record_status(config, &SyncStatus::finished(&outcome.report, now))?;
            }
            printed.map_err(CliError::Output)?;
            match outcome.report.errors.first() {
                Some(error) => Err(CliError::SyncReported(error.clone())),
                None => Ok(()),
            }
        }
        Err(error) => {
            let line = one_line(&error);
            if args.json {
                let report = SyncReport {
                    dry_run: args.dry_run,
                    errors: vec![line.clone()],
                    ..SyncReport::default()
                };
                // Failing to print must not keep the failure out of the status file.
                let _ = write_json(out, &report);
            }
            if args.dry_run {
                return Err(error);
            }
            let status = SyncStatus::failure(line.clone(), now, started.elapsed().as_secs_f64());
            match sync::record_status(config, &status) {
                Ok(()) => Err(error),
                Err(status_error) => Err(CliError::SyncReported(format!(
                    "{line} (and the status file could not be written: {})",
                    one_line(&status_error)
                ))),
            }
        }
    }
}

/// What a returning user's report line says: what was reset, and what was not (the uid and
/// home are kept, so whatever the old holder left there still applies).
const RETURNED_NOTE: &str = "(privileges reset to the defaults; offline credentials were \
     dropped when it vanished; uid and home are the old holder's: review its \
     ~/.ssh/authorized_keys and crontab)";

/// "1 user", "2 users".
fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn write_report(
    out: &mut impl Write,
    report: &SyncReport,
    listing: Option<&Listing>,
) -> std::io::Result<()> {
    let (create, update, delete, ret) = if report.dry_run {
        ("would create", "would update", "would delete", "would return")
    } else {
        ("created", "updated", "deleted", "returned")
    };
    if report.dry_run {
        writeln!(out, "Test Settings (dry run): nothing was written.")?;
    }
    if let Some(listing) = listing {
        writeln!(
            out,
            "The directory returned {} and {}:",
            counted(listing.users.len(), "user"),
            counted(listing.groups.len(), "group")
        )?;
        for user in &listing.users {
            let state = if user.enabled() { "enabled" } else { "disabled" };
            writeln!(
                out,
                "  {:<32} {:<8} {:<24} {}",
                shown(user.login_name()),
                state,
                shown(user.full_name()),
                shown(&user.emails().collect::<Vec<_>>().join(", "))
            )?;
        }
        for group in &listing.groups {
            writeln!(out, "  group {:<26} {} members", shown(&group.name), group.members.len())?;
        }
    }
    for name in &report.created {
        writeln!(out, "{create:<13} {name}")?;
    }
    for name in &report.updated {
        let linked = if report.linked.contains(name) { " (linked manual user)" } else { "" };
        writeln!(out, "{update:<13} {name}{linked}")?;
    }
    for name in &report.returned {
        writeln!(out, "{ret:<13} {name} {RETURNED_NOTE}")?;
    }
    for name in &report.deleted {
        writeln!(out, "{delete:<13} {name} (its files are kept)")?;
    }
    for skipped in &report.skipped {
        writeln!(out, "{:<13} {}: {}", "skipped", shown(&skipped.name), shown(&skipped.reason))?;
    }
    for (verb, names) in [
        (create, &report.groups_created),
        (update, &report.groups_updated),
        (delete, &report.groups_deleted),
    ] {
        for name in names {
            writeln!(out, "{verb:<13} group {name}")?;
        }
    }
    let (grant, revoke) =
        if report.dry_run { ("would grant", "would revoke") } else { ("granted", "revoked") };
    for change in &report.granted {
        writeln!(out, "{grant:<13} {} to {}", shown(&change.local_group), shown(&change.user))?;
    }
    for change in &report.revoked {
        writeln!(out, "{revoke:<13} {} from {}", shown(&change.local_group), shown(&change.user))?;
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {}", shown(warning))?;
    }
    if let Some(pull) = &report.snapshot {
        writeln!(
            out,
            "snapshot generation {} from {} (published {}, key {}){}",
            pull.generation,
            shown(&pull.url),
            crate::output::utc_time(pull.published_at),
            shown(&pull.key_id),
            if pull.unchanged { ": unchanged, nothing written" } else { "" }
        )?;
        if pull.unchanged {
            return Ok(());
        }
    }
    writeln!(
        out,
        "{} created, {} updated, {} deleted, {} unchanged, {} skipped ({} listed, {:.1} s){}",
        report.created.len(),
        report.updated.len(),
        report.deleted.len(),
        report.unchanged,
        report.skipped.len(),
        counted(report.listed_users, "user"),
        report.duration_secs,
        match report.generation {
            Some(generation) => format!("; cache generation {generation}"),
            None if report.dry_run => String::new(),
            None => "; nothing changed, nothing written".to_string(),
        }
    )
}

/// `publish DIR`: signs the cache into DIR and says what it wrote.
pub fn publish(
    config: &Config,
    args: &PublishArgs,
    now: u64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let report = snapshot::publish(config, &args.dir, now)?;
    if args.json {
        return write_json(out, &report).map_err(CliError::Output);
    }
    write_publish_report(out, &report).map_err(CliError::Output)
}

fn write_publish_report(out: &mut impl Write, report: &PublishReport) -> std::io::Result<()> {
    for name in &report.written {
        writeln!(out, "wrote   {}", report.dir.join(name).display())?;
    }
    for name in &report.pruned {
        writeln!(out, "pruned  {name}")?;
    }
    if report.hashes_withheld > 0 {
        writeln!(
            out,
            "note: {} password hashes were left out ([publish] include_local_passwords = false)",
            report.hashes_withheld
        )?;
    }
    writeln!(
        out,
        "published generation {} of {} and {} into {} (signed by key {}, {:.1} s)",
        report.generation,
        counted(report.users, "user"),
        counted(report.groups, "group"),
        report.dir.display(),
        report.key_id,
        report.duration_secs
    )
}

pub fn status(config: &Config, args: &StatusArgs, out: &mut impl Write) -> Result<(), CliError> {
    let status = read_status(&config.cache.dir)?;
    if args.prometheus {
        let cache = sync::metrics::CacheCounts::read(&config.cache.dir)?;
        let text = sync::metrics::prometheus_text(status.as_ref(), cache);
        return out.write_all(text.as_bytes()).map_err(CliError::Output);
    }
    if args.json {
        return write_json(out, &status).map_err(CliError::Output);
    }
    let Some(status) = status else {
        return writeln!(out, "no sync has run yet").map_err(CliError::Output);
    };
    let lines = [
        (
            "last run",
            format!("{} (epoch {})", crate::output::utc_time(status.started_at), status.started_at),
        ),
        ("result", status.result.clone()),
        ("duration", format!("{:.1} s", status.duration_secs)),
        ("listed users", status.listed_users.to_string()),
        (
            "changes",
            format!(
                "{} created, {} updated, {} deleted, {} unchanged, {} skipped",
                status.created, status.updated, status.deleted, status.unchanged, status.skipped
            ),
        ),
        ("generation", status.generation.map_or("-".to_string(), |g| g.to_string())),
        ("error", status.error.clone().unwrap_or_else(|| "-".to_string())),
    ];
    // The status file is plain JSON anyone may have written before: shown escaped.
    for (key, value) in lines {
        writeln!(out, "{key}: {}", shown(&value)).map_err(CliError::Output)?;
    }
    if let Some(state) = snapshot::read_state(&config.cache.dir)? {
        let value = format!(
            "generation {} from {}, published {}, key {}",
            state.generation,
            state.url,
            crate::output::utc_time(state.published_at),
            state.key_id
        );
        writeln!(out, "snapshot: {}", shown(&value)).map_err(CliError::Output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_text_cannot_forge_report_lines_or_reach_the_terminal_raw() {
        let report = SyncReport {
            skipped: vec![dircache::sync::Skipped {
                name: "a\nb".to_string(),
                reason: "invalid name: the name contains '\\n'".to_string(),
            }],
            warnings: vec!["group x: \u{1b}[2J".to_string()],
            ..SyncReport::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, &report, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn a_dry_run_says_what_it_would_do_to_groups_and_counts_in_good_english() {
        let report = SyncReport {
            dry_run: true,
            groups_created: vec!["staff@example.com".to_string()],
            listed_users: 1,
            ..SyncReport::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, &report, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("would create  group staff@example.com\n"), "{text}");
        assert!(!text.contains("group created"), "{text}");
        assert!(text.contains("(1 user listed,"), "{text}");
        assert_eq!(
            (counted(1, "group"), counted(0, "group")),
            ("1 group".into(), "0 groups".into())
        );
    }

    #[test]
    fn grants_and_revocations_are_listed_and_a_dry_run_says_would() {
        use dircache::grants::GrantChange;
        let change = |group: &str, user: &str| GrantChange {
            local_group: group.to_string(),
            user: user.to_string(),
        };
        for (dry_run, grant, revoke) in [
            (
                false,
                "granted       sudo to alice@example.com",
                "revoked       docker from bob@example.com",
            ),
            (
                true,
                "would grant   sudo to alice@example.com",
                "would revoke  docker from bob@example.com",
            ),
        ] {
            let report = SyncReport {
                dry_run,
                granted: vec![change("sudo", "alice@example.com")],
                revoked: vec![change("docker", "bob@example.com")],
                ..SyncReport::default()
            };
            let mut out = Vec::new();
            write_report(&mut out, &report, None).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.lines().any(|l| l == grant), "{text}");
            assert!(text.lines().any(|l| l == revoke), "{text}");
        }
    }

    #[test]
    fn a_returned_user_is_named_with_what_was_reset() {
        let note = RETURNED_NOTE;
        for (dry_run, verb) in [(false, "returned     "), (true, "would return ")] {
            let report = SyncReport {
                dry_run,
                updated: vec!["alice@example.com".to_string()],
                returned: vec!["alice@example.com".to_string()],
                ..SyncReport::default()
            };
            let mut out = Vec::new();
            write_report(&mut out, &report, None).unwrap();
            let text = String::from_utf8(out).unwrap();
            let line = format!("{verb} alice@example.com {note}");
            assert!(text.lines().any(|l| l == line), "{text}");
        }
    }
}
