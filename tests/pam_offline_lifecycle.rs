//! How long an offline credential lives, through the real `dircache-sync` binary and real
//! libpam (pam_wrapper + pamtester) against a mock IceWarp over HTTPS: it is dropped when
//! its address vanishes from the directory (an address that comes back may be someone
//! else's, and gets the default privileges), it survives wrong passwords typed by anyone,
//! and it is deleted once older than `offline_days`. A new user never gets a deleted
//! user's home. "The directory is down" is a configuration pointing at a port nobody
//! listens on (connection refused), the one failure offline logins are meant for.

mod testbed;

use std::cell::RefCell;
use std::fs;
use std::path::PathBuf;

use mock_directory::{Account, Domain, IcewarpData, IcewarpServer, TlsIdentity};
use serde_json::{json, Value};
use testbed::{strings, text, Env, SyncCli};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-Pw-lifecycle";
const ALICE: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "alice-Pw-old-holder";
const NEW_HOLDER_PASSWORD: &str = "alice-Pw-new-holder";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "bob-Pw-1";
const UNAVAILABLE: &str = "Authentication service cannot retrieve authentication info";
const AUTH_FAILURE: &str = "Authentication failure";
const CLI: SyncCli = SyncCli { secret: ADMIN_PASSWORD };
const ALL_PASSWORDS: [&str; 4] =
    [ALICE_PASSWORD, NEW_HOLDER_PASSWORD, BOB_PASSWORD, ADMIN_PASSWORD];

/// A mock directory, a host configured for it with offline credentials, and a way to make
/// the directory unreachable and reachable again.
struct Lab {
    iw: IcewarpServer,
    env: Env,
    ca: PathBuf,
    /// The `[auth]` and `[sync]` sections besides `cache_credentials`.
    extra: String,
    service: String,
    /// Every pamtester run, to check that none printed a password.
    log: RefCell<String>,
}

impl Lab {
    fn new(service: &str, extra: &str) -> Lab {
        let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let data = IcewarpData::new(ADMIN, ADMIN_PASSWORD)
            .domain(Domain::new("example.com"))
            .account(Account::user(ALICE, "Alice Liddell", ALICE_PASSWORD))
            .account(Account::user(BOB, "Bob Builder", BOB_PASSWORD));
        let iw = IcewarpServer::start(data, Some(identity.clone())).unwrap();
        let env = Env::new();
        let ca = env.dir.path().join("ca.pem");
        identity.write_cert_pem(&ca).unwrap();
        env.pam_service(service, "debug");
        let lab = Lab {
            iw,
            env,
            ca,
            extra: extra.to_string(),
            service: service.to_string(),
            log: RefCell::new(String::new()),
        };
        lab.up();
        lab
    }

    fn configure(&self, url: &str) {
        self.env.rewrite_extra_config(&format!(
            "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = {ADMIN:?}\n\
             password = {ADMIN_PASSWORD:?}\nca_file = {:?}\ntimeout_secs = 5\n\
             [auth]\ncache_credentials = true\n{}",
            self.ca, self.extra
        ));
    }

    fn up(&self) {
        self.configure(&self.iw.url());
    }

    /// Connection refused: nothing listens on the port any more.
    fn down(&self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        self.configure(&format!("https://127.0.0.1:{port}/icewarpapi/"));
    }

    /// `pamtester authenticate`; whether it succeeded, and everything it printed (with
    /// every syslog line of the module).
    fn login(&self, user: &str, password: &str) -> (bool, String) {
        let out = self.env.pamtester_with_env(
            &self.service,
            user,
            &["authenticate"],
            &format!("{password}\n"),
            &[("PAM_WRAPPER_DEBUGLEVEL", "2")],
        );
        let shown = text(&out);
        self.log.borrow_mut().push_str(&shown);
        (out.status.success(), shown)
    }

    fn assert_login(&self, user: &str, password: &str) -> String {
        let (ok, out) = self.login(user, password);
        assert!(ok, "{out}");
        out
    }

    fn assert_refused(&self, user: &str, password: &str, message: &str) -> String {
        let (ok, out) = self.login(user, password);
        assert!(!ok && out.contains(message), "expected {message:?}:\n{out}");
        out
    }

    fn sync(&self, extra: &[&str]) -> Value {
        CLI.sync_ok(&self.env, extra)
    }

