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

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use thiserror::Error;

use crate::cache::reader::Stamp;
use crate::names::{fold_name, same_name};
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

/// The names and ids of the local files. A process's first NSS lookup needs to ask this
/// once or twice, so the text is scanned for the question asked; only a process that keeps
/// asking pays for an index (issue 12 §2: building the index up front was four fifths of
/// the first lookup's instructions).
#[derive(Debug, Default)]
pub struct LocalAccounts {
    /// The passwd-format text, then the group-format text.
    texts: [String; 2],
    /// Built after [`SCANS_BEFORE_INDEX`] questions.
    index: OnceLock<Index>,
    scans: AtomicU32,
    /// Empty unless read with [`LocalAccounts::with_subordinate_ids`].
    subordinate: Vec<SubordinateRange>,
    /// [`LocalAccounts::seal_of`] the files as read; 0 when not read from files.
    files_seal: u64,
    /// The latest modification or change time of the files read (seconds since the epoch):
    /// a seal is only given to files that had not changed for a while before they were read
    /// ([`LocalAccounts::settled_before`]).
    changed_at: i64,
}

/// How long the local files must have been left alone, before they were read, for a seal:
/// longer than the coarsest file-time clock (1 s on ext4 with small inodes, a timer tick
/// elsewhere), so that a later change cannot carry the very times that were sealed (git's
/// "racily clean" index entries, the same problem).
const SETTLE_SECS: i64 = 2;

/// Mixed into every seal: a new meaning of "local account" (the parser's rules) gives new
/// seals, so a reader never trusts a check made under other rules.
const LOCAL_RULES_VERSION: u64 = 1;

/// How many questions are answered by scanning the text before an index is built.
const SCANS_BEFORE_INDEX: u32 = 8;

/// Sorted vectors rather than hash sets: binary search over a host's local accounts is as
/// fast as hashing, and building them costs less and needs no random seed.
#[derive(Debug, Default, Clone)]
struct Index {
    /// Folded, so `Root` is as local as `root`; sorted, without repeats.
    names: Vec<String>,
    /// Sorted, without repeats.
    ids: Vec<u32>,
    /// The gids of /etc/group's lines alone; sorted, without repeats.
    group_ids: Vec<u32>,
}

impl Clone for LocalAccounts {
    fn clone(&self) -> LocalAccounts {
        LocalAccounts {
            texts: self.texts.clone(),
            index: self.index.clone(),
            scans: AtomicU32::new(self.scans.load(Ordering::Relaxed)),
            subordinate: self.subordinate.clone(),
            files_seal: self.files_seal,
            changed_at: self.changed_at,
        }
    }
}

/// One account line: its name and the ids it holds (a passwd line also protects its primary
/// gid, which /etc/group need not list). Comments, NIS markers (`+`, `-`) and malformed
/// lines hold none. The one parser of these files, for scans and the index alike.
///
/// Read as glibc's `files` reads them: the blanks before a line are skipped (an indented
/// `  alice:x:1000:…` is the local user `alice`), and so are those before a number (which
/// strtoul skips: ` 1000` is 1000).
fn entries(text: &str, is_passwd: bool) -> impl Iterator<Item = (&str, [Option<u32>; 2])> {
    lines(text).filter_map(move |line| entry(line, is_passwd))
}

/// One line of [`entries`].
fn entry(line: &str, is_passwd: bool) -> Option<(&str, [Option<u32>; 2])> {
    let [Some(name), Some(_), Some(id), primary_gid] = leading_fields(skip_blanks(line)) else {
        return None;
    };
    if name.is_empty() || name.starts_with(['#', '+', '-']) {
        return None;
    }
    let primary_gid = primary_gid.filter(|_| is_passwd).and_then(parse_id);
    Some((name, [parse_id(id), primary_gid]))
}

/// What C's `isspace` calls space in the C locale (Rust's `is_ascii_whitespace` leaves out
/// the vertical tab).
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

fn skip_blanks(text: &str) -> &str {
    let start = text.bytes().position(|b| !is_c_space(b)).unwrap_or(text.len());
    // Blanks are ASCII: the cut falls on a character boundary.
    text.get(start..).unwrap_or("")
}

