//! The NSS provider's logic: what `libnss_dircache.so.2` answers for `getpwnam`, `getgrgid`,
//! `initgroups` and the enumerations. `nss_module` only converts between C and this.
//!
//! Per process (one [`Nss`] behind a mutex in the `.so`), nothing is parsed whole:
//! - the current generation's `users.public` and `groups.public`, mapped (mmap in the `.so`,
//!   see [`Mapper`]) and opened as tables; each call `stat()`s `<dir>/current/users.public`
//!   and reopens both tables when its device, inode, size or mtime changed, so a cache
//!   replaced by a sync is used by the next lookup;
//! - the names and ids of /etc/passwd and /etc/group (read as files, never through NSS),
//!   re-read when one of them changes: those accounts always win, so nothing is answered
//!   for a local name or id and a directory `root` cannot exist;
//! - an LRU of recent answers (found or not), emptied whenever either of the above changes;
//! - one cursor per enumeration (`setpwent`, `setgrent`), holding the generation it started
//!   on until it ends, so a sync during `getent passwd` never mixes two generations.
//!
//! Groups are the directory groups of `groups.public` plus a private group per user (name
//! and gid of the user, no members) when the user's gid equals its uid and no directory group
//! has its name. Enumeration lists the directory groups first, then the private groups.
//!
//! Nothing here writes, starts a thread, touches the network or calls getpw*/getgr*.
//! A record whose name or fields would break a passwd/group line is skipped and logged once.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::cache::format::ByteSource;
use crate::cache::records::CacheRecord;
use crate::cache::{check_trusted, CacheError, Lookup, PublicUser};
use crate::config::DEFAULT_CACHE_DIR;
use crate::ids::is_reserved;
use crate::local_accounts::LocalAccounts;
use crate::names::{fold_name, NameError, NamePolicy};
use crate::user::Group;

/// Environment variables the module reads with `secure_getenv` (ignored in setuid programs).
pub const ENV_CACHE_DIR: &str = "DIRCACHE_CACHE_DIR";
pub const ENV_LOCAL_PASSWD: &str = "DIRCACHE_LOCAL_PASSWD";
pub const ENV_LOCAL_GROUP: &str = "DIRCACHE_LOCAL_GROUP";
pub const DEFAULT_LOCAL_PASSWD: &str = "/etc/passwd";
pub const DEFAULT_LOCAL_GROUP: &str = "/etc/group";

/// Recent answers kept per process.
pub const LRU_ENTRIES: usize = 4096;
/// How often the local account files are `stat()`ed for a change. A stat costs about a
/// microsecond; two per lookup would double its cost. With `passwd: files dircache` the
/// local files answer first anyway, so a new local account wins at once there; this only
/// bounds how long an enumeration or a lookup by the other key may still show a directory
/// account that a new local one hides.
pub const LOCAL_RECHECK: Duration = Duration::from_secs(1);
/// Distinct problems logged per process (each once); more are dropped.
const MAX_LOGGED: usize = 64;
const CURRENT_LINK: &str = "current";

/// NSS status codes (`enum nss_status`).
pub const NSS_STATUS_TRYAGAIN: i32 = -2;
pub const NSS_STATUS_UNAVAIL: i32 = -1;
pub const NSS_STATUS_NOTFOUND: i32 = 0;
pub const NSS_STATUS_SUCCESS: i32 = 1;

/// The answer of one NSS call: its status and the errno that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    Found(T),
    /// NOTFOUND with ENOENT (also the end of an enumeration).
    NotFound,
    /// TRYAGAIN with this errno: ERANGE (the buffer is too small; glibc retries with a
    /// bigger one) or ENOMEM.
    TryAgain(i32),
    /// UNAVAIL with this errno: ENOENT (no cache) or EIO (unreadable, corrupt or insecure
    /// cache, unreadable local files). The next service in nsswitch.conf answers.
    Unavailable(i32),
}

impl<T> Reply<T> {
    pub fn status(&self) -> i32 {
        match self {
            Reply::Found(_) => NSS_STATUS_SUCCESS,
            Reply::NotFound => NSS_STATUS_NOTFOUND,
            Reply::TryAgain(_) => NSS_STATUS_TRYAGAIN,
            Reply::Unavailable(_) => NSS_STATUS_UNAVAIL,
        }
    }

