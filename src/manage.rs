//! User management: the changes `dircache-sync user …` makes, as pure functions on a
//! [`Db`]. The caller loads and commits the database under the lock
//! ([`crate::cache::CacheDir::update`]) and passes the clock in.

use std::collections::{BTreeSet, HashSet};

use thiserror::Error;

use crate::cache::{CacheError, Db};
use crate::config::Config;
use crate::ids::{IdAllocator, IdsExhausted};
use crate::local_accounts::LocalAccounts;
use crate::names::NameError;
use crate::privileges::Privilege;
use crate::user::{AuthMethod, Origin, User};

#[derive(Debug, Error)]
pub enum ManageError {
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

pub fn validate_email(address: &str) -> Result<(), ManageError> {
    let bad = address.matches('@').count() != 1
        || address.starts_with('@')
        || address.ends_with('@')
        || address.chars().any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(ManageError::InvalidEmail(address.to_string()));
    }
    Ok(())
}

fn validate_full_name(full_name: &str) -> Result<(), ManageError> {
    if full_name.chars().any(|c| c == ':' || c.is_control()) {
        return Err(ManageError::InvalidFullName(full_name.to_string()));
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
) -> Result<&'a User, ManageError> {
    config
        .name_policy()
        .check(&new.name)
        .map_err(|source| ManageError::InvalidName { name: new.name.clone(), source })?;
    if local.win_over(&new.name, &[]) {
        return Err(ManageError::LocalAccount(new.name));
    }
    if db.user(&new.name).is_some()
        || db.groups.iter().any(|g| crate::names::same_name(&g.name, &new.name))
    {
        return Err(ManageError::Exists(new.name));
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
    let home = free_home(config, &new.name, uid, &db.homes_taken());
    db.users.push(User {
        home,
        shell: config.unix.shell.clone(),
        name: new.name,
        full_name,
        emails: new.emails,
        auth: new.auth,
        password_hash,
        privileges: privileges.into_iter().collect::<BTreeSet<_>>(),
        enabled: true,
        disabled_by_admin: false,
        origin: Origin::Manual,
        uid,
        gid: uid,
        groups: Vec::new(),
        distinguished_name: None,
        directory_identity: None,
        missing_since: None,
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
) -> Result<&'a User, ManageError> {
    if let Some(emails) = &changes.emails {
        emails.iter().try_for_each(|e| validate_email(e))?;
    }
    if let Some(full_name) = &changes.full_name {
        validate_full_name(full_name)?;
    }
    let user = db.user_mut(name).ok_or_else(|| ManageError::NotFound(name.to_string()))?;
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

/// The home directory for a new user: `unix.home` for its name, or, when that path is taken
/// ([`Db::homes_taken`]: another cache user kept it through a rename, or a deleted user
/// left it, maybe with its files), the path with `.UID` appended: two accounts must never
/// share a home, not even one after the other.
pub fn free_home(config: &Config, name: &str, uid: u32, homes_taken: &HashSet<String>) -> String {
    let wanted = config.home_for(name);
    if homes_taken.contains(&wanted) {
        format!("{wanted}.{uid}")
    } else {
        wanted
    }
}

/// Stores a new local password hash.
pub fn set_password_hash(
    db: &mut Db,
    name: &str,
    hash: String,
    now: u64,
) -> Result<(), ManageError> {
    let user = db.user_mut(name).ok_or_else(|| ManageError::NotFound(name.to_string()))?;
    user.password_hash = Some(hash);
    user.updated_at = now;
    Ok(())
}

/// Removes a user's entry (never any file on disk) and retires its ids and home. A user that came from the directory is
/// removed only with `even_from_directory`: while the directory lists it, the next sync
/// creates it again under a new uid, and its files keep the old one.
pub fn delete_user(
    db: &mut Db,
    name: &str,
    even_from_directory: bool,
) -> Result<User, ManageError> {
    let position = db
        .users
        .iter()
        .position(|u| crate::names::same_name(&u.name, name))
        .ok_or_else(|| ManageError::NotFound(name.to_string()))?;
    if db.users[position].directory_identity.is_some() && !even_from_directory {
        return Err(ManageError::FromDirectory(db.users[position].name.clone()));
    }
    let user = db.users.remove(position);
    db.retire(&user);
    for group in &mut db.groups {
        group.members.retain(|member| !crate::names::same_name(member, &user.name));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            name: name.to_string(),
            full_name: Some("Alice Liddell".to_string()),
            emails: vec!["alice@example.com".to_string()],
            auth: AuthMethod::Local,
            privileges: None,
            password_hash: Some("$argon2id$x".to_string()),
        }
    }

    #[test]
    fn add_gives_defaults_ids_home_and_timestamps() {
        let mut db = Db::default();
        let user =
            add_user(&mut db, &config(), &LocalAccounts::default(), new_user("alice"), 77).unwrap();
        assert_eq!(user.privileges, BTreeSet::from([Privilege::Login, Privilege::ReadOwnArchive]));
        assert!((200_000..=299_999).contains(&user.uid));
        assert_eq!(user.gid, user.uid);
        assert_eq!(user.home, "/home/alice");
        assert_eq!((user.created_at, user.updated_at), (77, 77));
        assert_eq!(user.origin, Origin::Manual);
    }

    #[test]
    fn add_never_gives_a_subordinate_id() {
        let dir = tempfile::tempdir().unwrap();
        let subuid = dir.path().join("subuid");
        // "manual:alice" hashes to 274349: inside carl's range, as useradd gives it to the
        // third local user.
        std::fs::write(&subuid, "ben:165536:65536\ncarl:231072:65536\n").unwrap();
        let local = LocalAccounts::default()
            .with_subordinate_ids(&subuid, &dir.path().join("subgid"))
            .unwrap();
        let mut db = Db::default();
        let user = add_user(&mut db, &config(), &local, new_user("alice"), 1).unwrap();
        assert_eq!(user.uid, 296_608, "the first id after carl's range");
        assert_eq!(user.gid, user.uid);
    }

    #[test]
    fn add_refuses_duplicates_case_insensitively_bad_names_and_local_accounts() {
        let mut db = Db::default();
        let local = LocalAccounts::default();
        add_user(&mut db, &config(), &local, new_user("alice"), 1).unwrap();
        let dup = add_user(&mut db, &config(), &local, new_user("ALICE"), 1);
        assert!(matches!(dup, Err(ManageError::Exists(_))));
        let bad = add_user(&mut db, &config(), &local, new_user("a:b"), 1);
        assert!(matches!(bad, Err(ManageError::InvalidName { .. })));

        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\ncarol:x:1000:1000::/:/bin/sh\n")
            .unwrap();
        let local = LocalAccounts::load(&passwd, &dir.path().join("group")).unwrap();
        let carol = add_user(&mut db, &config(), &local, new_user("Carol"), 1);
        assert!(matches!(carol, Err(ManageError::LocalAccount(_))));
        // A name with system meaning is refused whether or not a local account has it.
        for name in ["Root", "admin", "docker", "systemd-oops"] {
            let refused = add_user(&mut db, &config(), &local, new_user(name), 1);
            let Err(ManageError::InvalidName { source, .. }) = refused else {
                panic!("{name}: {refused:?}");
            };
            assert_eq!(source, crate::names::NameError::SystemName(name.to_string()));
        }
    }

    #[test]
    fn add_with_explicit_privileges_and_directory_auth_drops_any_hash() {
        let mut db = Db::default();
        let mut new = new_user("bob");
        new.auth = AuthMethod::Directory;
        new.privileges = Some(vec![Privilege::ArchiveEmail]);
        let user = add_user(&mut db, &config(), &LocalAccounts::default(), new, 1).unwrap();
        assert_eq!(user.privileges, BTreeSet::from([Privilege::ArchiveEmail]));
        assert_eq!(user.password_hash, None);
    }

    #[test]
    fn set_grants_revokes_and_switches_auth() {
        let mut db = Db::default();
        add_user(&mut db, &config(), &LocalAccounts::default(), new_user("alice"), 1).unwrap();
        let changes = UserChanges {
            grant: vec![Privilege::ChangePassword],
            revoke: vec![Privilege::ReadOwnArchive],
            enabled: Some(false),
            auth: Some(AuthMethod::Directory),
            emails: Some(vec!["a@x.org".into(), "b@x.org".into()]),
            ..UserChanges::default()
        };
        let user = set_user(&mut db, "Alice", changes, 5).unwrap();
        assert_eq!(user.privileges, BTreeSet::from([Privilege::Login, Privilege::ChangePassword]));
        assert!(!user.enabled);
        assert_eq!(user.auth, AuthMethod::Directory);
        assert_eq!(user.password_hash, None);
        assert_eq!(user.emails, ["a@x.org", "b@x.org"]);
        assert_eq!(user.updated_at, 5);
        assert!(matches!(
            set_user(&mut db, "nobody", UserChanges::default(), 5),
            Err(ManageError::NotFound(_))
        ));
    }

    #[test]
    fn delete_retires_ids_so_they_are_never_reused() {
        let mut db = Db::default();
        let uid = add_user(&mut db, &config(), &LocalAccounts::default(), new_user("alice"), 1)
            .unwrap()
            .uid;
        delete_user(&mut db, "alice", false).unwrap();
        assert!(db.meta.retired_ids.contains(&uid));
        let again =
            add_user(&mut db, &config(), &LocalAccounts::default(), new_user("alice"), 2).unwrap();
        assert_ne!(again.uid, uid);
    }

    #[test]
    fn a_deleted_users_home_is_never_given_to_a_new_user() {
        let mut db = Db::default();
        let local = LocalAccounts::default();
        add_user(&mut db, &config(), &local, new_user("alice"), 1).unwrap();
        delete_user(&mut db, "alice", false).unwrap();
        assert!(db.meta.retired_homes.contains("/home/alice"));
        let again = add_user(&mut db, &config(), &local, new_user("alice"), 2).unwrap();
        assert_eq!(again.home, format!("/home/alice.{}", again.uid));
    }

    #[test]
    fn email_validation() {
        assert!(validate_email("a@b.c").is_ok());
        for bad in ["ab", "a@@b", "@b", "a@", "a b@c", "a:b@c", "a@b\n"] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
    }
}
