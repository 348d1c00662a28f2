//! End to end through Debian's OpenSSH server: in a private mount namespace, /etc/nsswitch.conf
//! and /etc/pam.d/sshd are replaced by bind-mounted copies that use dircache; sshd listens on
//! 127.0.0.1 (a high port) and `sshpass` + `ssh` log in as a synced IceWarp user, an
//! Application Integration user and a local dircache user, run `id` and check uid, groups
//! and home. A wrong password, a disabled user and a user without `login` are refused.
//! With an authorized SSH key (no password, so no `auth` step: only `account` decides), an
//! enabled user gets in and a disabled, expired or blocked one does not.
//! Nothing outside the namespace changes. Needs root (CI runs as root) and the packages
//! openssh-server and sshpass.

mod testbed;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use mock_directory::{Account, AppIntData, AppIntServer, IcewarpData, IcewarpServer};
use testbed::{artifact, text, Env};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether this machine can run the test; in CI it must.
fn runnable() -> bool {
    let missing: Vec<&str> =
        ["/usr/sbin/sshd", "/usr/bin/sshpass", "/usr/bin/ssh", "/usr/bin/unshare"]
            .into_iter()
            .filter(|tool| !Path::new(tool).exists())
            .collect();
    let ready = is_root() && missing.is_empty();
    let why = (!ready).then(|| format!("needs root and {missing:?}"));
    testbed::may_skip("the sshd test", why)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The "password" of an attempt that logs in with the test's SSH key instead.
const BY_KEY: &str = "";

/// Writes the namespace script: bind mounts, sshd, then one `ssh` per login attempt, each
/// printing `RESULT <name> <exit status>` and the remote output. An attempt with the
/// password [`BY_KEY`] offers the key `ssh_key` made, and only it.
fn script(env: &Env, port: u16, attempts: &[(&str, &str, &str)]) -> String {
    let work = env.dir.path();
    let nss_dir = work.join("nsslib");
    fs::create_dir_all(&nss_dir).unwrap();
    fs::copy(artifact("libnss_dircache.so"), nss_dir.join("libnss_dircache.so.2")).unwrap();
    let module = artifact("libpam_dircache.so");
    let config = env.config.display();
    fs::write(
        work.join("pam-sshd"),
        format!(
            "auth required {m} config={config}\naccount required {m} config={config}\n\
             password required {m} config={config}\nsession required {m} config={config}\n",
            m = module.display()
        ),
    )
    .unwrap();
    let nsswitch = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let edited: String = nsswitch
        .lines()
        .filter(|line| !line.starts_with("passwd:") && !line.starts_with("group:"))
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(
        work.join("nsswitch.conf"),
        format!("passwd: files dircache\ngroup: files dircache\n{edited}"),
    )
    .unwrap();
    let cache = env.cache_dir();
    let env_line =
        format!("LD_LIBRARY_PATH={} DIRCACHE_CACHE_DIR={}", nss_dir.display(), cache.display());
    fs::write(
        work.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nUsePAM yes\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication yes\nPermitRootLogin no\nPidFile {work}/sshd.pid\n\
             HostKey /etc/ssh/ssh_host_ed25519_key\nSetEnv {env_line}\nStrictModes no\n\
             LogLevel VERBOSE\nPrintMotd no\nPubkeyAuthentication yes\n\
             AuthorizedKeysFile {work}/authorized_keys/%u\n",
            work = work.display()
        ),
    )
    .unwrap();
    let mut lines = vec![
        "set -u".to_string(),
        format!("mount --bind {}/nsswitch.conf /etc/nsswitch.conf", work.display()),
        format!("mount --bind {}/pam-sshd /etc/pam.d/sshd", work.display()),
        "mount -t tmpfs tmpfs /run && mkdir -p /run/sshd".to_string(),
        format!("export {env_line}"),
        format!("/usr/sbin/sshd -D -e -f {}/sshd_config 2> {}/sshd.log &", work.display(), work.display()),
        format!("for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done"),
    ];
    for (label, user, password) in attempts {
        if password.is_empty() {
            lines.push(format!(
                "echo \"=== {label}\"; ssh -p {port} -i {key} -o IdentitiesOnly=yes -o BatchMode=yes \
                 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                 -o PreferredAuthentications=publickey -l {user:?} 127.0.0.1 \
                 'id; echo HOME=$HOME' 2>&1; echo \"RESULT {label} $?\"",
                key = work.join("id_ed25519").display()
            ));
            continue;
        }
        lines.push(format!(
            "echo \"=== {label}\"; SSHPASS={password:?} sshpass -e ssh -p {port} -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=keyboard-interactive,password \
             -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -l {user:?} 127.0.0.1 \
             'id; echo HOME=$HOME' 2>&1; echo \"RESULT {label} $?\""
        ));
    }
    lines.push("kill %1 2>/dev/null; wait".to_string());
    lines.join("\n") + "\n"
}

