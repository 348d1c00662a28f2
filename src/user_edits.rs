//! The edits of the user database: the changes `dircache-sync user …` makes (and PAM's
//! password change, through [`set_password_hash`]), as pure functions on a [`Db`]. The caller
//! loads and commits the database under the lock ([`crate::cache::CacheDir::update`]) and
//! passes the clock in.

use thiserror::Error;

use crate::cache::{CacheError, Db};
use crate::config::Config;
use crate::ids::{IdAllocator, IdsExhausted};
use crate::local_accounts::LocalAccounts;
use crate::names::NameError;
use crate::privileges::{Privilege, PrivilegeSet};
use crate::user::{AuthMethod, Origin, User};

#[derive(Debug, Error)]
pub enum EditError {
    #[error("invalid user name {name:?}: {source}")]
    InvalidName { name: String, source: NameError },
    #[error("user {0:?} already exists in the cache")]
    Exists(String),
    #[error("{0:?} is a local account in /etc/passwd or /etc/group; local accounts always win, so dircache will not create it")]
    LocalAccount(String),
    #[error("no user {0:?} in the cache")]
    NotFound(String),
    #[error("{0:?} came from the directory: while the directory lists it, the next sync creates it again with a new uid (its files keep the old one). Disable it instead (`dircache-sync user set {0} --disable`), or remove it from the directory or the filters first and then use `user delete --force`")]
    FromDirectory(String),
    #[error("user {0:?} changed while its password was being changed (password, status or privileges); try again")]
    ChangedMeanwhile(String),
    #[error(
        "invalid e-mail address {0:?}: it needs one '@' and no spaces, ':' or control characters"
    )]
    InvalidEmail(String),
    #[error("full name {0:?} contains a control character or ':'")]
    InvalidFullName(String),
    #[error("{0}")]
    Ids(#[from] IdsExhausted),
    #[error("{0}")]
    Cache(#[from] CacheError),
    #[error("user {0:?}: its text is 4 GiB or more, more than a cache record holds")]
    TooLarge(String),
    #[error("two users would be named {0:?}; nothing was changed. Does the directory list one account twice (the same identity under two entries)? Fix it there")]
    DuplicateName(String),
    #[error("two users would have uid {0}; nothing was changed. Does the directory list one account twice? Fix it there")]
    DuplicateUid(u32),
    #[error("{0:?} would share its name or id with a group or a user; nothing was changed. The sync planned a clash it must never plan: please report it, with the output of `dircache-sync sync --dry-run --json`")]
    GroupClash(String),
}

/// What `user add` was given.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub full_name: Option<String>,
    pub emails: Vec<String>,
    pub auth: AuthMethod,
    /// None: the configured default privileges.
    pub privileges: Option<Vec<Privilege>>,
    pub password_hash: Option<String>,
}

/// What `user set` was given; `None`/empty leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub full_name: Option<String>,
    /// When given, replaces the whole list (primary first).
    pub emails: Option<Vec<String>>,
    pub auth: Option<AuthMethod>,
    pub grant: Vec<Privilege>,
    pub revoke: Vec<Privilege>,
    pub enabled: Option<bool>,
}

pub fn validate_email(address: &str) -> Result<(), EditError> {
    let bad = address.matches('@').count() != 1
        || address.starts_with('@')
        || address.ends_with('@')
        || address.chars().any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(EditError::InvalidEmail(address.to_string()));
    }
    Ok(())
}

fn validate_full_name(full_name: &str) -> Result<(), EditError> {
    if full_name.chars().any(|c| c == ':' || c.is_control()) {
        return Err(EditError::InvalidFullName(full_name.to_string()));
    }
    Ok(())
}

