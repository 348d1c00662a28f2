use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::cache::{CacheDir, Db};
use crate::config::Config;
use crate::directory::http::GetReply;
use crate::sync::{SyncError, SyncOptions, SyncOutcome};
use crate::user::{sample_user, AuthMethod, Group, Origin, User};

const NOW: u64 = 1_800_000_000;

/// Serves a publish directory the way a static server does, with overrides for failures.
struct FakeServer {
    root: PathBuf,
    overrides: HashMap<String, GetReply>,
    requests: Vec<(String, Vec<(&'static str, String)>)>,
}

impl FakeServer {
    fn new(root: &Path) -> FakeServer {
        FakeServer { root: root.to_path_buf(), overrides: HashMap::new(), requests: Vec::new() }
    }
}

impl Fetcher for FakeServer {
    fn get(
        &mut self,
        name: &str,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<GetReply, crate::directory::DirectoryError> {
        self.requests.push((name.to_string(), headers.to_vec()));
        let mut reply = match self.overrides.get(name) {
            Some(reply) => reply.clone(),
            None => match fs::read(self.root.join(name)) {
                Err(_) => reply(404, None),
                Ok(bytes) => {
                    let etag = format!("\"{}\"", &sha256_hex(&bytes)[..16]);
                    if headers.iter().any(|(h, v)| *h == "if-none-match" && *v == etag) {
                        return Ok(GetReply { status: 304, etag: Some(etag), ..reply(304, None) });
                    }
                    GetReply { etag: Some(etag), ..reply(200, Some(bytes)) }
                }
            },
        };
        if reply.body.as_ref().is_some_and(|b| b.len() as u64 > limit) {
            reply.body = None;
        }
        Ok(reply)
    }

    fn url_of(&self, name: &str) -> String {
        format!("https://snapshots.example/{name}")
    }
}

struct Host {
    dir: tempfile::TempDir,
    config: Config,
}

fn write_config(dir: &Path, extra: &str) -> Config {
    fs::write(dir.join("passwd"), "root:x:0:0::/root:/bin/sh\nlocaluser:x:1000:1000::/l:/bin/sh\n")
        .unwrap();
    config_in(dir, extra)
}

/// A config in `dir` whose local files are `dir`'s (written or not), loaded.
pub(super) fn config_in(dir: &Path, extra: &str) -> Config {
    let path = dir.join("dircache.toml");
    let text = format!(
        "[cache]\ndir = {:?}\n[unix]\nuid_range = [200000, 299999]\nlocal_passwd = {:?}\nlocal_group = {:?}\n\
         local_subuid = {:?}\nlocal_subgid = {:?}\n{extra}",
        dir.join("cache"),
        dir.join("passwd"),
        dir.join("group"),
        dir.join("subuid"),
        dir.join("subgid"),
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    Config::load(&path).unwrap()
}

/// The publisher: a key pair, a cache, and a publish directory.
struct Publisher {
    dir: tempfile::TempDir,
    config: Config,
}

impl Publisher {
    fn new() -> Publisher {
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("publish.key"), &dir.path().join("publish.pub")).unwrap();
        let extra = format!("[publish]\nsigning_key_file = {:?}\n", dir.path().join("publish.key"));
        let config = write_config(dir.path(), &extra);
        let publisher = Publisher { dir, config };
        publisher.write(sample_fleet_db());
        publisher
    }

    fn cache(&self) -> CacheDir {
        CacheDir::new(&self.config.cache.dir)
    }

    fn write(&self, db: Db) {
        self.cache()
            .update(Duration::from_secs(1), NOW, |current| {
                current.users = db.users;
                current.groups = db.groups;
                Ok::<(), crate::cache::CacheError>(())
            })
            .unwrap();
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    fn public_key(&self) -> PathBuf {
        self.dir.path().join("publish.pub")
    }

    fn publish_at(&self, now: u64) -> PublishReport {
        publish(&self.config, &self.out(), now).unwrap()
    }

    fn key(&self) -> SigningKey {
        SigningKey::load(&self.dir.path().join("publish.key")).unwrap()
    }

    /// Changes the signed manifest and signs it again with the real key: what a publisher
    /// with a bug, or an attacker holding the key, could serve.
    fn resign(&self, change: impl FnOnce(&mut Manifest)) {
        let path = self.out().join(MANIFEST_FILE);
        let mut manifest: Manifest = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        change(&mut manifest);
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let signature = self.key().sign(&bytes, "test").unwrap();
        fs::write(&path, &bytes).unwrap();
        fs::write(self.out().join(SIGNATURE_FILE), signature).unwrap();
    }
}

fn sample_fleet_db() -> Db {
    let mut alice = sample_user("alice", 200_001);
    alice.password_hash = Some("$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA".to_string());
    alice.groups = vec!["dc-staff".to_string()];
    let mut bob = User {
        auth: AuthMethod::Directory,
        origin: Origin::Icewarp,
        directory_identity: Some("icewarp:bob@example.com".to_string()),
        groups: vec!["dc-staff".to_string()],
        ..sample_user("bob@example.com", 200_002)
    };
    bob.disabled_by_admin = true;
    bob.enabled = false;
    let users: Vec<User> = [alice, bob]
        .into_iter()
        .chain((3..=20).map(|i| User {
            auth: AuthMethod::Directory,
            origin: Origin::Icewarp,
            ..sample_user(&format!("user{i}@example.com"), 200_000 + i)
        }))
        .collect();
    let groups = vec![Group {
        name: "dc-staff".to_string(),
        gid: 200_500,
        members: vec!["alice".to_string(), "bob@example.com".to_string()],
        origin: Origin::Icewarp,
        directory_identity: None,
    }];
    Db { users, groups, ..Db::default() }
}

impl Host {
    fn new(publisher: &Publisher) -> Host {
        Host::with_key(&publisher.public_key(), "")
    }

    fn with_key(key: &Path, extra: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[snapshot]\nurl = \"https://snapshots.example/\"\npublic_key_file = {key:?}\n{extra}"
        );
        let config = write_config(dir.path(), &text);
        Host { dir, config }
    }

    fn pull(&self, server: &mut FakeServer, now: u64) -> Result<SyncOutcome, SyncError> {
        pull(&self.config, server, SyncOptions::default(), now)
    }

    fn pull_with(
        &self,
        server: &mut FakeServer,
        now: u64,
        options: SyncOptions,
    ) -> Result<SyncOutcome, SyncError> {
        pull(&self.config, server, options, now)
    }

    fn db(&self) -> Db {
        CacheDir::new(&self.config.cache.dir).load().unwrap()
    }

    /// Every file of the cache directory and its bytes (symlinks as their target), but the
    /// empty lock files.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = fs::read_dir(dir) else { return };
            for entry in entries {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    out.insert(path, target.into_os_string().into_encoded_bytes());
                } else if path.extension().is_some_and(|e| e == "lock")
                    || path.file_name().is_some_and(|n| n == "lock")
                {
                    // The empty files locks are taken on: they carry no data.
                } else if meta.is_dir() {
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir.path().join("cache"), &mut out);
        out
    }

    /// Pulls, expects a refusal, and checks that not one byte of the cache changed.
    fn refused(&self, server: &mut FakeServer, now: u64) -> String {
        let before = self.files();
        let error = self.pull(server, now).expect_err("the pull must be refused");
        assert_eq!(self.files(), before, "a refused pull changed the cache: {error}");
        error.to_string()
    }
}

fn names(db: &Db) -> Vec<(String, u32, u32, bool)> {
    let mut users: Vec<_> =
        db.users.iter().map(|u| (u.name.clone(), u.uid, u.gid, u.enabled)).collect();
    users.sort();
    users
}

/// A publisher, a published snapshot, a host that installed it, and the server.
fn installed() -> (Publisher, Host, FakeServer) {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let host = Host::new(&publisher);
    let mut server = FakeServer::new(&publisher.out());
    host.pull(&mut server, NOW + 10).unwrap();
    (publisher, host, server)
}

#[test]
fn a_host_gets_exactly_the_publishers_users_uids_groups_and_flags() {
    let (publisher, host, _) = installed();
    let published = publisher.cache().load().unwrap();
    let pulled = host.db();
    assert_eq!(names(&pulled), names(&published));
    assert_eq!(pulled.users.len(), 20);
    let bob = pulled.user("bob@example.com").unwrap();
    assert!(!bob.enabled, "the publisher's disable travels as enabled = false");
    assert!(!bob.disabled_by_admin, "the publisher's own mark does not");
    assert_eq!(bob.auth, AuthMethod::Directory);
    assert_eq!(bob.privileges, published.user("bob@example.com").unwrap().privileges);
    assert_eq!(pulled.groups, published.groups);
    let state = read_state(&host.config.cache.dir).unwrap().unwrap();
    assert_eq!(state.key_id, publisher.key().id().to_string());
    assert_eq!(state.generation, NOW);
}

#[test]
fn manual_users_hashes_travel_only_when_asked() {
    let (_publisher, host, _) = installed();
    assert_eq!(host.db().user("alice").unwrap().password_hash, None);

    let publisher = Publisher::new();
    let mut config = publisher.config.clone();
    config.publish.as_mut().unwrap().include_local_passwords = true;
    let report = publish(&config, &publisher.out(), NOW).unwrap();
    assert_eq!(report.hashes_withheld, 0);
    // A host installs them only when it says so itself: a signing key alone must not give
    // every host a password login.
    let host = Host::new(&publisher);
    host.pull(&mut FakeServer::new(&publisher.out()), NOW).unwrap();
    assert_eq!(host.db().user("alice").unwrap().password_hash, None);
    let host = Host::with_key(&publisher.public_key(), "accept_local_passwords = true\n");
    host.pull(&mut FakeServer::new(&publisher.out()), NOW).unwrap();
    assert!(host.db().user("alice").unwrap().password_hash.is_some());
    // A file with hashes is 0600 (root's) on the publisher too, the others stay readable.
    let (users, _) = users_file(&publisher);
    assert_eq!(fs::metadata(&users).unwrap().permissions().mode() & 0o777, 0o600);
    let manifest = fs::metadata(publisher.out().join(MANIFEST_FILE)).unwrap();
    assert_eq!(manifest.permissions().mode() & 0o777, 0o644);
}

#[test]
fn an_unchanged_snapshot_costs_one_conditional_request_and_writes_nothing() {
    let (_publisher, host, mut server) = installed();
    let before = host.files();
    server.requests.clear();
    let outcome = host.pull(&mut server, NOW + 20).unwrap();
    assert!(outcome.report.snapshot.as_ref().unwrap().unchanged);
    assert_eq!(server.requests.len(), 1, "{:?}", server.requests);
    assert!(server.requests[0].1.iter().any(|(h, _)| *h == "if-none-match"));
    assert_eq!(host.files(), before);
}

#[test]
fn a_new_publication_is_installed_and_unreferenced_files_are_pruned_later() {
    let (publisher, host, mut server) = installed();
    let mut db = publisher.cache().load().unwrap();
    db.users.retain(|u| u.uid != 200_020);
    publisher.write(db);
    let second = publisher.publish_at(NOW + 100);
    assert!(second.generation > NOW);
    let outcome = host.pull(&mut server, NOW + 110).unwrap();
    assert_eq!(outcome.report.deleted, ["user20@example.com"]);
    assert!(host.db().meta.retired_ids.contains(&200_020), "a deleted uid is retired");
    // The first publication's users file is kept for a while, then pruned.
    let old_files = |p: &Publisher| {
        fs::read_dir(p.out())
            .unwrap()
            .filter(|e| {
                e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".users.jsonl.gz")
            })
            .count()
    };
    assert_eq!(old_files(&publisher), 2);
    for i in 0..KEEP_GENERATIONS as u64 {
        publisher.publish_at(NOW + KEEP_SECS + 1000 + i);
    }
    // Old files are pruned only once they are both out of the history and old enough:
    // their mtime is real time, far before NOW + KEEP_SECS.
    assert_eq!(old_files(&publisher), 1);
}

/// Changes one user's full name on the publisher: a publication with new data files.
fn change(publisher: &Publisher, full_name: &str) {
    let mut db = publisher.cache().load().unwrap();
    db.user_mut("user5@example.com").unwrap().full_name = full_name.to_string();
    publisher.write(db);
}

fn users_file(publisher: &Publisher) -> (PathBuf, u64) {
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(publisher.out().join(MANIFEST_FILE)).unwrap()).unwrap();
    let users = manifest.files.iter().find(|f| f.kind == FileKind::Users).unwrap();
    (publisher.out().join(&users.name), users.size)
}

