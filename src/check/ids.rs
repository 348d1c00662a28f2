//! `unix.uid_range` against the subordinate ids of local users, present and future.

use std::fs;
use std::path::Path;

use super::{CheckResult, Status};
use crate::cache::CacheDir;
use crate::config::Config;

/// A `uid_range` clear of the subordinate ids useradd gives by default (100000-600100000),
/// of systemd's container ranges (524288-1879048191) and of its foreign range
/// (2147352576-2147418111), and below 2^31, which some programs read as negative: the
/// default, [`crate::ids::DEFAULT_UID_RANGE`].
pub const UID_RANGE_CLEAR_OF_SUBORDINATE_IDS: &str = "[1879048192, 2147352575]";

/// Subordinate ids (/etc/subuid, /etc/subgid) against `unix.uid_range`: a local user can act as any of its
/// subordinate ids from a user namespace (newuidmap), so a dircache user with such an id can
/// be impersonated. Warns about cache users and groups that already have one (the dangerous
/// case), about ranges of /etc/subuid and /etc/subgid that overlap `uid_range` (those ids are
/// never handed out), and about `uid_range` overlapping the ranges useradd gives new users
/// (`SUB_UID_MIN`…`SUB_GID_MAX` in login.defs).
pub fn check_ids(config: &Config, login_defs: &Path, newuidmap: &Path) -> CheckResult {
    const NAME: &str = "ids";
    const NAMED: usize = 3;
    let local = match config.local_accounts() {
        Ok(local) => local,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                e.to_string(),
                "make it readable by root: syncs and `user add` fail on it too",
            );
        }
    };
    let [low, high] = config.unix.uid_range;
    let mut problems = Vec::new();
    let mut hints = Vec::new();

    // The cache's own problems are the cache check's; without a cache nobody has an id.
    let db = CacheDir::new(&config.cache.dir).load().unwrap_or_default();
    let inside = local.subordinate_id_warnings(&db.users, &db.groups);
    if !inside.is_empty() {
        problems.extend(inside);
        hints.push(
            "first give those local users other subordinate ids: until then they can act as \
             the dircache users and groups named"
                .to_string(),
        );
    }

    let overlapping: Vec<String> = local
        .subordinate_ranges()
        .iter()
        .filter(|range| range.overlaps(low, high))
        .map(|range| range.to_string())
        .collect();
    if !overlapping.is_empty() {
        let more = overlapping.len().saturating_sub(NAMED);
        let mut named = overlapping[..overlapping.len().min(NAMED)].join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        let verb = if overlapping.len() == 1 { "overlaps" } else { "overlap" };
        problems.push(format!(
            "{named} {verb} unix.uid_range [{low}, {high}]: ids there are never given to \
             dircache users, and a dircache user who already has one can be impersonated from \
             a user namespace"
        ));
        hints.push("move uid_range or the subordinate ids".to_string());
    }

    let defs = SubordinateDefaults::read(login_defs);
    let future: Vec<String> = defs
        .ranges
        .iter()
        .filter(|(_, min, max, count)| {
            *count > 0 && *min <= u64::from(high) && u64::from(low) <= *max
        })
        .map(|(kind, min, max, _)| format!("SUB_{kind}_MIN-SUB_{kind}_MAX {min}-{max}"))
        .collect();
    // Without newuidmap nobody can use subordinate ids: the range useradd would give is
    // said, not warned about, so that a stock host's check is clean.
    let usable = newuidmap.exists();
    let mut note = String::new();
    if !future.is_empty() && !usable {
        note = format!(
            "; useradd would give new local users subordinate ids in it ({} {}), which grant \
             nothing while {} is not installed",
            future.join(" and "),
            defs.source,
            newuidmap.display()
        );
    }
    if !future.is_empty() && usable {
        problems.push(format!(
            "unix.uid_range [{low}, {high}] overlaps the subordinate ids useradd gives new \
             local users ({} {}): a local user added later may be able to act as dircache users",
            future.join(" and "),
            defs.source,
        ));
        hints.push(format!(
            "where local users may run rootless containers (newuidmap), move unix.uid_range \
             clear of them (e.g. {UID_RANGE_CLEAR_OF_SUBORDINATE_IDS}; existing users keep \
             their ids) or set SUB_UID_MIN/SUB_UID_MAX and SUB_GID_MIN/SUB_GID_MAX in \
             login.defs clear of it"
        ));
    }

    if problems.is_empty() {
        let files = format!(
            "unix.uid_range [{low}, {high}] is clear of the subordinate ids in {} and {}",
            config.unix.local_subuid.display(),
            config.unix.local_subgid.display(),
        );
        let future = if note.is_empty() {
            format!(" and of those useradd gives new users ({})", defs.source)
        } else {
            note
        };
        return CheckResult::ok(NAME, format!("{files}{future}"));
    }
    CheckResult::with(NAME, Status::Warn, problems.join("; "), hints.join("; "))
}

/// The ranges useradd gives new users subordinate ids from (login.defs' `SUB_*` keys).
pub(super) struct SubordinateDefaults {
    /// ("UID" or "GID", min, max, count).
    pub(super) ranges: [(&'static str, u64, u64, u64); 2],
    /// Where they come from, for messages.
    pub(super) source: String,
}

impl SubordinateDefaults {
    /// What useradd uses for a missing key; also for a file that cannot be read, so that a
    /// doubt warns rather than hides.
    const MIN: u64 = 100_000;
    const MAX: u64 = 600_100_000;
    const COUNT: u64 = 65_536;

    pub(super) fn read(path: &Path) -> SubordinateDefaults {
        let text = fs::read_to_string(path).ok();
        let value = |key: &str, default: u64| -> u64 {
            let found = text.as_deref().and_then(|text| {
                text.lines().rev().find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(key)).then(|| words.next()?.parse().ok())?
                })
            });
            found.unwrap_or(default)
        };
        let range = |kind: &'static str| {
            (
                kind,
                value(&format!("SUB_{kind}_MIN"), Self::MIN),
                value(&format!("SUB_{kind}_MAX"), Self::MAX),
                value(&format!("SUB_{kind}_COUNT"), Self::COUNT),
            )
        };
        let source = match text {
            Some(_) => format!("in {}", path.display()),
            None => format!("by shadow's defaults: {} is absent or unreadable", path.display()),
        };
        SubordinateDefaults { ranges: [range("UID"), range("GID")], source }
    }
}
