//! The accounts in /etc/passwd and /etc/group. They always win: dircache never creates,
//! shows or authenticates a user whose name or id is already local.
//!
//! Read as files, never through NSS (the NSS module must not recurse into itself, and the
//! PAM module must not trust a lookup that dircache itself could answer).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::names::fold_name;

#[derive(Debug, Error)]
#[error("cannot read {path}: {source}")]
pub struct LocalAccountsError {
    pub path: PathBuf,
    pub source: io::Error,
}

#[derive(Debug, Default, Clone)]
pub struct LocalAccounts {
    /// Folded, so `Root` is as local as `root`.
    names: HashSet<String>,
    ids: HashSet<u32>,
}

impl LocalAccounts {
    /// Reads the passwd- and group-format files. A missing file is empty; any other read
    /// error is reported, because guessing "no local accounts" could let a directory user
    /// shadow root.
    pub fn load(passwd: &Path, group: &Path) -> Result<LocalAccounts, LocalAccountsError> {
        let mut accounts = LocalAccounts::default();
        for (path, is_passwd) in [(passwd, true), (group, false)] {
            match fs::read(path) {
                Ok(bytes) => accounts.add_file(&String::from_utf8_lossy(&bytes), is_passwd),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(LocalAccountsError { path: path.to_path_buf(), source }),
            }
        }
        Ok(accounts)
    }

    /// A passwd line also protects its primary gid, which /etc/group need not list.
    fn add_file(&mut self, text: &str, is_passwd: bool) {
        for line in text.lines() {
            let mut fields = line.split(':');
            let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let primary_gid = if is_passwd { fields.next() } else { None };
            if name.is_empty()
                || name.starts_with('#')
                || name.starts_with('+')
                || name.starts_with('-')
            {
                continue;
            }
            self.names.insert(fold_name(name));
            for id in [Some(id), primary_gid].into_iter().flatten() {
                if let Ok(id) = id.parse() {
                    self.ids.insert(id);
                }
            }
        }
    }

    /// The rule "local accounts win", spelled once: whether a dircache account or group of
    /// this name, holding these ids, would collide with a local one (and so is never made,
    /// shown or authenticated).
    pub fn win_over(&self, name: &str, ids: &[u32]) -> bool {
        self.has_name(name) || ids.iter().any(|id| self.has_id(*id))
    }

    /// Whether `name` (compared case-insensitively) is a local user or group.
    fn has_name(&self, name: &str) -> bool {
        self.names.contains(&fold_name(name))
    }

    /// Whether `id` is a local uid or gid.
    fn has_id(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_ids_of_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n# comment\n\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n").unwrap();
        fs::write(&group, "wheel:x:10:alice\n").unwrap();
        let local = LocalAccounts::load(&passwd, &group).unwrap();
        assert!(local.has_name("root") && local.has_name("ROOT") && local.has_name("wheel"));
        assert!(local.has_name("alice") && !local.has_name("bob") && !local.has_name("broken"));
        assert!(local.has_id(0) && local.has_id(1000) && local.has_id(10) && !local.has_id(5));
    }

    #[test]
    fn a_primary_gid_missing_from_the_group_file_is_local_too() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        fs::write(
            &passwd,
            "carol:x:1001:4242::/home/carol:/bin/sh
",
        )
        .unwrap();
        fs::write(
            &group,
            "staff:x:50:1234
",
        )
        .unwrap();
        let local = LocalAccounts::load(&passwd, &group).unwrap();
        assert!(local.has_id(1001) && local.has_id(4242) && local.has_id(50));
        assert!(!local.has_id(1234), "a group's member list holds names, not ids");
    }

    #[test]
    fn missing_files_are_empty() {
        let local =
            LocalAccounts::load(Path::new("/nonexistent/p"), Path::new("/nonexistent/g")).unwrap();
        assert!(!local.has_name("root"));
    }
}
