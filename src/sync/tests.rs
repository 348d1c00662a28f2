use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::directory::{CompactUser, DirectoryGroup, DirectoryUser, NoProgress, PasswordCheck};
use crate::local_accounts::LocalAccounts;
use crate::login_state::LoginStates;
use crate::privileges::{Privilege, PrivilegeSet};
use crate::user::{AuthMethod, Origin, User};
use crate::user_edits::{add_user, set_user, NewUser, UserChanges};

/// A directory in memory; `fail` makes `list` fail like an unreachable server.
struct FakeDirectory {
    listing: Listing,
    fail: bool,
}

impl Directory for FakeDirectory {
    fn list(&mut self, _progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        if self.fail {
            return Err(DirectoryError::Connect {
                server: "fake".into(),
                command: "authenticate".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(self.listing.clone())
    }

    fn check_password(
        &mut self,
        _login: &str,
        _password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        Ok(PasswordCheck::Rejected)
    }

    fn server(&self) -> &str {
        "fake"
    }
}

fn person(email: &str, full_name: &str) -> DirectoryUser {
    DirectoryUser {
        login_name: email.to_string(),
        identity: format!("icewarp:{}", email.to_lowercase()),
        full_name: full_name.to_string(),
        emails: vec![email.to_string()],
        enabled: true,
        distinguished_name: None,
        limits: crate::user::AccountLimits::default(),
    }
}

/// `person(email)` logging in as `login`.
fn named(email: &str, login: &str) -> DirectoryUser {
    DirectoryUser { login_name: login.to_string(), ..person(email, "A") }
}

fn listing(users: Vec<DirectoryUser>) -> Listing {
    let users = users.into_iter().map(compact).collect();
    Listing { origin: Origin::Icewarp, users, groups: vec![], warnings: vec![] }
}

fn compact(user: DirectoryUser) -> CompactUser {
    CompactUser::new(user).unwrap()
}

/// Changes a listed user as a directory would.
fn edit(user: &mut CompactUser, change: impl FnOnce(&mut DirectoryUser)) {
    let mut parts = user.to_parts();
    change(&mut parts);
    *user = compact(parts);
}

struct Setup {
    dir: tempfile::TempDir,
    config: Config,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("passwd"),
            "root:x:0:0::/root:/bin/sh\nlocaluser:x:1000:1000::/home/l:/bin/sh\n",
        )
        .unwrap();
        let path = dir.path().join("dircache.toml");
        let text = format!(
            "[cache]\ndir = {:?}\n[unix]\nlocal_passwd = {:?}\nlocal_group = {:?}\n\
             local_subuid = {:?}\nlocal_subgid = {:?}\n\
             [passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{extra}",
            dir.path().join("cache"),
            dir.path().join("passwd"),
            dir.path().join("group"),
            dir.path().join("subuid"),
            dir.path().join("subgid"),
        );
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::load(&path).unwrap();
        Setup { dir, config }
    }

    fn sync(&self, listing: &Listing, options: SyncOptions) -> Result<SyncOutcome, SyncError> {
        self.sync_at(listing, options, 1_000)
    }

    fn sync_at(
        &self,
        listing: &Listing,
        options: SyncOptions,
        now: u64,
    ) -> Result<SyncOutcome, SyncError> {
        let mut directory = FakeDirectory { listing: listing.clone(), fail: false };
        run_sync(&self.config, &mut directory, options, now, &mut NoProgress)
    }

    fn user(&self, name: &str) -> User {
        self.cache().load().unwrap().user(name).unwrap().clone()
    }

    fn cache(&self) -> CacheDir {
        CacheDir::new(&self.config.cache.dir)
    }

    /// `user set NAME …`, as an administrator would between syncs.
    fn change(&self, name: &str, changes: UserChanges) {
        self.cache()
            .update(Duration::from_secs(1), 2, |db| set_user(db, name, changes, 2).map(|_| ()))
            .unwrap();
    }

    fn cache_path(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn add_manual(&self, name: &str, auth: AuthMethod) {
        let new = NewUser {
            name: name.into(),
            full_name: None,
            emails: vec![],
            auth,
            privileges: Some(vec![Privilege::Login, Privilege::Admin]),
            password_hash: None,
        };
        let local = LocalAccounts::default();
        self.cache()
            .update(Duration::from_secs(1), 1, |db| {
                add_user(db, &self.config, &local, new, 1).map(|_| ())
            })
            .unwrap();
    }
}

const SYNC: SyncOptions = SyncOptions { dry_run: false, force: false };
const DRY: SyncOptions = SyncOptions { dry_run: true, force: false };

/// Every file below `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.extend(snapshot(&path));
            } else {
                out.push((
                    path.clone(),
                    fs::read(&path).unwrap_or_default(),
                    meta.modified().unwrap(),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn creates_directory_users_with_default_privileges() {
    let setup = Setup::new("");
    let outcome = setup.sync(&listing(vec![person("alice@example.com", "Alice")]), SYNC).unwrap();
    assert_eq!(outcome.report.created, ["alice@example.com"]);
    assert!(outcome.report.generation.is_some());
    let db = setup.cache().load().unwrap();
    let alice = db.user("alice@example.com").unwrap();
    assert_eq!(alice.auth, AuthMethod::Directory);
    assert_eq!(alice.origin, Origin::Icewarp);
    assert_eq!(alice.privileges, PrivilegeSet::from([Privilege::Login, Privilege::ReadOwnArchive]));
    assert_eq!(alice.home, "/home/alice@example.com");
    let [low, high] = crate::ids::DEFAULT_UID_RANGE;
    assert!((low..=high).contains(&alice.uid));
    assert_eq!(alice.uid, alice.gid);
}

#[test]
fn updates_directory_fields_but_never_privileges_or_auth() {
    let setup = Setup::new("");
    let mut alice = person("alice@example.com", "Alice");
    setup.sync(&listing(vec![alice.clone()]), SYNC).unwrap();
    let changes = UserChanges { grant: vec![Privilege::Admin], ..UserChanges::default() };
    setup.change("alice@example.com", changes);
    let uid_before = setup.cache().load().unwrap().user("alice@example.com").unwrap().uid;

    alice.full_name = "Alice Liddell".into();
    alice.emails.push("al@example.com".into());
    alice.enabled = false;
    let outcome = setup.sync(&listing(vec![alice]), SYNC).unwrap();
    assert_eq!(outcome.report.updated, ["alice@example.com"]);
    let db = setup.cache().load().unwrap();
    let stored = db.user("alice@example.com").unwrap();
    assert_eq!(stored.full_name, "Alice Liddell");
    assert_eq!(stored.emails, ["alice@example.com", "al@example.com"]);
    assert!(!stored.enabled);
    assert!(stored.privileges.contains(&Privilege::Admin), "a sync must not touch privileges");
    assert_eq!(stored.auth, AuthMethod::Directory);
    assert_eq!(stored.uid, uid_before);
}

#[test]
fn an_unchanged_directory_writes_nothing() {
    let setup = Setup::new("");
    let list = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&list, SYNC).unwrap();
    let before = snapshot(&setup.cache_path().join("gen-000000000001"));
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.unchanged, 1);
    assert_eq!(outcome.report.generation, None);
    assert_eq!(snapshot(&setup.cache_path().join("gen-000000000001")), before);
    assert!(!setup.cache_path().join("gen-000000000002").exists());
}

#[test]
fn a_sync_seals_the_generation_for_the_local_files_and_reseals_when_they_change() {
    let setup = Setup::new("");
    let list = listing(vec![person("alice@example.com", "Alice")]);
    let seal = || setup.cache().open::<crate::cache::PublicUser>().unwrap().local_seal();
    let local_now = || setup.config.local_accounts().unwrap().files_seal();
    let wall = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // Files changed just before the run: not sealed (a change within the same tick of the
    // file clock could keep the times a seal covers).
    setup.sync_at(&list, SYNC, wall().as_secs()).unwrap();
    assert_eq!(seal(), 0);
    // Left alone for a while: sealed.
    setup.sync_at(&list, SYNC, wall().as_secs() + 10).unwrap();
    assert_eq!(seal(), local_now());
    // A new local account, and nothing new in the directory: a new generation all the same,
    // sealed for the files as they are now (until then NSS reads them on every first
    // lookup of a process), once they have settled.
    let passwd = setup.dir.path().join("passwd");
    let mut text = fs::read_to_string(&passwd).unwrap();
    text.push_str("newlocal:x:1001:1001::/home/n:/bin/sh\n");
    fs::write(&passwd, text).unwrap();
    let outcome = setup.sync_at(&list, SYNC, wall().as_secs()).unwrap();
    assert_eq!(outcome.report.generation, None, "a seal that no longer matches is harmless");
    let outcome = setup.sync_at(&list, SYNC, wall().as_secs() + 10).unwrap();
    assert_eq!(outcome.report.generation, Some(3));
    assert_eq!(outcome.report.unchanged, 1);
    assert_eq!(seal(), local_now());
    // Sealed already: nothing to write.
    assert_eq!(setup.sync_at(&list, SYNC, wall().as_secs() + 10).unwrap().report.generation, None);
}

#[test]
fn a_generation_that_holds_a_local_name_is_not_sealed() {
    let setup = Setup::new("");
    setup.sync(&listing(vec![person("alice@example.com", "Alice")]), SYNC).unwrap();
    // `localuser` becomes a cached user's name behind the sync's back (a cache from before
    // the local account existed), so the generation the next sync writes cannot be sealed.
    setup
        .cache()
        .update(Duration::from_secs(1), 2, |db| {
            db.users[0].name = "localuser".into();
            Ok::<_, CacheError>(())
        })
        .unwrap();
    let local = setup.config.local_accounts().unwrap();
    let db = setup.cache().load().unwrap();
    let later = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let later = later.as_secs() + 10;
    assert_eq!(db.seal_against(&local, later), 0);
    let mut clean = db.clone();
    clean.users[0].name = "alice@example.com".into();
    assert_eq!(clean.seal_against(&local, later), local.files_seal());
    for (uid, gid) in [(1000, 200_000), (200_000, 1000)] {
        let mut colliding = clean.clone();
        (colliding.users[0].uid, colliding.users[0].gid) = (uid, gid);
        assert_eq!(colliding.seal_against(&local, later), 0, "uid {uid} gid {gid}");
    }
    let mut group = clean.clone();
    group.groups.push(crate::user::sample_group("g", 300_500, &["localuser"]));
    assert_eq!(group.seal_against(&local, later), 0, "a local name among a group's members");
}

#[test]
fn manual_users_are_linked_only_with_directory_auth() {
    let setup = Setup::new("");
    setup.add_manual("alice@example.com", AuthMethod::Directory);
    setup.add_manual("bob@example.com", AuthMethod::Local);
    let list =
        listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.linked, ["alice@example.com"]);
    assert_eq!(outcome.report.skipped.len(), 1);
    assert_eq!(outcome.report.skipped[0].name, "bob@example.com");
    assert!(outcome.report.skipped[0].reason.contains("--auth directory"));
    let db = setup.cache().load().unwrap();
    let alice = db.user("alice@example.com").unwrap();
    assert_eq!(alice.origin, Origin::Icewarp);
    assert!(alice.privileges.contains(&Privilege::Admin), "linking keeps privileges");
    assert_eq!(db.user("bob@example.com").unwrap().origin, Origin::Manual);
}

#[test]
fn deletes_only_when_configured_and_only_directory_users() {
    let full = listing((0..20).map(|i| person(&format!("u{i}@example.com"), "U")).collect());
    let mut shorter = full.clone();
    shorter.users.truncate(19);

    let keep = Setup::new("");
    keep.sync(&full, SYNC).unwrap();
    let outcome = keep.sync(&shorter, SYNC).unwrap();
    assert!(outcome.report.deleted.is_empty());
    assert!(outcome.report.warnings.iter().any(|w| w.contains("u19@example.com")));
    // Kept but disabled while the directory does not list it; enabled when it does again.
    let enabled =
        |setup: &Setup| setup.cache().load().unwrap().user("u19@example.com").unwrap().enabled;
    assert!(!enabled(&keep));
    assert_eq!(keep.sync(&shorter, SYNC).unwrap().report.generation, None, "nothing new to do");
    keep.sync(&full, SYNC).unwrap();
    assert!(enabled(&keep));
    // Disabling is undone by the next listing, so the delete limit does not hold it back.
    let mut most_gone = full.clone();
    most_gone.users.truncate(5);
    keep.sync(&most_gone, SYNC).unwrap();
    assert!(!enabled(&keep));

    let delete = Setup::new("[sync]\ndelete_missing_users = true\n");
    delete.sync(&full, SYNC).unwrap();
    let switched = UserChanges { auth: Some(AuthMethod::Local), ..UserChanges::default() };
    delete.change("u18@example.com", switched);
    let uid = delete.cache().load().unwrap().user("u19@example.com").unwrap().uid;
    let mut two_gone = full.clone();
    two_gone.users.truncate(18);
    let outcome = delete.sync(&two_gone, SYNC).unwrap();
    assert_eq!(outcome.report.deleted, ["u19@example.com"], "u18 has a local password: kept");
    let db = delete.cache().load().unwrap();
    assert!(db.user("u19@example.com").is_none() && db.user("u18@example.com").is_some());
    assert!(db.meta.retired_ids.contains(&uid));
}

#[test]
fn the_delete_limit_and_empty_listings_need_force() {
    let setup = Setup::new("[sync]\ndelete_missing_users = true\nmax_delete_percent = 10\n");
    let full = listing((0..10).map(|i| person(&format!("u{i}@example.com"), "U")).collect());
    setup.sync(&full, SYNC).unwrap();
    let mut half = full.clone();
    half.users.truncate(5);
    let before = snapshot(&setup.cache_path());

    let err = setup.sync(&half, SYNC).err().unwrap();
    assert!(matches!(err, SyncError::TooManyDeletes { would: 5, of: 10, limit: 10 }), "{err}");
    let dry = setup.sync(&half, DRY).unwrap();
    assert_eq!(dry.report.deleted.len(), 5);
    assert!(dry.report.errors[0].contains("max_delete_percent"));
    let err = setup.sync(&listing(vec![]), SYNC).err().unwrap();
    assert!(matches!(err, SyncError::EmptyListing));
    assert_eq!(snapshot(&setup.cache_path()), before, "refused runs change nothing");

    let forced = setup.sync(&half, SyncOptions { dry_run: false, force: true }).unwrap();
    assert_eq!(forced.report.deleted.len(), 5);
}

#[test]
fn dry_run_writes_nothing_at_all() {
    let setup = Setup::new("");
    let list = listing(vec![person("alice@example.com", "Alice")]);
    let outcome = setup.sync(&list, DRY).unwrap();
    assert_eq!(outcome.report.created, ["alice@example.com"]);
    assert!(outcome.report.dry_run);
    assert!(!setup.cache_path().exists(), "not even the cache directory or a lock file");

    setup.sync(&list, SYNC).unwrap();
    let before = snapshot(&setup.cache_path());
    let mut changed = list.clone();
    changed.users.push(compact(person("bob@example.com", "Bob")));
    let outcome = setup.sync(&changed, DRY).unwrap();
    assert_eq!(outcome.report.created, ["bob@example.com"]);
    assert_eq!(snapshot(&setup.cache_path()), before);
}

#[test]
fn a_fetch_error_leaves_the_cache_byte_identical() {
    let setup = Setup::new("");
    setup.sync(&listing(vec![person("alice@example.com", "Alice")]), SYNC).unwrap();
    let before = snapshot(&setup.cache_path());
    let mut broken = FakeDirectory { listing: listing(vec![]), fail: true };
    let err = run_sync(&setup.config, &mut broken, SYNC, 2_000, &mut NoProgress).err().unwrap();
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_eq!(snapshot(&setup.cache_path()), before);
}

#[test]
fn ids_are_the_same_on_two_fresh_hosts() {
    let list = listing((0..50).map(|i| person(&format!("u{i}@example.com"), "U")).collect());
    let (a, b) = (Setup::new(""), Setup::new(""));
    a.sync(&list, SYNC).unwrap();
    b.sync(&list, SYNC).unwrap();
    let uids = |s: &Setup| -> Vec<(String, u32)> {
        let mut v: Vec<_> =
            s.cache().load().unwrap().users.iter().map(|u| (u.name.clone(), u.uid)).collect();
        v.sort();
        v
    };
    assert_eq!(uids(&a), uids(&b));
}

#[test]
fn collisions_and_bad_names_are_skipped_with_a_reason() {
    let setup = Setup::new("");
    let mut twin = person("Alice@example.com", "Other Alice");
    twin.identity = "icewarp:alice-2".into();
    let mut colon = person("a:b@example.com", "Colon");
    colon.identity = "icewarp:colon".into();
    let list = listing(vec![
        person("alice@example.com", "Alice"),
        twin,
        person("root", "Evil Root"),
        person("localuser", "Shadow"),
        colon,
        person("..", "Dots"),
    ]);
    let outcome = setup.sync(&list, SYNC).unwrap();
    // Entries are taken in the order of their identities, whatever the listing's order:
    // of the two alices, the one with the smaller identity (icewarp:alice-2) gets the name.
    assert_eq!(outcome.report.created, ["Alice@example.com"]);
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["..", "alice@example.com", "a:b@example.com", "localuser", "root"]);
    assert!(setup.cache().load().unwrap().user("root").is_none());
}

