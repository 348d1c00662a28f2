//! What each cache table stores, and how each is indexed.

use serde::de::DeserializeOwned;
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize, Serializer};

use super::format::TableKind;
use crate::names::name_key;
use crate::user::{Group, LocalGrant, User};

mod canonical;

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
    /// The account's expiry day (days since 1970-01-01, UTC; [`crate::user::AccountLimits`]),
    /// for the shadow entry's `sp_expire`. Added with issue 14: absent when there is none,
    /// so records without one are unchanged and older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_day: Option<i64>,
}

impl Serialize for PublicUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every field, in declaration order: a new field does not compile until it is
        // written here too.
        let PublicUser { name, uid, gid, gecos, home, shell, gids, expires_day } = self;
        // A trailing field that is absent is left out: readers take its default.
        match expires_day {
            None => (name, uid, gid, gecos, home, shell, gids).serialize(serializer),
            Some(day) => (name, uid, gid, gecos, home, shell, gids, day).serialize(serializer),
        }
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
            expires_day: user.limits.expires_day,
        }
    }
}

/// The name and gid of a group record, its members checked but not kept (no string built
/// per member): what `initgroups` needs of each of a user's groups, which may list
/// thousands of members (issue 12 §5). Exactly as strict as [`Group`]'s decoding (the same
/// fields, unknown ones refused, members strings): a record `getgrgid` would refuse as
/// corrupt is refused here too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupHead {
    pub name: String,
    pub gid: u32,
    #[serde(default, rename = "members")]
    _members: Unkept<Vec<Unkept<String>>>,
    #[serde(rename = "origin")]
    _origin: crate::user::Origin,
    #[serde(default, rename = "directory_identity")]
    _directory_identity: Option<Unkept<String>>,
}

/// A value of type `T` checked as `T` would be decoded, and dropped: for a string, no
/// allocation (serde hands it over borrowed or from its scratch buffer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Unkept<T>(std::marker::PhantomData<T>);

impl<'de> Deserialize<'de> for Unkept<String> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyStr;
        impl serde::de::Visitor<'_> for AnyStr {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
        }
        deserializer.deserialize_str(AnyStr).map(|()| Unkept(std::marker::PhantomData))
    }
}

impl<'de, T> Deserialize<'de> for Unkept<Vec<T>>
where
    T: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Each<T> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(())
            }
        }
        let each = Each::<T>(std::marker::PhantomData);
        deserializer.deserialize_seq(each).map(|()| Unkept(std::marker::PhantomData))
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

    /// The record's bytes in its table.
    fn to_record_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// The record read back from its bytes.
    fn from_record_json(json: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(json)
    }
}

/// A user as users.private stores it from format version 2: a JSON array of the fields in
/// declaration order, not an object, for the same reason as [`PublicUser`] (the field names
/// were about 40% of each record). `User`'s own `Serialize` stays an object for everything
/// else that prints or sends users; its derived `Deserialize` reads both forms, so
/// version 1 files still read. A field added to `User` goes last, with `#[serde(default)]`
/// (records written before lack it), and must be added here, which the destructuring
/// enforces.
struct StoredUser<'a>(&'a User);

impl Serialize for StoredUser<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let User {
            name,
            full_name,
            emails,
            auth,
            password_hash,
            privileges,
            enabled,
            disabled_by_admin,
            origin,
            uid,
            gid,
            home,
            shell,
            groups,
            distinguished_name,
            directory_identity,
            missing_since,
            created_at,
            updated_at,
            limits,
        } = self.0;
        // A trailing field at its default is left out: readers take the default.
        let with_limits = !limits.is_none();
        let mut fields = serializer.serialize_tuple(if with_limits { 20 } else { 19 })?;
        fields.serialize_element(name)?;
        fields.serialize_element(full_name)?;
        fields.serialize_element(emails)?;
        fields.serialize_element(auth)?;
        fields.serialize_element(password_hash)?;
        fields.serialize_element(privileges)?;
        fields.serialize_element(enabled)?;
        fields.serialize_element(disabled_by_admin)?;
        fields.serialize_element(origin)?;
        fields.serialize_element(uid)?;
        fields.serialize_element(gid)?;
        fields.serialize_element(home)?;
        fields.serialize_element(shell)?;
        fields.serialize_element(groups)?;
        fields.serialize_element(distinguished_name)?;
        fields.serialize_element(directory_identity)?;
        fields.serialize_element(missing_since)?;
        fields.serialize_element(created_at)?;
        fields.serialize_element(updated_at)?;
        if with_limits {
            fields.serialize_element(limits)?;
        }
        fields.end()
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

    fn to_record_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&StoredUser(self))
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

    /// The writer's own form without serde (every process's first lookup reads one);
    /// anything else through serde_json, which decides.
    fn from_record_json(json: &[u8]) -> serde_json::Result<Self> {
        canonical::decode(json).map_or_else(|| serde_json::from_slice(json), Ok)
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

/// Indexed by the local group's name and gid, like the directory groups. A small table (one
/// record per mapped local group), absent from caches written before it existed: readers
/// take a missing file as "no grants".
impl CacheRecord for LocalGrant {
    const KIND: TableKind = TableKind::LocalGrants;
    const FILE_NAME: &'static str = "grants.public";
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
            expires_day: None,
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
        let expiring = PublicUser { expires_day: Some(20_000), ..user.clone() };
        let json = serde_json::to_string(&expiring).unwrap();
        assert!(json.ends_with(",[7,8],20000]"), "{json}");
        assert_eq!(serde_json::from_str::<PublicUser>(&json).unwrap(), expiring);
        let short = r#"["alice",1879048200,1879048201,"Alice","/home/alice","/bin/sh"]"#;
        assert_eq!(serde_json::from_str::<PublicUser>(short).unwrap().gids, Vec::<u32>::new());
    }

    #[test]
    fn a_stored_user_is_an_array_that_reads_back_whole() {
        use crate::privileges::Privilege;
        use crate::user::{sample_user, AuthMethod, Origin};
        // Every field set, and set apart from the others of its type, so that two fields
        // written in each other's place cannot read back equal.
        let user = User {
            auth: AuthMethod::Directory,
            password_hash: Some("$argon2id$hash".into()),
            privileges: [Privilege::Login, Privilege::Admin].into(),
            enabled: false,
            disabled_by_admin: true,
            origin: Origin::ApplicationIntegration,
            gid: 1_879_048_300,
            groups: vec!["staff".into()],
            distinguished_name: Some("UID=alice".into()),
            directory_identity: Some("application-integration:alice".into()),
            missing_since: Some(5),
            created_at: 6,
            updated_at: 7,
            limits: crate::user::AccountLimits {
                expires_day: Some(20_000),
                blocked: true,
                password_expired: true,
            },
            ..sample_user("alice", 1_879_048_299)
        };
        let json = user.to_record_json().unwrap();
        assert_eq!(json[0], b'[');
        assert_eq!(serde_json::from_slice::<User>(&json).unwrap(), user);
        // Version 1's objects still read, and users print as objects elsewhere.
        let object = serde_json::to_vec(&user).unwrap();
        assert_eq!(object[0], b'{');
        assert_eq!(serde_json::from_slice::<User>(&object).unwrap(), user);
        let plain = sample_user("bob", 1_879_048_301);
        let (json, object) = (plain.to_record_json().unwrap(), serde_json::to_vec(&plain).unwrap());
        assert_eq!(serde_json::from_slice::<User>(&json).unwrap(), plain);
        assert!(json.len() * 10 < object.len() * 7, "{} vs {}", json.len(), object.len());
    }
}