    fn show(&self, name: &str) -> Value {
        CLI.show(&self.env, name)
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = CLI.run(&self.env, args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The login state file of `name` (bound to its uid).
    fn state_file(&self, name: &str) -> PathBuf {
        let uid = self.show(name)["uid"].as_u64().unwrap();
        self.env.cache_dir().join("state").join(format!("{uid}.json"))
    }

    /// Whether `name` has a cached offline credential on disk.
    fn has_offline_credential(&self, name: &str) -> bool {
        fs::read_to_string(self.state_file(name)).is_ok_and(|t| t.contains("offline_hash"))
    }

    /// Makes `name`'s cached credential `days` older, as if time had passed.
    fn age_credential(&self, name: &str, days: u64) {
        let path = self.state_file(name);
        let mut state: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let stored_at = state["offline_stored_at"].as_u64().unwrap();
        state["offline_stored_at"] = json!(stored_at - days * 86_400);
        fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    }

    fn assert_no_password_printed(&self) {
        let log = self.log.borrow();
        for password in ALL_PASSWORDS {
            assert!(!log.contains(password), "{password:?} was printed:\n{log}");
        }
    }
}

#[test]
fn a_vanished_address_loses_its_offline_login_and_returns_with_default_privileges() {
    let lab = Lab::new("lifecycle-returning", "");
    lab.sync(&[]);
    lab.cli_ok(&["user", "set", ALICE, "--grant", "admin"]);
    let before = lab.show(ALICE);
    lab.assert_login(ALICE, ALICE_PASSWORD);
    assert!(lab.has_offline_credential(ALICE), "the login cached the password");
    let state_file = lab.state_file(ALICE);

    // Alice leaves: the sync that notices drops her offline credential at once.
    lab.iw.mock.update(|d| assert!(d.remove_account(ALICE)));
    let report = lab.sync(&[]);
    assert!(
        strings(&report["warnings"]).iter().any(|w| w
            .starts_with(&format!("{ALICE} is no longer in the directory; disabled and kept"))
            && w.ends_with("its cached offline credentials and login state are dropped")),
        "{report}"
    );
    assert!(!state_file.exists(), "the vanished user's login state is still there");

    // Someone else gets the address.
    lab.iw.mock.update(|d| {
        *d = d.clone().account(Account::user(ALICE, "Alice Newholder", NEW_HOLDER_PASSWORD));
    });
    let dry = lab.sync(&["--dry-run"]);
    assert_eq!(strings(&dry["returned"]), [ALICE], "{dry}");
    let dry_text = lab.cli_ok(&["sync", "--dry-run"]);
    let line = format!(
        "would return  {ALICE} (privileges reset to the defaults; offline credentials were \
         dropped when it vanished; uid and home are the old holder's: review its \
         ~/.ssh/authorized_keys and crontab)"
    );
    assert!(dry_text.lines().any(|l| l == line), "{dry_text}");
    let report = lab.sync(&[]);
    assert_eq!(strings(&report["returned"]), [ALICE], "{report}");
    assert!(strings(&report["updated"]).contains(&ALICE.to_string()), "{report}");
    for key in ["created", "deleted", "linked", "skipped", "errors", "warnings", "generation"] {
        assert!(report.get(key).is_some(), "the JSON contract lost {key:?}: {report}");
    }
    let after = lab.show(ALICE);
    assert_eq!(after["privileges"], json!(["login", "read_own_archive"]), "{after}");
    assert_eq!((&after["uid"], &after["home"]), (&before["uid"], &before["home"]));
    assert_eq!(after["enabled"], json!(true));

    // With the directory down, the old holder's password opens nothing.
    lab.down();
    let out = lab.assert_refused(ALICE, ALICE_PASSWORD, UNAVAILABLE);
    assert!(out.contains("no fresh cached credentials"), "{out}");
    assert!(!out.contains("OFFLINE login"), "{out}");
    lab.assert_refused(ALICE, NEW_HOLDER_PASSWORD, UNAVAILABLE);

    // Only what the directory says now logs in.
    lab.up();
    lab.assert_refused(ALICE, ALICE_PASSWORD, AUTH_FAILURE);
    lab.assert_login(ALICE, NEW_HOLDER_PASSWORD);
    lab.down();
    let out = lab.assert_login(ALICE, NEW_HOLDER_PASSWORD);
    assert!(out.contains("OFFLINE login with cached credentials"), "{out}");
    lab.assert_no_password_printed();
}

#[test]
fn a_wrong_password_from_someone_else_keeps_the_offline_login() {
    let lab = Lab::new("lifecycle-wrong-password", "");
    lab.sync(&[]);
    lab.assert_login(ALICE, ALICE_PASSWORD);

    // Anyone can type a wrong password for alice; the directory refuses it.
    lab.assert_refused(ALICE, BOB_PASSWORD, AUTH_FAILURE);
    lab.assert_refused(ALICE, "alice-guess", AUTH_FAILURE);
    assert!(lab.has_offline_credential(ALICE), "a stranger's guess wiped it");
    lab.down();
    let out = lab.assert_login(ALICE, ALICE_PASSWORD);
    assert!(out.contains("OFFLINE login with cached credentials"), "{out}");

    // Alice changes her password in the directory: the old one, refused there, is
    // refused offline too.
    lab.up();
    lab.iw.mock.update(|d| d.account_mut(ALICE).unwrap().password = NEW_HOLDER_PASSWORD.into());
    let out = lab.assert_refused(ALICE, ALICE_PASSWORD, AUTH_FAILURE);
    assert!(out.contains("no longer accepts the cached offline credentials"), "{out}");
    assert!(!lab.has_offline_credential(ALICE));
    lab.down();
    lab.assert_refused(ALICE, ALICE_PASSWORD, UNAVAILABLE);
    lab.assert_no_password_printed();
}

#[test]
fn stale_offline_credentials_are_deleted_by_a_sync_and_by_a_login() {
    let lab = Lab::new("lifecycle-stale", "offline_days = 1\n");
    lab.sync(&[]);
    lab.assert_login(ALICE, ALICE_PASSWORD);
    lab.assert_login(BOB, BOB_PASSWORD);

    // Nothing changed in the directory; the sync still deletes alice's stale credential.
    lab.age_credential(ALICE, 2);
    let report = lab.sync(&[]);
    assert_eq!(report["generation"], Value::Null, "{report}");
    assert!(!lab.has_offline_credential(ALICE), "a sync kept a stale credential");
    assert!(lab.has_offline_credential(BOB), "a fresh one stays");

    // Bob's goes stale later: the login that finds it deletes it.
    lab.age_credential(BOB, 2);
    lab.down();
    let out = lab.assert_refused(BOB, BOB_PASSWORD, UNAVAILABLE);
    assert!(out.contains("cached offline credentials expired; deleted"), "{out}");
    assert!(!lab.has_offline_credential(BOB), "a login kept a stale credential");
    lab.assert_no_password_printed();
}

#[test]
fn a_new_user_never_gets_a_deleted_users_home() {
    let lab = Lab::new(
        "lifecycle-home",
        "[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n",
    );
    lab.sync(&[]);
    let old = lab.show(ALICE);
    lab.assert_login(ALICE, ALICE_PASSWORD);
    let state_file = lab.state_file(ALICE);

    lab.iw.mock.update(|d| assert!(d.remove_account(ALICE)));
    let report = lab.sync(&[]);
    assert_eq!(strings(&report["deleted"]), [ALICE], "{report}");
    assert!(!state_file.exists(), "a deleted user's login state is still there");

    // The address comes back: a new user, new uid, and not the old home (the old files
    // may still be there, owned by the retired uid).
    lab.iw.mock.update(|d| {
        *d = d.clone().account(Account::user(ALICE, "Alice Newholder", NEW_HOLDER_PASSWORD));
    });
    let report = lab.sync(&[]);
    assert_eq!(strings(&report["created"]), [ALICE], "{report}");
    assert_eq!(report["returned"], json!([]), "a deleted user comes back as a new one");
    let new = lab.show(ALICE);
    let uid = new["uid"].as_u64().unwrap();
    assert_ne!(new["uid"], old["uid"]);
    let home = format!("/home/{ALICE}.{uid}");
    assert_eq!(new["home"], json!(home));
    let warning = format!(
        "{ALICE}: /home/{ALICE} was the home of a deleted user (its files may still be there); \
         the new user gets {home}"
    );
    assert!(strings(&report["warnings"]).contains(&warning), "{report}");

    // `user delete` retires the home the same way.
    lab.cli_ok(&["user", "add", "dave", "--auth", "directory"]);
    let deleted = lab.cli_ok(&["user", "delete", "dave"]);
    assert!(deleted.contains("nor that home will be given to anyone else"), "{deleted}");
    lab.cli_ok(&["user", "add", "dave", "--auth", "directory"]);
    let dave = lab.show("dave");
    assert_eq!(dave["home"], json!(format!("/home/dave.{}", dave["uid"])), "{dave}");
    lab.assert_no_password_printed();
}
