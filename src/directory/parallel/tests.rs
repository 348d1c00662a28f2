use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

fn failed(n: usize) -> DirectoryError {
    DirectoryError::Other {
        server: "s".to_string(),
        command: "c".to_string(),
        reason: n.to_string(),
    }
}

/// Sleeps a pseudo-random while per job, so that results come back out of order.
fn jitter(n: usize) {
    thread::sleep(Duration::from_micros(((n * 7919) % 13) as u64 * 300));
}

#[test]
fn results_come_in_the_order_of_the_jobs_whatever_the_order_they_finish_in() {
    for workers in [1, 2, 8, 64] {
        let order = Mutex::new(Vec::new());
        let mut reported = Vec::new();
        let results = run(
            (0..200).collect(),
            workers,
            &|job: usize| {
                jitter(job);
                lock(&order).push(job);
                Ok(job * 10)
            },
            &mut |finished| reported.push(finished),
        )
        .unwrap();
        assert_eq!(results, (0..200).map(|n| n * 10).collect::<Vec<_>>(), "{workers} workers");
        assert_eq!(reported.last(), Some(&200), "{workers} workers: the progress ends at all");
        assert!(reported.windows(2).all(|pair| pair[0] <= pair[1]));
        let order = lock(&order).clone();
        if workers == 1 {
            assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "one worker keeps the order");
        } else {
            assert!(order.windows(2).any(|pair| pair[0] > pair[1]), "{workers}: not concurrent");
        }
    }
}

#[test]
fn the_first_error_stops_every_worker() {
    for workers in [1, 8] {
        let started = AtomicUsize::new(0);
        let result = run(
            (0..10_000).collect(),
            workers,
            &|job: usize| {
                started.fetch_add(1, Ordering::SeqCst);
                if job == 50 {
                    return Err(failed(job));
                }
                jitter(job);
                Ok(())
            },
            &mut |_| {},
        );
        match result {
            Err(DirectoryError::Other { reason, .. }) => assert_eq!(reason, "50"),
            other => panic!("{other:?}"),
        }
        // Nothing is started after the failure but what the other workers took while it
        // failed (a few each, however slow the machine).
        let started = started.load(Ordering::SeqCst);
        assert!(started < 500, "{workers} workers started {started} jobs");
    }
}

#[test]
fn no_jobs_no_work() {
    let result = run(
        Vec::<usize>::new(),
        8,
        &|_: usize| -> Result<(), DirectoryError> { panic!("no job to run") },
        &mut |_| {},
    );
    assert_eq!(result.unwrap(), Vec::<()>::new());
}

#[test]
fn results_are_kept_on_the_callers_thread_in_the_order_of_the_jobs() {
    for workers in [1, 8] {
        let caller = thread::current().id();
        let results = run_keeping(
            (0..100).collect(),
            workers,
            &|job: usize| {
                jitter(job);
                Ok((job, thread::current().id()))
            },
            &mut |(job, made_on)| (job * 2, made_on, thread::current().id()),
            &mut |_| {},
        )
        .unwrap();
        let jobs: Vec<usize> = results.iter().map(|(job, _, _)| *job).collect();
        assert_eq!(jobs, (0..100).map(|n| n * 2).collect::<Vec<_>>(), "{workers} workers");
        assert!(results.iter().all(|(_, _, kept_on)| *kept_on == caller));
        let made_elsewhere = results.iter().any(|(_, made_on, _)| *made_on != caller);
        assert_eq!(made_elsewhere, workers > 1, "{workers} workers");
    }
}
