//! Reading and atomically replacing the cache directory.

use std::borrow::Borrow;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::cached::CachedUser;
use super::format::{
    ByteSource, FormatError, RecordIn, TableReader, FORMAT_VERSION, OLDEST_READABLE_VERSION,
};
use super::records::{CacheRecord, PublicUser, ID_INDEX, INDEX_COUNT, NAME_INDEX};
use crate::local_accounts::LocalAccounts;
use crate::names::{fold_name, name_key, same_name};
use crate::user::{Group, HeldUser, LocalGrant, User};

const CURRENT_LINK: &str = "current";
const LOCK_FILE: &str = "lock";
const SYNC_LOCK_FILE: &str = "sync.lock";
const META_FILE: &str = "meta.json";
const GENERATION_PREFIX: &str = "gen-";
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("no user cache in {dir} yet: run `dircache-sync sync` or `dircache-sync user add` to create it")]
    NotInitialized { dir: PathBuf },
    #[error("{path} is corrupt: {source}; the previous generation is kept beside it, and `dircache-sync sync` rebuilds the cache")]
    Corrupt { path: PathBuf, source: FormatError },
    #[error("{path}: record {what} is not valid: {reason}")]
    BadRecord { path: PathBuf, what: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("timed out after {secs} s waiting for the cache lock {path}: another dircache-sync is running")]
    LockTimeout { path: PathBuf, secs: u64 },
    #[error("{path} has mode {mode:04o}; {why}. Fix it with `chmod {fix:04o} {path}`")]
    Insecure { path: PathBuf, mode: u32, why: &'static str, fix: u32 },
    #[error("{path} is owned by uid {owner}; cache files must belong to root (or to the user reading them), or another user could have forged them. Check who can write to the cache directory, then `chown root: {path}`")]
    WrongOwner { path: PathBuf, owner: u32 },
    #[error("the cache files in {dir} belong to different generations; retry, or run `dircache-sync sync`")]
    MixedGenerations { dir: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_path_buf(), source }
}

/// Facts about the cache as a whole, kept beside the tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub format_version: u32,
    pub generation: u64,
    /// Seconds since the epoch when this generation was written.
    pub written_at: u64,
    /// Ids of deleted users and groups: never handed out again, so files they owned never
    /// change hands.
    #[serde(default)]
    pub retired_ids: BTreeSet<u32>,
    /// Home directories of deleted users: never given to a new user, who could otherwise
    /// inherit the files left there (still owned by the retired uid). Left out when empty,
    /// so that caches without deletions stay readable by earlier versions.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub retired_homes: BTreeSet<String>,
}

/// The whole cache in memory, as writers work on it. A sync holds its users as
/// [`CachedUser`]s (`Db<CachedUser>`, [`CacheDir::load_cached`]); everything else as `User`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Db<U = User> {
    pub meta: Meta,
    pub users: Vec<U>,
    pub groups: Vec<Group>,
    /// The local groups granted by `[unix.local_groups]`, as the last sync computed them
    /// (`grants::compute`); every commit keeps only members still eligible.
    pub grants: Vec<LocalGrant>,
    /// What the next commit writes as the generation's local seal: set by whoever checked
    /// every name and id against the local files ([`Db::local_seal`]); 0 (none) otherwise,
    /// and after every load, so that a change made without that check is never sealed.
    pub local_seal: u64,
}

impl<U> Default for Db<U> {
    fn default() -> Self {
        Db {
            meta: Meta::default(),
            users: Vec::new(),
            groups: Vec::new(),
            grants: Vec::new(),
            local_seal: 0,
        }
    }
}

impl Db {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| same_name(&u.name, name))
    }

    pub fn user_mut(&mut self, name: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| same_name(&u.name, name))
    }

    /// Every home directory a new user must not get: those of current and deleted users,
    /// as the kernel resolves them (`crate::paths::resolved`: one written `/home/alice/`
    /// by an older template is `/home/alice`).
    pub fn homes_taken(&self) -> HashSet<Cow<'_, str>> {
        let current = self.users.iter().map(|u| u.home.as_str());
        let all = current.chain(self.meta.retired_homes.iter().map(String::as_str));
        all.map(crate::paths::resolved).collect()
    }

    /// Every uid and gid the cache uses or has used.
    pub fn ids_in_use(&self) -> BTreeSet<u32> {
        self.ids_in_use_unsorted().collect()
    }
}

