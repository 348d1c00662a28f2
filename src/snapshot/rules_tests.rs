//! The install's home, gid and retired-id rules against host states the model tests
//! (`model_tests`) cannot reach from an empty host: a former `[unix] home`, other templates,
//! local homes spelt another way, host users whose gid is not their uid (from installs
//! before the gid rule). Plan-level: `install::plan` + `Install::apply`, as a pull runs
//! them. Each of the first five failed before its fix (review of 9866545, helper-47).

use std::fs;
use std::path::Path;

use super::install;
use crate::cache::Db;
use crate::config::Config;
use crate::local_accounts::LocalAccounts;
use crate::user::{sample_user, Group, Origin, User};

fn setup(dir: &Path, home: &str, passwd_extra: &str) -> (Config, LocalAccounts) {
    fs::write(dir.join("passwd"), format!("root:x:0:0::/root:/bin/sh\n{passwd_extra}")).unwrap();
    fs::write(dir.join("group"), "root:x:0:\n").unwrap();
    let text = format!(
        "[cache]\ndir = {:?}\n[unix]\nuid_range = [200000, 299999]\nhome = {home:?}\n\
         local_passwd = {:?}\nlocal_group = {:?}\nlocal_subuid = {:?}\nlocal_subgid = {:?}\n",
        dir.join("cache"),
        dir.join("passwd"),
        dir.join("group"),
        dir.join("subuid"),
        dir.join("subgid"),
    );
    let config = Config::from_toml_str(&text, &dir.join("dircache.toml")).unwrap();
    let local = config.local_accounts().unwrap();
    (config, local)
}

fn user(name: &str, uid: u32, gid: u32, home: &str) -> User {
    User { gid, home: home.to_string(), ..sample_user(name, uid) }
}

fn group(name: &str, gid: u32) -> Group {
    Group {
        name: name.to_string(),
        gid,
        members: vec![],
        origin: Origin::Manual,
        directory_identity: None,
    }
}

fn pull(
    db: &mut Db,
    users: &[User],
    groups: &[Group],
    config: &Config,
    local: &LocalAccounts,
) -> Vec<String> {
    let plan = install::plan(db, users.to_vec(), groups.to_vec(), config, local);
    let skipped = plan.skipped.iter().map(|s| format!("{}: {}", s.name, s.reason)).collect();
    plan.apply(db);
    skipped
}

/// A fleet that changes `[unix] home` (publisher and hosts alike, as the docs ask): the
/// publisher's existing users keep their old homes (a sync never moves one), and so does
/// every host, instead of deleting them and retiring their uids for good.
#[test]
fn a_home_of_a_former_template_is_kept_by_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let (old_config, local) = setup(dir.path(), "/home/{name}", "");
    let alice = user("alice", 200_001, 200_001, "/home/alice");
    let mut db = Db::default();
    assert!(pull(&mut db, std::slice::from_ref(&alice), &[], &old_config, &local).is_empty());
    // Both sides now say home = "/srv/home/{name}"; the publisher's alice is unchanged.
    let (new_config, local) = setup(dir.path(), "/srv/home/{name}", "");
    let skipped = pull(&mut db, std::slice::from_ref(&alice), &[], &new_config, &local);
    assert!(skipped.is_empty(), "alice refused: {skipped:?}");
    assert_eq!(db.users.len(), 1, "the host deleted alice (uid now retired)");
}

/// A template that config validation accepts, where `{name}` is not a whole path component:
/// the homes a sync gives are accepted.
#[test]
fn a_template_with_text_after_name_accepts_the_homes_a_sync_gives() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["/home/{name}.d", "/home/{name}_files", "/home/u-{name}-x/work"] {
        let (config, local) = setup(dir.path(), template, "");
        let home = config.free_home("alice", 200_001, |_| false);
        let mut db = Db::default();
        let skipped =
            pull(&mut db, &[user("alice", 200_001, 200_001, &home)], &[], &config, &local);
        assert!(skipped.is_empty(), "{template}: {skipped:?}");
    }
}

