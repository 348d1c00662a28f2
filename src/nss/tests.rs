//! The NSS logic against real caches written by `CacheDir::commit` in a temporary directory.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::abi::POINTER;
use super::*;
use crate::cache::{sample_db, CacheDir, Db};
use crate::user::{sample_group as group, sample_member as user};

const LOCAL_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                            daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                            carol:x:1000:1000:Carol:/home/carol:/bin/bash\n";
const LOCAL_GROUP: &str = "root:x:0:\nwheel:x:10:carol\ncarol:x:1000:\nprojects:x:1500:carol\n";

struct Fixture {
    dir: tempfile::TempDir,
    cache: CacheDir,
    logged: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("passwd"), LOCAL_PASSWD).unwrap();
        fs::write(dir.path().join("group"), LOCAL_GROUP).unwrap();
        let cache = CacheDir::new(dir.path().join("cache"));
        Fixture { dir, cache, logged: Arc::default() }
    }

    fn settings(&self) -> Settings {
        Settings {
            cache_dir: self.cache.root().to_path_buf().into(),
            local_passwd: self.dir.path().join("passwd").into(),
            local_group: self.dir.path().join("group").into(),
        }
    }

    fn nss(&self) -> Nss<ReadMapper> {
        let logged = self.logged.clone();
        let log = Box::new(move |line: &str| logged.lock().unwrap().push(line.to_string()));
        let mut nss = Nss::new(ReadMapper, self.settings(), log);
        nss.set_local_recheck(Duration::ZERO);
        nss
    }

    fn commit(&self, db: &Db) -> u64 {
        let lock = self.cache.lock(Duration::from_secs(5)).unwrap();
        self.cache.commit(&lock, db, 1_700_000_000).unwrap()
    }

    /// Commits `db` sealed for the fixture's local files, as a sync would.
    fn commit_sealed(&self, db: &Db) -> u64 {
        let local = self.local_accounts();
        let mut db = db.clone();
        db.local_seal = db.seal_against(&local, settled_now());
        assert_ne!(db.local_seal, 0, "the fixture's local files collide with nothing");
        self.commit(&db)
    }

    fn local_accounts(&self) -> LocalAccounts {
        LocalAccounts::load(&self.dir.path().join("passwd"), &self.dir.path().join("group"))
            .unwrap()
    }

    fn logged(&self) -> Vec<String> {
        self.logged.lock().unwrap().clone()
    }

    fn users_public(&self) -> std::path::PathBuf {
        self.cache.current_dir().unwrap().unwrap().join("users.public")
    }
}

/// A writer's clock well after the fixture's files were written: they have settled.
fn settled_now() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    now.as_secs() + 10
}

fn found<T: fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Found(value) => value,
        other => panic!("expected an entry, got {other:?}"),
    }
}

fn all_users(nss: &mut Nss<ReadMapper>) -> Vec<String> {
    assert_eq!(nss.start_passwd_walk(), Reply::Found(()));
    let mut names = Vec::new();
    while let Reply::Found(name) = nss.next_passwd(|e| Some(e.name.clone())) {
        names.push(name);
    }
    nss.end_passwd_walk();
    names
}

fn all_groups(nss: &mut Nss<ReadMapper>) -> Vec<(String, u32, Vec<String>)> {
    assert_eq!(nss.start_group_walk(), Reply::Found(()));
    let mut groups = Vec::new();
    while let Reply::Found(g) = nss.next_group(|e| Some((e.name.clone(), e.gid, e.members.clone())))
    {
        groups.push(g);
    }
    nss.end_group_walk();
    groups
}

#[test]
fn users_by_name_and_uid_carry_every_field() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    let alice = found(nss.passwd_by_name(b"alice@example.com"));
    assert_eq!(
        *alice,
        PublicUser {
            name: "alice@example.com".into(),
            uid: 200_001,
            gid: 200_001,
            gecos: "alice@example.com Example".into(),
            home: "/home/alice@example.com".into(),
            shell: "/bin/bash".into(),
            gids: vec![300_001],
            expires_day: None,
        }
    );
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
    // Case-insensitive, like every name in the cache; the recorded spelling comes back.
    assert_eq!(found(nss.passwd_by_name(b"ALICE@Example.com")).name, "alice@example.com");
    // Disabled users stay visible: their files keep their owner's name.
    assert_eq!(found(nss.passwd_by_name(b"dora@example.com")).uid, 200_004);
    assert_eq!(nss.passwd_by_name(b"nobody@example.com"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_999), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"\xff\xfe"), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"a:b"), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b""), Reply::NotFound);
    assert!(fx.logged().is_empty(), "{:?}", fx.logged());
}

#[test]
fn groups_are_directory_groups_and_private_groups() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    let staff = found(nss.group_by_name(b"dc-staff"));
    assert_eq!(staff.gid, 300_001);
    assert_eq!(staff.members, ["alice@example.com", "bob@example.com"]);
    assert_eq!(found(nss.group_by_gid(300_002)).name, "dc-developers");
    let private = found(nss.group_by_name(b"alice@example.com"));
    assert_eq!(
        *private,
        GroupEntry { name: "alice@example.com".into(), gid: 200_001, members: vec![] }
    );
    assert_eq!(found(nss.group_by_gid(200_002)).name, "bob@example.com");
    assert_eq!(nss.group_by_name(b"nogroup"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(300_999), Reply::NotFound);
}

#[test]
fn private_groups_need_gid_equal_to_uid_and_yield_to_directory_groups() {
    let fx = Fixture::new();
    let mut shared_gid = user("erin@example.com", 200_005, &[]);
    shared_gid.gid = 300_001;
    let mut db = sample_db();
    db.users.push(shared_gid);
    db.users.push(user("staff2", 200_006, &[]));
    db.groups.push(group("staff2", 300_003, &[]));
    fx.commit(&db);
    let mut nss = fx.nss();
    // erin's gid is the staff group: no private group of her own.
    assert_eq!(nss.group_by_name(b"erin@example.com"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(200_005), Reply::NotFound);
    assert_eq!(found(nss.group_by_gid(300_001)).name, "dc-staff");
    // A user named like a directory group: the directory group answers, no second group.
    assert_eq!(found(nss.group_by_name(b"staff2")).gid, 300_003);
    assert_eq!(nss.group_by_gid(200_006), Reply::NotFound);
    let names: Vec<String> = all_groups(&mut nss).into_iter().map(|g| g.0).collect();
    assert_eq!(names.iter().filter(|n| *n == "staff2").count(), 1, "{names:?}");
}

#[test]
fn local_accounts_always_win() {
    let fx = Fixture::new();
    let mut db = sample_db();
    db.users.push(user("root", 200_010, &["projects"]));
    db.users.push(user("Carol", 200_011, &[]));
    db.users.push(user("uid-zero", 0, &[]));
    db.users.push(user("local-uid", 1000, &[]));
    db.groups.push(group("projects", 300_010, &["alice@example.com"]));
    db.groups.push(group("local-gid", 1500, &["alice@example.com"]));
    db.groups.push(group("with-root", 300_011, &["root", "alice@example.com", "bad:member"]));
    fx.commit(&db);
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_name(b"root"), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"ROOT"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_010), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"carol"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(0), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"uid-zero"), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"local-uid"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(1000), Reply::NotFound);
    assert_eq!(nss.group_by_name(b"projects"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(1500), Reply::NotFound);
    assert_eq!(nss.group_by_name(b"local-gid"), Reply::NotFound);
    assert_eq!(nss.group_by_name(b"root"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(0), Reply::NotFound);
    // A local name is never listed as a member of a directory group either.
    assert_eq!(found(nss.group_by_name(b"with-root")).members, ["alice@example.com"]);
    assert_eq!(
        all_users(&mut nss),
        ["alice@example.com", "bob@example.com", "dora@example.com"],
        "enumeration skips local names and ids"
    );
    let groups: Vec<String> = all_groups(&mut nss).into_iter().map(|g| g.0).collect();
    let hidden = ["root", "projects", "local-gid", "Carol"];
    assert!(!groups.iter().any(|g| hidden.contains(&g.as_str())));
    // Local names are skipped silently; uid 0, the invalid member and a cache record named
    // root (a name with system meaning, refused before the local files are asked) are worth
    // a line each.
    let logged = fx.logged();
    assert_eq!(logged.len(), 4, "{logged:?}");
    assert!(logged.iter().any(|l| l.contains("uid-zero") && l.contains("reserved")), "{logged:?}");
    assert!(logged.iter().any(|l| l.contains("bad:member")), "{logged:?}");
    let system_name = |l: &&String| l.contains("\"root\" has a meaning on this host");
    assert_eq!(logged.iter().filter(system_name).count(), 2, "{logged:?}");
    // The user's supplementary groups leave the local gid out.
    let mut db = db.clone();
    db.users[0].groups = vec!["dc-staff".into(), "local-gid".into()];
    fx.commit(&db);
    assert_eq!(&*found(nss.supplementary_gids(b"alice@example.com")), &[300_001]);
}

#[test]
fn a_change_of_the_local_files_is_picked_up() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(found(nss.passwd_by_name(b"bob@example.com")).uid, 200_002);
    // The administrator creates a local bob@example.com: from now on it is local's.
    let passwd = format!("{LOCAL_PASSWD}bob@example.com:x:1001:1001::/home/bob:/bin/sh\n");
    fs::write(fx.dir.path().join("passwd"), passwd).unwrap();
    assert_eq!(nss.passwd_by_name(b"bob@example.com"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_002), Reply::NotFound);
    fs::write(fx.dir.path().join("passwd"), LOCAL_PASSWD).unwrap();
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
}

