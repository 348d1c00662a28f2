//! Crash safety and concurrency of the cache (issue 6, part 2), through the real
//! `dircache-sync` binary and the library's readers:
//!
//! - syncs killed with SIGKILL at random moments (fetch, plan, write, rename, clean-up): each
//!   time the cache is the old one or the new one, complete (every checksum), and answers
//!   NSS-style lookups and PAM;
//! - 50 syncs and 20 `user` commands back to back while readers do NSS lookups and PAM
//!   logins: no failed or wrong answer, at least 1,000 lookups/s and 10 logins/s;
//! - a full disk (a 1 MiB tmpfs as the cache directory, in a private mount namespace): the
//!   sync fails with a clear error and the old cache stays as it was;
//! - a lock held by a killed process (flock dies with it) does not block the next sync.
//!
//! `DIRCACHE_KILL_ROUNDS` changes the number of killed syncs (default 100);
//! `DIRCACHE_TEST_SEED` replays the random kill moments of an earlier run.

mod probes;
mod testbed;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dircache::cache::{CacheDir, PublicUser};
use dircache::pam::PamOutcome;
use dircache::user::{Group, User};
use mock_directory::{AppIntData, AppIntServer, Fault, JsonField};
use probes::{fingerprint, pam_account, pam_authenticate, Rng};
use testbed::{artifact, stdout_json, text, Env};

const LOCAL_USER: &str = "keeper";
const LOCAL_PASSWORD: &str = "keeper-Pw-7";

fn appint_config(url: &str) -> String {
    format!("\n[directory]\ntype = \"application-integration\"\nurl = {url:?}\ntimeout_secs = 20\n")
}

/// `n` generated users; variant B appends " (B)" to every full name, so that switching
/// between A and B changes every user and each sync writes a new generation.
fn generated(n: usize, variant_b: bool) -> AppIntData {
    let mut data = AppIntData::generated(n);
    if variant_b {
        for user in &mut data.users {
            if let JsonField::Value(name) = &mut user.full_name {
                name.push_str(" (B)");
            }
        }
    }
    data
}

fn user_name(i: usize) -> String {
    format!("user{i:06}")
}

fn sync_command(env: &Env) -> Command {
    let mut command = Command::new(artifact("dircache-sync"));
    command
        .arg("--config")
        .arg(&env.config)
        .args(["sync", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn sync_ok(env: &Env) {
    let out = env.cli(&["sync", "--json"], "");
    assert!(out.status.success(), "{}", text(&out));
}

fn add_local_user(env: &Env, name: &str, password: &str) {
    let out = env.cli(&["user", "add", name, "--password-stdin"], &format!("{password}\n"));
    assert!(out.status.success(), "{}", text(&out));
}

/// Temporary generation directories (by inode, so that a killed writer's leftover is told
/// apart from a new one of the same name).
fn tmp_dirs(root: &Path) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(root)
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let tmp = name.starts_with("gen-") && name.ends_with(".tmp");
            tmp.then(|| entry.metadata().ok()).flatten().map(|m| m.ino())
        })
        .collect()
}

/// Where a sync was when it was killed, judged from the cache directory just before:
/// `requests` is how many requests the directory had received from it.
fn phase(root: &Path, generation_before: u64, leftovers: &[u64], requests: usize) -> &'static str {
    if tmp_dirs(root).iter().any(|inode| !leftovers.contains(inode)) {
        return "write";
    }
    let mut generations = Vec::new();
    for entry in fs::read_dir(root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "current.tmp" {
            return "rename";
        }
        if let Some(generation) = name.strip_prefix("gen-").and_then(|g| g.parse::<u64>().ok()) {
            generations.push(generation);
        }
    }
    let current = current_generation(root);
    let newest = generations.iter().copied().max().unwrap_or(0);
    if current > generation_before && generations.len() > 2 {
        "clean-up"
    } else if current > generation_before {
        "status"
    } else if newest > current {
        "rename"
    } else if requests == 0 {
        "start-up"
    } else {
        "fetch/plan"
    }
}

