//! Benchmark: the cost of handing out ids as `unix.uid_range` fills up, through the one
//! allocator sync and `user add` use. For a range of N ids it gives out N ids, then as many
//! again past the full range (each an immediate "no free id left"), and prints the time per
//! id for each tenth of the range and for the refusals: the last tenth, where nearly every
//! hash slot is taken, must cost about what the first does. The README records the figures.
//!
//!     cargo run --release --example id_allocation_bench [-- RANGE_SIZES...]

use std::time::Instant;

use dircache::ids::IdAllocator;

fn main() {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100_000, 1_000_000] } else { sizes };
    println!(
        "{:>10} {:>12} {:>12} {:>12} {:>12}",
        "range", "first 10%", "90-100%", "past full", "total s"
    );
    for size in sizes {
        let low = 1_879_048_192u32;
        let mut ids = IdAllocator::new([low, low + size - 1], [], []);
        let tenth = (size / 10).max(1);
        let mut per_tenth = Vec::new();
        let started = Instant::now();
        let mut given = 0u32;
        while given < size {
            let batch = tenth.min(size - given);
            let at = Instant::now();
            for n in given..given + batch {
                ids.allocate(&format!("icewarp:user{n}@example.com")).expect("a free id");
            }
            per_tenth.push(at.elapsed().as_secs_f64() * 1e9 / f64::from(batch));
            given += batch;
        }
        let at = Instant::now();
        for n in 0..size {
            assert!(ids.allocate(&format!("group:{n}")).is_err(), "the range is full");
        }
        let past = at.elapsed().as_secs_f64() * 1e9 / f64::from(size);
        println!(
            "{size:>10} {:>9.0} ns {:>9.0} ns {past:>9.0} ns {:>12.2}",
            per_tenth.first().copied().unwrap_or(0.0),
            per_tenth.last().copied().unwrap_or(0.0),
            started.elapsed().as_secs_f64()
        );
    }
}
