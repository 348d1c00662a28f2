//! `libnss_dircache.so.2`: the NSS provider (nsswitch word `dircache`). Every decision is
//! made in `dircache::nss`; this file only converts C arguments, maps the cache files
//! (mmap), writes entries into the caller's buffer and sends log lines to syslog.
//!
//! One `dircache::nss::Nss` per process lives behind a mutex (NSS calls come from any
//! thread). Every exported function runs inside `catch_unwind`: a panic becomes UNAVAIL,
//! never an unwind into sshd or login. Null pointers from the caller give UNAVAIL without
//! being touched.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use dircache::cache::format::ByteSource;
use dircache::cache::reader::TableBytes;
use dircache::nss::{
    self, add_groups, pack_group, pack_passwd, pack_shadow, Buffer, GroupArray, GroupLayout,
    Mapper, Nss, PasswdLayout, Reply, ShadowLayout,
};
use libc::{gid_t, group, passwd, size_t, spwd, uid_t};

extern "C" {
    // The process's environment: a NULL-terminated array of `NAME=value` strings.
    static environ: *const *const c_char;
    // What `pthread_atfork` (libc_nonshared.a) calls, with this library's DSO handle so
    // that glibc drops the handlers if the library is unloaded. Called directly: the static
    // `pthread_atfork` reaches it through this library's PLT, a page of its own that a
    // process's first lookup would otherwise fault in for this one call (issue 12 §2).
    fn __register_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
        dso_handle: *const c_void,
    ) -> c_int;
    // Defined by the C runtime's crtbeginS.o in every shared library: its identity.
    static __dso_handle: c_void;
}

#[path = "../../ffi_support/no_cancel.rs"]
mod no_cancel;
use no_cancel::NoCancel;

mod unserved;

static STATE: Mutex<Option<Nss<MmapMapper>>> = Mutex::new(None);

/// A cache file: a read-only private mapping of all of it, unmapped when dropped, and until
/// the end of the call that opened it, the open file. That call's first reads (the header,
/// an index slot or two, a record: a few hundred bytes) go through the file with `pread`:
/// each page of a fresh mapping costs a page fault, more than the read (issue 12 §2,
/// README PERFORMANCE). A call that reads more (`initgroups`, thousands of group records)
/// goes on in the mapping after [`OPENING_CALL_PREADS`]. The file is closed at the end of
/// that call ([`TableBytes::end_of_call`]), as a program may close or reuse any descriptor
/// between its calls; from then on the mapping is read.
pub struct Mapping {
    ptr: *mut c_void,
    len: usize,
    /// Whether `file` may still hold the open file: checked without the lock by every read.
    reading_file: AtomicBool,
    preads: AtomicUsize,
    file: Mutex<Option<File>>,
}

/// Reads through the file in the call that opened it; a lookup makes four or five.
const OPENING_CALL_PREADS: usize = 8;

// SAFETY: the mapping is read-only and owned by this value alone; reading it from several
// threads is fine and nothing in it is tied to the thread that made it. The file is behind
// a mutex.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access only ever reads the mapping, and the file is locked.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes made by `map` and unmapped
        // only in `drop`. Generation files are immutable once published (writers build a new
        // generation and swap a symlink), so the bytes do not change under the slice.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    fn file(&self) -> MutexGuard<'_, Option<File>> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ByteSource for Mapping {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        // Past the mapped length both ways of reading fail alike, from the mapping: a file
        // that grew since it was mapped is never read beyond what was checked.
        let within = offset.checked_add(buf.len() as u64).is_some_and(|end| end <= self.len as u64);
        if within
            && self.reading_file.load(Ordering::Acquire)
            && self.preads.fetch_add(1, Ordering::Relaxed) < OPENING_CALL_PREADS
        {
            if let Some(file) = self.file().as_ref() {
                return FileExt::read_exact_at(file, buf, offset);
            }
        }
        ByteSource::read_exact_at(self.bytes(), buf, offset)
    }
}

