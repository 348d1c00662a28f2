//! Fleets end to end (issue 13): a publisher syncs from the IceWarp mock and `publish`es
//! into the root of a real nginx (Debian's package, started here with its own
//! configuration on a free port of 127.0.0.1, HTTPS with a certificate made by the test;
//! never the system service). Hosts with `[snapshot]` and no directory administrator
//! credentials pull it with the real `dircache-sync`, then answer NSS (nss_wrapper) and
//! log a directory user in through the real libpam (pam_wrapper + pamtester). Every
//! refusal over nginx leaves the host's cache byte-identical.
//!
//! Needs `cargo build --workspace` first, and nginx, libnss-wrapper, libpam-wrapper,
//! pamtester and minisign (scripts/install-deps.sh).

mod testbed;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mock_directory::{Account, Domain, IcewarpData, IcewarpServer, TlsIdentity};
use serde_json::Value;
use testbed::{
    artifact, assert_same_snapshot, may_skip, one_failure_line, snapshot, stdout_json, text, Env,
};

const NGINX: &str = "/usr/sbin/nginx";
const MINISIGN: &str = "/usr/bin/minisign";
const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-Pa55-fleet-never-shown";

/// nginx on 127.0.0.1:port serving `www`: `/fleet/` and `/old/` are publish directories,
/// `/broken/` answers 500, `/html/` an HTML page with status 200, `/missing/` 404.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, identity: &TlsIdentity) -> Nginx {
        let www = dir.join("www");
        fs::create_dir_all(www.join("fleet")).unwrap();
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::write(dir.join("server.pem"), &identity.cert_pem).unwrap();
        fs::write(dir.join("server.key"), &identity.key_pem).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // As root nginx's workers would drop to nobody, who cannot enter the test's 0700
        // temporary directory.
        let user = if is_root() { "user root;" } else { "" };
        let d = dir.display();
        let conf = format!(
            "{user}\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n\
               client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               types {{ application/json json; text/plain minisig; }}\n\
               default_type application/octet-stream;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n\
                 root {d}/www;\n\
                 location /broken/ {{ return 500; }}\n\
                 location /html/ {{ default_type text/html; \
                   return 200 \"<!DOCTYPE html><html><body>Please log in</body></html>\"; }}\n\
               }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child, port, dir: dir.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "nginx did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}/", self.port)
    }

    fn www(&self, path: &str) -> PathBuf {
        self.dir.join("www").join(path)
    }

    /// The status codes nginx logged for `manifest.json` requests, in order.
    fn manifest_statuses(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("/fleet/manifest.json "))
            .filter_map(|l| l.split("\" ").nth(1)?.split(' ').next().map(str::to_string))
            .collect()
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers (SIGKILL would orphan them), then
    /// SIGKILL only if it has not gone within a few seconds.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn missing_tools() -> Option<String> {
    let wanted = [
        (NGINX, "nginx"),
        (MINISIGN, "minisign"),
        (NSS_WRAPPER, "libnss-wrapper"),
        (testbed::PAM_WRAPPER, "libpam-wrapper"),
        ("/usr/bin/pamtester", "pamtester"),
    ];
    let missing: Vec<&str> =
        wanted.iter().filter(|(path, _)| !Path::new(path).exists()).map(|(_, p)| *p).collect();
    (!missing.is_empty()).then(|| format!("`apt-get install -y {}`", missing.join(" ")))
}

fn directory_data() -> IcewarpData {
    let mut data = IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .account(Account::user("alice@example.com", "Alice Liddell", "alice-Pw-1"))
        .account(Account::user("bob@example.com", "Bob Builder", "bob-Pw-2"))
        .account(Account::user("carol@example.com", "Carol Danvers", "carol-Pw-3").disabled(1));
    for i in 0..20 {
        let name = format!("user{i:02}@example.com");
        data = data.account(Account::user(&name, "Fleet User", "user-Pw"));
    }
    data
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// name → uid, as `user list --json` shows them.
fn uids(env: &Env) -> Vec<(String, u64)> {
    let list = stdout_json(&ok(env.cli(&["user", "list", "--json"], "")));
    let mut users: Vec<(String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_string(), u["uid"].as_u64().unwrap()))
        .collect();
    users.sort();
    users
}

