//! The accounts in /etc/passwd and /etc/group. They always win: dircache never creates,
//! shows or authenticates a user whose name or id is already local.
//!
//! Also, for whatever hands out ids, the subordinate ids of local users (/etc/subuid and
//! /etc/subgid): a local user may act as any of its subordinate ids inside a user namespace
//! (newuidmap, rootless containers), so a dircache user with such an id could be
//! impersonated by that local user. They are never handed out.
//!
//! Read as files, never through NSS (the NSS module must not recurse into itself, and the
//! PAM module must not trust a lookup that dircache itself could answer).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::names::fold_name;
use crate::user::{Group, User};

#[derive(Debug, Error)]
#[error("cannot read {path}: {source}")]
pub struct LocalAccountsError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Whether a subordinate range holds uids (/etc/subuid) or gids (/etc/subgid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubordinateKind {
    Uid,
    Gid,
}

impl SubordinateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubordinateKind::Uid => "uid",
            SubordinateKind::Gid => "gid",
        }
    }
}

/// One line of /etc/subuid or /etc/subgid: `owner` (a name or a uid) may use `first..=last`.
/// Kept as a range, not as a set of ids: one range is 65536 ids or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubordinateRange {
    pub owner: String,
    pub kind: SubordinateKind,
    pub first: u32,
    pub last: u32,
    /// The file it was read from, for messages.
    pub file: PathBuf,
}

impl SubordinateRange {
    pub fn ids(&self) -> RangeInclusive<u32> {
        self.first..=self.last
    }

    pub fn contains(&self, id: u32) -> bool {
        self.first <= id && id <= self.last
    }

    /// Whether the range shares an id with `low..=high`.
    pub fn overlaps(&self, low: u32, high: u32) -> bool {
        self.first <= high && low <= self.last
    }
}

/// `local user ben's subordinate uids 165536-231071 (/etc/subuid)`.
impl fmt::Display for SubordinateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "local user {}'s subordinate {}s {}-{} ({})",
            self.owner,
            self.kind.as_str(),
            self.first,
            self.last,
            self.file.display()
        )
    }
}

#[derive(Debug, Default, Clone)]
pub struct LocalAccounts {
    /// Folded, so `Root` is as local as `root`.
    names: HashSet<String>,
    ids: HashSet<u32>,
    /// The groups of /etc/group by their exact name (glibc compares group names exactly),
    /// with their gid: the only groups `[unix.local_groups]` can grant (see `grants`).
    groups: HashMap<String, u32>,
    /// Empty unless read with [`LocalAccounts::with_subordinate_ids`].
    subordinate: Vec<SubordinateRange>,
}

impl LocalAccounts {
    /// Reads the passwd- and group-format files. A missing file is empty; any other read
    /// error is reported, because guessing "no local accounts" could let a directory user
    /// shadow root.
    pub fn load(passwd: &Path, group: &Path) -> Result<LocalAccounts, LocalAccountsError> {
        LocalAccounts::load_with_metadata(passwd, group).map(|(accounts, _)| accounts)
    }

    /// [`LocalAccounts::load`], with the metadata of each file as read (from the open file,
    /// so it describes exactly the content read; `None`: missing): a reader that watches the
    /// files for a change needs no `stat()` of its own before the first read.
    pub fn load_with_metadata(
        passwd: &Path,
        group: &Path,
    ) -> Result<(LocalAccounts, [Option<fs::Metadata>; 2]), LocalAccountsError> {
        let mut accounts = LocalAccounts::default();
        let mut metadata = [None, None];
        for ((path, is_passwd), seen) in
            [(passwd, true), (group, false)].into_iter().zip(&mut metadata)
        {
            if let Some((text, meta)) = read_optional_with_metadata(path)? {
                accounts.add_file(&text, is_passwd);
                *seen = Some(meta);
            }
        }
        Ok((accounts, metadata))
    }

    /// Adds the subordinate ranges of the subuid- and subgid-format files, with the same
    /// rule: a missing file is empty, any other read error is reported. Only what hands out
    /// ids (sync, `user add`) and `check` read them; PAM and NSS do not need them.
    pub fn with_subordinate_ids(
        mut self,
        subuid: &Path,
        subgid: &Path,
    ) -> Result<LocalAccounts, LocalAccountsError> {
        for (path, kind) in [(subuid, SubordinateKind::Uid), (subgid, SubordinateKind::Gid)] {
            if let Some(text) = read_optional(path)? {
                self.subordinate.extend(parse_subordinate(&text, kind, path));
            }
        }
        Ok(self)
    }

    /// A passwd line also protects its primary gid, which /etc/group need not list.
    fn add_file(&mut self, text: &str, is_passwd: bool) {
        for line in text.lines() {
            let mut fields = line.split(':');
            let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let primary_gid = if is_passwd { fields.next() } else { None };
            if name.is_empty()
                || name.starts_with('#')
                || name.starts_with('+')
                || name.starts_with('-')
            {
                continue;
            }
            self.names.insert(fold_name(name));
            if !is_passwd {
                if let Ok(gid) = id.parse() {
                    // The first line of a name is the one glibc's `files` answers.
                    self.groups.entry(name.to_string()).or_insert(gid);
                }
            }
            for id in [Some(id), primary_gid].into_iter().flatten() {
                if let Ok(id) = id.parse() {
                    self.ids.insert(id);
                }
            }
        }
    }

