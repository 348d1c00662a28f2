//! Prints how long one argon2id hash takes with the default parameters and a few others,
//! to choose `[passwords]` settings for a machine.
//!
//!     cargo run --release --example argon2_cost

use std::time::Instant;

use dircache::config::PasswordConfig;
use dircache::passwords::hash_password;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let default = PasswordConfig::default();
    let candidates = [
        (default.argon2_memory_kib, default.argon2_iterations),
        (19_456, 2),
        (32_768, 2),
        (65_536, 1),
        (131_072, 2),
    ];
    println!("{:>12} {:>10} {:>12}", "memory KiB", "iterations", "ms per hash");
    for (memory, iterations) in candidates {
        let config = PasswordConfig {
            argon2_memory_kib: memory,
            argon2_iterations: iterations,
            argon2_parallelism: 1,
        };
        let runs = 5;
        let start = Instant::now();
        for _ in 0..runs {
            hash_password(b"benchmark password", &config)?;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        println!("{memory:>12} {iterations:>10} {ms:>12.1}");
    }
    Ok(())
}
