//! The privileges of the archive server's user model, enforced by the PAM `account` step.

use std::fmt;
use std::str::FromStr;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    Login,
    ChangePassword,
    ArchiveEmail,
    ModifyArchiveProfiles,
    ExportEmail,
    ModifyExportProfiles,
    DeleteEmail,
    Admin,
    ReadOwnArchive,
    WriteOwnArchive,
    DeleteOwnArchive,
}

impl Privilege {
    pub const ALL: [Privilege; 11] = [
        Privilege::Login,
        Privilege::ChangePassword,
        Privilege::ArchiveEmail,
        Privilege::ModifyArchiveProfiles,
        Privilege::ExportEmail,
        Privilege::ModifyExportProfiles,
        Privilege::DeleteEmail,
        Privilege::Admin,
        Privilege::ReadOwnArchive,
        Privilege::WriteOwnArchive,
        Privilege::DeleteOwnArchive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Login => "login",
            Privilege::ChangePassword => "change_password",
            Privilege::ArchiveEmail => "archive_email",
            Privilege::ModifyArchiveProfiles => "modify_archive_profiles",
            Privilege::ExportEmail => "export_email",
            Privilege::ModifyExportProfiles => "modify_export_profiles",
            Privilege::DeleteEmail => "delete_email",
            Privilege::Admin => "admin",
            Privilege::ReadOwnArchive => "read_own_archive",
            Privilege::WriteOwnArchive => "write_own_archive",
            Privilege::DeleteOwnArchive => "delete_own_archive",
        }
    }

    /// The privileges new users get when nothing else is configured (the seeds' default:
    /// log on, and read access to the own archive).
    pub fn defaults() -> Vec<Privilege> {
        vec![Privilege::Login, Privilege::ReadOwnArchive]
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of privileges in two bytes, one bit each. Every user holds one, and a sync holds
/// every cached and new user: a `BTreeSet` took 24 bytes in the user and a node of 32 on
/// the heap. Iterates, prints and serializes in `Privilege` order, as the `BTreeSet` it
/// replaces did, so the records it writes are the same.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PrivilegeSet(u16);

impl PrivilegeSet {
    fn bit(privilege: Privilege) -> u16 {
        1 << privilege as u16
    }

    pub fn contains(&self, privilege: &Privilege) -> bool {
        self.0 & Self::bit(*privilege) != 0
    }

    /// Whether the privilege was not in the set before (as `BTreeSet::insert`).
    pub fn insert(&mut self, privilege: Privilege) -> bool {
        let fresh = !self.contains(&privilege);
        self.0 |= Self::bit(privilege);
        fresh
    }

    /// Whether the privilege was in the set (as `BTreeSet::remove`).
    pub fn remove(&mut self, privilege: &Privilege) -> bool {
        let held = self.contains(privilege);
        self.0 &= !Self::bit(*privilege);
        held
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The privileges held, in `Privilege` order.
    pub fn iter(&self) -> impl Iterator<Item = Privilege> + '_ {
        Privilege::ALL.into_iter().filter(|p| self.contains(p))
    }
}

impl FromIterator<Privilege> for PrivilegeSet {
    fn from_iter<I: IntoIterator<Item = Privilege>>(privileges: I) -> PrivilegeSet {
        let mut set = PrivilegeSet::default();
        set.extend(privileges);
        set
    }
}

impl Extend<Privilege> for PrivilegeSet {
    fn extend<I: IntoIterator<Item = Privilege>>(&mut self, privileges: I) {
        for privilege in privileges {
            self.insert(privilege);
        }
    }
}

impl<const N: usize> From<[Privilege; N]> for PrivilegeSet {
    fn from(privileges: [Privilege; N]) -> PrivilegeSet {
        privileges.into_iter().collect()
    }
}

impl fmt::Debug for PrivilegeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for PrivilegeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Reads what a `BTreeSet` read: a list in any order, repeats allowed.
impl<'de> Deserialize<'de> for PrivilegeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PrivilegeSet, D::Error> {
        struct Privileges;
        impl<'de> Visitor<'de> for Privileges {
            type Value = PrivilegeSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of privileges")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut list: A) -> Result<PrivilegeSet, A::Error> {
                let mut set = PrivilegeSet::default();
                while let Some(privilege) = list.next_element()? {
                    set.insert(privilege);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(Privileges)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown privilege {given:?}; known privileges: {known}")]
pub struct UnknownPrivilege {
    pub given: String,
    pub known: String,
}

impl FromStr for Privilege {
    type Err = UnknownPrivilege;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Privilege::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPrivilege {
            given: s.to_string(),
            known: Privilege::ALL.map(Privilege::as_str).join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for p in Privilege::ALL {
            assert_eq!(p.as_str().parse::<Privilege>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
    }

    #[test]
    fn unknown_privilege_lists_the_known_ones() {
        let err = "logon".parse::<Privilege>().unwrap_err();
        assert!(err.to_string().contains("\"logon\""));
        assert!(err.to_string().contains("change_password"));
    }

    #[test]
    fn a_privilege_set_orders_serializes_and_reads_as_a_btreeset() {
        use std::collections::BTreeSet;
        assert!(Privilege::ALL.len() <= 16, "one bit each in a u16");
        let mut sorted = Privilege::ALL;
        sorted.sort();
        assert_eq!(sorted, Privilege::ALL, "iteration follows `Privilege` order");
        let picks =
            [Privilege::DeleteOwnArchive, Privilege::Login, Privilege::Admin, Privilege::Login];
        let set = PrivilegeSet::from(picks);
        let tree = BTreeSet::from(picks);
        assert_eq!(set.iter().collect::<Vec<_>>(), tree.iter().copied().collect::<Vec<_>>());
        assert_eq!(set.len(), 3);
        assert_eq!(format!("{set:?}"), format!("{tree:?}"));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, serde_json::to_string(&tree).unwrap());
        let read: PrivilegeSet =
            serde_json::from_str(r#"["admin","login","admin","delete_own_archive"]"#).unwrap();
        assert_eq!(read, set);
        assert!(serde_json::from_str::<PrivilegeSet>(r#"["logon"]"#).is_err());
        assert!(serde_json::from_str::<PrivilegeSet>("[]").unwrap().is_empty());
    }

    #[test]
    fn insert_and_remove_say_whether_the_set_changed() {
        let mut set = PrivilegeSet::default();
        assert!(set.insert(Privilege::ExportEmail));
        assert!(!set.insert(Privilege::ExportEmail));
        assert!(set.contains(&Privilege::ExportEmail) && !set.contains(&Privilege::Login));
        assert!(set.remove(&Privilege::ExportEmail));
        assert!(!set.remove(&Privilege::ExportEmail));
        assert!(set.is_empty());
        for p in Privilege::ALL {
            set.insert(p);
        }
        assert_eq!(set.len(), Privilege::ALL.len());
    }
}
