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
    loop {
        run_once(&config, &sync_args);
        let interval = args.interval_secs.unwrap_or(config.sync.interval_secs);
        wait(&signals, with_jitter(interval));
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

/// A failing run is logged (and recorded in the status file); the daemon goes on.
fn run_once(config: &Config, args: &SyncArgs) {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()) else {
        log("the system clock is before 1970; skipping this run");
        return;
    };
    let mut summary = Vec::new();
    match crate::sync_cmd::sync(config, args, now, &mut summary) {
        Ok(()) => {
            let text = String::from_utf8_lossy(&summary);
            log(&format!("sync done: {}", text.lines().last().unwrap_or("")));
        }
        Err(e) => log(&format!("sync failed: {}", one_line(&e))),
    }
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