    /// What to store in `*errnop`; `None` on success (left untouched).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Reply::Found(_) => None,
            Reply::NotFound => Some(libc::ENOENT),
            Reply::TryAgain(errno) | Reply::Unavailable(errno) => Some(*errno),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        match self {
            Reply::Found(value) => Reply::Found(f(value)),
            Reply::NotFound => Reply::NotFound,
            Reply::TryAgain(errno) => Reply::TryAgain(errno),
            Reply::Unavailable(errno) => Reply::Unavailable(errno),
        }
    }

    /// Packs a found entry into the caller's buffer: `None` from `pack` (too small) becomes
    /// TRYAGAIN with ERANGE.
    pub fn pack<U>(self, pack: impl FnOnce(&T) -> Option<U>) -> Reply<U> {
        match self {
            Reply::Found(value) => match pack(&value) {
                Some(packed) => Reply::Found(packed),
                None => Reply::TryAgain(libc::ERANGE),
            },
            Reply::NotFound => Reply::NotFound,
            Reply::TryAgain(errno) => Reply::TryAgain(errno),
            Reply::Unavailable(errno) => Reply::Unavailable(errno),
        }
    }
}

/// One group entry; the password field is always `x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Where the cache and the local account files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub cache_dir: PathBuf,
    pub local_passwd: PathBuf,
    pub local_group: PathBuf,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::from_vars([None, None, None])
    }
}

impl Settings {
    /// From the values of [`ENV_CACHE_DIR`], [`ENV_LOCAL_PASSWD`] and [`ENV_LOCAL_GROUP`]
    /// (unset or empty: the defaults).
    pub fn from_vars(vars: [Option<&[u8]>; 3]) -> Settings {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let pick = |value: Option<&[u8]>, default: &str| match value {
            Some(bytes) if !bytes.is_empty() => PathBuf::from(OsStr::from_bytes(bytes)),
            _ => PathBuf::from(default),
        };
        Settings {
            cache_dir: pick(vars[0], DEFAULT_CACHE_DIR),
            local_passwd: pick(vars[1], DEFAULT_LOCAL_PASSWD),
            local_group: pick(vars[2], DEFAULT_LOCAL_GROUP),
        }
    }
}

/// Makes a cache file readable as bytes: the `.so` maps it (mmap), tests read it.
/// Generation files are never modified once published, so a mapping stays valid.
pub trait Mapper {
    type Map: AsRef<[u8]> + Send + Sync;
    fn map(&self, file: &File, len: u64) -> io::Result<Self::Map>;
}

/// Reads the whole file into memory: for tests, and wherever mmap is not wanted.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadMapper;

impl Mapper for ReadMapper {
    type Map = Vec<u8>;

    fn map(&self, file: &File, len: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut bytes = vec![0u8; len];
        FileExt::read_exact_at(file, &mut bytes, 0)?;
        Ok(bytes)
    }
}

/// A mapped file as a table's byte source.
pub struct Mapped<B>(pub B);

impl<B: AsRef<[u8]>> ByteSource for Mapped<B> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.as_ref().len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        ByteSource::read_exact_at(self.0.as_ref(), buf, offset)
    }
}

/// Identity of a file's content and attributes, as `stat()` tells it. The ctime makes a
/// fixed mode or owner (chmod, chown) count as a change, so a remembered refusal is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }

    /// `None` when the file does not exist.
    fn probe(path: &Path) -> io::Result<Option<Stamp>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why the module cannot answer: UNAVAIL with `errno`, and `message` logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    errno: i32,
    message: String,
    /// A problem of the files' content, owner or mode, which stays until a sync writes a new
    /// generation; not an error of this process or moment (EMFILE, ENOMEM, a missing file),
    /// which the next call retries.
    lasting: bool,
}

impl Problem {
    fn missing(what: impl fmt::Display) -> Problem {
        Problem {
            errno: libc::ENOENT,
            message: format!("no dircache cache: {what}"),
            lasting: false,
        }
    }

    fn broken(what: impl fmt::Display) -> Problem {
        Problem { errno: libc::EIO, message: what.to_string(), lasting: true }
    }

    fn io(path: &Path, error: &io::Error) -> Problem {
        if error.kind() == io::ErrorKind::NotFound {
            Problem::missing(format!("{} does not exist", path.display()))
        } else {
            let message = format!("{}: {error}", path.display());
            Problem { errno: libc::EIO, message, lasting: false }
        }
    }
}

/// A table over a mapped file.
type Table<T, B> = Lookup<T, Mapped<B>>;

