//! What makes the system use dircache: the PAM stack, nsswitch.conf, and a lookup through
//! glibc's NSS.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CheckResult, SampleUser, Status};
use crate::config::{Config, DEFAULT_CACHE_DIR};

/// The PAM files pam-auth-update writes on Debian, which every login service includes.
pub const PAM_COMMON_FILES: [&str; 3] = ["common-auth", "common-account", "common-password"];
/// The nsswitch.conf databases libnss_dircache answers for.
pub const NSS_DATABASES: [&str; 2] = ["passwd", "group"];

/// Whether a PAM service file has an active line using pam_dircache.
pub(super) fn pam_file_uses_dircache(text: &str) -> bool {
    text.lines().map(|line| line.split('#').next().unwrap_or("")).any(|line| {
        line.split_whitespace()
            .any(|word| word.trim_start_matches('-').ends_with("pam_dircache.so"))
    })
}

/// pam_dircache in the common PAM files that pam-auth-update maintains.
pub fn check_pam(pam_dir: &Path) -> CheckResult {
    const NAME: &str = "pam";
    let enable = "run `pam-auth-update --enable dircache dircache-password` (see pam_dircache(8))";
    let mut missing = Vec::new();
    for file in PAM_COMMON_FILES {
        let path = pam_dir.join(file);
        match fs::read_to_string(&path) {
            Ok(text) if pam_file_uses_dircache(&text) => {}
            Ok(_) => missing.push(file),
            Err(e) => {
                return CheckResult::with(
                    NAME,
                    Status::Fail,
                    format!("cannot read {}: {e}", path.display()),
                    "on a system without pam-auth-update, add pam_dircache.so to the PAM \
                     services by hand (see pam_dircache(8))",
                );
            }
        }
    }
    if missing.is_empty() {
        return CheckResult::ok(
            NAME,
            format!("pam_dircache.so is in {}", PAM_COMMON_FILES.join(", ")),
        );
    }
    let message = if missing.len() == PAM_COMMON_FILES.len() {
        format!("pam_dircache.so is not in the PAM stack ({})", missing.join(", "))
    } else {
        format!("pam_dircache.so is missing from {}", missing.join(", "))
    };
    CheckResult::with(NAME, Status::Fail, format!("{message} in {}", pam_dir.display()), enable)
}

/// The services (sources) of one nsswitch.conf database, in order, without `[…]`
/// actions and comments; `None` when the file has no line for it. As glibc reads the file:
/// the last line of a database counts, and a source's name ends at `[`.
pub fn nsswitch_sources(text: &str, database: &str) -> Option<Vec<String>> {
    nsswitch_lines(text)
        .filter(|(name, _)| *name == database)
        .map(|(_, rest)| sources_of(rest))
        .last()
}

/// Each line's database name and what follows its `:`, comments removed.
fn nsswitch_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let (name, rest) = line.split('#').next()?.split_once(':')?;
        Some((name.trim(), rest))
    })
}

/// The sources of a line's `rest`, each `[…]` action taken out wherever it stands.
fn sources_of(rest: &str) -> Vec<String> {
    let mut plain = String::with_capacity(rest.len());
    let mut in_action = false;
    for c in rest.chars() {
        match c {
            '[' | ']' => {
                in_action = c == '[';
                plain.push(' ');
            }
            _ if !in_action => plain.push(c),
            _ => {}
        }
    }
    plain.split_whitespace().map(str::to_string).collect()
}

/// The nsswitch.conf databases libnss_dircache has answers for; on any other line it is of
/// no use, and for some databases answers UNAVAIL (README, NSS).
const SERVED_DATABASES: [&str; 4] = ["passwd", "group", "shadow", "initgroups"];

