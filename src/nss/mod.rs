//! The NSS provider's logic: what `libnss_dircache.so.2` answers for `getpwnam`, `getgrgid`,
//! `initgroups` and the enumerations. `nss_module` only converts between C and this.
//!
//! Per process (one [`Nss`] behind a mutex in the `.so`), nothing is parsed whole:
//! - the current generation's `users.public`, mapped (mmap in the `.so`, see [`Mapper`]; the
//!   call that opens it reads through the open file, closed by [`Nss::end_of_call`]) and
//!   followed by `cache::reader::CurrentTables`: each call `stat()`s
//!   `<dir>/current/users.public` and reopens the generation when it changed, so a cache
//!   replaced by a sync is used by the next lookup; its `groups.public` is mapped by the
//!   first call that needs groups (most processes only ever ask for users);
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
//! What may be shown at all is `visibility`'s business; how an answer is laid out in the
//! caller's buffer is `abi`'s.

use std::borrow::Cow;
use std::ffi::CStr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::cache::reader::{CurrentTables, Problem, Stamp, Table, Tables};
pub use crate::cache::reader::{Mapped, Mapper, ReadMapper};
use crate::cache::{CacheError, PublicUser};
use crate::config::DEFAULT_CACHE_DIR;
use crate::ids::is_reserved;
use crate::local_accounts::LocalAccounts;
use crate::names::fold_name;
use crate::user::{Group, LocalGrant};

mod abi;
mod visibility;

pub use abi::*;
use visibility::{grantable_name, printable, query_name, Vetted};

/// Environment variables the module reads with `secure_getenv` (ignored in setuid programs).
/// The one spelling of each: the NSS module, the PAM module (which must agree with NSS on the
/// cache) and `dircache-sync check` use these.
pub const ENV_CACHE_DIR: &CStr = c"DIRCACHE_CACHE_DIR";
pub const ENV_LOCAL_PASSWD: &CStr = c"DIRCACHE_LOCAL_PASSWD";
pub const ENV_LOCAL_GROUP: &CStr = c"DIRCACHE_LOCAL_GROUP";
/// In the order [`Settings::from_vars`] takes their values.
pub const ENV_VARS: [&CStr; 3] = [ENV_CACHE_DIR, ENV_LOCAL_PASSWD, ENV_LOCAL_GROUP];
/// What the names of [`ENV_VARS`] begin with: entries of the environment without it are
/// passed over at their first bytes.
pub const ENV_PREFIX: &[u8] = b"DIRCACHE_";

/// The values of [`ENV_VARS`] among the environment's `NAME=value` entries, as `getenv`
/// finds them (a name's first entry), in one pass over the environment rather than one per
/// name: the module reads them on every call, to follow a change.
pub fn env_values<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> [Option<&'a [u8]>; 3] {
    let mut values = [None; 3];
    for entry in entries.into_iter().filter(|entry| entry.starts_with(ENV_PREFIX)) {
        for (value, name) in values.iter_mut().zip(ENV_VARS) {
            let found =
                entry.strip_prefix(name.to_bytes()).and_then(|rest| rest.strip_prefix(b"="));
            if value.is_none() && found.is_some() {
                *value = found;
            }
        }
    }
    values
}
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

/// Where the cache and the local account files are. The defaults are borrowed: a process
/// whose environment sets none of them allocates nothing for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub cache_dir: Cow<'static, Path>,
    pub local_passwd: Cow<'static, Path>,
    pub local_group: Cow<'static, Path>,
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
        let pick = |value: Option<&[u8]>, default: &'static str| match value {
            Some(bytes) if !bytes.is_empty() => Cow::Owned(PathBuf::from(OsStr::from_bytes(bytes))),
            _ => Cow::Borrowed(Path::new(default)),
        };
        Settings {
            cache_dir: pick(vars[0], DEFAULT_CACHE_DIR),
            local_passwd: pick(vars[1], DEFAULT_LOCAL_PASSWD),
            local_group: pick(vars[2], DEFAULT_LOCAL_GROUP),
        }
    }
}