fn run_in_namespace(env: &Env, port: u16, attempts: &[(&str, &str, &str)]) -> String {
    let path = env.dir.path().join("run.sh");
    fs::write(&path, script(env, port, attempts)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash"])
        .arg(&path)
        .output()
        .unwrap();
    let log = fs::read_to_string(env.dir.path().join("sshd.log")).unwrap_or_default();
    format!("{}\n--- sshd log ---\n{log}", text(&out))
}

fn section<'a>(output: &'a str, label: &str) -> &'a str {
    let start =
        output.find(&format!("=== {label}\n")).unwrap_or_else(|| panic!("no {label} in\n{output}"));
    let rest = &output[start..];
    let end = rest.find("RESULT ").map_or(rest.len(), |i| i + rest[i..].find('\n').unwrap_or(0));
    &rest[..end]
}

fn succeeded(output: &str, label: &str) -> bool {
    output.contains(&format!("RESULT {label} 0\n"))
}

/// A fresh key pair in the test's directory, authorized for each of `users` (the
/// `AuthorizedKeysFile` of the test's sshd lies there too, so nothing under /home changes).
fn ssh_key(env: &Env, users: &[&str]) {
    let work = env.dir.path();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(work.join("id_ed25519"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let public = fs::read_to_string(work.join("id_ed25519.pub")).unwrap();
    let keys = work.join("authorized_keys");
    fs::create_dir_all(&keys).unwrap();
    for user in users {
        fs::write(keys.join(user), &public).unwrap();
    }
}

fn uid_of(env: &Env, name: &str) -> u64 {
    let out = env.cli(&["user", "show", name, "--json"], "");
    assert!(out.status.success(), "{}", text(&out));
    testbed::stdout_json(&out)["uid"].as_u64().unwrap()
}

#[test]
fn icewarp_and_local_users_log_in_through_sshd() {
    if !runnable() {
        return;
    }
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = \"admin@example.com\"\n\
         password = \"demo-admin-password\"\ntimeout_secs = 10\n",
        iw.url()
    ));
    let synced = env.cli(&["sync"], "");
    assert!(synced.status.success(), "{}", text(&synced));
    let local = env.cli(
        &["user", "add", "localdemo", "--privilege", "login", "--password-stdin"],
        "local-pw\n",
    );
    assert!(local.status.success(), "{}", text(&local));
    let nologin = env.cli(&["user", "set", "bob@example.com", "--revoke", "login"], "");
    assert!(nologin.status.success(), "{}", text(&nologin));

    let output = run_in_namespace(
        &env,
        free_port(),
        &[
            ("alice", "alice@example.com", "alice-password"),
            ("localdemo", "localdemo", "local-pw"),
            ("wrong", "alice@example.com", "not-her-password"),
            ("disabled", "carol@example.com", "carol-password"),
            ("nologin", "bob@example.com", "bob-password"),
        ],
    );
    println!("{output}");
    let alice_uid = uid_of(&env, "alice@example.com");
    let alice = section(&output, "alice");
    assert!(succeeded(&output, "alice"), "{output}");
    assert!(alice.contains(&format!("uid={alice_uid}(alice@example.com)")), "{output}");
    assert!(alice.contains("(staff@example.com)"), "the directory group is missing:\n{output}");
    assert!(alice.contains("HOME=/home/alice@example.com"), "{output}");
    let local_uid = uid_of(&env, "localdemo");
    assert!(succeeded(&output, "localdemo"), "{output}");
    assert!(
        section(&output, "localdemo").contains(&format!("uid={local_uid}(localdemo)")),
        "{output}"
    );
    for refused in ["wrong", "disabled", "nologin"] {
        assert!(!succeeded(&output, refused), "{refused} got in:\n{output}");
        assert!(!section(&output, refused).contains("uid="), "{refused} ran a command:\n{output}");
    }
    for password in
        ["alice-password", "local-pw", "not-her-password", "carol-password", "bob-password"]
    {
        assert!(!output.contains(password), "a password reached the sshd log or output:\n{output}");
    }
}