fn current_generation(root: &Path) -> u64 {
    fs::read_link(root.join("current"))
        .ok()
        .and_then(|target| target.to_str()?.strip_prefix("gen-")?.parse().ok())
        .unwrap_or(0)
}

/// The cache must be complete (every checksum, `CacheDir::load`) and answer the NSS-style
/// lookups and PAM; returns its fingerprint.
fn check_readable(env: &Env, uids: &BTreeMap<String, u32>, rng: &mut Rng) -> Vec<String> {
    let cache = CacheDir::new(env.cache_dir());
    let db = cache.load().unwrap_or_else(|e| panic!("the cache does not load: {e}"));
    let public = cache.open::<PublicUser>().unwrap();
    let private = cache.open::<User>().unwrap();
    cache.open::<Group>().unwrap();
    for _ in 0..5 {
        let index = rng.below(uids.len() as u64) as usize;
        let (name, uid) = uids.iter().nth(index).unwrap();
        let found = public.by_name(name).unwrap().unwrap_or_else(|| panic!("{name} is missing"));
        assert_eq!(found.uid, *uid, "{name}");
        assert_eq!(public.by_id(*uid).unwrap().unwrap().name, *name);
        assert_eq!(private.by_name(name).unwrap().unwrap().uid, *uid);
    }
    let probe = user_name(rng.below(10) as usize);
    let (outcome, conversation) = pam_account(&env.config, &probe);
    assert_eq!(outcome, PamOutcome::Success, "account {probe}: {:?}", conversation.logs);
    let (outcome, conversation) =
        pam_authenticate(&env.config, LOCAL_USER, LOCAL_PASSWORD.as_bytes());
    assert_eq!(outcome, PamOutcome::Success, "authenticate {LOCAL_USER}: {:?}", conversation.logs);
    fingerprint(&db)
}

