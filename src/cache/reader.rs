//! Following the current generation for a long-lived reader (the NSS module): the public
//! tables mapped once, a `stat()` per call to notice a sync's new generation, and failures
//! remembered per generation so that a broken file is not re-read by every call.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::format::ByteSource;
use super::records::CacheRecord;
use super::{check_trusted, generation_dir_name, Lookup, PublicUser};
use crate::user::{Group, LocalGrant};

/// The link naming the current generation (see the layout in the module `cache`).
const CURRENT_LINK: &str = "current";

/// A cache file as the tables read it. Generation files are never modified once
/// published, so whatever holds its bytes (a mapping, a copy, the open file) stays valid.
pub trait TableBytes: ByteSource + Send + Sync {
    /// The end of an NSS call (see [`crate::nss::Nss::end_of_call`]): let go of what may not
    /// outlive the call that opened the table — an open file the first reads went through
    /// (a program may close or reuse any descriptor between its calls).
    fn end_of_call(&self) {}
}

/// Makes a cache file readable as bytes: the `.so` maps it (mmap), tests read it.
pub trait Mapper {
    type Map: TableBytes;
    /// The file's bytes. `file` may be kept until the table's
    /// [`TableBytes::end_of_call`], never longer.
    fn map(&self, file: File, len: u64) -> io::Result<Self::Map>;

    /// The effective uid of this process, asked when a generation's `users.public` is opened
    /// and does not belong to root (it decides which owners are trusted, see
    /// [`check_trusted`]). By default read from /proc, as
    /// the library has no `unsafe`; the `.so` answers with `geteuid()`, which spares every
    /// fresh process a read of the whole `/proc/self/status`.
    fn effective_uid(&self) -> Option<u32> {
        crate::trust::effective_uid()
    }
}

/// Reads the whole file into memory: for tests, and wherever mmap is not wanted.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadMapper;

impl Mapper for ReadMapper {
    type Map = Mapped<Vec<u8>>;

    fn map(&self, file: File, len: u64) -> io::Result<Mapped<Vec<u8>>> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut bytes = vec![0u8; len];
        FileExt::read_exact_at(&file, &mut bytes, 0)?;
        Ok(Mapped(bytes))
    }
}

/// Bytes in memory as a table's byte source.
pub struct Mapped<B>(pub B);

impl<B: AsRef<[u8]>> ByteSource for Mapped<B> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.as_ref().len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        ByteSource::read_exact_at(self.0.as_ref(), buf, offset)
    }
}

impl<B: AsRef<[u8]> + Send + Sync> TableBytes for Mapped<B> {}

/// Identity of a file's content and attributes, as `stat()` tells it. The ctime makes a
/// fixed mode or owner (chmod, chown) count as a change, so a remembered refusal is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
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

    /// The later of the modification and change times, in seconds since the epoch.
    pub fn changed_at(&self) -> i64 {
        self.mtime.max(self.ctime)
    }

    /// The stamp's fields, for a fingerprint of it (`LocalAccounts::seal_of`).
    pub fn fields(&self) -> [u64; 7] {
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime as u64,
            self.mtime_nsec as u64,
            self.ctime as u64,
            self.ctime_nsec as u64,
        ]
    }

    /// `None` when the file does not exist.
    pub fn probe(path: &Path) -> io::Result<Option<Stamp>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why a reader cannot answer: `errno` for the caller, and `message` to log once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub errno: i32,
    pub message: String,
    /// A problem of the files' content, owner or mode, which stays until a sync writes a new
    /// generation; not an error of this process or moment (EMFILE, ENOMEM, a missing file),
    /// which the next call retries.
    pub lasting: bool,
}

impl Problem {
    pub fn missing(what: impl fmt::Display) -> Problem {
        Problem {
            errno: libc::ENOENT,
            message: format!("no dircache cache: {what}"),
            lasting: false,
        }
    }

    pub fn broken(what: impl fmt::Display) -> Problem {
        Problem { errno: libc::EIO, message: what.to_string(), lasting: true }
    }

    /// `current` was moved to a new generation during the call: the next call follows it.
    pub fn moved(link: &Path) -> Problem {
        let message = format!("{} moved to a new generation during the call", link.display());
        Problem { errno: libc::EIO, message, lasting: false }
    }

