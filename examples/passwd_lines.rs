//! Reads every user and group of a cache the way NSS does (the public tables, record by
//! record) and checks that each one makes exactly one well-formed passwd or group line: a
//! valid name, seven (four) fields, no line break, no reserved id. Prints the count of good
//! lines; exits 1 if any line is bad. Used by `scripts/hostile-million.sh`.
//!
//!     cargo run --release --example passwd_lines -- CACHE_DIR

use std::process::ExitCode;

use dircache::cache::{CacheDir, CacheError, PublicUser};
use dircache::ids::is_reserved;
use dircache::names::validate_name;
use dircache::user::Group;

fn check(cache: &CacheDir) -> Result<(u64, Vec<String>), CacheError> {
    let mut good = 0;
    let mut bad = Vec::new();
    let users = cache.open::<PublicUser>()?;
    let mut cursor = users.first_cursor();
    while let Some((user, next)) = users.next(cursor)? {
        let line = format!(
            "{}:x:{}:{}:{}:{}:{}",
            user.name, user.uid, user.gid, user.gecos, user.home, user.shell
        );
        let fine = validate_name(&user.name).is_ok()
            && line.split(':').count() == 7
            && !line.contains(['\n', '\0'])
            && !is_reserved(user.uid)
            && !is_reserved(user.gid);
        if fine {
            good += 1;
        } else {
            bad.push(line);
        }
        cursor = next;
    }
    let groups = cache.open::<Group>()?;
    let mut cursor = groups.first_cursor();
    while let Some((group, next)) = groups.next(cursor)? {
        let line = format!("{}:x:{}:{}", group.name, group.gid, group.members.join(","));
        let fine = validate_name(&group.name).is_ok()
            && group.members.iter().all(|m| validate_name(m).is_ok())
            && line.split(':').count() == 4
            && !is_reserved(group.gid);
        if fine {
            good += 1;
        } else {
            bad.push(line);
        }
        cursor = next;
    }
    Ok((good, bad))
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: passwd_lines CACHE_DIR");
        return ExitCode::from(2);
    };
    match check(&CacheDir::new(dir)) {
        Ok((good, bad)) if bad.is_empty() => {
            println!("{good} well-formed, 0 bad");
            ExitCode::SUCCESS
        }
        Ok((good, bad)) => {
            println!("{good} well-formed, {} bad, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("passwd_lines: {e}");
            ExitCode::FAILURE
        }
    }
}