    /// The rule "local accounts win", spelled once: whether a dircache account or group of
    /// this name, holding these ids, would collide with a local one (and so is never made,
    /// shown or authenticated).
    pub fn win_over(&self, name: &str, ids: &[u32]) -> bool {
        self.has_name(name) || ids.iter().any(|id| self.has_id(*id))
    }

    /// Whether `name` (compared case-insensitively) is a local user or group.
    fn has_name(&self, name: &str) -> bool {
        self.names.contains(&fold_name(name))
    }

    /// Whether `id` is a local uid or gid.
    fn has_id(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }

    /// The gid of the group of /etc/group named exactly `name`, if there is one.
    pub fn group_gid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }

    /// Whether a group of /etc/group has `gid`.
    pub fn has_group_gid(&self, gid: u32) -> bool {
        self.groups.values().any(|g| *g == gid)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter().copied()
    }

    /// The subordinate uid and gid ranges of local users, in file order.
    pub fn subordinate_ranges(&self) -> &[SubordinateRange] {
        &self.subordinate
    }

    /// Every id of a subordinate range, uid or gid alike, as ranges: ids that are never
    /// handed out. A dircache user's private group has its uid as gid, so a subgid range
    /// excludes uids too.
    pub fn subordinate_ids(&self) -> impl Iterator<Item = RangeInclusive<u32>> + '_ {
        self.subordinate.iter().map(SubordinateRange::ids)
    }

    /// What to tell the administrator about cache users and groups whose ids lie in a
    /// subordinate range (given before this was checked, or before the range was): the
    /// local user who owns the range can act as them from a user namespace. One line per
    /// range, naming a few of them. Ids are never changed, so the administrator must act.
    pub fn subordinate_id_warnings(&self, users: &[User], groups: &[Group]) -> Vec<String> {
        const NAMED: usize = 5;
        let mut warnings = Vec::new();
        for range in &self.subordinate {
            let users = users.iter().filter(|u| range.contains(u.uid) || range.contains(u.gid));
            let mut holders: Vec<String> =
                users.map(|u| format!("user {} (uid {}, gid {})", u.name, u.uid, u.gid)).collect();
            let groups = groups.iter().filter(|g| range.contains(g.gid));
            holders.extend(groups.map(|g| format!("group {} (gid {})", g.name, g.gid)));
            if holders.is_empty() {
                continue;
            }
            let more = holders.len().saturating_sub(NAMED);
            holders.truncate(NAMED);
            let mut named = holders.join(", ");
            if more > 0 {
                named.push_str(&format!(" and {more} more"));
            }
            warnings.push(format!(
                "ids inside {range} belong to dircache {named}: {owner} can act as them from a \
                 user namespace (newuidmap, rootless containers) and read or write their files; \
                 give {owner} other subordinate ids, outside unix.uid_range (usermod \
                 --del-sub{kind}s / --add-sub{kind}s): dircache never changes an id once given",
                owner = range.owner,
                kind = range.kind.as_str(),
            ));
        }
        warnings
    }
}

/// A file's text, or None when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, LocalAccountsError> {
    Ok(read_optional_with_metadata(path)?.map(|(text, _)| text))
}

/// The file's text (invalid UTF-8 replaced) and its metadata, through one open.
fn read_optional_with_metadata(
    path: &Path,
) -> Result<Option<(String, fs::Metadata)>, LocalAccountsError> {
    let failed = |source| LocalAccountsError { path: path.to_path_buf(), source };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let metadata = file.metadata().map_err(failed)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // The size the metadata states, no more: what is read matches it (a file that grows
    // meanwhile has a new size, which the next check sees), and neither the size nor the
    // end of the file is asked again (`File::read_to_end` would add fstat, lseek and a read).
    Read::take(&mut file, metadata.len()).read_to_end(&mut bytes).map_err(failed)?;
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    Ok(Some((text, metadata)))
}

/// The lines `owner:start:count` of a subuid- or subgid-format file (`owner` a name or a
/// uid; `count` ids from `start`). Malformed lines, comments and empty ranges hold no range;
/// a range that runs past the last 32-bit id ends there, and one that starts past it holds
/// no id.
fn parse_subordinate(text: &str, kind: SubordinateKind, file: &Path) -> Vec<SubordinateRange> {
    let parse = |line: &str| {
        let mut fields = line.trim().split(':');
        let (Some(owner), Some(start), Some(count), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        if owner.is_empty() || owner.starts_with('#') {
            return None;
        }
        let first: u32 = start.parse().ok()?;
        let count = parse_count(count)?.checked_sub(1)?;
        let last = u32::try_from(u64::from(first).saturating_add(count)).unwrap_or(u32::MAX);
        Some(SubordinateRange { owner: owner.to_string(), kind, first, last, file: file.into() })
    };
    text.lines().filter_map(parse).collect()
}

/// A count of decimal digits; one too large for 64 bits covers every id anyway.
fn parse_count(count: &str) -> Option<u64> {
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(count.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
