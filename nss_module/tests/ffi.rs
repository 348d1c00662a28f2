//! The exported functions called directly through the rlib, as glibc calls them: buffers,
//! errno, ERANGE, NOTFOUND, corrupt and missing caches, null pointers, a cache swapped in
//! the middle of an enumeration, initgroups_dyn's array, and many threads at once. The cache
//! files are mapped with mmap here, as in every process that loads the module.
//!
//! The module keeps per-process state and reads its paths from the environment, so the
//! tests of this file run one at a time (`SERIAL`), each pointing the variables at its own
//! cache.

use dircache::user::{sample_group as group, sample_member as user};
use std::ffi::{CStr, CString};
use std::fs;
use std::os::raw::{c_char, c_int, c_long};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dircache::cache::{CacheDir, Db};
use dircache::user::{Group, User};
use nss_dircache::*;

const SUCCESS: c_int = 1;
const NOTFOUND: c_int = 0;
const UNAVAIL: c_int = -1;
const TRYAGAIN: c_int = -2;

static SERIAL: Mutex<()> = Mutex::new(());

type Answer = (c_int, c_int, Option<String>);

fn db(users: Vec<User>, groups: Vec<Group>) -> Db {
    Db { users, groups, ..Db::default() }
}

fn standard_db() -> Db {
    db(
        vec![
            user("alice", 200_001, &["g1", "g2", "g3"]),
            user("bob", 200_002, &["g1"]),
            user("root", 200_003, &[]),
        ],
        vec![
            group("g1", 300_001, &["alice", "bob"]),
            group("g2", 300_002, &["alice"]),
            group("g3", 300_003, &["alice"]),
        ],
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    cache: CacheDir,
    _serial: MutexGuard<'static, ()>,
}

impl Fixture {
    fn new() -> Fixture {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        fs::write(dir.path().join("group"), "root:x:0:\n").unwrap();
        let cache = CacheDir::new(dir.path().join("cache"));
        std::env::set_var("DIRCACHE_CACHE_DIR", cache.root());
        std::env::set_var("DIRCACHE_LOCAL_PASSWD", dir.path().join("passwd"));
        std::env::set_var("DIRCACHE_LOCAL_GROUP", dir.path().join("group"));
        Fixture { dir, cache, _serial: serial }
    }

    fn commit(&self, db: &Db) {
        let lock = self.cache.lock(Duration::from_secs(5)).unwrap();
        self.cache.commit(&lock, db, 1).unwrap();
    }
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn text(ptr: *const c_char) -> String {
    assert!(!ptr.is_null());
    // SAFETY: the module set this pointer to a NUL-terminated string inside our buffer.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

fn empty_passwd() -> libc::passwd {
    libc::passwd {
        pw_name: ptr::null_mut(),
        pw_passwd: ptr::null_mut(),
        pw_uid: 7,
        pw_gid: 7,
        pw_gecos: ptr::null_mut(),
        pw_dir: ptr::null_mut(),
        pw_shell: ptr::null_mut(),
    }
}

fn empty_group() -> libc::group {
    libc::group {
        gr_name: ptr::null_mut(),
        gr_passwd: ptr::null_mut(),
        gr_gid: 7,
        gr_mem: ptr::null_mut(),
    }
}

fn passwd_line(pw: &libc::passwd) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}:{}",
        text(pw.pw_name),
        text(pw.pw_passwd),
        pw.pw_uid,
        pw.pw_gid,
        text(pw.pw_gecos),
        text(pw.pw_dir),
        text(pw.pw_shell)
    )
}

fn group_line(gr: &libc::group) -> String {
    let mut members = Vec::new();
    let mut at = gr.gr_mem;
    assert_eq!(at as usize % std::mem::align_of::<*mut c_char>(), 0, "member array aligned");
    loop {
        // SAFETY: gr_mem is a NULL-terminated array of string pointers inside our buffer.
        let member = unsafe { *at };
        if member.is_null() {
            break;
        }
        members.push(text(member));
        // SAFETY: not yet at the terminating NULL, so the next slot exists.
        at = unsafe { at.add(1) };
    }
    format!("{}:{}:{}:{}", text(gr.gr_name), text(gr.gr_passwd), gr.gr_gid, members.join(","))
}