struct Fleet {
    nginx: Nginx,
    publisher: Env,
    public_key: PathBuf,
    ca: PathBuf,
    iw: IcewarpServer,
    _dir: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let ca = dir.path().join("ca.pem");
        identity.write_cert_pem(&ca).unwrap();
        let nginx = Nginx::start(&dir.path().join("nginx"), &identity);
        let iw = IcewarpServer::start(directory_data(), Some(identity)).unwrap();

        let publisher = Env::new();
        let key = publisher.dir.path().join("publish.key");
        let public_key = dir.path().join("publish.pub");
        let out = ok(publisher.cli(
            &[
                "keygen",
                "--secret-key",
                key.to_str().unwrap(),
                "--public-key",
                public_key.to_str().unwrap(),
            ],
            "",
        ));
        assert!(String::from_utf8_lossy(&out.stdout).contains("key id"), "{}", text(&out));
        publisher.rewrite_extra_config(&format!(
            "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = {ADMIN:?}\n\
             password = {ADMIN_PASSWORD:?}\nca_file = {ca:?}\ntimeout_secs = 10\n\n\
             [sync]\ndelete_missing_users = true\n\n[publish]\nsigning_key_file = {key:?}\n",
            iw.url()
        ));
        ok(publisher.cli(&["sync"], ""));
        let fleet = Fleet { nginx, publisher, public_key, ca, iw, _dir: dir };
        fleet.publish("fleet");
        fleet
    }

    fn publish(&self, path: &str) -> Value {
        let www = self.nginx.www(path);
        stdout_json(&ok(self.publisher.cli(&["publish", www.to_str().unwrap(), "--json"], "")))
    }

    /// A host: `[directory]` names the IceWarp server for password checks only (no
    /// administrator, no password), `[snapshot]` the nginx URL.
    fn host(&self, path: &str, public_key: &Path) -> Env {
        let env = Env::new();
        env.rewrite_extra_config(&self.host_config(path, public_key));
        env
    }

    fn host_config(&self, path: &str, public_key: &Path) -> String {
        format!(
            "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nca_file = {:?}\ntimeout_secs = 10\n\n\
             [snapshot]\nurl = {:?}\npublic_key_file = {public_key:?}\nca_file = {:?}\n\
             timeout_secs = 10\n",
            self.iw.url(),
            self.ca,
            self.nginx.url(path),
            self.ca
        )
    }
}

/// A pull that must be refused: one error line naming `expected`, the cache unchanged.
fn assert_refused(host: &Env, what: &str, expected: &[&str]) {
    let before = snapshot(&host.cache_dir());
    let line = one_failure_line(&host.cli(&["sync"], ""));
    for part in expected {
        assert!(line.contains(part), "{what}: {line:?} lacks {part:?}");
    }
    assert_same_snapshot(&before, &snapshot(&host.cache_dir()), what);
    let status = stdout_json(&host.cli(&["status", "--json"], ""));
    assert_eq!(status["result"], "failure", "{what}");
}

