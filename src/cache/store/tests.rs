use super::*;
use crate::user::{sample_user, Origin};

fn db_with(users: &[(&str, u32)]) -> Db {
    Db {
        users: users.iter().map(|(name, uid)| sample_user(name, *uid)).collect(),
        groups: vec![Group {
            name: "staff".into(),
            gid: 300_000,
            members: vec!["alice".into()],
            origin: Origin::Icewarp,
            directory_identity: None,
        }],
        ..Db::default()
    }
}

fn commit(cache: &CacheDir, db: &Db) -> u64 {
    let lock = cache.lock(Duration::from_secs(1)).unwrap();
    cache.commit(&lock, db, 1_700_000_123).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn uninitialized_cache_loads_empty_and_refuses_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path().join("cache"));
    assert_eq!(cache.load().unwrap(), Db::default());
    assert!(matches!(cache.open::<User>(), Err(CacheError::NotInitialized { .. })));
}

#[test]
fn commit_then_load_and_lookup_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    let mut db = db_with(&[("alice", 200_001), ("Bob", 200_002)]);
    db.users[0].groups = vec!["STAFF".into()];
    db.meta.retired_ids.insert(200_999);
    db.meta.retired_homes.insert("/home/gone".into());
    db.users[1].missing_since = Some(1_700_000_000);
    let generation = commit(&cache, &db);
    assert_eq!(generation, 1);

    let loaded = cache.load().unwrap();
    assert_eq!(loaded.users, db.users);
    assert_eq!(loaded.groups, db.groups);
    assert_eq!(loaded.meta.retired_ids, db.meta.retired_ids);
    assert_eq!(loaded.meta.retired_homes, db.meta.retired_homes);
    assert_eq!(loaded.meta.written_at, 1_700_000_123);

    let private = cache.open::<User>().unwrap();
    assert_eq!(private.by_name("BOB").unwrap().unwrap().uid, 200_002);
    assert_eq!(private.by_id(200_001).unwrap().unwrap().name, "alice");
    assert!(private.by_name("carol").unwrap().is_none());

    let public = cache.open::<PublicUser>().unwrap();
    let alice = public.by_name("alice").unwrap().unwrap();
    assert_eq!(alice.gids, vec![300_000]);
    assert_eq!(alice.gecos, "alice Example");
    let (first, cursor) = public.next(public.first_cursor()).unwrap().unwrap();
    let (second, cursor) = public.next(cursor).unwrap().unwrap();
    assert_eq!((first.name.as_str(), second.name.as_str()), ("alice", "Bob"));
    assert!(public.next(cursor).unwrap().is_none());
    let groups = cache.open::<Group>().unwrap();
    assert_eq!(groups.by_id(300_000).unwrap().unwrap().members, vec!["alice"]);
}

#[test]
fn public_files_hold_no_secret_and_modes_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    let mut db = db_with(&[("alice", 200_001)]);
    db.users[0].password_hash = Some("$argon2id$v=19$SECRET".into());
    commit(&cache, &db);
    let current = cache.current_dir().unwrap().unwrap();
    let public = fs::read(current.join("users.public")).unwrap();
    let text = String::from_utf8_lossy(&public);
    assert!(!text.contains("SECRET") && !text.contains("privileges") && !text.contains("auth"));
    assert!(String::from_utf8_lossy(&fs::read(current.join("users.private")).unwrap())
        .contains("SECRET"));
    assert_eq!(mode(&current.join("users.public")), 0o644);
    assert_eq!(mode(&current.join("groups.public")), 0o644);
    assert_eq!(mode(&current.join("users.private")), 0o600);
    assert_eq!(mode(&current.join("meta.json")), 0o600);
    assert_eq!(mode(&current), 0o755);
}

#[test]
fn only_root_or_the_reader_may_own_cache_files() {
    let path = Path::new("/x/users.private");
    assert!(check_owner(path, 0, Some(0)).is_ok());
    assert!(check_owner(path, 0, Some(1000)).is_ok());
    assert!(check_owner(path, 0, None).is_ok());
    assert!(check_owner(path, 1000, Some(1000)).is_ok(), "a cache of one's own");
    let err = check_owner(path, 1000, Some(0)).err().unwrap();
    assert!(err.to_string().contains("owned by uid 1000"), "{err}");
    assert!(check_owner(path, 1000, Some(1001)).is_err());
    assert!(check_owner(path, 1000, None).is_err());
}