/// getpwnam_r with a buffer of `len` bytes: (status, errno, "name:x:uid:gid:gecos:dir:shell").
fn getpwnam(name: &str, len: usize) -> Answer {
    let mut pw = empty_passwd();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    let name = c(name);
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status = unsafe {
        _nss_dircache_getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr(), len, &mut errno)
    };
    (status, errno, (status == SUCCESS).then(|| passwd_line(&pw)))
}

fn getpwuid(uid: u32, len: usize) -> Answer {
    let mut pw = empty_passwd();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status =
        unsafe { _nss_dircache_getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), len, &mut errno) };
    (status, errno, (status == SUCCESS).then(|| passwd_line(&pw)))
}

fn getgrnam(name: &str, len: usize) -> Answer {
    let mut gr = empty_group();
    // u64 storage, then an odd offset: the member array must be aligned by the module.
    let mut storage = vec![0u64; len / 8 + 2];
    let buf = storage.as_mut_ptr().cast::<c_char>().wrapping_add(1);
    let mut errno = 0;
    let name = c(name);
    // SAFETY: `buf` has at least `len` bytes of the storage after it.
    let status = unsafe { _nss_dircache_getgrnam_r(name.as_ptr(), &mut gr, buf, len, &mut errno) };
    (status, errno, (status == SUCCESS).then(|| group_line(&gr)))
}

fn getgrgid(gid: u32, len: usize) -> Answer {
    let mut gr = empty_group();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status =
        unsafe { _nss_dircache_getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), len, &mut errno) };
    (status, errno, (status == SUCCESS).then(|| group_line(&gr)))
}

fn next_user(len: usize) -> Answer {
    let mut pw = empty_passwd();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status = unsafe { _nss_dircache_getpwent_r(&mut pw, buf.as_mut_ptr(), len, &mut errno) };
    (status, errno, (status == SUCCESS).then(|| passwd_line(&pw)))
}

fn next_group(len: usize) -> Answer {
    let mut gr = empty_group();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status = unsafe { _nss_dircache_getgrent_r(&mut gr, buf.as_mut_ptr(), len, &mut errno) };
    (status, errno, (status == SUCCESS).then(|| group_line(&gr)))
}

#[test]
fn lookups_fill_the_callers_struct_and_buffer() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let expected = "alice:x:200001:200001:alice Example:/home/alice:/bin/bash";
    assert_eq!(getpwnam("alice", 1024), (SUCCESS, 0, Some(expected.into())));
    assert_eq!(getpwuid(200_001, 1024), (SUCCESS, 0, Some(expected.into())));
    assert_eq!(getgrnam("g1", 1024), (SUCCESS, 0, Some("g1:x:300001:alice,bob".into())));
    assert_eq!(getgrgid(200_002, 1024), (SUCCESS, 0, Some("bob:x:200002:".into())));
}

#[test]
fn unknown_names_and_ids_are_notfound_with_enoent() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    assert_eq!(getpwnam("nobody", 1024), (NOTFOUND, libc::ENOENT, None));
    assert_eq!(getpwuid(299_999, 1024), (NOTFOUND, libc::ENOENT, None));
    assert_eq!(getgrnam("nogroup", 1024), (NOTFOUND, libc::ENOENT, None));
    assert_eq!(getgrgid(399_999, 1024), (NOTFOUND, libc::ENOENT, None));
    // The directory's root is never answered for: root is local.
    assert_eq!(getpwnam("root", 1024), (NOTFOUND, libc::ENOENT, None));
    assert_eq!(getpwuid(200_003, 1024), (NOTFOUND, libc::ENOENT, None));
    assert_eq!(getpwuid(0, 1024), (NOTFOUND, libc::ENOENT, None));
}