#[test]
fn syncs_killed_at_random_moments_leave_the_old_or_the_new_cache() {
    let rounds: usize =
        std::env::var("DIRCACHE_KILL_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(100);
    let users = 2000;
    let mut rng = Rng::from_env("killed syncs");
    let server = AppIntServer::start(generated(users, false), None).unwrap();
    let env = Env::with_extra_config(&appint_config(&server.url()));
    add_local_user(&env, LOCAL_USER, LOCAL_PASSWORD);

    // Complete syncs (A creates, then B and A update every user): what "new" means for each
    // variant, and how long a sync that updates everything takes (the median).
    let mut expected = [Vec::new(), Vec::new()];
    let mut durations = Vec::new();
    for (step, variant) in [0, 1, 0, 1, 0, 1, 0].into_iter().enumerate() {
        server.mock.set_data(generated(users, variant == 1));
        let started = Instant::now();
        sync_ok(&env);
        if step > 0 {
            durations.push(started.elapsed());
        }
        expected[variant] = fingerprint(&CacheDir::new(env.cache_dir()).load().unwrap());
    }
    durations.sort();
    let full = durations[durations.len() / 2];
    let uids: BTreeMap<String, u32> = CacheDir::new(env.cache_dir())
        .load()
        .unwrap()
        .users
        .iter()
        .map(|u| (u.name.clone(), u.uid))
        .collect();
    assert_ne!(expected[0], expected[1]);
    let mut previous = expected[0].clone();

    let full_ms = full.as_millis() as u64;
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut kept_old, mut got_new) = (0, 0);
    for round in 0..rounds {
        // Always the variant the cache does not hold, so that "old" and "new" differ.
        let target = usize::from(previous == expected[0]);
        server.mock.set_data(generated(users, target == 1));
        let before = current_generation(&env.cache_dir());
        let leftovers = tmp_dirs(&env.cache_dir());
        server.server.clear_requests();
        let mut child = sync_command(&env).spawn().unwrap();
        // Anywhere in the run; every fourth time near its end, where the rename is.
        let moment = if round % 4 == 3 {
            full_ms * 3 / 4 + rng.below(full_ms / 3 + 1)
        } else {
            rng.below(full_ms + 1)
        };
        thread::sleep(Duration::from_millis(moment));
        let when = if child.try_wait().unwrap().is_some() {
            "finished"
        } else {
            phase(&env.cache_dir(), before, &leftovers, server.server.requests().len())
        };
        child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
        let out = child.wait_with_output().unwrap();
        if when == "finished" {
            assert!(out.status.success(), "round {round}: {}", text(&out));
        }
        *phases.entry(when).or_default() += 1;

        let found = check_readable(&env, &uids, &mut rng);
        if found == previous {
            kept_old += 1;
        } else if found == expected[target] {
            got_new += 1;
        } else {
            panic!("round {round} (killed during {when}): the cache is neither the old nor the new one");
        }
        previous = found;
    }

    // The narrowest moment, which random kills rarely hit: after `gen-N.tmp` was renamed to
    // `gen-N` and before `current` was swapped (as a kill there leaves it, `current.tmp`
    // included). Readers still see the old cache; the next sync must not trip over it.
    let root = env.cache_dir();
    let unpublished = root.join(format!("gen-{:012}", current_generation(&root) + 1));
    fs::create_dir(&unpublished).unwrap();
    fs::write(unpublished.join("users.private"), b"renamed, never published").unwrap();
    std::os::unix::fs::symlink(unpublished.file_name().unwrap(), root.join("current.tmp")).unwrap();
    assert_eq!(check_readable(&env, &uids, &mut rng), previous);

    // The next complete sync (a change, so that it writes) removes whatever the killed ones
    // left behind.
    server.mock.set_data(generated(users, previous == expected[0]));
    sync_ok(&env);
    // It took the leftover's name, with its own files.
    assert_ne!(fs::read(unpublished.join("users.private")).unwrap(), b"renamed, never published");
    let leftovers: Vec<String> = fs::read_dir(env.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "leftovers after a complete sync: {leftovers:?}");
    assert_eq!(CacheDir::new(&root).load().unwrap().meta.generation, current_generation(&root));
    let generations = fs::read_dir(env.cache_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("gen-"))
        .count();
    assert!(generations <= 2, "{generations} generations kept");

    let phases: Vec<String> = phases.iter().map(|(phase, n)| format!("{phase} {n}")).collect();
    println!(
        "killed syncs: {rounds} syncs of {users} users (a complete one takes {full_ms} ms, median) \
         killed with SIGKILL during {}: {kept_old} left the old cache, {got_new} the new one; \
         every one loaded completely and answered NSS lookups, PAM account and a PAM login; \
         a writer killed between rename and publish did not block the next sync",
        phases.join(", ")
    );
    assert_eq!(kept_old + got_new, rounds);
}

/// Counts of one reader.
#[derive(Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

/// NSS-style lookups as the NSS module makes them: a table opened once and used until the
/// cache changes (here: reopened every 100 lookups), by name and by uid.
fn nss_reader(
    cache: &CacheDir,
    uids: &[(String, u32)],
    stop: &AtomicBool,
    tally: &Tally,
    seed: u64,
) {
    let mut rng = Rng::seeded(seed);
    while !stop.load(Ordering::Relaxed) {
        let table = match cache.open::<PublicUser>() {
            Ok(table) => table,
            Err(e) => {
                tally.fail(format!("open: {e}"));
                continue;
            }
        };
        for _ in 0..100 {
            let (name, uid) = &uids[rng.below(uids.len() as u64) as usize];
            match table.by_name(name) {
                Ok(Some(user)) if user.uid == *uid => {}
                other => tally.fail(format!("by_name({name}): {other:?}")),
            }
            match table.by_id(*uid) {
                Ok(Some(user)) if user.name == *name => {}
                other => tally.fail(format!("by_id({uid}): {other:?}")),
            }
            match table.by_name("nobody-of-ours") {
                Ok(None) => {}
                other => tally.fail(format!("by_name(nobody-of-ours): {other:?}")),
            }
            tally.done.fetch_add(3, Ordering::Relaxed);
        }
    }
}