/// An id as glibc's `files` reads it: blanks, an optional `+`, decimal digits; a value past
/// the 32 bits makes glibc skip the line, so it holds no id. (What `str::parse` accepts,
/// without its generic set-up: a process's first lookup parses every local id.)
fn parse_id(field: &str) -> Option<u32> {
    let digits = skip_blanks(field).as_bytes();
    let digits = digits.strip_prefix(b"+").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |value, &byte| {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value.checked_mul(10)?.checked_add(u32::from(digit))
    })
}

/// The lines of a file, as `str::lines` cuts them.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    raw_lines(text).map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// The lines of a file without their `\n`, a `\r` before it kept.
fn raw_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = find_newline(rest.as_bytes()).unwrap_or(rest.len());
        // `\n` is ASCII: both cuts fall on character boundaries.
        let line = rest.get(..end).unwrap_or("");
        rest = rest.get(end + 1..).unwrap_or("");
        Some(line)
    })
}

/// The position of the first `\n`, eight bytes at a time: most of a local file is the
/// part of each line past its ids, which a scan only skips (a byte loop costs several
/// instructions per byte; `memchr` would detect the CPU's features on its first call, a
/// cost to every process's first lookup).
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        // A byte of `x` is zero where the chunk holds '\n' (the classic zero-byte test).
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|&b| b == b'\n').map(|found| at + found)
}

/// The first four `:`-separated fields of a line; `None` past the last one.
fn leading_fields(line: &str) -> [Option<&str>; 4] {
    let mut fields = [None; 4];
    let mut rest = line;
    for field in &mut fields {
        match rest.bytes().position(|b| b == b':') {
            Some(at) => {
                // `:` is ASCII, so both cuts fall on character boundaries.
                *field = rest.get(..at);
                rest = rest.get(at + 1..).unwrap_or("");
            }
            None => {
                *field = Some(rest);
                break;
            }
        }
    }
    fields
}