#[test]
fn a_short_buffer_is_tryagain_with_erange_until_it_fits() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let line = "alice:x:200001:200001:alice Example:/home/alice:/bin/bash";
    let needed = ["alice", "x", "alice Example", "/home/alice", "/bin/bash"]
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>();
    for len in 0..needed {
        assert_eq!(getpwnam("alice", len), (TRYAGAIN, libc::ERANGE, None), "{len} bytes");
    }
    assert_eq!(getpwnam("alice", needed), (SUCCESS, 0, Some(line.into())));
    // Groups: strings, alignment padding and the pointer array.
    let strings = ["g1", "x", "alice", "bob"].iter().map(|s| s.len() + 1).sum::<usize>();
    let mut first_fit = None;
    for len in 0..128 {
        match getgrnam("g1", len) {
            (TRYAGAIN, libc::ERANGE, None) => assert!(first_fit.is_none(), "{len}"),
            (SUCCESS, 0, Some(line)) => {
                assert_eq!(line, "g1:x:300001:alice,bob");
                first_fit.get_or_insert(len);
            }
            other => panic!("{len}: {other:?}"),
        }
    }
    let fit = first_fit.unwrap();
    let pointers = 3 * std::mem::size_of::<usize>();
    assert!((strings + pointers..strings + pointers + 8).contains(&fit), "{fit}");
}

#[test]
fn a_missing_or_corrupt_cache_is_unavailable() {
    let fx = Fixture::new();
    assert_eq!(getpwnam("alice", 1024), (UNAVAIL, libc::ENOENT, None));
    assert_eq!(getgrgid(300_001, 1024), (UNAVAIL, libc::ENOENT, None));
    assert_eq!(_nss_dircache_setpwent(0), UNAVAIL);
    fx.commit(&standard_db());
    assert_eq!(getpwnam("alice", 1024).0, SUCCESS);
    // Replaced by garbage through a new file (as a broken writer would publish it).
    let current = fx.cache.current_dir().unwrap().unwrap();
    let bad = current.join("users.public.new");
    fs::write(&bad, b"DIRCACHE but not really").unwrap();
    fs::rename(&bad, current.join("users.public")).unwrap();
    assert_eq!(getpwnam("alice", 1024), (UNAVAIL, libc::EIO, None));
    assert_eq!(getgrnam("g1", 1024), (UNAVAIL, libc::EIO, None));
    assert_eq!(_nss_dircache_setpwent(0), UNAVAIL);
    assert_eq!(next_user(1024), (UNAVAIL, libc::EIO, None));
    fx.commit(&standard_db());
    assert_eq!(getpwnam("alice", 1024).0, SUCCESS);
}