#[test]
fn the_local_files_are_checked_at_most_once_per_interval() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    nss.set_local_recheck(Duration::from_secs(1));
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
    let passwd = format!("{LOCAL_PASSWD}bob@example.com:x:1001:1001::/home/bob:/bin/sh\n");
    fs::write(fx.dir.path().join("passwd"), passwd).unwrap();
    // Checked less than a second ago: not stat()ed again yet.
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(nss.passwd_by_uid(200_002), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"bob@example.com"), Reply::NotFound);
}

#[test]
fn a_new_generation_is_picked_up_by_the_next_lookup() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(found(nss.passwd_by_name(b"alice@example.com")).shell, "/bin/bash");
    assert_eq!(nss.passwd_by_name(b"frank@example.com"), Reply::NotFound);
    let mut db = sample_db();
    db.users[0].shell = "/bin/zsh".into();
    db.users.push(user("frank@example.com", 200_007, &[]));
    db.users.retain(|u| u.name != "bob@example.com");
    db.groups[0].members.retain(|m| m != "bob@example.com");
    fx.commit(&db);
    // Both the cached answer and the cached "not found" are replaced.
    assert_eq!(found(nss.passwd_by_name(b"alice@example.com")).shell, "/bin/zsh");
    assert_eq!(found(nss.passwd_by_name(b"frank@example.com")).uid, 200_007);
    assert_eq!(nss.passwd_by_uid(200_002), Reply::NotFound);
    assert_eq!(found(nss.group_by_name(b"dc-staff")).members, ["alice@example.com"]);
}

#[test]
fn repeated_lookups_are_served_from_the_lru() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    // The first answer of a process makes no LRU (most processes ask once); the second does.
    let first = found(nss.passwd_by_name(b"alice@example.com"));
    assert!(nss.lru.lru.is_none());
    let second = found(nss.passwd_by_name(b"Alice@example.com"));
    assert!(!Arc::ptr_eq(&first, &second), "read again: nothing was kept");
    let again = found(nss.passwd_by_name(b"alice@example.com"));
    assert!(Arc::ptr_eq(&second, &again), "the third answer comes from the LRU");
    let lru = |nss: &Nss<ReadMapper>| nss.lru.lru.as_ref().unwrap().len();
    assert_eq!(lru(&nss), 1);
    assert_eq!(nss.passwd_by_name(b"ghost"), Reply::NotFound);
    let peek = |nss: &mut Nss<ReadMapper>, key: Query| nss.lru.get(&key).cloned();
    assert!(matches!(peek(&mut nss, Query::UserName("ghost".into())), Some(Cached::User(None))));
    // A new generation empties the LRU.
    fx.commit(&sample_db());
    let fresh = found(nss.passwd_by_name(b"alice@example.com"));
    assert!(!Arc::ptr_eq(&first, &fresh));
    // The LRU is bounded.
    for uid in 0..(LRU_ENTRIES as u32 + 100) {
        let _ = nss.passwd_by_uid(400_000 + uid);
    }
    assert_eq!(lru(&nss), LRU_ENTRIES);
    // Off: every answer is read afresh.
    nss.set_lru_enabled(false);
    let first = found(nss.passwd_by_name(b"alice@example.com"));
    let again = found(nss.passwd_by_name(b"alice@example.com"));
    assert!(!Arc::ptr_eq(&first, &again));
    assert_eq!(first, again);
    assert_eq!(lru(&nss), 0);
}

#[test]
fn a_missing_cache_is_unavailable_and_logged_once() {
    let fx = Fixture::new();
    let mut nss = fx.nss();
    for _ in 0..3 {
        assert_eq!(nss.passwd_by_name(b"alice@example.com"), Reply::Unavailable(libc::ENOENT));
        assert_eq!(nss.group_by_gid(300_001), Reply::Unavailable(libc::ENOENT));
        assert_eq!(nss.start_passwd_walk(), Reply::Unavailable(libc::ENOENT));
        assert_eq!(nss.next_group(|_| Some(())), Reply::Unavailable(libc::ENOENT));
    }
    assert_eq!(fx.logged().len(), 1, "{:?}", fx.logged());
    assert!(fx.logged()[0].contains("no dircache cache"), "{:?}", fx.logged());
    // Created later: used without a restart.
    fx.commit(&sample_db());
    assert_eq!(found(nss.passwd_by_name(b"alice@example.com")).uid, 200_001);
}

#[test]
fn a_corrupt_cache_is_unavailable_logged_once_and_recovers() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    // Truncated in place (which a writer never does): the next lookup notices the change.
    let path = fx.users_public();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    for _ in 0..3 {
        assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
        assert_eq!(nss.group_by_name(b"dc-staff"), Reply::Unavailable(libc::EIO));
    }
    assert_eq!(fx.logged().len(), 1, "{:?}", fx.logged());
    assert!(fx.logged()[0].contains("truncated"), "{:?}", fx.logged());
    // A flipped byte in a record: that lookup fails, no garbage comes out.
    let mut flipped = bytes.clone();
    let at = bytes.windows(5).position(|w| w == b"alice").unwrap();
    flipped[at] = b'A';
    fs::write(&path, &flipped).unwrap();
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
    let mut names = Vec::new();
    assert_eq!(nss.start_passwd_walk(), Reply::Found(()));
    let end = loop {
        match nss.next_passwd(|e| Some(e.name.clone())) {
            Reply::Found(name) => names.push(name),
            other => break other,
        }
    };
    assert_eq!(end, Reply::Unavailable(libc::EIO));
    assert!(names.is_empty(), "{names:?}");
    // Garbage instead of a table.
    fs::write(&path, b"garbage").unwrap();
    assert_eq!(nss.passwd_by_uid(200_002), Reply::Unavailable(libc::EIO));
    // A sync writes a good generation: answers again.
    fx.commit(&sample_db());
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
}