#[test]
fn a_tampered_data_file_is_refused_and_the_cache_is_byte_identical() {
    let (publisher, host, mut server) = installed();
    change(&publisher, "Second");
    publisher.publish_at(NOW + 100);
    let (users, _) = users_file(&publisher);
    let mut bytes = fs::read(&users).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&users, bytes).unwrap();
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("SHA-256 is not the one signed"), "{error}");
    // The next publication repairs it.
    let tampered = fs::read(&users).unwrap();
    publisher.publish_at(NOW + 200);
    assert_ne!(fs::read(&users).unwrap(), tampered);
    host.pull(&mut server, NOW + 210).unwrap();

    // A longer file is cut at its signed size and refused too.
    change(&publisher, "Third Name");
    publisher.publish_at(NOW + 300);
    let (users, size) = users_file(&publisher);
    fs::write(&users, vec![b'{'; size as usize + 10]).unwrap();
    let error = host.refused(&mut server, NOW + 310);
    assert!(error.contains("longer than"), "{error}");
}

#[test]
fn a_republication_of_the_same_data_is_recorded_without_downloading_it() {
    let (publisher, host, mut server) = installed();
    let before = host.files();
    let second = publisher.publish_at(NOW + 100);
    server.requests.clear();
    let outcome = host.pull(&mut server, NOW + 110).unwrap();
    let pulled = outcome.report.snapshot.unwrap();
    assert!(pulled.unchanged);
    assert_eq!(pulled.generation, second.generation);
    let names: Vec<&str> = server.requests.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [MANIFEST_FILE, SIGNATURE_FILE]);
    // The cache is as it was; only the record of the installed generation moved on.
    let after = host.files();
    let state = host.config.cache.dir.join("snapshot.json");
    let differs: Vec<&PathBuf> = after.keys().filter(|p| before.get(*p) != after.get(*p)).collect();
    assert_eq!(differs, [&state]);
    assert_eq!(read_state(&host.config.cache.dir).unwrap().unwrap().generation, second.generation);
    // Freshness comes from the new publication.
    host.pull(&mut server, NOW + 100 + 86_000).unwrap();
}

