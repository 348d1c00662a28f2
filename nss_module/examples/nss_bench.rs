//! Benchmark of the NSS module against glibc's `files` backend and Debian's libnss-cache,
//! on the same users: 1,000 / 100,000 / 1,000,000 by default. Run by `scripts/bench-nss.sh`
//! (root, `unshare`, release build); `nss_bench run [SIZES...]` does everything:
//!
//! - generates, per size: a dircache cache (`CacheDir::commit`), a passwd file of the same
//!   users after this machine's own accounts, and nsscache's `/etc/passwd.cache` with its
//!   `.ixname`/`.ixuid` indexes (sorted fixed-width `key NUL offset NUL…` lines);
//! - for each backend, a copy of /etc (with that passwd, those cache files, and an
//!   nsswitch.conf saying `passwd: files`, `passwd: cache` or `passwd: dircache`) is
//!   bind-mounted over /etc in a private mount namespace (`unshare -m`), and this program
//!   measures itself there (`nss_bench measure …`): through glibc's `getpwnam_r`/`getpwuid_r`
//!   (the real NSS path, module loaded by glibc), and for the two modules also by calling
//!   their `_nss_*_getpwnam_r` directly after dlopen;
//! - "first" is the first lookup in a fresh process (median of several processes; page
//!   cache warm), "warm" the median and p99 over random users after a warm-up pass (with a
//!   million users these miss the LRU: the table is read), "repeat" one user looked up again
//!   and again (the LRU).
//!
//! Printed: a table per size and the ratios; the README records the figures.

use std::ffi::{c_void, CStr, CString};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dircache::cache::{CacheDir, Db, PublicUser};
use dircache::local_accounts::LocalAccounts;
use dircache::nss::{pack_passwd, Nss, Reply, Settings};
use dircache::user::{sample_group, sample_picks, sample_user, AuthMethod, Origin, User};
use nss_dircache::MmapMapper;

/// Processes per first-lookup figure (its median); odd.
const FIRST_RUNS: usize = 41;
const WARM_LOOKUPS: usize = 20_000;
const BUDGET: Duration = Duration::from_secs(3);
const NSS_CACHE_SO: &str = "/usr/lib/x86_64-linux-gnu/libnss_cache.so.2";
const FIRST_UID: u32 = 200_000;
/// The first user is a member of this many groups: what `initgroups` is measured on.
const GROUPS: u32 = 1_000;
const FIRST_GROUP_GID: u32 = 3_000_000;

fn group_name(k: u32) -> String {
    format!("team{k}@example.com")
}

fn group_line(k: u32) -> String {
    format!("{}:x:{}:{}\n", group_name(k), FIRST_GROUP_GID + k, name_of(0))
}

fn name_of(i: u32) -> String {
    format!("user{i}@example.com")
}

fn uid_of(i: u32) -> u32 {
    FIRST_UID + i
}

fn passwd_line(i: u32) -> String {
    let uid = uid_of(i);
    format!("{}:x:{uid}:{uid}:User Number {i}:/home/{}:/bin/bash\n", name_of(i), name_of(i))
}

fn user(i: u32) -> User {
    User {
        full_name: format!("User Number {i}"),
        emails: vec![name_of(i)],
        auth: AuthMethod::Directory,
        origin: Origin::Icewarp,
        groups: if i == 0 { (0..GROUPS).map(group_name).collect() } else { Vec::new() },
        ..sample_user(&name_of(i), uid_of(i))
    }
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("nss_bench: {message}");
    std::process::exit(1);
}

// ----- measuring (inside the namespace) -----

