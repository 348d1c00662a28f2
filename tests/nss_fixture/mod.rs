//! Shared by the NSS integration tests: a cache written with `CacheDir::commit`, local
//! passwd/group files, and `getent`/`id` run through nss_wrapper loading the built module.
#![allow(dead_code)]

#[allow(unused_imports)] // not every test binary uses every fixture
pub use dircache::user::{sample_group as group, sample_member as user};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dircache::cache::{CacheDir, Db};

use crate::testbed::{artifact, require_tool};

pub const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";

/// Local accounts of the fake /etc: root, daemon and a local user `carol` (1000).
pub const LOCAL_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                                daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                                carol:x:1000:1000:Carol Local:/home/carol:/bin/bash\n";
pub const LOCAL_GROUP: &str = "root:x:0:\nwheel:x:10:carol\ncarol:x:1000:\n";

#[allow(unused_imports)]
pub use dircache::cache::sample_db as standard_db;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub cache: CacheDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("passwd"), LOCAL_PASSWD).unwrap();
        fs::write(dir.path().join("group"), LOCAL_GROUP).unwrap();
        let cache = CacheDir::new(dir.path().join("cache"));
        Fixture { dir, cache }
    }

    pub fn commit(&self, db: &Db) -> u64 {
        let lock = self.cache.lock(Duration::from_secs(5)).unwrap();
        self.cache.commit(&lock, db, 1_700_000_000).unwrap()
    }

    pub fn passwd(&self) -> PathBuf {
        self.dir.path().join("passwd")
    }

    pub fn group(&self) -> PathBuf {
        self.dir.path().join("group")
    }

    pub fn users_public(&self) -> PathBuf {
        self.cache.current_dir().unwrap().unwrap().join("users.public")
    }

    /// `program ARGS` with the real glibc NSS calls redirected by nss_wrapper to the local
    /// files above, then to the built libnss_dircache.so.
    pub fn wrapped(&self, program: &str, args: &[&str]) -> Output {
        require_tool(NSS_WRAPPER, "libnss-wrapper");
        Command::new(program)
            .args(args)
            .env("LD_PRELOAD", NSS_WRAPPER)
            .env("NSS_WRAPPER_PASSWD", self.passwd())
            .env("NSS_WRAPPER_GROUP", self.group())
            .env("NSS_WRAPPER_MODULE_SO_PATH", artifact("libnss_dircache.so"))
            .env("NSS_WRAPPER_MODULE_FN_PREFIX", "dircache")
            .env("DIRCACHE_CACHE_DIR", self.cache.root())
            .env("DIRCACHE_LOCAL_PASSWD", self.passwd())
            .env("DIRCACHE_LOCAL_GROUP", self.group())
            .env("LC_ALL", "C")
            .output()
            .unwrap()
    }

    pub fn getent(&self, args: &[&str]) -> Output {
        self.wrapped("getent", args)
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn lines(output: &Output) -> Vec<String> {
    stdout(output).lines().map(str::to_string).collect()
}

/// The directory holding the built module under its installed name (a symlink
/// `libnss_dircache.so.2`), for LD_LIBRARY_PATH.
pub fn module_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("lib");
    fs::create_dir_all(&dir).unwrap();
    let link = dir.join("libnss_dircache.so.2");
    if !link.exists() {
        std::os::unix::fs::symlink(artifact("libnss_dircache.so"), &link).unwrap();
    }
    dir
}