impl TableBytes for Mapping {
    fn end_of_call(&self) {
        if self.reading_file.swap(false, Ordering::AcqRel) {
            drop(self.file().take());
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: `ptr`/`len` are exactly what mmap returned and nothing borrows the
            // mapping any more (borrows of `self` have ended).
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// Maps cache files with mmap: a lookup touches a few pages, never reads the whole file.
#[derive(Debug, Default, Clone, Copy)]
pub struct MmapMapper;

impl Mapper for MmapMapper {
    type Map = Mapping;

    fn map(&self, file: File, len: u64) -> io::Result<Mapping> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut ptr = ptr::null_mut();
        if len != 0 {
            // SAFETY: a fresh read-only private mapping of an open file descriptor; the
            // kernel picks the address. The mapping stays valid after the fd is closed.
            // `mmap64`, the spelling Rust's standard library imports: one symbol fewer for
            // glibc to resolve when it loads the module (README PERFORMANCE).
            ptr = unsafe {
                libc::mmap64(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Mapping {
            ptr,
            len,
            reading_file: AtomicBool::new(true),
            preads: AtomicUsize::new(0),
            file: Mutex::new(Some(file)),
        })
    }

    fn effective_uid(&self) -> Option<u32> {
        // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
        Some(unsafe { libc::geteuid() })
    }
}

/// One syslog line (authpriv, error), passed as an argument to "%s": never a format.
fn syslog_line(message: &str) {
    let line = format!("nss_dircache: {message}").replace('\0', "?");
    let Ok(line) = CString::new(line) else {
        return;
    };
    // SAFETY: both arguments are valid NUL-terminated strings for the duration of the call;
    // the format consumes exactly one string argument.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | libc::LOG_ERR, c"%s".as_ptr(), line.as_ptr()) };
}

/// The values of `nss::ENV_VARS`, read as `secure_getenv` would (none in setuid or setgid
/// programs), in one pass over the environment (`nss::env_values`).
fn env_vars() -> [Option<&'static [u8]>; 3] {
    if secure_mode() {
        return [None; 3];
    }
    // SAFETY: `environ` is null or a NULL-terminated array of NUL-terminated strings, which
    // this process does not change while an NSS call runs (what `getenv` assumes too); the
    // slices made from it are only read during this call.
    let mut next = unsafe { environ };
    let entries = std::iter::from_fn(move || {
        if next.is_null() {
            return None;
        }
        // SAFETY: `next` points into the array, at most at its terminating null.
        let entry = unsafe { *next };
        if entry.is_null() {
            return None;
        }
        // SAFETY: `entry` was not the terminator, so the array goes on after it.
        next = unsafe { next.add(1) };
        Some(entry)
    });
    nss::env_values(entries.filter(|&entry| starts_with_env_prefix(entry)).map(|entry| {
        // SAFETY: a NUL-terminated string of the environment (see above).
        unsafe { CStr::from_ptr(entry) }.to_bytes()
    }))
}

/// Whether a C string begins with `nss::ENV_PREFIX`, read byte by byte up to the first
/// difference: most entries of the environment are passed over without measuring them.
fn starts_with_env_prefix(entry: *const c_char) -> bool {
    nss::ENV_PREFIX.iter().enumerate().all(|(at, &expected)| {
        // SAFETY: every byte before `at` matched a byte of the prefix, none of which is
        // NUL, so the string goes on at least to `at`.
        let byte = unsafe { *entry.add(at) };
        byte as u8 == expected
    })
}

/// Whether this process runs setuid or setgid (the auxiliary vector's `AT_SECURE`, which
/// `secure_getenv` follows): asked once, as it cannot change.
fn secure_mode() -> bool {
    const UNKNOWN: u8 = 0;
    const SECURE: u8 = 1;
    const NOT_SECURE: u8 = 2;
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);
    match MODE.load(Ordering::Relaxed) {
        UNKNOWN => {
            // SAFETY: getauxval only reads the auxiliary vector; it touches no memory of ours.
            let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
            MODE.store(if secure { SECURE } else { NOT_SECURE }, Ordering::Relaxed);
            secure
        }
        mode => mode == SECURE,
    }
}

type StateGuard = MutexGuard<'static, Option<Nss<MmapMapper>>>;

thread_local! {
    /// The state's lock, held by the forking thread from just before `fork()` to just after.
    static FORK_GUARD: RefCell<Option<StateGuard>> = const { RefCell::new(None) };
}

/// Not a `Once`: a fork while another thread is inside `call_once` would leave the child's
/// copy running forever, and its first lookup waiting for it.
static ATFORK_REGISTERED: AtomicBool = AtomicBool::new(false);

/// `fork()` in a threaded process copies the mutex as it is: if another thread held it, the
/// child's first lookup would wait forever. The forking thread therefore takes the lock before
/// the fork and both sides release it after (the child's copy is then free).
unsafe extern "C" fn before_fork() {
    let _ = catch_unwind(|| {
        // The thread-local is set up (which may register its destructor under glibc's
        // loader lock) before the state's lock is taken, never while holding it: a dlopen
        // whose constructor looks up a user holds the loader lock and waits for ours.
        let _ = FORK_GUARD.try_with(|slot| *slot.borrow_mut() = Some(state()));
    });
}

unsafe extern "C" fn after_fork() {
    let _ = catch_unwind(|| {
        let _ = FORK_GUARD.try_with(|slot| slot.borrow_mut().take());
    });
}

fn register_fork_handlers() {
    // The first thread registers; the others go on without waiting for it.
    if ATFORK_REGISTERED.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    {
        // SAFETY: registers two functions of this library that never unwind (catch_unwind),
        // under this library's DSO handle. `pthread_atfork` passes the value of
        // `__dso_handle`, which in a shared object is its own address: the same handle.
        // glibc removes the handlers if the library is ever unloaded.
        unsafe {
            let handle = ptr::addr_of!(__dso_handle);
            __register_atfork(Some(before_fork), Some(after_fork), Some(after_fork), handle)
        };
    }
}

fn state() -> StateGuard {
    STATE.lock().unwrap_or_else(|poisoned| {
        // A panic in an earlier call: start over with fresh state.
        STATE.clear_poison();
        let mut guard = poisoned.into_inner();
        *guard = None;
        guard
    })
}

/// The state locked for one call; the call's end is signalled to it
/// ([`Nss::end_of_call`]) when dropped, a panic's unwinding included, before the lock is
/// released.
struct Call(StateGuard);

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(nss) = self.0.as_ref() {
            nss.end_of_call();
        }
    }
}

/// Runs `f` on the per-process state, configured from the environment.
fn with_nss<R>(f: impl FnOnce(&mut Nss<MmapMapper>) -> R) -> R {
    let vars = env_vars();
    register_fork_handlers();
    let mut call = Call(state());
    let nss = call.0.get_or_insert_with(|| Nss::from_vars(MmapMapper, vars, Box::new(syslog_line)));
    nss.configure(vars);
    f(nss)
}

/// Runs an exported function's body: a panic becomes UNAVAIL; the errno of the reply goes
/// to `*errnop`. A null `errnop` is UNAVAIL at once.
fn run(errnop: *mut c_int, body: impl FnOnce() -> Reply<()>) -> c_int {
    if errnop.is_null() {
        return nss::NSS_STATUS_UNAVAIL;
    }
    let _no_cancel = NoCancel::new();
    let reply = catch_unwind(AssertUnwindSafe(body)).unwrap_or(Reply::Unavailable(libc::EIO));
    if let Some(errno) = reply.errno() {
        // SAFETY: `errnop` is non-null and points to the caller's errno slot (NSS contract).
        unsafe { *errnop = errno };
    }
    reply.status()
}

/// For functions without `errnop`.
fn run_status(body: impl FnOnce() -> Reply<()>) -> c_int {
    let _no_cancel = NoCancel::new();
    catch_unwind(AssertUnwindSafe(body)).map_or(nss::NSS_STATUS_UNAVAIL, |reply| reply.status())
}

/// The caller's buffer, written through raw pointers only within its length.
struct RawBuffer {
    ptr: *mut u8,
    len: usize,
}

impl RawBuffer {
    fn new(ptr: *mut c_char, len: size_t) -> Option<RawBuffer> {
        (!ptr.is_null() && isize::try_from(len).is_ok())
            .then_some(RawBuffer { ptr: ptr.cast(), len })
    }