#[test]
fn a_root_reader_refuses_a_file_another_user_owns() {
    if !crate::trust::root_or_skip("chown needs root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    let private = cache.current_dir().unwrap().unwrap().join("users.private");
    std::os::unix::fs::chown(&private, Some(1234), None).unwrap();
    assert!(matches!(cache.open::<User>(), Err(CacheError::WrongOwner { owner: 1234, .. })));
    assert!(cache.open::<PublicUser>().is_ok());
}

#[test]
fn readers_refuse_files_with_loose_modes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    let current = cache.current_dir().unwrap().unwrap();
    fs::set_permissions(current.join("users.private"), Permissions::from_mode(0o640)).unwrap();
    let err = cache.open::<User>().err().unwrap();
    assert!(err.to_string().contains("chmod 0600"), "{err}");
    fs::set_permissions(current.join("users.public"), Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(cache.open::<PublicUser>(), Err(CacheError::Insecure { .. })));
}

#[test]
fn generations_advance_and_only_two_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    for round in 1..=4u32 {
        let generation = commit(&cache, &db_with(&[("alice", 200_000 + round)]));
        assert_eq!(generation, u64::from(round));
    }
    let mut generations: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    generations.sort();
    assert_eq!(generations, ["gen-000000000003", "gen-000000000004"]);
    assert_eq!(cache.open::<User>().unwrap().by_name("alice").unwrap().unwrap().uid, 200_004);
}

#[test]
fn leftovers_of_a_killed_writer_are_ignored_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    fs::create_dir(dir.path().join("gen-000000000002.tmp")).unwrap();
    fs::write(dir.path().join("gen-000000000002.tmp/users.private"), b"half").unwrap();
    assert_eq!(cache.load().unwrap().users.len(), 1);
    commit(&cache, &db_with(&[("alice", 200_001), ("bob", 200_002)]));
    assert!(!dir.path().join("gen-000000000002.tmp").exists());
    assert_eq!(cache.load().unwrap().users.len(), 2);
}

#[test]
fn a_generation_renamed_but_never_published_does_not_block_the_next_commit() {
    // A writer killed between renaming gen-N.tmp to gen-N and swapping `current`.
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    let orphan = dir.path().join("gen-000000000002");
    fs::create_dir(&orphan).unwrap();
    fs::write(orphan.join("users.private"), b"complete but never published").unwrap();
    fs::write(dir.path().join("current.tmp"), b"").unwrap();
    let generation = commit(&cache, &db_with(&[("alice", 200_001), ("bob", 200_002)]));
    assert_eq!(generation, 2);
    assert_eq!(cache.load().unwrap().users.len(), 2);
    assert!(!dir.path().join("current.tmp").exists());
}

#[test]
fn a_failed_commit_removes_what_it_wrote() {
    // A record the table format refuses fails the commit half-way through its files.
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    let mut db = db_with(&[("alice", 200_001)]);
    db.users[0].full_name = "x".repeat(17 * 1024 * 1024);
    let lock = cache.lock(Duration::from_secs(1)).unwrap();
    let err = cache.commit(&lock, &db, 1_700_000_124).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    let mut entries: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["current", "gen-000000000001", "lock"]);
    assert_eq!(cache.load().unwrap().users[0].full_name, "alice Example");
}

#[test]
fn the_lock_is_exclusive_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    let held = cache.lock(Duration::from_secs(1)).unwrap();
    let err = cache.lock(Duration::from_millis(100)).err().unwrap();
    assert!(matches!(err, CacheError::LockTimeout { .. }), "{err}");
    drop(held);
    assert!(cache.lock(Duration::from_millis(100)).is_ok());
}

#[test]
fn a_corrupt_generation_is_reported_by_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    commit(&cache, &db_with(&[("alice", 200_001)]));
    let private = cache.current_dir().unwrap().unwrap().join("users.private");
    let mut bytes = fs::read(&private).unwrap();
    bytes.truncate(bytes.len() - 5);
    fs::write(&private, bytes).unwrap();
    let err = cache.load().err().unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
}

/// Where the first record's JSON starts: after the header and the record's prefix.
const HEADER_LEN_AT: usize = 96 + 8;