#[test]
fn null_pointers_are_unavailable_and_untouched() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let name = c("alice");
    let mut pw = empty_passwd();
    let mut gr = empty_group();
    let mut buf = vec![0 as c_char; 1024];
    let b = buf.as_mut_ptr();
    let mut errno = 0;
    // SAFETY: the non-null pointers are valid; the null ones must not be touched.
    let results = unsafe {
        [
            _nss_dircache_getpwnam_r(ptr::null(), &mut pw, b, 1024, &mut errno),
            _nss_dircache_getpwnam_r(name.as_ptr(), ptr::null_mut(), b, 1024, &mut errno),
            _nss_dircache_getpwnam_r(name.as_ptr(), &mut pw, ptr::null_mut(), 1024, &mut errno),
            _nss_dircache_getpwnam_r(name.as_ptr(), &mut pw, b, 1024, ptr::null_mut()),
            _nss_dircache_getpwuid_r(200_001, &mut pw, b, 1024, ptr::null_mut()),
            _nss_dircache_getpwent_r(ptr::null_mut(), b, 1024, &mut errno),
            _nss_dircache_getgrnam_r(ptr::null(), &mut gr, b, 1024, &mut errno),
            _nss_dircache_getgrgid_r(300_001, &mut gr, ptr::null_mut(), 1024, &mut errno),
            _nss_dircache_getgrent_r(&mut gr, b, 1024, ptr::null_mut()),
        ]
    };
    assert_eq!(results, [UNAVAIL; 9]);
    assert_eq!(errno, libc::EINVAL);
    let mut start: c_long = 0;
    let mut size: c_long = 0;
    let mut groups: *mut libc::gid_t = ptr::null_mut();
    let (s, z, g) =
        (&mut start as *mut c_long, &mut size as *mut c_long, &mut groups as *mut *mut libc::gid_t);
    for (s, z, g, n) in [
        (ptr::null_mut(), z, g, name.as_ptr()),
        (s, ptr::null_mut(), g, name.as_ptr()),
        (s, z, ptr::null_mut(), name.as_ptr()),
        (s, z, g, ptr::null()),
    ] {
        // SAFETY: as above.
        let status = unsafe { _nss_dircache_initgroups_dyn(n, 0, s, z, g, 0, &mut errno) };
        assert_eq!(status, UNAVAIL);
    }
    assert!(pw.pw_name.is_null() && pw.pw_uid == 7, "the passwd struct was not touched");
    assert!(gr.gr_name.is_null() && gr.gr_gid == 7, "the group struct was not touched");
    assert!(groups.is_null() && start == 0 && size == 0);
}

#[test]
fn enumeration_keeps_its_generation_when_the_cache_is_swapped_midway() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    assert_eq!(_nss_dircache_setpwent(1), SUCCESS);
    assert_eq!(_nss_dircache_setgrent(1), SUCCESS);
    let alice = "alice:x:200001:200001:alice Example:/home/alice:/bin/bash";
    assert_eq!(next_user(1024).2.as_deref(), Some(alice));
    assert_eq!(next_group(1024).2.as_deref(), Some("g1:x:300001:alice,bob"));
    // A short buffer in the middle: TRYAGAIN, and the same entry comes next.
    assert_eq!(next_user(10), (TRYAGAIN, libc::ERANGE, None));
    // Two syncs: the generation being walked is deleted from the directory meanwhile.
    let mut new = standard_db();
    new.users.retain(|u| u.name != "bob");
    new.users.push(user("carl", 200_004, &[]));
    fx.commit(&new);
    fx.commit(&new);
    assert_eq!(getpwnam("carl", 1024).0, SUCCESS, "lookups see the new generation");
    assert_eq!(getpwnam("bob", 1024).0, NOTFOUND);
    let mut rest = Vec::new();
    loop {
        match next_user(1024) {
            (SUCCESS, _, Some(line)) => rest.push(line),
            (NOTFOUND, libc::ENOENT, None) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rest, ["bob:x:200002:200002:bob Example:/home/bob:/bin/bash"]);
    let mut groups = Vec::new();
    while let (SUCCESS, _, Some(line)) = next_group(1024) {
        groups.push(line);
    }
    assert_eq!(
        groups,
        ["g2:x:300002:alice", "g3:x:300003:alice", "alice:x:200001:", "bob:x:200002:"]
    );
    assert_eq!(_nss_dircache_endpwent(), SUCCESS);
    assert_eq!(_nss_dircache_endgrent(), SUCCESS);
    // The next enumeration walks the new generation.
    assert_eq!(_nss_dircache_setpwent(0), SUCCESS);
    let mut names = Vec::new();
    while let (SUCCESS, _, Some(line)) = next_user(1024) {
        names.push(line.split(':').next().unwrap().to_string());
    }
    assert_eq!(names, ["alice", "carl"]);
    assert_eq!(_nss_dircache_endpwent(), SUCCESS);
}

