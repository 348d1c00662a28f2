//! Probes for the hardening tests (`crash_safety.rs`, `hostile_input.rs`, `concurrency.rs`):
//! the library's PAM hooks driven by its scripted conversation, a small reproducible random
//! source, what a cache holds in one comparable value, the peak memory of a child process,
//! and a transcript of every output a test saw, to prove that no password ever appears in it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dircache::cache::Db;
use dircache::pam::script::ScriptedConversation;
use dircache::pam::PamOutcome;

/// `pam_sm_authenticate` through the library, as `config=PATH`.
pub fn pam_authenticate(
    config: &Path,
    user: &str,
    password: &[u8],
) -> (PamOutcome, ScriptedConversation) {
    let mut conversation = ScriptedConversation::login(user, password);
    let arg = format!("config={}", config.display());
    let outcome = dircache::pam::authenticate(&mut conversation, &[arg.as_str()]);
    (outcome, conversation)
}

/// `pam_sm_acct_mgmt` through the library.
pub fn pam_account(config: &Path, user: &str) -> (PamOutcome, ScriptedConversation) {
    // The account step asks for no password.
    let mut conversation = ScriptedConversation::login(user, b"");
    let arg = format!("config={}", config.display());
    let outcome = dircache::pam::account(&mut conversation, &[arg.as_str()]);
    (outcome, conversation)
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// xorshift64*: reproducible from the seed the test prints.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `DIRCACHE_TEST_SEED` if set, else from the clock; prints the seed.
    pub fn from_env(test: &str) -> Rng {
        let seed =
            std::env::var("DIRCACHE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(
                || SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
            );
        eprintln!("{test}: DIRCACHE_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a cache holds, in one comparable value: every user's name, full name, uid, gid,
/// enabled flag and auth method, sorted by name.
pub fn fingerprint(db: &Db) -> Vec<String> {
    let mut users: Vec<String> = db
        .users
        .iter()
        .map(|u| format!("{}|{}|{}|{}|{}|{}", u.name, u.full_name, u.uid, u.gid, u.enabled, u.auth))
        .collect();
    users.sort();
    users
}

/// The peak resident set size of a running process (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `child`, sampling its peak RSS every few milliseconds; returns the output and
/// the highest peak seen (the last sample before it exits, within a few ms of its end).
pub fn wait_measuring(mut child: Child) -> (Output, u64) {
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), peak)
}

/// Everything a test printed or was told: command outputs, PAM messages and log lines. At
/// the end no password may appear anywhere in it.
#[derive(Default)]
pub struct Transcript {
    text: RefCell<String>,
}

impl Transcript {
    pub fn output(&self, what: &str, output: &Output) {
        let mut text = self.text.borrow_mut();
        text.push_str(&format!("== {what}\n"));
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        text.push_str(&String::from_utf8_lossy(&output.stderr));
    }

    pub fn conversation(&self, what: &str, conversation: &ScriptedConversation) {
        let mut text = self.text.borrow_mut();
        text.push_str(&format!("== {what}\n"));
        let logs = conversation.logs.iter().map(|(_, line)| line);
        for line in conversation.messages.iter().chain(logs) {
            text.push_str(line);
            text.push('\n');
        }
    }

    pub fn line(&self, line: &str) {
        let mut text = self.text.borrow_mut();
        text.push_str(line);
        text.push('\n');
    }

    pub fn len(&self) -> usize {
        self.text.borrow().len()
    }

    pub fn assert_never_shows(&self, secrets: &[&str]) {
        let text = self.text.borrow();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} appears in the output:\n{text}");
        }
    }
}
