//! The PAM stack the package's pam-auth-update profiles produce, run through the real libpam,
//! the real pam_unix and glibc's NSS with libnss_dircache (no wrapper). `pam-auth-update
//! --root` builds common-auth, -account and -password from this system's pam_unix profile
//! and packaging/pam-config(-password); in a private mount namespace (root, `unshare -m`) a
//! copy of /etc is mounted over /etc, holding those files, a local user with a password in
//! /etc/shadow, stale /etc/shadow entries for two directory users' names (what a pam_unix
//! that finds a shadow entry would accept), and `passwd: files dircache`; variants of the
//! stack read an invalid dircache configuration, or give pam_unix `broken_shadow`.
//! pamtester then logs in. What each control line is for is in SECURITY.md, "The PAM
//! stack".

mod nss_fixture;
mod testbed;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mock_directory::{IcewarpData, IcewarpServer};
use nss_fixture::module_dir;
use testbed::{artifact, namespace_or_skip, text, Env};

const SERVICE: &str = "dircache-stack";
const LOCAL_USER: &str = "stacklocal";
const LOCAL_PASSWORD: &str = "Local-Pw-4242";
/// What /etc/shadow holds for `alice@example.com` and `bob@example.com`: not their
/// directory passwords.
const STALE_PASSWORD: &str = "Stale-Shadow-Pw-1";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A SHA-512 crypt(3) hash for /etc/shadow, made by glibc's crypt through perl.
fn shadow_hash(password: &str) -> String {
    run(Command::new("perl").args(["-e", "print crypt($ARGV[0], '$6$dircachestack$')", password]))
}

fn shadow_line(name: &str, password: &str) -> String {
    format!("{name}:{}:19000:0:99999:7:::\n", shadow_hash(password))
}

/// common-auth, -account and -password as `pam-auth-update --enable dircache
/// dircache-password` writes them next to this system's pam_unix profile. It runs in its own
/// namespace over a copy of the debconf database, which it would otherwise write to.
fn generated_stack(work: &Path) -> Vec<(String, String)> {
    let root = work.join("pam-root");
    let configs = root.join("usr/share/pam-configs");
    for dir in [&configs, &root.join("etc/pam.d"), &root.join("var/lib/pam")] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::copy("/usr/share/pam-configs/unix", configs.join("unix")).unwrap();
    fs::copy(workspace().join("packaging/pam-config"), configs.join("dircache")).unwrap();
    let password_profile = workspace().join("packaging/pam-config-password");
    if password_profile.exists() {
        fs::copy(password_profile, configs.join("dircache-password")).unwrap();
    }
    run(Command::new("cp").arg("-a").arg("/var/cache/debconf").arg(work.join("debconf")));
    run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"mount --bind "$1/debconf" /var/cache/debconf || exit 99
               pam-auth-update --root "$1/pam-root" --force --enable dircache dircache-password"#,
        )
        .arg("sh")
        .arg(work)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    ["auth", "account", "password"]
        .iter()
        .map(|kind| {
            let path = root.join(format!("etc/pam.d/common-{kind}"));
            (kind.to_string(), fs::read_to_string(path).unwrap())
        })
        .collect()
}