fn nss(host: &Env, args: &[&str]) -> Output {
    let output = Command::new("getent")
        .args(args)
        .env("LD_PRELOAD", NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", host.dir.path().join("passwd"))
        .env("NSS_WRAPPER_GROUP", host.dir.path().join("group"))
        .env("NSS_WRAPPER_MODULE_SO_PATH", artifact("libnss_dircache.so"))
        .env("NSS_WRAPPER_MODULE_FN_PREFIX", "dircache")
        .env("DIRCACHE_CACHE_DIR", host.cache_dir())
        .env("DIRCACHE_LOCAL_PASSWD", host.dir.path().join("passwd"))
        .env("DIRCACHE_LOCAL_GROUP", host.dir.path().join("group"))
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    testbed::record_output(&Command::new("getent"), &output);
    output
}

#[test]
fn hosts_pull_the_publishers_snapshot_from_nginx_and_refuse_every_bad_one() {
    if !may_skip("fleet_nginx", missing_tools()) {
        return;
    }
    let fleet = Fleet::start();
    let published = uids(&fleet.publisher);
    assert_eq!(published.len(), 23);

    // An administrator can check the snapshot by hand with Debian's minisign.
    let manifest = fleet.nginx.www("fleet").join("manifest.json");
    let out = Command::new(MINISIGN)
        .arg("-Vm")
        .arg(&manifest)
        .arg("-p")
        .arg(&fleet.public_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -V: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dircache snapshot generation"));

    // Two hosts pull: the same users with the same uids, no administrator credentials.
    let hosts = [fleet.host("fleet", &fleet.public_key), fleet.host("fleet", &fleet.public_key)];
    for host in &hosts {
        let config = fs::read_to_string(&host.config).unwrap();
        assert!(!config.contains(ADMIN_PASSWORD) && !config.contains("username"));
        let report = stdout_json(&ok(host.cli(&["sync", "--json"], "")));
        assert_eq!(report["created"].as_array().unwrap().len(), 23, "{report}");
        assert_eq!(report["snapshot"]["unchanged"], false);
        assert_eq!(uids(host), published);
    }
    let host = &hosts[0];
    let alice_uid = published.iter().find(|(n, _)| n == "alice@example.com").unwrap().1;

    // NSS answers from the pulled cache.
    let passwd = nss(host, &["passwd", "alice@example.com"]);
    assert!(passwd.status.success(), "{}", text(&passwd));
    let line = String::from_utf8_lossy(&passwd.stdout).to_string();
    assert!(line.starts_with(&format!("alice@example.com:x:{alice_uid}:{alice_uid}:")), "{line}");

    // A real libpam login of a directory user: the directory checks the password with the
    // user's own credentials, no administrator session.
    host.pam_service("fleet-login", "");
    let login = host.pamtester(
        "fleet-login",
        "alice@example.com",
        &["authenticate", "acct_mgmt"],
        "alice-Pw-1\n",
    );
    assert!(login.status.success(), "{}", text(&login));
    let wrong = host.pamtester("fleet-login", "alice@example.com", &["authenticate"], "nope\n");
    assert!(!wrong.status.success(), "{}", text(&wrong));
    let disabled = host.pamtester(
        "fleet-login",
        "carol@example.com",
        &["authenticate", "acct_mgmt"],
        "carol-Pw-3\n",
    );
    assert!(!disabled.status.success(), "a disabled user stays disabled: {}", text(&disabled));

    // Unchanged: one conditional request, answered 304, nothing written.
    let before = snapshot(&host.cache_dir());
    let report = stdout_json(&ok(host.cli(&["sync", "--json"], "")));
    assert_eq!(report["snapshot"]["unchanged"], true, "{report}");
    assert_eq!(fleet.nginx.manifest_statuses().last().map(String::as_str), Some("304"));
    assert_same_snapshot(&before, &snapshot(&host.cache_dir()), "an unchanged pull");

    // check: the snapshot line is ok on a host, the directory's admin login is not tried.
    let check = stdout_json(&host.cli(&["check", "--json"], ""));
    let line = |name: &str| {
        check["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {check}"))
    };
    assert_eq!(line("snapshot")["status"], "ok", "{check}");
    assert_eq!(line("directory")["status"], "skip", "{check}");

    // systemd's ExecCondition= runs the timer's sync on a host.
    let configured = ok(host.cli(&["check", "--configured"], ""));
    assert!(String::from_utf8_lossy(&configured.stdout).contains("pulls snapshots"));

    // The replica is read-only, but for a local disable, which outlasts pulls.
    let refused = one_failure_line(&host.cli(&["user", "add", "eve"], ""));
    assert!(refused.contains("Change users on the publisher"), "{refused}");
    ok(host.cli(&["user", "set", "bob@example.com", "--disable"], ""));

    // The old snapshot is kept aside for the rollback below; a new one is published.
    let old = fleet.nginx.www("old");
    fs::create_dir_all(&old).unwrap();
    for entry in fs::read_dir(fleet.nginx.www("fleet")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), old.join(entry.file_name())).unwrap();
    }
    fleet.iw.mock.update(|data| assert!(data.remove_account("user19@example.com")));
    ok(fleet.publisher.cli(&["sync"], ""));
    let second = fleet.publish("fleet");

    // Half-uploaded: the new users file is not there yet.
    let users_file =
        second["files"].as_array().unwrap().iter().find(|f| f["kind"] == "users").unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string();
    let users_path = fleet.nginx.www("fleet").join(&users_file);
    let parked = fleet.nginx.dir.join("parked");
    fs::rename(&users_path, &parked).unwrap();
    assert_refused(host, "half-uploaded", &["half-uploaded", &users_file]);

    // Tampered in the server's root.
    let genuine = fs::read(&parked).unwrap();
    let mut tampered = genuine.clone();
    let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    tampered[at] = if tampered[at] == b'9' { b'8' } else { b'9' };
    fs::write(&users_path, &tampered).unwrap();
    assert_refused(host, "tampered", &["SHA-256 is not the one signed"]);
    fs::write(&users_path, &genuine).unwrap();

    // Now whole: installed, the deletion included, the local disable kept.
    let report = stdout_json(&ok(host.cli(&["sync", "--json"], "")));
    assert_eq!(report["deleted"], serde_json::json!(["user19@example.com"]), "{report}");
    let bob = stdout_json(&ok(host.cli(&["user", "show", "bob@example.com", "--json"], "")));
    assert_eq!(bob["enabled"], false, "{bob}");

    // Rollback: the older generation, served again.
    host.rewrite_extra_config(&fleet.host_config("old", &fleet.public_key));
    assert_refused(host, "rollback", &["refusing a rollback"]);

    // Another key.
    let other = fleet.nginx.dir.join("other");
    fs::create_dir_all(&other).unwrap();
    let other_pub = other.join("other.pub");
    ok(host.cli(
        &[
            "keygen",
            "--secret-key",
            other.join("other.key").to_str().unwrap(),
            "--public-key",
            other_pub.to_str().unwrap(),
        ],
        "",
    ));
    host.rewrite_extra_config(&fleet.host_config("fleet", &other_pub));
    assert_refused(host, "another key", &["signed by key id", "this host trusts key id"]);

    // 404, 500 and an HTML page from the server.
    for (path, expected) in
        [("missing", "HTTP status 404"), ("broken", "HTTP status 500"), ("html", "HTML page")]
    {
        host.rewrite_extra_config(&fleet.host_config(path, &fleet.public_key));
        assert_refused(host, path, &[expected]);
    }

    // A server certificate this host does not trust: a TLS failure, with the key to set.
    let config = fleet.host_config("fleet", &fleet.public_key);
    let trusted = format!("ca_file = {:?}\n", fleet.ca);
    let at = config.rfind(&trusted).unwrap();
    host.rewrite_extra_config(&format!("{}{}", &config[..at], &config[at + trusted.len()..]));
    assert_refused(host, "untrusted certificate", &["TLS verification failed", "snapshot.ca_file"]);

    // The second host, untouched by all this, pulls the new snapshot.
    let report = stdout_json(&ok(hosts[1].cli(&["sync", "--json"], "")));
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(uids(&hosts[1]), uids(&fleet.publisher));
}
