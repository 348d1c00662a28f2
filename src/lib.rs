//! dircache: Linux logins from the accounts of a mail directory.
//!
//! All logic lives here; `pam_module`, `nss_module` and `sync_helper` are thin shells.

pub mod cache;
pub mod check;
pub mod config;
pub mod directory;
pub mod ids;
pub mod local_accounts;
pub mod login_state;
pub mod manage;
pub mod names;
pub mod nss;
pub mod pam;
pub mod passwords;
pub mod privileges;
pub mod sync;
pub mod trust;
pub mod user;