/// initgroups_dyn with glibc's malloc'ed array: (status, errno, gids, size).
fn initgroups(
    user: &str,
    primary: u32,
    start: &[u32],
    size: usize,
    limit: c_long,
) -> (c_int, c_int, Vec<u32>, c_long) {
    let bytes = size.max(1) * std::mem::size_of::<libc::gid_t>();
    // SAFETY: a fresh malloc'ed array, as glibc passes; freed below.
    let mut groups = unsafe { libc::malloc(bytes) }.cast::<libc::gid_t>();
    assert!(!groups.is_null());
    for (i, gid) in start.iter().enumerate() {
        // SAFETY: i < start.len() <= size.
        unsafe { *groups.add(i) = *gid };
    }
    let mut used = start.len() as c_long;
    let mut capacity = size as c_long;
    let mut errno = 0;
    let name = c(user);
    // SAFETY: every pointer is valid; the module may realloc `groups`.
    let status = unsafe {
        _nss_dircache_initgroups_dyn(
            name.as_ptr(),
            primary,
            &mut used,
            &mut capacity,
            &mut groups,
            limit,
            &mut errno,
        )
    };
    assert!(used <= capacity);
    // SAFETY: `used` entries are initialized and within the (possibly reallocated) array.
    let gids = unsafe { std::slice::from_raw_parts(groups, used as usize) }.to_vec();
    // SAFETY: the array is ours again, allocated by malloc/realloc.
    unsafe { libc::free(groups.cast()) };
    (status, errno, gids, capacity)
}

#[test]
fn initgroups_dyn_appends_the_directory_groups_and_grows_the_array() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let all = vec![200_001, 300_001, 300_002, 300_003];
    // Room for everything.
    let (status, _, gids, size) = initgroups("alice", 200_001, &[200_001], 8, 0);
    assert_eq!((status, gids, size), (SUCCESS, all.clone(), 8));
    // A full array is reallocated (doubled).
    let (status, _, gids, size) = initgroups("alice", 200_001, &[200_001], 1, -1);
    assert_eq!((status, gids, size), (SUCCESS, all, 4));
    // The `group` argument and groups already present are skipped.
    let (_, _, gids, _) = initgroups("alice", 300_002, &[300_001], 4, 0);
    assert_eq!(gids, [300_001, 300_003]);
    // Never past the limit.
    let (status, _, gids, size) = initgroups("alice", 200_001, &[200_001], 1, 2);
    assert_eq!((status, gids, size), (SUCCESS, vec![200_001, 300_001], 2));
    // Unknown and local users.
    let (status, errno, gids, _) = initgroups("nobody", 1, &[1], 4, 0);
    assert_eq!((status, errno, gids), (NOTFOUND, libc::ENOENT, vec![1]));
    assert_eq!(initgroups("root", 0, &[0], 4, 0).0, NOTFOUND);
}

#[test]
fn a_cache_swapped_under_a_long_running_process_is_picked_up() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let alice = "alice:x:200001:200001:alice Example:/home/alice:/bin/bash";
    assert_eq!(getpwnam("alice", 1024).2.unwrap(), alice);
    let mut changed = standard_db();
    changed.users[0].shell = "/bin/zsh".into();
    fx.commit(&changed);
    assert!(getpwnam("alice", 1024).2.unwrap().ends_with(":/bin/zsh"));
    assert!(getpwuid(200_001, 1024).2.unwrap().ends_with(":/bin/zsh"));
    // Local accounts change too: a new local `bob` hides the directory's (the local files
    // are checked once a second).
    assert_eq!(getpwnam("bob", 1024).0, SUCCESS);
    let passwd = "root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n";
    fs::write(fx.dir.path().join("passwd"), passwd).unwrap();
    std::thread::sleep(dircache::nss::LOCAL_RECHECK + Duration::from_millis(100));
    assert_eq!(getpwnam("bob", 1024).0, NOTFOUND);
    assert_eq!(getpwuid(200_002, 1024).0, NOTFOUND);
}