#[test]
fn oversized_entries_are_skipped_and_do_not_fail_the_sync() {
    // A 17 MiB display name used to make the record too large for the cache format, which
    // failed every sync; a 10 MB name was reported whole in the report and status file.
    let setup = Setup::new("");
    let huge_name = format!("{}@example.com", "n".repeat(10 * 1024 * 1024));
    let mut many = person("many@example.com", "Many");
    many.emails = (0..1001).map(|i| format!("a{i}@example.com")).collect();
    let list = listing(vec![
        person("alice@example.com", "Alice"),
        person("big@example.com", &"x".repeat(17 * 1024 * 1024)),
        person(&huge_name, "Huge"),
        many,
    ]);
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.created, ["alice@example.com"]);
    let skipped: Vec<(&str, &str)> =
        outcome.report.skipped.iter().map(|s| (s.name.as_str(), s.reason.as_str())).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, "big@example.com");
    assert!(skipped[0].1.contains("the full name is 17825792 bytes long"), "{}", skipped[0].1);
    assert!(skipped[1].1.contains("1001 addresses"), "{}", skipped[1].1);
    assert!(skipped[2].0.len() < 100 && skipped[2].0.ends_with("(10485772 bytes)"));
    assert!(skipped[2].1.contains("10485772 bytes long; at most 256"), "{}", skipped[2].1);

    // An existing user whose entry grows too large keeps its record and is not deleted.
    let setup = Setup::new("[sync]\ndelete_missing_users = true\n");
    setup.sync(&listing(vec![person("carol@example.com", "Carol")]), SYNC).unwrap();
    let grown = listing(vec![person("carol@example.com", &"y".repeat(5000))]);
    let outcome = setup.sync(&grown, SYNC).unwrap();
    assert!(outcome.report.deleted.is_empty() && outcome.report.updated.is_empty());
    assert!(outcome.report.skipped[0].reason.starts_with("not updated: the full name is 5000"));
    assert_eq!(setup.cache().load().unwrap().user("carol@example.com").unwrap().full_name, "Carol");
}

