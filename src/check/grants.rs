//! `[unix.local_groups]` and what delays its effect: the mapping against /etc/group and the
//! cache (`local-groups`), and nscd, which may keep serving a revoked group (`nscd`).

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{CheckResult, Status};
use crate::cache::CacheDir;
use crate::config::Config;

/// Where nscd (and unscd) listen, and their configuration.
pub const DEFAULT_NSCD_SOCKET: &str = "/run/nscd/socket";
pub const DEFAULT_NSCD_CONF: &str = "/etc/nscd.conf";

/// The mapping checked as a sync checks it (every local group exists, none has gid 0),
/// and the directory groups it names that the cache does not have.
pub fn check_local_groups(config: &Config) -> CheckResult {
    const NAME: &str = "local-groups";
    let mapping = &config.unix.local_groups;
    if mapping.is_empty() {
        return CheckResult::ok(NAME, "no local group is granted ([unix.local_groups] is empty)");
    }
    let local = match config.local_accounts() {
        Ok(local) => local,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                e.to_string(),
                "dircache needs to read the local account files",
            )
        }
    };
    let targets = match crate::grants::targets(config, &local) {
        Ok(targets) => targets,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                e.to_string(),
                "every sync fails until this is fixed: create the local group, or remove the \
                 line from [unix.local_groups]",
            )
        }
    };
    // A cache that cannot be read is the `cache` check's failure; here it only means that no
    // directory group is known yet.
    let db = CacheDir::new(&config.cache.dir).load().unwrap_or_default();
    let computed = crate::grants::compute(&db.users, &db.groups, &targets);
    let granted: Vec<String> = computed
        .grants
        .iter()
        .map(|g| format!("{} (gid {}) to {} users", g.name, g.gid, g.members.len()))
        .collect();
    if !computed.warnings.is_empty() {
        return CheckResult::with(
            NAME,
            Status::Warn,
            computed.warnings.join("; "),
            "a directory group the cache lacks grants nothing: check the address, and that \
             sync.groups and sync.domains let it through",
        );
    }
    CheckResult::ok(NAME, format!("granted: {}", granted.join(", ")))
}

/// Which databases an nscd configuration caches, of passwd and group: `enable-cache DB
/// yes` lines (nscd's default, and Debian's nscd.conf, cache both; an unreadable or
/// missing file is taken as that default).
pub(super) fn nscd_cached(conf: Option<&str>) -> Vec<&'static str> {
    let mut cached = vec!["passwd", "group"];
    let Some(text) = conf else {
        return cached;
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
        if let ["enable-cache", database, value] = words.as_slice() {
            let on = value.eq_ignore_ascii_case("yes");
            cached.retain(|d| d != database);
            if on {
                if let Some(known) = ["passwd", "group"].into_iter().find(|d| d == database) {
                    cached.push(known);
                }
            }
        }
    }
    cached.sort_unstable();
    cached
}

/// nscd answers `getpwnam`, `getgrnam` and `initgroups` for every program from its own
/// cache: a sync's changes, and above all a revoked local group, reach programs only when
/// its entries expire. Detected by connecting to its socket.
pub fn check_nscd(socket: &Path, conf: &Path) -> CheckResult {
    const NAME: &str = "nscd";
    if UnixStream::connect(socket).is_err() {
        return CheckResult::ok(NAME, "nscd is not running: lookups see each sync at once");
    }
    let text = fs::read_to_string(conf).ok();
    let cached = nscd_cached(text.as_deref());
    if cached.is_empty() {
        return CheckResult::ok(
            NAME,
            format!("nscd is running but caches neither passwd nor group ({})", conf.display()),
        );
    }
    let flush: Vec<String> = cached.iter().map(|db| format!("nscd -i {db}")).collect();
    CheckResult::with(
        NAME,
        Status::Warn,
        format!(
            "nscd is running and caches {} data: after a sync, programs may see the old \
             answers until they expire — a revoked local group ([unix.local_groups]) stays \
             granted meanwhile",
            cached.join(" and ")
        ),
        format!(
            "run `{}` after each sync (e.g. ExecStartPost= of dircache-sync.service), or set \
             `enable-cache group no` and `enable-cache passwd no` in {}; sssd's and systemd's \
             own caches are not affected",
            flush.join(" && "),
            conf.display()
        ),
    )
}