#[test]
fn many_threads_look_up_while_syncs_swap_the_cache() {
    let fx = Fixture::new();
    let mut users: Vec<User> =
        (0..200).map(|i| user(&format!("u{i}"), 200_000 + i, &["g1"])).collect();
    fx.commit(&db(users.clone(), vec![group("g1", 300_001, &[])]));
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4u32)
            .map(|t| {
                scope.spawn(move || {
                    for i in 0..2000u32 {
                        let n = (i * 7 + t) % 200;
                        let (status, _, line) = getpwuid(200_000 + n, 256);
                        assert_eq!(status, SUCCESS);
                        let line = line.unwrap();
                        assert!(line.starts_with(&format!("u{n}:x:{}:", 200_000 + n)), "{line}");
                        assert!(line.ends_with(":/bin/bash") || line.ends_with(":/bin/sh"));
                        assert_eq!(getgrnam("g1", 256).0, SUCCESS);
                    }
                })
            })
            .collect();
        for round in 0..15 {
            for u in &mut users {
                u.shell = if round % 2 == 0 { "/bin/sh" } else { "/bin/bash" }.into();
            }
            fx.commit(&db(users.clone(), vec![group("g1", 300_001, &[])]));
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

#[test]
fn a_fork_while_another_thread_looks_up_leaves_the_child_a_working_module() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let fx = Fixture::new();
    fx.commit(&standard_db());
    assert_eq!(getpwnam("alice", 1024).0, SUCCESS);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(getpwuid(200_001, 1024).0, SUCCESS);
            }
        });
        for round in 0..100 {
            // SAFETY: the child only looks a user up through the module and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let ok = std::panic::catch_unwind(|| getpwnam("bob", 1024).0 == SUCCESS);
                // SAFETY: ends the child at once, without running the parent's destructors.
                unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
            }
            assert!(pid > 0, "fork failed");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut status = 0;
            loop {
                // SAFETY: our own child; `status` is a valid out-pointer.
                let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if done == pid {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    // SAFETY: our own child, stuck: kill and reap it before failing.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                    stop.store(true, Ordering::Relaxed);
                    panic!("round {round}: the child's lookup hung (a lock copied by fork)");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "round {round}");
        }
        stop.store(true, Ordering::Relaxed);
    });
}

fn empty_spwd() -> libc::spwd {
    libc::spwd {
        sp_namp: ptr::null_mut(),
        sp_pwdp: ptr::null_mut(),
        sp_lstchg: 0,
        sp_min: 0,
        sp_max: 0,
        sp_warn: 0,
        sp_inact: 0,
        sp_expire: 0,
        sp_flag: 0,
    }
}

/// getspnam_r with a buffer of `len` bytes: (status, errno, "name:pwd:lstchg:…:expire").
fn getspnam(name: &str, len: usize) -> Answer {
    let mut sp = empty_spwd();
    let mut buf = vec![0 as c_char; len];
    let mut errno = 0;
    let name = c(name);
    // SAFETY: every pointer is valid for the call, the buffer has `len` bytes.
    let status = unsafe {
        _nss_dircache_getspnam_r(name.as_ptr(), &mut sp, buf.as_mut_ptr(), len, &mut errno)
    };
    let line = (status == SUCCESS).then(|| {
        assert_eq!(sp.sp_flag, libc::c_ulong::MAX);
        format!(
            "{}:{}:{}:{}:{}:{}:{}:{}",
            text(sp.sp_namp),
            text(sp.sp_pwdp),
            sp.sp_lstchg,
            sp.sp_min,
            sp.sp_max,
            sp.sp_warn,
            sp.sp_inact,
            sp.sp_expire
        )
    });
    (status, errno, line)
}

