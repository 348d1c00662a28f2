//! Shared helpers for the integration tests: where the built artifacts are, a throwaway
//! configuration, and real libpam through pam_wrapper + pamtester.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
        let text = format!(
            "[cache]\ndir = {:?}\n\n[unix]\nlocal_passwd = {:?}\nlocal_group = {:?}\n\n\
             [passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{extra}",
            dir.path().join("cache"),
            passwd,
            dir.path().join("group"),
        );
        fs::write(&config, text).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        Env { dir, config }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs `dircache-sync --config … ARGS` with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(artifact("dircache-sync"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
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
        require_tool(PAM_WRAPPER, "libpam-wrapper");
        require_tool("/usr/bin/pamtester", "pamtester");
        let services = self.dir.path().join("pam.d");
        let mut child = Command::new("/usr/bin/pamtester")
            .arg("-v")
            .arg(service)
            .arg(user)
            .args(operations)
            .env("LD_PRELOAD", PAM_WRAPPER)
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &services)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