    fn base(&self) -> usize {
        self.ptr as usize
    }

    fn at(&self, offset: usize) -> *mut c_char {
        self.ptr.wrapping_add(offset).cast()
    }
}

impl Buffer for RawBuffer {
    fn size(&self) -> usize {
        self.len
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if offset.checked_add(bytes.len()).is_none_or(|end| end > self.len) {
            return;
        }
        // SAFETY: the caller's buffer is `len` writable bytes (NSS contract) and the range
        // [offset, offset + bytes.len()) was just checked to lie inside it; `bytes` is ours,
        // so the two do not overlap.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(offset), bytes.len()) };
    }
}

fn fill_passwd(result: *mut passwd, buf: &RawBuffer, layout: PasswdLayout) {
    // SAFETY: `result` is non-null (checked by every caller) and points to a `struct passwd`
    // the caller owns; every string pointer lies inside the caller's buffer, where the
    // packer wrote a NUL-terminated string.
    unsafe {
        (*result).pw_name = buf.at(layout.name);
        (*result).pw_passwd = buf.at(layout.passwd);
        (*result).pw_uid = layout.uid;
        (*result).pw_gid = layout.gid;
        (*result).pw_gecos = buf.at(layout.gecos);
        (*result).pw_dir = buf.at(layout.dir);
        (*result).pw_shell = buf.at(layout.shell);
    }
}

fn fill_shadow(result: *mut spwd, buf: &RawBuffer, layout: ShadowLayout) {
    let long = |value: i64| c_long::try_from(value).unwrap_or(-1);
    // SAFETY: `result` is non-null (checked by every caller) and points to a `struct spwd`
    // the caller owns; both string pointers lie inside the caller's buffer, where the
    // packer wrote NUL-terminated strings.
    unsafe {
        (*result).sp_namp = buf.at(layout.name);
        (*result).sp_pwdp = buf.at(layout.passwd);
        (*result).sp_lstchg = long(layout.last_change);
        (*result).sp_min = long(layout.min);
        (*result).sp_max = long(layout.max);
        (*result).sp_warn = long(layout.warn);
        (*result).sp_inact = long(layout.inactive);
        (*result).sp_expire = long(layout.expire);
        // An empty field, as glibc's own parser stores it.
        (*result).sp_flag = libc::c_ulong::MAX;
    }
}

fn fill_group(result: *mut group, buf: &RawBuffer, layout: GroupLayout) {
    // SAFETY: `result` is non-null (checked by every caller) and points to a `struct group`
    // the caller owns; the strings and the aligned, NULL-terminated member array lie inside
    // the caller's buffer, written by the packer.
    unsafe {
        (*result).gr_name = buf.at(layout.name);
        (*result).gr_passwd = buf.at(layout.passwd);
        (*result).gr_gid = layout.gid;
        (*result).gr_mem = buf.at(layout.members).cast();
    }
}

/// The name argument, or None when null.
fn c_name<'a>(name: *const c_char) -> Option<&'a [u8]> {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null, and NSS passes a NUL-terminated name that outlives the call.
    Some(unsafe { CStr::from_ptr(name) }.to_bytes())
}

/// The shape of every export that returns an entry: refuse null pointers, let `lookup`
/// pack an entry into the caller's buffer, and point `result`'s fields into it.
fn reply_into<T, L>(
    result: *mut T,
    buffer: *mut c_char,
    buflen: size_t,
    lookup: impl FnOnce(&mut RawBuffer) -> Reply<L>,
    fill: fn(*mut T, &RawBuffer, L),
) -> Reply<()> {
    let Some(mut buf) = RawBuffer::new(buffer, buflen) else {
        return Reply::Unavailable(libc::EINVAL);
    };
    if result.is_null() {
        return Reply::Unavailable(libc::EINVAL);
    }
    match lookup(&mut buf) {
        Reply::Found(layout) => {
            fill(result, &buf, layout);
            Reply::Found(())
        }
        other => other.map(|_| ()),
    }
}

fn passwd_reply(
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    find: impl FnOnce(&mut Nss<MmapMapper>) -> Reply<std::sync::Arc<dircache::cache::PublicUser>>,
) -> Reply<()> {
    let lookup = |buf: &mut RawBuffer| with_nss(find).pack(|entry| pack_passwd(entry, buf));
    reply_into(result, buffer, buflen, lookup, fill_passwd)
}

fn group_reply(
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    find: impl FnOnce(&mut Nss<MmapMapper>) -> Reply<std::sync::Arc<nss::GroupEntry>>,
) -> Reply<()> {
    let lookup = |buf: &mut RawBuffer| {
        let base = buf.base();
        with_nss(find).pack(|entry| pack_group(entry, buf, base))
    };
    reply_into(result, buffer, buflen, lookup, fill_group)
}

/// # Safety
/// NSS contract: `name` NUL-terminated, `result` a `struct passwd`, `buffer` `buflen`
/// writable bytes, `errnop` an int; null pointers are refused (UNAVAIL).
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getpwnam_r(
    name: *const c_char,
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || match c_name(name) {
        Some(name) => passwd_reply(result, buffer, buflen, |nss| nss.passwd_by_name(name)),
        None => Reply::Unavailable(libc::EINVAL),
    })
}

