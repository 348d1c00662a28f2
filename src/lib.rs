//! dircache: Linux logins from the accounts of a mail directory.
//!
//! All logic lives here; `pam_module`, `nss_module` and `sync_helper` are thin shells that
//! only convert between C (or the command line) and this library. `docs/architecture.md`
//! shows the flows of a sync, a login and a lookup. The modules, by layer:
//!
//! - **Rules every layer shares**: [`names`] (which names may be users and groups, how they
//!   compare), [`ids`] (reserved ids, allocation), [`local_accounts`] (the accounts of
//!   /etc/passwd and /etc/group, which always win, and the subordinate ids of local users,
//!   never handed out), [`privileges`], [`passwords`] (argon2id,
//!   secrets), [`trust`] (who may own the files dircache reads), [`user`] (the records).
//! - **Configuration**: [`config`]; [`grants`] (the local groups `[unix.local_groups]`
//!   grants to members of directory groups).
//! - **The cache** (files only, knows no server): [`cache`] — generations of immutable
//!   tables, one write path (`CacheDir::commit` / `CacheDir::update`), readers for PAM, NSS and
//!   the helper; [`login_state`] (per-user failure counts and offline credentials).
//! - **The directory** (the only layer that talks to the network): [`directory`] — the
//!   IceWarp and Application Integration clients over one HTTP transport
//!   (`docs/protocols/`).
//! - **What the programs do**: [`sync`] (fetch, plan, apply), [`user_edits`] (the edits of
//!   the user database that `dircache-sync user …` makes), [`check`] (`dircache-sync
//!   check`), [`pam`] (every PAM decision), [`nss`] (every NSS answer; never reaches the
//!   network).
//!
//! `unsafe` code lives only in the two `.so` crates; here the compiler forbids it.

#![forbid(unsafe_code)]

pub mod cache;
pub mod check;
pub mod config;
pub mod directory;
pub mod grants;
pub mod ids;
pub mod local_accounts;
pub mod login_state;
pub mod names;
pub mod nss;
pub mod packed_text;
pub mod pam;
pub mod passwords;
pub mod paths;
pub mod privileges;
pub mod snapshot;
pub mod sync;
pub mod trust;
pub mod user;
pub mod user_edits;

/// Whether a panic in this code is caught by `catch_unwind`: what keeps a bug out of the
/// programs that load the modules, which link their unwinder statically
/// (`build_support/static_unwinder.rs`). Each module exports it for tests
/// (tests/module_loading.rs); `resume_unwind` unwinds without the panic hook's message.
pub fn unwinding_works() -> bool {
    std::panic::catch_unwind(|| std::panic::resume_unwind(Box::new("unwinding self-test"))).is_err()
}