/// Rewrites the current generation as a version 1 writer left it: 24-byte index slots,
/// public users as JSON objects, `format_version: 1` in meta.json.
fn downgrade_to_version_1(cache: &CacheDir) {
    #[derive(Serialize)]
    struct PublicUserV1<'a> {
        name: &'a str,
        uid: u32,
        gid: u32,
        gecos: &'a str,
        home: &'a str,
        shell: &'a str,
        gids: &'a [u32],
    }
    fn rewrite<T: CacheRecord>(dir: &Path, generation: u64, records: Vec<RecordIn>) {
        let path = dir.join(T::FILE_NAME);
        fs::remove_file(&path).unwrap();
        let mut file = create_file(&path, T::PUBLIC).unwrap();
        super::super::format::write_table_as(1, &mut file, T::KIND, generation, 2, 0, records)
            .unwrap();
    }
    let dir = cache.current_dir().unwrap().unwrap();
    let db = cache.load().unwrap();
    let generation = db.meta.generation;
    let public: Vec<PublicUser> = cache.open::<PublicUser>().unwrap().read_all().unwrap();
    rewrite::<PublicUser>(
        &dir,
        generation,
        public
            .iter()
            .map(|u| {
                let v1 = PublicUserV1 {
                    name: &u.name,
                    uid: u.uid,
                    gid: u.gid,
                    gecos: &u.gecos,
                    home: &u.home,
                    shell: &u.shell,
                    gids: &u.gids,
                };
                RecordIn { json: serde_json::to_vec(&v1).unwrap(), keys: u.keys() }
            })
            .collect(),
    );
    fn encode<T: CacheRecord>(record: &T) -> RecordIn {
        RecordIn { json: serde_json::to_vec(record).unwrap(), keys: record.keys() }
    }
    rewrite::<User>(&dir, generation, db.users.iter().map(encode).collect());
    rewrite::<Group>(&dir, generation, db.groups.iter().map(encode).collect());
    let meta_path = dir.join(META_FILE);
    let meta = fs::read_to_string(&meta_path)
        .unwrap()
        .replace("\"format_version\": 2", "\"format_version\": 1");
    fs::write(&meta_path, meta).unwrap();
}

#[test]
fn a_version_1_cache_serves_lookups_until_the_next_commit_writes_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheDir::new(dir.path());
    let mut db = db_with(&[("alice", 200_001), ("bob", 200_002)]);
    db.users[0].groups = vec!["staff".into()];
    commit(&cache, &db);
    let expected_alice = cache.open::<PublicUser>().unwrap().by_name("alice").unwrap().unwrap();
    downgrade_to_version_1(&cache);
    let current = cache.current_dir().unwrap().unwrap();
    let header_version =
        |path: &Path| u32::from_le_bytes(fs::read(path).unwrap()[8..12].try_into().unwrap());
    assert_eq!(header_version(&current.join("users.public")), 1);
    let first = fs::read(current.join("users.public")).unwrap();
    assert_eq!(first[HEADER_LEN_AT..][..1], *b"{", "records are objects in version 1");

    // Readers (NSS, PAM, the writers' load) read the old generation as it is.
    let public = cache.open::<PublicUser>().unwrap();
    assert_eq!(public.by_name("ALICE").unwrap().as_ref(), Some(&expected_alice));
    assert_eq!(public.by_id(200_002).unwrap().unwrap().name, "bob");
    assert_eq!(cache.open::<User>().unwrap().by_name("bob").unwrap().unwrap().uid, 200_002);
    assert_eq!(cache.open::<Group>().unwrap().by_id(300_000).unwrap().unwrap().name, "staff");
    let loaded = cache.load().unwrap();
    assert_eq!(loaded.meta.format_version, 1);
    assert_eq!(
        (loaded.users.clone(), loaded.groups.clone()),
        (db.users.clone(), db.groups.clone())
    );

    // The next commit writes version 2, smaller, with the same content.
    commit(&cache, &loaded);
    let current = cache.current_dir().unwrap().unwrap();
    assert_eq!(header_version(&current.join("users.public")), 2);
    let first = fs::read(current.join("users.public")).unwrap();
    assert_eq!(first[HEADER_LEN_AT..][..1], *b"[", "records are arrays in version 2");
    let again = cache.load().unwrap();
    assert_eq!(again.meta.format_version, 2);
    assert_eq!((again.users, again.groups), (db.users, db.groups));
    let public = cache.open::<PublicUser>().unwrap();
    assert_eq!(public.by_name("alice").unwrap(), Some(expected_alice));
}
