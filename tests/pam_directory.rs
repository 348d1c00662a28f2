//! Directory authentication through the real libpam (pam_wrapper + pamtester loading the
//! built pam_dircache.so), against the mock IceWarp and Application Integration servers
//! over HTTPS with a trusted self-signed certificate. Users come from a real
//! `dircache-sync sync`. No password may appear in any output of the run.

mod testbed;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mock_directory::{
    Account, AppIntData, AppIntServer, AppIntUser, Domain, IcewarpData, IcewarpServer, Response,
    TlsIdentity,
};
use testbed::{text, Env};

/// Every harness has its own service name, so that a crossing in pam_wrapper's temporary
/// directory (see `testbed::PAMTESTER`) fails instead of asking another test's server.
static HARNESSES: AtomicUsize = AtomicUsize::new(0);

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-Pa55-never-shown";
const UNAVAILABLE: &str = "Authentication service cannot retrieve authentication info";
const AUTH_FAILURE: &str = "Authentication failure";

/// Passwords with every character that XML, form encoding or a shell could mangle.
const ODD_PASSWORDS: [&str; 6] = [
    "<&>]]>\"'",
    "a+b%20c=d&e;f",
    "  spaced  out  ",
    "pässwörd ünïcode 🔑",
    "<![CDATA[x]]>&amp;",
    "p=1&user=admin%00x",
];

/// An environment whose every program run is recorded, so that a test can check at the
/// end that none of them printed a password.
struct Harness {
    env: Env,
    service: String,
    log: RefCell<String>,
    /// How long the last pamtester run took (without waiting for its turn).
    last_run: Cell<Duration>,
}

impl Harness {
    fn new() -> Harness {
        let env = Env::new();
        let service = format!("dircache-directory-{}", HARNESSES.fetch_add(1, Ordering::SeqCst));
        // `debug` makes the module log its decision path: more lines that must not hold a
        // password.
        env.pam_service(&service, "debug");
        Harness {
            env,
            service,
            log: RefCell::new(String::new()),
            last_run: Cell::new(Duration::ZERO),
        }
    }

    /// Replaces the `[directory]` (and `[sync]`) sections.
    fn configure(&self, directory: &str) {
        self.env.rewrite_extra_config(directory);
    }

    fn ca_file(&self, identity: &TlsIdentity) -> PathBuf {
        let path = self.env.dir.path().join("mock-ca.pem");
        identity.write_cert_pem(&path).unwrap();
        path
    }

    fn record(&self, what: &str, out: Output) -> Output {
        self.log.borrow_mut().push_str(&format!("== {what}\n{}\n", text(&out)));
        out
    }

    fn cli(&self, args: &[&str]) -> Output {
        let out = self.env.cli(args, "");
        self.record(&format!("dircache-sync {args:?}"), out)
    }

    fn sync(&self) {
        let out = self.cli(&["sync"]);
        assert!(out.status.success(), "{}", text(&out));
    }

    fn pam(&self, user: &str, operations: &[&str], password: &str) -> Output {
        self.pam_with_env(user, operations, password, &[])
    }

    /// pamtester in the real libpam; PAM_WRAPPER_DEBUGLEVEL=2 shows every syslog line of
    /// the module (not only errors) on stderr.
    fn pam_with_env(
        &self,
        user: &str,
        operations: &[&str],
        password: &str,
        vars: &[(&str, &str)],
    ) -> Output {
        let mut vars = vars.to_vec();
        vars.push(("PAM_WRAPPER_DEBUGLEVEL", "2"));
        let out = {
            let started = Instant::now();
            let out = self.env.pamtester_with_env(
                &self.service,
                user,
                operations,
                &format!("{password}\n"),
                &vars,
            );
            self.last_run.set(started.elapsed());
            out
        };
        self.record(&format!("pamtester {user} {operations:?}"), out)
    }

    fn assert_accepted(&self, user: &str, operations: &[&str], password: &str) {
        let out = self.pam(user, operations, password);
        assert!(out.status.success(), "{user}: {}", text(&out));
    }

