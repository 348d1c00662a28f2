//! `dircache-sync daemon`: periodic syncs, a failing run does not stop it, SIGHUP re-reads
//! the configuration, SIGTERM stops it cleanly.

mod testbed;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use dircache::cache::CacheDir;
use mock_directory::{Account, IcewarpData, IcewarpServer};
use testbed::{artifact, Env};

fn config_for(url: &str, admin_password: &str) -> String {
    format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = \"admin@example.com\"\n\
         password = {admin_password:?}\ntimeout_secs = 5\n"
    )
}

fn start_daemon(env: &Env) -> Child {
    Command::new(artifact("dircache-sync"))
        .arg("--config")
        .arg(&env.config)
        .args(["daemon", "--interval-secs", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args(["-s", name, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Polls `check` for up to 15 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn has_user(env: &Env, name: &str) -> bool {
    CacheDir::new(env.cache_dir()).load().is_ok_and(|db| db.user(name).is_some())
}

fn last_result(env: &Env) -> Option<String> {
    let text = fs::read_to_string(env.cache_dir().join("status.json")).ok()?;
    let status: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(status["result"].as_str()?.to_string())
}

#[test]
fn periodic_syncs_reload_on_sighup_and_stop_on_sigterm() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = Env::with_extra_config(&config_for(&iw.url(), "wrong-admin-password"));
    let mut daemon = start_daemon(&env);

    // A failing run is recorded, and the daemon keeps going.
    eventually("a failed run is recorded", || last_result(&env).as_deref() == Some("failure"));
    thread::sleep(Duration::from_millis(1500));
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon stopped after a failed run");

    // SIGHUP: the corrected configuration is used from the next run on.
    env.rewrite_extra_config(&config_for(&iw.url(), "demo-admin-password"));
    signal(&daemon, "HUP");
    eventually("alice is synced after SIGHUP", || has_user(&env, "alice@example.com"));

    // The next interval picks up a change in the directory.
    iw.mock.update(|data| data.accounts.push(Account::user("dave@example.com", "Dave", "pw")));
    eventually("dave is synced by a later run", || has_user(&env, "dave@example.com"));
    assert_eq!(last_result(&env).as_deref(), Some("success"));

    signal(&daemon, "TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM did not stop the daemon");
        thread::sleep(Duration::from_millis(50));
    };
    let output = daemon.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "{log}");
    assert!(log.contains("sync failed") && log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("stopping on signal"), "{log}");
    assert!(!log.contains("demo-admin-password") && !log.contains("wrong-admin-password"), "{log}");
}
