//! The privileges of the archive server's user model, enforced by the PAM `account` step.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
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
}
