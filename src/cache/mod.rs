//! The user cache: a directory of generations, each a complete, immutable set of table
//! files, and a `current` symlink that is swapped atomically to publish a new one.
//!
//! ```text
//! /var/lib/dircache/
//!   lock                 flock()ed by every writer
//!   current -> gen-000000000042
//!   gen-000000000042/    0755
//!     users.public       0644  name, uid, gid, gecos, home, shell, gids   (NSS)
//!     groups.public      0644  name, gid, members                        (NSS)
//!     grants.public      0644  local group name, gid, granted members    (NSS; may be absent)
//!     users.private      0600  the complete user records: auth, hash, privileges, …
//!     meta.json          0600  format version, generation, retired ids
//!   gen-000000000041/    the previous generation, kept for readers still on it
//! ```

mod cached;
pub mod format;
pub mod reader;
pub mod records;
mod replace;
mod store;

pub use cached::CachedUser;
pub use records::{CacheRecord, GroupHead, PublicUser};
pub use replace::{read_json, replace_file, replace_json};
pub use store::{
    check_trusted, generation_dir_name, sample_db, CacheDir, CacheError, CacheLock, Db, Lookup,
    Meta,
};
