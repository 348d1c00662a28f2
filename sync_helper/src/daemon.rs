//! `daemon`: sync at an interval until told to stop.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dircache::config::Config;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::cli::{DaemonArgs, SyncArgs};
use crate::error::{one_line, CliError};

struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals, CliError> {
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, stop.clone()).map_err(CliError::Signals)?;
        }
        signal_hook::flag::register(SIGHUP, reload.clone()).map_err(CliError::Signals)?;
        Ok(Signals { stop, reload })
    }
}

pub fn run(config_path: &Path, mut config: Config, args: &DaemonArgs) -> Result<(), CliError> {
    let signals = Signals::install()?;
    let sync_args = SyncArgs { dry_run: false, json: false, force: false };
    log("daemon started");
    if config.snapshot.is_some() {
        // A fleet restarted at once (a reboot wave, a package upgrade) must not pull in the
        // same second: the first pull is spread like every later one.
        let interval = args.interval_secs.unwrap_or(config.sync.interval_secs);
        wait(&signals, with_jitter(interval).saturating_sub(Duration::from_secs(interval)));
    }
    let mut troubled = 0u32;
    loop {
        let trouble = run_once(&config, &sync_args);
        let interval = args.interval_secs.unwrap_or(config.sync.interval_secs);
        let delay = match trouble {
            None => {
                troubled = 0;
                with_jitter(interval)
            }
            Some(retry_after) => {
                troubled = troubled.saturating_add(1);
                let delay = backoff(interval, troubled, retry_after);
                log(&format!(
                    "the snapshot server is in trouble; next pull in {} s",
                    delay.as_secs()
                ));
                delay
            }
        };
        wait(&signals, delay);
        if signals.stop.load(Ordering::Relaxed) {
            log("stopping on signal");
            return Ok(());
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            match Config::load(config_path) {
                Ok(new) => {
                    config = new;
                    log("configuration reloaded");
                }
                Err(e) => log(&format!(
                    "configuration not reloaded, keeping the previous one: {}",
                    one_line(&e)
                )),
            }
        }
    }
}

/// A failing run is logged (and recorded in the status file); the daemon goes on. Returns
/// Some when a snapshot server is failing (5xx, 429, unreachable), with its `Retry-After`.
fn run_once(config: &Config, args: &SyncArgs) -> Option<Option<u64>> {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()) else {
        log("the system clock is before 1970; skipping this run");
        return None;
    };
    let mut summary = Vec::new();
    match crate::sync_cmd::sync(config, args, now, &mut summary) {
        Ok(()) => {
            let text = String::from_utf8_lossy(&summary);
            log(&format!("sync done: {}", text.lines().last().unwrap_or("")));
        }
        Err(e) => {
            log(&format!("sync failed: {}", one_line(&e)));
            let snapshot = e.snapshot().filter(|s| s.server_trouble());
            return snapshot.map(|s| s.retry_after());
        }
    }
    None
}

/// After the `failures`-th run in a row that found the snapshot server failing: the
/// interval doubled per failure (at most 8 times), never before the server's `Retry-After`,
/// with the usual jitter. The hosts keep their last snapshot meanwhile.
fn backoff(interval_secs: u64, failures: u32, retry_after: Option<u64>) -> Duration {
    let factor = 1u64 << failures.saturating_sub(1).min(3);
    let secs = interval_secs.saturating_mul(factor).max(retry_after.unwrap_or(0));
    with_jitter(secs)
}

/// Sleeps `duration` in short steps so that a signal is acted on within a fraction of a
/// second.
fn wait(signals: &Signals, duration: Duration) {
    let Some(deadline) = Instant::now().checked_add(duration) else {
        return wait_until_signal(signals);
    };
    while Instant::now() < deadline {
        if signals.stop.load(Ordering::Relaxed) || signals.reload.load(Ordering::Relaxed) {
            return;
        }
        thread::sleep(Duration::from_millis(100).min(deadline - Instant::now()));
    }
}

/// For a duration too long to represent: until a signal arrives.
fn wait_until_signal(signals: &Signals) {
    while !signals.stop.load(Ordering::Relaxed) && !signals.reload.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
    }
}

/// Up to 10% extra, so that many hosts started together do not hit the directory at once.
fn with_jitter(interval_secs: u64) -> Duration {
    let base = Duration::from_secs(interval_secs);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let extra_millis =
        interval_secs.saturating_mul(100).saturating_mul(u64::from(seed % 1000)) / 1000;
    base.saturating_add(Duration::from_millis(extra_millis))
}

fn log(line: &str) {
    eprintln!("dircache-sync: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_trouble_backs_off_and_honours_retry_after() {
        let secs = |failures, retry| backoff(900, failures, retry).as_secs();
        assert!((900..=990).contains(&secs(1, None)));
        assert!((1800..=1980).contains(&secs(2, None)));
        assert!((7200..=7920).contains(&secs(9, None)), "capped at 8 times");
        assert!(secs(1, Some(5000)) >= 5000);
    }
}
