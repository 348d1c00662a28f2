//! Bounded parallelism for the many small requests of a listing (one per account, one per
//! group): a directory's latency is paid once per round of `workers` requests instead of
//! once per request.
//!
//! What stays as it was with one request at a time:
//! - the outcome does not depend on timing: every result is placed at its job's index, so
//!   the listing (and with it the sync plan and the report) is the same whatever order the
//!   replies came in;
//! - the first error stops the run: no worker starts another request, the requests in
//!   flight are waited for (each is bounded by `timeout_secs`) and their results dropped,
//!   and the error is returned;
//! - the progress line advances: the caller's thread reports the count of finished jobs a
//!   few times a second.
//!
//! The workers take jobs from a shared iterator and send each result to the caller's
//! thread, which keeps it ([`run_keeping`]: in the form the listing holds) and puts it at
//! its job's index. A job is handed to `work` by value: what it holds lives only until its
//! result is made. What a worker's result holds is given back as soon as the caller's
//! thread has kept it: made by a worker, it lives in that thread's malloc arena, and what a
//! worker's arena once held is not given back to the system; so each worker's arena holds
//! only the requests in flight, not a share of the listing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::DirectoryError;

/// How often the caller's thread reports progress while the workers run.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A poisoned lock here only means a worker panicked; the scope passes that panic on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` on every job with at most `workers` at a time, on that many threads (none
/// for one: then the jobs run in order on the caller's thread), and returns the results in
/// the order of the jobs. `progress(finished)` is called on the caller's thread as jobs
/// finish. The first error stops the run and is returned.
pub fn run<J, R>(
    jobs: Vec<J>,
    workers: usize,
    work: &(dyn Fn(J) -> Result<R, DirectoryError> + Sync),
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<R>, DirectoryError>
where
    J: Send,
    R: Send,
{
    run_keeping(jobs, workers, work, &mut |result| result, progress)
}

/// [`run`], each result passed through `keep` on the caller's thread as it arrives (see the
/// module's documentation for why).
pub fn run_keeping<J, R, K>(
    jobs: Vec<J>,
    workers: usize,
    work: &(dyn Fn(J) -> Result<R, DirectoryError> + Sync),
    keep: &mut dyn FnMut(R) -> K,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<K>, DirectoryError>
where
    J: Send,
    R: Send,
{
    let total = jobs.len();
    let workers = workers.clamp(1, total.max(1));
    if workers == 1 {
        let mut results = Vec::with_capacity(total);
        for job in jobs {
            results.push(keep(work(job)?));
            progress(results.len());
        }
        return Ok(results);
    }
    let next = Mutex::new(jobs.into_iter().enumerate());
    let mut slots: Vec<Option<K>> = Vec::with_capacity(total);
    slots.resize_with(total, || None);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<DirectoryError>> = Mutex::new(None);
    let (sender, results) = mpsc::channel::<(usize, R)>();
    thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, stop, failure) = (&next, &stop, &failure);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some((index, job)) = lock(next).next() else { break };
                    match work(job) {
                        Ok(result) => {
                            if sender.send((index, result)).is_err() {
                                break;
                            }
                        }
                        Err(err) => {
                            stop.store(true, Ordering::Relaxed);
                            lock(failure).get_or_insert(err);
                            break;
                        }
                    }
                }
            });
        }
        // The channel ends when the last worker has ended and dropped its sender.
        drop(sender);
        let mut finished = 0;
        let mut reported = Instant::now();
        loop {
            match results.recv_timeout(PROGRESS_INTERVAL) {
                Ok((index, result)) => {
                    if let Some(slot) = slots.get_mut(index) {
                        *slot = Some(keep(result));
                    }
                    finished += 1;
                    if reported.elapsed() < PROGRESS_INTERVAL {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            progress(finished);
            reported = Instant::now();
        }
        progress(finished);
    });
    if let Some(err) = lock(&failure).take() {
        return Err(err);
    }
    let missing = slots.iter().filter(|slot| slot.is_none()).count();
    // Collected into an `Option` the results stay in the slots' buffer (`flatten` would
    // copy them into a second vector as long as the listing, beside it).
    slots.into_iter().collect::<Option<Vec<K>>>().ok_or_else(|| DirectoryError::Other {
        server: String::new(),
        command: "listing".to_string(),
        reason: format!("{missing} of {total} requests ended without a result"),
    })
}

#[cfg(test)]
mod tests;
