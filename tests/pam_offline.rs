//! Offline credentials through the real libpam (pam_wrapper + pamtester) and a mock IceWarp
//! over HTTPS: a login while the directory is up caches the password; with nothing
//! listening at the directory's address the same password still works (logged as OFFLINE)
//! and a wrong one does not. Anything else that stands in for the directory (a certificate
//! that is not trusted or not for this host, an HTTP error, garbage, a slow answer) never
//! opens the cached password: the login fails closed and is logged as a possible attack.

mod testbed;

use std::path::Path;
use std::time::Duration;

use mock_directory::{Fault, IcewarpData, IcewarpServer, Response, TlsIdentity};
use testbed::{text, Env};

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

fn point_at(env: &Env, url: &str, ca: &Path) {
    env.rewrite_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nca_file = {ca:?}\ntimeout_secs = 1\n\
         [auth]\ncache_credentials = true\n"
    ));
}

/// A directory that is up but cannot be trusted must not log anyone in from the cache.
fn refused_as_an_attack(env: &Env, what: &str, shown: &str) {
    let (ok, out) = login(env, "alice-password");
    assert!(!ok, "{what}: {out}");
    assert!(out.contains("cannot retrieve authentication info"), "{what}: {out}");
    assert!(!out.contains("OFFLINE"), "{what}: {out}");
    assert!(out.contains("possible attack") && out.contains(shown), "{what}: {out}");
}

#[test]
fn offline_logins_only_while_the_directory_is_unreachable() {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let iw = IcewarpServer::start(IcewarpData::demo(), Some(identity.clone())).unwrap();
    let env = Env::new();
    let ca = env.dir.path().join("ca.pem");
    identity.write_cert_pem(&ca).unwrap();
    point_at(&env, &iw.url(), &ca);
    let added = env.cli(&["user", "add", USER, "--auth", "directory"], "");
    assert!(added.status.success(), "{}", text(&added));
    env.pam_service("offline-test", "debug");

    // Nothing cached yet: down means unavailable.
    iw.server.set_override(Response::new(503));
    let (ok, out) = login(&env, "alice-password");
    assert!(!ok && out.contains("cannot retrieve authentication info"), "{out}");
    iw.server.clear_override();

    let (ok, out) = login(&env, "alice-password");
    assert!(ok, "{out}");

    // Impostors on the directory's path: a certificate no configured CA vouches for, and
    // a trusted certificate for another host name.
    let stranger = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let impostor = IcewarpServer::start(IcewarpData::demo(), Some(stranger)).unwrap();
    point_at(&env, &impostor.url(), &ca);
    refused_as_an_attack(&env, "untrusted certificate", "TLS verification failed");
    let elsewhere = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let misnamed = IcewarpServer::start(IcewarpData::demo(), Some(elsewhere.clone())).unwrap();
    let elsewhere_ca = env.dir.path().join("elsewhere.pem");
    elsewhere.write_cert_pem(&elsewhere_ca).unwrap();
    point_at(&env, &misnamed.url(), &elsewhere_ca);
    refused_as_an_attack(&env, "certificate for another name", "TLS verification failed");

    // The directory's own address, answering wrongly.
    point_at(&env, &iw.url(), &ca);
    iw.server.set_override(Response::new(500));
    refused_as_an_attack(&env, "HTTP 500", "HTTP status 500");
    iw.server.set_override(Response::text(200, "<html>maintenance</html>"));
    refused_as_an_attack(&env, "garbage", "malformed reply");
    // Slow: a tarpit may hide a wrong password.
    iw.server.set_override(Fault::Delay(Duration::from_secs(3)));
    refused_as_an_attack(&env, "slow", "no answer within 1 s");
    iw.server.clear_override();

    // Gone (the port is closed): the cached password works, a wrong one does not, and both
    // are logged.
    drop(iw);
    let (ok, out) = login(&env, "alice-password");
    assert!(ok && out.contains("OFFLINE login with cached credentials"), "{out}");
    assert!(!out.contains("possible attack"), "{out}");
    let (ok, out) = login(&env, "alice-passwort");
    assert!(!ok && out.contains("offline authentication failure"), "{out}");
    assert!(!out.contains("alice-passwor"), "a password reached the log: {out}");
}