/// # Safety
/// As [`_nss_dircache_getpwnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getpwuid_r(
    uid: uid_t,
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || passwd_reply(result, buffer, buflen, |nss| nss.passwd_by_uid(uid)))
}

#[no_mangle]
pub extern "C" fn _nss_dircache_setpwent(_stayopen: c_int) -> c_int {
    run_status(|| with_nss(|nss| nss.start_passwd_walk()))
}

#[no_mangle]
pub extern "C" fn _nss_dircache_endpwent() -> c_int {
    run_status(|| {
        with_nss(|nss| nss.end_passwd_walk());
        Reply::Found(())
    })
}

/// # Safety
/// As [`_nss_dircache_getpwnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getpwent_r(
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || {
        let lookup =
            |buf: &mut RawBuffer| with_nss(|nss| nss.next_passwd(|entry| pack_passwd(entry, buf)));
        reply_into(result, buffer, buflen, lookup, fill_passwd)
    })
}

/// # Safety
/// NSS contract: `name` NUL-terminated, `result` a `struct spwd`, `buffer` `buflen`
/// writable bytes, `errnop` an int; null pointers are refused (UNAVAIL).
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getspnam_r(
    name: *const c_char,
    result: *mut spwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || match c_name(name) {
        Some(name) => {
            let lookup = |buf: &mut RawBuffer| {
                with_nss(|nss| nss.shadow_by_name(name)).pack(|entry| pack_shadow(entry, buf))
            };
            reply_into(result, buffer, buflen, lookup, fill_shadow)
        }
        None => Reply::Unavailable(libc::EINVAL),
    })
}