#[test]
fn groups_become_unix_groups_with_stable_gids() {
    let setup = Setup::new("");
    let alice = person("alice@example.com", "Alice");
    let bob = person("bob@example.com", "Bob");
    let mut list = listing(vec![alice, bob]);
    list.groups = vec![DirectoryGroup {
        name: "staff@example.com".into(),
        identity: "icewarp:staff@example.com".into(),
        members: vec![0],
    }];
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.groups_created, ["staff@example.com"]);
    let db = setup.cache().load().unwrap();
    let staff = &db.groups[0];
    assert_eq!(staff.members, ["alice@example.com"]);
    assert!(!db.users.iter().any(|u| u.uid == staff.gid || u.gid == staff.gid));
    assert_eq!(db.user("alice@example.com").unwrap().groups, ["staff@example.com"]);

    list.groups[0].members.push(1);
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.groups_updated, ["staff@example.com"]);
    let db = setup.cache().load().unwrap();
    assert_eq!(db.groups[0].gid, staff.gid);
    assert_eq!(db.groups[0].members, ["alice@example.com", "bob@example.com"]);
}

#[test]
fn a_known_account_keeps_its_name_when_a_new_one_claims_it_first() {
    let setup = Setup::new("[sync]\ndelete_missing_users = true\n");
    let mut users: Vec<DirectoryUser> =
        (0..20).map(|i| person(&format!("u{i}@example.com"), "U")).collect();
    users.push(named("alice@a.example", "alice"));
    setup.sync(&listing(users.clone()), SYNC).unwrap();
    let alice = setup.cache().load().unwrap().user("alice").unwrap().clone();

    // A new account with the same login name, listed first (and twice more later: the
    // cached one is never deleted, the name never changes hands).
    users.insert(0, named("alice@b.example", "alice"));
    for _ in 0..2 {
        let outcome = setup.sync(&listing(users.clone()), SYNC).unwrap();
        assert!(outcome.report.deleted.is_empty(), "{:?}", outcome.report.deleted);
        let db = setup.cache().load().unwrap();
        let holder = db.user("alice").unwrap();
        assert_eq!(
            (holder.uid, &holder.directory_identity),
            (alice.uid, &alice.directory_identity)
        );
        assert!(outcome.report.skipped.iter().any(|s| s.name == "alice"), "the newcomer");
    }
}

#[test]
fn an_administrators_disable_outlasts_syncs_until_enabled() {
    let setup = Setup::new("");
    let users = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&users, SYNC).unwrap();
    let set = |enabled: bool| {
        let changes = UserChanges { enabled: Some(enabled), ..UserChanges::default() };
        setup.change("alice@example.com", changes);
    };
    let alice = || setup.cache().load().unwrap().user("alice@example.com").unwrap().clone();

    set(false);
    for _ in 0..2 {
        setup.sync(&users, SYNC).unwrap();
        assert!(!alice().enabled && alice().disabled_by_admin, "the directory says enabled");
    }
    set(true);
    assert!(!alice().enabled && !alice().disabled_by_admin, "enabled by the next sync only");
    setup.sync(&users, SYNC).unwrap();
    assert!(alice().enabled, "the directory lists it as enabled");
    // From then on the directory decides again.
    let mut disabled = users.clone();
    edit(&mut disabled.users[0], |u| u.enabled = false);
    setup.sync(&disabled, SYNC).unwrap();
    assert!(!alice().enabled && !alice().disabled_by_admin);
    setup.sync(&users, SYNC).unwrap();
    assert!(alice().enabled);
}

#[test]
fn a_new_user_never_gets_the_home_a_renamed_user_kept() {
    let setup = Setup::new("");
    let mut users = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&users, SYNC).unwrap();
    // Renamed in the directory: same identity, new login name; the home stays.
    edit(&mut users.users[0], |u| u.login_name = "alice2@example.com".to_string());
    setup.sync(&users, SYNC).unwrap();
    let renamed = setup.cache().load().unwrap().user("alice2@example.com").unwrap().clone();
    assert_eq!(renamed.home, "/home/alice@example.com");
    // A new account takes the old name: not the old home.
    users.users.push(compact(person("alice@example.com", "New Alice")));
    edit(&mut users.users[1], |u| u.identity = "icewarp:new-alice@example.com".to_string());
    let outcome = setup.sync(&users, SYNC).unwrap();
    let newcomer = setup.cache().load().unwrap().user("alice@example.com").unwrap().clone();
    assert_ne!(newcomer.uid, renamed.uid);
    assert_eq!(newcomer.home, format!("/home/alice@example.com.{}", newcomer.uid));
    assert!(outcome.report.warnings.iter().any(|w| w.contains("belongs to another cache user")));
}

#[test]
fn a_blocked_rename_changes_nothing_else_of_anyone() {
    let setup = Setup::new("");
    let mut users =
        listing(vec![named("bob@example.com", "bob"), named("alice@example.com", "alice")]);
    setup.sync(&users, SYNC).unwrap();
    // bob is renamed to "alice" (listed first), and alice is disabled, in one change.
    edit(&mut users.users[0], |u| u.login_name = "alice".to_string());
    edit(&mut users.users[1], |u| u.enabled = false);
    let outcome = setup.sync(&users, SYNC).unwrap();
    let db = setup.cache().load().unwrap();
    assert!(!db.user("alice").unwrap().enabled, "alice's own change still applies");
    assert_eq!(
        db.user("alice").unwrap().directory_identity.as_deref(),
        Some("icewarp:alice@example.com")
    );
    assert!(db.user("bob").is_some(), "bob's rename is blocked, bob stays bob");
    assert!(outcome.report.skipped.iter().any(|s| s.reason.contains("not renamed from bob")));
}

#[test]
fn enabling_a_user_switched_to_a_local_password_takes_effect_at_once() {
    let setup = Setup::new("");
    let users = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&users, SYNC).unwrap();
    let change = |changes: UserChanges| setup.change("alice@example.com", changes);
    change(UserChanges { auth: Some(AuthMethod::Local), ..UserChanges::default() });
    change(UserChanges { enabled: Some(false), ..UserChanges::default() });
    // The directory drops it: a local-password user is kept as it is, not disabled by a sync.
    setup.sync(&listing(vec![]), SyncOptions { dry_run: false, force: true }).unwrap();
    change(UserChanges { enabled: Some(true), ..UserChanges::default() });
    let alice = setup.cache().load().unwrap().user("alice@example.com").unwrap().clone();
    assert!(alice.enabled && !alice.disabled_by_admin, "no sync would ever enable it");
}

/// A group of `listing` whose members are the listed users with these addresses.
fn group(listing: &Listing, name: &str, members: &[&str]) -> DirectoryGroup {
    DirectoryGroup {
        name: name.into(),
        identity: format!("icewarp:{}", name.to_lowercase()),
        members: member_positions(listing, members),
    }
}

/// The positions in `listing` of the users with these addresses (none for one not listed).
fn member_positions(listing: &Listing, members: &[&str]) -> Vec<u32> {
    let identities: Vec<String> = members.iter().map(|m| format!("icewarp:{m}")).collect();
    (0..listing.users.len() as u32)
        .filter(|at| identities.iter().any(|id| id == listing.users[*at as usize].identity()))
        .collect()
}

#[test]
fn names_with_system_meaning_never_become_users_or_groups() {
    // None of these is in the test's /etc/passwd or /etc/group: "not local right now" is not
    // enough, the names carry privilege wherever sudoers, sshd or a later package trusts them.
    let mut setup = Setup::new("");
    setup.config.unix.reserved_names = vec!["finance".into()];
    let alice = named("alice@example.com", "alice");
    let mut list = listing(vec![
        alice,
        named("admin@example.com", "admin"),
        named("wheel@example.com", "Wheel"),
        named("sd@example.com", "systemd-coredump"),
        named("fin@example.com", "finance"),
        named("x@example.com", "x;id"),
        named("y@example.com", "$(reboot)"),
        named("z@example.com", "a*b"),
    ]);
    list.groups = vec![
        group(&list, "sudo", &["alice@example.com"]),
        group(&list, "docker", &["alice@example.com"]),
        group(&list, "Admin", &["alice@example.com"]),
        group(&list, "devs", &["alice@example.com"]),
    ];
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.created, ["alice"]);
    assert_eq!(outcome.report.groups_created, ["devs"]);
    let skipped: BTreeSet<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    let expected = [
        "admin",
        "Wheel",
        "systemd-coredump",
        "finance",
        "x;id",
        "$(reboot)",
        "a*b",
        "sudo",
        "docker",
        "Admin",
    ];
    assert_eq!(skipped, expected.into_iter().collect());
    for skip in &outcome.report.skipped {
        assert!(skip.reason.contains("invalid name"), "{skip:?}");
    }
    let db = setup.cache().load().unwrap();
    assert_eq!(db.users.len(), 1);
    assert_eq!(db.user("alice").unwrap().groups, ["devs"]);
    assert_eq!(db.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["devs"]);
}

