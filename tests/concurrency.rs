//! Writers and readers at once: `dircache-sync user add` processes in parallel with PAM
//! logins through the real libpam. No login may fail, no write may be lost. The logins run
//! in parallel on purpose; they all use the same service files, so pam_wrapper's shared
//! temporary directory (see `common::PAMTESTER`) cannot mix them up.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{text, Env};
use dircache::cache::CacheDir;

const WRITERS: usize = 4;
const READERS: usize = 4;
const RUN_FOR: Duration = Duration::from_secs(3);

#[test]
fn parallel_writers_and_pam_readers() {
    let env = Arc::new(Env::new());
    let added = env
        .cli(&["user", "add", "reader", "--privilege", "login", "--password-stdin"], "reader-pw\n");
    assert!(added.status.success(), "{}", text(&added));
    env.pam_service("login-test", "");

    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (env, stop, logins) = (env.clone(), stop.clone(), logins.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = env.pamtester_unserialized(
                        "login-test",
                        "reader",
                        &["authenticate", "acct_mgmt"],
                        "reader-pw\n",
                        &[],
                    );
                    assert!(out.status.success(), "a login failed during writes: {}", text(&out));
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let env = env.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + RUN_FOR;
                let mut names = Vec::new();
                while Instant::now() < deadline {
                    let name = format!("w{writer}-{}", names.len());
                    let out = env.cli(&["user", "add", &name, "--auth", "directory"], "");
                    assert!(out.status.success(), "{}", text(&out));
                    names.push(name);
                }
                names
            })
        })
        .collect();

    let written: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }

    let db = CacheDir::new(env.cache_dir()).load().unwrap();
    for name in &written {
        assert!(db.user(name).is_some(), "the write of {name} was lost");
    }
    assert_eq!(db.users.len(), written.len() + 1);
    let logins = logins.load(Ordering::Relaxed);
    println!(
        "{} users written by {WRITERS} writers, {logins} PAM logins by {READERS} readers",
        written.len()
    );
    assert!(written.len() >= WRITERS && logins >= READERS, "too little ran to mean anything");
}
