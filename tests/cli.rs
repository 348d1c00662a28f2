//! `dircache-sync user …` as an administrator or a script runs it: the real binary, a real
//! configuration file and a real cache directory in a temporary directory.
//!
//! The binary belongs to another package of the workspace, so `cargo test` does not build it
//! for this test: run `cargo build --workspace` first.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;

use dircache::cache::CacheDir;
use dircache::passwords::verify_password;
use dircache::user::UserView;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The test runs from `<target>/<profile>/deps/`; the binary is built into
/// `<target>/<profile>/`. Deriving the directory from the test's own path follows
/// `CARGO_TARGET_DIR`, `--release` and `--target` without guessing.
fn binary() -> PathBuf {
    let profile_dir = env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(fallback_profile_dir);
    let path = profile_dir.join("dircache-sync");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` (with the same profile) before `cargo \
         test`; the binary is in another package, so this test cannot build it",
        path.display()
    );
    assert_built_after_sources(&path);
    path
}

/// `cargo test` rebuilds the library for this test but not the binary, so a stale binary
/// would be tested against a newer library (and cache format). Cargo's dep-info file beside
/// the binary lists exactly the sources it was built from.
fn assert_built_after_sources(binary: &Path) {
    let Ok(dep_info) = fs::read_to_string(binary.with_extension("d")) else {
        return;
    };
    let built = fs::metadata(binary).unwrap().modified().unwrap();
    let sources = dep_info.split_once(": ").map_or("", |(_, sources)| sources);
    // Cargo escapes spaces in paths as "\ ".
    for source in sources.replace("\\ ", "\0").split_whitespace() {
        let source = PathBuf::from(source.replace('\0', " "));
        let Ok(modified) = fs::metadata(&source).and_then(|m| m.modified()) else {
            continue;
        };
        assert!(
            modified <= built,
            "{} is older than {}: run `cargo build --workspace` before `cargo test`",
            binary.display(),
            source.display()
        );
    }
}

fn fallback_profile_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest.join("target"), |dir| manifest.join(dir));
    target.join("debug")
}

/// Small argon2 parameters keep the tests fast; everything else is the real thing.
const FAST_PASSWORDS: &str = "[passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n";

struct Setup {
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_extra_config("")
    }

    /// `extra` is appended to a working configuration (it may add tables, not keys to the
    /// tables already written).
    fn with_extra_config(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        fs::write(root.join("group"), "root:x:0:\n").unwrap();
        let text = format!(
            "[cache]\ndir = {cache:?}\n\n[unix]\nlocal_passwd = {passwd:?}\nlocal_group = \
             {group:?}\nlocal_subuid = {subuid:?}\nlocal_subgid = {subgid:?}\nhome = {home:?}\n\n\
             {FAST_PASSWORDS}\n{extra}",
            cache = root.join("cache"),
            passwd = root.join("passwd"),
            group = root.join("group"),
            subuid = root.join("subuid"),
            subgid = root.join("subgid"),
            home = format!("{}/home/{{name}}", root.display()),
        );
        let config = write_private(root, "dircache.toml", &text);
        Setup { dir, config }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cache(&self) -> CacheDir {
        CacheDir::new(self.root().join("cache"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("DIRCACHE_CONFIG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command refused early exits without reading its input.
        match child.stdin.take().unwrap().write_all(input) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("{e}"),
            _ => {}
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    fn fail(&self, args: &[&str]) -> String {
        failed(args, self.run(args))
    }

    fn add_with_password(&self, name: &str, password: &str, more: &[&str]) {
        let args = [&["user", "add", name, "--password-stdin"], more].concat();
        let input = format!("{password}\n");
        succeeded(&args, self.run_with_stdin(&args, input.as_bytes()));
    }

    fn show(&self, name: &str) -> Value {
        parse_json(&self.ok(&["user", "show", name, "--json"]))
    }

    fn list(&self) -> Vec<Value> {
        match parse_json(&self.ok(&["user", "list", "--json"])) {
            Value::Array(users) => users,
            other => panic!("user list --json printed {other}, not an array"),
        }
    }

    fn names(&self) -> Vec<String> {
        self.list().iter().map(|user| user["name"].as_str().unwrap().to_string()).collect()
    }

    fn stored_hash(&self, name: &str) -> String {
        let db = self.cache().load().unwrap();
        db.user(name).unwrap().password_hash.clone().unwrap()
    }
}

fn write_private(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "{args:?} failed with {}: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// An error is exit status 1 and exactly one line on stderr, prefixed with the program name.
fn failed(args: &[&str], output: Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} should fail with 1; stdout {:?}, stderr {stderr:?}",
        text(&output.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.starts_with("dircache-sync: "), "{stderr:?}");
    stderr
}

/// Also checks that no secret material is in the output.
fn parse_json(stdout: &str) -> Value {
    assert!(!stdout.contains("argon2"), "{stdout}");
    assert!(!stdout.contains("password_hash"), "{stdout}");
    serde_json::from_str(stdout).unwrap()
}

fn uid_of(user: &Value) -> u64 {
    user["uid"].as_u64().unwrap()
}

#[test]
fn add_with_a_password_then_show_every_field() {
    let setup = Setup::new();
    let args = [
        "user",
        "add",
        "alice",
        "--full-name",
        "Alice Liddell",
        "--email",
        "alice@example.com",
        "--email",
        "al@example.org",
        "--password-stdin",
    ];
    let output = setup.run_with_stdin(&args, b"wonder land\n");
    let stdout = succeeded(&args, output);
    assert!(stdout.starts_with("added alice (uid "), "{stdout}");

    let user = setup.show("alice");
    let home = format!("{}/home/alice", setup.root().display());
    assert_eq!(user["name"], "alice");
    assert_eq!(user["full_name"], "Alice Liddell");
    assert_eq!(user["emails"], json!(["alice@example.com", "al@example.org"]));
    assert_eq!(user["auth"], "local");
    assert_eq!(user["has_password"], true);
    assert_eq!(user["privileges"], json!(["login", "read_own_archive"]));
    assert_eq!(user["enabled"], true);
    assert_eq!(user["origin"], "manual");
    assert!((1_879_048_192..=2_147_352_575).contains(&uid_of(&user)), "{user}");
    assert_eq!(user["gid"], user["uid"]);
    assert_eq!(user["home"], home.as_str());
    assert_eq!(user["shell"], "/bin/bash");
    assert_eq!(user["groups"], json!([]));
    // The documented shape, as the library defines it.
    serde_json::from_value::<UserView>(user.clone()).unwrap();

    let hash = setup.stored_hash("alice");
    assert!(verify_password(b"wonder land", &hash).unwrap());
    assert!(!verify_password(b"wonder land\n", &hash).unwrap());
}

#[test]
fn show_without_json_prints_key_value_lines() {
    let setup = Setup::new();
    setup.add_with_password("alice", "pw", &["--email", "alice@example.com"]);
    let shown = setup.ok(&["user", "show", "ALICE"]);
    assert!(shown.starts_with("name: alice\n"), "{shown}");
    assert!(shown.contains("\nemails: alice@example.com\n"), "{shown}");
    assert!(shown.contains("\nprivileges: login, read_own_archive\n"), "{shown}");
    assert!(shown.contains("\nhas_password: yes\n"), "{shown}");
    assert!(!shown.contains("argon2"), "{shown}");
}

#[test]
fn add_with_privileges_or_the_configured_defaults() {
    let setup =
        Setup::with_extra_config("[sync]\ndefault_privileges = [\"login\", \"export_email\"]\n");
    setup.ok(&[
        "user",
        "add",
        "bob",
        "--auth",
        "directory",
        "--privilege",
        "archive_email",
        "--privilege",
        "login",
    ]);
    setup.ok(&["user", "add", "carol", "--auth", "directory"]);
    assert_eq!(setup.show("bob")["privileges"], json!(["login", "archive_email"]));
    assert_eq!(setup.show("carol")["privileges"], json!(["login", "export_email"]));
    assert_eq!(setup.show("carol")["auth"], "directory");
    assert_eq!(setup.show("carol")["has_password"], false);
}

#[test]
fn add_without_a_terminal_or_password_creates_a_user_who_cannot_log_in_yet() {
    let setup = Setup::new();
    let output = setup.run(&["user", "add", "dave"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot log in until `dircache-sync user passwd dave`"), "{stderr}");
    let user = setup.show("dave");
    assert_eq!(user["auth"], "local");
    assert_eq!(user["has_password"], false);
}

#[test]
fn list_is_sorted_by_name_in_json_and_as_a_table() {
    let setup = Setup::new();
    for name in ["zed", "Bob", "alice"] {
        setup.ok(&["user", "add", name, "--auth", "directory"]);
    }
    assert_eq!(setup.names(), ["alice", "Bob", "zed"]);

    let table = setup.ok(&["user", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(lines[1].starts_with("alice "), "{table}");
    let uid_column = lines[0].find("UID").unwrap();
    let alice = &setup.list()[0];
    assert_eq!(lines[1].find(&uid_of(alice).to_string()), Some(uid_column));
}

#[test]
fn a_fresh_cache_lists_no_users() {
    let setup = Setup::new();
    assert_eq!(setup.ok(&["user", "list", "--json"]).trim(), "[]");
    assert_eq!(setup.list(), Vec::<Value>::new());
    let table = setup.ok(&["user", "list"]);
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
    let stderr = setup.fail(&["user", "show", "alice"]);
    assert!(stderr.contains("no user \"alice\""), "{stderr}");
}

#[test]
fn set_changes_only_what_is_given() {
    let setup = Setup::new();
    setup.add_with_password("alice", "pw", &["--full-name", "Alice", "--email", "a@x.org"]);
    let before = setup.show("alice");

    setup.ok(&[
        "user",
        "set",
        "alice",
        "--grant",
        "change_password",
        "--grant",
        "admin",
        "--revoke",
        "read_own_archive",
        "--disable",
        "--email",
        "b@x.org",
        "--email",
        "c@x.org",
    ]);
    let after = setup.show("alice");
    assert_eq!(after["privileges"], json!(["login", "change_password", "admin"]));
    assert_eq!(after["enabled"], false);
    assert_eq!(after["emails"], json!(["b@x.org", "c@x.org"]));
    for unchanged in ["full_name", "auth", "has_password", "uid", "home", "created_at"] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }

    setup.ok(&["user", "set", "alice", "--enable", "--auth", "directory"]);
    let after = setup.show("alice");
    assert_eq!(after["enabled"], true);
    assert_eq!(after["auth"], "directory");
    assert_eq!(after["has_password"], false, "a directory user keeps no hash");
    assert!(setup.cache().load().unwrap().users[0].password_hash.is_none());
}

#[test]
fn set_refuses_contradictions_unknown_users_and_nothing_to_do() {
    let setup = Setup::new();
    setup.ok(&["user", "add", "alice", "--auth", "directory"]);
    let stderr = setup.fail(&["user", "set", "alice", "--grant", "admin", "--revoke", "admin"]);
    assert!(stderr.contains("admin is both granted and revoked"), "{stderr}");
    setup.fail(&["user", "set", "nobody", "--disable"]);
    let usage = setup.run(&["user", "set", "alice"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = setup.run(&["user", "set", "alice", "--enable", "--disable"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn passwd_from_stdin_replaces_the_stored_hash() {
    let setup = Setup::new();
    setup.add_with_password("alice", "first secret", &[]);
    let old_hash = setup.stored_hash("alice");

    let args = ["user", "passwd", "alice", "--password-stdin"];
    let stdout = succeeded(&args, setup.run_with_stdin(&args, b"second secret\r\n"));
    assert!(!stdout.contains("second"), "{stdout}");

    let new_hash = setup.stored_hash("alice");
    assert_ne!(new_hash, old_hash);
    assert!(verify_password(b"second secret", &new_hash).unwrap());
    assert!(!verify_password(b"first secret", &new_hash).unwrap());
}

#[test]
fn passwords_that_cannot_be_set_are_refused() {
    let setup = Setup::new();
    setup.add_with_password("alice", "pw", &[]);
    setup.ok(&["user", "add", "bob", "--auth", "directory"]);

    let args = ["user", "passwd", "alice", "--password-stdin"];
    let stderr = failed(&args, setup.run_with_stdin(&args, b"\n"));
    assert!(stderr.contains("empty"), "{stderr}");
    assert!(verify_password(b"pw", &setup.stored_hash("alice")).unwrap());

    let stderr = setup.fail(&["user", "passwd", "alice"]);
    assert!(stderr.contains("--password-stdin"), "{stderr}");

    let args = ["user", "passwd", "bob", "--password-stdin"];
    let stderr = failed(&args, setup.run_with_stdin(&args, b"pw\n"));
    assert!(stderr.contains("directory"), "{stderr}");

    let args = ["user", "add", "carol", "--auth", "directory", "--password-stdin"];
    let stderr = failed(&args, setup.run_with_stdin(&args, b"pw\n"));
    assert!(stderr.contains("--auth directory"), "{stderr}");

    let args = ["user", "passwd", "nobody", "--password-stdin"];
    failed(&args, setup.run_with_stdin(&args, b"pw\n"));
    assert_eq!(setup.names(), ["alice", "bob"]);
}

#[test]
fn delete_removes_the_entry_but_keeps_files() {
    let setup = Setup::new();
    setup.add_with_password("alice", "pw", &[]);
    let uid = uid_of(&setup.show("alice"));
    let home = setup.root().join("home/alice");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join("notes.txt"), "keep me").unwrap();

    let stdout = setup.ok(&["user", "delete", "alice"]);
    assert!(stdout.starts_with(&format!("deleted alice (uid {uid})")), "{stdout}");
    assert!(stdout.contains("kept"), "{stdout}");
    assert_eq!(fs::read_to_string(home.join("notes.txt")).unwrap(), "keep me");

    let stderr = setup.fail(&["user", "show", "alice", "--json"]);
    assert!(stderr.contains("no user \"alice\""), "{stderr}");
    setup.fail(&["user", "delete", "alice"]);

    setup.add_with_password("alice", "pw", &[]);
    assert_ne!(uid_of(&setup.show("alice")), uid, "a deleted uid is never reused");
}

#[test]
fn local_accounts_bad_names_and_duplicates_are_refused() {
    let setup = Setup::new();
    // root is local too, but refused first as a name with system meaning, as admin and
    // docker are although no local account has them.
    for name in ["root", "Root", "admin", "docker", "systemd-x"] {
        let stderr = setup.fail(&["user", "add", name, "--auth", "directory"]);
        assert!(stderr.contains("has a meaning on this host"), "{stderr}");
    }
    for name in ["a:b", "a/b", "..", ".", "x;id", "$(reboot)", "a*b", "a b", "Émile"] {
        let stderr = setup.fail(&["user", "add", name, "--auth", "directory"]);
        assert!(stderr.contains("invalid user name"), "{name}: {stderr}");
    }
    setup.ok(&["user", "add", "alice", "--auth", "directory"]);
    for name in ["alice", "ALICE"] {
        let stderr = setup.fail(&["user", "add", name, "--auth", "directory"]);
        assert!(stderr.contains("already exists"), "{stderr}");
    }
    // Refused before any password is read, and nothing is written.
    let args = ["user", "add", "root", "--password-stdin"];
    failed(&args, setup.run_with_stdin(&args, b"pw\n"));
    assert_eq!(setup.names(), ["alice"]);
}

#[test]
fn add_never_gives_a_subordinate_id_and_an_unreadable_subuid_file_is_an_error() {
    let setup = Setup::new();
    // "manual:alice" hashes to 1884553613 in the default uid_range, inside carl's range.
    fs::write(setup.root().join("subuid"), "ben:165536:65536\ncarl:1884553600:65536\n").unwrap();
    let stdout = setup.ok(&["user", "add", "alice", "--auth", "directory"]);
    assert_eq!(stdout.trim(), "added alice (uid 1884619136)");
    // An unreadable file is not "no subordinate ids": nothing is added.
    fs::remove_file(setup.root().join("subuid")).unwrap();
    fs::create_dir(setup.root().join("subgid")).unwrap();
    let stderr = setup.fail(&["user", "add", "bob", "--auth", "directory"]);
    assert!(stderr.contains(&format!("cannot read {}", setup.root().join("subgid").display())));
    assert_eq!(setup.names(), ["alice"]);
}

#[test]
fn an_unknown_privilege_is_a_usage_error() {
    let setup = Setup::new();
    let output = setup.run(&["user", "add", "alice", "--privilege", "logon"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("logon"), "{stderr}");
    assert!(stderr.contains("read_own_archive"), "{stderr}");
    let output = setup.run(&["user", "add", "alice", "--auth", "ldap"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(setup.list(), Vec::<Value>::new());
}

#[test]
fn a_config_with_an_unknown_key_names_the_key_and_line() {
    let setup = Setup::new();
    let config = write_private(
        setup.root(),
        "typo.toml",
        "[cache]\ndir = \"/tmp/x\"\nlock_timeuot_secs = 5\n",
    );
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["user", "list"])
        .output()
        .unwrap();
    let stderr = failed(&["user", "list"], output);
    assert!(stderr.contains("lock_timeuot_secs"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn a_readable_config_with_a_password_is_refused() {
    let setup = Setup::new();
    let config = setup.root().join("open.toml");
    fs::write(&config, "[directory]\nusername = \"admin\"\npassword = \"hunter2\"\n").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["user", "list"])
        .output()
        .unwrap();
    let stderr = failed(&["user", "list"], output);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn the_config_path_can_come_from_the_environment() {
    let setup = Setup::new();
    setup.ok(&["user", "add", "alice", "--auth", "directory"]);
    let output = Command::new(binary())
        .env("DIRCACHE_CONFIG", &setup.config)
        .args(["user", "list", "--json"])
        .output()
        .unwrap();
    let stdout = succeeded(&["user", "list"], output);
    assert_eq!(parse_json(&stdout)[0]["name"], "alice");
}

#[test]
fn cache_files_have_the_documented_modes() {
    let setup = Setup::new();
    setup.add_with_password("alice", "pw", &[]);
    let current = setup.cache().current_dir().unwrap().unwrap();
    for (file, mode) in [
        ("users.private", 0o600),
        ("meta.json", 0o600),
        ("users.public", 0o644),
        ("groups.public", 0o644),
    ] {
        let actual = fs::metadata(current.join(file)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(actual, mode, "{file} has mode {actual:04o}");
    }
    let public = fs::read(current.join("users.public")).unwrap();
    assert!(!String::from_utf8_lossy(&public).contains("argon2"));
}

#[test]
fn parallel_adds_lose_no_write() {
    let setup = Setup::new();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let command = |name: &str| setup.command(&["user", "add", name, "--auth", "directory"]);
            let commands: Vec<(String, Command)> = (0..10)
                .map(|n| {
                    let name = format!("t{thread}-user{n}");
                    let command = command(&name);
                    (name, command)
                })
                .collect();
            thread::spawn(move || {
                for (name, mut command) in commands {
                    let output = command.output().unwrap();
                    assert!(
                        output.status.success(),
                        "adding {name} failed: {}",
                        text(&output.stderr)
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let names: BTreeSet<String> = setup.names().into_iter().collect();
    let expected: BTreeSet<String> =
        (0..4).flat_map(|t| (0..10).map(move |n| format!("t{t}-user{n}"))).collect();
    assert_eq!(names, expected);
    let uids: BTreeSet<u64> = setup.list().iter().map(uid_of).collect();
    assert_eq!(uids.len(), 40, "every user has its own uid");
}