#[test]
fn an_account_whose_name_becomes_reserved_is_disabled_and_its_group_dropped() {
    let mut list = listing(vec![named("fin@example.com", "finance")]);
    list.groups = vec![group(&list, "ops", &["fin@example.com"])];
    let mut setup = Setup::new("");
    setup.sync(&list, SYNC).unwrap();
    let uid = setup.cache().load().unwrap().user("finance").unwrap().uid;

    // The administrator reserves both names later.
    setup.config.unix.reserved_names = vec!["finance".into(), "ops".into()];
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.groups_deleted, ["ops"]);
    assert!(outcome.report.skipped.iter().any(|s| s.name == "finance"
        && s.reason.contains("disabled")
        && s.reason.contains("reserved_names")));
    let db = setup.cache().load().unwrap();
    let finance = db.user("finance").unwrap();
    assert!(!finance.enabled, "kept (its uid is never reused) but disabled");
    assert_eq!(finance.uid, uid);
    assert!(db.groups.is_empty());
}

#[test]
fn ids_do_not_depend_on_the_order_of_the_listing() {
    // Ten ids for eight users and two groups: the hash collides often, so the probing order
    // decides who gets which id. Two hosts whose servers list in opposite orders must agree.
    let users: Vec<DirectoryUser> =
        (0..8).map(|i| person(&format!("u{i}@example.com"), "U")).collect();
    let mut forward = listing(users.clone());
    forward.groups =
        vec![group(&forward, "g1@example.com", &[]), group(&forward, "g2@example.com", &[])];
    let mut backward = listing(users.into_iter().rev().collect());
    backward.groups = forward.groups.iter().rev().cloned().collect();
    let (mut a, mut b) = (Setup::new(""), Setup::new(""));
    a.config.unix.uid_range = [300_000, 300_009];
    b.config.unix.uid_range = [300_000, 300_009];
    a.sync(&forward, SYNC).unwrap();
    b.sync(&backward, SYNC).unwrap();
    let ids = |s: &Setup| -> BTreeSet<(String, u32)> {
        let db = s.cache().load().unwrap();
        let users = db.users.iter().map(|u| (u.name.clone(), u.uid));
        users.chain(db.groups.iter().map(|g| (g.name.clone(), g.gid))).collect()
    };
    assert_eq!(ids(&a).len(), 10);
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn subordinate_ids_of_local_users_are_never_handed_out() {
    let mut list = listing(vec![person("alice@example.com", "Alice")]);
    list.groups = vec![group(&list, "staff@example.com", &["alice@example.com"])];
    // Where alice and staff land on a host without subordinate ids…
    let plain = Setup::new("");
    plain.sync(&list, SYNC).unwrap();
    let slot = plain.user("alice@example.com").uid;
    let group_slot = plain.cache().load().unwrap().groups[0].gid;
    // …is inside ben's subordinate uids and carl's subordinate gids on this one.
    let setup = Setup::new("");
    let ben = slot - 100..=slot + 65_435;
    let carl = group_slot - 100..=group_slot + 65_435;
    fs::write(setup.dir.path().join("subuid"), format!("ben:{}:65536\n", ben.start())).unwrap();
    fs::write(setup.dir.path().join("subgid"), format!("carl:{}:65536\n", carl.start())).unwrap();
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.created, ["alice@example.com"]);
    let db = setup.cache().load().unwrap();
    let alice = db.user("alice@example.com").unwrap();
    let staff = &db.groups[0];
    for id in [alice.uid, alice.gid, staff.gid] {
        assert!(!ben.contains(&id) && !carl.contains(&id), "{id} is a subordinate id");
        let [low, high] = crate::ids::DEFAULT_UID_RANGE;
        assert!((low..=high).contains(&id), "{id}");
    }
    assert!(outcome.report.warnings.is_empty(), "{:?}", outcome.report.warnings);
}

#[test]
fn a_user_already_inside_a_subordinate_range_keeps_its_id_with_a_warning() {
    let setup = Setup::new("");
    let list = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&list, SYNC).unwrap();
    let uid = setup.user("alice@example.com").uid;
    // A local user gets subordinate gids over alice's id after she was created.
    fs::write(setup.dir.path().join("subgid"), format!("ben:{}:65536\n", uid - 1)).unwrap();
    for options in [DRY, SYNC] {
        let outcome = setup.sync(&list, options).unwrap();
        let warnings = &outcome.report.warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let expected = format!(
            "ids inside local user ben's subordinate gids {}-{} ({}) belong to dircache user \
             alice@example.com (uid {uid}, gid {uid}): ben can act as them",
            uid - 1,
            uid + 65_534,
            setup.dir.path().join("subgid").display(),
        );
        assert!(warnings[0].starts_with(&expected), "{}", warnings[0]);
        assert_eq!(setup.user("alice@example.com").uid, uid, "ids are never changed");
    }
}

const DAY: u64 = 86_400;

/// Gives `user` a cached offline credential stored at `stored_at`, as a login would.
fn cache_credential(states: &LoginStates, user: &User, stored_at: u64) {
    states
        .update(user, |state| {
            state.offline_hash = Some("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into());
            state.offline_stored_at = Some(stored_at);
        })
        .unwrap();
}

fn state_file(setup: &Setup, uid: u32) -> PathBuf {
    setup.cache_path().join("state").join(format!("{uid}.json"))
}

#[test]
fn a_returning_address_gets_the_default_privileges_and_keeps_its_ids() {
    let setup = Setup::new("");
    let both =
        listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&both, SYNC).unwrap();
    setup.change(
        "alice@example.com",
        UserChanges { grant: vec![Privilege::Admin], ..UserChanges::default() },
    );
    let before = setup.user("alice@example.com");

    let bob_only = listing(vec![person("bob@example.com", "Bob")]);
    let outcome = setup.sync_at(&bob_only, SYNC, 5_000).unwrap();
    assert!(outcome.report.returned.is_empty());
    let warning = "alice@example.com is no longer in the directory; disabled and kept \
                   (delete_missing_users = false); its cached offline credentials and login \
                   state are dropped";
    assert!(outcome.report.warnings.iter().any(|w| w == warning), "{:?}", outcome.report.warnings);
    let gone = setup.user("alice@example.com");
    assert_eq!((gone.enabled, gone.missing_since), (false, Some(5_000)));
    // Still missing at the next sync: marked since the first one, nothing to write.
    let outcome = setup.sync_at(&bob_only, SYNC, 6_000).unwrap();
    assert_eq!(outcome.report.generation, None);

    // Listed again: a dry run says so and writes nothing.
    let before_dry = snapshot(&setup.cache_path());
    let dry = setup.sync(&both, DRY).unwrap();
    assert_eq!(dry.report.returned, ["alice@example.com"]);
    assert_eq!(snapshot(&setup.cache_path()), before_dry);

    let outcome = setup.sync(&both, SYNC).unwrap();
    assert_eq!(outcome.report.returned, ["alice@example.com"]);
    assert_eq!(outcome.report.updated, ["alice@example.com"]);
    let back = setup.user("alice@example.com");
    assert_eq!((back.uid, &back.home), (before.uid, &before.home), "ids are kept once given");
    assert!(back.enabled && back.missing_since.is_none());
    assert_eq!(
        back.privileges,
        PrivilegeSet::from([Privilege::Login, Privilege::ReadOwnArchive]),
        "nothing granted to the previous holder of the address"
    );
    assert!(setup.sync(&both, SYNC).unwrap().report.returned.is_empty(), "returned only once");
}

#[test]
fn a_vanished_users_login_state_is_dropped_by_the_sync_that_commits_it() {
    let setup = Setup::new("[auth]\ncache_credentials = true\n");
    let all = listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&all, SYNC).unwrap();
    let states = LoginStates::new(&setup.cache_path());
    let (alice, bob) = (setup.user("alice@example.com"), setup.user("bob@example.com"));
    cache_credential(&states, &alice, 1_000);
    cache_credential(&states, &bob, 1_000);

    let bob_only = listing(vec![person("bob@example.com", "Bob")]);
    setup.sync(&bob_only, DRY).unwrap();
    assert!(state_file(&setup, alice.uid).exists(), "a dry run drops nothing");
    setup.sync(&bob_only, SYNC).unwrap();
    assert!(!state_file(&setup, alice.uid).exists(), "alice's offline credential survived");
    assert!(states.load(&bob).unwrap().offline_hash.is_some(), "bob's is his");

    // Someone tries alice's name while it is gone: whatever that records is dropped again,
    // at the latest by the sync that sees the address return.
    states.update(&alice, |state| state.record_failure(1_500)).unwrap();
    let outcome = setup.sync(&all, SYNC).unwrap();
    assert_eq!(outcome.report.returned, ["alice@example.com"]);
    assert!(!state_file(&setup, alice.uid).exists());
}