#[test]
fn a_cache_file_writable_by_others_is_refused() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let path = fx.users_public();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
    assert!(fx.logged()[0].contains("writable by group or others"), "{:?}", fx.logged());
    // Fixed by chmod alone (no new generation): this process answers again.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
}

#[test]
fn a_cache_file_owned_by_another_user_is_refused_by_root() {
    if !crate::trust::root_or_skip("chown needs root") {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&sample_db());
    std::os::unix::fs::chown(fx.users_public(), Some(1234), None).unwrap();
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
    assert!(fx.logged()[0].contains("owned by uid 1234"), "{:?}", fx.logged());
}

#[test]
fn records_that_would_break_the_format_are_skipped_and_logged_once() {
    let fx = Fixture::new();
    let mut db = sample_db();
    let mut colon = user("ev:il", 200_020, &[]);
    colon.home = "/home/evil".into();
    let mut newline_home = user("mallory@example.com", 200_021, &[]);
    newline_home.home = "/home/m\nroot::0:0::/:/bin/sh".into();
    let mut nul_shell = user("nul@example.com", 200_022, &[]);
    nul_shell.shell = "/bin/sh\0".into();
    let mut digits = user("12345", 200_023, &[]);
    digits.home = "/home/x".into();
    db.users.extend([colon, newline_home, nul_shell, digits]);
    db.groups.push(group("bad\ngroup", 300_020, &[]));
    fx.commit(&db);
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_uid(200_020), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"mallory@example.com"), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_021), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_022), Reply::NotFound);
    assert_eq!(nss.passwd_by_uid(200_023), Reply::NotFound);
    assert_eq!(nss.group_by_gid(300_020), Reply::NotFound);
    assert_eq!(nss.group_by_gid(200_021), Reply::NotFound, "no private group either");
    assert_eq!(all_users(&mut nss), ["alice@example.com", "bob@example.com", "dora@example.com"]);
    let groups = all_groups(&mut nss);
    assert!(groups.iter().all(|g| !g.0.contains(['\n', ':'])), "{groups:?}");
    // One line per bad record, however often it was met.
    let logged = fx.logged();
    assert_eq!(logged.len(), 5, "{logged:?}");
    assert!(logged.iter().all(|l| !l.contains('\n') && !l.contains('\0')), "{logged:?}");
}

#[test]
fn enumeration_lists_users_in_uid_order_then_groups_then_private_groups() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(all_users(&mut nss), ["alice@example.com", "bob@example.com", "dora@example.com"]);
    let groups = all_groups(&mut nss);
    let expected = [
        ("dc-staff", 300_001),
        ("dc-developers", 300_002),
        ("alice@example.com", 200_001),
        ("bob@example.com", 200_002),
        ("dora@example.com", 200_004),
    ];
    let got: Vec<(&str, u32)> = groups.iter().map(|g| (g.0.as_str(), g.1)).collect();
    // Directory groups in gid order, then the private groups in uid order.
    let mut sorted_dir = expected[..2].to_vec();
    sorted_dir.sort_by_key(|g| g.1);
    assert_eq!(&got[..2], &sorted_dir[..]);
    assert_eq!(&got[2..], &expected[2..]);
    // Without setpwent the enumeration starts by itself; after its end it stays ended.
    let mut nss = fx.nss();
    assert_eq!(nss.next_passwd(|e| Some(e.uid)), Reply::Found(200_001));
    while let Reply::Found(_) = nss.next_passwd(|_| Some(())) {}
    assert_eq!(nss.next_passwd(|_| Some(())), Reply::NotFound);
    // setpwent restarts it.
    assert_eq!(nss.start_passwd_walk(), Reply::Found(()));
    assert_eq!(nss.next_passwd(|e| Some(e.uid)), Reply::Found(200_001));
}

#[test]
fn a_short_buffer_keeps_the_enumeration_on_the_same_entry() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(nss.next_passwd(|_| None::<()>), Reply::TryAgain(libc::ERANGE));
    assert_eq!(nss.next_passwd(|_| None::<()>), Reply::TryAgain(libc::ERANGE));
    assert_eq!(nss.next_passwd(|e| Some(e.uid)), Reply::Found(200_001));
    assert_eq!(nss.next_passwd(|e| Some(e.uid)), Reply::Found(200_002));
    assert_eq!(nss.next_group(|_| None::<()>), Reply::TryAgain(libc::ERANGE));
    assert_eq!(nss.next_group(|e| Some(e.gid)), Reply::Found(300_001));
}

#[test]
fn an_enumeration_stays_on_its_generation_when_a_sync_swaps_the_cache() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut nss = fx.nss();
    assert_eq!(nss.start_passwd_walk(), Reply::Found(()));
    assert_eq!(nss.start_group_walk(), Reply::Found(()));
    assert_eq!(nss.next_passwd(|e| Some(e.name.clone())), Reply::Found("alice@example.com".into()));
    assert_eq!(nss.next_group(|e| Some(e.name.clone())), Reply::Found("dc-staff".into()));
    // Two commits: the generation the walk is on is even deleted from the directory.
    let mut db = sample_db();
    db.users.retain(|u| u.name != "bob@example.com");
    db.users.push(user("zed@example.com", 200_003, &[]));
    fx.commit(&db);
    fx.commit(&db);
    assert_eq!(found(nss.passwd_by_name(b"zed@example.com")).uid, 200_003);
    assert_eq!(nss.passwd_by_name(b"bob@example.com"), Reply::NotFound);
    let mut rest = Vec::new();
    while let Reply::Found(name) = nss.next_passwd(|e| Some(e.name.clone())) {
        rest.push(name);
    }
    assert_eq!(rest, ["bob@example.com", "dora@example.com"], "the old generation, whole");
    let mut groups = Vec::new();
    while let Reply::Found(name) = nss.next_group(|e| Some(e.name.clone())) {
        groups.push(name);
    }
    assert_eq!(
        groups,
        ["dc-developers", "alice@example.com", "bob@example.com", "dora@example.com"]
    );
    // The next enumeration sees the new generation.
    assert_eq!(all_users(&mut nss), ["alice@example.com", "zed@example.com", "dora@example.com"]);
}

#[test]
fn supplementary_gids_come_from_the_user_record() {
    let fx = Fixture::new();
    let mut db = sample_db();
    db.users[1].groups.push("dc-staff".into());
    fx.commit(&db);
    let mut nss = fx.nss();
    assert_eq!(&*found(nss.supplementary_gids(b"alice@example.com")), &[300_001]);
    assert_eq!(&*found(nss.supplementary_gids(b"BOB@example.com")), &[300_001, 300_002]);
    assert!(found(nss.supplementary_gids(b"dora@example.com")).is_empty());
    assert_eq!(nss.supplementary_gids(b"ghost@example.com"), Reply::NotFound);
    assert_eq!(nss.supplementary_gids(b"root"), Reply::NotFound);
}

#[test]
fn switching_settings_starts_over() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let other = Fixture::new();
    let mut nss = fx.nss();
    let dir = fx.cache.root().as_os_str().as_encoded_bytes().to_vec();
    let passwd = fx.dir.path().join("passwd").into_os_string().into_encoded_bytes();
    let group = fx.dir.path().join("group").into_os_string().into_encoded_bytes();
    nss.configure([Some(&dir), Some(&passwd), Some(&group)]);
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    let other_dir = other.cache.root().as_os_str().as_encoded_bytes().to_vec();
    nss.configure([Some(&other_dir), Some(&passwd), Some(&group)]);
    assert_eq!(nss.settings().cache_dir, other.cache.root());
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::ENOENT));
    nss.configure([None, None, None]);
    assert_eq!(nss.settings(), &Settings::default());
    assert_eq!(Settings::default().cache_dir, Path::new("/var/lib/dircache"));
    assert_eq!(Settings::default().local_passwd, Path::new("/etc/passwd"));
    assert_eq!(Settings::from_vars([Some(b""), None, None]), Settings::default());
}