    pub fn io(path: &Path, error: &io::Error) -> Problem {
        if error.kind() == io::ErrorKind::NotFound {
            Problem::missing(format!("{} does not exist", path.display()))
        } else {
            let message = format!("{}: {error}", path.display());
            Problem { errno: libc::EIO, message, lasting: false }
        }
    }
}

/// A table over a mapped file.
pub type Table<T, B> = Lookup<T, B>;

/// One generation's two public tables. `groups.public` is opened by the first call that
/// needs it ([`Tables::groups`]): most processes only ever look up users.
pub struct Tables<B> {
    pub stamp: Stamp,
    pub users: Table<PublicUser, B>,
    /// Where the cache is: `users.public` is opened through `current`, and the generation's
    /// directory, where the other tables are opened, is read from the link when first
    /// needed ([`Tables::dir`]).
    location: Arc<Location>,
    dir: OnceLock<PathBuf>,
    /// The effective uid `users.public` was trusted by: `groups.public` is judged by the
    /// same, even if the process changed its uid since. `None` when `users.public` belongs
    /// to root: the uid is then not asked (a system call less on a process's first lookup)
    /// and the generation's other tables must belong to root too.
    reader: Option<u32>,
    /// The groups table once opened, or a lasting problem with it (not retried for this
    /// generation); an error of the moment is not kept.
    groups: OnceLock<Result<Table<Group, B>, Problem>>,
    /// `grants.public` likewise; `None` when the generation has none (written before it
    /// existed).
    grants: OnceLock<Result<Option<Table<LocalGrant, B>>, Problem>>,
}

impl<B: TableBytes> Tables<B> {
    /// [`TableBytes::end_of_call`] for every table of the generation opened so far.
    pub fn end_of_call(&self) {
        self.users.source().end_of_call();
        if let Some(Ok(groups)) = self.groups.get() {
            groups.source().end_of_call();
        }
        if let Some(Ok(Some(grants))) = self.grants.get() {
            grants.source().end_of_call();
        }
    }

    /// The local seal of this generation (0: none; see `LocalAccounts::seal_of`).
    pub fn local_seal(&self) -> u64 {
        self.users.local_seal()
    }

    /// The generation's directory: where `current` points, if that is still the generation
    /// whose `users.public` is open (the same file), else, when a sync moved the link since,
    /// the directory the writer kept it in (the previous generation stays beside the new
    /// one). Failing both (two syncs since), this call fails (not lasting) and the next call
    /// opens the new generation: tables of two generations are never mixed.
    fn dir(&self) -> Result<&Path, Problem> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let link = self.location.link();
        let target = fs::read_link(link).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => {
                Problem::broken(format!("{} is not a symbolic link", link.display()))
            }
            _ => Problem::io(link, &e),
        })?;
        let cache_dir = self.location.cache_dir();
        let kept = || joined(cache_dir, Path::new(&generation_dir_name(self.users.generation())));
        let dir = std::iter::once(joined(cache_dir, &target))
            .chain(std::iter::once_with(kept))
            .find(|dir| self.holds_users(dir))
            .ok_or_else(|| Problem::moved(link))?;
        Ok(self.dir.get_or_init(|| dir))
    }

    /// Whether `dir`'s `users.public` is the very file these tables opened.
    fn holds_users(&self, dir: &Path) -> bool {
        let users = joined(dir, Path::new(PublicUser::FILE_NAME));
        fs::metadata(users).is_ok_and(|meta| Stamp::of(&meta) == self.stamp)
    }

    /// The groups table of this generation, opened and checked (owner, mode, same
    /// generation as the users) on first use with `mapper`.
    pub fn groups<M: Mapper<Map = B>>(&self, mapper: &M) -> Result<&Table<Group, B>, Problem> {
        if let Some(opened) = self.groups.get() {
            return opened.as_ref().map_err(Problem::clone);
        }
        let opened = self.dir().and_then(|dir| {
            let (groups, _) = open_table::<Group, M>(mapper, dir, self.reader)?;
            if groups.generation() == self.users.generation() {
                Ok(groups)
            } else {
                Err(Problem::broken(format!(
                    "the cache files in {} belong to different generations",
                    dir.display()
                )))
            }
        });
        match opened {
            Err(problem) if !problem.lasting => Err(problem),
            opened => self.groups.get_or_init(|| opened).as_ref().map_err(Problem::clone),
        }
    }

    /// The local grants table of this generation (`None`: it has none), opened and checked
    /// like [`Tables::groups`] on first use.
    pub fn grants<M: Mapper<Map = B>>(
        &self,
        mapper: &M,
    ) -> Result<Option<&Table<LocalGrant, B>>, Problem> {
        if let Some(opened) = self.grants.get() {
            return opened.as_ref().map(Option::as_ref).map_err(Problem::clone);
        }
        let opened = self.dir().and_then(|dir| {
            match open_table::<LocalGrant, M>(mapper, dir, self.reader) {
                Ok((grants, _)) if grants.generation() == self.users.generation() => {
                    Ok(Some(grants))
                }
                Ok(_) => Err(Problem::broken(format!(
                    "the cache files in {} belong to different generations",
                    dir.display()
                ))),
                // A cache written before grants existed, if `dir` still holds these users: an
                // old generation disappears whole (`CacheDir::remove_old_generations`), and one
                // removed under this reader must not read as one without grants.
                Err(problem) if problem.errno == libc::ENOENT && self.holds_users(dir) => Ok(None),
                Err(problem) if problem.errno == libc::ENOENT => Err(Problem::moved(dir)),
                Err(problem) => Err(problem),
            }
        });
        match opened {
            Err(problem) if !problem.lasting => Err(problem),
            opened => self
                .grants
                .get_or_init(|| opened)
                .as_ref()
                .map(Option::as_ref)
                .map_err(Problem::clone),
        }
    }
}