/// The databases other than [`SERVED_DATABASES`] whose nsswitch.conf line names dircache,
/// each once, in the order of the file (the last line of a database counts, as for glibc).
pub(super) fn unserved_databases_naming_dircache(text: &str) -> Vec<String> {
    let mut databases: Vec<(&str, Vec<String>)> = Vec::new();
    for (name, rest) in nsswitch_lines(text) {
        let sources = sources_of(rest);
        match databases.iter_mut().find(|(seen, _)| *seen == name) {
            Some(entry) => entry.1 = sources,
            None => databases.push((name, sources)),
        }
    }
    databases
        .into_iter()
        .filter(|(name, sources)| {
            !SERVED_DATABASES.contains(name) && sources.iter().any(|s| s == "dircache")
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The passwd and group lines of nsswitch.conf name dircache, last, and no line of a
/// database it does not serve names it.
pub fn check_nsswitch(path: &Path) -> CheckResult {
    const NAME: &str = "nsswitch";
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                format!("cannot read {}: {e}", path.display()),
                "create it with at least `passwd: files dircache` and `group: files dircache`",
            );
        }
    };
    let mut lines = Vec::new();
    let mut missing = Vec::new();
    let mut not_last = Vec::new();
    for database in NSS_DATABASES {
        match nsswitch_sources(&text, database) {
            Some(sources) if sources.iter().any(|s| s == "dircache") => {
                if sources.last().is_some_and(|last| last != "dircache") {
                    not_last.push(database);
                }
                lines.push(format!("{database}: {}", sources.join(" ")));
            }
            _ => missing.push(database),
        }
    }
    let unserved = unserved_databases_naming_dircache(&text);
    let also_unserved = || {
        if unserved.is_empty() {
            String::new()
        } else {
            format!("; {}", unserved_message(&unserved))
        }
    };
    if !missing.is_empty() {
        let (lines, verb) = if missing.len() == 1 { ("line", "does") } else { ("lines", "do") };
        let missing = missing.join(" and ");
        return CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "the {missing} {lines} of {} {verb} not name dircache{}",
                path.display(),
                also_unserved()
            ),
            format!(
                "add `dircache` at the end of the {missing} {lines}, after `files` and every \
                 other source (installing the package does this unless a line was edited by \
                 hand; see libnss_dircache(8))"
            ),
        );
    }
    if !not_last.is_empty() {
        return CheckResult::with(
            NAME,
            Status::Warn,
            format!(
                "dircache is not the last source on the {} line(s) of {} ({}){}",
                not_last.join(" and "),
                path.display(),
                lines.join("; "),
                also_unserved()
            ),
            "move `dircache` to the end, so that no dircache user can hide an account of \
             another source (see SECURITY.md)",
        );
    }
    if !unserved.is_empty() {
        return CheckResult::with(
            NAME,
            Status::Warn,
            format!("{} ({})", unserved_message(&unserved), path.display()),
            "remove `dircache` from those lines: for aliases, ethers, netgroup, protocols, \
             publickey, rpc and services it answers UNAVAIL, which after another source \
             replaces that source's NOTFOUND (see libnss_dircache(8))",
        );
    }
    CheckResult::ok(NAME, format!("{} ({})", path.display(), lines.join("; ")))
}

fn unserved_message(unserved: &[String]) -> String {
    format!(
        "dircache is on the {} line(s), but serves only {}",
        unserved.join(" and "),
        SERVED_DATABASES.join(", ")
    )
}

/// Looks one cached user up the way every program does, through `getent` and glibc's NSS,
/// which loads libnss_dircache.so.2.
pub fn check_nss_lookup(config: &Config, user: &SampleUser) -> CheckResult {
    const NAME: &str = "nss-lookup";
    // The NSS module cannot read the configuration: it reads the compiled-in directory.
    let nss_dir = std::env::var_os(OsStr::from_bytes(crate::nss::ENV_CACHE_DIR.to_bytes()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
    if nss_dir != config.cache.dir {
        return CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "[cache] dir is {}, but the NSS module reads {}",
                config.cache.dir.display(),
                nss_dir.display()
            ),
            format!("set [cache] dir = \"{DEFAULT_CACHE_DIR}\" and run `dircache-sync sync`"),
        );
    }
    let output = match Command::new("getent").args(["passwd", &user.name]).output() {
        Ok(output) => output,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                format!("cannot run getent: {e}"),
                "getent comes with libc-bin; check PATH",
            );
        }
    };
    let line = String::from_utf8_lossy(&output.stdout);
    let uid = line.split(':').nth(2).and_then(|field| field.trim().parse::<u32>().ok());
    match uid {
        Some(uid) if output.status.success() && uid == user.uid => CheckResult::ok(
            NAME,
            format!("`getent passwd {}` answers uid {uid} from the cache", user.name),
        ),
        Some(uid) if output.status.success() => CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "`getent passwd {}` answers uid {uid}, but the cache has uid {}: another source \
                 before dircache in nsswitch.conf has the same name",
                user.name, user.uid
            ),
            "rename or remove the other account; local accounts always win",
        ),
        _ => CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "`getent passwd {}` does not find a user the cache has (exit status {})",
                user.name,
                output.status.code().map_or("none".to_string(), |code| code.to_string())
            ),
            "check that libnss_dircache.so.2 is installed in /lib/<multiarch triplet>/ \
             (reinstall the package) and that /var/lib/dircache is readable (mode 0755)",
        ),
    }
}