#[test]
fn every_sync_deletes_stale_offline_credentials_and_state_of_unknown_uids() {
    let setup = Setup::new("[auth]\ncache_credentials = true\noffline_days = 7\n");
    let all = listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&all, SYNC).unwrap();
    let states = LoginStates::new(&setup.cache_path());
    let (alice, bob) = (setup.user("alice@example.com"), setup.user("bob@example.com"));
    cache_credential(&states, &alice, DAY);
    cache_credential(&states, &bob, 5 * DAY);
    let stranger = User { uid: 123_456, ..bob.clone() };
    cache_credential(&states, &stranger, 9 * DAY);

    // Nothing changes in the directory; the sync writes no generation but still prunes.
    let outcome = setup.sync_at(&all, SYNC, 9 * DAY).unwrap();
    assert_eq!(outcome.report.generation, None);
    assert!(outcome.report.errors.is_empty(), "{:?}", outcome.report.errors);
    assert!(!state_file(&setup, alice.uid).exists(), "8 days old: deleted");
    assert!(states.load(&bob).unwrap().offline_hash.is_some(), "4 days old: kept");
    assert!(!state_file(&setup, stranger.uid).exists(), "no such user in the cache");
}

#[test]
fn a_new_user_never_gets_the_home_of_a_deleted_user() {
    let setup = Setup::new("[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n");
    let all = listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&all, SYNC).unwrap();
    let old = setup.user("alice@example.com");
    let states = LoginStates::new(&setup.cache_path());
    states.update(&old, |state| state.record_failure(1)).unwrap();

    let outcome = setup.sync(&listing(vec![person("bob@example.com", "Bob")]), SYNC).unwrap();
    assert_eq!(outcome.report.deleted, ["alice@example.com"]);
    assert!(!state_file(&setup, old.uid).exists(), "a deleted user's state is dropped");
    assert!(setup.cache().load().unwrap().meta.retired_homes.contains(&old.home));

    // The address comes back: a new user, with a new uid and not the old home.
    let outcome = setup.sync(&all, SYNC).unwrap();
    assert_eq!(outcome.report.created, ["alice@example.com"]);
    assert!(outcome.report.returned.is_empty(), "a deleted user does not return, it is new");
    let new = setup.user("alice@example.com");
    assert_ne!(new.uid, old.uid);
    assert_eq!(new.home, format!("/home/alice@example.com.{}", new.uid));
    let warning = format!(
        "alice@example.com: /home/alice@example.com was the home of a deleted user (its files \
         may still be there); the new user gets {}",
        new.home
    );
    assert!(outcome.report.warnings.contains(&warning), "{:?}", outcome.report.warnings);
}

#[test]
fn ids_do_not_depend_on_names_one_host_skips() {
    // Host B reserves three names host A creates: the other accounts still get the same ids
    // on both, in a range small enough that their probes cross the skipped accounts' slots.
    let users: Vec<DirectoryUser> =
        (0..8).map(|i| named(&format!("u{i}@example.com"), &format!("u{i}"))).collect();
    let list = listing(users);
    let (mut a, mut b) = (Setup::new(""), Setup::new(""));
    for setup in [&mut a, &mut b] {
        setup.config.unix.uid_range = [300_000, 300_009];
    }
    b.config.unix.reserved_names = vec!["u0".into(), "u1".into(), "u2".into()];
    a.sync(&list, SYNC).unwrap();
    b.sync(&list, SYNC).unwrap();
    let on_b = b.cache().load().unwrap();
    assert_eq!(on_b.users.len(), 5);
    let on_a = a.cache().load().unwrap();
    for user in &on_b.users {
        assert_eq!(on_a.user(&user.name).unwrap().uid, user.uid, "{}", user.name);
    }
}

#[test]
fn a_group_the_directory_drops_keeps_its_gid_but_no_members() {
    let alice = named("alice@example.com", "alice");
    let bob = named("bob@example.com", "bob");
    let mut list = listing(vec![alice, bob]);
    list.groups = vec![group(&list, "devs", &["alice@example.com", "bob@example.com"])];
    let setup = Setup::new("");
    setup.sync(&list, SYNC).unwrap();
    let gid = setup.cache().load().unwrap().groups[0].gid;

    list.groups.clear();
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert_eq!(outcome.report.groups_updated, ["devs"]);
    let db = setup.cache().load().unwrap();
    assert_eq!(db.groups.len(), 1, "kept: its gid is never reused");
    assert_eq!((db.groups[0].gid, db.groups[0].members.len()), (gid, 0));
}

#[test]
fn a_user_never_takes_the_name_of_a_group() {
    let alice = named("alice@example.com", "alice");
    let mut list = listing(vec![alice, named("bob@example.com", "bob")]);
    list.groups = vec![group(&list, "devs", &["alice@example.com"])];
    let setup = Setup::new("");
    setup.sync(&list, SYNC).unwrap();

    // A new account and a renamed one claim the group's name: the group keeps it.
    list.users.push(compact(named("devs@example.com", "devs")));
    edit(&mut list.users[1], |u| u.login_name = "DEVS".into());
    let outcome = setup.sync(&list, SYNC).unwrap();
    let reasons: Vec<&str> = outcome.report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(outcome.report.skipped.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains("a group has that name")), "{reasons:?}");
    let db = setup.cache().load().unwrap();
    assert!(db.user("bob").is_some() && db.user("devs").is_none());
    assert_eq!(db.groups[0].members, ["alice"]);
}

#[test]
fn metrics_before_any_sync_say_it_never_succeeded() {
    let text = metrics::prometheus_text(None, None);
    for line in ["dircache_last_sync_success 0", "dircache_last_sync_timestamp_seconds 0"] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    assert!(!text.contains("dircache_cache_users"), "no cache, no cache metrics: {text}");
}

// ----- [unix.local_groups] (issue 14 §1) -----

fn with_group(mut listing: Listing, name: &str, members: &[&str]) -> Listing {
    let members = member_positions(&listing, members);
    listing.groups.push(DirectoryGroup {
        name: name.to_string(),
        identity: format!("icewarp:{name}"),
        members,
    });
    listing
}

fn grants_setup() -> Setup {
    let setup = Setup::new("[unix.local_groups]\nsudo = [\"it-admins@example.com\"]\n");
    fs::write(setup.dir.path().join("group"), "root:x:0:\nsudo:x:27:\n").unwrap();
    setup
}

fn names(changes: &[crate::grants::GrantChange]) -> Vec<String> {
    changes.iter().map(|c| format!("{} {}", c.local_group, c.user)).collect()
}

#[test]
fn a_sync_grants_mapped_local_groups_and_revokes_them_when_a_member_leaves() {
    let setup = grants_setup();
    let alice = person("alice@example.com", "Alice");
    let bob = person("bob@example.com", "Bob");
    let both = with_group(
        listing(vec![alice.clone(), bob.clone()]),
        "it-admins@example.com",
        &["alice@example.com", "bob@example.com"],
    );

    // A dry run says what it would grant, and writes nothing.
    let dry = setup.sync(&both, SyncOptions { dry_run: true, force: false }).unwrap();
    assert_eq!(names(&dry.report.granted), ["sudo alice@example.com", "sudo bob@example.com"]);
    assert!(setup.cache().current_dir().unwrap().is_none());

    let first = setup.sync(&both, SyncOptions::default()).unwrap();
    assert_eq!(names(&first.report.granted), ["sudo alice@example.com", "sudo bob@example.com"]);
    let grants = setup.cache().load().unwrap().grants;
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].name.as_str(), grants[0].gid), ("sudo", 27));
    assert_eq!(grants[0].members, ["alice@example.com", "bob@example.com"]);

    // Bob leaves it-admins: the next sync revokes sudo (a dry run says it would).
    let bob_out = person("bob@example.com", "Bob");
    let only_alice =
        with_group(listing(vec![alice, bob_out]), "it-admins@example.com", &["alice@example.com"]);
    let dry = setup.sync(&only_alice, SyncOptions { dry_run: true, force: false }).unwrap();
    assert_eq!(names(&dry.report.revoked), ["sudo bob@example.com"]);
    assert!(dry.report.granted.is_empty());
    let second = setup.sync(&only_alice, SyncOptions::default()).unwrap();
    assert_eq!(names(&second.report.revoked), ["sudo bob@example.com"]);
    assert_eq!(setup.cache().load().unwrap().grants[0].members, ["alice@example.com"]);

    // Disabled between syncs: the commit of `user set --disable` takes sudo away at once.
    setup.change("alice@example.com", UserChanges { enabled: Some(false), ..Default::default() });
    assert!(setup.cache().load().unwrap().grants[0].members.is_empty());
}