/// "Never a local account's home" compares paths as the kernel resolves them: a passwd home
/// written `/home/bob/` (useradd -d stores what it is given) or `//home/bob` is /home/bob,
/// which no snapshot user gets (a sync cannot give it: the name bob is local).
#[test]
fn a_local_home_spelt_another_way_is_never_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    for spelling in ["/home/bob/", "//home/bob", "/home//bob", "/home/./bob"] {
        let passwd = format!("bob:x:1000:1000::{spelling}:/bin/sh\n");
        let (config, local) = setup(dir.path(), "/home/{name}", &passwd);
        let mut db = Db::default();
        let skipped =
            pull(&mut db, &[user("mallory", 200_001, 200_001, "/home/bob")], &[], &config, &local);
        assert!(!skipped.is_empty(), "mallory got local bob's home (passwd says {spelling})");
    }
}

/// A host user's primary gid G (not its uid; upgraded hosts only) given up by one pull (the
/// gid set to the uid, allowed) is retired: the next never gives G to a new group or a new
/// user's uid, whose members would get the old group-owned files.
#[test]
fn a_primary_gid_given_up_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    // Legacy state (a pull before 9866545): x's gid is 200050, no group's.
    let mut db = Db::default();
    db.users.push(user("x", 200_001, 200_050, "/home/x"));
    // Same pull: refused (host_user_gids).
    let same = pull(
        &mut db.clone(),
        &[user("x", 200_001, 200_001, "/home/x")],
        &[group("dev", 200_050)],
        &config,
        &local,
    );
    assert_eq!(db.users[0].gid, 200_050);
    let _ = same;
    // Pull 1: x's gid becomes its uid (own_gid: allowed).
    assert!(
        pull(&mut db, &[user("x", 200_001, 200_001, "/home/x")], &[], &config, &local).is_empty()
    );
    // Pull 2: group dev at 200050.
    pull(
        &mut db,
        &[user("x", 200_001, 200_001, "/home/x")],
        &[group("dev", 200_050)],
        &config,
        &local,
    );
    assert!(
        !db.groups.iter().any(|g| g.gid == 200_050),
        "group dev got x's former primary gid 200050 (files group-owned by it)"
    );
}

/// The name in a home is one a sync could give (`names::validate_name`): never spaces, shell
/// characters, non-ASCII or all digits.
#[test]
fn a_home_no_name_could_give_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    for home in ["/home/$(id)", "/home/a b", "/home/\u{430}lice", "/home/12345", "/home/x*"] {
        let mut db = Db::default();
        let skipped =
            pull(&mut db, &[user("mallory", 200_001, 200_001, home)], &[], &config, &local);
        assert!(!skipped.is_empty(), "{home:?} accepted");
    }
}

/// The retired-id and primary-gid rules on a host that already has a user whose gid is not its uid (only an
/// upgraded host can: `own_gid` keeps new ones out, so the model never reaches this).
#[test]
fn a_host_users_primary_gid_is_held_and_a_retired_one_kept_only_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    let mut db = Db::default();
    db.users.push(user("x", 200_001, 200_050, "/home/x"));
    db.meta.retired_ids.insert(200_050); // its group was deleted
    let x = user("x", 200_001, 200_050, "/home/x");
    let skipped = pull(
        &mut db,
        &[x.clone(), user("z", 200_002, 200_050, "/home/z")],
        &[group("dev", 200_050)],
        &config,
        &local,
    );
    assert_eq!(db.users.len(), 1, "{skipped:?}");
    assert_eq!(db.users[0].gid, 200_050, "x keeps its retired gid");
    assert!(db.groups.is_empty(), "{skipped:?}");
    // A new user at uid 200050 (retired, and x's primary gid).
    let mut probe = db.clone();
    let skipped = pull(
        &mut probe,
        &[x.clone(), user("y", 200_050, 200_050, "/home/y")],
        &[],
        &config,
        &local,
    );
    assert!(!probe.users.iter().any(|u| u.uid == 200_050), "{skipped:?}");
    // x renamed (same uid: the same account) keeps it too.
    let renamed = User { name: "x2".into(), ..x };
    assert!(pull(&mut db, &[renamed], &[], &config, &local).is_empty());
}

/// The primary-gid rule alone (the gid not retired): a host user's primary gid is no new group's gid and no
/// new user's uid.
#[test]
fn a_host_users_primary_gid_not_retired_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    let mut db = Db::default();
    db.users.push(user("x", 200_001, 200_050, "/home/x"));
    let x = user("x", 200_001, 200_050, "/home/x");
    let mut probe = db.clone();
    let skipped =
        pull(&mut probe, std::slice::from_ref(&x), &[group("dev", 200_050)], &config, &local);
    assert!(probe.groups.is_empty(), "{skipped:?}");
    let mut probe = db.clone();
    let skipped = pull(&mut probe, &[user("y", 200_050, 200_050, "/home/y")], &[], &config, &local);
    assert!(probe.users.is_empty(), "{skipped:?}");
}

