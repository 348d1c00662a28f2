//! `dircache-sync check` through the real binary: a working setup (mock IceWarp directory,
//! a synced cache, PAM files and nsswitch.conf that name dircache, and a real `getent`
//! lookup through libnss_dircache.so under nss_wrapper) passes every check; each broken
//! part fails with a message that says what is wrong and what to do, and exit status ≠ 0.

mod testbed;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use dircache::cache::CacheDir;
use mock_directory::{AppIntData, AppIntServer, IcewarpData, IcewarpServer, TlsIdentity};
use serde_json::Value;
use testbed::{artifact, require_tool, stdout_json, text, Env};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "demo-admin-password";
const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
const CHECKS: [&str; 11] = [
    "config",
    "directory",
    "transport",
    "cache",
    "ids",
    "local-groups",
    "last-sync",
    "pam",
    "nscd",
    "nsswitch",
    "nss-lookup",
];

/// `extra`: more `[directory]` lines, such as `ca_file = …`.
fn icewarp_section(url: &str, password: &str, extra: &str) -> String {
    format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = {ADMIN:?}\n\
         password = {password:?}\ntimeout_secs = 35\nconnect_timeout_secs = 5\n{extra}\n"
    )
}

/// A host as `pam-auth-update --enable dircache` and the package's postinst leave it: the
/// common PAM files and nsswitch.conf name dircache.
struct Host {
    env: Env,
    pam_dir: PathBuf,
    nsswitch: PathBuf,
    /// useradd gives subordinate ids clear of the default uid_range here.
    login_defs: PathBuf,
    /// Absent unless a test makes subordinate ids usable.
    newuidmap: PathBuf,
    empty: PathBuf,
}

impl Host {
    fn new(extra_config: &str) -> Host {
        let env = Env::with_extra_config(extra_config);
        let pam_dir = env.dir.path().join("pam.d");
        fs::create_dir_all(&pam_dir).unwrap();
        for (file, kind) in [
            ("common-auth", "auth"),
            ("common-account", "account"),
            ("common-password", "password"),
        ] {
            let stack = format!(
                "{kind}\t[success=2 default=ignore]\tpam_unix.so nullok\n\
                 {kind}\t[success=1 default=ignore]\tpam_dircache.so use_first_pass\n\
                 {kind}\trequisite\tpam_deny.so\n{kind}\trequired\tpam_permit.so\n"
            );
            fs::write(pam_dir.join(file), stack).unwrap();
        }
        let nsswitch = env.dir.path().join("nsswitch.conf");
        fs::write(
            &nsswitch,
            "# /etc/nsswitch.conf\npasswd:         files systemd dircache\n\
             group:          files systemd dircache\nshadow:         files\n",
        )
        .unwrap();
        let login_defs = env.dir.path().join("login.defs");
        fs::write(
            &login_defs,
            "UID_MIN 1000\nSUB_UID_MIN 1000000\nSUB_UID_MAX 1999999\nSUB_UID_COUNT 65536\n\
             SUB_GID_MIN 1000000\nSUB_GID_MAX 1999999\nSUB_GID_COUNT 65536\n",
        )
        .unwrap();
        let empty = env.dir.path().join("empty");
        fs::write(&empty, "").unwrap();
        let newuidmap = env.dir.path().join("newuidmap");
        Host { env, pam_dir, nsswitch, login_defs, newuidmap, empty }
    }

