//! The progress line of a long sync on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dircache::directory::Progress;

/// Rewrites one line on standard error, at most ten times a second, and only when standard
/// error is a terminal (logs and pipes get no control characters).
pub struct TerminalProgress {
    enabled: bool,
    last: Option<Instant>,
    shown: bool,
}

impl TerminalProgress {
    pub fn new() -> TerminalProgress {
        TerminalProgress { enabled: std::io::stderr().is_terminal(), last: None, shown: false }
    }

    /// Clears the line before the result is printed.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }
}

impl Progress for TerminalProgress {
    fn step(&mut self, what: &str, done: u64, total: Option<u64>) {
        let due = self.last.is_none_or(|last| last.elapsed() >= Duration::from_millis(100));
        if !self.enabled || !due {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let count = match total {
            Some(total) => format!("{done}/{total}"),
            None => done.to_string(),
        };
        let _ = write!(std::io::stderr(), "\r\x1b[K{what}: {count}");
    }
}