impl<U: HeldUser> Db<U> {
    /// Removes nothing, but records that `user` is gone for good: its ids and its home are
    /// never handed out again. Every deletion (sync, `user delete`) goes through here.
    pub fn retire(&mut self, user: &impl HeldUser) {
        let user = user.facts();
        self.meta.retired_ids.extend([user.uid, user.gid]);
        self.meta.retired_homes.insert(user.home.to_string());
    }

    /// [`Db::ids_in_use`] as they come, possibly repeated: for the id allocator, which
    /// sorts them itself (a set of a million ids would be held beside its own copy).
    pub fn ids_in_use_unsorted(&self) -> impl Iterator<Item = u32> + '_ {
        // A user's gid is most often its uid: given once then.
        let users = self
            .users
            .iter()
            .map(HeldUser::facts)
            .flat_map(|u| std::iter::once(u.uid).chain((u.gid != u.uid).then_some(u.gid)));
        let groups = self.groups.iter().map(|g| g.gid);
        users.chain(groups).chain(self.meta.retired_ids.iter().copied())
    }

    /// The local seal for this content ([`LocalAccounts::seal_of`] the files `local` was read
    /// from), or 0 when any name or id the NSS module checks against the local files would
    /// collide with them: users (name, uid, gid), groups (name, gid) and their members, and
    /// the members of local grants. What the module would hide stays hidden: a generation
    /// holding such a record is not sealed, and the module checks every record as before.
    /// Also 0 when the files changed too shortly before `now` (taken before they were read;
    /// [`LocalAccounts::settled_before`]): the next writer seals.
    pub fn seal_against(&self, local: &LocalAccounts, now: u64) -> u64 {
        if !local.settled_before(now) {
            return 0;
        }
        let members = |members: &[String]| members.iter().any(|m| local.win_over(m, &[]));
        let collides = (self.users.iter().map(HeldUser::facts))
            .any(|u| local.win_over(u.name, &[u.uid, u.gid]))
            || self.groups.iter().any(|g| local.win_over(&g.name, &[g.gid]) || members(&g.members))
            || self.grants.iter().any(|g| members(&g.members));
        if collides {
            0
        } else {
            local.files_seal()
        }
    }

    fn gids_by_group_name(&self) -> HashMap<String, u32> {
        self.groups.iter().map(|g| (fold_name(&g.name), g.gid)).collect()
    }
}

fn supplementary_gids(user: &User, gids: &HashMap<String, u32>) -> Vec<u32> {
    user.groups.iter().filter_map(|name| gids.get(&fold_name(name)).copied()).collect()
}

/// The gids of the local groups granted to each user (by folded name): they go into the
/// user's `gids` with the directory groups', so `initgroups` finds them without reading
/// `grants.public` for users who have none. The NSS module checks each against the grant.
fn granted_gids(grants: &[LocalGrant]) -> HashMap<String, Vec<u32>> {
    let mut granted: HashMap<String, Vec<u32>> = HashMap::new();
    for grant in grants {
        for member in &grant.members {
            granted.entry(fold_name(member)).or_default().push(grant.gid);
        }
    }
    granted
}

/// The cache of the NSS fixtures: alice and bob in `dc-staff`, bob also in `dc-developers`,
/// and a disabled dora, who stays visible. (`dc-` keeps the names clear of a host's own
/// groups where glibc is asked for real.)
#[doc(hidden)]
pub fn sample_db() -> Db {
    use crate::user::{sample_group as group, sample_member as user};
    let mut dora = user("dora@example.com", 200_004, &[]);
    dora.enabled = false;
    Db {
        users: vec![
            user("alice@example.com", 200_001, &["dc-staff"]),
            user("bob@example.com", 200_002, &["dc-staff", "dc-developers"]),
            dora,
        ],
        groups: vec![
            group("dc-staff", 300_001, &["alice@example.com", "bob@example.com"]),
            group("dc-developers", 300_002, &["bob@example.com"]),
        ],
        ..Db::default()
    }
}

/// Holds the writers' lock until dropped.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// Typed lookups in one table of the current generation.
pub struct Lookup<T, S = File> {
    path: PathBuf,
    table: TableReader<S>,
    _record: PhantomData<T>,
}

impl<T: CacheRecord, S: ByteSource> Lookup<T, S> {
    pub fn from_source(path: PathBuf, source: S) -> Result<Self, CacheError> {
        let table = TableReader::open(source, T::KIND)
            .map_err(|source| CacheError::Corrupt { path: path.clone(), source })?;
        Ok(Lookup { path, table, _record: PhantomData })
    }

