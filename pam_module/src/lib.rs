//! `pam_dircache.so`: translates between libpam and `dircache::pam`. Every decision is made
//! in the library; this file only converts arguments, passwords, messages and return codes.
//! `pam_hooks!` wraps every hook in `catch_unwind`, so a panic becomes PAM_ABORT instead of
//! unwinding into sshd or login.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dircache::pam::{
    self as logic, AuthtokItem, ChangePhase, LogLevel, PamConversation, PamOutcome,
};
use dircache::passwords::Secret;
use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_SILENT};
use pam::conv::Conv;
use pam::module::{PamHandle, PamHooks};

const PAM_AUTHTOK: c_int = 6;
const PAM_OLDAUTHTOK: c_int = 7;
const PAM_PRELIM_CHECK: PamFlag = 0x4000;

#[link(name = "pam")]
extern "C" {
    // pam-bindings has no wrapper for these two (docs/architecture.md, "The crates").
    fn pam_get_authtok(
        pamh: *mut PamHandle,
        item: c_int,
        authtok: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

extern "C" {
    // glibc ≥ 2.17; not in the libc crate for every target.
    fn secure_getenv(name: *const c_char) -> *mut c_char;
}

struct Libpam<'h> {
    handle: &'h mut PamHandle,
    silent: bool,
}

impl Libpam<'_> {
    fn new(handle: &mut PamHandle, flags: PamFlag) -> Libpam<'_> {
        Libpam { handle, silent: flags & PAM_SILENT != 0 }
    }
}

/// A C string for libpam; interior NULs (which no message should carry) become '?'.
fn c_text(text: &str) -> CString {
    let cleaned: Vec<u8> = text.bytes().map(|b| if b == 0 { b'?' } else { b }).collect();
    CString::new(cleaned).unwrap_or_default()
}