/// The public tables of the cache's current generation, reopened when a sync publishes a
/// new one.
pub struct CurrentTables<M: Mapper> {
    mapper: M,
    location: Arc<Location>,
    tables: Option<Arc<Tables<M::Map>>>,
    /// The last failure to open the generation whose users.public had this stamp: not
    /// retried until the file changes.
    pub(crate) failed: Option<(Option<Stamp>, Problem)>,
}

impl<M: Mapper> CurrentTables<M> {
    pub fn mapper(&self) -> &M {
        &self.mapper
    }

    /// The tables opened last, if any.
    pub fn opened(&self) -> Option<&Arc<Tables<M::Map>>> {
        self.tables.as_ref()
    }

    pub fn new(mapper: M, cache_dir: &Path) -> CurrentTables<M> {
        CurrentTables { mapper, location: Location::of(cache_dir), tables: None, failed: None }
    }

    /// Starts over on another cache directory.
    pub fn switch_to(&mut self, cache_dir: &Path) {
        self.location = Location::of(cache_dir);
        self.tables = None;
        self.failed = None;
    }

    /// The tables of the current generation, opened again only when the `stat()` of
    /// `users.public` through `current` changed.
    pub fn refresh(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        if self.tables.is_none() && self.failed.is_none() {
            return self.open_first();
        }
        let probe = &self.location.probe;
        let stamp = match Stamp::probe(probe) {
            Ok(stamp) => stamp,
            Err(e) => {
                self.tables = None;
                return Err(Problem::io(probe, &e));
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
        self.tables = None;
        let opened = match stamp {
            Some(_) => self.open(),
            None => Err(Problem::missing(format!("{} does not exist", probe.display()))),
        };
        match opened {
            Ok(tables) => {
                let tables = Arc::new(tables);
                self.tables = Some(tables.clone());
                self.failed = None;
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

    /// With nothing open and nothing remembered (a process's first lookup) there is no stamp
    /// to compare: the generation is opened without a `stat()` before, its stamp taken from
    /// the open file. Only a lasting failure needs the stamp, to be remembered by it.
    fn open_first(&mut self) -> Result<Arc<Tables<M::Map>>, Problem> {
        match self.open() {
            Ok(tables) => {
                let tables = Arc::new(tables);
                self.tables = Some(tables.clone());
                Ok(tables)
            }
            Err(problem) => {
                if problem.lasting {
                    if let Ok(Some(stamp)) = Stamp::probe(&self.location.probe) {
                        self.failed = Some((Some(stamp), problem.clone()));
                    }
                }
                Err(problem)
            }
        }
    }

    /// Opens `users.public` through `current`: one path walk, no `readlink` (issue 12 §2).
    fn open(&self) -> Result<Tables<M::Map>, Problem> {
        let path = self.location.probe.clone();
        let (file, meta) = open_file(&path)?;
        let reader = if meta.uid() == 0 { None } else { self.mapper.effective_uid() };
        let (users, stamp) = map_table::<PublicUser, M>(&self.mapper, path, file, &meta, reader)?;
        Ok(Tables {
            stamp,
            users,
            location: self.location.clone(),
            dir: OnceLock::new(),
            reader,
            groups: OnceLock::new(),
            grants: OnceLock::new(),
        })
    }
}

/// The paths of a cache directory that a reader uses, built once in one buffer: the
/// cache directory and `current` are its beginnings.
struct Location {
    /// `<cache dir>/current/users.public`, opened by a process's first lookup and stat()ed
    /// by every later call.
    probe: PathBuf,
    cache_dir_len: usize,
    link_len: usize,
}

impl Location {
    fn of(cache_dir: &Path) -> Arc<Location> {
        let link = joined(cache_dir, Path::new(CURRENT_LINK));
        let link_len = link.as_os_str().len();
        let probe = joined(&link, Path::new(PublicUser::FILE_NAME));
        let cache_dir_len = cache_dir.as_os_str().len();
        Arc::new(Location { probe, cache_dir_len, link_len })
    }

    fn cache_dir(&self) -> &Path {
        self.prefix(self.cache_dir_len)
    }

    /// `<cache dir>/current`.
    fn link(&self) -> &Path {
        self.prefix(self.link_len)
    }

    fn prefix(&self, len: usize) -> &Path {
        use std::os::unix::ffi::OsStrExt;
        let bytes = self.probe.as_os_str().as_bytes();
        Path::new(std::ffi::OsStr::from_bytes(bytes.get(..len).unwrap_or(bytes)))
    }
}

fn open_table<T: CacheRecord, M: Mapper>(
    mapper: &M,
    dir: &Path,
    reader: Option<u32>,
) -> Result<(Table<T, M::Map>, Stamp), Problem> {
    let path = joined(dir, Path::new(T::FILE_NAME));
    let (file, meta) = open_file(&path)?;
    map_table(mapper, path, file, &meta, reader)
}

fn open_file(path: &Path) -> Result<(File, fs::Metadata), Problem> {
    let file = File::open(path).map_err(|e| Problem::io(path, &e))?;
    let meta = file.metadata().map_err(|e| Problem::io(path, &e))?;
    Ok((file, meta))
}

/// The table of an open file, once its owner and mode are trusted by `reader`.
fn map_table<T: CacheRecord, M: Mapper>(
    mapper: &M,
    path: PathBuf,
    file: File,
    meta: &fs::Metadata,
    reader: Option<u32>,
) -> Result<(Table<T, M::Map>, Stamp), Problem> {
    check_trusted(&path, meta, true, reader).map_err(Problem::broken)?;
    let map = mapper.map(file, meta.len()).map_err(|e| Problem::io(&path, &e))?;
    let table = Lookup::from_source(path, map).map_err(Problem::broken)?;
    Ok((table, Stamp::of(meta)))
}

/// `base.join(name)` (an absolute `name` replaces `base`), in one allocation of the right
/// size and as bytes: `join` grows its buffer, and its separator logic reads constant
/// tables that a process's first lookup would otherwise fault in (issue 12 §2).
fn joined(base: &Path, name: &Path) -> PathBuf {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (base, name) = (base.as_os_str().as_bytes(), name.as_os_str().as_bytes());
    if name.first() == Some(&b'/') {
        return PathBuf::from(OsString::from_vec(name.to_vec()));
    }
    let separator = !base.is_empty() && base.last() != Some(&b'/');
    let mut path = Vec::with_capacity(base.len() + usize::from(separator) + name.len());
    path.extend_from_slice(base);
    if separator {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_holds_the_cache_directory_and_its_link() {
        for base in ["/var/lib/dircache", "/var/lib/dircache/", "", "/", "rel"] {
            let location = Location::of(Path::new(base));
            assert_eq!(location.cache_dir(), Path::new(base));
            assert_eq!(location.link(), Path::new(base).join("current"));
            assert_eq!(location.probe, Path::new(base).join("current/users.public"));
        }
    }

    #[test]
    fn joined_is_path_join() {
        let bases = ["/var/cache/dircache", "/var/cache/dircache/", "", "/", "rel", "a//"];
        let names = ["current", "gen-000000000001", "/elsewhere/gen-1", "a/b", "", "./x"];
        for base in bases {
            for name in names {
                let (base, name) = (Path::new(base), Path::new(name));
                assert_eq!(
                    joined(base, name).as_os_str(),
                    base.join(name).as_os_str(),
                    "{base:?} + {name:?}"
                );
            }
        }
    }
}
