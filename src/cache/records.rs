//! What each cache table stores, and how each is indexed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use super::format::TableKind;
use crate::names::name_key;
use crate::user::{Group, User};

/// The NSS-visible view of a user: no secrets, no privileges, no auth method.
///
/// Stored as a JSON array of its fields in declaration order (format version 2), not as an
/// object: the field names were a third of every record, the same few words repeated a
/// million times. Reading takes either form (serde's derived `Deserialize` accepts a
/// sequence for a struct), so version 1 files, whose records are objects, still read; a
/// field added later goes last, with `#[serde(default)]`, and older records lack it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
}

impl Serialize for PublicUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every field, in declaration order: a new field does not compile until it is
        // written here too.
        let PublicUser { name, uid, gid, gecos, home, shell, gids } = self;
        (name, uid, gid, gecos, home, shell, gids).serialize(serializer)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_user_is_stored_as_an_array_and_read_from_either_form() {
        let user = PublicUser {
            name: "alice".into(),
            uid: 1_879_048_200,
            gid: 1_879_048_201,
            gecos: "Alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
            gids: vec![7, 8],
        };
        let json = serde_json::to_string(&user).unwrap();
        assert_eq!(
            json,
            r#"["alice",1879048200,1879048201,"Alice","/home/alice","/bin/sh",[7,8]]"#
        );
        assert_eq!(serde_json::from_str::<PublicUser>(&json).unwrap(), user);
        // Version 1: an object, gids possibly absent.
        let old = r#"{"name":"alice","uid":1879048200,"gid":1879048201,"gecos":"Alice","home":"/home/alice","shell":"/bin/sh"}"#;
        let read: PublicUser = serde_json::from_str(old).unwrap();
        assert_eq!(read, PublicUser { gids: vec![], ..user.clone() });
        let short = r#"["alice",1879048200,1879048201,"Alice","/home/alice","/bin/sh"]"#;
        assert_eq!(serde_json::from_str::<PublicUser>(short).unwrap().gids, Vec::<u32>::new());
    }
}