    /// `dircache-sync check ARGS` with the test's PAM files and nsswitch.conf, and glibc's
    /// NSS answered by the built libnss_dircache.so reading this test's cache (through
    /// nss_wrapper, which `getent` inherits).
    fn check(&self, args: &[&str]) -> Output {
        require_tool(NSS_WRAPPER, "libnss-wrapper");
        let module = artifact("libnss_dircache.so");
        let mut all = vec!["check", "--pam-dir", path(&self.pam_dir), "--nsswitch"];
        all.extend([path(&self.nsswitch), "--login-defs", path(&self.login_defs)]);
        all.extend(["--newuidmap", path(&self.newuidmap)]);
        // No nscd here, whatever the machine runs.
        let no_nscd = self.env.dir.path().join("no-nscd-socket");
        all.extend(["--nscd-socket", path(&no_nscd)]);
        all.extend_from_slice(args);
        let cache = self.env.cache_dir();
        let out = self.env.cli_with_env(
            &all,
            "",
            &[
                ("LD_PRELOAD", NSS_WRAPPER),
                ("NSS_WRAPPER_PASSWD", path(&self.empty)),
                ("NSS_WRAPPER_GROUP", path(&self.empty)),
                ("NSS_WRAPPER_MODULE_SO_PATH", path(&module)),
                ("NSS_WRAPPER_MODULE_FN_PREFIX", "dircache"),
                ("DIRCACHE_CACHE_DIR", path(&cache)),
                ("DIRCACHE_LOCAL_PASSWD", path(&self.env.dir.path().join("passwd"))),
                ("DIRCACHE_LOCAL_GROUP", path(&self.env.dir.path().join("group"))),
            ],
        );
        let all_output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all_output.contains(ADMIN_PASSWORD), "the password was printed:\n{}", text(&out));
        out
    }

    /// `check --json`; its checks by name (status, message, hint), in order.
    fn check_json(&self) -> (Output, Vec<(String, String, String, String)>) {
        let out = self.check(&["--json"]);
        let report = stdout_json(&out);
        assert_eq!(report["ok"], Value::Bool(out.status.success()), "{}", text(&out));
        let checks = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let field = |key: &str| c[key].as_str().unwrap_or("").to_string();
                (field("name"), field("status"), field("message"), field("hint"))
            })
            .collect::<Vec<_>>();
        let names: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, CHECKS, "{}", text(&out));
        (out, checks)
    }

    fn sync(&self) {
        let out = self.env.cli(&["sync"], "");
        assert!(out.status.success(), "{}", text(&out));
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The check named `name` of a `--json` report.
fn find<'a>(
    checks: &'a [(String, String, String, String)],
    name: &str,
) -> &'a (String, String, String, String) {
    checks.iter().find(|c| c.0 == name).unwrap()
}

/// The text line of check `name`; the command must have failed.
fn failed_line(out: &Output, name: &str) -> String {
    assert_ne!(out.status.code(), Some(0), "expected a failure:\n{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{}", text(out)))
        .to_string();
    assert!(line.starts_with("FAIL  "), "{name} did not fail:\n{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checks failed") && stderr.contains(name), "{}", text(out));
    line
}

/// The mock IceWarp directory over HTTPS, its certificate trusted through `ca_file`, and a
/// host synced from it; the third value is the `ca_file` line, for sections written later.
fn working_icewarp() -> (IcewarpServer, Host, String) {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let server = IcewarpServer::start(IcewarpData::demo(), Some(identity.clone())).unwrap();
    let host = Host::new("");
    let ca = host.env.dir.path().join("mock-ca.pem");
    identity.write_cert_pem(&ca).unwrap();
    let ca_line = format!("ca_file = {ca:?}");
    host.env.rewrite_extra_config(&icewarp_section(&server.url(), ADMIN_PASSWORD, &ca_line));
    host.sync();
    (server, host, ca_line)
}

#[test]
fn a_working_setup_passes_every_check() {
    let (_server, host, _) = working_icewarp();
    let out = host.check(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), CHECKS.len(), "one line per check:\n{stdout}");
    for (line, name) in lines.iter().zip(CHECKS) {
        assert!(line.starts_with("ok    "), "{line}");
        assert_eq!(line.split_whitespace().nth(1), Some(name), "{line}");
    }
    assert!(stdout.contains("logged in as the administrator admin@example.com"), "{stdout}");
    assert!(stdout.contains("generation 1 (format version 2"), "{stdout}");
    assert!(stdout.contains("answers uid"), "the getent lookup did not run:\n{stdout}");

    let (out, checks) = host.check_json();
    assert!(out.status.success(), "{}", text(&out));
    for (name, status, _, hint) in &checks {
        assert_eq!(status, "ok", "{name}: {}", text(&out));
        assert_eq!(hint, "", "an ok check has nothing to do");
    }
}