type NssGetpwnam =
    unsafe extern "C" fn(*const c_char, *mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;
type NssGetpwuid =
    unsafe extern "C" fn(libc::uid_t, *mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;

enum Via {
    Glibc,
    Direct {
        getpwnam: NssGetpwnam,
        getpwuid: NssGetpwuid,
    },
    /// The module's logic through the rlib with its LRU off: every lookup stats the cache
    /// and reads the mapped tables.
    TablesOnly(Box<Nss<MmapMapper>>),
}

#[derive(Clone, Copy)]
enum Key {
    Name,
    Uid,
}

impl Via {
    fn open(spec: &str) -> Via {
        if spec == "glibc" {
            return Via::Glibc;
        }
        if spec == "tables" {
            let dir = std::env::var_os("DIRCACHE_CACHE_DIR").map(|d| d.into_encoded_bytes());
            let mut nss = Nss::new(
                MmapMapper,
                Settings::from_vars([dir.as_deref(), None, None]),
                Box::new(|line| eprintln!("{line}")),
            );
            nss.set_lru_enabled(false);
            return Via::TablesOnly(Box::new(nss));
        }
        let Some((so, prefix)) = spec.strip_prefix("direct:").and_then(|s| s.rsplit_once(':'))
        else {
            fail(format!("bad backend {spec}"));
        };
        let so = CString::new(so).unwrap_or_else(|e| fail(e));
        // SAFETY: a NUL-terminated path; loading an NSS module runs no code but its
        // (absent) constructors.
        let handle = unsafe { libc::dlopen(so.as_ptr(), libc::RTLD_NOW) };
        if handle.is_null() {
            fail(format!("cannot dlopen {spec}"));
        }
        let symbol = |what: &str| -> *mut c_void {
            let name = CString::new(format!("_nss_{prefix}_{what}")).unwrap_or_else(|e| fail(e));
            // SAFETY: a live handle and a NUL-terminated symbol name.
            let found = unsafe { libc::dlsym(handle, name.as_ptr()) };
            if found.is_null() {
                fail(format!("no {name:?} in {spec}"));
            }
            found
        };
        let (by_name, by_uid) = (symbol("getpwnam_r"), symbol("getpwuid_r"));
        // SAFETY: both symbols are NSS functions with exactly these C signatures (nss.h).
        unsafe {
            Via::Direct {
                getpwnam: std::mem::transmute::<*mut c_void, NssGetpwnam>(by_name),
                getpwuid: std::mem::transmute::<*mut c_void, NssGetpwuid>(by_uid),
            }
        }
    }

    /// One lookup; true when found with the expected uid.
    fn lookup(&mut self, key: Key, i: u32, name: &CStr, buf: &mut [c_char]) -> bool {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value to overwrite.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let (ptr, len) = (buf.as_mut_ptr(), buf.len());
        match self {
            Via::Glibc => {
                let mut result: *mut libc::passwd = std::ptr::null_mut();
                // SAFETY: valid name, struct, buffer of `len` bytes and result pointer.
                let rc = unsafe {
                    match key {
                        Key::Name => {
                            libc::getpwnam_r(name.as_ptr(), &mut pw, ptr, len, &mut result)
                        }
                        Key::Uid => libc::getpwuid_r(uid_of(i), &mut pw, ptr, len, &mut result),
                    }
                };
                rc == 0 && !result.is_null() && pw.pw_uid == uid_of(i)
            }
            Via::Direct { getpwnam, getpwuid } => {
                let mut errno = 0;
                // SAFETY: as above; the module writes only into `pw`, `buf` and `errno`.
                let status = unsafe {
                    match key {
                        Key::Name => getpwnam(name.as_ptr(), &mut pw, ptr, len, &mut errno),
                        Key::Uid => getpwuid(uid_of(i), &mut pw, ptr, len, &mut errno),
                    }
                };
                status == 1 && pw.pw_uid == uid_of(i)
            }
            Via::TablesOnly(nss) => {
                let reply = match key {
                    Key::Name => nss.passwd_by_name(name.to_bytes()),
                    Key::Uid => nss.passwd_by_uid(uid_of(i)),
                };
                // As the module ends each call.
                nss.end_of_call();
                let mut bytes = [0u8; 1024];
                matches!(
                    reply.pack(|entry| pack_passwd(entry, &mut bytes[..])),
                    Reply::Found(layout) if layout.uid == uid_of(i)
                )
            }
        }
    }
}

/// `getgrouplist` for the first user, through glibc: how many groups it holds.
fn group_list() -> usize {
    let name = CString::new(name_of(0)).unwrap_or_else(|e| fail(e));
    let mut gids = vec![0 as libc::gid_t; 4 * GROUPS as usize];
    let mut count = c_int::try_from(gids.len()).unwrap_or(c_int::MAX);
    // SAFETY: a NUL-terminated name, and a buffer of `count` gids.
    let rc = unsafe { libc::getgrouplist(name.as_ptr(), uid_of(0), gids.as_mut_ptr(), &mut count) };
    if rc < 0 {
        fail("getgrouplist: the buffer is too small");
    }
    usize::try_from(count).unwrap_or(0)
}

fn expect_all_groups(count: usize) {
    if count < GROUPS as usize {
        fail(format!("getgrouplist found {count} groups, not {GROUPS}"));
    }
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

/// `measure VIA name|uid first|warm|repeat N`: prints nanoseconds (first) or
/// `median p99 samples` (warm, repeat).
fn measure(args: &[String]) {
    let [via, key, mode, n] = args else {
        fail("usage: nss_bench measure VIA name|uid first|warm|repeat N");
    };
    let key = if key == "uid" { Key::Uid } else { Key::Name };
    let n: u32 = n.parse().unwrap_or_else(|e| fail(e));
    let mut buf = vec![0 as c_char; 1024];
    let mut via = Via::open(via);
    match mode.as_str() {
        "first" => {
            let i = n / 3 + 7 % n;
            let name = CString::new(name_of(i)).unwrap_or_else(|e| fail(e));
            let faults_before = minor_faults();
            let start = Instant::now();
            let found = via.lookup(key, i, &name, &mut buf);
            let took = start.elapsed();
            if std::env::var_os("NSS_BENCH_FAULTS").is_some() {
                eprintln!("minor page faults: {}", minor_faults() - faults_before);
            }
            if !found {
                fail(format!("{} not found", name_of(i)));
            }
            println!("{}", took.as_nanos());
        }
        "warm" | "repeat" => {
            let ids = if mode == "repeat" {
                vec![n / 2; WARM_LOOKUPS]
            } else {
                sample_picks(n, WARM_LOOKUPS)
            };
            let names: Vec<CString> =
                ids.iter().map(|i| CString::new(name_of(*i)).unwrap_or_else(|e| fail(e))).collect();
            // Warm-up: the same lookups, as many as the budget allows.
            let start = Instant::now();
            for (i, name) in ids.iter().zip(&names) {
                if !via.lookup(key, *i, name, &mut buf) {
                    fail(format!("{} not found", name_of(*i)));
                }
                if start.elapsed() > BUDGET {
                    break;
                }
            }
            let mut samples = Vec::with_capacity(ids.len());
            let start = Instant::now();
            for (i, name) in ids.iter().zip(&names) {
                let t = Instant::now();
                let found = via.lookup(key, *i, name, &mut buf);
                samples.push(t.elapsed());
                if !found {
                    fail(format!("{} not found", name_of(*i)));
                }
                if start.elapsed() > BUDGET && samples.len() >= 10 {
                    break;
                }
            }
            samples.sort();
            println!(
                "{} {} {}",
                percentile(&samples, 500).as_nanos(),
                percentile(&samples, 990).as_nanos(),
                samples.len()
            );
        }
        "initgroups-first" => {
            let start = Instant::now();
            let count = group_list();
            let took = start.elapsed();
            expect_all_groups(count);
            println!("{}", took.as_nanos());
        }
        "initgroups" => {
            expect_all_groups(group_list());
            let mut samples = Vec::new();
            let start = Instant::now();
            while samples.len() < 10 || (start.elapsed() < BUDGET && samples.len() < 2_000) {
                let t = Instant::now();
                let count = group_list();
                samples.push(t.elapsed());
                expect_all_groups(count);
            }
            samples.sort();
            println!(
                "{} {} {}",
                percentile(&samples, 500).as_nanos(),
                percentile(&samples, 990).as_nanos(),
                samples.len()
            );
        }
        other => fail(format!("unknown mode {other}")),
    }
}

fn minor_faults() -> i64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

// ----- generating and orchestrating (outside) -----

struct Backend {
    label: &'static str,
    etc: &'static str,
    via: String,
}

fn run_cmd(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| fail(format!("{cmd:?}: {e}")));
    if !out.status.success() {
        fail(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_etc(to: &Path, nsswitch: &str) {
    if to.exists() {
        fs::remove_dir_all(to).unwrap_or_else(|e| fail(e));
    }
    run_cmd(Command::new("cp").args(["-a", "/etc"]).arg(to));
    let original = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut lines: Vec<&str> = original
        .lines()
        .filter(|l| !l.starts_with("passwd:") && !l.starts_with("group:"))
        .collect();
    let passwd = format!("passwd: {nsswitch}");
    lines.push(&passwd);
    let group = format!("group: {nsswitch}");
    lines.push(&group);
    fs::write(to.join("nsswitch.conf"), lines.join("\n") + "\n").unwrap_or_else(|e| fail(e));
}

/// nsscache's index: fixed-width lines `key NUL offset NUL… \n`, sorted by strcmp.
fn write_index(path: &Path, mut entries: Vec<(String, u64)>) {
    entries.sort();
    let width =
        entries.iter().map(|(k, o)| k.len() + o.to_string().len() + 2).max().unwrap_or(2) + 1;
    let mut out = Vec::with_capacity(entries.len() * width);
    for (key, offset) in entries {
        let start = out.len();
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(offset.to_string().as_bytes());
        out.resize(start + width - 1, 0);
        out.push(b'\n');
    }
    fs::write(path, out).unwrap_or_else(|e| fail(e));
}

fn generate(n: u32, dir: &Path, module_so: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| fail(e));
    let started = Instant::now();
    // dircache: the machine's own passwd, the module on LD_LIBRARY_PATH; the cache sealed
    // for that /etc, as a sync there would seal it.
    let etc_dircache = dir.join("etc-dircache");
    copy_etc(&etc_dircache, "files dircache");
    let local = LocalAccounts::load(&etc_dircache.join("passwd"), &etc_dircache.join("group"))
        .unwrap_or_else(|e| fail(e));
    let cache = CacheDir::new(dir.join("cache"));
    let sealed = cache.open::<PublicUser>().map(|users| users.local_seal());
    if sealed.is_ok_and(|seal| seal != local.files_seal()) {
        fs::remove_dir_all(dir.join("cache")).unwrap_or_else(|e| fail(e));
    }
    if cache.current_dir().ok().flatten().is_none() {
        let groups = (0..GROUPS)
            .map(|k| sample_group(&group_name(k), FIRST_GROUP_GID + k, &[&name_of(0)]))
            .collect();
        let mut db = Db { users: (0..n).map(user).collect(), groups, ..Db::default() };
        // As a sync a while after /etc last changed (the copy above is new) would seal it.
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() + 10);
        db.local_seal = db.seal_against(&local, later);
        let lock = cache.lock(Duration::from_secs(5)).unwrap_or_else(|e| fail(e));
        cache.commit(&lock, &db, 1_700_000_000).unwrap_or_else(|e| fail(e));
    }
    // files: this machine's accounts, then the users.
    copy_etc(&dir.join("etc-files"), "files");
    let mut passwd = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("etc-files/passwd"))
        .unwrap_or_else(|e| fail(e));
    let mut chunk = String::new();
    for i in 0..n {
        chunk.push_str(&passwd_line(i));
        if chunk.len() > 1 << 20 {
            passwd.write_all(chunk.as_bytes()).unwrap_or_else(|e| fail(e));
            chunk.clear();
        }
    }
    passwd.write_all(chunk.as_bytes()).unwrap_or_else(|e| fail(e));
    let groups: String = (0..GROUPS).map(group_line).collect();
    let mut group_file = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("etc-files/group"))
        .unwrap_or_else(|e| fail(e));
    group_file.write_all(groups.as_bytes()).unwrap_or_else(|e| fail(e));
    // nsscache: /etc/passwd.cache and its indexes.
    let etc_cache = dir.join("etc-cache");
    copy_etc(&etc_cache, "files cache");
    let mut text = String::new();
    let (mut by_name, mut by_uid) = (Vec::new(), Vec::new());
    for i in 0..n {
        let offset = text.len() as u64;
        by_name.push((name_of(i), offset));
        by_uid.push((uid_of(i).to_string(), offset));
        text.push_str(&passwd_line(i));
    }
    fs::write(etc_cache.join("passwd.cache"), text).unwrap_or_else(|e| fail(e));
    write_index(&etc_cache.join("passwd.cache.ixname"), by_name);
    write_index(&etc_cache.join("passwd.cache.ixuid"), by_uid);
    let (mut by_name, mut by_gid, mut text) = (Vec::new(), Vec::new(), String::new());
    for k in 0..GROUPS {
        by_name.push((group_name(k), text.len() as u64));
        by_gid.push(((FIRST_GROUP_GID + k).to_string(), text.len() as u64));
        text.push_str(&group_line(k));
    }
    fs::write(etc_cache.join("group.cache"), text).unwrap_or_else(|e| fail(e));
    write_index(&etc_cache.join("group.cache.ixname"), by_name);
    write_index(&etc_cache.join("group.cache.ixgid"), by_gid);
    let lib = dir.join("lib");
    fs::create_dir_all(&lib).unwrap_or_else(|e| fail(e));
    let link = lib.join("libnss_dircache.so.2");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(module_so, &link).unwrap_or_else(|e| fail(e));
    eprintln!("nss_bench: {n} users generated in {:.1} s", started.elapsed().as_secs_f64());
}

fn in_namespace(dir: &Path, backend: &Backend, key: &str, mode: &str, n: u32) -> String {
    let me = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let n = n.to_string();
    let args = [
        me.as_os_str(),
        "measure".as_ref(),
        backend.via.as_ref(),
        key.as_ref(),
        mode.as_ref(),
        n.as_ref(),
    ];
    run_in_namespace(dir, backend.etc, &args)
}

/// `argv` run with `dir/etc` bind-mounted over /etc, the module on LD_LIBRARY_PATH.
fn run_in_namespace(dir: &Path, etc: &str, argv: &[&std::ffi::OsStr]) -> String {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc || exit 99; shift; exec "$@""#)
        .arg("sh")
        .arg(dir.join(etc))
        .args(argv)
        .env("LD_LIBRARY_PATH", dir.join("lib"))
        .env("DIRCACHE_CACHE_DIR", dir.join("cache"))
        .env_remove("DIRCACHE_LOCAL_PASSWD")
        .env_remove("DIRCACHE_LOCAL_GROUP");
    run_cmd(&mut cmd)
}

/// Bytes per user on disk: dircache's NSS-visible tables and its whole generation, beside
/// libnss-cache's passwd map and its two indexes.
fn disk_sizes(report: &mut String, dir: &Path, n: u32) {
    let size = |path: PathBuf| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let generation = fs::canonicalize(dir.join("cache/current")).unwrap_or_else(|e| fail(e));
    let users_public = size(generation.join("users.public"));
    let whole: u64 = fs::read_dir(&generation)
        .unwrap_or_else(|e| fail(e))
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum();
    let nss_cache: u64 = ["passwd.cache", "passwd.cache.ixname", "passwd.cache.ixuid"]
        .iter()
        .map(|file| size(dir.join("etc-cache").join(file)))
        .sum();
    let per_user = |bytes: u64| bytes as f64 / f64::from(n.max(1));
    let _ = writeln!(
        report,
        "\n{n} users on disk, bytes per user: dircache users.public {:.0}, whole generation with the {GROUPS} groups {:.0} \
         ({:.1} MB); libnss-cache passwd.cache + .ixname + .ixuid {:.0} ({:.1} MB)",
        per_user(users_public),
        per_user(whole),
        whole as f64 / 1e6,
        per_user(nss_cache),
        nss_cache as f64 / 1e6
    );
}

fn measure_initgroups(dir: &Path, backend: &Backend, n: u32) -> [f64; 3] {
    let mut firsts: Vec<f64> = (0..FIRST_RUNS)
        .map(|_| {
            in_namespace(dir, backend, "name", "initgroups-first", n)
                .trim()
                .parse()
                .unwrap_or(f64::NAN)
        })
        .collect();
    firsts.sort_by(f64::total_cmp);
    let warm = in_namespace(dir, backend, "name", "initgroups", n);
    let mut parts = warm.split_whitespace().map(|p| p.parse().unwrap_or(f64::NAN));
    let median = parts.next().unwrap_or(f64::NAN);
    [firsts[FIRST_RUNS / 2], median, parts.next().unwrap_or(f64::NAN)]
}

/// The median of [`FIRST_RUNS`] runs of each of `count` measurements, taken in turns (one
/// run of each, then the next round): a slower moment of the machine falls on every
/// backend alike rather than on whichever was measured then. Each round starts one further
/// along, so that no measurement always runs right after the same one (a process that
/// scans a 100 MB /etc/passwd leaves the next one cold caches; one of the same backend, warm
/// ones). `measure(i)` prints ns.
fn interleaved_medians(count: usize, measure: impl Fn(usize) -> String) -> Vec<f64> {
    let mut runs = vec![Vec::with_capacity(FIRST_RUNS); count];
    for round in 0..FIRST_RUNS {
        for turn in 0..count {
            let i = (round + turn) % count;
            runs[i].push(measure(i).trim().parse().unwrap_or(f64::NAN));
        }
    }
    runs.iter_mut()
        .map(|samples| {
            samples.sort_by(f64::total_cmp);
            samples[FIRST_RUNS / 2]
        })
        .collect()
}

fn micros(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

#[derive(Default, Clone)]
struct Figures {
    first: [f64; 2],
    median: [f64; 2],
    p99: [f64; 2],
    repeat: f64,
    /// `getgrouplist` of a user in [`GROUPS`] groups: first, warm median, warm p99.
    initgroups: Option<[f64; 3]>,
}

/// `generate N`: only the fixture of N users under $NSS_BENCH_DIR/N, for a profile of the
/// module (`scripts/nss-first-lookup-functions.sh`).
fn generate_only(args: &[String]) {
    let [n] = args else {
        fail("usage: nss_bench generate N");
    };
    let n: u32 = n.parse().unwrap_or_else(|e| fail(e));
    let (work, module_so) = bench_paths();
    generate(n, &work.join(n.to_string()), &module_so);
}

/// $NSS_BENCH_DIR (where fixtures go) and $NSS_BENCH_MODULE (the module measured).
fn bench_paths() -> (PathBuf, PathBuf) {
    let work = std::env::var_os("NSS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dircache-nss-bench"));
    let module_so = std::env::var_os("NSS_BENCH_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| fail("set NSS_BENCH_MODULE to the built libnss_dircache.so"));
    (work, module_so)
}

fn run(args: &[String]) {
    let sizes: Vec<u32> = if args.is_empty() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        args.iter().map(|a| a.replace(['_', ','], "").parse().unwrap_or_else(|e| fail(e))).collect()
    };
    let (work, module_so) = bench_paths();
    let have_nss_cache = Path::new(NSS_CACHE_SO).exists();
    let mut backends = vec![
        Backend { label: "glibc files", etc: "etc-files", via: "glibc".into() },
        Backend { label: "dircache (getpwnam_r)", etc: "etc-dircache", via: "glibc".into() },
        Backend {
            label: "dircache (direct)",
            etc: "etc-dircache",
            via: format!("direct:{}:dircache", module_so.display()),
        },
        Backend { label: "dircache (rlib, LRU off)", etc: "etc-dircache", via: "tables".into() },
    ];
    if have_nss_cache {
        backends.insert(
            1,
            Backend { label: "libnss-cache (getpwnam_r)", etc: "etc-cache", via: "glibc".into() },
        );
        backends.insert(
            2,
            Backend {
                label: "libnss-cache (direct)",
                etc: "etc-cache",
                via: format!("direct:{NSS_CACHE_SO}:cache"),
            },
        );
    } else {
        eprintln!(
            "nss_bench: {NSS_CACHE_SO} is missing (apt-get install libnss-cache): column skipped"
        );
    }
    let mut report = String::new();
    let mut all: Vec<(u32, Vec<Figures>)> = Vec::new();
    for n in &sizes {
        let dir = work.join(n.to_string());
        generate(*n, &dir, &module_so);
        disk_sizes(&mut report, &dir, *n);
        let firsts = interleaved_medians(backends.len() * 2, |i| {
            in_namespace(&dir, &backends[i / 2], ["name", "uid"][i % 2], "first", *n)
        });
        let mut rows = Vec::new();
        for (b, backend) in backends.iter().enumerate() {
            let mut figures = Figures::default();
            for (k, key) in ["name", "uid"].iter().enumerate() {
                figures.first[k] = firsts[b * 2 + k];
                let warm = in_namespace(&dir, backend, key, "warm", *n);
                let parts: Vec<f64> =
                    warm.split_whitespace().map(|p| p.parse().unwrap_or(f64::NAN)).collect();
                figures.median[k] = parts.first().copied().unwrap_or(f64::NAN);
                figures.p99[k] = parts.get(1).copied().unwrap_or(f64::NAN);
            }
            let repeat = in_namespace(&dir, backend, "name", "repeat", *n);
            figures.repeat =
                repeat.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(f64::NAN);
            if backend.via == "glibc" {
                figures.initgroups = Some(measure_initgroups(&dir, backend, *n));
            }
            eprintln!("nss_bench: {n} users, {} done", backend.label);
            rows.push(figures);
        }
        let _ = writeln!(report, "\n{n} users");
        let _ = writeln!(
            report,
            "| backend | by name: first | warm median / p99 | by uid: first | warm median / p99 | same name again |"
        );
        let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|");
        for (backend, f) in backends.iter().zip(&rows) {
            let _ = writeln!(
                report,
                "| {} | {} | {} / {} | {} | {} / {} | {} |",
                backend.label,
                micros(f.first[0]),
                micros(f.median[0]),
                micros(f.p99[0]),
                micros(f.first[1]),
                micros(f.median[1]),
                micros(f.p99[1]),
                micros(f.repeat)
            );
        }
        let _ = writeln!(
            report,
            "\ninitgroups (getgrouplist) of a user in {GROUPS} groups, {n} users:\n\
             | backend | first | warm median / p99 |\n|---|---:|---:|"
        );
        for (backend, f) in backends.iter().zip(&rows) {
            if let Some([first, median, p99]) = f.initgroups {
                let _ = writeln!(
                    report,
                    "| {} | {} | {} / {} |",
                    backend.label,
                    micros(first),
                    micros(median),
                    micros(p99)
                );
            }
        }
        all.push((*n, rows));
    }
    let dircache_row =
        backends.iter().position(|b| b.label == "dircache (getpwnam_r)").unwrap_or(0);
    let _ = writeln!(
        report,
        "\nRatios, warm median by name (other backend ÷ dircache, both through getpwnam_r):"
    );
    for (n, rows) in &all {
        let ours = &rows[dircache_row];
        let mut line = format!("  {n} users:");
        for (backend, f) in backends.iter().zip(rows) {
            if backend.via == "glibc" && backend.label != "dircache (getpwnam_r)" {
                let _ = write!(line, "  {} {:.1}×", backend.label, f.median[0] / ours.median[0]);
            }
        }
        report.push_str(&line);
        report.push('\n');
    }
    first_lookup_ratios(&mut report, &backends, &all);
    c_program_first_lookups(&mut report, &work, &sizes, have_nss_cache);
    if let (Some((small, first)), Some((large, last))) = (all.first(), all.last()) {
        let direct = backends.iter().position(|b| b.label == "dircache (direct)").unwrap_or(0);
        let tables = backends.iter().position(|b| b.via == "tables").unwrap_or(0);
        for (label, row) in
            [("getpwnam_r", dircache_row), ("direct", direct), ("rlib, LRU off", tables)]
        {
            let _ = writeln!(
                report,
                "dircache ({label}) warm median by name, {large} vs {small} users: {:.2}× (by uid {:.2}×)",
                last[row].median[0] / first[row].median[0],
                last[row].median[1] / first[row].median[1]
            );
        }
    }
    println!("{report}");
}

/// The first lookup of a fresh process, libnss-cache ÷ dircache for the same way of calling
/// (through getpwnam_r/getpwuid_r, and the module called directly): above 1× dircache is
/// faster. Issue 12 asks for ≥ 1× at every size.
fn first_lookup_ratios(report: &mut String, backends: &[Backend], all: &[(u32, Vec<Figures>)]) {
    let row = |label: &str| backends.iter().position(|b| b.label == label);
    let pairs = [
        ("getpwnam_r", row("libnss-cache (getpwnam_r)"), row("dircache (getpwnam_r)")),
        ("direct", row("libnss-cache (direct)"), row("dircache (direct)")),
    ];
    let _ = writeln!(
        report,
        "\nRatios, first lookup of a process (libnss-cache ÷ dircache, same way of calling):"
    );
    for (n, rows) in all {
        let mut line = format!("  {n} users:");
        for (how, theirs, ours) in pairs {
            let (Some(theirs), Some(ours)) = (theirs, ours) else { continue };
            let (t, o) = (&rows[theirs], &rows[ours]);
            let _ = write!(
                line,
                "  {how}: by name {:.2}×, by uid {:.2}×",
                t.first[0] / o.first[0],
                t.first[1] / o.first[1]
            );
        }
        report.push_str(&line);
        report.push('\n');
    }
}

/// A C program's first lookup through glibc (nsswitch.conf read, `files` first, the module
/// loaded with dlopen, then asked): what `ls -l`, `id` or sshd's children pay. Unlike this
/// Rust program, a C program has no libgcc_s loaded already.
const C_FIRST_LOOKUP: &str = r#"
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
    struct passwd pw, *result = NULL;
    char buf[4096];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = strcmp(argv[1], "uid") == 0
        ? getpwuid_r((uid_t)strtoul(argv[2], NULL, 10), &pw, buf, sizeof buf, &result)
        : getpwnam_r(argv[2], &pw, buf, sizeof buf, &result);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (rc != 0 || result == NULL) { fprintf(stderr, "%s not found\n", argv[2]); return 1; }
    printf("%ld\n", (end.tv_sec - start.tv_sec) * 1000000000L + (end.tv_nsec - start.tv_nsec));
    return 0;
}
"#;