/// A validly signed manifest of the installed generation that names other files (a
/// publisher that lost its directory and whose clock went back, or two publish directories
/// in one second) is not installed, so the host's record must go on naming the files it
/// installed: otherwise the next generation of those other files passes for "the very files
/// installed" and the host never gets them.
#[test]
fn a_same_generation_with_other_files_does_not_change_what_counts_as_installed() {
    let (publisher, host, mut server) = installed();
    let installed = read_state(&host.config.cache.dir).unwrap().unwrap();
    change(&publisher, "Second");
    publisher.publish_at(NOW + 100);
    publisher.resign(|m| m.generation = installed.generation);
    let outcome = host.pull(&mut server, NOW + 110).unwrap();
    assert!(outcome.report.snapshot.unwrap().unchanged);
    assert_eq!(read_state(&host.config.cache.dir).unwrap().unwrap().files, installed.files);
    // The next generation of the same data is installed.
    publisher.publish_at(NOW + 200);
    host.pull(&mut server, NOW + 210).unwrap();
    assert_eq!(host.db().user("user5@example.com").unwrap().full_name, "Second");
}

#[test]
fn a_changed_manifest_fails_the_signature() {
    let (publisher, host, mut server) = installed();
    publisher.publish_at(NOW + 100);
    let path = publisher.out().join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).unwrap().replacen("\"users\": 20", "\"users\": 21", 1);
    fs::write(&path, text).unwrap();
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("signature does not verify"), "{error}");
}

#[test]
fn a_snapshot_signed_by_another_key_is_refused() {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let other = tempfile::tempdir().unwrap();
    keygen(&other.path().join("k"), &other.path().join("k.pub")).unwrap();
    let host = Host::with_key(&other.path().join("k.pub"), "");
    let error = host.refused(&mut FakeServer::new(&publisher.out()), NOW);
    assert!(error.contains("signed by key id"), "{error}");
    assert!(error.contains("snapshot.public_key_file"), "{error}");
    assert!(host.db().users.is_empty());
}

#[test]
fn the_key_can_be_given_inline() {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let text = fs::read_to_string(publisher.public_key()).unwrap();
    let line = text.lines().nth(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[snapshot]\nurl = \"https://s.example/\"\npublic_key = {line:?}\n"),
    );
    pull(&config, &mut FakeServer::new(&publisher.out()), SyncOptions::default(), NOW).unwrap();
    assert_eq!(CacheDir::new(&config.cache.dir).load().unwrap().users.len(), 20);
}

#[test]
fn an_older_generation_is_refused_as_a_rollback() {
    let (publisher, host, mut server) = installed();
    let old = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(publisher.out()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), old.path().join(entry.file_name())).unwrap();
    }
    publisher.publish_at(NOW + 100);
    host.pull(&mut server, NOW + 110).unwrap();
    let mut replay = FakeServer::new(old.path());
    let error = host.refused(&mut replay, NOW + 120);
    assert!(error.contains("refusing a rollback"), "{error}");
}

#[test]
fn stale_and_future_snapshots_are_refused() {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let host = Host::new(&publisher);
    let mut server = FakeServer::new(&publisher.out());
    let error = host.refused(&mut server, NOW + 86_400 + 1);
    assert!(error.contains("max_age_secs = 86400"), "{error}");
    let error = host.refused(&mut server, NOW - 3600);
    assert!(error.contains("in the future"), "{error}");
    // Installed, then the server keeps answering 304 while the publisher is gone.
    host.pull(&mut server, NOW).unwrap();
    let error = host.refused(&mut server, NOW + 86_400 + 1);
    assert!(error.contains("max_age_secs"), "{error}");
}

#[test]
fn a_half_uploaded_snapshot_is_refused_until_its_files_arrive() {
    let (publisher, host, mut server) = installed();
    let mut db = publisher.cache().load().unwrap();
    db.users[3].full_name = "Changed".to_string();
    publisher.write(db);
    let report = publisher.publish_at(NOW + 100);
    let users = report.files.iter().find(|f| f.kind == FileKind::Users).unwrap();
    let path = publisher.out().join(&users.name);
    let parked = publisher.dir.path().join("parked");
    fs::rename(&path, &parked).unwrap();
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("half-uploaded"), "{error}");
    fs::rename(&parked, &path).unwrap();
    let outcome = host.pull(&mut server, NOW + 120).unwrap();
    assert_eq!(outcome.report.updated.len(), 1);
}

#[test]
fn http_failures_and_html_pages_are_refused_with_what_to_do() {
    let (publisher, host, mut server) = installed();
    publisher.publish_at(NOW + 100);
    let cases: Vec<(GetReply, &str)> = vec![
        (reply(404, None), "has `dircache-sync publish` run"),
        (GetReply { retry_after: Some("120".to_string()), ..reply(503, None) }, "HTTP status 503"),
        (reply(500, None), "the server is failing"),
        (
            GetReply {
                content_type: Some("text/html".to_string()),
                ..reply(200, Some(b"<html>Login</html>".to_vec()))
            },
            "HTML page",
        ),
        (reply(200, Some(b"  <!DOCTYPE html>".to_vec())), "HTML page"),
        (reply(200, Some(vec![b'{'; MAX_MANIFEST_BYTES as usize + 1])), "larger than"),
    ];
    for (failure, expected) in cases {
        server.overrides.insert(MANIFEST_FILE.to_string(), failure);
        let error = host.refused(&mut server, NOW + 110);
        assert!(error.contains(expected), "{expected}: {error}");
    }
    server.overrides.clear();
    server.overrides.insert(
        SIGNATURE_FILE.to_string(),
        GetReply { retry_after: Some("30".into()), ..reply(503, None) },
    );
    let error = host.pull(&mut server, NOW + 110).unwrap_err();
    let SyncError::Snapshot(error) = error else { panic!("{error}") };
    assert_eq!(error.retry_after(), Some(30));
    assert!(error.server_trouble());
}