#[no_mangle]
pub extern "C" fn _nss_dircache_setspent(_stayopen: c_int) -> c_int {
    run_status(|| with_nss(|nss| nss.start_shadow_walk()))
}

#[no_mangle]
pub extern "C" fn _nss_dircache_endspent() -> c_int {
    run_status(|| {
        with_nss(|nss| nss.end_shadow_walk());
        Reply::Found(())
    })
}

/// # Safety
/// As [`_nss_dircache_getspnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getspent_r(
    result: *mut spwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || {
        let lookup =
            |buf: &mut RawBuffer| with_nss(|nss| nss.next_shadow(|entry| pack_shadow(entry, buf)));
        reply_into(result, buffer, buflen, lookup, fill_shadow)
    })
}

/// # Safety
/// NSS contract: `name` NUL-terminated, `result` a `struct group`, `buffer` `buflen`
/// writable bytes, `errnop` an int; null pointers are refused (UNAVAIL).
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getgrnam_r(
    name: *const c_char,
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || match c_name(name) {
        Some(name) => group_reply(result, buffer, buflen, |nss| nss.group_by_name(name)),
        None => Reply::Unavailable(libc::EINVAL),
    })
}

/// # Safety
/// As [`_nss_dircache_getgrnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getgrgid_r(
    gid: gid_t,
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || group_reply(result, buffer, buflen, |nss| nss.group_by_gid(gid)))
}

#[no_mangle]
pub extern "C" fn _nss_dircache_setgrent(_stayopen: c_int) -> c_int {
    run_status(|| with_nss(|nss| nss.start_group_walk()))
}

#[no_mangle]
pub extern "C" fn _nss_dircache_endgrent() -> c_int {
    run_status(|| {
        with_nss(|nss| nss.end_group_walk());
        Reply::Found(())
    })
}

