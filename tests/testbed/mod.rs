//! The test bed of the integration tests: where the built artifacts are, a throwaway
//! configuration, and real libpam through pam_wrapper + pamtester.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};

/// pam_wrapper 1.1.4 picks its temporary service directory by checking a name and then
/// creating it, without a lock, and removes it when the process exits: two pamtester
/// processes started at once can share one, read each other's service files, or lose them
/// mid-start ("no default config other", seen in CI). Logins through pamtester therefore run
/// one at a time; tests that need parallel logins call `dircache::pam` from threads.
pub static PAMTESTER: Mutex<()> = Mutex::new(());

pub const PAM_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";

/// target/debug of this workspace (or of CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    base.join("debug")
}

/// A built artifact; a missing one fails the test with the command that builds it.
pub fn artifact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

pub fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: `apt-get install -y {package}` (see README)"
    );
}

/// A configuration, a cache directory and a fake /etc/passwd in a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        Env::with_extra_config("")
    }

    pub fn with_extra_config(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\n")
            .unwrap();
        fs::write(dir.path().join("group"), "root:x:0:\n").unwrap();
        let config = dir.path().join("dircache.toml");
        let env = Env { dir, config };
        env.rewrite_extra_config(extra);
        env
    }

    /// Rewrites the configuration with the same `[cache]`, `[unix]` and `[passwords]`
    /// sections and this `extra` text (e.g. another `[directory]`).
    pub fn rewrite_extra_config(&self, extra: &str) {
        let text = format!(
            "[cache]\ndir = {:?}\n\n[unix]\nlocal_passwd = {:?}\nlocal_group = {:?}\n\
             local_subuid = {:?}\nlocal_subgid = {:?}\n\n\
             [passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{extra}",
            self.cache_dir(),
            self.dir.path().join("passwd"),
            self.dir.path().join("group"),
            self.dir.path().join("subuid"),
            self.dir.path().join("subgid"),
        );
        fs::write(&self.config, text).unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs `dircache-sync --config … ARGS` with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        self.cli_with_env(args, stdin, &[])
    }

    /// [`Env::cli`] with more environment variables.
    pub fn cli_with_env(&self, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Output {
        let mut command = Command::new(artifact("dircache-sync"));
        command.arg("--config").arg(&self.config).args(args).envs(vars.iter().copied());
        run_with_stdin(&mut command, stdin)
    }

    /// Writes a PAM service `name` whose every stack is pam_dircache with `args`.
    pub fn pam_service(&self, name: &str, args: &str) -> PathBuf {
        let services = self.dir.path().join("pam.d");
        fs::create_dir_all(&services).unwrap();
        let module = artifact("libpam_dircache.so");
        let line = |kind: &str| {
            format!(
                "{kind} required {} config={} {args}\n",
                module.display(),
                self.config.display()
            )
        };
        let stack: String =
            ["auth", "account", "password", "session"].iter().map(|k| line(k)).collect();
        fs::write(services.join(name), stack).unwrap();
        let deny: String = ["auth", "account", "password", "session"]
            .iter()
            .map(|k| format!("{k} required pam_deny.so\n"))
            .collect();
        fs::write(services.join("other"), deny).unwrap();
        services
    }

    /// Runs pamtester in the real libpam (through pam_wrapper) and returns its output.
    pub fn pamtester(&self, service: &str, user: &str, operations: &[&str], stdin: &str) -> Output {
        self.pamtester_with_env(service, user, operations, stdin, &[])
    }

    /// [`Env::pamtester`] with more environment variables, e.g. `PAM_WRAPPER_DEBUGLEVEL=2` to
    /// see every syslog line of the module on stderr, down to LOG_DEBUG, not only the errors
    /// (level 3 also traces pam_wrapper itself, which prints PAM_AUTHTOK).
    pub fn pamtester_with_env(
        &self,
        service: &str,
        user: &str,
        operations: &[&str],
        stdin: &str,
        vars: &[(&str, &str)],
    ) -> Output {
        let _one_at_a_time = PAMTESTER.lock().unwrap_or_else(PoisonError::into_inner);
        require_tool(PAM_WRAPPER, "libpam-wrapper");
        require_tool("/usr/bin/pamtester", "pamtester");
        let services = self.dir.path().join("pam.d");
        let mut command = Command::new("/usr/bin/pamtester");
        command
            .arg("-v")
            .arg(service)
            .arg(user)
            .args(operations)
            .env("LD_PRELOAD", PAM_WRAPPER)
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &services)
            .envs(vars.iter().copied());
        run_with_stdin(&mut command, stdin)
    }
}

