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
    assert_eq!(user.privileges, PrivilegeSet::from([Privilege::Login, Privilege::ReadOwnArchive]));
    let [low, high] = crate::ids::DEFAULT_UID_RANGE;
    assert!((low..=high).contains(&user.uid));
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
    let local =
        LocalAccounts::default().with_subordinate_ids(&subuid, &dir.path().join("subgid")).unwrap();
    let mut db = Db::default();
    let mut config = config();
    config.unix.uid_range = [200_000, 299_999];
    let user = add_user(&mut db, &config, &local, new_user("alice"), 1).unwrap();
    assert_eq!(user.uid, 296_608, "the first id after carl's range");
    assert_eq!(user.gid, user.uid);
}

#[test]
fn add_refuses_duplicates_case_insensitively_bad_names_and_local_accounts() {
    let mut db = Db::default();
    let local = LocalAccounts::default();
    add_user(&mut db, &config(), &local, new_user("alice"), 1).unwrap();
    let dup = add_user(&mut db, &config(), &local, new_user("ALICE"), 1);
    assert!(matches!(dup, Err(EditError::Exists(_))));
    let bad = add_user(&mut db, &config(), &local, new_user("a:b"), 1);
    assert!(matches!(bad, Err(EditError::InvalidName { .. })));

    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\ncarol:x:1000:1000::/:/bin/sh\n").unwrap();
    let local = LocalAccounts::load(&passwd, &dir.path().join("group")).unwrap();
    let carol = add_user(&mut db, &config(), &local, new_user("Carol"), 1);
    assert!(matches!(carol, Err(EditError::LocalAccount(_))));
    // A name with system meaning is refused whether or not a local account has it.
    for name in ["Root", "admin", "docker", "systemd-oops"] {
        let refused = add_user(&mut db, &config(), &local, new_user(name), 1);
        let Err(EditError::InvalidName { source, .. }) = refused else {
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
    assert_eq!(user.privileges, PrivilegeSet::from([Privilege::ArchiveEmail]));
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
    assert_eq!(user.privileges, PrivilegeSet::from([Privilege::Login, Privilege::ChangePassword]));
    assert!(!user.enabled);
    assert_eq!(user.auth, AuthMethod::Directory);
    assert_eq!(user.password_hash, None);
    assert_eq!(user.emails, ["a@x.org", "b@x.org"]);
    assert_eq!(user.updated_at, 5);
    assert!(matches!(
        set_user(&mut db, "nobody", UserChanges::default(), 5),
        Err(EditError::NotFound(_))
    ));
}

#[test]
fn delete_retires_ids_so_they_are_never_reused() {
    let mut db = Db::default();
    let uid =
        add_user(&mut db, &config(), &LocalAccounts::default(), new_user("alice"), 1).unwrap().uid;
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