    /// pamtester fails with `message`; returns its output.
    fn assert_refused(
        &self,
        user: &str,
        operations: &[&str],
        password: &str,
        message: &str,
    ) -> Output {
        let out = self.pam(user, operations, password);
        assert_eq!(out.status.code(), Some(1), "{user}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{user}: expected {message:?}:\n{}",
            text(&out)
        );
        out
    }

    /// No run printed any of these (pamtester and its PAM syslog lines, dircache-sync).
    fn assert_never_printed(&self, secrets: &[&str]) {
        let log = self.log.borrow();
        assert!(!log.is_empty());
        for secret in secrets {
            assert!(!log.contains(secret), "{secret:?} was printed:\n{log}");
        }
    }
}

fn tls() -> TlsIdentity {
    TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap()
}

fn icewarp_section(url: &str, directory: &str, sync: &str) -> String {
    let timeout = if directory.contains("timeout_secs") { "" } else { "timeout_secs = 5\n" };
    format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = {ADMIN:?}\n\
         password = {ADMIN_PASSWORD:?}\n{timeout}{directory}\n[sync]\n{sync}\n"
    )
}

fn directory_data() -> IcewarpData {
    let mut data = IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .account(Account::user("alice@example.com", "Alice Liddell", "alice-Pw-1").alias("al"))
        .account(Account::user("bob@example.com", "Bob Builder", "bob-Pw-2"))
        .account(Account::user("carol@example.com", "Carol Danvers", "carol-Pw-3").disabled(1))
        .account(Account::user("dan@example.com", "Dan Manual", "dan-Pw-4"));
    for (i, password) in ODD_PASSWORDS.iter().enumerate() {
        data = data.account(Account::user(&format!("odd{i}@example.com"), "Odd", password));
    }
    data
}

/// An HTTPS IceWarp mock and a harness trusting its certificate, synced.
fn icewarp_synced(data: IcewarpData, sync: &str) -> (IcewarpServer, Harness, PathBuf) {
    let identity = tls();
    let iw = IcewarpServer::start(data, Some(identity.clone())).unwrap();
    let harness = Harness::new();
    let ca = harness.ca_file(&identity);
    harness.configure(&icewarp_section(&iw.url(), &format!("ca_file = {ca:?}\n"), sync));
    harness.sync();
    iw.mock.clear_commands();
    (iw, harness, ca)
}

/// The `getauthtoken` commands the mock received: (email, password, error uid).
fn auth_checks(iw: &IcewarpServer) -> Vec<(String, String, Option<String>)> {
    iw.mock
        .commands()
        .into_iter()
        .filter(|c| c.name == "getauthtoken")
        .map(|c| {
            (
                c.param("email").unwrap_or("").to_string(),
                c.param("password").unwrap_or("").to_string(),
                c.error.clone(),
            )
        })
        .collect()
}

#[test]
fn icewarp_right_password_logs_in_and_wrong_one_does_not() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    h.assert_accepted("alice@example.com", &["authenticate", "acct_mgmt"], "alice-Pw-1");
    assert_eq!(
        auth_checks(&iw),
        [("alice@example.com".to_string(), "alice-Pw-1".to_string(), None)]
    );
    assert!(iw.server.requests().iter().all(|r| r.tls));

    iw.mock.clear_commands();
    h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1 ", AUTH_FAILURE);
    h.assert_refused("alice@example.com", &["authenticate"], "bob-Pw-2", AUTH_FAILURE);
    let checks = auth_checks(&iw);
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks.iter().all(|(_, _, error)| error.as_deref() == Some("auth_login_invalid")));

    // Another user's own password works for that user only.
    h.assert_accepted("bob@example.com", &["authenticate", "acct_mgmt"], "bob-Pw-2");

    // The caller's proxy variables (a user running su controls them) are not used.
    let proxy = testbed::dead_proxy_env();
    let vars: Vec<(&str, &str)> = proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = h.pam_with_env("bob@example.com", &["authenticate"], "bob-Pw-2", &vars);
    assert!(out.status.success(), "{}", text(&out));
    // The check below covers the module's syslog lines down to LOG_DEBUG (`debug`).
    let log = h.log.borrow().clone();
    assert!(log.contains("SYSLOG(6): authentication succeeded (directory)"), "{log}");
    assert!(log.contains("SYSLOG(7): account allowed"), "{log}");
    h.assert_never_printed(&["alice-Pw-1", "bob-Pw-2", ADMIN_PASSWORD]);
}

