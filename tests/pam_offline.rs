//! Offline credentials through the real libpam (pam_wrapper + pamtester) and a mock IceWarp
//! over HTTPS: a login while the directory is up caches the password; with the directory
//! gone the same password still works (logged as OFFLINE) and a wrong one does not; a slow
//! directory never falls back to the cache.

mod common;

use std::time::Duration;

use common::{text, Env};
use mock_directory::{Fault, IcewarpData, IcewarpServer, TlsIdentity};

const USER: &str = "alice@example.com";

fn login(env: &Env, password: &str) -> (bool, String) {
    let out = env.pamtester_with_env(
        "offline-test",
        USER,
        &["authenticate"],
        &format!("{password}\n"),
        &[("PAM_WRAPPER_DEBUGLEVEL", "2")],
    );
    (out.status.success(), text(&out))
}

#[test]
fn offline_logins_only_while_the_directory_is_unreachable() {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let iw = IcewarpServer::start(IcewarpData::demo(), Some(identity.clone())).unwrap();
    let env = Env::new();
    let ca = env.dir.path().join("ca.pem");
    identity.write_cert_pem(&ca).unwrap();
    env.rewrite_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nca_file = {ca:?}\ntimeout_secs = 1\n\
         [auth]\ncache_credentials = true\n",
        iw.url()
    ));
    let added = env.cli(&["user", "add", USER, "--auth", "directory"], "");
    assert!(added.status.success(), "{}", text(&added));
    env.pam_service("offline-test", "debug");

    // Nothing cached yet: down means unavailable.
    iw.server.set_override(mock_directory::Response::new(503));
    let (ok, out) = login(&env, "alice-password");
    assert!(!ok && out.contains("cannot retrieve authentication info"), "{out}");
    iw.server.clear_override();

    let (ok, out) = login(&env, "alice-password");
    assert!(ok, "{out}");

    // Slow is not down: no fallback.
    iw.server.set_override(Fault::Delay(Duration::from_secs(3)));
    let (ok, out) = login(&env, "alice-password");
    assert!(!ok && !out.contains("OFFLINE"), "{out}");

    // Gone: the cached password works, a wrong one does not, and both are logged.
    drop(iw);
    let (ok, out) = login(&env, "alice-password");
    assert!(ok && out.contains("OFFLINE login with cached credentials"), "{out}");
    let (ok, out) = login(&env, "alice-passwort");
    assert!(!ok && out.contains("offline authentication failure"), "{out}");
    assert!(!out.contains("alice-passwor"), "a password reached the log: {out}");
}