/// Runs `command` with `stdin` as its standard input and collects its output.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    record_output(command, &output);
    output
}

/// With `DIRCACHE_TEST_TRANSCRIPT=FILE`, every command's output is appended to FILE, so that
/// `scripts/check-no-passwords.sh` can search everything a whole test run printed (with
/// `PAM_WRAPPER_DEBUGLEVEL=2`: every syslog line of the PAM module) for passwords.
pub fn record_output(command: &Command, output: &Output) {
    let Some(path) = std::env::var_os("DIRCACHE_TEST_TRANSCRIPT") else { return };
    let mut entry = format!("== {:?}\n", command.get_program()).into_bytes();
    entry.extend_from_slice(&output.stdout);
    entry.extend_from_slice(&output.stderr);
    entry.push(b'\n');
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(&entry).unwrap();
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Standard output parsed as JSON (the test fails with the whole output otherwise).
pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(output)))
}

/// One entry of a [`snapshot`]: what a file, directory or symlink is, bytes included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { bytes: Vec<u8>, mode: u32, modified: std::time::SystemTime },
    Dir { mode: u32, modified: std::time::SystemTime },
    Symlink { target: PathBuf, modified: std::time::SystemTime },
}

/// The sync status record: the one file of the cache directory a failed sync is meant to
/// write (`status` reports the failure from it). [`snapshot`] leaves it out.
pub const STATUS_FILE: &str = "status.json";

/// Every file, directory and symlink under `root` (not following links) with its bytes,
/// mode and modification time, except [`STATUS_FILE`]. Equal snapshots mean nothing in the
/// cache was written, not even a timestamp. A missing `root` is an empty snapshot.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, Entry> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if relative == Path::new(STATUS_FILE) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let modified = meta.modified().unwrap();
            let value = if meta.file_type().is_symlink() {
                Entry::Symlink { target: fs::read_link(&path).unwrap(), modified }
            } else if meta.is_dir() {
                pending.push(path.clone());
                Entry::Dir { mode: meta.mode(), modified }
            } else {
                Entry::File { bytes: fs::read(&path).unwrap(), mode: meta.mode(), modified }
            };
            out.insert(relative, value);
        }
    }
    out
}

/// Fails with the differing paths when two snapshots differ.
pub fn assert_same_snapshot(
    before: &std::collections::BTreeMap<PathBuf, Entry>,
    after: &std::collections::BTreeMap<PathBuf, Entry>,
    context: &str,
) {
    if before == after {
        return;
    }
    let paths: std::collections::BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    panic!("the cache directory changed ({context}): {}", changed.join(", "));
}

/// Proxy variables pointing at a port nobody listens on: a client that used them could not
/// reach anything.
pub fn dead_proxy_env() -> Vec<(&'static str, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = format!("http://127.0.0.1:{port}");
    let mut vars: Vec<(&'static str, String)> =
        ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]
            .into_iter()
            .map(|name| (name, proxy.clone()))
            .collect();
    // An inherited NO_PROXY=127.0.0.1 would hide a client that honours the proxy.
    vars.extend([("NO_PROXY", String::new()), ("no_proxy", String::new())]);
    vars
}

/// A JSON array of strings (the test fails on anything else).
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The same, as a set.
pub fn set(value: &serde_json::Value) -> std::collections::BTreeSet<String> {
    strings(value).into_iter().collect()
}