#[test]
fn a_mapping_to_a_missing_local_group_stops_the_sync_before_anything_is_written() {
    let setup = grants_setup();
    fs::write(setup.dir.path().join("group"), "root:x:0:\n").unwrap();
    let err = setup.sync(&listing(vec![person("a@example.com", "A")]), SyncOptions::default());
    let err = err.unwrap_err();
    assert!(matches!(err, SyncError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("unix.local_groups.sudo"), "{err}");
    assert!(setup.cache().current_dir().unwrap().is_none());
}

#[test]
fn an_unknown_directory_group_in_the_mapping_is_a_warning() {
    let setup = grants_setup();
    let report = setup.sync(&listing(vec![person("a@example.com", "A")]), SyncOptions::default());
    let warnings = report.unwrap().report.warnings;
    assert!(warnings.iter().any(|w| w.contains("\"it-admins@example.com\" is not in the cache")));
}

#[test]
fn a_full_uid_range_skips_and_counts_whoever_gets_no_id_and_is_an_error() {
    // Ten ids for fifteen users and three groups: ten are created, eight are skipped, each
    // with the key to change, and the run reports an error (the CLI exits non-zero).
    let users: Vec<DirectoryUser> =
        (0..15).map(|i| person(&format!("u{i:02}@example.com"), "U")).collect();
    let mut list = listing(users);
    list.groups =
        ["g1", "g2", "g3"].iter().map(|g| group(&list, &format!("{g}@example.com"), &[])).collect();
    let mut setup = Setup::new("");
    setup.config.unix.uid_range = [300_000, 300_009];
    let report = setup.sync(&list, SYNC).unwrap().report;
    assert_eq!(report.created.len(), 10, "{report:?}");
    assert_eq!(report.skipped.len(), 8, "{:?}", report.skipped);
    assert!(report.groups_created.is_empty());
    for skipped in &report.skipped {
        assert!(skipped.reason.contains("no free id left in unix.uid_range"), "{skipped:?}");
    }
    let groups = report.skipped.iter().filter(|s| s.reason.starts_with("group not created"));
    assert_eq!(groups.count(), 3);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].starts_with("8 users and groups were not created"));
    assert!(report.errors[0].contains("widen or move unix.uid_range"));
    let status = SyncStatus::finished(&report, 1);
    assert_eq!((status.skipped, status.error.as_ref()), (8, report.errors.first()));
    assert_eq!(status.result, "partial", "never a success that left someone out");
    let metrics = super::metrics::prometheus_text(Some(&status), None);
    assert!(metrics.contains("dircache_last_sync_success 0"), "{metrics}");
    // The next run finds the range full at once, and says so again.
    let again = setup.sync(&list, SYNC).unwrap().report;
    assert_eq!((again.skipped.len(), again.errors.len(), again.unchanged), (8, 1, 10));
}

#[test]
fn a_new_default_uid_range_renumbers_nobody() {
    // A cache written under the old default [200000, 299999], synced again with no
    // uid_range in the configuration: everyone keeps uid and gid (files keep their
    // owners); only new accounts get ids from the new default.
    let alice = person("alice@example.com", "Alice");
    let mut list = listing(vec![alice, person("bob@example.com", "Bob")]);
    list.groups = vec![group(&list, "staff@example.com", &["alice@example.com"])];
    let mut setup = Setup::new("");
    // The configuration names no uid_range: the default.
    let unset = setup.config.unix.uid_range;
    assert_eq!(unset, crate::ids::DEFAULT_UID_RANGE);
    setup.config.unix.uid_range = [200_000, 299_999];
    setup.sync(&list, SYNC).unwrap();
    let before = setup.cache().load().unwrap();
    let ids = |db: &Db| -> BTreeSet<(String, u32, u32)> {
        let users = db.users.iter().map(|u| (u.name.clone(), u.uid, u.gid));
        users.chain(db.groups.iter().map(|g| (g.name.clone(), g.gid, g.gid))).collect()
    };
    assert!(before.users.iter().all(|u| (200_000..=299_999).contains(&u.uid)));

    setup.config.unix.uid_range = unset;
    list.users.push(compact(person("carl@example.com", "Carl")));
    edit(&mut list.users[1], |u| u.full_name = "Bob B".into());
    let report = setup.sync(&list, SYNC).unwrap().report;
    assert_eq!((report.created.len(), report.skipped.len()), (1, 0), "{report:?}");
    let after = setup.cache().load().unwrap();
    let kept: BTreeSet<_> =
        ids(&after).into_iter().filter(|(name, ..)| name != "carl@example.com").collect();
    assert_eq!(kept, ids(&before));
    let [low, high] = crate::ids::DEFAULT_UID_RANGE;
    assert!((low..=high).contains(&after.user("carl@example.com").unwrap().uid));
}

#[test]
fn the_plan_that_consumes_its_listing_is_the_plan_that_borrows_it() {
    // A real sync moves what new users take out of the listing (plan_consuming), a dry run
    // copies it (plan): both must plan the same, new users, updates, skips and groups alike.
    let s = Setup::new("");
    s.add_manual("linked@example.com", AuthMethod::Directory);
    s.sync(
        &listing(vec![person("known@example.com", "Known"), person("gone@example.com", "G")]),
        SYNC,
    )
    .unwrap();
    let db = s.cache().load_cached().unwrap();
    let mut dn = person("dn@example.com", "With DN");
    dn.distinguished_name = Some("UID=dn,DC=example,DC=com".into());
    dn.emails.push("alias@example.com".into());
    let mut next = listing(vec![
        person("new@example.com", "New"),
        person("known@example.com", "Renamed Full Name"),
        person("linked@example.com", "Linked"),
        named("clash@example.com", "new@example.com"),
        named("bad@example.com", "not a name!"),
        person("Mixed.Case@example.com", "Mixed"),
        dn,
    ]);
    next.groups = vec![DirectoryGroup {
        name: "staff@example.com".into(),
        identity: "icewarp:staff@example.com".into(),
        members: member_positions(&next, &["dn@example.com", "new@example.com"]),
    }];
    next.warnings = vec!["a listing warning".into()];
    let local = LocalAccounts::default();
    let borrowed = plan(&db, &next, &s.config, &local, 5_000);
    let consumed = plan_consuming(&db, next.clone(), &s.config, &local, 5_000);
    assert_eq!(consumed, borrowed);
    assert!(borrowed.creates.len() >= 3, "{:?}", borrowed.creates);
    assert!(borrowed
        .creates
        .iter()
        .all(|u| !u.name().is_empty() && u.directory_identity().is_some()));
}

#[test]
fn a_real_run_reports_the_users_it_created_as_its_dry_run_does() {
    // The real run names its new users from the cache after the commit (`created_names`):
    // the same names in the same order as the plan, with deletions, updates and a skipped
    // account in the same run.
    let setup = Setup::new("[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n");
    let first: Vec<DirectoryUser> =
        ["d", "b", "a"].iter().map(|n| person(&format!("{n}@example.com"), "A")).collect();
    let report = setup.sync(&listing(first), SYNC).unwrap().report;
    assert_eq!(report.created, ["a@example.com", "b@example.com", "d@example.com"]);

    let mut next = listing(vec![
        person("z@example.com", "Z"),
        person("b@example.com", "B changed"),
        named("c@example.com", "localuser"),
        person("e@example.com", "E"),
        person("c2@example.com", "C"),
    ]);
    next.warnings.push("kept".to_string());
    let dry = setup.sync(&next, DRY).unwrap().report;
    let real = setup.sync(&next, SYNC).unwrap().report;
    assert_eq!(real.created, ["c2@example.com", "e@example.com", "z@example.com"]);
    assert_eq!(real.created, dry.created);
    assert_eq!((real.updated.len(), real.deleted.len(), real.skipped.len()), (1, 2, 1));
    let db = setup.cache().load().unwrap();
    assert_eq!(db.users.len(), 4);
}

#[test]
fn groups_planned_with_their_cached_members_apply_as_groups_listed_again() {
    // An unchanged group takes its cached member list instead of a new one: applied, the
    // groups must be what planning every member name again gives, for an unchanged group,
    // one renamed by case only, one whose members changed, and one no longer listed.
    let setup = Setup::new("");
    let users = ["alice", "bob", "carl"].map(|n| person(&format!("{n}@example.com"), "A"));
    let mut list = listing(users.to_vec());
    list.groups = vec![
        group(&list, "same@example.com", &["alice@example.com", "bob@example.com"]),
        group(&list, "case@example.com", &["carl@example.com"]),
        group(&list, "moved@example.com", &["alice@example.com"]),
        group(&list, "gone@example.com", &["bob@example.com"]),
    ];
    setup.sync(&list, SYNC).unwrap();
    let before = setup.cache().load_cached().unwrap();

    list.groups[1].name = "Case@example.com".into();
    list.groups[2] = group(&list, "moved@example.com", &["bob@example.com", "carl@example.com"]);
    list.groups.pop();
    let local = LocalAccounts::default();
    let planned = plan(&before, &list, &setup.config, &local, 2_000);
    let as_cached: Vec<(&str, bool, usize)> = planned
        .groups
        .iter()
        .map(|g| (g.group.name.as_str(), g.members_as_cached, g.group.members.len()))
        .collect();
    assert_eq!(
        as_cached,
        [
            ("Case@example.com", true, 0),
            ("moved@example.com", false, 2),
            ("same@example.com", true, 0),
            ("gone@example.com", false, 0),
        ]
    );
    let mut applied = setup.cache().load_cached().unwrap();
    apply_cached(&mut applied, planned, Origin::Icewarp).unwrap();
    let members = |db: &Db<crate::cache::CachedUser>, name: &str| {
        let group = db.groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)).unwrap();
        (group.name.clone(), group.gid, group.members.clone())
    };
    let old = |name: &str| members(&before, name);
    assert_eq!(members(&applied, "same@example.com"), old("same@example.com"));
    let (_, gid, carl) = old("case@example.com");
    assert_eq!(members(&applied, "case@example.com"), ("Case@example.com".into(), gid, carl));
    let (_, gid, _) = old("moved@example.com");
    let moved = vec!["bob@example.com".to_string(), "carl@example.com".to_string()];
    assert_eq!(members(&applied, "moved@example.com"), ("moved@example.com".into(), gid, moved));
    let (_, gid, _) = old("gone@example.com");
    assert_eq!(members(&applied, "gone@example.com"), ("gone@example.com".into(), gid, vec![]));
}