/// Creates a manual user. Its uid is derived from its name and kept forever; its primary
/// group is a private group with the same id.
pub fn add_user<'a>(
    db: &'a mut Db,
    config: &Config,
    local: &LocalAccounts,
    new: NewUser,
    now: u64,
) -> Result<&'a User, EditError> {
    config
        .name_policy()
        .check(&new.name)
        .map_err(|source| EditError::InvalidName { name: new.name.clone(), source })?;
    if local.win_over(&new.name, &[]) {
        return Err(EditError::LocalAccount(new.name));
    }
    if db.user(&new.name).is_some()
        || db.groups.iter().any(|g| crate::names::same_name(&g.name, &new.name))
    {
        return Err(EditError::Exists(new.name));
    }
    new.emails.iter().try_for_each(|e| validate_email(e))?;
    let full_name = new.full_name.unwrap_or_default();
    validate_full_name(&full_name)?;

    let taken = db.ids_in_use().into_iter().chain(local.ids());
    let mut ids = IdAllocator::new(config.unix.uid_range, taken, local.subordinate_ids());
    let uid = ids.allocate(&format!("manual:{}", crate::names::fold_name(&new.name)))?;
    let privileges = new.privileges.unwrap_or_else(|| config.sync.default_privileges.clone());
    let password_hash = match new.auth {
        AuthMethod::Local => new.password_hash,
        AuthMethod::Directory => None,
    };
    let mut homes = db.homes_taken();
    // Local accounts win: their homes too (resolved, as `homes_taken` gives the others).
    homes.extend(local.homes());
    let home = config.free_home(&new.name, uid, |home| homes.contains(home));
    db.users.push(User {
        home,
        shell: config.unix.shell.clone(),
        name: new.name,
        full_name,
        emails: new.emails,
        auth: new.auth,
        password_hash,
        privileges: privileges.into_iter().collect::<PrivilegeSet>(),
        enabled: true,
        disabled_by_admin: false,
        origin: Origin::Manual,
        uid,
        gid: uid,
        groups: Vec::new(),
        distinguished_name: None,
        directory_identity: None,
        missing_since: None,
        limits: crate::user::AccountLimits::default(),
        created_at: now,
        updated_at: now,
    });
    let added = db.users.len() - 1;
    Ok(&db.users[added])
}

/// Applies `changes` to an existing user.
pub fn set_user<'a>(
    db: &'a mut Db,
    name: &str,
    changes: UserChanges,
    now: u64,
) -> Result<&'a User, EditError> {
    if let Some(emails) = &changes.emails {
        emails.iter().try_for_each(|e| validate_email(e))?;
    }
    if let Some(full_name) = &changes.full_name {
        validate_full_name(full_name)?;
    }
    let user = db.user_mut(name).ok_or_else(|| EditError::NotFound(name.to_string()))?;
    if let Some(full_name) = changes.full_name {
        user.full_name = full_name;
    }
    if let Some(emails) = changes.emails {
        user.emails = emails;
    }
    if let Some(auth) = changes.auth {
        // A directory user's password is the directory's; a stale local hash must not
        // come back to life if the method is switched again later.
        if auth == AuthMethod::Directory {
            user.password_hash = None;
        }
        user.auth = auth;
    }
    user.privileges.extend(changes.grant);
    for privilege in &changes.revoke {
        user.privileges.remove(privilege);
    }
    match changes.enabled {
        Some(false) => {
            user.enabled = false;
            user.disabled_by_admin = true;
        }
        // A user from the directory with directory authentication is enabled by the next
        // sync, and only if the directory says so: it may have disabled or dropped the
        // account meanwhile. Anyone else (manual, or switched to a local password, whom a
        // sync no longer enables when the directory drops it) is enabled at once.
        Some(true) => {
            user.disabled_by_admin = false;
            user.enabled |= user.directory_identity.is_none() || user.auth == AuthMethod::Local;
        }
        None => {}
    }
    user.updated_at = now;
    Ok(user)
}

/// Stores a new local password hash.
pub fn set_password_hash(db: &mut Db, name: &str, hash: String, now: u64) -> Result<(), EditError> {
    let user = db.user_mut(name).ok_or_else(|| EditError::NotFound(name.to_string()))?;
    user.password_hash = Some(hash);
    user.updated_at = now;
    Ok(())
}

/// Removes a user's entry (never any file on disk) and retires its ids and home. A user that came from the directory is
/// removed only with `even_from_directory`: while the directory lists it, the next sync
/// creates it again under a new uid, and its files keep the old one.
pub fn delete_user(db: &mut Db, name: &str, even_from_directory: bool) -> Result<User, EditError> {
    let position = db
        .users
        .iter()
        .position(|u| crate::names::same_name(&u.name, name))
        .ok_or_else(|| EditError::NotFound(name.to_string()))?;
    if db.users[position].directory_identity.is_some() && !even_from_directory {
        return Err(EditError::FromDirectory(db.users[position].name.clone()));
    }
    let user = db.users.remove(position);
    db.retire(&user);
    for group in &mut db.groups {
        group.members.retain(|member| !crate::names::same_name(member, &user.name));
    }
    Ok(user)
}

#[cfg(test)]
mod tests;
