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
fn results_are_placed_by_index_whatever_the_order_they_come_in() {
    for workers in [1, 2, 8, 64] {
        let jobs: Vec<usize> = (0..200).collect();
        let mut placed = vec![None; jobs.len()];
        let mut order = Vec::new();
        run(
            jobs,
            workers,
            &|job: &usize| {
                jitter(*job);
                Ok(job * 10)
            },
            &mut |index, job, result| {
                assert_eq!(index, job);
                placed[index] = Some(result);
                order.push(index);
                Ok(())
            },
        )
        .unwrap();
        let expected: Vec<Option<usize>> = (0..200).map(|n| Some(n * 10)).collect();
        assert_eq!(placed, expected, "{workers} workers");
        if workers == 1 {
            assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "one worker keeps the order");
        }
    }
}

#[test]
fn the_first_error_stops_every_worker() {
    for workers in [1, 8] {
        let started = AtomicUsize::new(0);
        let mut seen = 0;
        let result = run(
            (0..10_000).collect(),
            workers,
            &|job: &usize| {
                started.fetch_add(1, Ordering::SeqCst);
                if *job == 50 {
                    return Err(failed(*job));
                }
                jitter(*job);
                Ok(())
            },
            &mut |_, _, ()| {
                seen += 1;
                Ok(())
            },
        );
        match result {
            Err(DirectoryError::Other { reason, .. }) => assert_eq!(reason, "50"),
            other => panic!("{other:?}"),
        }
        // Nothing past the failing job's neighbourhood is started: at most the jobs queued
        // or in flight when it failed.
        let started = started.load(Ordering::SeqCst);
        assert!(started <= 51 + 3 * workers, "{workers} workers started {started} jobs");
        assert!(seen < started);
    }
}

#[test]
fn an_error_of_done_stops_the_run_too() {
    let started = AtomicUsize::new(0);
    let result = run(
        (0..10_000).collect(),
        4,
        &|_: &usize| {
            started.fetch_add(1, Ordering::SeqCst);
            Ok(())
        },
        &mut |index, _, ()| if index == 20 { Err(failed(index)) } else { Ok(()) },
    );
    assert!(matches!(result, Err(DirectoryError::Other { .. })), "{result:?}");
    assert!(started.load(Ordering::SeqCst) < 10_000);
}

#[test]
fn no_jobs_no_threads() {
    let result = run(
        Vec::<usize>::new(),
        8,
        &|_: &usize| -> Result<(), DirectoryError> { panic!("no job to run") },
        &mut |_, _, ()| Ok(()),
    );
    assert!(result.is_ok());
}
