use super::*;
use crate::user::sample_user;

fn auth_config() -> AuthConfig {
    AuthConfig {
        failure_threshold: 3,
        failure_delay_secs: 2,
        max_failure_delay_secs: 30,
        ..AuthConfig::default()
    }
}

#[test]
fn delay_starts_at_the_threshold_doubles_and_is_bounded() {
    let config = auth_config();
    let mut state = LoginState::default();
    let delays: Vec<u64> = (0..9)
        .map(|_| {
            let delay = state.delay(&config).as_secs();
            state.record_failure(1);
            delay
        })
        .collect();
    assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 30, 30]);
    state.record_success();
    assert_eq!(state.delay(&config), Duration::ZERO);
}

#[test]
fn offline_hash_expires() {
    let config = AuthConfig { offline_days: 7, cache_credentials: true, ..auth_config() };
    let state = LoginState {
        offline_hash: Some("h".into()),
        offline_stored_at: Some(1000),
        ..LoginState::default()
    };
    assert_eq!(state.usable_offline_hash(&config, 1000 + 7 * 86_400), Some("h"));
    assert_eq!(state.usable_offline_hash(&config, 1001 + 7 * 86_400), None);
    assert_eq!(
        state.usable_offline_hash(&config, 999),
        None,
        "a hash from the future is not trusted"
    );
}

#[test]
fn store_load_and_binding_to_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let states = LoginStates::new(dir.path());
    let alice = sample_user("alice", 200_001);
    assert_eq!(states.load(&alice).unwrap(), LoginState::fresh(&alice));
    let mut state = LoginState::fresh(&alice);
    state.record_failure(5);
    state.offline_hash = Some("$argon2id$x".into());
    states
        .update(&alice, |current| {
            current.record_failure(5);
            current.offline_hash = Some("$argon2id$x".into());
        })
        .unwrap();
    assert_eq!(states.load(&alice).unwrap(), state);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    let file = fs::read_dir(dir.path().join("state")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(mode(&file), 0o600);

    // A new account with the same name (another uid) starts afresh.
    let successor = sample_user("alice", 200_002);
    assert_eq!(states.load(&successor).unwrap(), LoginState::fresh(&successor));
    // A renamed account (same uid) keeps its record.
    let renamed = sample_user("alice2", 200_001);
    assert_eq!(states.load(&renamed).unwrap().failures, 1);
}

#[test]
fn prune_drops_gone_accounts_and_unusable_credentials_only() {
    let dir = tempfile::tempdir().unwrap();
    let states = LoginStates::new(dir.path());
    let config = AuthConfig { cache_credentials: true, offline_days: 7, ..auth_config() };
    let now = 100 * 86_400;
    let users: Vec<User> = [("alice", 200_001), ("bob", 200_002), ("carol", 200_003)]
        .iter()
        .map(|(name, uid)| sample_user(name, *uid))
        .collect();
    let gone = sample_user("gone", 200_004);
    let cached = |stored_at: u64| {
        move |state: &mut LoginState| {
            state.offline_hash = Some("$argon2id$x".into());
            state.offline_stored_at = Some(stored_at);
        }
    };
    states.update(&users[0], cached(now - 86_400)).unwrap();
    states.update(&users[1], cached(now - 8 * 86_400)).unwrap();
    states.update(&users[1], |state| state.record_failure(now)).unwrap();
    states.update(&users[2], cached(now - 8 * 86_400)).unwrap();
    states.update(&gone, cached(now)).unwrap();
    let state_dir = dir.path().join("state");
    fs::write(state_dir.join("200004.tmp.77"), "{}").unwrap();
    fs::write(state_dir.join("README"), "not a state file").unwrap();

    let current = |uid| users.iter().find(|u: &&User| u.uid == uid).map(Cow::Borrowed);
    let pruned = states.prune(current, &config, now);
    assert_eq!((pruned.dropped, pruned.expired), (1, 2));
    assert!(pruned.errors.is_empty(), "{:?}", pruned.errors);
    let alice = states.load(&users[0]).unwrap();
    assert!(alice.offline_hash.is_some(), "a usable credential stays");
    let bob = states.load(&users[1]).unwrap();
    assert_eq!((bob.offline_hash, bob.failures), (None, 1), "the failure count stays");
    assert!(!state_dir.join("200003.json").exists(), "nothing left worth a file");
    let mut left: Vec<String> = fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["200001.json", "200001.lock", "200002.json", "200002.lock", "200003.lock", "README"]
    );

    // cache_credentials switched off: no credential is usable, none is kept.
    let off = AuthConfig { cache_credentials: false, ..config };
    let pruned = states.prune(current, &off, now);
    assert_eq!((pruned.dropped, pruned.expired), (0, 1));
    assert_eq!(states.load(&users[0]).unwrap().offline_hash, None);
}

#[test]
fn parallel_updates_lose_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let alice = sample_user("alice", 200_001);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (path, alice) = (dir.path().to_path_buf(), alice.clone());
            std::thread::spawn(move || {
                let states = LoginStates::new(&path);
                for _ in 0..10 {
                    states.update(&alice, |state| state.record_failure(7)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(LoginStates::new(dir.path()).load(&alice).unwrap().failures, 80);
}

#[test]
fn a_held_lock_delays_an_update_briefly_and_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let states = LoginStates::new(dir.path());
    let (alice, bob) = (sample_user("alice", 200_001), sample_user("bob", 200_002));
    states.update(&alice, |state| state.record_failure(1)).unwrap();
    let held = File::options().write(true).open(states.lock_path(alice.uid)).unwrap();
    held.lock().unwrap();

    let started = Instant::now();
    let wait = Duration::from_millis(200);
    let err = states.update_within(&alice, wait, |state| state.record_failure(2)).unwrap_err();
    assert!(started.elapsed() >= wait);
    assert_eq!(err.source.kind(), io::ErrorKind::TimedOut);
    assert_eq!(states.load(&alice).unwrap().failures, 1, "nothing written without the lock");
    // Another user is not held up by alice's lock.
    states.update_within(&bob, Duration::ZERO, |state| state.record_failure(3)).unwrap();
    drop(held);
    states.update_within(&alice, Duration::ZERO, |state| state.record_failure(4)).unwrap();
    assert_eq!(states.load(&alice).unwrap().failures, 2);
}
