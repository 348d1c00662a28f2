//! The PAM logic keeps nothing alive between calls: after 50 directory authentications over
//! HTTPS in one process, the process has exactly as many threads as before (sshd forks; a
//! client or runtime thread left behind would be dead or leaking there).

mod testbed;

use std::fs;
use std::process::{Child, Command, Stdio};

use dircache::pam::script::ScriptedConversation;
use dircache::pam::{self, PamOutcome};
use testbed::{artifact, Env};

fn threads() -> usize {
    fs::read_dir("/proc/self/task").unwrap().count()
}

/// The demo directory in its own process, so its threads are not counted.
struct DemoDirectory(Child);

impl Drop for DemoDirectory {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn no_thread_remains_after_50_directory_logins() {
    let env = Env::new();
    let cert = env.dir.path().join("demo-cert.pem");
    let mut child = Command::new(artifact("dircache-demo-directory"))
        .args(["--tls", "--write-cert"])
        .arg(&cert)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _directory = DemoDirectory(child);
    env.rewrite_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nca_file = {:?}\ntimeout_secs = 10\n",
        line.trim(),
        cert
    ));
    let added = env.cli(&["user", "add", "alice@example.com", "--auth", "directory"], "");
    assert!(added.status.success(), "{}", testbed::text(&added));
    let args = format!("config={}", env.config.display());

    let before = threads();
    for i in 0..50 {
        let password = if i % 5 == 4 { "wrong" } else { "alice-password" };
        let expected = if i % 5 == 4 { PamOutcome::AuthErr } else { PamOutcome::Success };
        assert_eq!(
            pam::authenticate(
                &mut ScriptedConversation::login("alice@example.com", password.as_bytes()),
                &[&args]
            ),
            expected,
            "login {i}"
        );
    }
    assert_eq!(threads(), before, "threads left behind by 50 authentications");
}