#[test]
fn reply_codes_follow_glibc() {
    assert_eq!((Reply::Found(()).status(), Reply::Found(()).errno()), (1, None));
    assert_eq!(
        (Reply::<()>::NotFound.status(), Reply::<()>::NotFound.errno()),
        (0, Some(libc::ENOENT))
    );
    let short = Reply::Found(()).pack(|_| None::<()>);
    assert_eq!((short.status(), short.errno()), (-2, Some(libc::ERANGE)));
    let down = Reply::<()>::Unavailable(libc::EIO);
    assert_eq!((down.status(), down.errno()), (-1, Some(libc::EIO)));
}

fn c_string_at(buf: &[u8], offset: usize) -> &str {
    let end = buf[offset..].iter().position(|b| *b == 0).unwrap();
    std::str::from_utf8(&buf[offset..offset + end]).unwrap()
}

#[test]
fn passwd_entries_pack_into_the_buffer_or_say_it_is_short() {
    let entry = PublicUser {
        name: "alice".into(),
        uid: 200_001,
        gid: 200_001,
        gecos: "Alice Ä".into(),
        home: "/home/alice".into(),
        shell: "/bin/bash".into(),
        gids: vec![],
        expires_day: None,
    };
    let needed =
        "alice".len() + "x".len() + "Alice Ä".len() + "/home/alice".len() + "/bin/bash".len() + 5;
    let mut buf = vec![0xAAu8; needed];
    let layout = pack_passwd(&entry, &mut buf[..]).unwrap();
    assert_eq!(c_string_at(&buf, layout.name), "alice");
    assert_eq!(c_string_at(&buf, layout.passwd), "x");
    assert_eq!(c_string_at(&buf, layout.gecos), "Alice Ä");
    assert_eq!(c_string_at(&buf, layout.dir), "/home/alice");
    assert_eq!(c_string_at(&buf, layout.shell), "/bin/bash");
    assert_eq!((layout.uid, layout.gid), (200_001, 200_001));
    for short in 0..needed {
        assert_eq!(pack_passwd(&entry, &mut buf[..short]), None, "{short} bytes");
    }
}

#[test]
fn shadow_entries_are_never_usable_and_carry_only_the_expiry_day() {
    let mut entry = PublicUser {
        name: "alice".into(),
        uid: 200_001,
        gid: 200_001,
        gecos: String::new(),
        home: "/home/alice".into(),
        shell: "/bin/bash".into(),
        gids: vec![],
        expires_day: None,
    };
    let needed = "alice".len() + "!*".len() + 2;
    let mut buf = vec![0xAAu8; needed];
    let layout = pack_shadow(&entry, &mut buf[..]).unwrap();
    assert_eq!(c_string_at(&buf, layout.name), "alice");
    assert_eq!(c_string_at(&buf, layout.passwd), "!*");
    let numbers = |l: ShadowLayout| [l.last_change, l.min, l.max, l.warn, l.inactive, l.expire];
    assert_eq!(numbers(layout), [-1; 6]);
    entry.expires_day = Some(20_818);
    let layout = pack_shadow(&entry, &mut buf[..]).unwrap();
    assert_eq!(numbers(layout), [-1, -1, -1, -1, -1, 20_818]);
    // A set date before 1970-01-02 is never -1 or 0, which mean "never" to some readers.
    for day in [-1, 0, -20_000] {
        entry.expires_day = Some(day);
        assert_eq!(pack_shadow(&entry, &mut buf[..]).unwrap().expire, 1, "{day}");
    }
    for short in 0..needed {
        assert_eq!(pack_shadow(&entry, &mut buf[..short]), None, "{short} bytes");
    }
}