/// The machine's /etc with the generated stack (pam_dircache at the built module and this
/// test's configuration), the accounts and nsswitch.conf described at the top; services:
/// `SERVICE`, and `SERVICE-broken-config` whose pam_dircache reads an invalid configuration.
fn etc_copy(env: &Env, stack: &[(String, String)]) -> PathBuf {
    let etc = env.dir.path().join("etc");
    run(Command::new("cp").arg("-a").arg("/etc").arg(&etc));
    let module = artifact("libpam_dircache.so");
    let broken = env.dir.path().join("broken.toml");
    fs::write(&broken, "[sync]\ncolour = \"blue\"\n").unwrap();
    fs::set_permissions(&broken, fs::Permissions::from_mode(0o600)).unwrap();
    let pam_d = etc.join("pam.d");
    let variants = [
        ("", &env.config, false),
        ("-broken-config", &broken, false),
        ("-broken-shadow", &env.config, true),
    ];
    for (variant, config, broken_shadow) in variants {
        let mut service = String::new();
        for (kind, text) in stack {
            let mut text = text.replace(
                "pam_dircache.so",
                &format!("{} config={}", module.display(), config.display()),
            );
            if broken_shadow && kind == "account" {
                text = text.replace("pam_unix.so", "pam_unix.so broken_shadow");
            }
            service.push_str(&format!("# common-{kind}\n{text}\n"));
        }
        fs::write(pam_d.join(format!("{SERVICE}{variant}")), service).unwrap();
    }
    let mut passwd = fs::read_to_string(etc.join("passwd")).unwrap();
    passwd.push_str(&format!("{LOCAL_USER}:x:4242:4242::/nonexistent:/usr/sbin/nologin\n"));
    fs::write(etc.join("passwd"), passwd).unwrap();
    let mut shadow = fs::read_to_string(etc.join("shadow")).unwrap();
    shadow.push_str(&shadow_line(LOCAL_USER, LOCAL_PASSWORD));
    shadow.push_str(&shadow_line("alice@example.com", STALE_PASSWORD));
    shadow.push_str(&shadow_line("bob@example.com", STALE_PASSWORD));
    fs::write(etc.join("shadow"), shadow).unwrap();
    let nsswitch: String = fs::read_to_string(etc.join("nsswitch.conf"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !["passwd:", "group:", "shadow:"].iter().any(|db| line.starts_with(db)))
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(
        etc.join("nsswitch.conf"),
        format!("passwd: files dircache\ngroup: files dircache\nshadow: files\n{nsswitch}"),
    )
    .unwrap();
    etc
}

/// One pamtester run: a label, the service suffix, the user, the operations and the lines
/// typed.
struct Attempt {
    label: &'static str,
    service: &'static str,
    user: &'static str,
    operations: &'static str,
    typed: &'static [&'static str],
}

const fn attempt(
    label: &'static str,
    service: &'static str,
    user: &'static str,
    operations: &'static str,
    typed: &'static [&'static str],
) -> Attempt {
    Attempt { label, service, user, operations, typed }
}

/// Runs every attempt in one namespace with the /etc copy mounted; returns the output, in
/// which each attempt is `=== label`, pamtester's lines, `RESULT label <exit status>`.
fn logins(env: &Env, etc: &Path, attempts: &[Attempt]) -> String {
    let mut script =
        vec!["set -u".to_string(), format!("mount --bind {} /etc || exit 99", etc.display())];
    for a in attempts {
        let typed: String = a.typed.iter().map(|line| format!(" '{line}'")).collect();
        script.push(format!(
            "echo '=== {label}'; printf '%s\\n'{typed} | pamtester -v {SERVICE}{service} \
             '{user}' {operations} 2>&1; echo \"RESULT {label} $?\"",
            label = a.label,
            service = a.service,
            user = a.user,
            operations = a.operations,
        ));
    }
    let path = env.dir.path().join("logins.sh");
    fs::write(&path, script.join("\n") + "\n").unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash"])
        .arg(&path)
        .env("LD_LIBRARY_PATH", module_dir(env.dir.path()))
        .env("DIRCACHE_CACHE_DIR", env.cache_dir())
        .env_remove("DIRCACHE_LOCAL_PASSWD")
        .env_remove("DIRCACHE_LOCAL_GROUP")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    text(&out)
}

fn result(output: &str, label: &str) -> i32 {
    let prefix = format!("RESULT {label} ");
    output
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|code| code.trim().parse().ok())
        .unwrap_or_else(|| panic!("no result for {label}:\n{output}"))
}