#[test]
fn file_names_from_the_manifest_cannot_leave_the_snapshot_url() {
    let (publisher, host, mut server) = installed();
    publisher.publish_at(NOW + 100);
    publisher.resign(|m| m.files[0].name = "../../etc/passwd".to_string());
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("is not <sha256>.users.jsonl.gz"), "{error}");
    assert!(!server.requests.iter().any(|(name, _)| name.contains("..")));
}

#[test]
fn signed_sizes_are_capped_before_anything_is_downloaded() {
    let (publisher, host, mut server) = installed();
    publisher.publish_at(NOW + 100);
    publisher.resign(|m| m.files[0].size = 5 << 30);
    server.requests.clear();
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("snapshot.max_file_mib"), "{error}");
    assert_eq!(server.requests.len(), 2, "only the manifest and the signature");
}

#[test]
fn a_signed_snapshot_is_trusted_no_more_than_a_directory() {
    let publisher = Publisher::new();
    let mut db = sample_fleet_db();
    db.users.push(sample_user("root", 200_100));
    db.users.push(sample_user("zero", 0));
    db.users.push(sample_user("localuser", 200_101));
    db.users.push(sample_user("lowid", 1000));
    db.users.push(sample_user("outside", 900_000));
    db.users.push(User { home: "/home/../root".to_string(), ..sample_user("climber", 200_102) });
    db.users.push(User { shell: "/bin/sh\nx".to_string(), ..sample_user("breaker", 200_103) });
    publisher.write(db);
    publisher.publish_at(NOW);
    let host = Host::new(&publisher);
    let outcome = host.pull(&mut FakeServer::new(&publisher.out()), NOW).unwrap();
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["zero", "lowid", "root", "localuser", "climber", "breaker", "outside"]);
    let db = host.db();
    assert_eq!(db.users.len(), 20);
    assert!(db.users.iter().all(|u| u.uid >= 200_000 && u.uid < 300_000));
}

/// A sync never gives two accounts one home, not even one after the other; a snapshot may
/// not either: before, both users of one home were installed, and a new account got the
/// home (and files) of one deleted on this host.
#[test]
fn a_snapshot_shares_no_home_and_reuses_none_left_by_a_deleted_account() {
    let (publisher, host, mut server) = installed();
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        let taken = db.user("user5@example.com").unwrap().home.clone();
        db.users.push(User { home: taken, ..sample_user("twin", 200_200) });
        db.users.retain(|u| u.name != "user6@example.com");
    });
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["twin"]);
    assert!(outcome.report.deleted.contains(&"user6@example.com".to_string()));

    // user6's home is retired here: a new account of the publisher with it is refused.
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.users.retain(|u| u.name != "twin");
        db.users
            .push(User { home: "/home/user6@example.com".into(), ..sample_user("heir", 200_201) });
    });
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["heir"]);
    assert!(outcome.report.skipped[0].reason.contains("deleted on this host"));
    assert!(host.db().user("heir").is_none());
}

#[test]
fn a_local_disable_outlasts_pulls() {
    let (publisher, host, mut server) = installed();
    CacheDir::new(&host.config.cache.dir)
        .update(Duration::from_secs(1), NOW, |db| {
            let user = db.user_mut("user3@example.com").unwrap();
            user.disabled_by_admin = true;
            user.enabled = false;
            Ok::<(), crate::cache::CacheError>(())
        })
        .unwrap();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.user_mut("user3@example.com").unwrap().full_name = "New Name".to_string();
    });
    let user = host.db().user("user3@example.com").unwrap().clone();
    assert_eq!(user.full_name, "New Name");
    assert!(!user.enabled && user.disabled_by_admin);
}

#[test]
fn the_delete_limit_and_the_empty_snapshot_are_refused_unless_forced() {
    let (publisher, host, mut server) = installed();
    let mut db = publisher.cache().load().unwrap();
    db.users.truncate(5);
    publisher.write(db);
    publisher.publish_at(NOW + 100);
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("max_delete_percent"), "{error}");
    let dry = SyncOptions { dry_run: true, force: false };
    let before = host.files();
    let outcome = host.pull_with(&mut server, NOW + 110, dry).unwrap();
    assert_eq!(outcome.report.deleted.len(), 15);
    assert_eq!(host.files(), before, "a dry run writes nothing");
    let force = SyncOptions { dry_run: false, force: true };
    host.pull_with(&mut server, NOW + 110, force).unwrap();
    assert_eq!(host.db().users.len(), 5);

    publisher.write(Db::default());
    publisher.publish_at(NOW + 200);
    let error = host.refused(&mut server, NOW + 210);
    assert!(error.contains("returned no users"), "{error}");
}

#[test]
fn keygen_writes_a_private_secret_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = (dir.path().join("k"), dir.path().join("k.pub"));
    let id = keygen(&secret, &public).unwrap();
    assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(fs::read_to_string(&public).unwrap().contains(&id.to_string()));
    let before = fs::read(&secret).unwrap();
    let error = keygen(&secret, &public).unwrap_err().to_string();
    assert!(error.contains("refusing to overwrite"), "{error}");
    assert_eq!(fs::read(&secret).unwrap(), before);

    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let error = SigningKey::load(&secret).err().unwrap().to_string();
    assert!(error.contains("must not be readable by others"), "{error}");
    assert!(error.contains("chmod 600"), "{error}");
}

#[test]
fn a_publish_needs_a_cache_and_a_key() {
    let publisher = Publisher::new();
    let mut config = publisher.config.clone();
    config.publish = None;
    let error = publish(&config, &publisher.out(), NOW).unwrap_err().to_string();
    assert!(error.contains("[publish] signing_key_file"), "{error}");
    let empty = tempfile::tempdir().unwrap();
    let mut config = publisher.config.clone();
    config.cache.dir = empty.path().join("cache");
    let error = publish(&config, &publisher.out(), NOW).unwrap_err().to_string();
    assert!(error.contains("no user cache"), "{error}");
}

