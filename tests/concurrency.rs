//! Writers and readers at once: `dircache-sync user add` processes in parallel with PAM
//! logins. No login may fail, no write may be lost. One reader logs in through the real
//! libpam (pamtester); pam_wrapper cannot run two of those at once (see `testbed::PAMTESTER`),
//! so the other readers call the module's logic in parallel threads of this process.

mod probes;
mod testbed;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dircache::cache::CacheDir;
use dircache::pam::script::ScriptedConversation;
use dircache::pam::{self, PamOutcome};
use testbed::{text, Env};

const WRITERS: usize = 4;
const LIBRARY_READERS: usize = 3;
const RUN_FOR: Duration = Duration::from_secs(3);

#[test]
fn parallel_writers_and_pam_readers() {
    let env = Arc::new(Env::new());
    let added = env
        .cli(&["user", "add", "reader", "--privilege", "login", "--password-stdin"], "reader-pw\n");
    assert!(added.status.success(), "{}", text(&added));
    env.pam_service("login-test", "");

    let stop = Arc::new(AtomicBool::new(false));
    let pamtester_logins = Arc::new(AtomicUsize::new(0));
    let library_logins = Arc::new(AtomicUsize::new(0));
    let mut readers = vec![{
        let (env, stop, logins) = (env.clone(), stop.clone(), pamtester_logins.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let operations = ["authenticate", "acct_mgmt"];
                let out = env.pamtester("login-test", "reader", &operations, "reader-pw\n");
                assert!(out.status.success(), "a pamtester login failed: {}", text(&out));
                logins.fetch_add(1, Ordering::Relaxed);
            }
        })
    }];
    let args = format!("config={}", env.config.display());
    readers.extend((0..LIBRARY_READERS).map(|_| {
        let (args, stop, logins) = (args.clone(), stop.clone(), library_logins.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut conv = ScriptedConversation::login("reader", b"reader-pw");
                let auth = pam::authenticate(&mut conv, &[&args]);
                assert_eq!(auth, PamOutcome::Success, "a login failed: {:?}", conv.logs);
                let account = pam::account(&mut conv, &[&args]);
                assert_eq!(account, PamOutcome::Success, "account failed: {:?}", conv.logs);
                logins.fetch_add(1, Ordering::Relaxed);
            }
        })
    }));

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
    let pamtester_logins = pamtester_logins.load(Ordering::Relaxed);
    let library_logins = library_logins.load(Ordering::Relaxed);
    println!(
        "{} users written by {WRITERS} writers; {pamtester_logins} logins through pamtester, \
         {library_logins} by {LIBRARY_READERS} library threads",
        written.len()
    );
    assert!(
        written.len() >= WRITERS && pamtester_logins > 0 && library_logins >= LIBRARY_READERS,
        "too little ran to mean anything"
    );
}