#[test]
fn the_packaged_stack_lets_dircache_decide_its_users_and_pam_unix_the_local_ones() {
    if !namespace_or_skip(
        "the_packaged_stack_lets_dircache_decide_its_users_and_pam_unix_the_local_ones",
    ) {
        return;
    }
    testbed::require_tool("/usr/bin/pamtester", "pamtester");
    testbed::require_tool("/usr/sbin/pam-auth-update", "libpam-runtime");
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = \"admin@example.com\"\n\
         password = \"demo-admin-password\"\ntimeout_secs = 10\n",
        iw.url()
    ));
    for (args, stdin) in [
        (&["sync"][..], ""),
        (&["user", "set", "bob@example.com", "--revoke", "login"][..], ""),
        (
            &[
                "user",
                "add",
                "stackdemo",
                "--privilege",
                "login",
                "--privilege",
                "change_password",
                "--password-stdin",
            ][..],
            "Demo-Pw-1\n",
        ),
    ] {
        let out = env.cli(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let stack = generated_stack(env.dir.path());
    let stack_text: String = stack.iter().map(|(_, text)| text.as_str()).collect();
    assert!(stack_text.contains("pam_dircache.so") && stack_text.contains("pam_unix.so"));
    let etc = etc_copy(&env, &stack);

    let attempts = [
        // Local users: pam_unix decides, dircache says "not mine".
        attempt("local", "", LOCAL_USER, "authenticate acct_mgmt", &[LOCAL_PASSWORD]),
        attempt("local-wrong", "", LOCAL_USER, "authenticate", &["not-it"]),
        // Directory users: dircache decides, whatever /etc/shadow holds for the name.
        attempt("alice", "", "alice@example.com", "authenticate acct_mgmt", &["alice-password"]),
        attempt("alice-stale", "", "alice@example.com", "authenticate", &[STALE_PASSWORD]),
        attempt("alice-wrong", "", "alice@example.com", "authenticate", &["not-it"]),
        // The account step alone (as after an SSH key): pam_unix would accept bob (his
        // shadow entry is fine), dircache refuses him (no `login` privilege).
        attempt("bob-account", "", "bob@example.com", "acct_mgmt", &[]),
        attempt("carol", "", "carol@example.com", "authenticate acct_mgmt", &["carol-password"]),
        // pam_unix with broken_shadow, which passes users without a shadow entry.
        attempt("carol-broken-shadow", "-broken-shadow", "carol@example.com", "acct_mgmt", &[]),
        attempt("bob-broken-shadow", "-broken-shadow", "bob@example.com", "acct_mgmt", &[]),
        attempt("local-broken-shadow", "-broken-shadow", LOCAL_USER, "acct_mgmt", &[]),
        attempt("nobody", "", "nobody@example.com", "authenticate", &["x"]),
        // A broken dircache: local users still log in; dircache's own users, which the
        // system still resolves through libnss_dircache, are refused, not handed to pam_unix.
        attempt(
            "local-broken",
            "-broken-config",
            LOCAL_USER,
            "authenticate acct_mgmt",
            &[LOCAL_PASSWORD],
        ),
        attempt(
            "alice-broken",
            "-broken-config",
            "alice@example.com",
            "authenticate",
            &[STALE_PASSWORD],
        ),
        attempt("alice-broken-account", "-broken-config", "alice@example.com", "acct_mgmt", &[]),
        // Password changes: pam_unix keeps its own prompt for local users (dircache after
        // it), dircache changes its local users' passwords, directory users are refused.
        attempt("local-passwd", "", LOCAL_USER, "chauthtok", &["New-Local-Pw-7", "New-Local-Pw-7"]),
        attempt("local-new", "", LOCAL_USER, "authenticate acct_mgmt", &["New-Local-Pw-7"]),
        attempt(
            "demo-passwd",
            "",
            "stackdemo",
            "chauthtok",
            &["Demo-Pw-1", "New-Demo-Pw-2", "New-Demo-Pw-2"],
        ),
        attempt("demo-new", "", "stackdemo", "authenticate acct_mgmt", &["New-Demo-Pw-2"]),
        attempt(
            "alice-passwd",
            "",
            "alice@example.com",
            "chauthtok",
            &["alice-password", "x1", "x1"],
        ),
    ];
    let output = logins(&env, &etc, &attempts);
    println!("{stack_text}\n{output}");
    let expected_in = [
        "local",
        "local-broken-shadow",
        "alice",
        "local-broken",
        "local-passwd",
        "local-new",
        "demo-passwd",
        "demo-new",
    ];
    let mut wrong = Vec::new();
    for a in &attempts {
        let code = result(&output, a.label);
        if (code == 0) != expected_in.contains(&a.label) {
            wrong.push(format!("{} (exit {code})", a.label));
        }
    }
    assert!(wrong.is_empty(), "unexpected outcomes: {}\n{stack_text}\n{output}", wrong.join(", "));
    for password in ["alice-password", STALE_PASSWORD, LOCAL_PASSWORD, "demo-admin-password"] {
        assert!(!output.contains(password), "{password} was printed:\n{output}");
    }
}