#[test]
fn icewarp_tarpit_is_a_wrong_password_within_the_timeout_and_an_outage_beyond_it() {
    let data = directory_data().wrong_password_delay(Duration::from_millis(1500));
    let (iw, h, ca) = icewarp_synced(data, "");
    h.assert_refused("alice@example.com", &["authenticate"], "guess-1", AUTH_FAILURE);
    assert!(h.last_run.get() >= Duration::from_millis(1500), "the tarpit was not waited for");

    h.configure(&icewarp_section(&iw.url(), &format!("ca_file = {ca:?}\ntimeout_secs = 1\n"), ""));
    h.assert_refused("alice@example.com", &["authenticate"], "guess-2", UNAVAILABLE);
    assert!(h.last_run.get() < Duration::from_millis(1500), "timeout_secs did not bound the check");
    // The right password still gets in.
    h.assert_accepted("alice@example.com", &["authenticate"], "alice-Pw-1");
    h.assert_never_printed(&["guess-1", "guess-2", "alice-Pw-1"]);
}

#[test]
fn icewarp_odd_passwords_reach_the_directory_exactly() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    for (i, password) in ODD_PASSWORDS.iter().enumerate() {
        let user = format!("odd{i}@example.com");
        iw.mock.clear_commands();
        h.assert_accepted(&user, &["authenticate"], password);
        assert_eq!(iw.mock.received_passwords(), [password.to_string()], "{user}");

        iw.mock.clear_commands();
        let wrong = format!("{password}!");
        h.assert_refused(&user, &["authenticate"], &wrong, AUTH_FAILURE);
        assert_eq!(iw.mock.received_passwords(), [wrong], "{user}");
    }
    h.assert_never_printed(&ODD_PASSWORDS);
}

#[test]
fn icewarp_only_a_non_empty_authtoken_logs_in() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    let xml = |body: &str| Response::with_content(200, "text/xml", body.to_string());
    let result = |inner: &str| {
        xml(&format!(
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>{inner}</result></query></iq>"
        ))
    };
    let not_answers = [
        result("<email>alice@example.com</email><authtoken></authtoken>"),
        result("<email>alice@example.com</email><authtoken>   </authtoken>"),
        result("<email>alice@example.com</email>"),
        result("1"),
        xml("<iq type=\"result\"><query xmlns=\"urn:other\"><result><authtoken>AB12</authtoken></result></query></iq>"),
        xml("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><authtoken>AB12</authtoken>"),
        xml("<html><body>OK</body></html>"),
        Response::html(500, "<html>Internal Server Error</html>"),
        Response::html(200, "<html><body>Welcome</body></html>"),
        xml("<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"license_evaluation\"/></query></iq>"),
    ];
    for reply in not_answers {
        iw.server.set_override(reply.clone());
        let out = h.assert_refused(
            "alice@example.com",
            &["authenticate", "acct_mgmt"],
            "alice-Pw-1",
            UNAVAILABLE,
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("successfully"),
            "{reply:?}: {}",
            text(&out)
        );
    }
    // An explicit "wrong password" is an authentication failure, not an outage.
    iw.server.set_override(xml(
        "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"auth_login_invalid\"/></query></iq>",
    ));
    h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1", AUTH_FAILURE);
    iw.server.clear_plan();
    h.assert_accepted("alice@example.com", &["authenticate"], "alice-Pw-1");
    h.assert_never_printed(&["alice-Pw-1", ADMIN_PASSWORD]);
}

