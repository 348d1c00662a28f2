//! Benchmark: cost of finding one user in the cache by name and by uid, for 1,000 /
//! 100,000 / 1,000,000 users, through the same reader the PAM module uses (positioned
//! reads on the files, no full parse). Prints a table; the README records the figures.
//!
//!     cargo run --release --example cache_lookup_bench [-- SIZES...]

use std::time::{Duration, Instant};

use dircache::cache::{CacheDir, Db, PublicUser};
use dircache::privileges::{Privilege, PrivilegeSet};
use dircache::user::{sample_picks, sample_user, AuthMethod, Origin, User};

const LOOKUPS: usize = 20_000;

fn user(i: u32) -> User {
    let name = format!("user{i}@example.com");
    User {
        full_name: format!("User Number {i}"),
        emails: vec![name.clone(), format!("u{i}@example.org")],
        auth: AuthMethod::Directory,
        privileges: PrivilegeSet::from([Privilege::Login, Privilege::ReadOwnArchive]),
        origin: Origin::Icewarp,
        ..sample_user(&name, 200_000 + i)
    }
}

fn median_and_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

fn time_each(ids: &[u32], mut lookup: impl FnMut(u32) -> bool) -> (Duration, Duration) {
    let samples = ids
        .iter()
        .map(|id| {
            let start = Instant::now();
            assert!(lookup(*id), "user {id} not found");
            start.elapsed()
        })
        .collect();
    median_and_p99(samples)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<u32> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() { vec![1_000, 100_000, 1_000_000] } else { sizes };
    println!(
        "{:>9} {:>9} {:>10} | {:>22} | {:>22} | {:>22}",
        "users",
        "write s",
        "file MB",
        "public by name med/p99",
        "public by uid med/p99",
        "private by name med/p99"
    );
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let cache = CacheDir::new(dir.path());
        let db = Db { users: (0..n).map(user).collect(), ..Db::default() };
        let start = Instant::now();
        let lock = cache.lock(Duration::from_secs(5))?;
        cache.commit(&lock, &db, 1)?;
        let write_secs = start.elapsed().as_secs_f64();
        drop(db);
        let current = cache.current_dir()?.ok_or("no current generation")?;
        let file_mb = std::fs::metadata(current.join("users.private"))?.len() as f64 / 1e6;

        let public = cache.open::<PublicUser>()?;
        let private = cache.open::<User>()?;
        let ids = sample_picks(n, LOOKUPS);
        let by_name = time_each(&ids, |i| {
            public.by_name(&format!("USER{i}@example.com")).ok().flatten().is_some()
        });
        let by_uid = time_each(&ids, |i| public.by_id(200_000 + i).ok().flatten().is_some());
        let private_name = time_each(&ids, |i| {
            private.by_name(&format!("user{i}@example.com")).ok().flatten().is_some()
        });
        let show = |(m, p): (Duration, Duration)| {
            format!("{:>8.1} µs / {:>7.1} µs", m.as_secs_f64() * 1e6, p.as_secs_f64() * 1e6)
        };
        println!(
            "{n:>9} {write_secs:>9.2} {file_mb:>10.1} | {} | {} | {}",
            show(by_name),
            show(by_uid),
            show(private_name)
        );
    }
    Ok(())
}