/// One generation's two public tables.
struct Tables<B> {
    stamp: Stamp,
    users: Table<PublicUser, B>,
    groups: Table<Group, B>,
}

struct LocalState {
    stamps: [Option<Stamp>; 2],
    checked_at: Instant,
    accounts: LocalAccounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    UserName(String),
    Uid(u32),
    GroupName(String),
    Gid(u32),
    Supplementary(String),
}

#[derive(Clone)]
enum Cached {
    User(Option<Arc<PublicUser>>),
    Group(Option<Arc<GroupEntry>>),
    Gids(Option<Arc<[u32]>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Users,
    DirectoryGroups,
    PrivateGroups,
    Done,
}

/// An enumeration in progress: the generation it started on and where it is.
struct Walk<B> {
    tables: Arc<Tables<B>>,
    phase: Phase,
    cursor: u64,
}

/// What a log line may say: one line, printable.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Whether the module may answer for `name`: the built-in name policy (the module reads no
/// configuration; `[unix] reserved_names` is applied when the cache is written). A cache file
/// holding `admin` or `x;id` is never served.
fn servable(name: &str) -> Result<(), NameError> {
    NamePolicy::default().check(name)
}

/// A name asked for by a caller: anything that could not be served is simply unknown.
fn query_name(name: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(name).ok()?;
    servable(name).ok()?;
    Some(name)
}

/// Why a passwd field cannot be emitted, if it cannot.
fn bad_field(value: &str) -> Option<&'static str> {
    if value.contains(':') {
        Some("contains ':'")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character (newline, NUL, …)")
    } else {
        None
    }
}

fn check_user(user: &PublicUser) -> Result<(), String> {
    servable(&user.name).map_err(|e| e.to_string())?;
    for id in [user.uid, user.gid] {
        if is_reserved(id) {
            return Err(format!("id {id} is reserved"));
        }
    }
    for (field, value) in [("gecos", &user.gecos), ("home", &user.home), ("shell", &user.shell)] {
        if let Some(reason) = bad_field(value) {
            return Err(format!("its {field} {reason}"));
        }
    }
    Ok(())
}

fn check_group(group: &Group) -> Result<(), String> {
    servable(&group.name).map_err(|e| e.to_string())?;
    if is_reserved(group.gid) {
        return Err(format!("gid {} is reserved", group.gid));
    }
    Ok(())
}

fn found_or_not<T>(value: Option<T>) -> Reply<T> {
    match value {
        Some(value) => Reply::Found(value),
        None => Reply::NotFound,
    }
}

/// The per-process state of the NSS module.
pub struct Nss<M: Mapper> {
    mapper: M,
    log: Box<dyn Fn(&str) + Send>,
    raw_settings: [Option<Vec<u8>>; 3],
    settings: Settings,
    tables: Option<Arc<Tables<M::Map>>>,
    /// The last failure to open the generation whose users.public had this stamp: not
    /// retried until the file changes.
    failed: Option<(Option<Stamp>, Problem)>,
    local: Option<LocalState>,
    local_recheck: Duration,
    lru: LruCache<Query, Cached>,
    lru_enabled: bool,
    logged: HashSet<String>,
    passwd_walk: Option<Walk<M::Map>>,
    group_walk: Option<Walk<M::Map>>,
    /// `<cache dir>/current/users.public`, stat()ed by every lookup: built once per
    /// configuration, not per lookup.
    probe: PathBuf,
}

/// The file whose `stat()` tells a lookup whether a sync wrote a new generation.
fn probe_path(settings: &Settings) -> PathBuf {
    settings.cache_dir.join(CURRENT_LINK).join(PublicUser::FILE_NAME)
}

impl<M: Mapper> Nss<M> {
    /// `log` receives each distinct problem once (the `.so` sends it to syslog).
    pub fn new(mapper: M, settings: Settings, log: Box<dyn Fn(&str) + Send>) -> Nss<M> {
        Nss {
            mapper,
            log,
            raw_settings: [None, None, None],
            probe: probe_path(&settings),
            settings,
            tables: None,
            failed: None,
            local: None,
            local_recheck: LOCAL_RECHECK,
            lru: LruCache::new(NonZeroUsize::MIN.saturating_add(LRU_ENTRIES - 1)),
            lru_enabled: true,
            logged: HashSet::new(),
            passwd_walk: None,
            group_walk: None,
        }
    }

