//! dircache: Linux logins from the accounts of a mail directory.
//!
//! All logic lives here; `pam_module`, `nss_module` and `sync_helper` are thin shells.

pub mod cache;
// pub mod config;
pub mod names;
pub mod privileges;
pub mod user;