#[test]
fn a_member_whose_identity_is_listed_twice_is_no_member() {
    // Positions name group members; a listing that repeats an identity (no sane one does)
    // syncs none of its entries, so none of them is a member either.
    let setup = Setup::new("");
    let twin = DirectoryUser { identity: "icewarp:alice@example.com".into(), ..named("x@x", "al") };
    let mut list = listing(vec![named("alice@example.com", "alice"), twin]);
    list.groups = vec![DirectoryGroup {
        name: "staff@example.com".into(),
        identity: "icewarp:staff@example.com".into(),
        members: vec![0, 1],
    }];
    let outcome = setup.sync(&list, SYNC).unwrap();
    assert!(outcome.report.created.is_empty(), "{:?}", outcome.report.created);
    let db = setup.cache().load().unwrap();
    assert!(db.groups[0].members.is_empty(), "{:?}", db.groups[0].members);

    // Without repeats, each member has its own entry's final name.
    let mut list = listing(vec![named("alice@example.com", "alice"), named("b@x", "bea")]);
    list.groups = vec![group(&list, "staff@example.com", &["b@x", "alice@example.com"])];
    let setup = Setup::new("");
    setup.sync(&list, SYNC).unwrap();
    assert_eq!(setup.cache().load().unwrap().groups[0].members, ["alice", "bea"]);
}

#[test]
fn a_plan_that_would_give_two_users_one_name_or_uid_is_refused() {
    use crate::user::sample_member;
    use crate::user_edits::EditError;
    let db = Db {
        users: vec![
            sample_member("alice@example.com", 200_001, &[]),
            sample_member("bob@example.com", 200_002, &[]),
        ],
        ..Db::default()
    };
    let update = |name: &str, uid: u32| {
        let mut after = sample_member(name, 200_002, &[]);
        after.uid = uid;
        let mut plan = super::plan::Plan::default();
        plan.updates.push(super::plan::UserUpdate { after, changed: vec!["name"], linked: false });
        super::apply::apply(&mut db.clone(), plan, Origin::Icewarp)
    };
    // Bob renamed onto Alice's name (in another case).
    let err = update("Alice@Example.com", 200_002).unwrap_err();
    assert!(matches!(err, EditError::DuplicateName(_)), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    // Bob renamed to a free name: fine.
    assert!(update("carol@example.com", 200_002).is_ok());
    // A new user on a uid that is taken.
    let mut plan = super::plan::Plan::default();
    let dora = sample_member("dora@example.com", 200_001, &[]);
    plan.creates.push(crate::cache::CachedUser::new(&dora).unwrap());
    let err = super::apply::apply(&mut db.clone(), plan, Origin::Icewarp).unwrap_err();
    assert!(matches!(err, EditError::DuplicateUid(200_001)), "{err}");
    // Groups: named like a user, on a user's uid, or two of one name or gid.
    let with_groups = |groups: &[(&str, u32)]| {
        let mut plan = super::plan::Plan::default();
        for (name, gid) in groups {
            let group = crate::user::sample_group(name, *gid, &[]);
            plan.groups.push(super::plan::PlannedGroup::listed(group));
        }
        super::apply::apply(&mut db.clone(), plan, Origin::Icewarp)
    };
    for groups in [
        &[("ALICE@example.com", 300_001)][..],
        &[("staff", 200_002)],
        &[("staff", 300_001), ("Staff", 300_002)],
        &[("staff", 300_001), ("devs", 300_001)],
    ] {
        let err = with_groups(groups).unwrap_err();
        assert!(matches!(err, EditError::GroupClash(_)), "{groups:?}: {err}");
    }
    assert!(with_groups(&[("staff", 300_001), ("devs", 300_002)]).is_ok());
    // A clash the cache already held (an older version let a user take a group's name) does
    // not fail every sync; a new one still does.
    let mut legacy = db.clone();
    let clashing = crate::user::sample_group("Bob@example.com", 300_001, &[]);
    legacy.groups.push(clashing.clone());
    let with_legacy = |extra: &[(&str, u32)]| {
        let mut plan = super::plan::Plan::default();
        let groups = std::iter::once(clashing.clone())
            .chain(extra.iter().map(|(name, gid)| crate::user::sample_group(name, *gid, &[])));
        plan.groups.extend(groups.map(super::plan::PlannedGroup::listed));
        super::apply::apply(&mut legacy.clone(), plan, Origin::Icewarp)
    };
    assert!(with_legacy(&[]).is_ok());
    // Nor does it let any other clash through, under its name or not.
    for extra in [
        &[("alice@example.com", 300_002)][..],
        &[("BOB@EXAMPLE.COM", 300_002)],
        &[("devs", 300_001)],
        &[("devs", 200_001)],
    ] {
        let err = with_legacy(extra).unwrap_err();
        assert!(matches!(&err, EditError::GroupClash(_)), "{extra:?}: {err}");
    }
    let mut moved = legacy.clone();
    moved.groups[0].gid = 200_001;
    let plan = super::plan::Plan {
        groups: vec![super::plan::PlannedGroup::listed(moved.groups[0].clone())],
        ..super::plan::Plan::default()
    };
    let err = super::apply::apply(&mut legacy.clone(), plan, Origin::Icewarp).unwrap_err();
    assert!(matches!(&err, EditError::GroupClash(name) if name == "alice@example.com"), "{err}");
}

#[test]
fn a_listing_that_repeats_an_identity_syncs_none_of_its_entries() {
    // Found by a model test: two entries of one identity renamed one cached user twice, the
    // second rename giving back a name the first had freed for someone else.
    let setup = Setup::new("[sync]\ndelete_missing_users = true\n");
    let mut list =
        listing(vec![named("alice@example.com", "alice"), named("bob@example.com", "bob")]);
    let members = ["alice@example.com", "bob@example.com"];
    list.groups = vec![group(&list, "team", &members)];
    setup.sync(&list, SYNC).unwrap();
    let before = setup.cache().load().unwrap();
    let alice = before.user("alice").unwrap().clone();

    // alice's account listed twice, as "carol" and as "dave"; bob renamed to "alice"; a new
    // identity listed twice under two names.
    let mut repeated = listing(vec![
        named("alice@example.com", "carol"),
        named("bob@example.com", "alice"),
        named("new@example.com", "erin"),
        named("alice@example.com", "dave"),
        named("new@example.com", "frank"),
    ]);
    repeated.groups = vec![group(&repeated, "team", &members)];
    let outcome = setup.sync(&repeated, SYNC).unwrap();
    let report = &outcome.report;
    assert!(report.created.is_empty() && report.deleted.is_empty(), "{report:?}");
    let mut skipped: Vec<&str> = report.skipped.iter().map(|s| s.name.as_str()).collect();
    skipped.sort();
    assert_eq!(skipped, ["alice", "carol", "dave", "erin", "frank"]);
    let twice = report.skipped.iter().find(|s| s.name == "carol").unwrap();
    assert!(twice.reason.contains("lists its identity 2 times"), "{}", twice.reason);
    // alice is kept (bob cannot take her name) but no longer vouched for: disabled and out
    // of her group (her own list too: initgroups reads it), never deleted for it, and not
    // missing (a return would reset her privileges).
    let db = setup.cache().load().unwrap();
    let kept = db.user("alice").unwrap();
    assert_eq!((kept.uid, kept.enabled, kept.missing_since), (alice.uid, false, None));
    assert!(kept.groups.is_empty(), "{:?}", kept.groups);
    assert_eq!(kept.privileges, alice.privileges);
    assert!(report.warnings.iter().any(|w| w.contains("alice is listed more than once")));
    assert_eq!(db.user("bob").unwrap().uid, before.user("bob").unwrap().uid);
    assert!(db.user("carol").is_none() && db.user("dave").is_none() && db.user("erin").is_none());
    assert_eq!(db.groups[0].members, ["bob"]);
    assert_eq!(db.user("bob").unwrap().groups, ["team"]);

    // Listed once again, she is as she was: enabled, in her group, privileges and all.
    let outcome = setup.sync_at(&list, SYNC, 2_000).unwrap();
    assert!(outcome.report.returned.is_empty(), "{:?}", outcome.report.returned);
    let db = setup.cache().load().unwrap();
    let back = db.user("alice").unwrap();
    assert_eq!(back, &User { updated_at: 2_000, ..alice.clone() });
    assert_eq!(db.groups[0].members, ["alice", "bob"]);
}

#[test]
fn a_missing_user_is_out_of_its_groups_until_it_returns() {
    // initgroups answers from a user's own list of groups, not only from the groups'
    // members: a user the directory no longer lists must lose both (review finding).
    let setup = Setup::new("");
    let mut list =
        listing(vec![named("alice@example.com", "alice"), named("bob@example.com", "bob")]);
    list.groups = vec![group(&list, "team", &["alice@example.com", "bob@example.com"])];
    setup.sync(&list, SYNC).unwrap();
    assert_eq!(setup.user("alice").groups, ["team"]);

    let mut without = listing(vec![named("bob@example.com", "bob")]);
    without.groups = vec![group(&without, "team", &["alice@example.com", "bob@example.com"])];
    setup.sync_at(&without, SYNC, 2_000).unwrap();
    let gone = setup.user("alice");
    assert!(!gone.enabled && gone.groups.is_empty() && gone.missing_since == Some(2_000));
    assert_eq!(setup.cache().load().unwrap().groups[0].members, ["bob"]);

    setup.sync_at(&list, SYNC, 3_000).unwrap();
    let back = setup.user("alice");
    assert!(back.enabled && back.missing_since.is_none());
    assert_eq!(back.groups, ["team"]);
}

// ----- review findings on 4baebbd (helper-44); each failed before its fix -----

/// alice and bob in the group team, synced; alice then switched to a local password.
fn team_with_a_local_password_user(extra: &str) -> (Setup, Listing) {
    let setup = Setup::new(extra);
    let mut list =
        listing(vec![named("alice@example.com", "alice"), named("bob@example.com", "bob")]);
    list.groups = vec![group(&list, "team", &["alice@example.com", "bob@example.com"])];
    setup.sync(&list, SYNC).unwrap();
    setup.change("alice", UserChanges { auth: Some(AuthMethod::Local), ..UserChanges::default() });
    (setup, list)
}

/// A missing user with a local password (`user set --auth local` on a directory account) is
/// kept enabled, but out of its groups, its own list included (initgroups answers from it),
/// whatever delete_missing_users says.
#[test]
fn a_missing_local_password_user_is_out_of_its_groups() {
    for extra in ["", "[sync]\ndelete_missing_users = true\n"] {
        let (setup, _) = team_with_a_local_password_user(extra);
        let mut without = listing(vec![named("bob@example.com", "bob")]);
        without.groups = vec![group(&without, "team", &["bob@example.com"])];
        setup.sync_at(&without, SYNC, 2_000).unwrap();
        let db = setup.cache().load().unwrap();
        assert_eq!(db.groups[0].members, ["bob"], "{extra}");
        let gone = db.user("alice").unwrap();
        assert!(gone.groups.is_empty(), "{extra}: alice still lists {:?}", gone.groups);
    }
}

/// A repeated identity treats a user with a local password as a missing one: out of its
/// groups, but not disabled (the directory cannot lock it out by listing it twice).
#[test]
fn a_repeated_identity_treats_a_local_password_user_as_a_missing_one() {
    let setup = Setup::new("");
    let list = listing(vec![named("alice@example.com", "alice"), named("bob@example.com", "bob")]);
    setup.sync(&list, SYNC).unwrap();
    setup.change("alice", UserChanges { auth: Some(AuthMethod::Local), ..UserChanges::default() });
    let repeated = listing(vec![
        named("alice@example.com", "alice"),
        named("alice@example.com", "alice2"),
        named("bob@example.com", "bob"),
    ]);
    setup.sync_at(&repeated, SYNC, 2_000).unwrap();
    let repeated_enabled = setup.user("alice").enabled;
    let setup2 = Setup::new("");
    setup2.sync(&list, SYNC).unwrap();
    setup2.change("alice", UserChanges { auth: Some(AuthMethod::Local), ..UserChanges::default() });
    setup2.sync_at(&listing(vec![named("bob@example.com", "bob")]), SYNC, 2_000).unwrap();
    let missing_enabled = setup2.user("alice").enabled;
    assert_eq!(repeated_enabled, missing_enabled, "repeated vs missing local-password user");
}

// ----- review of 99d4b99 (helper-45) -----

/// A missing local-password user, once out of its groups, costs nothing at later syncs (no
/// update, no write), and listed again gets its groups back; also when listed twice.
#[test]
fn a_missing_local_password_user_is_withdrawn_once_and_restored_on_return() {
    for extra in ["", "[sync]\ndelete_missing_users = true\n"] {
        let (setup, list) = team_with_a_local_password_user(extra);
        let mut without = listing(vec![named("bob@example.com", "bob")]);
        without.groups = vec![group(&without, "team", &["bob@example.com"])];
        let first = setup.sync_at(&without, SYNC, 2_000).unwrap();
        assert_eq!(first.report.updated, ["alice"], "{extra}");
        for now in [3_000, 4_000] {
            let again = setup.sync_at(&without, SYNC, now).unwrap();
            assert!(again.report.updated.is_empty(), "{extra}: {:?}", again.report.updated);
            assert_eq!(again.report.generation, None, "{extra}: rewritten at {now}");
        }
        let alice = setup.user("alice");
        assert!(alice.enabled && alice.groups.is_empty(), "{extra}");
        setup.sync_at(&list, SYNC, 5_000).unwrap();
        let back = setup.user("alice");
        assert!(back.enabled, "{extra}");
        assert_eq!(back.groups, ["team"], "{extra}");
        assert_eq!(setup.cache().load().unwrap().groups[0].members, ["alice", "bob"], "{extra}");
        // Listed twice: out of its groups, still enabled; listed once: back in.
        let mut twice = listing(vec![
            named("alice@example.com", "alice"),
            named("alice@example.com", "alice2"),
            named("bob@example.com", "bob"),
        ]);
        twice.groups = vec![group(&twice, "team", &["alice@example.com", "bob@example.com"])];
        setup.sync_at(&twice, SYNC, 6_000).unwrap();
        let again = setup.sync_at(&twice, SYNC, 7_000).unwrap();
        assert_eq!(again.report.generation, None, "{extra}: listed twice, rewritten");
        let twice_user = setup.user("alice");
        assert!(twice_user.enabled && twice_user.groups.is_empty(), "{extra}");
        setup.sync_at(&list, SYNC, 8_000).unwrap();
        assert_eq!(setup.user("alice").groups, ["team"], "{extra}");
    }
}

// Review of 4e860cb (helper-49): a `[unix] home` written `/home/{name}/` (or with `//`,
// `/./`) is now used resolved, and the homes users and deleted users got from it stay
// written the old way: a sync compares homes resolved (`crate::paths`), so a new user never
// gets one of them under another spelling.

/// Sets the stored home of `name` (as a former `[unix] home` = "/home/{name}/" gave it).
fn respell_home(setup: &Setup, name: &str, home: &str) {
    setup
        .cache()
        .update(Duration::from_secs(1), 2, |db| {
            db.user_mut(name).unwrap().home = home.to_string();
            Ok::<(), crate::cache::CacheError>(())
        })
        .unwrap();
}

#[test]
fn a_new_user_never_gets_the_home_a_renamed_user_kept_spelt_another_way() {
    let setup = Setup::new("");
    let mut users = listing(vec![person("alice@example.com", "Alice")]);
    setup.sync(&users, SYNC).unwrap();
    respell_home(&setup, "alice@example.com", "/home/alice@example.com/");
    edit(&mut users.users[0], |u| u.login_name = "alice2@example.com".to_string());
    setup.sync(&users, SYNC).unwrap();
    users.users.push(compact(person("alice@example.com", "New Alice")));
    edit(&mut users.users[1], |u| u.identity = "icewarp:new-alice@example.com".to_string());
    setup.sync(&users, SYNC).unwrap();
    let newcomer = setup.user("alice@example.com");
    assert_ne!(
        newcomer.home.trim_end_matches('/'),
        "/home/alice@example.com",
        "the newcomer got the renamed alice2's home /home/alice@example.com/"
    );
}

#[test]
fn a_new_user_never_gets_the_home_of_a_deleted_user_spelt_another_way() {
    let setup = Setup::new("[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n");
    let all = listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&all, SYNC).unwrap();
    respell_home(&setup, "alice@example.com", "/home/alice@example.com/");
    setup.sync(&listing(vec![person("bob@example.com", "Bob")]), SYNC).unwrap();
    setup.sync(&all, SYNC).unwrap();
    let new = setup.user("alice@example.com");
    assert_ne!(new.home, "/home/alice@example.com", "the deleted alice's home went to a new user");
}

