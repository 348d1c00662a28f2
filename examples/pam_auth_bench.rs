//! Benchmark: what the PAM logic costs per authentication, in-process (no pamtester), so the
//! figures are dircache's overhead and not process start-up:
//!
//! - a directory user against the demo directory (HTTPS on 127.0.0.1, answering at once):
//!   config load, cache lookup, TLS client set-up, handshake, request, parse, per login;
//! - a local user with 1,000 and 1,000,000 users in the cache: the `account` hook, which does
//!   everything `auth` does (config, /etc/passwd, cache lookup, state) except argon2; and the
//!   whole `auth` with argon2 at its cheapest test setting for comparison.
//!
//!     cargo build --release --workspace && cargo run --release --example pam_auth_bench

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dircache::cache::{CacheDir, Db};
use dircache::config::Config;
use dircache::pam::script::ScriptedConversation;
use dircache::pam::{self, PamOutcome};
use dircache::passwords::hash_password;
use dircache::privileges::Privilege;
use dircache::user::{sample_user, AuthMethod, User};

const RUNS: usize = 200;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_runs(mut run: impl FnMut()) -> Duration {
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed()
            })
            .collect(),
    )
}

fn write_config(dir: &Path, directory: &str) -> Result<String, Box<dyn std::error::Error>> {
    let path = dir.join("dircache.toml");
    let text = format!(
        "[cache]\ndir = {:?}\n[passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{directory}",
        dir.join("cache")
    );
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(format!("config={}", path.display()))
}

fn user(i: u32, auth: AuthMethod, hash: Option<String>) -> User {
    User {
        home: format!("/home/user{i}"),
        auth,
        password_hash: hash,
        privileges: [Privilege::Login].into(),
        ..sample_user(&format!("user{i}@example.com"), 200_000 + i)
    }
}

fn directory_login() -> Result<Duration, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let cert = dir.path().join("cert.pem");
    let binary = std::env::current_exe()?.with_file_name("../dircache-demo-directory");
    let mut child = Command::new(binary)
        .args(["--tls", "--write-cert"])
        .arg(&cert)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut url)?;
    let args = write_config(
        dir.path(),
        &format!(
            "[directory]\ntype = \"icewarp\"\nserver = {:?}\nca_file = {cert:?}\n",
            url.trim()
        ),
    )?;
    let config = Config::load(Path::new(args.trim_start_matches("config=")))?;
    let mut alice = user(0, AuthMethod::Directory, None);
    alice.name = "alice@example.com".into();
    alice.emails = vec!["alice@example.com".into()];
    let cache = CacheDir::new(&config.cache.dir);
    let lock = cache.lock(Duration::from_secs(5))?;
    cache.commit(&lock, &Db { users: vec![alice], ..Db::default() }, 1)?;
    let median = time_runs(|| {
        let mut login = ScriptedConversation::login("alice@example.com", b"alice-password");
        assert_eq!(pam::authenticate(&mut login, &[&args]), PamOutcome::Success);
    });
    let _ = child.kill();
    let _ = child.wait();
    Ok(median)
}

fn local_login(users: u32) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let args = write_config(dir.path(), "")?;
    let config = Config::load(Path::new(args.trim_start_matches("config=")))?;
    let hash = hash_password(b"local-password", &config.passwords)?;
    let target = users / 2;
    let db = Db {
        users: (0..users)
            .map(|i| user(i, AuthMethod::Local, (i == target).then(|| hash.clone())))
            .collect(),
        ..Db::default()
    };
    let cache = CacheDir::new(&config.cache.dir);
    let lock = cache.lock(Duration::from_secs(5))?;
    cache.commit(&lock, &db, 1)?;
    drop(db);
    let name = format!("user{target}@example.com");
    let whole = time_runs(|| {
        let mut login = ScriptedConversation::login(&name, b"local-password");
        assert_eq!(pam::authenticate(&mut login, &[&args]), PamOutcome::Success);
    });
    let lookup = time_runs(|| {
        let mut login = ScriptedConversation::login(&name, b"unused");
        assert_eq!(pam::account(&mut login, &[&args]), PamOutcome::Success);
    });
    Ok((whole, lookup))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let directory = directory_login()?;
    println!(
        "directory user, HTTPS mock on 127.0.0.1: median {:.2} ms per authentication ({RUNS} runs)",
        ms(directory)
    );
    for users in [1_000, 100_000, 1_000_000] {
        let (whole, lookup) = local_login(users)?;
        println!(
            "local user, {users:>9} users in the cache: account (no argon2) median {:.3} ms; auth with 8 MiB/t=1 argon2 {:.3} ms",
            ms(lookup),
            ms(whole)
        );
    }
    Ok(())
}