/// # Safety
/// As [`_nss_dircache_getgrnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_getgrent_r(
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || {
        let lookup = |buf: &mut RawBuffer| {
            let base = buf.base();
            with_nss(|nss| nss.next_group(|entry| pack_group(entry, buf, base)))
        };
        reply_into(result, buffer, buflen, lookup, fill_group)
    })
}

/// glibc's growable gid array of `initgroups_dyn`.
struct CGroupArray {
    start: *mut c_long,
    size: *mut c_long,
    groups: *mut *mut gid_t,
    len: usize,
    capacity: usize,
}

impl CGroupArray {
    /// Checks the caller's array: counts in range, an array present when it has room.
    fn new(start: *mut c_long, size: *mut c_long, groups: *mut *mut gid_t) -> Option<CGroupArray> {
        if start.is_null() || size.is_null() || groups.is_null() {
            return None;
        }
        // SAFETY: the three pointers are non-null and, by the initgroups_dyn contract, point
        // to the caller's counters and array pointer.
        let (len, capacity, array) = unsafe { (*start, *size, *groups) };
        let len = usize::try_from(len).ok()?;
        let capacity = usize::try_from(capacity).ok()?;
        if len > capacity || (capacity > 0 && array.is_null()) {
            return None;
        }
        Some(CGroupArray { start, size, groups, len, capacity })
    }

    fn array(&self) -> *mut gid_t {
        // SAFETY: `groups` was checked non-null in `new` and points to the caller's pointer.
        unsafe { *self.groups }
    }
}

impl GroupArray for CGroupArray {
    fn used(&self) -> usize {
        self.len
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn get(&self, index: usize) -> u32 {
        if index >= self.len {
            return u32::MAX;
        }
        // SAFETY: index < len <= capacity, and the array holds `capacity` gids.
        unsafe { *self.array().add(index) }
    }

    fn grow(&mut self, capacity: usize) -> bool {
        let Some(bytes) = capacity.checked_mul(std::mem::size_of::<gid_t>()) else {
            return false;
        };
        let Ok(new_size) = c_long::try_from(capacity) else {
            return false;
        };
        // SAFETY: the array was allocated with malloc by glibc (or is null when empty), which
        // is what realloc requires; on failure the old block is left as it was.
        let grown = unsafe { libc::realloc(self.array().cast(), bytes) };
        if grown.is_null() {
            return false;
        }
        // SAFETY: `groups` and `size` are the caller's, checked non-null in `new`; the caller
        // now owns the reallocated block.
        unsafe {
            *self.groups = grown.cast();
            *self.size = new_size;
        }
        self.capacity = capacity;
        true
    }

    fn push(&mut self, gid: u32) {
        if self.len >= self.capacity {
            return;
        }
        let Ok(new_start) = c_long::try_from(self.len + 1) else {
            return;
        };
        // SAFETY: len < capacity, so the slot is inside the caller's array; `start` is the
        // caller's counter, checked non-null in `new`.
        unsafe {
            *self.array().add(self.len) = gid;
            *self.start = new_start;
        }
        self.len += 1;
    }
}

/// # Safety
/// glibc's `initgroups_dyn` contract: `user` NUL-terminated; `start`, `size` and `groupsp`
/// the caller's counters and malloc'ed array (grown here with realloc); `errnop` an int.
/// Null pointers are refused (UNAVAIL).
#[no_mangle]
pub unsafe extern "C" fn _nss_dircache_initgroups_dyn(
    user: *const c_char,
    group: gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> c_int {
    run(errnop, || {
        let (Some(user), Some(mut array)) = (c_name(user), CGroupArray::new(start, size, groupsp))
        else {
            return Reply::Unavailable(libc::EINVAL);
        };
        match with_nss(|nss| nss.supplementary_gids(user)) {
            Reply::Found(gids) => add_groups(&mut array, &gids, group, limit),
            other => other.map(|_| ()),
        }
    })
}

/// 1 when a panic inside this module is caught (see `dircache::unwinding_works`); for tests,
/// never called by glibc or libpam.
#[no_mangle]
pub extern "C" fn dircache_nss_unwind_selftest() -> c_int {
    c_int::from(dircache::unwinding_works())
}