#[test]
fn application_integration_users_log_in_through_sshd() {
    if !runnable() {
        return;
    }
    let app = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[directory]\ntype = \"application-integration\"\nurl = {:?}\ntimeout_secs = 10\n",
        app.url()
    ));
    let synced = env.cli(&["sync"], "");
    assert!(synced.status.success(), "{}", text(&synced));
    let names = env.cli(&["user", "list", "--json"], "");
    let first = testbed::stdout_json(&names)[0]["name"].as_str().unwrap().to_string();
    let output =
        run_in_namespace(&env, free_port(), &[("appint", &first, &format!("{first}-password"))]);
    let uid = uid_of(&env, &first);
    assert!(succeeded(&output, "appint"), "{output}");
    assert!(section(&output, "appint").contains(&format!("uid={uid}({first})")), "{output}");
}

/// An SSH key login has no `auth` step: the `account` step alone must refuse a disabled,
/// expired or blocked account. Each keeps an authorized key.
#[test]
fn key_logins_are_refused_for_disabled_expired_and_blocked_accounts() {
    if !runnable() {
        return;
    }
    // carol is disabled in the demo directory.
    let data = IcewarpData::demo()
        .account(Account::user("erin@example.com", "Erin", "erin-password").blocked("1"))
        .account(
            Account::user("frank@example.com", "Frank", "frank-password").valid_till("2440600"),
        )
        .account(
            Account::user("gina@example.com", "Gina", "gina-password").valid_till("9999-12-31"),
        );
    let iw = IcewarpServer::start(data, None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = \"admin@example.com\"\n\
         password = \"demo-admin-password\"\ntimeout_secs = 10\n",
        iw.url()
    ));
    let synced = env.cli(&["sync"], "");
    assert!(synced.status.success(), "{}", text(&synced));
    let names = [
        "alice@example.com",
        "carol@example.com",
        "erin@example.com",
        "frank@example.com",
        "gina@example.com",
    ];
    ssh_key(&env, &names);
    let output = run_in_namespace(
        &env,
        free_port(),
        &[
            ("enabled", names[0], BY_KEY),
            ("disabled", names[1], BY_KEY),
            ("blocked", names[2], BY_KEY),
            ("expired", names[3], BY_KEY),
            ("valid-until-9999", names[4], BY_KEY),
        ],
    );
    println!("{output}");
    let alice_uid = uid_of(&env, names[0]);
    assert!(succeeded(&output, "enabled"), "{output}");
    assert!(section(&output, "enabled").contains(&format!("uid={alice_uid}(")), "{output}");
    assert!(succeeded(&output, "valid-until-9999"), "{output}");
    // The key was accepted; the account step refused, and said why.
    let log = output.split("--- sshd log ---").nth(1).unwrap_or_default();
    for (refused, name, why) in [
        ("disabled", names[1], "account disabled"),
        ("blocked", names[2], "account blocked"),
        ("expired", names[3], "account expired (since 1970-01-13)"),
    ] {
        assert!(!succeeded(&output, refused), "{refused} got in with a key:\n{output}");
        let shown = section(&output, refused);
        assert!(!shown.contains("uid="), "{refused} ran a command:\n{output}");
        assert!(shown.contains(why), "{refused}: the user is not told why:\n{output}");
        assert!(log.contains(&format!("authorized_keys/{name}:1")), "{name}: {log}");
        assert!(
            log.contains(&format!("Access denied for user {name} by PAM account configuration")),
            "{name}: {log}"
        );
    }
}
