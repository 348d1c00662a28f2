//! Bounded parallelism for the many small requests of a listing (one per account, one per
//! group): a directory's latency is paid once per round of `workers` requests instead of
//! once per request.
//!
//! What stays as it was with one request at a time:
//! - the outcome does not depend on timing: every result is handed to the caller with its
//!   job's index, and the caller places it there, so the listing (and with it the sync plan
//!   and the report) is the same whatever order the replies came in;
//! - the first error stops the run: no worker starts another request, the requests in
//!   flight are waited for (each is bounded by `timeout_secs`) and their results dropped,
//!   and the error is returned;
//! - the caller's thread sees every result as it comes ([`run`]'s `done`), so the progress
//!   line advances and nothing but the caller touches the caller's state.
//!
//! Jobs are handed out through a short queue, and a job comes back with its result, so a
//! job's data (an account's address and name) lives only until its result is placed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread;

use super::DirectoryError;

/// Runs `work` on every job with at most `workers` at a time, on that many threads, and
/// calls `done(index, job, result)` on the caller's thread for each, in the order they
/// finish. The first error (of `work` or of `done`) stops the run and is returned; `done`
/// is called for no result after it.
pub fn run<J, R>(
    jobs: Vec<J>,
    workers: usize,
    work: &(dyn Fn(&J) -> Result<R, DirectoryError> + Sync),
    done: &mut dyn FnMut(usize, J, R) -> Result<(), DirectoryError>,
) -> Result<(), DirectoryError>
where
    J: Send,
    R: Send,
{
    let workers = workers.clamp(1, jobs.len().max(1));
    if jobs.is_empty() {
        return Ok(());
    }
    // Two jobs per worker queued: a worker that finishes finds its next job waiting.
    let queued = workers * 2;
    let stop = AtomicBool::new(false);
    let (job_sender, job_receiver) = mpsc::sync_channel::<(usize, J)>(queued);
    let job_receiver = Mutex::new(job_receiver);
    let (result_sender, results) = mpsc::channel::<(usize, J, Result<R, DirectoryError>)>();
    thread::scope(|scope| {
        for _ in 0..workers {
            let result_sender = result_sender.clone();
            let (job_receiver, stop) = (&job_receiver, &stop);
            scope.spawn(move || loop {
                let next = job_receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok((index, job)) = next else {
                    return;
                };
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                let result = work(&job);
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if result_sender.send((index, job, result)).is_err() {
                    return;
                }
            });
        }
        drop(result_sender);
        let mut jobs = jobs.into_iter().enumerate();
        let mut job_sender = Some(job_sender);
        let mut in_flight = 0_usize;
        let mut failure = None;
        loop {
            while in_flight < queued {
                let Some(sender) = &job_sender else { break };
                // The queue has room for `queued` jobs, so sending never blocks. No more jobs
                // (or no worker left): the workers end once the queue is empty.
                match jobs.next().map(|job| sender.send(job)) {
                    Some(Ok(())) => in_flight += 1,
                    _ => job_sender = None,
                }
            }
            if in_flight == 0 {
                break;
            }
            let Ok((index, job, result)) = results.recv() else {
                // Every worker is gone (one panicked): the scope passes the panic on.
                break;
            };
            in_flight -= 1;
            if let Err(err) = result.and_then(|result| done(index, job, result)) {
                stop.store(true, Ordering::Relaxed);
                failure = Some(err);
                break;
            }
        }
        // Stopping: the workers skip what is queued, finish what is in flight, and end
        // when the queue is closed.
        drop(job_sender);
        for _ in results.iter() {}
        failure.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests;