impl PamConversation for Libpam<'_> {
    fn user_name(&mut self) -> Result<String, PamOutcome> {
        self.handle.get_user(None).map_err(|_| PamOutcome::UserUnknown)
    }

    fn authtok(&mut self, item: AuthtokItem, prompt: Option<&str>) -> Result<Secret, PamOutcome> {
        let item = match item {
            AuthtokItem::Current | AuthtokItem::New => PAM_AUTHTOK,
            AuthtokItem::Old => PAM_OLDAUTHTOK,
        };
        let prompt = prompt.map(c_text);
        let prompt_ptr = prompt.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        let mut token: *const c_char = ptr::null();
        // SAFETY: `handle` is the live handle libpam passed to this hook; `token` is a valid
        // out-pointer and `prompt_ptr` is null or a NUL-terminated string that outlives the call.
        let code = unsafe { pam_get_authtok(self.handle, item, &mut token, prompt_ptr) };
        if code != PamResultCode::PAM_SUCCESS as c_int {
            return Err(match code {
                c if c == PamResultCode::PAM_CONV_ERR as c_int => PamOutcome::ConvErr,
                c if c == PamResultCode::PAM_AUTHTOK_ERR as c_int => PamOutcome::AuthtokErr,
                _ => PamOutcome::AuthErr,
            });
        }
        if token.is_null() {
            return Err(PamOutcome::AuthErr);
        }
        // SAFETY: on success libpam returns a NUL-terminated string it owns and keeps alive
        // for the rest of this hook; it is copied at once.
        let bytes = unsafe { CStr::from_ptr(token) }.to_bytes();
        Ok(Secret::new(bytes.to_vec()))
    }

    fn error_message(&mut self, text: &str) {
        if self.silent {
            return;
        }
        if let Ok(Some(conv)) = self.handle.get_item::<Conv>() {
            let _ = conv.send(PAM_ERROR_MSG, text);
        }
    }
    fn now(&self) -> u64 {
        now()
    }

    fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn system_uid(&mut self, name: &str) -> Option<u32> {
        const MAX_BUFFER: usize = 1 << 20;
        let name = CString::new(name).ok()?;
        let mut buffer: Vec<c_char> = vec![0; 1024];
        loop {
            // SAFETY: `passwd` is plain data (integers and pointers) for which all-zero bytes
            // are a valid value; getpwnam_r fills it in.
            let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
            let mut found: *mut libc::passwd = ptr::null_mut();
            // SAFETY: `name` is NUL-terminated, `entry` and `found` are valid out-pointers,
            // and `buffer` has `buffer.len()` writable bytes that outlive the call.
            let code = unsafe {
                libc::getpwnam_r(
                    name.as_ptr(),
                    &mut entry,
                    buffer.as_mut_ptr(),
                    buffer.len(),
                    &mut found,
                )
            };
            if code == libc::ERANGE && buffer.len() < MAX_BUFFER {
                buffer.resize(buffer.len() * 4, 0);
                continue;
            }
            return (code == 0 && !found.is_null()).then_some(entry.pw_uid);
        }
    }

    fn nss_settings(&self) -> dircache::nss::Settings {
        // The variables libnss_dircache honours, read the same way (ignored in setuid
        // programs), so that both agree on what serves this process.
        dircache::nss::Settings::from_vars(dircache::nss::ENV_VARS.map(|name| {
            // SAFETY: `name` is NUL-terminated. The result points into the environment,
            // which is only read, and copied by `from_vars` before this call returns.
            let value = unsafe { secure_getenv(name.as_ptr()) };
            // SAFETY: a non-null result of secure_getenv is a NUL-terminated string.
            (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_bytes())
        }))
    }

    fn log(&mut self, level: LogLevel, text: &str) {
        let priority = match level {
            LogLevel::Error => libc::LOG_ERR,
            LogLevel::Notice => libc::LOG_NOTICE,
            LogLevel::Info => libc::LOG_INFO,
            LogLevel::Debug => libc::LOG_DEBUG,
        };
        let line = c_text(text);
        // SAFETY: a fixed "%s" format with one NUL-terminated argument; `handle` is live.
        unsafe { pam_syslog(self.handle, priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

fn to_code(outcome: PamOutcome) -> PamResultCode {
    match outcome {
        PamOutcome::Success => PamResultCode::PAM_SUCCESS,
        PamOutcome::ServiceErr => PamResultCode::PAM_SERVICE_ERR,
        PamOutcome::SystemErr => PamResultCode::PAM_SYSTEM_ERR,
        PamOutcome::PermDenied => PamResultCode::PAM_PERM_DENIED,
        PamOutcome::AuthErr => PamResultCode::PAM_AUTH_ERR,
        PamOutcome::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        PamOutcome::UserUnknown => PamResultCode::PAM_USER_UNKNOWN,
        PamOutcome::AcctExpired => PamResultCode::PAM_ACCT_EXPIRED,
        PamOutcome::AuthtokErr => PamResultCode::PAM_AUTHTOK_ERR,
        PamOutcome::AuthtokLockBusy => PamResultCode::PAM_AUTHTOK_LOCK_BUSY,
        PamOutcome::ConvErr => PamResultCode::PAM_CONV_ERR,
        PamOutcome::Ignore => PamResultCode::PAM_IGNORE,
    }
}

/// Module arguments as text; one that is not UTF-8 is passed on as a marker so the parser
/// refuses it by name instead of skipping it.
fn text_args<'a>(args: &'a [&CStr]) -> Vec<&'a str> {
    args.iter().map(|arg| arg.to_str().unwrap_or("<argument that is not UTF-8>")).collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[path = "../../ffi_support/no_cancel.rs"]
mod no_cancel;
use no_cancel::NoCancel;

pub struct DircachePam;
pam::pam_hooks!(DircachePam);

impl PamHooks for DircachePam {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let _no_cancel = NoCancel::new();
        to_code(logic::authenticate(&mut Libpam::new(pamh, flags), &text_args(&args)))
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let _no_cancel = NoCancel::new();
        to_code(logic::account(&mut Libpam::new(pamh, flags), &text_args(&args)))
    }

    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let _no_cancel = NoCancel::new();
        let phase =
            if flags & PAM_PRELIM_CHECK != 0 { ChangePhase::Prelim } else { ChangePhase::Update };
        let outcome =
            logic::change_password(&mut Libpam::new(pamh, flags), &text_args(&args), phase, now());
        to_code(outcome)
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn sm_open_session(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn sm_close_session(
        _pamh: &mut PamHandle,
        _args: Vec<&CStr>,
        _flags: PamFlag,
    ) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// 1 when a panic inside this module is caught (see `dircache::unwinding_works`); for tests,
/// never called by glibc or libpam.
#[no_mangle]
pub extern "C" fn dircache_pam_unwind_selftest() -> c_int {
    c_int::from(dircache::unwinding_works())
}