#[test]
fn icewarp_disabled_and_two_factor_accounts_are_denied() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    // Disabled in the directory after the sync: the cache still says enabled, the
    // directory's answer decides.
    iw.mock.update(|d| {
        d.account_mut("alice@example.com").unwrap().state = 2;
        d.account_mut("bob@example.com").unwrap().two_factor = true;
    });
    h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1", AUTH_FAILURE);
    h.assert_refused("bob@example.com", &["authenticate"], "bob-Pw-2", AUTH_FAILURE);
    // Disabled at sync time too.
    h.assert_refused("carol@example.com", &["authenticate"], "carol-Pw-3", AUTH_FAILURE);
    let errors: Vec<Option<String>> = auth_checks(&iw).into_iter().map(|(_, _, e)| e).collect();
    assert_eq!(
        errors,
        [
            Some("account_disabled_2".into()),
            Some("auth_two_factor_required".into()),
            Some("account_disabled_2".into())
        ]
    );
    h.assert_never_printed(&["alice-Pw-1", "bob-Pw-2", "carol-Pw-3"]);
}

#[test]
fn icewarp_down_is_an_outage_not_a_wrong_password() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    h.assert_accepted("alice@example.com", &["authenticate"], "alice-Pw-1");
    drop(iw);
    let out = h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1", UNAVAILABLE);
    // pam_wrapper shows the module's syslog line: it says why, and names no password.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SYSLOG") && stderr.contains("directory is unavailable"),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("cannot connect"), "{}", text(&out));
    h.assert_never_printed(&["alice-Pw-1"]);
}

#[test]
fn icewarp_self_signed_certificate_needs_ca_file_or_ignore_ssl_warnings() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    h.configure(&icewarp_section(&iw.url(), "", ""));
    let out = h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1", UNAVAILABLE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"), "{}", text(&out));
    assert!(auth_checks(&iw).is_empty(), "the password was sent over an unverified connection");

    h.configure(&icewarp_section(&iw.url(), "ignore_ssl_warnings = true\n", ""));
    h.assert_accepted("alice@example.com", &["authenticate", "acct_mgmt"], "alice-Pw-1");
    h.assert_refused("alice@example.com", &["authenticate"], "not-alice", AUTH_FAILURE);
    h.assert_never_printed(&["alice-Pw-1", "not-alice"]);
}

#[test]
fn a_ca_file_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let (iw, h, ca) = icewarp_synced(directory_data(), "");
    // Whoever can write the CA file decides which server is believed to be the directory.
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = h.assert_refused("alice@example.com", &["authenticate"], "alice-Pw-1", UNAVAILABLE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(directory.ca_file) can be changed by others"), "{}", text(&out));
    assert!(stderr.contains(&format!("`chmod go-w {}`", ca.display())), "{}", text(&out));
    assert!(auth_checks(&iw).is_empty(), "the password was sent");
    let sync = h.cli(&["sync"]);
    assert!(!sync.status.success(), "{}", text(&sync));
    assert!(String::from_utf8_lossy(&sync.stderr).contains("directory.ca_file"), "{}", text(&sync));

    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    h.assert_accepted("alice@example.com", &["authenticate"], "alice-Pw-1");
    h.assert_never_printed(&["alice-Pw-1", ADMIN_PASSWORD]);
}

