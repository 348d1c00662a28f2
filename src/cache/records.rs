//! What each cache table stores, and how each is indexed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::format::TableKind;
use crate::names::name_key;
use crate::user::{Group, User};

/// The NSS-visible view of a user: no secrets, no privileges, no auth method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// Supplementary group ids, so `initgroups` needs no walk over every group.
    #[serde(default)]
    pub gids: Vec<u32>,
    /// The account's expiry day (days since 1970-01-01, UTC; [`crate::user::AccountLimits`]),
    /// for the shadow entry's `sp_expire`. Added with issue 14: absent when there is none,
    /// so records without one are unchanged and older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_day: Option<i64>,
}

impl PublicUser {
    pub fn from_user(user: &User, gids: Vec<u32>) -> PublicUser {
        PublicUser {
            name: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            gecos: user.gecos(),
            home: user.home.clone(),
            shell: user.shell.clone(),
            gids,
            expires_day: user.limits.expires_day,
        }
    }
}

/// A record type stored in a table indexed by name (index 0) and numeric id (index 1).
pub trait CacheRecord: Serialize + DeserializeOwned {
    const KIND: TableKind;
    const FILE_NAME: &'static str;
    /// Whether the file may be read by everyone (the NSS part) or only by root.
    const PUBLIC: bool;

    fn name(&self) -> &str;
    fn id(&self) -> u32;

    fn keys(&self) -> Vec<u64> {
        vec![name_key(self.name()), u64::from(self.id())]
    }
}

pub const NAME_INDEX: usize = 0;
pub const ID_INDEX: usize = 1;
pub const INDEX_COUNT: usize = 2;

impl CacheRecord for User {
    const KIND: TableKind = TableKind::PrivateUsers;
    const FILE_NAME: &'static str = "users.private";
    const PUBLIC: bool = false;

    fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> u32 {
        self.uid
    }
}

impl CacheRecord for PublicUser {
    const KIND: TableKind = TableKind::PublicUsers;
    const FILE_NAME: &'static str = "users.public";
    const PUBLIC: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> u32 {
        self.uid
    }
}

impl CacheRecord for Group {
    const KIND: TableKind = TableKind::Groups;
    const FILE_NAME: &'static str = "groups.public";
    const PUBLIC: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> u32 {
        self.gid
    }
}