    pub fn generation(&self) -> u64 {
        self.table.generation()
    }

    /// Where the table's bytes come from.
    pub fn source(&self) -> &S {
        self.table.source()
    }

    /// The local seal the generation was written with (0: none; see
    /// `LocalAccounts::seal_of`).
    pub fn local_seal(&self) -> u64 {
        self.table.header().local_seal
    }

    pub fn len(&self) -> u64 {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The record whose name matches `name` case-insensitively.
    pub fn by_name(&self, name: &str) -> Result<Option<T>, CacheError> {
        self.first_matching(NAME_INDEX, name_key(name), T::from_record_json, |record| {
            same_name(record.name(), name)
        })
    }

    pub fn by_id(&self, id: u32) -> Result<Option<T>, CacheError> {
        self.first_matching(ID_INDEX, u64::from(id), T::from_record_json, |record| {
            record.id() == id
        })
    }

    /// Where enumeration starts.
    pub fn first_cursor(&self) -> u64 {
        self.table.first_cursor()
    }

    /// The record at `cursor` and the cursor after it (records are in id order).
    pub fn next(&self, cursor: u64) -> Result<Option<(T, u64)>, CacheError> {
        match self.table.record_after(cursor).map_err(|e| self.corrupt(e))? {
            Some((json, next)) => Ok(Some((self.decode(&json)?, next))),
            None => Ok(None),
        }
    }

    /// Every record, after checking the whole file.
    pub fn read_all(&self) -> Result<Vec<T>, CacheError> {
        self.read_all_as(Ok)
    }

    /// Every record, after checking the whole file, each kept as `keep` makes it: a form
    /// smaller than `T` is never held beside every record as a `T`.
    pub fn read_all_as<U>(
        &self,
        mut keep: impl FnMut(T) -> Result<U, CacheError>,
    ) -> Result<Vec<U>, CacheError> {
        self.table.verify_body().map_err(|e| self.corrupt(e))?;
        // Decoded one at a time: the raw JSON of every record is never held at once.
        let mut records = Vec::with_capacity(usize::try_from(self.table.len()).unwrap_or(0));
        let mut cursor = self.first_cursor();
        while let Some((record, next)) = self.next(cursor)? {
            records.push(keep(record)?);
            cursor = next;
        }
        if records.len() as u64 != self.table.len() {
            return Err(
                self.corrupt(FormatError::BadLayout("record count does not match the records"))
            );
        }
        Ok(records)
    }

    /// The record of id `id` read as `V`, a view of `T` with fewer fields (as
    /// [`super::records::GroupHead`] of a group), whose id `id_of` tells.
    pub fn by_id_as<V: DeserializeOwned>(
        &self,
        id: u32,
        id_of: impl Fn(&V) -> u32,
    ) -> Result<Option<V>, CacheError> {
        self.first_matching(
            ID_INDEX,
            u64::from(id),
            |json| serde_json::from_slice(json),
            |record| id_of(record) == id,
        )
    }

    /// The first record under `key` in `index` that `matches`: keys may collide, so each
    /// candidate is decoded and checked, and the search ends at the first that matches.
    fn first_matching<V>(
        &self,
        index: usize,
        key: u64,
        decode: impl Fn(&[u8]) -> serde_json::Result<V>,
        matches: impl Fn(&V) -> bool,
    ) -> Result<Option<V>, CacheError> {
        let corrupt = |e| self.corrupt(e);
        self.table.find(index, key, corrupt, |json| {
            let record = decode(&json).map_err(|e| self.bad_record(&json, &e))?;
            Ok(matches(&record).then_some(record))
        })
    }

    fn decode(&self, json: &[u8]) -> Result<T, CacheError> {
        T::from_record_json(json).map_err(|e| self.bad_record(json, &e))
    }

    fn bad_record(&self, json: &[u8], error: &serde_json::Error) -> CacheError {
        CacheError::BadRecord {
            path: self.path.clone(),
            what: String::from_utf8_lossy(json.get(..60).unwrap_or(json)).into_owned(),
            reason: error.to_string(),
        }
    }

    fn corrupt(&self, source: FormatError) -> CacheError {
        CacheError::Corrupt { path: self.path.clone(), source }
    }
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct CacheDir {
    root: PathBuf,
}

impl CacheDir {
    pub fn new(root: impl Into<PathBuf>) -> CacheDir {
        CacheDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the current generation, or None before the first write.
    pub fn current_dir(&self) -> Result<Option<PathBuf>, CacheError> {
        let link = self.root.join(CURRENT_LINK);
        match fs::read_link(&link) {
            Ok(target) => Ok(Some(self.root.join(target))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::Io { path: link, source: e }),
        }
    }

    /// Opens one table of the current generation for lookups.
    pub fn open<T: CacheRecord>(&self) -> Result<Lookup<T>, CacheError> {
        self.with_current(|dir| self.open_in::<T>(dir))
    }

    /// Loads everything, for a writer (checks every checksum). An uninitialized cache is an
    /// empty database.
    pub fn load(&self) -> Result<Db, CacheError> {
        self.load_users_as(Ok)
    }

    /// [`CacheDir::load`] with the users in their compact form: what a sync works with (see
    /// [`CachedUser`]).
    pub fn load_cached(&self) -> Result<Db<CachedUser>, CacheError> {
        let path = self.root.join(CURRENT_LINK).join(User::FILE_NAME);
        self.load_users_as(|user| {
            CachedUser::new(&user).map_err(|_| CacheError::BadRecord {
                path: path.clone(),
                what: user.name.chars().take(60).collect(),
                reason: "the user's text is 4 GiB or more".to_string(),
            })
        })
    }

    /// Loads everything, each user kept as `keep` makes it.
    fn load_users_as<U>(
        &self,
        keep: impl Fn(User) -> Result<U, CacheError>,
    ) -> Result<Db<U>, CacheError> {
        if self.current_dir()?.is_none() {
            return Ok(Db::default());
        }
        self.with_current(|dir| {
            let meta: Meta = read_meta(&dir.join(META_FILE))?;
            let users = self.open_in::<User>(dir)?;
            let groups = self.open_in::<Group>(dir)?;
            if users.generation() != meta.generation || groups.generation() != meta.generation {
                return Err(CacheError::MixedGenerations { dir: dir.to_path_buf() });
            }
            let grants = match self.open_optional_in::<LocalGrant>(dir)? {
                Some(grants) if grants.generation() != meta.generation => {
                    return Err(CacheError::MixedGenerations { dir: dir.to_path_buf() });
                }
                Some(grants) => grants.read_all()?,
                None => Vec::new(),
            };
            // Not sealed: whoever changes it seals it again (`Db::seal_against`).
            let (users, groups) = (users.read_all_as(&keep)?, groups.read_all()?);
            Ok(Db { meta, users, groups, grants, local_seal: 0 })
        })
    }

    /// Takes the writers' lock, waiting at most `timeout`. The lock is an flock(): it dies
    /// with its process, so a killed writer never leaves a stale lock behind.
    pub fn lock(&self, timeout: Duration) -> Result<CacheLock, CacheError> {
        self.lock_file(LOCK_FILE, timeout)
    }

    /// Serializes whole sync runs (fetch included), so two syncs never interleave while
    /// `user` commands only wait for the short write at the end of a sync.
    pub fn sync_lock(&self, timeout: Duration) -> Result<CacheLock, CacheError> {
        self.lock_file(SYNC_LOCK_FILE, timeout)
    }

    fn lock_file(&self, name: &str, timeout: Duration) -> Result<CacheLock, CacheError> {
        ensure_dir(&self.root, 0o755)?;
        let path = self.root.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CacheLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(CacheError::LockTimeout { path, secs: timeout.as_secs() });
                }
                Err(fs::TryLockError::Error(e)) => return Err(CacheError::Io { path, source: e }),
            }
        }
    }

