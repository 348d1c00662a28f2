//! Who may have written a file that decides logins: root, or the user reading it (a cache
//! or a configuration of one's own, as in tests). Shared by the cache readers, the
//! configuration loader and the files the configuration names (`directory.password_file`,
//! `directory.ca_file`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Whether a file owned by `owner` may be trusted by this process.
pub fn owner_trusted(owner: u32) -> bool {
    owner_trusted_by(owner, effective_uid())
}

/// [`owner_trusted`] for a reader with effective uid `reader` (`None`: unknown, which then
/// admits root-owned files only).
pub fn owner_trusted_by(owner: u32, reader: Option<u32>) -> bool {
    owner == 0 || reader.is_some_and(|uid| uid != 0 && uid == owner)
}

/// The effective uid, from /proc (no libc call: `unsafe` stays in the .so crates). None
/// when /proc is not readable.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// Why a file fails [`check_writers`]: its mode and owner, and the commands that fix them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    pub mode: u32,
    pub owner: u32,
    /// `` `chown root: PATH` `` and/or `` `chmod go-w PATH` ``.
    pub fix: String,
}

/// The rule for every file whose content decides who logs in or which server is believed:
/// group and others may not write it, and it belongs to root or to the reader. `metadata`
/// must be the open file's (not the path's), so that a file swapped in between the check
/// and the read cannot slip through.
pub fn check_writers(path: &Path, metadata: &fs::Metadata) -> Result<(), Untrusted> {
    check_writers_for(path, metadata.permissions().mode(), metadata.uid(), effective_uid())
}

fn check_writers_for(
    path: &Path,
    mode: u32,
    owner: u32,
    reader: Option<u32>,
) -> Result<(), Untrusted> {
    let writable = mode & 0o022 != 0;
    let foreign = !owner_trusted_by(owner, reader);
    if !writable && !foreign {
        return Ok(());
    }
    let shown = path.display();
    let fix = match (foreign, writable) {
        (true, true) => format!("`chown root: {shown}` and `chmod go-w {shown}`"),
        (true, false) => format!("`chown root: {shown}`"),
        _ => format!("`chmod go-w {shown}`"),
    };
    Err(Untrusted { mode: mode & 0o7777, owner, fix })
}

/// For the library's root-only tests, the skip rule of the integration tests
/// (`tests/testbed`, `may_skip`): not root, the test is skipped and says why; under CI
/// (`CI=true`, root) it fails instead.
#[cfg(test)]
pub(crate) fn root_or_skip(why: &str) -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "this test must run in CI: {why}");
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_or_the_reader_may_own_trusted_files() {
        assert!(owner_trusted_by(0, Some(0)));
        assert!(owner_trusted_by(0, Some(1000)));
        assert!(owner_trusted_by(0, None));
        assert!(owner_trusted_by(1000, Some(1000)), "a file of one's own");
        assert!(!owner_trusted_by(1000, Some(0)));
        assert!(!owner_trusted_by(1000, Some(1001)));
        assert!(!owner_trusted_by(1000, None));
        assert!(effective_uid().is_some());
    }

    #[test]
    fn group_or_other_writers_and_foreign_owners_are_refused_with_the_fix() {
        let path = Path::new("/etc/dircache/x.pem");
        assert_eq!(check_writers_for(path, 0o100644, 0, Some(0)), Ok(()));
        assert_eq!(check_writers_for(path, 0o100600, 1000, Some(1000)), Ok(()));
        let writable = check_writers_for(path, 0o100664, 0, Some(0)).unwrap_err();
        assert_eq!(writable.mode, 0o664);
        assert_eq!(writable.fix, "`chmod go-w /etc/dircache/x.pem`");
        let foreign = check_writers_for(path, 0o100644, 1234, Some(0)).unwrap_err();
        assert_eq!(
            (foreign.owner, foreign.fix.as_str()),
            (1234, "`chown root: /etc/dircache/x.pem`")
        );
        let both = check_writers_for(path, 0o100646, 1234, Some(1000)).unwrap_err();
        assert_eq!(
            both.fix,
            "`chown root: /etc/dircache/x.pem` and `chmod go-w /etc/dircache/x.pem`"
        );
    }
}