impl Index {
    fn build(texts: &[String; 2]) -> Index {
        let mut index = Index::default();
        for (text, is_passwd) in texts.iter().zip([true, false]) {
            for (name, ids) in entries(text, is_passwd) {
                index.names.push(fold_name(name));
                index.ids.extend(ids.into_iter().flatten());
                if !is_passwd {
                    index.group_ids.extend(ids[0]);
                }
            }
        }
        index.group_ids.sort_unstable();
        index.group_ids.dedup();
        index.names.sort_unstable();
        index.names.dedup();
        index.ids.sort_unstable();
        index.ids.dedup();
        index
    }
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
        for ((path, text), seen) in
            [passwd, group].into_iter().zip(&mut accounts.texts).zip(&mut metadata)
        {
            if let Some((read, meta)) = read_optional_with_metadata(path)? {
                *text = read;
                *seen = Some(meta);
            }
        }
        let stamps = metadata.each_ref().map(|m| m.as_ref().map(Stamp::of));
        accounts.files_seal = LocalAccounts::seal_of(&stamps);
        accounts.changed_at = stamps.iter().flatten().map(Stamp::changed_at).max().unwrap_or(0);
        Ok((accounts, metadata))
    }

    /// The local seal of the passwd and group files in these states (`None`: missing): a
    /// fingerprint of their `stat()` (device, inode, size, modification and change times to
    /// the nanosecond), never 0. A writer that checked every name and id of a generation
    /// against the files in these states stores it in the generation's headers
    /// ([`crate::cache::Db::seal_against`]); a reader that finds the files still in them
    /// knows the check holds without reading them (issue 12 §2: the first lookup of a
    /// process). Any change to a file changes its change time, so the seal no longer
    /// matches and the reader reads the files as before.
    pub fn seal_of(stamps: &[Option<Stamp>; 2]) -> u64 {
        // FNV-1a's steps over 64-bit words: each step is a bijection of the hash so far for a
        // given word and of the word for a given hash, so a change of any one field always
        // changes the seal, and several changes at once collide with odds of 2^-64.
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = (OFFSET_BASIS ^ LOCAL_RULES_VERSION).wrapping_mul(PRIME);
        for stamp in stamps {
            let (present, fields) = match stamp {
                Some(stamp) => (1, stamp.fields()),
                None => (0, [0; 7]),
            };
            for word in std::iter::once(present).chain(fields) {
                hash = (hash ^ word).wrapping_mul(PRIME);
            }
        }
        hash.max(1)
    }

    /// [`LocalAccounts::seal_of`] the files as they were read; 0 when not read from files.
    pub fn files_seal(&self) -> u64 {
        self.files_seal
    }

    /// Whether the files had been left alone for [`SETTLE_SECS`] at `now` (seconds since
    /// the epoch, taken before they were read): only then may a generation be sealed for
    /// them. A file changed just before it was read could change again within the same
    /// tick of the file-time clock, keeping every time a seal covers.
    pub fn settled_before(&self, now: u64) -> bool {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        self.files_seal != 0 && self.changed_at.saturating_add(SETTLE_SECS) <= now
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

    /// The rule "local accounts win", spelled once: whether a dircache account or group of
    /// this name, holding these ids, would collide with a local one (and so is never made,
    /// shown or authenticated).
    pub fn win_over(&self, name: &str, ids: &[u32]) -> bool {
        if let Some(index) = self.indexed() {
            let folded = fold_name(name);
            return index.names.binary_search(&folded).is_ok()
                || ids.iter().any(|id| index.ids.binary_search(id).is_ok());
        }
        self.texts.iter().zip([true, false]).any(|(text, is_passwd)| {
            entries(text, is_passwd).any(|(local, local_ids)| {
                same_name(local, name) || local_ids.iter().flatten().any(|id| ids.contains(id))
            })
        })
    }

    /// The index, once enough questions were asked to pay for it; `None` before.
    fn indexed(&self) -> Option<&Index> {
        if self.index.get().is_none()
            && self.scans.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX
        {
            return None;
        }
        Some(self.index())
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(&self.texts))
    }

    /// Whether `name` (compared case-insensitively) is a local user or group.
    #[cfg(test)]
    fn has_name(&self, name: &str) -> bool {
        self.win_over(name, &[])
    }

    /// Whether `id` is a local uid or gid.
    #[cfg(test)]
    fn has_id(&self, id: u32) -> bool {
        self.win_over("", &[id])
    }

    /// The gid of the group of /etc/group named exactly `name` (glibc compares group names
    /// exactly), if there is one: the first such line glibc reads, the one its `files`
    /// answers. Only `[unix.local_groups]` asks (see `grants`), rarely enough to scan the
    /// text. Exact, not cautious like [`LocalAccounts::win_over`]: it decides which gid a
    /// grant gives, and that gid 0 is never one.
    pub fn group_gid(&self, name: &str) -> Option<u32> {
        raw_lines(&self.texts[1]).find_map(|raw| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let (group, [gid, _]) = entry(line, false)?;
            // A gid that ends a CRLF line runs into the '\r', where strtoul stops: glibc
            // skips the line (`sudo:x:27\r`), as it skips one whose gid is not a number.
            let gid_ends_in_cr = raw != line && leading_fields(skip_blanks(line))[3].is_none();
            gid.filter(|_| group == name && !gid_ends_in_cr)
        })
    }

    /// Whether a group of /etc/group has `gid`.
    pub fn has_group_gid(&self, gid: u32) -> bool {
        // `initgroups` asks this once per granted gid: past a few questions, the index.
        if let Some(index) = self.indexed() {
            return index.group_ids.binary_search(&gid).is_ok();
        }
        entries(&self.texts[1], false).any(|(_, [group_gid, _])| group_gid == Some(gid))
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.index().ids.iter().copied()
    }

    /// The home directories of the local users (passwd's sixth field), in file order, as
    /// the kernel resolves them (`crate::paths::resolved`: homes are compared so).
    pub fn homes(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        let fields = self.texts[0].lines().filter_map(|line| line.split(':').nth(5));
        fields.filter(|home| !home.is_empty()).map(crate::paths::resolved)
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
        let users = users.iter().map(|u| (u.name.as_str(), u.uid, u.gid));
        self.subordinate_id_warnings_of(users, groups)
    }

    /// [`LocalAccounts::subordinate_id_warnings`] of users given as (name, uid, gid), in
    /// whatever form the caller holds them.
    pub fn subordinate_id_warnings_of<'u>(
        &self,
        users: impl Iterator<Item = (&'u str, u32, u32)> + Clone,
        groups: &[Group],
    ) -> Vec<String> {
        const NAMED: usize = 5;
        let mut warnings = Vec::new();
        for range in &self.subordinate {
            let users =
                users.clone().filter(|(_, uid, gid)| range.contains(*uid) || range.contains(*gid));
            let mut holders: Vec<String> = users
                .map(|(name, uid, gid)| format!("user {name} (uid {uid}, gid {gid})"))
                .collect();
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