#[test]
fn generations_always_increase_even_within_a_second() {
    let publisher = Publisher::new();
    let first = publisher.publish_at(NOW);
    let second = publisher.publish_at(NOW);
    let earlier_clock = publisher.publish_at(NOW - 1000);
    assert!(first.generation < second.generation);
    assert!(second.generation < earlier_clock.generation);
}

#[test]
fn a_new_trusted_key_verifies_the_manifest_again_instead_of_trusting_a_304() {
    let (publisher, host, mut server) = installed();
    let other = tempfile::tempdir().unwrap();
    keygen(&other.path().join("k"), &other.path().join("k.pub")).unwrap();
    let mut config = host.config.clone();
    config.snapshot.as_mut().unwrap().public_key_file = Some(other.path().join("k.pub"));
    server.requests.clear();
    let error = pull(&config, &mut server, SyncOptions::default(), NOW + 20).unwrap_err();
    assert!(error.to_string().contains("signed by key id"), "{error}");
    assert!(server.requests[0].1.is_empty(), "no conditional GET: {:?}", server.requests);
    drop(publisher);
}

#[test]
fn a_local_enable_makes_the_next_pull_restore_the_publishers_flag() {
    let (_publisher, host, mut server) = installed();
    let cache = CacheDir::new(&host.config.cache.dir);
    let disable = |db: &mut Db| {
        let user = db.user_mut("user4@example.com").unwrap();
        user.disabled_by_admin = true;
        user.enabled = false;
        Ok::<(), crate::cache::CacheError>(())
    };
    cache.update(Duration::from_secs(1), NOW, disable).unwrap();
    // `user set --enable` on a replica: the mark goes, the flag stays until the next pull.
    let enable = |db: &mut Db| {
        db.user_mut("user4@example.com").unwrap().disabled_by_admin = false;
        Ok::<(), crate::cache::CacheError>(())
    };
    cache.update(Duration::from_secs(1), NOW, enable).unwrap();
    request_reapply(&host.config.cache.dir).unwrap();
    let outcome = host.pull(&mut server, NOW + 20).unwrap();
    assert_eq!(outcome.report.updated, ["user4@example.com"]);
    assert!(host.db().user("user4@example.com").unwrap().enabled);
    assert!(!read_state(&host.config.cache.dir).unwrap().unwrap().reapply);
    // And then unchanged again.
    assert!(host.pull(&mut server, NOW + 30).unwrap().report.snapshot.unwrap().unchanged);
}

#[test]
fn retry_after_is_read_in_seconds_and_bounded() {
    assert_eq!(retry_after_secs(" 120 "), Some(120));
    assert_eq!(retry_after_secs("99999999"), Some(86_400));
    assert_eq!(retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"), None);
}

#[test]
fn decompression_stops_at_the_signed_size() {
    let (publisher, host, mut server) = installed();
    change(&publisher, "Bomb");
    publisher.publish_at(NOW + 100);
    // Signed by the real key, the files as published, but a smaller content size: the
    // decompressor must stop there and refuse, whatever the gzip stream would expand to.
    publisher.resign(|m| m.files[0].content_size = 100);
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("decompresses to 101 bytes, the manifest signs 100"), "{error}");
    publisher.resign(|m| m.files[0].content_size = 5 << 30);
    let error = host.refused(&mut server, NOW + 110);
    assert!(error.contains("snapshot.max_file_mib"), "{error}");
}

#[test]
fn a_host_grants_local_groups_by_its_own_mapping_and_its_own_group_file() {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let mut server = FakeServer::new(&publisher.out());
    let host = Host::with_key(
        &publisher.public_key(),
        "[unix.local_groups]\n_dc-granted = [\"dc-staff\"]\n",
    );
    // This host's gid for the group, whatever the publisher's would be.
    fs::write(host.dir.path().join("group"), "root:x:0:\n_dc-granted:x:4242:\n").unwrap();
    let config = Config::load(&host.dir.path().join("dircache.toml")).unwrap();
    let host = Host { config, ..host };
    let outcome = pull(&host.config, &mut server, SyncOptions::default(), NOW + 10).unwrap();
    let granted: Vec<_> = outcome.report.granted.iter().map(|g| g.user.clone()).collect();
    // alice holds login and is enabled; bob is disabled on the publisher: no grant.
    assert_eq!(granted, ["alice"], "{:?}", outcome.report);
    let grants = host.db().grants;
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].name.as_str(), grants[0].gid), ("_dc-granted", 4242));
    assert_eq!(grants[0].members, ["alice"]);
}

#[test]
fn a_pull_of_an_unchanged_snapshot_reseals_after_a_local_change() {
    let (_publisher, host, mut server) = installed();
    let seal = || {
        CacheDir::new(&host.config.cache.dir)
            .open::<crate::cache::PublicUser>()
            .unwrap()
            .local_seal()
    };
    let local_now = || host.config.local_accounts().unwrap().files_seal();
    assert_eq!(seal(), local_now(), "the first pull seals");
    let passwd = host.dir.path().join("passwd");
    let mut text = fs::read_to_string(&passwd).unwrap();
    text.push_str("newlocal:x:1001:1001::/home/n:/bin/sh\n");
    fs::write(&passwd, text).unwrap();
    let outcome = host.pull(&mut server, NOW + 20).unwrap();
    assert!(outcome.report.snapshot.as_ref().unwrap().unchanged, "nothing new was published");
    assert!(outcome.report.generation.is_some());
    assert_eq!(seal(), local_now(), "sealed for the files as they are now");
    // Sealed already: the next unchanged pull writes nothing.
    assert_eq!(host.pull(&mut server, NOW + 30).unwrap().report.generation, None);
}

#[test]
fn an_unchanged_pull_reseals_but_changes_no_grant_unreported() {
    let publisher = Publisher::new();
    publisher.publish_at(NOW);
    let mut server = FakeServer::new(&publisher.out());
    let host = Host::new(&publisher);
    host.pull(&mut server, NOW + 10).unwrap();
    assert!(host.db().grants.is_empty());
    // The administrator maps a local group and creates it: the local files change.
    let key = publisher.public_key();
    let text = format!(
        "[snapshot]\nurl = \"https://snapshots.example/\"\npublic_key_file = {key:?}\n\
         [unix.local_groups]\n_dc-granted = [\"dc-staff\"]\n"
    );
    let config = write_config(host.dir.path(), &text);
    fs::write(host.dir.path().join("group"), "root:x:0:\n_dc-granted:x:4242:\n").unwrap();
    let host = Host { config, ..host };
    let outcome = host.pull(&mut server, NOW + 20).unwrap();
    assert!(outcome.report.snapshot.as_ref().unwrap().unchanged);
    assert!(outcome.report.generation.is_some(), "sealed again for the new /etc/group");
    // The grant waits for a run that reports it (new data, or `sync --force`).
    assert!(outcome.report.granted.is_empty());
    assert!(host.db().grants.is_empty());
}