pub fn names(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `dircache-sync` for the sync tests: runs the binary and checks that no output ever
/// shows `secret` (the directory's password).
pub struct SyncCli {
    pub secret: &'static str,
}

impl SyncCli {
    pub fn run(&self, env: &Env, args: &[&str]) -> Output {
        let out = env.cli(args, "");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(self.secret), "the password was printed:\n{}", text(&out));
        out
    }

    /// After a sync that failed with `line` (its one error line): the line names every
    /// `expected` part, the cache is as `before`, and `status` records the same line.
    pub fn assert_failed_cleanly(
        &self,
        env: &Env,
        line: &str,
        before: &std::collections::BTreeMap<PathBuf, Entry>,
        what: &str,
        expected: &[&str],
    ) {
        for part in expected {
            assert!(line.contains(part), "{what}: {line:?} lacks {part:?}");
        }
        assert_same_snapshot(before, &snapshot(&env.cache_dir()), what);
        let status = stdout_json(&self.run(env, &["status", "--json"]));
        assert_eq!(status["result"], "failure", "{what}");
        assert_eq!(
            status["error"].as_str().unwrap(),
            line.trim_start_matches("dircache-sync: "),
            "{what}"
        );
    }

    /// `sync --json [extra]`, which must succeed; its report.
    pub fn sync_ok(&self, env: &Env, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["sync", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(env, &args);
        assert!(out.status.success(), "{}", text(&out));
        let report = stdout_json(&out);
        assert_eq!(report["errors"], serde_json::json!([]), "{}", text(&out));
        report
    }

    /// `user show NAME --json`, which must succeed.
    pub fn show(&self, env: &Env, name: &str) -> serde_json::Value {
        let out = self.run(env, &["user", "show", name, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        stdout_json(&out)
    }

    /// The names `user list --json` prints.
    pub fn user_names(&self, env: &Env) -> std::collections::BTreeSet<String> {
        let out = self.run(env, &["user", "list", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        stdout_json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A run that must fail: exit status ≠ 0 and exactly one `dircache-sync: …` line on stderr,
/// which is returned.
pub fn one_failure_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure:\n{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line on stderr:\n{}", text(out));
    assert!(lines[0].starts_with("dircache-sync: "), "{}", text(out));
    lines[0].to_string()
}

/// Why the namespace cannot be used here, if it cannot.
pub fn namespace_unavailable() -> Option<String> {
    let uid = match Command::new("id").arg("-u").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Err(e) => return Some(format!("cannot run `id -u`: {e}")),
    };
    if uid != "0" {
        return Some("not running as root (`unshare -m` and `mount --bind` need it)".into());
    }
    match Command::new("unshare").args(["-m", "true"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`unshare -m true` failed: {}", text(&out))),
        Err(e) => Some(format!("cannot run unshare (util-linux): {e}")),
    }
}

/// True when a test needing a private mount namespace (root, `unshare -m`) may go on;
/// otherwise see [`may_skip`].
pub fn namespace_or_skip(test: &str) -> bool {
    may_skip(test, namespace_unavailable())
}

/// The one rule for tests that need what a machine may lack (root, a tool, a namespace):
/// `Ok` to go on when nothing is missing (`why` is `None`). Under CI (`CI=true`, root, every
/// package installed) nothing may be missing: the test fails with the reason. Elsewhere it is
/// skipped, and says so on the terminal.
pub fn may_skip(test: &str, why: Option<String>) -> bool {
    let Some(reason) = why else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: this test must run in CI, but {reason}");
    }
    // Straight to stderr: the test harness would swallow eprintln! of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    false
}

/// Builds the C program `source` as `dir/name` with the system's C compiler.
pub fn compile_c(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let source_file = dir.join(format!("{name}.c"));
    fs::write(&source_file, source).unwrap();
    let program = dir.join(name);
    let built = Command::new("cc")
        .arg(&source_file)
        .arg("-o")
        .arg(&program)
        .args(flags)
        .output()
        .expect("cc runs (Rust builds need it)");
    assert!(built.status.success(), "cc: {}", String::from_utf8_lossy(&built.stderr));
    program
}