/// A login checks the user's own password (`getauthtoken`): the PAM process never opens the
/// administrator's password file. The file is a FIFO whose writer only gets through once
/// someone opens it for reading, which makes "it was never read" observable; a missing
/// password file does not matter either.
#[test]
fn icewarp_login_never_reads_the_administrator_password_file() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let (iw, h, ca) = icewarp_synced(directory_data(), "");
    let fifo = h.env.dir.path().join("directory.secret");
    let made = std::process::Command::new("mkfifo").args(["-m", "0600"]).arg(&fifo).output();
    assert!(made.unwrap().status.success(), "mkfifo");
    let section = |password_file: &std::path::Path| {
        format!(
            "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = {ADMIN:?}\n\
             password_file = {password_file:?}\ntimeout_secs = 5\nca_file = {ca:?}\n",
            iw.url()
        )
    };
    h.configure(&section(&fifo));
    let opened = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifo, opened) = (fifo.clone(), opened.clone());
        std::thread::spawn(move || {
            // Blocks until a reader opens the FIFO.
            let mut file = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            opened.store(true, Ordering::SeqCst);
            let _ = std::io::Write::write_all(&mut file, format!("{ADMIN_PASSWORD}\n").as_bytes());
        })
    };
    h.assert_accepted("alice@example.com", &["authenticate", "acct_mgmt"], "alice-Pw-1");
    assert_eq!(auth_checks(&iw).len(), 1);
    // A reader would have released the writer before its read could end, so before the
    // login could.
    assert!(!opened.load(Ordering::SeqCst), "the PAM process opened the password file");
    // Release the writer ourselves.
    let drained = std::fs::read_to_string(&fifo).unwrap();
    writer.join().unwrap();
    assert!(opened.load(Ordering::SeqCst) && drained.starts_with(ADMIN_PASSWORD));
    assert!(
        !iw.mock.commands().iter().any(|c| c.name == "authenticate"),
        "no administrator session"
    );

    h.configure(&section(&h.env.dir.path().join("no-such.secret")));
    h.assert_accepted("alice@example.com", &["authenticate", "acct_mgmt"], "alice-Pw-1");
    h.assert_never_printed(&["alice-Pw-1", ADMIN_PASSWORD]);
}

#[test]
fn icewarp_manually_created_directory_users_authenticate_against_the_directory() {
    let identity = tls();
    let iw = IcewarpServer::start(directory_data(), Some(identity.clone())).unwrap();
    let h = Harness::new();
    let ca = h.ca_file(&identity);
    h.configure(&icewarp_section(&iw.url(), &format!("ca_file = {ca:?}\n"), ""));
    // No sync at all: the seeds' "manually created user" with directory authentication.
    let add = h.cli(&["user", "add", "dan@example.com", "--auth", "directory"]);
    assert!(add.status.success(), "{}", text(&add));
    let add = h.cli(&["user", "add", "danny", "--auth", "directory", "--email", "dan@example.com"]);
    assert!(add.status.success(), "{}", text(&add));

    h.assert_accepted("dan@example.com", &["authenticate", "acct_mgmt"], "dan-Pw-4");
    h.assert_accepted("danny", &["authenticate", "acct_mgmt"], "dan-Pw-4");
    h.assert_refused("danny", &["authenticate"], "alice-Pw-1", AUTH_FAILURE);
    let emails: Vec<String> = auth_checks(&iw).into_iter().map(|(email, _, _)| email).collect();
    assert_eq!(emails, ["dan@example.com"; 3]);
    h.assert_never_printed(&["dan-Pw-4", "alice-Pw-1"]);
}

#[test]
fn mailbox_named_users_log_in_with_their_address() {
    let (iw, h, _) = icewarp_synced(directory_data(), "login_name = \"mailbox\"\n");
    h.assert_accepted("alice", &["authenticate", "acct_mgmt"], "alice-Pw-1");
    assert_eq!(
        auth_checks(&iw),
        [("alice@example.com".to_string(), "alice-Pw-1".to_string(), None)]
    );
    h.assert_never_printed(&["alice-Pw-1"]);
}

#[test]
fn the_account_step_follows_the_cache_even_when_the_directory_says_yes() {
    let (iw, h, _) = icewarp_synced(directory_data(), "");
    let disable = h.cli(&["user", "set", "alice@example.com", "--disable"]);
    assert!(disable.status.success(), "{}", text(&disable));
    // The directory says yes; the cache says disabled: auth refuses it already (for services
    // that never call the account step), and so does the account step.
    h.assert_refused(
        "alice@example.com",
        &["authenticate"],
        "alice-Pw-1",
        "Authentication failure",
    );
    assert!(auth_checks(&iw).iter().all(|(_, _, error)| error.is_none()), "the directory said yes");
    h.assert_refused("alice@example.com", &["acct_mgmt"], "", "User account has expired");

    let revoke = h.cli(&["user", "set", "bob@example.com", "--revoke", "login"]);
    assert!(revoke.status.success(), "{}", text(&revoke));
    h.assert_refused(
        "bob@example.com",
        &["authenticate", "acct_mgmt"],
        "bob-Pw-2",
        "Permission denied",
    );
    h.assert_never_printed(&["alice-Pw-1", "bob-Pw-2"]);
}