// Review of ff91f07 (helper-48): each failed before its fix.

/// A sync never gives a home for a name the host's policy refuses (`ubuntu`, `admin`,
/// `root`, `[unix] reserved_names`): a local account created later would find it, owned by
/// someone else.
#[test]
fn a_home_for_a_reserved_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    for home in ["/home/ubuntu", "/home/admin", "/home/root", "/home/sudo"] {
        let mallory = user("mallory", 200_001, 200_001, home);
        let got = pull(&mut Db::default(), &[mallory], &[], &config, &local);
        assert!(!got.is_empty(), "{home} given to mallory");
    }
}

/// A host user's home kept from a former template (`/home/alice/`) is the directory
/// `/home/alice`: a new account never gets it.
#[test]
fn a_host_users_home_spelt_another_way_is_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    for held in ["/home/alice/", "/home//alice", "/home/./alice"] {
        let mut db = Db::default();
        db.users.push(user("alice", 200_001, 200_001, held));
        let users = [
            user("alice", 200_001, 200_001, held),
            user("mallory", 200_002, 200_002, "/home/alice"),
        ];
        let got = pull(&mut db, &users, &[], &config, &local);
        assert!(got.iter().any(|s| s.starts_with("mallory")), "mallory got alice's home {held}");
    }
}

/// The same for a retired home: a deleted user's `/home/carol/` is `/home/carol`.
#[test]
fn a_retired_home_spelt_another_way_is_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    let mut db = Db::default();
    db.meta.retired_homes.insert("/home/carol/".to_string());
    let mallory = user("mallory", 200_002, 200_002, "/home/carol");
    let got = pull(&mut db, &[mallory], &[], &config, &local);
    assert!(!got.is_empty(), "mallory got the retired home /home/carol/");
}

// Review of 4e860cb (helper-49).

/// A user renamed on the publisher keeps its home, named after its old name. A host that
/// reserves that old name keeps the user it has (own home), and a fresh host refuses it.
#[test]
fn a_renamed_users_home_named_after_a_reserved_name() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, local) = setup(dir.path(), "/home/{name}", "");
    let carol = user("carol", 200_001, 200_001, "/home/carol");
    let mut db = Db::default();
    assert!(pull(&mut db, std::slice::from_ref(&carol), &[], &config, &local).is_empty());
    config.unix.reserved_names = vec!["carol".to_string()];
    let renamed = user("carol.w", 200_001, 200_001, "/home/carol");
    let got = pull(&mut db, std::slice::from_ref(&renamed), &[], &config, &local);
    assert!(got.is_empty(), "existing host: {got:?}");
    assert_eq!(db.users.len(), 1);
    let got = pull(&mut Db::default(), &[renamed], &[], &config, &local);
    assert_eq!(got.len(), 1, "fresh host: {got:?}");
}

/// A publisher whose `[unix] home` is written "/home/{name}/" gave its users "/home/alice/"
/// (now it uses the template resolved, and a sync never moves a home): a fresh host accepts
/// them, "/home/alice/" being "/home/alice".
#[test]
fn a_fresh_host_accepts_homes_of_a_template_written_another_way() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    let alice = user("alice", 200_001, 200_001, "/home/alice/");
    let got = pull(&mut Db::default(), &[alice], &[], &config, &local);
    assert!(got.is_empty(), "{got:?}");
}

// Review of 775fa70 (helper-50).

/// A fresh host accepts a publisher's "/home/alice/" (it is "/home/alice") and stores it
/// resolved, as a sync would give it: pam_mkhomedir's helper takes "/home/alice/" badly
/// (makes "/home/alice" as root 0755, then fails), and systemd's `valid_home` refuses "//"
/// and "/./".
#[test]
fn a_new_users_home_is_installed_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path(), "/home/{name}", "");
    for (name, uid, written) in [
        ("alice", 200_001, "/home/alice/"),
        ("bob", 200_002, "/home//bob"),
        ("carol", 200_003, "/home/./carol"),
        ("dave", 200_004, "/home/dave/."),
    ] {
        let mut db = Db::default();
        let got = pull(&mut db, &[user(name, uid, uid, written)], &[], &config, &local);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(db.users[0].home, format!("/home/{name}"), "{written}");
    }
}