    /// Publishes `db` as a new generation. The caller holds the lock (the parameter proves
    /// it). Files are written into a temporary directory, fsynced, read back and verified,
    /// and only then published by renaming the `current` symlink. A commit that fails
    /// removes what it wrote (a full disk stays usable for the status file and the next
    /// writer); what a killed writer left is removed by the next one.
    pub fn commit<U: HeldUser>(
        &self,
        _lock: &CacheLock,
        db: &Db<U>,
        now: u64,
    ) -> Result<u64, CacheError> {
        self.remove_leftovers()?;
        let previous = self.current_generation()?;
        let generation = previous.max(db.meta.generation) + 1;
        let name = generation_dir_name(generation);
        let tmp = self.root.join(format!("{name}{TMP_SUFFIX}"));
        let final_dir = self.root.join(&name);
        ensure_dir(&tmp, 0o755)?;
        let written = self.write_generation(&tmp, db, generation, now).and_then(|()| {
            fs::rename(&tmp, &final_dir).map_err(io_error(&final_dir))?;
            sync_dir(&self.root)?;
            self.swap_current(&name)
        });
        if let Err(e) = written {
            // Best effort: the error says what went wrong; nothing was published, so no
            // reader uses these files (unless the swap itself went through).
            if self.current_dir().ok().flatten().as_deref() != Some(final_dir.as_path()) {
                let _ = fs::remove_dir_all(&tmp);
                let _ = fs::remove_dir_all(&final_dir);
                let _ = remove_if_present(&self.root.join(format!("{CURRENT_LINK}{TMP_SUFFIX}")));
            }
            return Err(e);
        }
        self.remove_old_generations(generation)?;
        Ok(generation)
    }