#[test]
fn shadow_entries_fill_the_callers_struct_or_say_why_not() {
    let fx = Fixture::new();
    let mut db = standard_db();
    db.users[1].limits.expires_day = Some(20_818);
    fx.commit(&db);
    assert_eq!(getspnam("alice", 64), (SUCCESS, 0, Some("alice:!*:-1:-1:-1:-1:-1:-1".into())));
    assert_eq!(getspnam("BOB", 64), (SUCCESS, 0, Some("bob:!*:-1:-1:-1:-1:-1:20818".into())));
    // The local root wins; unknown names are not found.
    assert_eq!(getspnam("root", 64).0, NOTFOUND);
    assert_eq!(getspnam("nobody", 64), (NOTFOUND, libc::ENOENT, None));
    // "alice\0!*\0" is 9 bytes.
    assert_eq!(getspnam("alice", 8), (TRYAGAIN, libc::ERANGE, None));
    assert_eq!(getspnam("alice", 9).0, SUCCESS);

    let mut sp = empty_spwd();
    let mut buf = vec![0 as c_char; 64];
    let mut errno = 0;
    let name = c("alice");
    // SAFETY: the non-null pointers are valid; the null ones must not be touched.
    let results = unsafe {
        [
            _nss_dircache_getspnam_r(ptr::null(), &mut sp, buf.as_mut_ptr(), 64, &mut errno),
            _nss_dircache_getspnam_r(
                name.as_ptr(),
                ptr::null_mut(),
                buf.as_mut_ptr(),
                64,
                &mut errno,
            ),
            _nss_dircache_getspnam_r(name.as_ptr(), &mut sp, ptr::null_mut(), 64, &mut errno),
            _nss_dircache_getspent_r(&mut sp, buf.as_mut_ptr(), 64, ptr::null_mut()),
        ]
    };
    assert_eq!(results, [UNAVAIL; 4]);

    // The walk: every user, in uid order, independent of the passwd walk.
    assert_eq!(_nss_dircache_setspent(0), SUCCESS);
    assert_eq!(_nss_dircache_setpwent(0), SUCCESS);
    let mut names = Vec::new();
    loop {
        let mut sp = empty_spwd();
        // SAFETY: every pointer is valid for the call, the buffer has 64 bytes.
        let status = unsafe { _nss_dircache_getspent_r(&mut sp, buf.as_mut_ptr(), 64, &mut errno) };
        if status != SUCCESS {
            assert_eq!(status, NOTFOUND);
            break;
        }
        names.push(text(sp.sp_namp));
        let _ = next_user(1024);
    }
    assert_eq!(_nss_dircache_endspent(), SUCCESS);
    assert_eq!(_nss_dircache_endpwent(), SUCCESS);
    assert_eq!(names, ["alice", "bob"]);
}

/// The open files of this process under `dir`.
fn files_open_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

#[test]
fn no_cache_file_stays_open_after_a_call_returns() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let cache = fs::canonicalize(fx.cache.root()).unwrap();
    let open = || files_open_under(&cache);
    // The first call of each table reads through the file it opened: closed on return.
    assert_eq!(getpwnam("alice", 1024).0, SUCCESS);
    assert_eq!(open(), Vec::<std::path::PathBuf>::new(), "after getpwnam");
    // A walk keeps its generation's tables; a table it opens in a later call, after a sync
    // made another generation current, is closed too.
    assert_eq!(_nss_dircache_setgrent(1), SUCCESS);
    let mut swapped = standard_db();
    swapped.users.push(user("carol", 200_004, &[]));
    let lock = fx.cache.lock(Duration::from_secs(5)).unwrap();
    fx.cache.commit(&lock, &swapped, 2).unwrap();
    drop(lock);
    assert_eq!(getpwnam("carol", 1024).0, SUCCESS);
    assert_eq!(open(), Vec::<std::path::PathBuf>::new(), "after getpwnam on a new generation");
    assert_eq!(next_group(1024).0, SUCCESS);
    assert_eq!(open(), Vec::<std::path::PathBuf>::new(), "after getgrent");
    assert_eq!(getgrgid(300_002, 1024).0, SUCCESS);
    assert_eq!(open(), Vec::<std::path::PathBuf>::new(), "after getgrgid");
    // Later calls read the mappings.
    assert_eq!(getpwnam("bob", 1024).2.as_deref(), getpwuid(200_002, 1024).2.as_deref());
    assert_eq!(next_group(1024).0, SUCCESS);
    _nss_dircache_endgrent();
}