fn c_program_first_lookups(report: &mut String, work: &Path, sizes: &[u32], have_nss_cache: bool) {
    let source = work.join("first-lookup.c");
    let program = work.join("first-lookup");
    fs::write(&source, C_FIRST_LOOKUP).unwrap_or_else(|e| fail(e));
    run_cmd(Command::new("cc").arg("-O2").arg(&source).arg("-o").arg(&program));
    let mut rows = vec![("glibc files", "etc-files"), ("dircache", "etc-dircache")];
    if have_nss_cache {
        rows.insert(1, ("libnss-cache", "etc-cache"));
    }
    let _ = writeln!(
        report,
        "\nFirst lookup in a C program (getpwnam_r / getpwuid_r; glibc reads nsswitch.conf, asks \
         `files`, loads the module; median of {FIRST_RUNS} processes):\n\
         | users | {} |\n|---|{}",
        rows.iter()
            .map(|(label, _)| format!("{label}: by name / by uid"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(rows.len())
    );
    let mut ratios = String::new();
    for n in sizes {
        let dir = work.join(n.to_string());
        let i = n / 3 + 7 % n;
        let (name, uid) = (name_of(i), uid_of(i).to_string());
        let mut line = format!("| {n} |");
        let keys = [("name", &name), ("uid", &uid)];
        let firsts = interleaved_medians(rows.len() * 2, |i| {
            let (key, value) = keys[i % 2];
            let argv = [program.as_os_str(), key.as_ref(), value.as_ref()];
            run_in_namespace(&dir, rows[i / 2].1, &argv)
        });
        let mut medians = Vec::new();
        for pair in firsts.chunks(2) {
            let _ = write!(line, " {} / {} |", micros(pair[0]), micros(pair[1]));
            medians.push([pair[0], pair[1]]);
        }
        report.push_str(&line);
        report.push('\n');
        if let (true, Some(theirs), Some(ours)) = (have_nss_cache, medians.get(1), medians.get(2)) {
            let _ = writeln!(
                ratios,
                "  {n} users, libnss-cache ÷ dircache: by name {:.2}×, by uid {:.2}×",
                theirs[0] / ours[0],
                theirs[1] / ours[1]
            );
        }
    }
    report.push_str(&ratios);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => run(&args[2..]),
        Some("measure") => measure(&args[2..]),
        Some("generate") => generate_only(&args[2..]),
        _ => fail(
            "usage: nss_bench run [SIZES...] | nss_bench measure VIA KEY MODE N | nss_bench generate N",
        ),
    }
}