    fn write_generation<U: HeldUser>(
        &self,
        tmp: &Path,
        db: &Db<U>,
        generation: u64,
        now: u64,
    ) -> Result<(), CacheError> {
        let meta = Meta {
            format_version: FORMAT_VERSION,
            generation,
            written_at: now,
            retired_ids: db.meta.retired_ids.clone(),
            retired_homes: db.meta.retired_homes.clone(),
        };
        let mut users: Vec<&U> = db.users.iter().collect();
        users.sort_by_key(|u| u.facts().uid);
        let gids = db.gids_by_group_name();
        let grants = crate::user::eligible_grants(&db.grants, &db.users);
        let granted = granted_gids(&grants);
        // Each user opened up as it is written (a `User` is only borrowed), once per table.
        let public = users.iter().map(|u| {
            let u = u.user();
            let mut gids = supplementary_gids(&u, &gids);
            gids.extend(granted.get(&fold_name(&u.name)).into_iter().flatten());
            PublicUser::from_user(&u, gids)
        });
        let mut groups: Vec<&Group> = db.groups.iter().collect();
        groups.sort_by_key(|g| g.gid);

        let seal = db.local_seal;
        write_table_file::<User, _>(tmp, generation, seal, users.iter().map(|u| u.user()))?;
        write_table_file::<PublicUser, _>(tmp, generation, seal, public)?;
        write_table_file::<Group, _>(tmp, generation, seal, groups.iter().copied())?;
        write_table_file::<LocalGrant, _>(tmp, generation, seal, grants.iter())?;
        write_meta(&tmp.join(META_FILE), &meta)?;
        self.verify_written(tmp, db, generation, grants.len())?;
        sync_dir(tmp)
    }

