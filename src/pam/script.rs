//! A [`PamConversation`] that answers from a script and records what the module said. It
//! drives the PAM logic wherever libpam does not: the unit tests, the integration tests that
//! call the library directly, and the benchmarks. One conversation for all of them, so that
//! what they test is the same module behaviour (`docs/architecture.md`, "Testing").

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AuthtokItem, LogLevel, PamConversation, PamOutcome};
use crate::nss::Settings;
use crate::passwords::Secret;

/// The clock a scripted conversation gives when none is set.
pub const SCRIPT_EPOCH: u64 = 1_000_000;

pub struct ScriptedConversation {
    pub user: String,
    /// Handed out in order, each for the item it names.
    passwords: VecDeque<(AuthtokItem, Vec<u8>)>,
    /// Handed out for every request instead, for any item (repeated logins, benchmarks).
    every_time: Option<Vec<u8>>,
    /// Items asked for that the script did not expect (none: ConvErr).
    pub unexpected: Vec<AuthtokItem>,
    /// What the user was shown.
    pub messages: Vec<String>,
    /// What went to syslog.
    pub logs: Vec<(LogLevel, String)>,
    /// Seconds since the epoch the module is told; `None`: the real clock.
    pub now: Option<u64>,
    /// The failure delays the module asked for.
    pub pauses: Vec<Duration>,
    /// Whether a pause really waits.
    pub sleeps: bool,
    /// What the system's `getpwnam` gives the name.
    pub system_uid: Option<u32>,
    /// Where libnss_dircache would look; by default nowhere, so that the machine's own
    /// /var/lib/dircache never plays a part.
    pub nss_settings: Settings,
}

impl ScriptedConversation {
    /// `user`, handing out `passwords` in order; a fixed clock ([`SCRIPT_EPOCH`]) and pauses
    /// that are only recorded.
    pub fn new(user: &str, passwords: &[(AuthtokItem, &str)]) -> ScriptedConversation {
        ScriptedConversation {
            user: user.to_string(),
            passwords: passwords.iter().map(|(item, p)| (*item, p.as_bytes().to_vec())).collect(),
            every_time: None,
            unexpected: Vec::new(),
            messages: Vec::new(),
            logs: Vec::new(),
            now: Some(SCRIPT_EPOCH),
            pauses: Vec::new(),
            sleeps: false,
            system_uid: None,
            nss_settings: Settings {
                cache_dir: Path::new("/nonexistent/dircache-nss").into(),
                ..Settings::default()
            },
        }
    }

    /// `user`, answering `password` to every request, on the real clock, really waiting
    /// out failure delays: a login as a person makes it.
    pub fn login(user: &str, password: &[u8]) -> ScriptedConversation {
        let mut script = ScriptedConversation::new(user, &[]);
        script.every_time = Some(password.to_vec());
        script.now = None;
        script.sleeps = true;
        script
    }

    /// Whether any log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|(_, line)| line.contains(text))
    }

    /// Whether the script was played out: every scripted password asked for, nothing else.
    pub fn consumed(&self) -> bool {
        self.passwords.is_empty() && self.unexpected.is_empty()
    }
}

impl PamConversation for ScriptedConversation {
    fn user_name(&mut self) -> Result<String, PamOutcome> {
        Ok(self.user.clone())
    }

    fn authtok(&mut self, item: AuthtokItem, _prompt: Option<&str>) -> Result<Secret, PamOutcome> {
        if let Some(password) = &self.every_time {
            return Ok(Secret::new(password.clone()));
        }
        match self.passwords.front() {
            Some((expected, _)) if *expected == item => {
                let (_, password) = self.passwords.pop_front().ok_or(PamOutcome::ConvErr)?;
                Ok(Secret::new(password))
            }
            _ => {
                self.unexpected.push(item);
                Err(PamOutcome::ConvErr)
            }
        }
    }

    fn error_message(&mut self, text: &str) {
        self.messages.push(text.to_string());
    }

    fn log(&mut self, level: LogLevel, text: &str) {
        self.logs.push((level, text.to_string()));
    }

    fn now(&self) -> u64 {
        self.now.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
        })
    }

    fn pause(&mut self, duration: Duration) {
        self.pauses.push(duration);
        if self.sleeps {
            std::thread::sleep(duration);
        }
    }

    fn system_uid(&mut self, _name: &str) -> Option<u32> {
        self.system_uid
    }

    fn nss_settings(&self) -> Settings {
        self.nss_settings.clone()
    }
}

/// In the library's own tests a script must be played out: a module that asked for fewer
/// (or other) passwords than scripted fails the test.
#[cfg(test)]
impl Drop for ScriptedConversation {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.consumed(),
                "script not played out: left {:?}, unexpected requests {:?}",
                self.passwords.iter().map(|(item, _)| item).collect::<Vec<_>>(),
                self.unexpected
            );
        }
    }
}