#[test]
fn an_unsealable_generation_is_not_loaded_again_by_unchanged_pulls() {
    let (_publisher, host, mut server) = installed();
    // A local account takes the name of an installed user: no generation can be sealed.
    let name = host.db().users[0].name.clone();
    let passwd = host.dir.path().join("passwd");
    let mut text = fs::read_to_string(&passwd).unwrap();
    text.push_str(&format!("{name}:x:1001:1001::/home/n:/bin/sh\n"));
    fs::write(&passwd, &text).unwrap();
    assert_eq!(host.pull(&mut server, NOW + 20).unwrap().report.generation, None);
    let files_seal = host.config.local_accounts().unwrap().files_seal();
    let state = super::state::read_state(&host.config.cache.dir).unwrap().unwrap();
    assert_eq!(state.unsealable_for, Some(files_seal));
    // The next unchanged pulls do not load the cache (a broken users.private, which they
    // would read, goes unnoticed)...
    let private = CacheDir::new(&host.config.cache.dir).current_dir().unwrap().unwrap();
    let private = private.join("users.private");
    let mut bytes = fs::read(&private).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&private, bytes).unwrap();
    assert_eq!(host.pull(&mut server, NOW + 30).unwrap().report.generation, None);
    // ...until the local files change again.
    text.push_str("another:x:1002:1002::/home/a:/bin/sh\n");
    fs::write(&passwd, &text).unwrap();
    assert!(host.pull(&mut server, NOW + 40).is_err(), "loads the cache, finds it broken");
}

/// A snapshot's ids are the publisher's: a group on the gid of a user's private group, or a
/// user whose primary group is another user's private group, would give its members that
/// user's group access. Both are skipped; a sync never makes either (review finding).
#[test]
fn a_snapshot_group_or_user_on_another_users_private_group_is_skipped() {
    let publisher = Publisher::new();
    let mut db = sample_fleet_db();
    let alice_gid = db.user("alice").unwrap().gid;
    assert_eq!(alice_gid, db.user("alice").unwrap().uid);
    db.groups.push(Group {
        name: "dc-ops".to_string(),
        gid: alice_gid,
        members: vec!["user3@example.com".to_string()],
        origin: Origin::Icewarp,
        directory_identity: None,
    });
    db.users.push(User { gid: alice_gid, ..sample_user("mallory", 200_150) });
    publisher.write(db);
    publisher.publish_at(NOW);
    let host = Host::new(&publisher);
    host.pull(&mut FakeServer::new(&publisher.out()), NOW + 10).unwrap();
    let db = host.db();
    assert!(!db.groups.iter().any(|g| g.name == "dc-ops"), "{:?}", db.groups);
    assert!(db.user("mallory").is_none());
    assert_eq!(db.user("alice").unwrap().gid, alice_gid, "alice herself is installed");
}

/// A host user that this pull deletes (it left the snapshot) has its ids and home retired
/// only once the install is applied: while it is planned they are still its, and no group,
/// primary group or home of the snapshot may take them (review finding).
#[test]
fn a_snapshot_never_hands_out_the_ids_or_home_of_a_user_it_deletes() {
    let (publisher, host, mut server) = installed();
    let victim = host.db().user("user6@example.com").unwrap().clone();
    assert_eq!(victim.uid, victim.gid);
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.users.retain(|u| u.name != "user6@example.com");
        db.groups.push(Group {
            name: "dc-heirs".to_string(),
            gid: victim.uid,
            members: vec!["user3@example.com".to_string()],
            origin: Origin::Icewarp,
            directory_identity: None,
        });
        db.users.push(User { gid: victim.uid, ..sample_user("mallory", 200_300) });
        db.users.push(User { home: victim.home.clone(), ..sample_user("heir", 200_301) });
    });
    assert!(outcome.report.deleted.contains(&"user6@example.com".to_string()));
    let skipped: Vec<(&str, &str)> =
        outcome.report.skipped.iter().map(|s| (s.name.as_str(), s.reason.as_str())).collect();
    let why = |name: &str| skipped.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
    assert!(why("mallory").is_some_and(|r| r.contains("private group")), "{skipped:?}");
    assert!(why("heir").is_some_and(|r| r.contains("another account's")), "{skipped:?}");
    let db = host.db();
    assert!(db.meta.retired_ids.contains(&victim.uid));
    assert!(!db.groups.iter().any(|g| g.name == "dc-heirs"), "{:?}", db.groups);
    assert!(db.user("mallory").is_none() && db.user("heir").is_none());
}

/// A published user on the gid of a host group would have that group's gid (and files) as
/// its private group once the group is dropped: skipped (review finding).
#[test]
fn a_published_user_on_a_host_groups_gid_is_skipped() {
    let (publisher, host, mut server) = installed();
    let staff_gid = host.db().groups.iter().find(|g| g.name == "dc-staff").unwrap().gid;
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.users.push(sample_user("mallory", staff_gid));
    });
    let why = outcome.report.skipped.iter().find(|s| s.name == "mallory").map(|s| &s.reason);
    assert!(why.is_some_and(|r| r.contains("the gid of a group on this host")), "{why:?}");
    let db = host.db();
    assert!(db.user("mallory").is_none());
    assert!(db.groups.iter().any(|g| g.name == "dc-staff" && g.gid == staff_gid));
}

/// The same account moved to another uid by its publisher (same name and home) is not
/// refused for its home: refusing it would delete the host's user and retire its home for
/// good (review finding).
#[test]
fn a_user_moved_to_another_uid_keeps_its_home() {
    let (publisher, host, mut server) = installed();
    let old = host.db().user("user5@example.com").unwrap().clone();
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        let user5 = db.users.iter_mut().find(|u| u.name == "user5@example.com").unwrap();
        (user5.uid, user5.gid) = (200_205, 200_205);
    });
    assert!(!outcome.report.skipped.iter().any(|s| s.name == "user5@example.com"));
    let moved = host.db().user("user5@example.com").unwrap().clone();
    assert_eq!((moved.uid, &moved.home), (200_205, &old.home));
}