#[test]
fn shadow_lookups_and_walks_serve_what_passwd_serves() {
    let fx = Fixture::new();
    let mut db = sample_db();
    db.users[0].limits.expires_day = Some(20_818);
    db.users[0].limits.blocked = true;
    fx.commit(&db);
    let mut nss = fx.nss();
    let alice = found(nss.shadow_by_name(b"alice@example.com"));
    assert_eq!(alice.expires_day, Some(20_818));
    assert_eq!(nss.shadow_by_name(b"nobody@example.com"), Reply::NotFound);
    // The public record carries the day, never the private limits.
    let public = fs::read(fx.users_public()).unwrap();
    let public = String::from_utf8_lossy(&public);
    assert!(public.contains(r#",[300001],20818]"#), "{public}");
    assert!(!public.contains("blocked"), "{public}");
    // The two walks are independent: interleaving them skips no one.
    assert_eq!(nss.start_shadow_walk(), Reply::Found(()));
    let first = found(nss.next_shadow(|e| Some(e.name.clone())));
    let passwd = all_users(&mut nss);
    let mut shadow = vec![first];
    while let Reply::Found(name) = nss.next_shadow(|e| Some(e.name.clone())) {
        shadow.push(name);
    }
    nss.end_shadow_walk();
    assert_eq!(shadow, passwd);
}

#[test]
fn group_entries_pack_an_aligned_member_array() {
    let entry = GroupEntry {
        name: "dc-staff".into(),
        gid: 300_001,
        members: vec!["a".into(), "bob".into()],
    };
    let mut bytes = [0u8; 128];
    for skew in 0..POINTER {
        let base_buf = &mut bytes[skew..];
        let base = base_buf.as_ptr() as usize;
        let layout = pack_group(&entry, base_buf, base).unwrap();
        assert_eq!((base + layout.members) % POINTER, 0, "skew {skew}");
        let pointer = |i: usize| {
            let at = layout.members + i * POINTER;
            usize::from_ne_bytes(base_buf[at..at + POINTER].try_into().unwrap())
        };
        let (first, second, end) = (pointer(0), pointer(1), pointer(2));
        assert_eq!(c_string_at(base_buf, first - base), "a");
        assert_eq!(c_string_at(base_buf, second - base), "bob");
        assert_eq!(end, 0);
        assert_eq!(c_string_at(base_buf, layout.name), "dc-staff");
        assert_eq!(c_string_at(base_buf, layout.passwd), "x");
        // Every shorter buffer is refused rather than overrun.
        let needed = layout.members + 3 * POINTER;
        for short in 0..needed {
            assert_eq!(pack_group(&entry, &mut base_buf[..short], base), None, "{short}");
        }
    }
    let empty = GroupEntry { name: "g".into(), gid: 1, members: vec![] };
    let mut buf = [0u8; 64];
    let base = buf.as_ptr() as usize;
    let layout = pack_group(&empty, &mut buf[..], base).unwrap();
    assert_eq!(&buf[layout.members..layout.members + POINTER], &[0u8; POINTER]);
}

struct VecArray {
    gids: Vec<u32>,
    capacity: usize,
    fail_growth: bool,
}

impl GroupArray for VecArray {
    fn used(&self) -> usize {
        self.gids.len()
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn get(&self, index: usize) -> u32 {
        self.gids[index]
    }
    fn grow(&mut self, capacity: usize) -> bool {
        assert!(capacity > self.capacity, "growth must grow");
        if self.fail_growth {
            return false;
        }
        self.capacity = capacity;
        true
    }
    fn push(&mut self, gid: u32) {
        assert!(self.gids.len() < self.capacity, "push past the capacity");
        self.gids.push(gid);
    }
}

#[test]
fn add_groups_follows_the_initgroups_dyn_contract() {
    // Skips the primary group and duplicates, grows by doubling.
    let mut array = VecArray { gids: vec![100], capacity: 2, fail_growth: false };
    let reply = add_groups(&mut array, &[100, 5, 6, 5, 7, 8], 6, 0);
    assert_eq!(reply, Reply::Found(()));
    assert_eq!(array.gids, [100, 5, 7, 8]);
    assert_eq!(array.capacity, 4);
    // Never past the limit: the rest is dropped.
    let mut array = VecArray { gids: vec![100], capacity: 1, fail_growth: false };
    assert_eq!(add_groups(&mut array, &[1, 2, 3, 4], 0, 3), Reply::Found(()));
    assert_eq!(array.gids, [100, 1, 2]);
    assert_eq!(array.capacity, 3);
    // From an empty array.
    let mut array = VecArray { gids: vec![], capacity: 0, fail_growth: false };
    assert_eq!(add_groups(&mut array, &[1, 2, 3], 9, -1), Reply::Found(()));
    assert_eq!(array.gids, [1, 2, 3]);
    // Out of memory: TRYAGAIN with ENOMEM, what was added stays.
    let mut array = VecArray { gids: vec![], capacity: 1, fail_growth: true };
    assert_eq!(add_groups(&mut array, &[1, 2], 0, 0), Reply::TryAgain(libc::ENOMEM));
    assert_eq!(array.gids, [1]);
}

/// Fails its first `failures` maps with EMFILE, as a process out of descriptors would.
struct FlakyMapper {
    failures: std::sync::atomic::AtomicUsize,
}

impl Mapper for FlakyMapper {
    type Map = Mapped<Vec<u8>>;
    fn map(&self, file: File, len: u64) -> io::Result<Mapped<Vec<u8>>> {
        let left = self.failures.load(std::sync::atomic::Ordering::Relaxed);
        if left > 0 {
            self.failures.store(left - 1, std::sync::atomic::Ordering::Relaxed);
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        ReadMapper.map(file, len)
    }
}

#[test]
fn an_error_of_the_moment_is_retried_but_a_broken_file_is_remembered() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mapper = FlakyMapper { failures: 1.into() };
    let mut nss = Nss::new(mapper, fx.settings(), Box::new(|_: &str| {}));
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
    // Same generation, descriptors available again: answered, no sync needed.
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");

    // A corrupt file of the same generation is not re-read on every call.
    let fx = Fixture::new();
    fx.commit(&sample_db());
    fs::write(fx.users_public(), b"garbage").unwrap();
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO));
    assert!(nss.current.failed.as_ref().is_some_and(|(_, problem)| problem.lasting));
}

#[test]
fn names_with_system_meaning_or_unsafe_characters_are_never_served() {
    // A cache written by an older dircache (or by hand) may hold such records: neither the
    // users, nor their private groups, nor the groups, nor membership in them is answered.
    let fx = Fixture::new();
    let mut db = sample_db();
    db.users.push(user("admin", 200_030, &[]));
    db.users.push(user("x;id", 200_031, &[]));
    db.users.push(user("systemd-evil", 200_032, &[]));
    db.users.push(user("a*b", 200_033, &[]));
    db.users[0].groups.push("sudo".into());
    db.groups.push(group("sudo", 300_030, &["alice@example.com"]));
    db.groups.push(group("Docker", 300_031, &["alice@example.com"]));
    fx.commit(&db);
    let mut nss = fx.nss();
    for name in ["admin", "ADMIN", "x;id", "systemd-evil", "a*b"] {
        assert_eq!(nss.passwd_by_name(name.as_bytes()), Reply::NotFound, "{name}");
        assert_eq!(nss.group_by_name(name.as_bytes()), Reply::NotFound, "{name}");
    }
    for id in 200_030..=200_033 {
        assert_eq!(nss.passwd_by_uid(id), Reply::NotFound, "{id}");
        assert_eq!(nss.group_by_gid(id), Reply::NotFound, "private group {id}");
    }
    for (name, gid) in [("sudo", 300_030), ("docker", 300_031)] {
        assert_eq!(nss.group_by_name(name.as_bytes()), Reply::NotFound, "{name}");
        assert_eq!(nss.group_by_gid(gid), Reply::NotFound, "{name}");
    }
    assert_eq!(&*found(nss.supplementary_gids(b"alice@example.com")), &[300_001]);
    assert_eq!(all_users(&mut nss), ["alice@example.com", "bob@example.com", "dora@example.com"]);
    let groups: Vec<String> = all_groups(&mut nss).into_iter().map(|g| g.0).collect();
    assert_eq!(
        groups,
        ["dc-staff", "dc-developers", "alice@example.com", "bob@example.com", "dora@example.com"],
        "no reserved group and no private group of a refused user"
    );
}

/// Reads like [`ReadMapper`], counts the tables it maps and reports `euid` as the effective
/// uid, as the `.so` does with `geteuid()`.
struct ProbeMapper {
    maps: Arc<std::sync::atomic::AtomicUsize>,
    euid: Option<u32>,
}

impl Mapper for ProbeMapper {
    type Map = Mapped<Vec<u8>>;
    fn map(&self, file: File, len: u64) -> io::Result<Mapped<Vec<u8>>> {
        self.maps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ReadMapper.map(file, len)
    }
    fn effective_uid(&self) -> Option<u32> {
        self.euid
    }
}

impl Fixture {
    fn probed_nss(
        &self,
        euid: Option<u32>,
    ) -> (Nss<ProbeMapper>, Arc<std::sync::atomic::AtomicUsize>) {
        let maps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let logged = self.logged.clone();
        let log = Box::new(move |line: &str| logged.lock().unwrap().push(line.to_string()));
        let mapper = ProbeMapper { maps: maps.clone(), euid };
        (Nss::new(mapper, self.settings(), log), maps)
    }
}

fn mapped(maps: &std::sync::atomic::AtomicUsize) -> usize {
    maps.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn user_lookups_map_only_the_users_table_and_groups_are_mapped_on_first_need() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let (mut nss, maps) = fx.probed_nss(crate::trust::effective_uid());
    assert_eq!(found(nss.passwd_by_name(b"alice@example.com")).uid, 200_001);
    assert_eq!(found(nss.passwd_by_uid(200_002)).name, "bob@example.com");
    assert_eq!(mapped(&maps), 1, "users.public only");
    assert_eq!(found(nss.group_by_name(b"dc-staff")).gid, 300_001);
    assert_eq!(found(nss.group_by_gid(300_002)).name, "dc-developers");
    assert_eq!(mapped(&maps), 2, "groups.public once, on the first group query");
    // A new generation: its users table again, its groups table only when asked.
    fx.commit(&sample_db());
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    assert_eq!(mapped(&maps), 3);
    assert_eq!(found(nss.supplementary_gids(b"bob@example.com")).len(), 2);
    assert_eq!(mapped(&maps), 4);
}

#[test]
fn a_broken_groups_table_is_refused_when_first_needed_and_remembered() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let groups = fx.users_public().with_file_name("groups.public");
    fs::write(&groups, b"garbage").unwrap();
    let (mut nss, maps) = fx.probed_nss(crate::trust::effective_uid());
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    assert_eq!(nss.group_by_name(b"dc-staff"), Reply::Unavailable(libc::EIO));
    assert_eq!(nss.group_by_gid(300_002), Reply::Unavailable(libc::EIO));
    assert_eq!(nss.start_group_walk(), Reply::Unavailable(libc::EIO));
    // Private groups need the groups table too (a directory group of the name wins).
    assert_eq!(nss.group_by_gid(200_001), Reply::Unavailable(libc::EIO));
    assert_eq!(mapped(&maps), 2, "the broken file is read once for this generation");
    assert_eq!(fx.logged().len(), 1, "{:?}", fx.logged());
    assert!(fx.logged()[0].contains("groups.public"), "{:?}", fx.logged());
    fx.commit(&sample_db());
    assert_eq!(found(nss.group_by_name(b"dc-staff")).gid, 300_001);
}