    /// Lock, load, change, commit: the one way `user` commands modify the cache.
    pub fn update<T, E>(
        &self,
        lock_timeout: Duration,
        now: u64,
        change: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<CacheError>,
    {
        let lock = self.lock(lock_timeout)?;
        let mut db = self.load()?;
        let result = change(&mut db)?;
        self.commit(&lock, &db, now)?;
        Ok(result)
    }

    fn with_current<T>(
        &self,
        read: impl Fn(&Path) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        // A writer may remove the generation we just resolved; the retry reads the new one.
        let mut attempts = 0;
        loop {
            let dir = self
                .current_dir()?
                .ok_or_else(|| CacheError::NotInitialized { dir: self.root.clone() })?;
            match read(&dir) {
                Err(CacheError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_in<T: CacheRecord>(&self, dir: &Path) -> Result<Lookup<T>, CacheError> {
        let path = dir.join(T::FILE_NAME);
        let file = File::open(&path).map_err(io_error(&path))?;
        check_mode(&path, &file, T::PUBLIC)?;
        Lookup::from_source(path, file)
    }

    /// A table that caches written before it existed lack (`grants.public`): `None` then.
    fn open_optional_in<T: CacheRecord>(
        &self,
        dir: &Path,
    ) -> Result<Option<Lookup<T>>, CacheError> {
        match self.open_in::<T>(dir) {
            Err(CacheError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                // The generation itself may be gone (a writer removed it): tell that apart
                // from a generation without the file, so `with_current` retries.
                if dir.join(META_FILE).exists() {
                    Ok(None)
                } else {
                    Err(CacheError::Io {
                        path: dir.join(T::FILE_NAME),
                        source: io::Error::from(io::ErrorKind::NotFound),
                    })
                }
            }
            other => other.map(Some),
        }
    }

    fn current_generation(&self) -> Result<u64, CacheError> {
        let Some(dir) = self.current_dir()? else {
            return Ok(0);
        };
        Ok(generation_of(&dir).unwrap_or(0))
    }

    fn verify_written<U>(
        &self,
        dir: &Path,
        db: &Db<U>,
        generation: u64,
        grant_count: usize,
    ) -> Result<(), CacheError> {
        let users = self.open_in::<User>(dir)?;
        let public = self.open_in::<PublicUser>(dir)?;
        let groups = self.open_in::<Group>(dir)?;
        let grants = self.open_in::<LocalGrant>(dir)?;
        for (lookup_len, expected, body, written) in [
            (users.len(), db.users.len(), users.table.verify_body(), users.generation()),
            (public.len(), db.users.len(), public.table.verify_body(), public.generation()),
            (groups.len(), db.groups.len(), groups.table.verify_body(), groups.generation()),
            (grants.len(), grant_count, grants.table.verify_body(), grants.generation()),
        ] {
            body.map_err(|source| CacheError::Corrupt { path: dir.to_path_buf(), source })?;
            if lookup_len != expected as u64 || written != generation {
                return Err(CacheError::MixedGenerations { dir: dir.to_path_buf() });
            }
        }
        Ok(())
    }

    fn swap_current(&self, generation_name: &str) -> Result<(), CacheError> {
        let tmp_link = self.root.join(format!("{CURRENT_LINK}{TMP_SUFFIX}"));
        remove_if_present(&tmp_link)?;
        symlink(generation_name, &tmp_link).map_err(io_error(&tmp_link))?;
        let link = self.root.join(CURRENT_LINK);
        fs::rename(&tmp_link, &link).map_err(io_error(&link))?;
        sync_dir(&self.root)
    }

    /// What writers killed mid-commit left: temporary directories, and a generation renamed
    /// into place but never published (killed before the swap of `current`), which would
    /// otherwise take the name of the next generation. No reader uses either: readers only
    /// follow `current`, which never points at a newer generation than itself.
    fn remove_leftovers(&self) -> Result<(), CacheError> {
        let current = self.current_generation()?;
        for entry in self.generation_entries()? {
            let path = self.root.join(&entry);
            let unpublished = generation_of(&path).is_some_and(|generation| generation > current);
            if entry.to_string_lossy().ends_with(TMP_SUFFIX) || unpublished {
                fs::remove_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        Ok(())
    }

    /// Keeps the new generation and the one before it (a reader may still be on it). An
    /// older one is first renamed out of the way, so that it disappears whole: a reader
    /// never finds it half removed (some tables gone, the others still there).
    fn remove_old_generations(&self, current: u64) -> Result<(), CacheError> {
        for entry in self.generation_entries()? {
            let path = self.root.join(&entry);
            let Some(generation) = generation_of(&path) else {
                continue;
            };
            if generation + 1 < current {
                let doomed = self.root.join(format!("{}{TMP_SUFFIX}", entry.to_string_lossy()));
                fs::rename(&path, &doomed).map_err(io_error(&path))?;
                fs::remove_dir_all(&doomed).map_err(io_error(&doomed))?;
            }
        }
        Ok(())
    }

    fn generation_entries(&self) -> Result<Vec<std::ffi::OsString>, CacheError> {
        let entries = fs::read_dir(&self.root).map_err(io_error(&self.root))?;
        let mut names = Vec::new();
        for entry in entries {
            let name = entry.map_err(io_error(&self.root))?.file_name();
            if name.to_string_lossy().starts_with(GENERATION_PREFIX) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// The name of generation `generation`'s directory in the cache directory.
pub fn generation_dir_name(generation: u64) -> String {
    format!("{GENERATION_PREFIX}{generation:012}")
}

fn generation_of(dir: &Path) -> Option<u64> {
    dir.file_name()?.to_str()?.strip_prefix(GENERATION_PREFIX)?.parse().ok()
}

fn ensure_dir(dir: &Path, mode: u32) -> Result<(), CacheError> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(mode)).map_err(io_error(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
            fs::set_permissions(dir, Permissions::from_mode(mode)).map_err(io_error(dir))
        }
        Err(e) => Err(CacheError::Io { path: dir.to_path_buf(), source: e }),
    }
}

fn create_file(path: &Path, public: bool) -> Result<File, CacheError> {
    let mode = if public { 0o644 } else { 0o600 };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error(path))?;
    // The umask may have removed bits from a public file; set the mode exactly.
    file.set_permissions(Permissions::from_mode(mode)).map_err(io_error(path))?;
    Ok(file)
}

/// Encodes and writes records one by one: a million users are never all held as JSON.
fn write_table_file<T: CacheRecord, R: Borrow<T>>(
    dir: &Path,
    generation: u64,
    local_seal: u64,
    records: impl Iterator<Item = R>,
) -> Result<(), CacheError> {
    let path = dir.join(T::FILE_NAME);
    let mut file = create_file(&path, T::PUBLIC)?;
    let mut failure = None;
    let encoded = records.map_while(|record| {
        let record = record.borrow();
        match record.to_record_json() {
            Ok(json) => Some(RecordIn { json, keys: record.keys() }),
            Err(e) => {
                failure = Some((record.name().to_string(), e.to_string()));
                None
            }
        }
    });
    super::format::write_table(&mut file, T::KIND, generation, INDEX_COUNT, local_seal, encoded)
        .map_err(|source| match source {
            // A write error (a full disk) is not corruption of the cache.
            FormatError::Io(source) => CacheError::Io { path: path.clone(), source },
            source => CacheError::Corrupt { path: path.clone(), source },
        })?;
    if let Some((what, reason)) = failure {
        return Err(CacheError::BadRecord { path, what, reason });
    }
    file.sync_all().map_err(io_error(&path))
}

fn write_meta(path: &Path, meta: &Meta) -> Result<(), CacheError> {
    let file = create_file(path, false)?;
    serde_json::to_writer_pretty(&file, meta).map_err(|e| CacheError::BadRecord {
        path: path.to_path_buf(),
        what: "meta".to_string(),
        reason: e.to_string(),
    })?;
    file.sync_all().map_err(io_error(path))
}

fn read_meta(path: &Path) -> Result<Meta, CacheError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| CacheError::BadRecord {
        path: path.to_path_buf(),
        what: "meta".to_string(),
        reason: e.to_string(),
    })?;
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&meta.format_version) {
        return Err(CacheError::Corrupt {
            path: path.to_path_buf(),
            source: FormatError::UnsupportedVersion { found: meta.format_version },
        });
    }
    Ok(meta)
}

/// Readers refuse a private file others can read and any file others can write: either
/// would let a local user read hashes or forge accounts.
fn check_mode(path: &Path, file: &File, public: bool) -> Result<(), CacheError> {
    let metadata = file.metadata().map_err(io_error(path))?;
    check_trusted(path, &metadata, public, crate::trust::effective_uid())
}

/// Whether a reader may trust an open cache file: its owner (see [`check_owner`]) and its
/// mode (no group or other write; the private file readable by its owner only). Every
/// reader — PAM, `dircache-sync`, the NSS module — goes through here. `reader` is the
/// effective uid of this process (`None`: unknown, which admits root-owned files only): the
/// NSS module passes `geteuid()`, the others [`crate::trust::effective_uid`].
pub fn check_trusted(
    path: &Path,
    metadata: &fs::Metadata,
    public: bool,
    reader: Option<u32>,
) -> Result<(), CacheError> {
    check_owner(path, metadata.uid(), reader)?;
    let mode = metadata.permissions().mode() & 0o7777;
    let (forbidden, why, fix) = if public {
        (0o022, "a cache file must not be writable by group or others", 0o644)
    } else {
        (0o077, "the private cache file must be readable by its owner only", 0o600)
    };
    if mode & forbidden != 0 {
        return Err(CacheError::Insecure { path: path.to_path_buf(), mode, why, fix });
    }
    Ok(())
}

/// Cache files must belong to root, or to the user running the reader (tests, a cache of
/// one's own): a file another user could have written is not trusted, whatever its mode.
fn check_owner(path: &Path, owner: u32, reader: Option<u32>) -> Result<(), CacheError> {
    if crate::trust::owner_trusted_by(owner, reader) {
        return Ok(());
    }
    Err(CacheError::WrongOwner { path: path.to_path_buf(), owner })
}

fn remove_if_present(path: &Path) -> Result<(), CacheError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(CacheError::Io { path: path.to_path_buf(), source: e })
        }
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

#[cfg(test)]
mod tests;