/// A group skipped for its name holds no gid: the host group at its gid is deleted and its
/// gid retired, never handed to a user later (review finding).
#[test]
fn a_group_skipped_for_its_name_is_deleted_and_its_gid_retired() {
    let (publisher, host, mut server) = installed();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.groups.push(Group {
            name: "dc-ops".to_string(),
            gid: 200_501,
            members: vec!["alice".to_string()],
            origin: Origin::Icewarp,
            directory_identity: None,
        });
    });
    assert!(host.db().groups.iter().any(|g| g.gid == 200_501));
    // dc-ops renamed to dc-staff's name (in another case): skipped as a duplicate name.
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        let ops = db.groups.iter_mut().find(|g| g.gid == 200_501).unwrap();
        ops.name = "DC-STAFF".to_string();
    });
    let deleted: Vec<&str> = outcome.report.groups_deleted.iter().map(String::as_str).collect();
    assert_eq!(deleted, ["dc-ops"], "{outcome:?}");
    let db = host.db();
    assert!(!db.groups.iter().any(|g| g.gid == 200_501));
    assert!(db.meta.retired_ids.contains(&200_501));
}

// ----- review findings on 4baebbd (helper-44); each failed before its fix -----

/// An account moved to another uid keeps its home however often it moves: the home its
/// old record leaves is not retired.
#[test]
fn a_user_moved_twice_keeps_its_home() {
    let (publisher, host, mut server) = installed();
    let old = host.db().user("user5@example.com").unwrap().clone();
    for (step, uid) in [(1u64, 200_205u32), (2, 200_206)] {
        let mut db = publisher.cache().load().unwrap();
        let user5 = db.users.iter_mut().find(|u| u.name == "user5@example.com").unwrap();
        (user5.uid, user5.gid) = (uid, uid);
        publisher.write(db);
        publisher.publish_at(NOW + 100 * step);
        let outcome = host.pull(&mut server, NOW + 100 * step + 10).unwrap();
        let why = outcome.report.skipped.iter().find(|s| s.name == "user5@example.com");
        assert!(why.is_none(), "move {step}: {why:?}");
        let moved = host.db().user("user5@example.com").cloned();
        assert_eq!(moved.map(|m| (m.uid, m.home)), Some((uid, old.home.clone())), "move {step}");
    }
}

/// A host group on a user's uid (an install before the group rule let one in) is the group's
/// problem: the user is kept, not deleted for it.
#[test]
fn a_legacy_host_group_on_a_users_uid_does_not_delete_the_user() {
    let (publisher, host, mut server) = installed();
    let user7 = host.db().user("user7@example.com").unwrap().clone();
    CacheDir::new(&host.config.cache.dir)
        .update(Duration::from_secs(1), NOW + 20, |db| {
            db.groups.push(Group {
                name: "legacy".to_string(),
                gid: user7.uid,
                members: vec![],
                origin: Origin::Icewarp,
                directory_identity: None,
            });
            Ok::<(), crate::cache::CacheError>(())
        })
        .unwrap();
    change(&publisher, "Changed");
    publisher.publish_at(NOW + 100);
    let outcome = host.pull(&mut server, NOW + 110).unwrap();
    let why = outcome.report.skipped.iter().find(|s| s.name == "user7@example.com");
    assert!(why.is_none(), "{why:?}");
    assert!(host.db().user("user7@example.com").is_some());
}

/// A published group on the uid of a published user skipped at this pull is skipped too, so
/// that the user is installed once its own problem is fixed.
#[test]
fn a_group_on_a_skipped_users_uid_does_not_block_the_user_later() {
    let (publisher, host, mut server) = installed();
    let taken = host.db().user("user5@example.com").unwrap().home.clone();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.users.push(User { home: taken, ..sample_user("pat", 200_300) });
        db.groups.push(Group {
            name: "dc-pat".to_string(),
            gid: 200_300,
            members: vec![],
            origin: Origin::Icewarp,
            directory_identity: None,
        });
    });
    // The publisher fixes pat's home.
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.user_mut("pat").unwrap().home = "/home/pat".to_string();
    });
    let why = outcome.report.skipped.iter().find(|s| s.name == "pat");
    assert!(why.is_none(), "{why:?}");
}

// ----- review findings on 99d4b99 (helper-45); the first three failed before the fix -----

/// A renamed host user keeps its home (its files), however often the same snapshot is
/// pulled: a new uid never gets it.
#[test]
fn a_renamed_host_user_does_not_hand_its_home_to_a_new_uid_at_the_next_pull() {
    let (publisher, host, mut server) = installed();
    let victim = host.db().user("user5@example.com").unwrap().clone();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        let old = db.users.iter_mut().find(|u| u.uid == victim.uid).unwrap();
        old.name = "carol".to_string();
        old.home = "/home/carol".to_string();
        db.users
            .push(User { home: victim.home.clone(), ..sample_user("user5@example.com", 200_205) });
    });
    assert!(host.db().user("user5@example.com").is_none_or(|u| u.home != victim.home));
    // The publisher touches anything and publishes again: the same users.
    change(&publisher, "Changed");
    publisher.publish_at(NOW + 200);
    host.pull(&mut server, NOW + 210).unwrap();
    let db = host.db();
    let carol = db.user("carol").expect("uid of the old owner kept, renamed");
    assert_eq!(carol.uid, victim.uid);
    let new = db.user("user5@example.com");
    assert!(
        new.is_none_or(|u| u.home != victim.home),
        "second pull: uid {} got {} whose files live uid {} (carol) owns",
        new.unwrap().uid,
        victim.home,
        carol.uid
    );
}

/// A host user whose home the publisher changes (same uid) keeps its home here, as a sync
/// never changes a user's home: no other account gets it at a later pull.
#[test]
fn a_home_left_by_a_changed_home_goes_to_no_one_else() {
    let (publisher, host, mut server) = installed();
    let victim = host.db().user("user5@example.com").unwrap().clone();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.user_mut("user5@example.com").unwrap().home = "/home/elsewhere".to_string();
    });
    publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.users.push(User { home: victim.home.clone(), ..sample_user("eve", 200_300) });
    });
    assert_home_not_given(
        &host,
        "eve",
        &victim.home,
        &format!("the files of living uid {}", victim.uid),
    );
}

/// An account moved to another uid and then given another home keeps the home its old uid
/// left: it is never handed out.
#[test]
fn a_moved_users_old_home_is_not_handed_out_after_it_moves_home() {
    let (publisher, host, mut server) = installed();
    let old = host.db().user("user5@example.com").unwrap().clone();
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        let user5 = db.users.iter_mut().find(|u| u.name == "user5@example.com").unwrap();
        (user5.uid, user5.gid) = (200_205, 200_205);
    });
    assert_eq!(host.db().user("user5@example.com").unwrap().home, old.home);
    publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.user_mut("user5@example.com").unwrap().home = "/home/elsewhere".to_string();
        db.users.push(User { home: old.home.clone(), ..sample_user("eve", 200_300) });
    });
    // Same pull: refused (uid 200205 still held it on the host). Next pull: ...
    change(&publisher, "Changed");
    publisher.publish_at(NOW + 300);
    host.pull(&mut server, NOW + 310).unwrap();
    let why = format!("left by uid {} (deleted) and then by uid 200205", old.uid);
    assert_home_not_given(&host, "eve", &old.home, &why);
}