struct LocalState {
    stamps: [Option<Stamp>; 2],
    /// `LocalAccounts::seal_of(stamps)`: a generation sealed with it needs no check against
    /// the local files.
    seal: u64,
    checked_at: Instant,
    /// Read by the first question a seal does not answer (group lookups, an unsealed
    /// generation); `None` before. Every check made without them fails closed (see
    /// [`Nss::local_wins`]).
    accounts: Option<LocalAccounts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    UserName(String),
    Uid(u32),
    GroupName(String),
    Gid(u32),
    Supplementary(String),
    /// A local group of /etc/group, by its exact name, answered from the grants.
    GrantedName(String),
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

/// The LRU of recent answers, bounded to [`LRU_ENTRIES`]. Made by a process's second answer,
/// not its first: most processes ask once (`ls`, `id`, a cron job), and a hash table with
/// its random seed is work only later lookups gain from (issue 12 §2). It grows as answers
/// come: `LruCache::new` would allocate and clear room for all of them at once.
struct Answers {
    lru: Option<LruCache<Query, Cached>>,
    answered_once: bool,
    enabled: bool,
}

impl Answers {
    fn new() -> Answers {
        Answers { lru: None, answered_once: false, enabled: true }
    }

    /// Whether an answer given now would be kept (and so needs its key).
    fn keeps_answers(&self) -> bool {
        self.enabled && (self.lru.is_some() || self.answered_once)
    }

    fn get(&mut self, key: &Query) -> Option<&Cached> {
        if !self.enabled {
            return None;
        }
        self.lru.as_mut()?.get(key)
    }

    fn put(&mut self, key: Query, answer: Cached) {
        if !self.enabled {
            return;
        }
        if let Some(lru) = &mut self.lru {
            lru.put(key, answer);
        } else if self.answered_once {
            let mut lru = LruCache::unbounded();
            lru.resize(NonZeroUsize::MIN.saturating_add(LRU_ENTRIES - 1));
            lru.put(key, answer);
            self.lru = Some(lru);
        } else {
            self.answered_once = true;
        }
    }

    fn clear(&mut self) {
        if let Some(lru) = &mut self.lru {
            lru.clear();
        }
    }
}

/// A table that cannot be read is a lasting problem of the cache.
fn broken<T>(read: Result<T, CacheError>) -> Result<T, Problem> {
    read.map_err(Problem::broken)
}

fn found_or_not<T>(value: Option<T>) -> Reply<T> {
    match value {
        Some(value) => Reply::Found(value),
        None => Reply::NotFound,
    }
}

/// The per-process state of the NSS module.
pub struct Nss<M: Mapper> {
    log: Box<dyn Fn(&str) + Send>,
    raw_settings: [Option<Vec<u8>>; 3],
    settings: Settings,
    current: CurrentTables<M>,
    /// The stamp of the generation the LRU's answers come from.
    answered: Option<Stamp>,
    local: Option<LocalState>,
    local_recheck: Duration,
    lru: Answers,
    /// Each distinct problem logged, at most [`MAX_LOGGED`]: a list, searched (no hash
    /// table to seed on a process's first call).
    logged: Vec<String>,
    passwd_walk: Option<Walk<M::Map>>,
    /// `setspent`/`getspent_r`: the same users as the passwd walk, walked on its own (a
    /// program may interleave both).
    shadow_walk: Option<Walk<M::Map>>,
    group_walk: Option<Walk<M::Map>>,
}

/// Which of the two user enumerations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserWalk {
    Passwd,
    Shadow,
}

impl<M: Mapper> Nss<M> {
    /// `log` receives each distinct problem once (the `.so` sends it to syslog).
    pub fn new(mapper: M, settings: Settings, log: Box<dyn Fn(&str) + Send>) -> Nss<M> {
        Nss {
            log,
            raw_settings: [None, None, None],
            current: CurrentTables::new(mapper, &settings.cache_dir),
            answered: None,
            settings,
            local: None,
            local_recheck: LOCAL_RECHECK,
            lru: Answers::new(),
            logged: Vec::new(),
            passwd_walk: None,
            shadow_walk: None,
            group_walk: None,
        }
    }

    /// [`Nss::new`] with the settings of the raw environment values (see
    /// [`Nss::configure`]), built once: what the module does on a process's first lookup.
    pub fn from_vars(mapper: M, vars: [Option<&[u8]>; 3], log: Box<dyn Fn(&str) + Send>) -> Nss<M> {
        let mut nss = Nss::new(mapper, Settings::from_vars(vars), log);
        nss.raw_settings = vars.map(|v| v.map(<[u8]>::to_vec));
        nss
    }