#[test]
fn user_add_never_gives_the_home_of_a_deleted_user_spelt_another_way() {
    let setup = Setup::new("");
    setup
        .cache()
        .update(Duration::from_secs(1), 2, |db| {
            db.meta.retired_homes.insert("/home/carol/".to_string());
            Ok::<(), crate::cache::CacheError>(())
        })
        .unwrap();
    setup.add_manual("carol", AuthMethod::Local);
    assert_ne!(setup.user("carol").home, "/home/carol", "user add gave the retired /home/carol/");
}

// Review of 775fa70 (helper-50).

/// A deleted user's home spelt the old way (`/home/alice@example.com/`) is not given again,
/// and the warning says whose it was: a deleted user's.
#[test]
fn the_warning_for_a_respelt_retired_home_says_deleted_user() {
    let setup = Setup::new("[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n");
    let all = listing(vec![person("alice@example.com", "Alice"), person("bob@example.com", "Bob")]);
    setup.sync(&all, SYNC).unwrap();
    respell_home(&setup, "alice@example.com", "/home/alice@example.com/");
    setup.sync(&listing(vec![person("bob@example.com", "Bob")]), SYNC).unwrap();
    let outcome = setup.sync(&all, SYNC).unwrap();
    let warnings = &outcome.report.warnings;
    assert!(warnings.iter().any(|w| w.contains("deleted user")), "{warnings:?}");
}

/// A new user never gets a local account's home (/etc/passwd): local accounts win, in a sync
/// as in a snapshot install.
#[test]
fn a_new_user_never_gets_a_local_accounts_home() {
    let setup = Setup::new("");
    let passwd = setup.dir.path().join("passwd");
    let mut text = fs::read_to_string(&passwd).unwrap();
    text.push_str("robert:x:1001:1001::/home/bob@example.com/:/bin/sh\n");
    fs::write(&passwd, text).unwrap();
    setup.sync(&listing(vec![person("bob@example.com", "Bob")]), SYNC).unwrap();
    let bob = setup.user("bob@example.com");
    assert_ne!(
        crate::paths::resolved(&bob.home),
        "/home/bob@example.com",
        "the directory user got the local account robert's home"
    );
}