/// `name`, if the host has it, did not get `home` (`why` it must not).
fn assert_home_not_given(host: &Host, name: &str, home: &str, why: &str) {
    let got = host.db().user(name).map(|user| user.home.clone());
    assert_ne!(got.as_deref(), Some(home), "{name} got {home}, {why}");
}

/// A home changed and changed back (publisher's typo fixed) must not cost the account.
#[test]
fn a_home_changed_back_keeps_the_user() {
    let (publisher, host, mut server) = installed();
    let victim = host.db().user("user5@example.com").unwrap().clone();
    for (step, home) in [(1u64, "/home/typo"), (2, victim.home.as_str())] {
        let mut db = publisher.cache().load().unwrap();
        db.user_mut("user5@example.com").unwrap().home = home.to_string();
        publisher.write(db);
        publisher.publish_at(NOW + 100 * step);
        host.pull(&mut server, NOW + 100 * step + 10).unwrap();
        let user5 = host.db().user("user5@example.com").cloned();
        assert_eq!(user5.map(|u| u.uid), Some(victim.uid), "step {step}");
    }
}

// ----- review findings on 251368d (helper-46), end to end (publish, sign, pull, commit) -----
// Each asserts what the documented promise requires; they fail on 251368d.

/// The publisher's cache changed by `change`, published at `at`, pulled by `host` at `at + 10`.
fn publish_and_pull(
    publisher: &Publisher,
    host: &Host,
    server: &mut FakeServer,
    at: u64,
    change: impl FnOnce(&mut Db),
) -> SyncOutcome {
    let mut db = publisher.cache().load().unwrap();
    change(&mut db);
    publisher.write(db);
    publisher.publish_at(at);
    host.pull(server, at + 10).unwrap()
}

/// Pull 1 of the retired-gid scenarios: user x (uid 200300) with primary gid 200301, an id
/// nobody else holds (a sync never makes one). Whether the host took x with it: a host may
/// refuse x outright, and then 200301 was never anyone's here.
fn pull_x_with_a_primary_gid_of_its_own(
    publisher: &Publisher,
    host: &Host,
    server: &mut FakeServer,
) -> bool {
    publish_and_pull(publisher, host, server, NOW + 100, |db| {
        db.users.push(User { gid: 200_301, ..sample_user("x", 200_300) });
    });
    host.db().user("x").is_some_and(|x| x.gid == 200_301)
}

#[test]
fn a_deleted_users_primary_gid_is_no_new_users_uid() {
    let (publisher, host, mut server) = installed();
    let held = pull_x_with_a_primary_gid_of_its_own(&publisher, &host, &mut server);
    // Pull 2: x is gone, y takes x's gid as its uid (and private group).
    publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.users.retain(|u| u.name != "x");
        db.users.push(sample_user("y", 200_301));
    });
    let db = host.db();
    assert!(
        !held || db.user("y").is_none(),
        "y got x's retired gid 200301 as its uid and private group"
    );
}

#[test]
fn a_retired_group_gid_is_no_new_groups() {
    let (publisher, host, mut server) = installed();
    // Pull 1: group dev, and x whose primary group it is.
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.groups.push(Group { gid: 200_310, members: vec![], ..db.groups[0].clone() });
        db.groups.last_mut().unwrap().name = "dev".into();
        db.users.push(User { gid: 200_310, ..sample_user("x", 200_300) });
    });
    assert!(host.db().groups.iter().any(|g| g.gid == 200_310));
    // Pull 2: dev is deleted (its gid retired); x keeps gid 200310.
    publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.groups.retain(|g| g.name != "dev");
    });
    assert!(host.db().meta.retired_ids.contains(&200_310));
    // Pull 3: another group gets the retired gid (x's use of it hides it from the rule).
    publish_and_pull(&publisher, &host, &mut server, NOW + 300, |db| {
        db.groups.push(Group { gid: 200_310, members: vec![], ..db.groups[0].clone() });
        db.groups.last_mut().unwrap().name = "wheel2".into();
    });
    let db = host.db();
    assert!(
        !db.groups.iter().any(|g| g.name == "wheel2"),
        "group wheel2 got the gid 200310 retired when dev was deleted on this host"
    );
}

#[test]
fn a_dangling_primary_gid_becomes_a_new_groups() {
    let (publisher, host, mut server) = installed();
    let held = pull_x_with_a_primary_gid_of_its_own(&publisher, &host, &mut server);
    // x is deleted and a new group takes x's primary gid in the same pull.
    publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.users.retain(|u| u.name != "x");
        db.groups.push(Group { gid: 200_301, members: vec![], ..db.groups[0].clone() });
        db.groups.last_mut().unwrap().name = "dev".into();
    });
    let db = host.db();
    assert!(
        !held || !db.groups.iter().any(|g| g.gid == 200_301),
        "group dev got deleted x's primary gid (its group-owned files)"
    );
}

#[test]
fn another_spelling_of_a_deleted_users_home_is_refused() {
    let (publisher, host, mut server) = installed();
    // user5 is deleted: /home/user5@example.com is retired on this host.
    publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.users.retain(|u| u.name != "user5@example.com");
    });
    assert!(host.db().meta.retired_homes.contains("/home/user5@example.com"));
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 200, |db| {
        db.users.push(User {
            home: "/home//user5@example.com/".into(),
            ..sample_user("heir", 200_300)
        });
        // And a living user's home, spelt another way.
        db.users.push(User {
            home: "/home/./user6@example.com".into(),
            ..sample_user("twin", 200_301)
        });
    });
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["heir", "twin"], "both got a directory that is another account's");
}

#[test]
fn a_snapshot_home_outside_the_hosts_home_template_is_refused() {
    let (publisher, host, mut server) = installed();
    // With pam_mkhomedir (README, step 4) the first login creates a missing home owned by the
    // user: a systemd drop-in directory is root on the next restart of that unit.
    let outcome = publish_and_pull(&publisher, &host, &mut server, NOW + 100, |db| {
        db.users.push(User {
            home: "/etc/systemd/system/cron.service.d".into(),
            ..sample_user("mallory", 200_300)
        });
        db.users.push(User { home: "/root".into(), ..sample_user("eve", 200_301) });
    });
    let skipped: Vec<&str> = outcome.report.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["mallory", "eve"], "a sync only ever gives homes of [unix] home");
}