/// PAM logins of a local user through the library (config, local accounts, cache, argon2,
/// failure state), every fourth one with a wrong password, plus an account check.
fn pam_reader(config: &Path, stop: &AtomicBool, tally: &Tally) {
    let mut attempt = 0u64;
    while !stop.load(Ordering::Relaxed) {
        attempt += 1;
        let (password, wanted) = if attempt.is_multiple_of(4) {
            ("not-the-password", PamOutcome::AuthErr)
        } else {
            (LOCAL_PASSWORD, PamOutcome::Success)
        };
        let (outcome, conversation) = pam_authenticate(config, LOCAL_USER, password.as_bytes());
        if outcome != wanted {
            tally.fail(format!("login {attempt}: {outcome:?} {:?}", conversation.logs));
        }
        let (outcome, conversation) = pam_account(config, "user000042");
        if outcome != PamOutcome::Success {
            tally.fail(format!("account {attempt}: {outcome:?} {:?}", conversation.logs));
        }
        tally.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn readers_get_right_answers_while_syncs_and_user_commands_write() {
    let users = 500;
    let server = AppIntServer::start(generated(users, false), None).unwrap();
    let env = Arc::new(Env::with_extra_config(&appint_config(&server.url())));
    add_local_user(&env, LOCAL_USER, LOCAL_PASSWORD);
    sync_ok(&env);
    let cache = CacheDir::new(env.cache_dir());
    let mut uids: Vec<(String, u32)> =
        cache.load().unwrap().users.iter().map(|u| (u.name.clone(), u.uid)).collect();
    uids.sort();
    let uids = Arc::new(uids);

    let stop = Arc::new(AtomicBool::new(false));
    let nss = Arc::new(Tally::default());
    let pam = Arc::new(Tally::default());
    let started = Instant::now();
    let mut readers = Vec::new();
    {
        let (cache, uids, stop, nss) = (cache.clone(), uids.clone(), stop.clone(), nss.clone());
        readers.push(thread::spawn(move || nss_reader(&cache, &uids, &stop, &nss, 7)));
    }
    {
        let (config, stop, pam) = (env.config.clone(), stop.clone(), pam.clone());
        readers.push(thread::spawn(move || pam_reader(&config, &stop, &pam)));
    }

    let syncs = {
        let env = env.clone();
        let mock = server.mock.clone();
        thread::spawn(move || {
            for round in 0..50 {
                mock.set_data(generated(users, round % 2 == 0));
                let out = env.cli(&["sync", "--json"], "");
                assert!(out.status.success(), "sync {round}: {}", text(&out));
                assert!(stdout_json(&out)["generation"].is_u64(), "sync {round} wrote nothing");
            }
        })
    };
    let user_commands = {
        let env = env.clone();
        thread::spawn(move || {
            for round in 0..20 {
                let name = format!("temp{}", round / 2);
                let args: Vec<&str> = if round % 2 == 0 {
                    vec!["user", "add", &name, "--full-name", "Temporary"]
                } else {
                    vec!["user", "delete", &name]
                };
                let out = env.cli(&args, "");
                assert!(out.status.success(), "user command {round}: {}", text(&out));
            }
        })
    };
    let writers = [syncs.join(), user_commands.join()];
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    for writer in writers {
        writer.unwrap();
    }

    let lookups = nss.done.load(Ordering::Relaxed);
    let logins = pam.done.load(Ordering::Relaxed);
    let generation = CacheDir::new(env.cache_dir()).load().unwrap().meta.generation;
    println!(
        "concurrency: while 50 syncs of {users} users and 20 user commands wrote {} generations \
         in {elapsed:.1} s, readers made {lookups} NSS lookups ({:.0}/s) and {logins} PAM logins \
         + account checks ({:.1}/s): {} failed or wrong NSS answers, {} failed or wrong PAM answers",
        generation - 1,
        lookups as f64 / elapsed,
        logins as f64 / elapsed,
        nss.failed.load(Ordering::Relaxed),
        pam.failed.load(Ordering::Relaxed)
    );
    assert!(nss.failures().is_empty(), "NSS: {:#?}", nss.failures());
    assert!(pam.failures().is_empty(), "PAM: {:#?}", pam.failures());
    assert!(generation > 60, "only {generation} generations: the writers did not write");
    assert!(lookups as f64 / elapsed >= 1000.0, "{lookups} lookups in {elapsed:.1} s");
    assert!(logins as f64 / elapsed >= 10.0, "{logins} logins in {elapsed:.1} s");
}

/// Whether a private mount namespace with a tmpfs can be made here (root, `unshare`); if not,
/// the test is skipped with a message, except on CI (`CI=true`), where it must run.
fn can_mount_tmpfs() -> bool {
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && umount \"$d\"; r=$?; rmdir \"$d\"; exit $r")
        .output();
    let why = match &probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Some(e.to_string()),
    };
    let why = why.map(|why| format!("it needs root and `unshare` to mount a tmpfs ({why})"));
    testbed::may_skip("the disk-full test", why)
}