    /// How often the local account files are checked for a change ([`LOCAL_RECHECK`]).
    pub fn set_local_recheck(&mut self, interval: Duration) {
        self.local_recheck = interval;
    }

    /// Turns the LRU of answers off (every lookup reads the tables) or on; for benchmarks
    /// of the table path.
    pub fn set_lru_enabled(&mut self, enabled: bool) {
        self.lru.enabled = enabled;
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
            self.current.switch_to(&settings.cache_dir);
            self.settings = settings;
            self.answered = None;
            self.local = None;
            self.lru.clear();
            self.logged.clear();
            self.passwd_walk = None;
            self.shadow_walk = None;
            self.group_walk = None;
        }
    }

    /// To be called when each call into the module ends: tables opened during the call let
    /// go of their open files (see [`crate::cache::reader::TableBytes`]). The first lookup
    /// of a process reads its few pieces of the table through the file it opened, which
    /// costs less than faulting in pages of a fresh mapping (issue 12 §2); later calls
    /// read the mapping.
    pub fn end_of_call(&self) {
        let walks = [&self.passwd_walk, &self.shadow_walk, &self.group_walk];
        let walked = walks.into_iter().flatten().map(|walk| &walk.tables);
        for tables in self.current.opened().into_iter().chain(walked) {
            tables.end_of_call();
        }
    }

    // ----- lookups -----

    pub fn passwd_by_name(&mut self, name: &[u8]) -> Reply<Arc<PublicUser>> {
        let Some(asked) = query_name(name) else {
            return Reply::NotFound;
        };
        let name = asked.as_str();
        self.cached_user(
            || Query::UserName(fold_name(name)),
            |tables| tables.users.by_name(name),
            Some(asked),
        )
    }

    pub fn passwd_by_uid(&mut self, uid: u32) -> Reply<Arc<PublicUser>> {
        if is_reserved(uid) {
            return Reply::NotFound;
        }
        self.cached_user(|| Query::Uid(uid), |tables| tables.users.by_id(uid), None)
    }

    pub fn group_by_name(&mut self, name: &[u8]) -> Reply<Arc<GroupEntry>> {
        let granted = grantable_name(name);
        let directory = query_name(name);
        if granted.is_none() && directory.is_none() {
            return Reply::NotFound;
        }
        if let Err(problem) = self.read_local() {
            return self.unavailable(problem);
        }
        // A local name is never a directory group: only a grant can answer for it.
        let local = granted.filter(|name| self.is_local_group(name));
        if local.is_none() && directory.is_none() {
            return Reply::NotFound;
        }
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        if let Some(local) = local {
            return self.granted_group_by_name(&tables, local);
        }
        let Some(name) = directory.map(Vetted::as_str) else {
            return Reply::NotFound;
        };
        let key = Query::GroupName(fold_name(name));
        if let Some(Cached::Group(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = match self.groups_of(&tables).and_then(|g| broken(g.by_name(name))) {
            Ok(Some(group)) => Ok(self.accept_group(&tables, &group)),
            Ok(None) => match broken(tables.users.by_name(name)) {
                Ok(Some(user)) => self.private_group(&tables, &user),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group)
    }

    pub fn group_by_gid(&mut self, gid: u32) -> Reply<Arc<GroupEntry>> {
        // gid 0 is never granted; other reserved gids (sudo's 27) only as a local grant.
        if gid == 0 {
            return Reply::NotFound;
        }
        if let Err(problem) = self.read_local() {
            return self.unavailable(problem);
        }
        // A local gid is never a directory group's: only a grant can answer for it.
        let local = self.accounts().is_none_or(|a| a.has_group_gid(gid));
        if !local && is_reserved(gid) {
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
        if local {
            let answer = self.grants_of(&tables).and_then(|grants| match grants {
                Some(grants) => broken(grants.by_id(gid)),
                None => Ok(None),
            });
            let answer = answer.map(|grant| grant.and_then(|g| self.accept_grant(&g)));
            return self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group);
        }
        let answer = match self.groups_of(&tables).and_then(|g| broken(g.by_id(gid))) {
            Ok(Some(group)) => Ok(self.accept_group(&tables, &group)),
            // A private group has the gid (and so the uid) of its user.
            Ok(None) => match broken(tables.users.by_id(gid)) {
                Ok(Some(user)) if user.gid == gid => self.private_group(&tables, &user),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group)
    }

    /// The user's directory groups and granted local groups (for `initgroups_dyn`), from the
    /// user record alone: no walk over every group. Only gids `getgrgid` would answer (for a
    /// local group: a grant that lists the user) are included.
    pub fn supplementary_gids(&mut self, user: &[u8]) -> Reply<Arc<[u32]>> {
        let Some(asked) = query_name(user) else {
            return Reply::NotFound;
        };
        let name = asked.as_str();
        let tables = match self.read_local().and_then(|()| self.prepare()) {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        let key = Query::Supplementary(fold_name(name));
        if let Some(Cached::Gids(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = match broken(tables.users.by_name(name)) {
            Ok(Some(user)) if self.user_visible(&tables, &user, Some(asked)) => {
                self.visible_gids(&tables, &user).map(|gids| Some(gids.into()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        self.remember(key, answer, Cached::Gids)
    }

    /// `getspnam_r`: the shadow entry of the user `getpwnam` answers (same visibility: local
    /// accounts win, reserved ids and refused names are not served), from the same record.
    pub fn shadow_by_name(&mut self, name: &[u8]) -> Reply<Arc<PublicUser>> {
        self.passwd_by_name(name)
    }

    // ----- enumeration -----

    /// `setpwent`: starts (or restarts) the user enumeration on the current generation.
    pub fn start_passwd_walk(&mut self) -> Reply<()> {
        self.start_user_walk(UserWalk::Passwd)
    }

    pub fn end_passwd_walk(&mut self) {
        self.passwd_walk = None;
    }

    /// `getpwent_r`: the next user, handed to `pack`. When `pack` finds the buffer too small
    /// the enumeration stays on that user (TRYAGAIN/ERANGE: glibc retries it bigger).
    pub fn next_passwd<T>(&mut self, pack: impl FnOnce(&PublicUser) -> Option<T>) -> Reply<T> {
        self.next_user(UserWalk::Passwd, pack)
    }

    /// `setspent`: as [`Nss::start_passwd_walk`], for shadow entries.
    pub fn start_shadow_walk(&mut self) -> Reply<()> {
        self.start_user_walk(UserWalk::Shadow)
    }

    pub fn end_shadow_walk(&mut self) {
        self.shadow_walk = None;
    }

    /// `getspent_r`: as [`Nss::next_passwd`], the users the shadow entries are made of.
    pub fn next_shadow<T>(&mut self, pack: impl FnOnce(&PublicUser) -> Option<T>) -> Reply<T> {
        self.next_user(UserWalk::Shadow, pack)
    }

    fn user_walk(&mut self, which: UserWalk) -> &mut Option<Walk<M::Map>> {
        match which {
            UserWalk::Passwd => &mut self.passwd_walk,
            UserWalk::Shadow => &mut self.shadow_walk,
        }
    }

    fn start_user_walk(&mut self, which: UserWalk) -> Reply<()> {
        *self.user_walk(which) = None;
        match self.prepare() {
            Ok(tables) => {
                let cursor = tables.users.first_cursor();
                *self.user_walk(which) = Some(Walk { tables, phase: Phase::Users, cursor });
                Reply::Found(())
            }
            Err(problem) => self.unavailable(problem),
        }
    }

    fn next_user<T>(
        &mut self,
        which: UserWalk,
        pack: impl FnOnce(&PublicUser) -> Option<T>,
    ) -> Reply<T> {
        if self.user_walk(which).is_none() {
            if let Reply::Unavailable(errno) = self.start_user_walk(which) {
                return Reply::Unavailable(errno);
            }
        }
        let Some(mut walk) = self.user_walk(which).take() else {
            return Reply::NotFound;
        };
        if let Err(problem) = self.refresh_local(&walk.tables) {
            *self.user_walk(which) = Some(walk);
            return self.unavailable(problem);
        }
        let reply = loop {
            match walk.tables.users.next(walk.cursor) {
                Ok(Some((user, next))) => {
                    if let Some(entry) = self.accept_user(&walk.tables, user, None) {
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
        *self.user_walk(which) = Some(walk);
        reply
    }

    /// `setgrent`: starts (or restarts) the group enumeration on the current generation.
    pub fn start_group_walk(&mut self) -> Reply<()> {
        self.group_walk = None;
        let prepared = self.prepare();
        match prepared.and_then(|tables| Ok((self.groups_of(&tables)?.first_cursor(), tables))) {
            Ok((cursor, tables)) => {
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
        if let Err(problem) = self.read_local() {
            return self.unavailable(problem);
        }
        let Some(mut walk) = self.group_walk.take() else {
            return Reply::NotFound;
        };
        let reply = loop {
            let step = match walk.phase {
                Phase::DirectoryGroups => match self
                    .groups_of(&walk.tables)
                    .and_then(|groups| broken(groups.next(walk.cursor)))
                {
                    Ok(Some((group, next))) => {
                        Ok(Some((self.accept_group(&walk.tables, &group), next)))
                    }
                    Ok(None) => {
                        walk.phase = Phase::PrivateGroups;
                        walk.cursor = walk.tables.users.first_cursor();
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Phase::PrivateGroups => match broken(walk.tables.users.next(walk.cursor)) {
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
                Err(problem) => break self.unavailable(problem),
            }
        };
        self.group_walk = Some(walk);
        reply
    }

    fn cached_user(
        &mut self,
        key: impl FnOnce() -> Query,
        find: impl FnOnce(&Tables<M::Map>) -> Result<Option<PublicUser>, CacheError>,
        asked: Option<Vetted>,
    ) -> Reply<Arc<PublicUser>> {
        let tables = match self.prepare() {
            Ok(tables) => tables,
            Err(problem) => return self.unavailable(problem),
        };
        // A process's first answer is not kept ([`Answers::put`]): its key (a folded copy
        // of the name) is not made.
        let key = self.lru.keeps_answers().then(key);
        if let Some(Cached::User(hit)) = key.as_ref().and_then(|key| self.recall(key)) {
            return found_or_not(hit.clone());
        }
        let answer = broken(find(&tables))
            .map(|user| user.and_then(|u| self.accept_user(&tables, u, asked)));
        let answer = answer.map(|user| user.map(Arc::new));
        match (key, answer) {
            (Some(key), answer) => self.remember(key, answer, Cached::User),
            (None, Ok(user)) => {
                self.lru.answered_once = true;
                found_or_not(user)
            }
            (None, Err(problem)) => self.unavailable(problem),
        }
    }

    fn recall(&mut self, key: &Query) -> Option<&Cached> {
        self.lru.get(key)
    }

    fn remember<T: Clone>(
        &mut self,
        key: Query,
        answer: Result<Option<T>, Problem>,
        wrap: impl FnOnce(Option<T>) -> Cached,
    ) -> Reply<T> {
        match answer {
            Ok(value) => {
                self.lru.put(key, wrap(value.clone()));
                found_or_not(value)
            }
            Err(problem) => self.unavailable(problem),
        }
    }

    /// `getgrnam` of a local group: the grant for it, if any (its name and gid as in
    /// /etc/group, the granted members only), for glibc to merge with the `files` entry.
    fn granted_group_by_name(
        &mut self,
        tables: &Tables<M::Map>,
        name: &str,
    ) -> Reply<Arc<GroupEntry>> {
        let key = Query::GrantedName(name.to_string());
        if let Some(Cached::Group(hit)) = self.recall(&key) {
            return found_or_not(hit.clone());
        }
        let answer = self.grants_of(tables).and_then(|grants| match grants {
            Some(grants) => broken(grants.by_name(name)),
            None => Ok(None),
        });
        let answer = answer
            .map(|grant| grant.filter(|g| g.name == name).and_then(|g| self.accept_grant(&g)));
        self.remember(key, answer.map(|group| group.map(Arc::new)), Cached::Group)
    }

    /// The grants table of `tables`' generation (`None`: it has none), opened by the first
    /// call that needs it.
    fn grants_of<'t>(
        &self,
        tables: &'t Tables<M::Map>,
    ) -> Result<Option<&'t Table<LocalGrant, M::Map>>, Problem> {
        tables.grants(self.current.mapper())
    }

    /// Whether /etc/group has a group named exactly `name`.
    fn is_local_group(&self, name: &str) -> bool {
        self.accounts().is_none_or(|a| a.group_gid(name).is_some())
    }

    /// The groups table of `tables`' generation, opened by the first call that needs it.
    fn groups_of<'t>(
        &self,
        tables: &'t Tables<M::Map>,
    ) -> Result<&'t Table<Group, M::Map>, Problem> {
        tables.groups(self.current.mapper())
    }

    /// Brings the tables and the local accounts up to date; returns the current tables.
    fn prepare(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        let tables = self.refresh_tables()?;
        self.refresh_local(&tables)?;
        Ok(tables)
    }

    /// The current tables; answers remembered from another generation are forgotten.
    fn refresh_tables(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        let refreshed = self.current.refresh();
        let stamp = refreshed.as_ref().ok().map(|tables| tables.stamp);
        if stamp != self.answered {
            self.lru.clear();
            if stamp.is_some() {
                self.logged.clear();
            }
            self.answered = stamp;
        }
        refreshed
    }

    /// Notices a change of the local files (a `stat()` of each, at most every
    /// [`LOCAL_RECHECK`]) and reads them when `tables` are not sealed for them: a sealed
    /// generation's lookups never read them (issue 12 §2).
    fn refresh_local(&mut self, tables: &Tables<M::Map>) -> Result<(), Problem> {
        if self.local.is_none() && tables.local_seal() == 0 {
            // Nothing a stat could spare: read them at once, stamps from the open files.
            return self.load_local();
        }
        self.check_local()?;
        if self.sealed(tables) {
            return Ok(());
        }
        self.read_local()
    }

    /// Whether `tables` were checked against the local files as they are now.
    pub(super) fn sealed(&self, tables: &Tables<M::Map>) -> bool {
        self.local.as_ref().is_some_and(|l| l.seal != 0 && l.seal == tables.local_seal())
    }

    /// The local accounts, if read.
    fn accounts(&self) -> Option<&LocalAccounts> {
        self.local.as_ref()?.accounts.as_ref()
    }

    /// Notices a change, then reads the local files if they are not read yet.
    fn read_local(&mut self) -> Result<(), Problem> {
        self.check_local()?;
        if self.accounts().is_some() {
            return Ok(());
        }
        self.load_local()
    }

    /// `stat()`s the local files unless checked within [`LOCAL_RECHECK`]; a change forgets
    /// what was read and answered.
    fn check_local(&mut self) -> Result<(), Problem> {
        if let Some(local) = &self.local {
            if local.checked_at.elapsed() < self.local_recheck {
                return Ok(());
            }
        }
        let checked_at = Instant::now();
        let paths = [&*self.settings.local_passwd, &*self.settings.local_group];
        let mut stamps = [None, None];
        for (stamp, path) in stamps.iter_mut().zip(paths) {
            *stamp = Stamp::probe(path).map_err(|e| {
                Problem::broken(format!(
                    "cannot check the local accounts in {}: {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(local) = &mut self.local {
            if local.stamps == stamps {
                local.checked_at = checked_at;
                return Ok(());
            }
        }
        self.lru.clear();
        let seal = LocalAccounts::seal_of(&stamps);
        self.local = Some(LocalState { stamps, seal, checked_at, accounts: None });
        Ok(())
    }

    /// Reads the local files, their stamps taken from the open files (no `stat()` before).
    fn load_local(&mut self) -> Result<(), Problem> {
        let checked_at = Instant::now();
        let (accounts, metadata) = LocalAccounts::load_with_metadata(
            &self.settings.local_passwd,
            &self.settings.local_group,
        )
        .map_err(|e| Problem::broken(format!("cannot read the local accounts: {e}")))?;
        let stamps = metadata.map(|meta| meta.as_ref().map(Stamp::of));
        if self.local.as_ref().is_none_or(|local| local.stamps != stamps) {
            self.lru.clear();
        }
        let seal = accounts.files_seal();
        self.local = Some(LocalState { stamps, seal, checked_at, accounts: Some(accounts) });
        Ok(())
    }

    fn corrupt<T>(&mut self, error: CacheError) -> Reply<T> {
        self.unavailable(Problem::broken(error))
    }

    fn unavailable<T>(&mut self, problem: Problem) -> Reply<T> {
        self.log_once(problem.message);
        Reply::Unavailable(problem.errno)
    }

    fn log_once(&mut self, message: String) {
        if self.logged.len() < MAX_LOGGED && !self.logged.contains(&message) {
            (self.log)(&printable(&message));
            self.logged.push(message);
        }
    }
}

#[cfg(test)]
mod tests;