    /// How often the local account files are checked for a change ([`LOCAL_RECHECK`]).
    pub fn set_local_recheck(&mut self, interval: Duration) {
        self.local_recheck = interval;
    }

    /// Turns the LRU of answers off (every lookup reads the tables) or on; for benchmarks
    /// of the table path.
    pub fn set_lru_enabled(&mut self, enabled: bool) {
        self.lru_enabled = enabled;
        self.lru.clear();
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies the raw environment values (see [`Settings::from_vars`]); a change starts
    /// over with the new paths. Cheap when nothing changed (no allocation).
    pub fn configure(&mut self, vars: [Option<&[u8]>; 3]) {
        let same =
            self.raw_settings.iter().zip(vars.iter()).all(|(old, new)| old.as_deref() == *new);
        if same {
            return;
        }
        self.raw_settings = vars.map(|v| v.map(<[u8]>::to_vec));
        let settings = Settings::from_vars(vars);
        if settings != self.settings {
            self.probe = probe_path(&settings);
            self.settings = settings;
            self.tables = None;
            self.failed = None;
            self.local = None;
            self.lru.clear();
            self.logged.clear();
            self.passwd_walk = None;
            self.group_walk = None;
        }
    }

    // ----- lookups -----

    pub fn passwd_by_name(&mut self, name: &[u8]) -> Reply<Arc<PublicUser>> {
        let Some(name) = query_name(name) else {
            return Reply::NotFound;
        };
        self.cached_user(Query::UserName(fold_name(name)), |tables| tables.users.by_name(name))
    }

    pub fn passwd_by_uid(&mut self, uid: u32) -> Reply<Arc<PublicUser>> {
        if is_reserved(uid) {
            return Reply::NotFound;
        }
        self.cached_user(Query::Uid(uid), |tables| tables.users.by_id(uid))
    }

    pub fn group_by_name(&mut self, name: &[u8]) -> Reply<Arc<GroupEntry>> {
        let Some(name) = query_name(name) else {
            return Reply::NotFound;
        };
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        let key = Query::GroupName(fold_name(name));
        if let Some(Cached::Group(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = match tables.groups.by_name(name) {
            Ok(Some(group)) => Ok(self.accept_group(&group)),
            Ok(None) => match tables.users.by_name(name) {
                Ok(Some(user)) => self.private_group(&tables, &user),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group)
    }

    pub fn group_by_gid(&mut self, gid: u32) -> Reply<Arc<GroupEntry>> {
        if is_reserved(gid) {
            return Reply::NotFound;
        }
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        let key = Query::Gid(gid);
        if let Some(Cached::Group(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = match tables.groups.by_id(gid) {
            Ok(Some(group)) => Ok(self.accept_group(&group)),
            // A private group has the gid (and so the uid) of its user.
            Ok(None) => match tables.users.by_id(gid) {
                Ok(Some(user)) if user.gid == gid => self.private_group(&tables, &user),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group)
    }

    /// The user's directory groups (for `initgroups_dyn`), from the user record alone: no
    /// walk over every group. Only gids `getgrgid` would answer are included.
    pub fn supplementary_gids(&mut self, user: &[u8]) -> Reply<Arc<[u32]>> {
        let Some(name) = query_name(user) else {
            return Reply::NotFound;
        };
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        let key = Query::Supplementary(fold_name(name));
        if let Some(Cached::Gids(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = match tables.users.by_name(name) {
            Ok(Some(user)) if self.user_visible(&user) => {
                self.visible_gids(&tables, &user.gids).map(|gids| Some(gids.into()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        self.remember(key, answer, Cached::Gids)
    }

    // ----- enumeration -----

    /// `setpwent`: starts (or restarts) the user enumeration on the current generation.
    pub fn start_passwd_walk(&mut self) -> Reply<()> {
        self.passwd_walk = None;
        match self.prepare() {
            Ok(tables) => {
                let cursor = tables.users.first_cursor();
                self.passwd_walk = Some(Walk { tables, phase: Phase::Users, cursor });
                Reply::Found(())
            }
            Err(problem) => self.unavailable(problem),
        }
    }

    pub fn end_passwd_walk(&mut self) {
        self.passwd_walk = None;
    }

    /// `getpwent_r`: the next user, handed to `pack`. When `pack` finds the buffer too small
    /// the enumeration stays on that user (TRYAGAIN/ERANGE: glibc retries it bigger).
    pub fn next_passwd<T>(&mut self, pack: impl FnOnce(&PublicUser) -> Option<T>) -> Reply<T> {
        if self.passwd_walk.is_none() {
            if let Reply::Unavailable(errno) = self.start_passwd_walk() {
                return Reply::Unavailable(errno);
            }
        }
        if let Err(problem) = self.refresh_local() {
            return self.unavailable(problem);
        }
        let Some(mut walk) = self.passwd_walk.take() else {
            return Reply::NotFound;
        };
        let reply = loop {
            match walk.tables.users.next(walk.cursor) {
                Ok(Some((user, next))) => {
                    if let Some(entry) = self.accept_user(user) {
                        match pack(&entry) {
                            Some(packed) => {
                                walk.cursor = next;
                                break Reply::Found(packed);
                            }
                            None => break Reply::TryAgain(libc::ERANGE),
                        }
                    }
                    walk.cursor = next;
                }
                Ok(None) => {
                    walk.phase = Phase::Done;
                    break Reply::NotFound;
                }
                Err(e) => break self.corrupt(e),
            }
        };
        self.passwd_walk = Some(walk);
        reply
    }

    /// `setgrent`: starts (or restarts) the group enumeration on the current generation.
    pub fn start_group_walk(&mut self) -> Reply<()> {
        self.group_walk = None;
        match self.prepare() {
            Ok(tables) => {
                let cursor = tables.groups.first_cursor();
                self.group_walk = Some(Walk { tables, phase: Phase::DirectoryGroups, cursor });
                Reply::Found(())
            }
            Err(problem) => self.unavailable(problem),
        }
    }

    pub fn end_group_walk(&mut self) {
        self.group_walk = None;
    }

    /// `getgrent_r`: the directory groups, then the private groups.
    pub fn next_group<T>(&mut self, pack: impl FnOnce(&GroupEntry) -> Option<T>) -> Reply<T> {
        if self.group_walk.is_none() {
            if let Reply::Unavailable(errno) = self.start_group_walk() {
                return Reply::Unavailable(errno);
            }
        }
        if let Err(problem) = self.refresh_local() {
            return self.unavailable(problem);
        }
        let Some(mut walk) = self.group_walk.take() else {
            return Reply::NotFound;
        };
        let reply = loop {
            let step = match walk.phase {
                Phase::DirectoryGroups => match walk.tables.groups.next(walk.cursor) {
                    Ok(Some((group, next))) => Ok(Some((self.accept_group(&group), next))),
                    Ok(None) => {
                        walk.phase = Phase::PrivateGroups;
                        walk.cursor = walk.tables.users.first_cursor();
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Phase::PrivateGroups => match walk.tables.users.next(walk.cursor) {
                    Ok(Some((user, next))) => {
                        self.private_group(&walk.tables, &user).map(|group| Some((group, next)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
                Phase::Users | Phase::Done => Ok(None),
            };
            match step {
                Ok(Some((Some(entry), next))) => match pack(&entry) {
                    Some(packed) => {
                        walk.cursor = next;
                        break Reply::Found(packed);
                    }
                    None => break Reply::TryAgain(libc::ERANGE),
                },
                Ok(Some((None, next))) => walk.cursor = next,
                Ok(None) => {
                    walk.phase = Phase::Done;
                    break Reply::NotFound;
                }
                Err(e) => break self.corrupt(e),
            }
        };
        self.group_walk = Some(walk);
        reply
    }

    // ----- internals -----

    fn cached_user(
        &mut self,
        key: Query,
        find: impl FnOnce(&Tables<M::Map>) -> Result<Option<PublicUser>, CacheError>,
    ) -> Reply<Arc<PublicUser>> {
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        if let Some(Cached::User(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = find(&tables).map(|user| user.and_then(|u| self.accept_user(u)).map(Arc::new));
        self.remember(key, answer, Cached::User)
    }

    fn recall(&mut self, key: &Query) -> Option<&Cached> {
        if self.lru_enabled {
            self.lru.get(key)
        } else {
            None
        }
    }

    fn remember<T: Clone>(
        &mut self,
        key: Query,
        answer: Result<Option<T>, CacheError>,
        wrap: impl FnOnce(Option<T>) -> Cached,
    ) -> Reply<T> {
        match answer {
            Ok(value) => {
                if self.lru_enabled {
                    self.lru.put(key, wrap(value.clone()));
                }
                found_or_not(value)
            }
            Err(e) => self.corrupt(e),
        }
    }

    /// Whether a user record may be shown: not when a field would break the passwd format
    /// (logged once), nor when its name or an id is local.
    fn user_visible(&mut self, user: &PublicUser) -> bool {
        if let Err(reason) = check_user(user) {
            self.log_once(format!(
                "skipping the user record {:?} (uid {}): {reason}",
                printable(&user.name),
                user.uid
            ));
            return false;
        }
        self.local.as_ref().is_some_and(|l| {
            !l.accounts.has_name(&user.name)
                && !l.accounts.has_id(user.uid)
                && !l.accounts.has_id(user.gid)
        })
    }

    /// The user record, if it may be shown (its password field is always `x`).
    fn accept_user(&mut self, user: PublicUser) -> Option<PublicUser> {
        self.user_visible(&user).then_some(user)
    }

    /// Whether `group` may be shown at all (its members aside).
    fn group_visible(&mut self, group: &Group) -> bool {
        if let Err(reason) = check_group(group) {
            self.log_once(format!(
                "skipping the group record {:?} (gid {}): {reason}",
                printable(&group.name),
                group.gid
            ));
            return false;
        }
        self.local
            .as_ref()
            .is_some_and(|l| !l.accounts.has_name(&group.name) && !l.accounts.has_id(group.gid))
    }

    /// The entry for a directory group; members that are invalid or local are left out.
    fn accept_group(&mut self, group: &Group) -> Option<GroupEntry> {
        if !self.group_visible(group) {
            return None;
        }
        let mut members = Vec::with_capacity(group.members.len());
        for member in &group.members {
            if let Err(reason) = servable(member) {
                self.log_once(format!(
                    "leaving the member {:?} out of the group {:?}: {reason}",
                    printable(member),
                    group.name
                ));
                continue;
            }
            if self.local.as_ref().is_some_and(|l| !l.accounts.has_name(member)) {
                members.push(member.clone());
            }
        }
        Some(GroupEntry { name: group.name.clone(), gid: group.gid, members })
    }

    /// The private group of `user`, if it has one: gid equal to its uid, the user visible,
    /// and no directory group of the same name (the directory group wins).
    fn private_group(
        &mut self,
        tables: &Tables<M::Map>,
        user: &PublicUser,
    ) -> Result<Option<GroupEntry>, CacheError> {
        if user.gid != user.uid || !self.user_visible(user) {
            return Ok(None);
        }
        if tables.groups.by_name(&user.name)?.is_some() {
            return Ok(None);
        }
        Ok(Some(GroupEntry { name: user.name.clone(), gid: user.gid, members: Vec::new() }))
    }

    fn visible_gids(
        &mut self,
        tables: &Tables<M::Map>,
        gids: &[u32],
    ) -> Result<Vec<u32>, CacheError> {
        let mut visible = Vec::with_capacity(gids.len());
        for gid in gids {
            if visible.contains(gid) {
                continue;
            }
            if let Some(group) = tables.groups.by_id(*gid)? {
                if self.group_visible(&group) {
                    visible.push(*gid);
                }
            }
        }
        Ok(visible)
    }

    /// Brings the local accounts and the tables up to date; returns the current tables.
    fn prepare(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        self.refresh_local()?;
        self.refresh_tables()
    }

    fn refresh_local(&mut self) -> Result<(), Problem> {
        if let Some(local) = &mut self.local {
            if local.checked_at.elapsed() < self.local_recheck {
                return Ok(());
            }
        }
        let checked_at = Instant::now();
        let paths = [&self.settings.local_passwd, &self.settings.local_group];
        let mut stamps = [None, None];
        for (stamp, path) in stamps.iter_mut().zip(paths) {
            *stamp = Stamp::probe(path).map_err(|e| {
                Problem::broken(format!(
                    "cannot check the local accounts in {}: {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(local) = self.local.as_mut().filter(|l| l.stamps == stamps) {
            local.checked_at = checked_at;
            return Ok(());
        }
        self.lru.clear();
        self.local = None;
        let accounts = LocalAccounts::load(&self.settings.local_passwd, &self.settings.local_group)
            .map_err(|e| Problem::broken(format!("cannot read the local accounts: {e}")))?;
        self.local = Some(LocalState { stamps, checked_at, accounts });
        Ok(())
    }

    fn refresh_tables(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        let stamp = Stamp::probe(&self.probe).map_err(|e| Problem::io(&self.probe, &e));
        let stamp = match stamp {
            Ok(stamp) => stamp,
            Err(problem) => {
                self.drop_tables();
                return Err(problem);
            }
        };
        if let (Some(tables), Some(stamp)) = (&self.tables, stamp) {
            if tables.stamp == stamp {
                return Ok(tables.clone());
            }
        }
        if let Some((failed_stamp, problem)) = &self.failed {
            if *failed_stamp == stamp {
                return Err(problem.clone());
            }
        }
        self.drop_tables();
        let opened = match stamp {
            Some(_) => self.open_tables(),
            None => Err(Problem::missing(format!("{} does not exist", self.probe.display()))),
        };
        match opened {
            Ok(tables) => {
                let tables = Arc::new(tables);
                self.tables = Some(tables.clone());
                self.failed = None;
                self.logged.clear();
                Ok(tables)
            }
            Err(problem) => {
                // Only a lasting problem is remembered for this generation; an error of the
                // moment is retried by the next call.
                self.failed = problem.lasting.then(|| (stamp, problem.clone()));
                Err(problem)
            }
        }
    }

    fn drop_tables(&mut self) {
        if self.tables.take().is_some() {
            self.lru.clear();
        }
    }

    fn open_tables(&self) -> Result<Tables<M::Map>, Problem> {
        let link = self.settings.cache_dir.join(CURRENT_LINK);
        let target = fs::read_link(&link).map_err(|e| Problem::io(&link, &e))?;
        let dir = self.settings.cache_dir.join(target);
        let (users, stamp) = self.open_table::<PublicUser>(&dir)?;
        let (groups, _) = self.open_table::<Group>(&dir)?;
        if users.generation() != groups.generation() {
            return Err(Problem::broken(format!(
                "the cache files in {} belong to different generations",
                dir.display()
            )));
        }
        Ok(Tables { stamp, users, groups })
    }

    fn open_table<T: CacheRecord>(&self, dir: &Path) -> Result<(Table<T, M::Map>, Stamp), Problem> {
        let path = dir.join(T::FILE_NAME);
        let file = File::open(&path).map_err(|e| Problem::io(&path, &e))?;
        let meta = file.metadata().map_err(|e| Problem::io(&path, &e))?;
        check_trusted(&path, &meta, true).map_err(Problem::broken)?;
        let map = self.mapper.map(&file, meta.len()).map_err(|e| Problem::io(&path, &e))?;
        let table = Lookup::from_source(path, Mapped(map)).map_err(Problem::broken)?;
        Ok((table, Stamp::of(&meta)))
    }

    fn corrupt<T>(&mut self, error: CacheError) -> Reply<T> {
        self.unavailable(Problem::broken(error))
    }

    fn unavailable<T>(&mut self, problem: Problem) -> Reply<T> {
        self.log_once(problem.message);
        Reply::Unavailable(problem.errno)
    }

    fn log_once(&mut self, message: String) {
        if self.logged.len() < MAX_LOGGED && self.logged.insert(message.clone()) {
            (self.log)(&printable(&message));
        }
    }
}

// ----- packing entries into the caller's buffer -----

/// Offsets into the caller's buffer of a packed `struct passwd`'s strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswdLayout {
    pub name: usize,
    pub passwd: usize,
    pub uid: u32,
    pub gid: u32,
    pub gecos: usize,
    pub dir: usize,
    pub shell: usize,
}

/// Offsets into the caller's buffer of a packed `struct group`: its strings and the
/// NULL-terminated member pointer array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLayout {
    pub name: usize,
    pub passwd: usize,
    pub gid: u32,
    pub members: usize,
}

const POINTER: usize = std::mem::size_of::<usize>();

/// The caller's buffer, written only through this (the `.so` never makes a slice of memory
/// glibc did not initialize). `write` is only called within `size()`.
pub trait Buffer {
    /// Bytes available.
    fn size(&self) -> usize;
    fn write(&mut self, offset: usize, bytes: &[u8]);
}

impl Buffer for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if let Some(target) = self.get_mut(offset..offset.saturating_add(bytes.len())) {
            target.copy_from_slice(bytes);
        }
    }
}

struct Packer<'b, B: Buffer + ?Sized> {
    buf: &'b mut B,
    used: usize,
}

impl<B: Buffer + ?Sized> Packer<'_, B> {
    /// Reserves `len` bytes at `start`; `None` when they do not fit.
    fn reserve(&mut self, start: usize, len: usize) -> Option<usize> {
        let end = start.checked_add(len)?;
        (end <= self.buf.size()).then(|| {
            self.used = end;
            start
        })
    }

    /// Copies `text` and a NUL; returns its offset. Texts never hold a NUL (checked before).
    fn string(&mut self, text: &str) -> Option<usize> {
        let start = self.reserve(self.used, text.len().checked_add(1)?)?;
        self.buf.write(start, text.as_bytes());
        self.buf.write(start + text.len(), &[0]);
        Some(start)
    }

    /// Writes a NULL-terminated array of pointers to the strings at `targets`, aligned for a
    /// pointer given that the buffer starts at address `base`; returns its offset.
    fn pointers(&mut self, base: usize, targets: &[usize]) -> Option<usize> {
        let misalign = base.checked_add(self.used)? % POINTER;
        let start = self.used.checked_add((POINTER - misalign) % POINTER)?;
        let len = targets.len().checked_add(1)?.checked_mul(POINTER)?;
        let start = self.reserve(start, len)?;
        let values = targets.iter().map(|t| base.checked_add(*t)).chain([Some(0)]);
        for (i, value) in values.enumerate() {
            self.buf.write(start + i * POINTER, &value?.to_ne_bytes());
        }
        Some(start)
    }
}

/// Packs `entry` into `buf`; `None` when it does not fit.
pub fn pack_passwd<B: Buffer + ?Sized>(entry: &PublicUser, buf: &mut B) -> Option<PasswdLayout> {
    let mut packer = Packer { buf, used: 0 };
    Some(PasswdLayout {
        name: packer.string(&entry.name)?,
        passwd: packer.string("x")?,
        uid: entry.uid,
        gid: entry.gid,
        gecos: packer.string(&entry.gecos)?,
        dir: packer.string(&entry.home)?,
        shell: packer.string(&entry.shell)?,
    })
}

/// Packs `entry` into `buf`, which starts at address `base` (the member array holds
/// addresses); `None` when it does not fit.
pub fn pack_group<B: Buffer + ?Sized>(
    entry: &GroupEntry,
    buf: &mut B,
    base: usize,
) -> Option<GroupLayout> {
    let mut packer = Packer { buf, used: 0 };
    let name = packer.string(&entry.name)?;
    let passwd = packer.string("x")?;
    let mut members = Vec::with_capacity(entry.members.len());
    for member in &entry.members {
        members.push(packer.string(member)?);
    }
    let members = packer.pointers(base, &members)?;
    Some(GroupLayout { name, passwd, gid: entry.gid, members })
}

// ----- initgroups_dyn -----

/// The caller's growable gid array of `initgroups_dyn` (`*start`, `*size`, `*groupsp`).
pub trait GroupArray {
    /// Entries in use (`*start`).
    fn used(&self) -> usize;
    /// Entries allocated (`*size`).
    fn capacity(&self) -> usize;
    fn get(&self, index: usize) -> u32;
    /// Reallocates to `capacity` entries; false when out of memory.
    fn grow(&mut self, capacity: usize) -> bool;
    /// Appends; only called when `used() < capacity()`.
    fn push(&mut self, gid: u32);
}

/// glibc's `initgroups_dyn` contract: appends each of `gids` that is not `skip` (the
/// primary group) nor already present, doubling the array when full but never past `limit`
/// when `limit > 0` (then the remaining groups are dropped, as glibc does).
pub fn add_groups(
    array: &mut impl GroupArray,
    gids: &[u32],
    skip: u32,
    limit: std::ffi::c_long,
) -> Reply<()> {
    for gid in gids {
        if *gid == skip || (0..array.used()).any(|i| array.get(i) == *gid) {
            continue;
        }
        if array.used() >= array.capacity() {
            let capacity = array.capacity();
            let limit = usize::try_from(limit).unwrap_or(0);
            if limit > 0 && capacity >= limit {
                break;
            }
            let mut wanted = capacity.saturating_mul(2).max(capacity.saturating_add(1));
            if limit > 0 {
                wanted = wanted.min(limit);
            }
            if !array.grow(wanted) {
                return Reply::TryAgain(libc::ENOMEM);
            }
        }
        array.push(*gid);
    }
    Reply::Found(())
}

#[cfg(test)]
mod tests;