// ---------------------------------------------------------------------------------------
// Application Integration

const BASIC_USER: &str = "archive";
const BASIC_PASSWORD: &str = "basic-Pw-never-shown";

fn appint_synced() -> (AppIntServer, Harness) {
    let identity = tls();
    let mut data = AppIntData::demo().basic_auth(BASIC_USER, BASIC_PASSWORD);
    for (i, password) in ODD_PASSWORDS.iter().enumerate() {
        data = data.user(AppIntUser::new(&format!("odd{i}"), password));
    }
    let server = AppIntServer::start(data, Some(identity.clone())).unwrap();
    let h = Harness::new();
    let ca = h.ca_file(&identity);
    h.configure(&format!(
        "\n[directory]\ntype = \"application-integration\"\nurl = {:?}\nusername = {BASIC_USER:?}\n\
         password = {BASIC_PASSWORD:?}\nca_file = {ca:?}\ntimeout_secs = 5\n",
        server.url()
    ));
    h.sync();
    server.mock.clear_requests();
    (server, h)
}

#[test]
fn appint_right_and_wrong_passwords_and_odd_ones_reach_the_server_exactly() {
    let (server, h) = appint_synced();
    h.assert_accepted("alice", &["authenticate", "acct_mgmt"], "alice-password");
    let requests = server.mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].param("cmd"), Some("auth"));
    assert_eq!(requests[0].param("user"), Some("alice"));
    assert_eq!(requests[0].param("pass"), Some("alice-password"));
    assert_eq!(requests[0].basic_auth, Some((BASIC_USER.to_string(), BASIC_PASSWORD.to_string())));
    h.assert_refused("alice", &["authenticate"], "bob-password", AUTH_FAILURE);

    for (i, password) in ODD_PASSWORDS.iter().enumerate() {
        let user = format!("odd{i}");
        server.mock.clear_requests();
        h.assert_accepted(&user, &["authenticate"], password);
        assert_eq!(server.mock.received_passwords(), [password.to_string()], "{user}");
        server.mock.clear_requests();
        let wrong = format!("{password}!");
        h.assert_refused(&user, &["authenticate"], &wrong, AUTH_FAILURE);
        assert_eq!(server.mock.received_passwords(), [wrong], "{user}");
    }
    let mut secrets = vec!["alice-password", "bob-password", BASIC_PASSWORD];
    secrets.extend(ODD_PASSWORDS);
    h.assert_never_printed(&secrets);
}

#[test]
fn appint_only_a_json_true_success_logs_in() {
    let (server, h) = appint_synced();
    let json = |body: &str| Response::with_content(200, "text/json", body.to_string());
    // An explicit "no", even to the right password: a wrong password.
    server.server.set_override(json(r#"{"success": false, "message": "Locked."}"#));
    h.assert_refused("alice", &["authenticate"], "alice-password", AUTH_FAILURE);

    // Anything that is not an answer: an outage, never a success.
    let broken = [
        Response::html(500, "<html>Internal Server Error</html>"),
        Response::html(200, "<html><body>Login OK</body></html>"),
        json("garbage"),
        json(r#"{"success": "true"}"#),
        json(r#"{"ok": true}"#),
        json("[true]"),
        json(r#"{"success": 1}"#),
        Response::new(204),
    ];
    for reply in broken {
        server.server.set_override(reply.clone());
        let out = h.assert_refused(
            "alice",
            &["authenticate", "acct_mgmt"],
            "alice-password",
            UNAVAILABLE,
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("successfully"),
            "{reply:?}: {}",
            text(&out)
        );
    }
    server.server.clear_plan();
    h.assert_accepted("alice", &["authenticate"], "alice-password");

    // Down.
    drop(server);
    h.assert_refused("alice", &["authenticate"], "alice-password", UNAVAILABLE);
    h.assert_never_printed(&["alice-password", BASIC_PASSWORD]);
}