#[test]
fn application_integration_is_checked_with_a_listing() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let section = format!(
        "\n[directory]\ntype = \"application-integration\"\nurl = {:?}\ntimeout_secs = 5\n",
        server.url()
    );
    let host = Host::new(&section);
    host.sync();
    let (out, checks) = host.check_json();
    assert!(out.status.success(), "{}", text(&out));
    let directory = find(&checks, "directory");
    assert_eq!(directory.1, "ok");
    assert!(directory.2.contains("cmd=list answered with"), "{directory:?}");
    let transport = find(&checks, "transport");
    assert_eq!(transport.1, "warn", "plain http://: {transport:?}");
    assert!(transport.2.contains("HTTP Basic credentials"), "{transport:?}");
}

#[test]
fn plain_http_and_ignore_ssl_warnings_are_warned_about_not_failed() {
    let (server, host, ca) = working_icewarp();
    let (_, checks) = host.check_json();
    let transport = find(&checks, "transport");
    assert_eq!(transport.1, "ok", "{transport:?}");
    assert!(transport.2.contains("https, the certificate verified against"), "{transport:?}");

    // ignore_ssl_warnings: works, but anyone on the path can answer for any user.
    let ignore = format!("{ca}\nignore_ssl_warnings = true");
    host.env.rewrite_extra_config(&icewarp_section(&server.url(), ADMIN_PASSWORD, &ignore));
    let out = host.check(&[]);
    assert!(out.status.success(), "a warning is not a failure:\n{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.contains(" transport ")).unwrap();
    assert!(line.starts_with("warn  transport  "), "{line}");
    assert!(line.contains("ignore_ssl_warnings = true accepts any certificate"), "{line}");
    assert!(line.contains("answer \"yes\" for any user"), "{line}");
    assert!(line.contains("— put the server's CA certificate into directory.ca_file"), "{line}");

    // Plain http://: the passwords cross the network in clear text.
    let plain = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    host.env.rewrite_extra_config(&icewarp_section(&plain.url(), ADMIN_PASSWORD, ""));
    let (out, checks) = host.check_json();
    assert!(out.status.success(), "{}", text(&out));
    let transport = find(&checks, "transport");
    assert_eq!(transport.1, "warn", "{transport:?}");
    assert!(transport.2.contains("is plain http://"), "{transport:?}");
    assert!(transport.2.contains("administrator password"), "{transport:?}");
    assert!(transport.2.contains("in clear text"), "{transport:?}");
    assert!(transport.3.starts_with("use https://"), "{transport:?}");
    assert_eq!(find(&checks, "directory").1, "ok", "the directory itself answers");
}

#[test]
fn a_bad_config_fails_naming_the_key_and_skips_what_needs_it() {
    let (_server, host, _) = working_icewarp();
    fs::write(&host.env.config, "[sync]\ncolour = \"blue\"\n").unwrap();
    fs::set_permissions(&host.env.config, fs::Permissions::from_mode(0o600)).unwrap();
    let out = host.check(&[]);
    let line = failed_line(&out, "config");
    assert!(line.contains("colour") && line.contains("line 2"), "{line}");
    assert!(line.contains("dircache.toml(5)"), "says where the keys are described: {line}");
    let (_, checks) = host.check_json();
    for name in ["directory", "transport", "cache", "last-sync", "nss-lookup"] {
        assert_eq!(find(&checks, name).1, "skip", "{name}");
    }
    // PAM and NSS do not need the configuration and are still checked.
    assert_eq!(find(&checks, "pam").1, "ok");
    assert_eq!(find(&checks, "nsswitch").1, "ok");
}

#[test]
fn missing_or_unsafe_credentials_are_configuration_errors_naming_the_key() {
    // Not "ok config … is valid" followed by "FAIL directory … not configured".
    let (server, host, ca) = working_icewarp();
    let no_username = icewarp_section(&server.url(), ADMIN_PASSWORD, &ca)
        .replace(&format!("username = {ADMIN:?}\n"), "");
    host.env.rewrite_extra_config(&no_username);
    let line = failed_line(&host.check(&[]), "config");
    assert!(line.contains("directory.username") && line.contains("[directory]"), "{line}");
    let (_, checks) = host.check_json();
    assert_eq!(find(&checks, "directory").1, "skip");

    let secret = host.env.dir.path().join("directory.secret");
    fs::write(&secret, format!("{ADMIN_PASSWORD}\n")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let readable = icewarp_section(&server.url(), ADMIN_PASSWORD, &ca)
        .replace(&format!("password = {ADMIN_PASSWORD:?}"), &format!("password_file = {secret:?}"));
    host.env.rewrite_extra_config(&readable);
    let line = failed_line(&host.check(&[]), "config");
    assert!(line.contains("directory.password_file") && line.contains("chmod 600"), "{line}");
}

#[test]
fn a_wrong_administrator_password_fails_the_directory_check() {
    let (server, host, ca) = working_icewarp();
    host.env.rewrite_extra_config(&icewarp_section(&server.url(), "not-the-password", &ca));
    let out = host.check(&[]);
    let line = failed_line(&out, "directory");
    assert!(line.contains("administrator login failed"), "{line}");
    assert!(line.contains("wrong administrator address (admin@example.com) or password"), "{line}");
    assert!(line.contains("— check directory.username"), "says what to do: {line}");
    let (_, checks) = host.check_json();
    assert_eq!(find(&checks, "directory").1, "fail");
    assert_eq!(find(&checks, "cache").1, "ok", "the cache itself is fine");
}

#[test]
fn a_directory_that_is_down_fails_the_directory_check() {
    let (_server, host, _) = working_icewarp();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/icewarpapi/");
    host.env.rewrite_extra_config(&icewarp_section(&url, ADMIN_PASSWORD, ""));
    let out = host.check(&[]);
    let line = failed_line(&out, "directory");
    assert!(line.contains("cannot connect"), "{line}");
    assert!(line.contains("that this host reaches it"), "says what to do: {line}");
}

#[test]
fn a_corrupt_cache_fails_the_cache_check() {
    let (_server, host, _) = working_icewarp();
    let current = fs::canonicalize(host.env.cache_dir().join("current")).unwrap();
    let table = current.join("users.public");
    let mut bytes = fs::read(&table).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&table, bytes).unwrap();
    let out = host.check(&[]);
    let line = failed_line(&out, "cache");
    assert!(line.contains("users.public is corrupt"), "{line}");
    assert!(line.contains("`dircache-sync sync` rebuilds the cache"), "says what to do: {line}");
    let (_, checks) = host.check_json();
    assert_eq!(find(&checks, "nss-lookup").1, "skip", "no cached user to look up");
}

#[test]
fn a_private_cache_file_readable_by_others_fails() {
    let (_server, host, _) = working_icewarp();
    let current = fs::canonicalize(host.env.cache_dir().join("current")).unwrap();
    let private = current.join("users.private");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
    let line = failed_line(&host.check(&[]), "cache");
    assert!(line.contains(&format!("chmod 0600 {}", private.display())), "{line}");
}

#[test]
fn nsswitch_without_dircache_fails_and_says_what_to_add() {
    let (_server, host, _) = working_icewarp();
    fs::write(&host.nsswitch, "passwd:         files systemd\ngroup:          files systemd\n")
        .unwrap();
    let out = host.check(&[]);
    let line = failed_line(&out, "nsswitch");
    assert!(line.contains("the passwd and group lines"), "{line}");
    assert!(line.contains("add `dircache` at the end of"), "{line}");
    let (_, checks) = host.check_json();
    assert_eq!(find(&checks, "nss-lookup").1, "skip");
    assert_eq!(find(&checks, "pam").1, "ok");
}

#[test]
fn pam_not_enabled_fails_and_names_pam_auth_update() {
    let (_server, host, _) = working_icewarp();
    fs::write(host.pam_dir.join("common-account"), "account required pam_unix.so\n").unwrap();
    let line = failed_line(&host.check(&[]), "pam");
    assert!(line.contains("missing from common-account"), "{line}");
    assert!(line.contains("pam-auth-update --enable dircache"), "{line}");
}

#[test]
fn the_lookup_fails_when_the_nss_module_reads_another_cache() {
    let (_server, host, _) = working_icewarp();
    let args = ["check", "--pam-dir", path(&host.pam_dir), "--nsswitch", path(&host.nsswitch)];
    // Without DIRCACHE_CACHE_DIR the NSS module reads /var/lib/dircache, not this cache.
    let line = failed_line(&host.env.cli(&args, ""), "nss-lookup");
    assert!(line.contains("the NSS module reads /var/lib/dircache"), "{line}");
    assert!(line.contains("set [cache] dir = \"/var/lib/dircache\""), "{line}");

    // The right directory, but glibc's real NSS, where no libnss_dircache answers.
    let cache = host.env.cache_dir();
    let out = host.env.cli_with_env(&args, "", &[("DIRCACHE_CACHE_DIR", path(&cache))]);
    let line = failed_line(&out, "nss-lookup");
    assert!(line.contains("does not find a user the cache has"), "{line}");
    assert!(line.contains("libnss_dircache.so.2 is installed"), "says what to do: {line}");
}

#[test]
fn subordinate_ids_over_uid_range_or_a_cached_id_are_warnings() {
    let (_server, host, _) = working_icewarp();
    let db = CacheDir::new(host.env.cache_dir()).load().unwrap();
    let user = &db.users[0];
    // Given to a local user after the sync: its subordinate uids hold a cached user's id.
    let (first, last) = (user.uid - 10, user.uid + 65_525);
    let subuid = host.env.dir.path().join("subuid");
    fs::write(&subuid, format!("ben:{first}:65536\n")).unwrap();
    // And login.defs is as Debian ships it: useradd gives 100000-600100000, and newuidmap is
    // installed, which makes them usable.
    fs::write(&host.login_defs, "SUB_UID_MIN\t\t   100000\nSUB_UID_MAX\t\t600100000\n").unwrap();
    fs::write(&host.newuidmap, "").unwrap();
    let (out, checks) = host.check_json();
    assert!(out.status.success(), "warnings are not failures\n{}", text(&out));
    let (_, status, message, hint) = find(&checks, "ids");
    assert_eq!(status, "warn", "{message}");
    let range = format!("local user ben's subordinate uids {first}-{last} ({})", subuid.display());
    assert!(
        message.contains(&format!(
            "ids inside {range} belong to dircache user {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        )),
        "the cached user with a subordinate id: {message}"
    );
    assert!(
        message.contains(&format!(
            "{range} overlaps unix.uid_range [1879048192, 2147352575]: ids there are never given to \
             dircache users, and a dircache user who already has one can be impersonated from a \
             user namespace"
        )),
        "{message}"
    );
    // The default uid_range is clear of what useradd gives (it was not before 1879048192).
    assert!(!message.contains("useradd gives"), "{message}");
    assert!(hint.contains("move uid_range or the subordinate ids"), "{hint}");
    let line = String::from_utf8_lossy(&host.check(&[]).stdout).to_string();
    assert!(line.contains("warn  ids"), "{line}");
}

#[test]
fn no_directory_is_a_warning_not_a_failure() {
    let host = Host::new("");
    let (out, checks) = host.check_json();
    assert!(out.status.success(), "{}", text(&out));
    let directory = find(&checks, "directory");
    assert_eq!(directory.1, "warn");
    assert!(directory.2.contains("directory.type is \"none\""), "{directory:?}");
    assert_eq!(find(&checks, "cache").1, "warn", "no cache yet");
    assert!(find(&checks, "cache").3.contains("dircache-sync sync"));
    assert_eq!(find(&checks, "last-sync").1, "skip");
}

#[test]
fn configured_tells_systemd_whether_to_run_the_sync() {
    let host = Host::new("");
    let out = host.env.cli(&["check", "--configured"], "");
    assert_eq!(out.status.code(), Some(1), "type none: skip the unit\n{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("directory.type is \"none\""));

    host.env.rewrite_extra_config(&icewarp_section("http://127.0.0.1:9/", ADMIN_PASSWORD, ""));
    let out = host.env.cli(&["check", "--configured"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    fs::write(&host.env.config, "[directory]\ntype = \"ldap\"\n").unwrap();
    let out = host.env.cli(&["check", "--configured"], "");
    assert_eq!(out.status.code(), Some(255), "invalid: fail the unit\n{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ldap"), "{}", text(&out));
}