/// Files, links and modes under `root`, bytes included (no timestamps: `cp -a` copies
/// are compared).
fn contents(root: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if relative == Path::new("status.json") {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let value = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {:o}", meta.mode())
            } else {
                format!("file {:o} {:?}", meta.mode(), fs::read(&path).unwrap())
            };
            out.insert(relative, value);
        }
    }
    out
}

#[test]
fn a_full_disk_fails_the_sync_clearly_and_keeps_the_old_cache() {
    if !can_mount_tmpfs() {
        return;
    }
    let small = AppIntServer::start(generated(5, false), None).unwrap();
    // 600 users with 3 kB full names: about 4 MB of tables, on a 1 MiB file system.
    let mut data = generated(600, false);
    for user in &mut data.users {
        user.full_name = JsonField::Value("x".repeat(3000));
    }
    let big = AppIntServer::start(data, None).unwrap();

    let env = Env::with_extra_config(&appint_config(&small.url()));
    let big_config = env.dir.path().join("big.toml");
    let text_of_config = fs::read_to_string(&env.config).unwrap().replace(&small.url(), &big.url());
    fs::write(&big_config, text_of_config).unwrap();
    fs::set_permissions(&big_config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cache = env.cache_dir();
    fs::create_dir_all(&cache).unwrap();
    let work = env.dir.path();

    // Inside the namespace: the tmpfs, a sync that fits, a copy, the sync that does not fit,
    // a copy, `status`, and a later sync that fits again.
    let script = r#"
        set -u
        mount -t tmpfs -o size=1m,mode=0755 tmpfs "$CACHE" || exit 90
        "$BIN" --config "$SMALL" sync --json > "$WORK/first.json" 2>&1 || exit 91
        cp -a "$CACHE" "$WORK/before" || exit 92
        "$BIN" --config "$BIG" sync --json > "$WORK/full.json" 2> "$WORK/full.err"
        echo $? > "$WORK/full.status"
        cp -a "$CACHE" "$WORK/after" || exit 93
        "$BIN" --config "$SMALL" status --json > "$WORK/status.json" 2>&1
        df -k "$CACHE" | tail -1 > "$WORK/df"
        "$BIN" --config "$SMALL" user add later > "$WORK/later.out" 2>&1
        echo $? > "$WORK/later.status"
    "#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("CACHE", &cache)
        .env("BIN", artifact("dircache-sync"))
        .env("SMALL", &env.config)
        .env("BIG", &big_config)
        .env("WORK", work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let read = |name: &str| fs::read_to_string(work.join(name)).unwrap();

    assert_eq!(read("full.status").trim(), "1", "the sync on a full disk did not fail");
    let error = read("full.err");
    assert!(error.contains("No space left on device"), "not a clear error: {error}");
    assert!(!error.contains("corrupt"), "a full disk is not a corrupt cache: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    let before = contents(&work.join("before"));
    let after = contents(&work.join("after"));
    assert!(before.keys().any(|p| p.ends_with("users.private")), "{before:?}");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the failed sync left files behind or removed some"
    );
    assert!(before == after, "the old cache changed");
    let status: serde_json::Value = serde_json::from_str(&read("status.json")).unwrap();
    assert_eq!(status["result"], "failure", "{status}");
    assert!(status["error"].as_str().unwrap().contains("No space left on device"), "{status}");
    assert_eq!(read("later.status").trim(), "0", "{}", read("later.out"));
    println!(
        "disk full: the sync failed with `{}`; the old cache ({} entries) is unchanged; \
         df after: {}",
        error.trim(),
        before.len(),
        read("df").trim()
    );
}

/// Holds an flock on `path` in a shell that then becomes `sleep`; returns once it is held.
fn hold_lock(path: &Path) -> std::process::Child {
    let mut child = Command::new("sh")
        .args(["-c", "exec 9>>\"$1\" && flock -x 9 && echo locked && exec sleep 600", "sh"])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[test]
fn a_lock_held_by_a_killed_process_does_not_block_the_next_sync() {
    let server = AppIntServer::start(generated(20, false), None).unwrap();
    let env = Env::with_extra_config(&appint_config(&server.url()));
    // lock_timeout_secs = 1, so that a lock that is really held fails fast.
    let config = fs::read_to_string(&env.config).unwrap();
    fs::write(&env.config, config.replacen("[cache]\n", "[cache]\nlock_timeout_secs = 1\n", 1))
        .unwrap();
    sync_ok(&env);
    let cache = env.cache_dir();
    let mut waits = HashMap::new();

    for lock in ["lock", "sync.lock"] {
        let mut holder = hold_lock(&cache.join(lock));
        server.mock.set_data(generated(21, false));
        let out = env.cli(&["sync"], "");
        assert!(!out.status.success(), "{lock} held, yet the sync ran: {}", text(&out));
        assert!(
            text(&out).contains("timed out after 1 s waiting for the cache lock"),
            "{}",
            text(&out)
        );

        holder.kill().unwrap();
        holder.wait().unwrap();
        // The file stays behind (a stale lock file); the flock on it is gone.
        assert!(cache.join(lock).exists(), "{lock} is gone: nothing stale was tested");
        let started = Instant::now();
        sync_ok(&env);
        waits.insert(lock, started.elapsed());
        server.mock.set_data(generated(20, false));
        sync_ok(&env);
    }

    // A real dircache-sync killed while it holds sync.lock (waiting for a slow directory).
    server.server.set_override(Fault::Delay(Duration::from_secs(20)));
    let asked = server.server.request_count();
    let mut child = sync_command(&env).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.server.request_count() == asked {
        assert!(Instant::now() < deadline, "the sync never asked the directory");
        thread::sleep(Duration::from_millis(10));
    }
    let out = env.cli(&["sync"], "");
    assert!(
        text(&out).contains("timed out after 1 s waiting for the cache lock"),
        "{}",
        text(&out)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    server.server.clear_override();
    server.mock.set_data(generated(23, false));
    let started = Instant::now();
    let out = env.cli(&["sync", "--json"], "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout_json(&out)["created"].as_array().unwrap().len(), 2);
    let after_kill = started.elapsed();
    println!(
        "stale locks: after the holder of `lock` was killed the next sync took {:?}, of \
         `sync.lock` {:?}, after a dircache-sync killed mid-fetch {:?} (lock_timeout_secs = 1)",
        waits["lock"], waits["sync.lock"], after_kill
    );
}
