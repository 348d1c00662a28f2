//! Who may have written a file that decides logins: root, or the user reading it (a cache
//! or a configuration of one's own, as in tests). Shared by the cache readers and the
//! configuration loader.

use std::fs;

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
}