#[test]
fn cache_files_are_trusted_by_the_effective_uid_the_mapper_reports() {
    if !crate::trust::root_or_skip("chown needs root") {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let users = fx.users_public();
    let groups = users.with_file_name("groups.public");
    std::os::unix::fs::chown(&users, Some(4242), None).unwrap();
    std::os::unix::fs::chown(&groups, Some(4242), None).unwrap();
    // The reported uid decides, not the process's real one (root here): a file of one's own...
    let (mut nss, _) = fx.probed_nss(Some(4242));
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    assert_eq!(found(nss.group_by_name(b"dc-staff")).gid, 300_001);
    // ...but not another user's, for root or anyone else, nor for an unknown reader.
    for euid in [Some(4243), Some(0), None] {
        let (mut nss, _) = fx.probed_nss(euid);
        assert_eq!(nss.passwd_by_uid(200_001), Reply::Unavailable(libc::EIO), "{euid:?}");
    }
    // The groups table opened later is checked the same way.
    std::os::unix::fs::chown(&groups, Some(4243), None).unwrap();
    let (mut nss, _) = fx.probed_nss(Some(4242));
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    assert_eq!(nss.group_by_name(b"dc-staff"), Reply::Unavailable(libc::EIO));
    assert!(fx.logged().iter().any(|l| l.contains("groups.public")), "{:?}", fx.logged());
}

/// Reports root for the first question about the effective uid, 4242 afterwards: a process
/// that dropped privileges after its first lookup.
struct SwitchingMapper(std::sync::atomic::AtomicUsize);

impl Mapper for SwitchingMapper {
    type Map = Mapped<Vec<u8>>;
    fn map(&self, file: File, len: u64) -> io::Result<Mapped<Vec<u8>>> {
        ReadMapper.map(file, len)
    }
    fn effective_uid(&self) -> Option<u32> {
        let asked = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(if asked == 0 { 0 } else { 4242 })
    }
}

#[test]
fn the_groups_table_is_judged_by_the_uid_the_users_table_was() {
    if !crate::trust::root_or_skip("chown needs root") {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let groups = fx.users_public().with_file_name("groups.public");
    std::os::unix::fs::chown(&groups, Some(4242), None).unwrap();
    let mapper = SwitchingMapper(std::sync::atomic::AtomicUsize::new(0));
    let mut nss = Nss::new(mapper, fx.settings(), Box::new(|_: &str| {}));
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    // Opened later, after the switch: still root's rule, which refuses a file of uid 4242.
    assert_eq!(nss.group_by_name(b"dc-staff"), Reply::Unavailable(libc::EIO));
    // users.public belongs to root: the uid was never asked (a system call spared on every
    // process's first lookup), and the generation's other tables must belong to root too.
    let asked = nss.current.mapper().0.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(asked, 0);
}

// ----- local groups granted by [unix.local_groups] (issue 14 §1) -----

fn grant(name: &str, gid: u32, members: &[&str]) -> crate::user::LocalGrant {
    crate::user::LocalGrant {
        name: name.to_string(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn a_granted_local_group_reaches_initgroups_and_lists_only_its_granted_members() {
    let fx = Fixture::new();
    fx.commit(&Db { grants: vec![grant("wheel", 10, &["alice@example.com"])], ..sample_db() });
    let mut nss = fx.nss();
    let gids = found(nss.supplementary_gids(b"alice@example.com"));
    assert_eq!(&*gids, &[300_001, 10]);
    assert_eq!(&*found(nss.supplementary_gids(b"bob@example.com")), &[300_001, 300_002]);
    // The local name and gid, unchanged; carol (local, in /etc/group) is the `files` part.
    let wheel = found(nss.group_by_name(b"wheel"));
    assert_eq!((wheel.name.as_str(), wheel.gid), ("wheel", 10));
    assert_eq!(wheel.members, ["alice@example.com"]);
    assert_eq!(*found(nss.group_by_gid(10)), *wheel);
    // Names are exact, as in /etc/group; other local groups have no grant.
    assert_eq!(nss.group_by_name(b"Wheel"), Reply::NotFound);
    assert_eq!(nss.group_by_name(b"projects"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(1500), Reply::NotFound);
    // Never enumerated: `files` lists the group already, and glibc merges no enumeration.
    assert!(!all_groups(&mut nss).iter().any(|g| g.0 == "wheel"));
}

#[test]
fn a_grant_the_local_files_do_not_back_is_never_served() {
    let fx = Fixture::new();
    let mut db = Db {
        grants: vec![
            // The gid /etc/group gives projects is 1500, not 1501.
            grant("projects", 1501, &["alice@example.com"]),
            // Neither root nor a group /etc/group lacks.
            grant("root", 0, &["alice@example.com"]),
            grant("sudo", 27, &["alice@example.com"]),
            // A local user is never a granted member.
            grant("wheel", 10, &["bob@example.com", "carol"]),
        ],
        ..sample_db()
    };
    // A user record claiming a local gid without a grant gets nothing from it.
    db.users[0].groups.clear();
    fx.commit(&db);
    let mut nss = fx.nss();
    assert_eq!(&*found(nss.supplementary_gids(b"alice@example.com")), &[] as &[u32]);
    for name in [&b"projects"[..], b"root", b"sudo"] {
        assert_eq!(nss.group_by_name(name), Reply::NotFound);
    }
    for gid in [0, 27, 1500, 1501] {
        assert_eq!(nss.group_by_gid(gid), Reply::NotFound, "{gid}");
    }
    assert_eq!(found(nss.group_by_name(b"wheel")).members, ["bob@example.com"]);
    assert!(fx.logged().iter().any(|l| l.contains("skipping the local grant \"projects\"")));
}

#[test]
fn a_cache_without_grants_answers_as_before() {
    let fx = Fixture::new();
    fx.commit(&sample_db());
    fs::remove_file(fx.users_public().with_file_name("grants.public")).unwrap();
    let mut nss = fx.nss();
    assert_eq!(&*found(nss.supplementary_gids(b"bob@example.com")), &[300_001, 300_002]);
    assert_eq!(nss.group_by_name(b"wheel"), Reply::NotFound);
    assert_eq!(nss.group_by_gid(10), Reply::NotFound);
    // And the writers read it as no grants.
    assert!(fx.cache.load().unwrap().grants.is_empty());
}

#[test]
fn indented_local_lines_win_as_glibc_reads_them() {
    let fx = Fixture::new();
    // glibc's files skip the blanks before a line and before a number.
    fs::write(
        fx.dir.path().join("passwd"),
        format!("{LOCAL_PASSWD}  spacey:x:1600:1600::/:/bin/sh\n"),
    )
    .unwrap();
    fs::write(fx.dir.path().join("group"), format!("{LOCAL_GROUP}\tops:x: 1700:\n")).unwrap();
    let mut db = sample_db();
    db.users.push(user("spacey", 200_020, &[]));
    db.groups.push(group("shadowing", 1700, &["alice@example.com"]));
    db.grants = vec![grant("ops", 1700, &["alice@example.com"])];
    fx.commit(&db);
    let mut nss = fx.nss();
    assert_eq!(nss.passwd_by_name(b"spacey"), Reply::NotFound);
    assert_eq!(nss.supplementary_gids(b"spacey"), Reply::NotFound);
    // gid 1700 is the local ops: never the directory group, only the grant.
    assert_eq!(nss.group_by_name(b"shadowing"), Reply::NotFound);
    let ops = found(nss.group_by_gid(1700));
    assert_eq!(
        (ops.name.as_str(), ops.members.as_slice()),
        ("ops", &["alice@example.com".to_string()][..])
    );
    assert_eq!(*found(nss.group_by_name(b"ops")), *ops);
}

/// Every answer of interest: users by name and uid, groups by name and gid (directory,
/// private and granted), `initgroups`, and both enumerations.
fn every_answer(nss: &mut Nss<ReadMapper>) -> Vec<String> {
    let mut answers = Vec::new();
    for name in ["alice@example.com", "bob@example.com", "dora@example.com", "carol", "root"] {
        answers.push(format!("{:?}", nss.passwd_by_name(name.as_bytes())));
        answers.push(format!("{:?}", nss.supplementary_gids(name.as_bytes())));
    }
    for uid in [0, 1000, 200_001, 200_002, 200_004] {
        answers.push(format!("{:?}", nss.passwd_by_uid(uid)));
    }
    for name in ["dc-staff", "dc-developers", "alice@example.com", "wheel", "projects", "carol"] {
        answers.push(format!("{:?}", nss.group_by_name(name.as_bytes())));
    }
    for gid in [10, 1000, 1500, 200_001, 300_001, 300_002] {
        answers.push(format!("{:?}", nss.group_by_gid(gid)));
    }
    answers.push(format!("{:?}", all_users(nss)));
    answers.push(format!("{:?}", all_groups(nss)));
    answers
}

#[test]
fn a_sealed_generation_answers_exactly_as_an_unsealed_one() {
    let db = Db { grants: vec![grant("wheel", 10, &["alice@example.com"])], ..sample_db() };
    let unsealed = Fixture::new();
    unsealed.commit(&db);
    let sealed = Fixture::new();
    sealed.commit_sealed(&db);
    let expected = every_answer(&mut unsealed.nss());
    assert!(expected.iter().any(|a| a.contains("wheel")), "the grant is among the answers");
    assert_eq!(every_answer(&mut sealed.nss()), expected);
}

/// A cache forged by root: sealed for the fixture's local files although it holds `carol`,
/// uid 1000, a local account. What the module shows of it tells whether it read the files.
fn forged_seal() -> Fixture {
    let fx = Fixture::new();
    let mut db = sample_db();
    db.local_seal = fx.local_accounts().files_seal();
    db.users.push(user("carol", 1000, &[]));
    fx.commit(&db);
    fx
}

#[test]
fn a_seal_holds_only_for_the_local_files_it_was_made_for() {
    // A generation sealed for these files is trusted not to hold a local name or id, so
    // that lookups need not read them: a forged one shows that the files are not consulted
    // while the seal holds...
    let fx = forged_seal();
    let mut nss = fx.nss();
    assert_eq!(found(nss.passwd_by_uid(1000)).name, "carol");
    // ...and that any change to a file (here a rewrite with the same content) ends it:
    // the next lookup reads the files, and local accounts win again.
    let passwd = fx.dir.path().join("passwd");
    let before = fs::metadata(&passwd).unwrap();
    while fs::metadata(&passwd).unwrap().ctime_nsec() == before.ctime_nsec() {
        fs::write(&passwd, LOCAL_PASSWD).unwrap();
    }
    assert_eq!(nss.passwd_by_uid(1000), Reply::NotFound);
    assert_eq!(nss.passwd_by_name(b"carol"), Reply::NotFound);
    assert_eq!(found(nss.passwd_by_uid(200_001)).name, "alice@example.com");
    // A fresh process with the files as they are now: the same.
    assert_eq!(fx.nss().passwd_by_uid(1000), Reply::NotFound);
}

#[test]
fn local_files_once_read_are_asked_even_for_a_sealed_generation() {
    // A group call reads the local files; from then on a user record that collides with
    // them is hidden whatever the seal says (here one forged to match).
    let fx = forged_seal();
    let mut nss = fx.nss();
    let _ = nss.group_by_name(b"dc-staff");
    assert_eq!(nss.passwd_by_uid(1000), Reply::NotFound);
    assert_eq!(nss.group_by_gid(1000), Reply::NotFound, "nor its private group");
}

#[test]
fn files_changed_just_before_they_were_read_give_no_seal() {
    // Within SETTLE_SECS of the last change, a later change could keep the very times
    // sealed (coarse file clocks): no seal until the files have been left alone.
    let fx = Fixture::new();
    let local = fx.local_accounts();
    let written = fs::metadata(fx.dir.path().join("passwd")).unwrap().mtime() as u64;
    assert_eq!(sample_db().seal_against(&local, written), 0);
    assert_eq!(sample_db().seal_against(&local, written + 1), 0);
    assert_eq!(sample_db().seal_against(&local, settled_now()), local.files_seal());
    assert_eq!(sample_db().seal_against(&LocalAccounts::default(), settled_now()), 0);
}

#[test]
fn a_generation_written_without_the_check_is_not_sealed() {
    let fx = Fixture::new();
    fx.commit_sealed(&sample_db());
    let sealed = fx.cache.open::<PublicUser>().unwrap().local_seal();
    assert_eq!(sealed, fx.local_accounts().files_seal());
    // Loaded and committed again without `seal_against` (what `user` commands do).
    let db = fx.cache.load().unwrap();
    assert_eq!(db.local_seal, 0);
    fx.commit(&db);
    assert_eq!(fx.cache.open::<PublicUser>().unwrap().local_seal(), 0);
    assert_eq!(found(fx.nss().passwd_by_uid(200_001)).name, "alice@example.com");
}

/// Rewrites the current groups table with `edit` applied to each record's JSON (same
/// generation, keys and seal): a record the writer would never produce.
fn rewrite_groups(fx: &Fixture, edit: impl Fn(&str) -> String) {
    use crate::cache::format::{write_table, RecordIn, TableKind};
    use crate::cache::CacheRecord;
    let path = fx.cache.current_dir().unwrap().unwrap().join("groups.public");
    let table = fx.cache.open::<crate::user::Group>().unwrap();
    let (generation, seal) = (table.generation(), table.local_seal());
    let groups = table.read_all().unwrap();
    drop(table);
    let records = groups.iter().map(|g| {
        let json = String::from_utf8(g.to_record_json().unwrap()).unwrap();
        RecordIn { json: edit(&json).into_bytes(), keys: g.keys() }
    });
    let mode = fs::metadata(&path).unwrap().permissions();
    fs::remove_file(&path).unwrap();
    let mut file = File::create(&path).unwrap();
    write_table(&mut file, TableKind::Groups, generation, 2, seal, records).unwrap();
    fs::set_permissions(&path, mode).unwrap();
}

#[test]
fn initgroups_refuses_a_group_record_getgrgid_refuses() {
    // initgroups reads only a group's name and gid, but decodes the rest as strictly.
    type Edit = fn(&str) -> String;
    let edits: [(&str, Edit); 3] = [
        ("a member not a string", |j| j.replace(r#""members":["#, r#""members":[7,"#)),
        ("an unknown field", |j| j.replacen('{', r#"{"evil":1,"#, 1)),
        ("no origin", |j| j.replace(r#""origin":"#, r#""xorigin":"#)),
    ];
    for (what, edit) in edits {
        let fx = Fixture::new();
        let mut db = sample_db();
        db.users[1].groups.push("dc-staff".into());
        fx.commit(&db);
        rewrite_groups(&fx, edit);
        let mut nss = fx.nss();
        assert!(matches!(nss.group_by_gid(300_001), Reply::Unavailable(_)), "{what}");
        let initgroups = nss.supplementary_gids(b"bob@example.com");
        assert!(matches!(initgroups, Reply::Unavailable(_)), "{what}: {initgroups:?}");
    }
    // Escaped member names are strings like any other.
    let fx = Fixture::new();
    fx.commit(&sample_db());
    rewrite_groups(&fx, |j| j.replace(r#""bob@example.com""#, r#""b\u006fb@example.com""#));
    assert_eq!(&*found(fx.nss().supplementary_gids(b"bob@example.com")), &[300_001, 300_002]);
}

#[test]
fn supplementary_gids_keep_their_order_and_lose_repeats() {
    use super::visibility::unique_in_order;
    assert!(unique_in_order(&[]).is_empty());
    assert_eq!(*unique_in_order(&[30, 10, 20]), [30, 10, 20]);
    assert_eq!(*unique_in_order(&[30, 10, 30, 20, 10, 10]), [30, 10, 20]);
    let many: Vec<u32> = (0..5_000).rev().chain(0..5_000).collect();
    assert_eq!(*unique_in_order(&many), *(0..5_000).rev().collect::<Vec<u32>>());
}

#[test]
fn env_values_are_found_as_getenv_finds_them() {
    let entries: [&[u8]; 8] = [
        b"PATH=/usr/bin",
        b"DIRCACHE_CACHE_DIRX=/not/this",
        b"DIRCACHE_CACHE_DIR",
        b"DIRCACHE_LOCAL_GROUP=",
        b"DIRCACHE_CACHE_DIR=/first=one",
        b"DIRCACHE_CACHE_DIR=/second",
        b"dircache_local_passwd=/lower/case",
        b"XDIRCACHE_LOCAL_PASSWD=/prefixed",
    ];
    let values = super::env_values(entries);
    assert_eq!(values, [Some(&b"/first=one"[..]), None, Some(&b""[..])]);
    assert_eq!(super::env_values(std::iter::empty()), [None; 3]);
    assert!(super::ENV_VARS.iter().all(|name| name.to_bytes().starts_with(super::ENV_PREFIX)));
}

#[test]
fn fields_with_a_control_character_are_not_served_printable_ascii_and_unicode_are() {
    for (field, bad) in [
        ("Alice Example", false),
        ("Zoë Ünal, Room 4", false),
        ("~!#$%^&*()_+{}|\"<>?`-=[]\\;',./ ", false),
        ("tab\there", true),
        ("nl\n", true),
        ("del\u{7f}", true),
        ("c1\u{85}control", true),
        ("a:b", true),
    ] {
        assert_eq!(super::visibility::bad_field(field).is_some(), bad, "{field:?}");
    }
}

#[test]
fn groups_are_never_read_from_a_generation_published_after_the_users_were_opened() {
    use crate::cache::reader::{CurrentTables, ReadMapper};
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let mut current = CurrentTables::new(ReadMapper, &fx.settings().cache_dir);
    let tables = current.refresh().unwrap();
    // A sync moves `current` while these tables are in use (within one call): the groups
    // come from the generation kept beside the new one, the users' own.
    fx.commit(&sample_db());
    let groups = tables.groups(&ReadMapper).unwrap();
    assert_eq!(groups.generation(), tables.users.generation());
    assert!(tables.grants(&ReadMapper).is_ok());
    // Two syncs: the users' generation is gone. That call fails, the next follows the link.
    let tables = current.refresh().unwrap();
    fx.commit(&sample_db());
    fx.commit(&sample_db());
    let problem = tables.groups(&ReadMapper).err().expect("no groups of another generation");
    assert!(problem.message.contains("moved to a new generation"), "{problem:?}");
    assert!(!problem.lasting, "retried by the next call");
    let tables = current.refresh().unwrap();
    assert_eq!(tables.groups(&ReadMapper).unwrap().generation(), tables.users.generation());
    assert!(tables.grants(&ReadMapper).is_ok());
}

#[test]
fn a_current_that_is_not_a_link_is_a_lasting_problem_for_groups() {
    use crate::cache::reader::{CurrentTables, ReadMapper};
    let fx = Fixture::new();
    fx.commit(&sample_db());
    let root = fx.cache.root();
    let generation = fs::read_link(root.join("current")).unwrap();
    fs::remove_file(root.join("current")).unwrap();
    fs::rename(root.join(&generation), root.join("current")).unwrap();
    let mut current = CurrentTables::new(ReadMapper, &fx.settings().cache_dir);
    let tables = current.refresh().unwrap();
    let problem = tables.groups(&ReadMapper).err().expect("refused");
    assert!(problem.message.contains("is not a symbolic link"), "{problem:?}");
    assert!(problem.lasting);
}

#[test]
fn grants_of_a_generation_removed_under_the_reader_are_an_error_not_none() {
    // Users of generation 1 open; a sync (2) leaves groups to the kept generation 1; another
    // (3) removes generation 1. Its grants must not read as "none" (initgroups would then
    // drop a granted group silently): the call fails, not lastingly (review finding).
    use crate::cache::reader::{CurrentTables, ReadMapper};
    let fx = Fixture::new();
    let db = Db { grants: vec![grant("wheel", 10, &["alice@example.com"])], ..sample_db() };
    fx.commit(&db);
    let mut current = CurrentTables::new(ReadMapper, &fx.settings().cache_dir);
    let tables = current.refresh().unwrap();
    fx.commit(&db);
    assert!(tables.groups(&ReadMapper).is_ok(), "groups from the kept generation");
    fx.commit(&db);
    let root = fx.cache.root();
    assert!(!root.join(crate::cache::generation_dir_name(1)).exists());
    let leftovers: Vec<_> = fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().ends_with(".tmp")), "{leftovers:?}");
    let Err(problem) = tables.grants(&ReadMapper) else { panic!("grants read as none") };
    assert!(problem.message.contains("moved to a new generation"), "{problem:?}");
    assert!(!problem.lasting);
    // A fresh call reads the current generation, grants and all.
    let tables = current.refresh().unwrap();
    assert!(tables.grants(&ReadMapper).unwrap().is_some());
}

/// A record that `by_name` finds for a vetted name but whose name is spelled otherwise (here
/// it starts with the Kelvin sign, which folds to `k`) goes through the name policy again:
/// only a record of exactly the vetted bytes skips that check.
#[test]
fn a_record_found_by_a_vetted_name_but_spelled_otherwise_is_checked_again() {
    let fx = Fixture::new();
    let mut db = sample_db();
    db.users.push(user("\u{212A}ate@example.com", 200_040, &["dc-staff"]));
    db.users.push(user("Eve@example.com", 200_041, &[]));
    fx.commit(&db);
    let mut nss = fx.nss();
    // The first answer of a process is not kept; the second goes through the LRU.
    for _ in 0..2 {
        assert_eq!(nss.passwd_by_name(b"kate@example.com"), Reply::NotFound);
        assert_eq!(nss.passwd_by_name(b"KATE@example.com"), Reply::NotFound);
        assert_eq!(nss.shadow_by_name(b"kate@example.com"), Reply::NotFound);
        assert_eq!(nss.supplementary_gids(b"kate@example.com"), Reply::NotFound);
        assert_eq!(nss.passwd_by_uid(200_040), Reply::NotFound);
        assert_eq!(nss.group_by_gid(200_040), Reply::NotFound);
        assert_eq!(found(nss.passwd_by_name(b"eve@example.com")).name, "Eve@example.com");
    }
}
