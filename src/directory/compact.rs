//! A listed account as a listing holds it: the text of a [`DirectoryUser`] in one buffer.
//!
//! A listing is held whole while the sync plans (README, PERFORMANCE: peak RSS per user),
//! beside every cached user. As a [`DirectoryUser`] one account costs a 176-byte struct and
//! five or more small strings and vectors, each with its own allocation and malloc's
//! overhead; here it is one buffer of text and a few offsets, and the planner, the clients
//! and the dry-run listing read it through the same accessors.

use std::fmt;

use crate::packed_text;
use crate::user::AccountLimits;

use super::DirectoryUser;

/// One listed account (see the module's documentation). Read it with its accessors, or
/// open it into a [`DirectoryUser`] with [`CompactUser::to_parts`] or [`CompactUser::into_parts`].
#[derive(Clone, PartialEq, Eq)]
pub struct CompactUser {
    /// Identity, login name (unless the identity ends with it, as it mostly does: the
    /// identity is the folded name or address), full name, distinguished name (empty when
    /// there is none) and the addresses, one after another; then where each address but
    /// the last ends, and `AccountLimits::expires_day` when
    /// `HAS_EXPIRY` is set (see `packed_text`: in the text, rather than in a vector and a
    /// field that every account would pay for).
    text: Box<str>,
    /// Where the identity, the login name, the full name and the distinguished name end in
    /// `text` (the login name's end is the identity's when it is not written again).
    heads: [u32; 4],
    /// Where the login name starts: in the identity or right after it.
    login_start: u32,
    emails: u32,
    /// `HAS_DISTINGUISHED_NAME`, `ENABLED`, `BLOCKED`, `PASSWORD_EXPIRED`, `HAS_EXPIRY`,
    /// `EMAIL_IS_NAME`.
    flags: u8,
}

const HAS_DISTINGUISHED_NAME: u8 = 1;
const ENABLED: u8 = 2;
const BLOCKED: u8 = 4;
const PASSWORD_EXPIRED: u8 = 8;
const HAS_EXPIRY: u8 = 16;
/// The primary address is the login name, not written again (`packed_text::Packed`).
const EMAIL_IS_NAME: u8 = 32;

/// An account whose text does not fit the 4 GiB that [`CompactUser`]'s offsets reach
/// (a reply that large is already refused by any sane `max_reply_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl CompactUser {
    /// `user` in one buffer; [`TooLarge`] when its text is 4 GiB or more.
    pub fn new(user: DirectoryUser) -> Result<CompactUser, TooLarge> {
        let dn = user.distinguished_name.as_deref();
        let fixed = [&*user.identity, &*user.login_name, &*user.full_name, dn.unwrap_or_default()];
        let list = user.emails.iter().map(String::as_str);
        let limits = user.limits;
        // Two's complement for a day before 1970: read back `as i64`.
        let expiry = limits.expires_day.map(|day| day as u64);
        let packed = packed_text::pack(fixed, list, expiry.as_slice()).map_err(|_| TooLarge)?;
        let flag = |set: bool, flag: u8| if set { flag } else { 0 };
        Ok(CompactUser {
            text: packed.text,
            heads: packed.heads,
            login_start: packed.name_start,
            emails: u32::try_from(user.emails.len()).map_err(|_| TooLarge)?,
            flags: flag(dn.is_some(), HAS_DISTINGUISHED_NAME)
                | flag(user.enabled, ENABLED)
                | flag(limits.blocked, BLOCKED)
                | flag(limits.password_expired, PASSWORD_EXPIRED)
                | flag(limits.expires_day.is_some(), HAS_EXPIRY)
                | flag(packed.first_is_name, EMAIL_IS_NAME),
        })
    }

    /// See [`DirectoryUser::login_name`].
    pub fn login_name(&self) -> &str {
        packed_text::name(&self.text, &self.heads, self.login_start)
    }

    /// See [`DirectoryUser::identity`].
    pub fn identity(&self) -> &str {
        self.piece(0)
    }

    pub fn full_name(&self) -> &str {
        self.piece(2)
    }

    pub fn distinguished_name(&self) -> Option<&str> {
        self.has(HAS_DISTINGUISHED_NAME).then(|| self.piece(3))
    }

    /// Primary address first, then aliases; no duplicates.
    pub fn emails(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        (4..4 + self.emails as usize).map(|at| self.piece(at))
    }

    pub fn enabled(&self) -> bool {
        self.has(ENABLED)
    }

    pub fn limits(&self) -> AccountLimits {
        AccountLimits {
            expires_day: self
                .has(HAS_EXPIRY)
                .then(|| packed_text::word(&self.text, self.tail(), 0) as i64),
            blocked: self.has(BLOCKED),
            password_expired: self.has(PASSWORD_EXPIRED),
        }
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Changes the account as `change` changes it opened up (for the few a client edits
    /// once it holds them compactly).
    pub fn edit(&mut self, change: impl FnOnce(&mut DirectoryUser)) -> Result<(), TooLarge> {
        let mut parts = self.to_parts();
        change(&mut parts);
        *self = CompactUser::new(parts)?;
        Ok(())
    }

    /// The account opened up, copied.
    pub fn to_parts(&self) -> DirectoryUser {
        DirectoryUser {
            login_name: self.login_name().to_string(),
            identity: self.identity().to_string(),
            full_name: self.full_name().to_string(),
            emails: self.emails().map(str::to_string).collect(),
            enabled: self.enabled(),
            distinguished_name: self.distinguished_name().map(str::to_string),
            limits: self.limits(),
        }
    }

    /// The account opened up; its buffer is given back.
    pub fn into_parts(self) -> DirectoryUser {
        self.to_parts()
    }

    /// The `at`th piece of `text` (see its documentation).
    fn piece(&self, at: usize) -> &str {
        packed_text::piece(&self.text, &self.heads, self.tail(), at)
    }

    /// What follows the pieces in `text`.
    fn tail(&self) -> packed_text::Tail {
        let pieces = self.emails as usize;
        let words = usize::from(self.has(HAS_EXPIRY));
        let name_first = self.has(EMAIL_IS_NAME).then_some(self.login_start);
        packed_text::Tail { pieces, words, name_first }
    }
}

impl fmt::Debug for CompactUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_parts().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(emails: &[&str], dn: Option<&str>) -> DirectoryUser {
        DirectoryUser {
            login_name: "Alice".to_string(),
            identity: "icewarp:alice@example.com".to_string(),
            full_name: "Alice Ä".to_string(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            enabled: false,
            distinguished_name: dn.map(str::to_string),
            limits: AccountLimits { expires_day: Some(3), blocked: true, password_expired: false },
        }
    }

    fn round_trip(user: &DirectoryUser) {
        let compact = CompactUser::new(user.clone()).unwrap();
        assert_eq!(&compact.to_parts(), user);
        assert_eq!(compact.emails().len(), user.emails.len());
        assert_eq!(&compact.clone().into_parts(), user);
    }

    #[test]
    fn every_field_reads_back_as_it_was_given() {
        let lists: [&[&str]; 5] = [&[], &[""], &["a@x"], &["a@x", "", "b@x"], &["", ""]];
        for emails in lists {
            for dn in [None, Some(""), Some("cn=a")] {
                round_trip(&account(emails, dn));
            }
        }
    }

    #[test]
    fn a_login_name_the_identity_ends_with_is_not_written_twice() {
        for (login, identity) in [
            ("alice@example.com", "icewarp:alice@example.com"),
            ("john.doe", "application-integration:john.doe"),
            ("John.Doe", "application-integration:john.doe"),
            ("doe", "application-integration:john.doe"),
            ("", "icewarp:a@x"),
            ("a", ""),
            ("", ""),
            ("icewarp:a@x", "icewarp:a@x"),
        ] {
            for emails in [&[][..], &["a@x"], &["a@x", "b@x"]] {
                let user = DirectoryUser {
                    login_name: login.to_string(),
                    identity: identity.to_string(),
                    emails: emails.iter().map(|e| e.to_string()).collect(),
                    ..account(&[], None)
                };
                round_trip(&user);
                let written = CompactUser::new(user).unwrap().text.len();
                let twice = identity.ends_with(login);
                let expected = identity.len()
                    + if twice { 0 } else { login.len() }
                    + "Alice Ä".len()
                    + emails.iter().map(|e| e.len()).sum::<usize>()
                    // Where each address but the last ends, in a byte each.
                    + emails.len().saturating_sub(1)
                    // `account`'s expiry day, a word of ten bytes.
                    + 10;
                assert_eq!(written, expected, "{login:?} {identity:?}");
            }
        }
    }

    #[test]
    fn a_primary_address_that_is_the_login_name_reads_back_unwritten() {
        for emails in [&["alice@example.com"][..], &["alice@example.com", "al@example.com"]] {
            let user = DirectoryUser {
                login_name: "alice@example.com".to_string(),
                emails: emails.iter().map(|e| e.to_string()).collect(),
                ..account(&[], None)
            };
            round_trip(&user);
            let compact = CompactUser::new(user).unwrap();
            assert!(compact.has(EMAIL_IS_NAME));
            assert_eq!(compact.emails().next(), Some("alice@example.com"));
        }
    }

    #[test]
    fn every_limit_and_flag_reads_back() {
        for expires_day in [None, Some(0), Some(-1), Some(i64::MAX), Some(i64::MIN)] {
            for (blocked, password_expired, enabled) in [
                (false, false, false),
                (true, false, true),
                (false, true, false),
                (true, true, true),
            ] {
                let user = DirectoryUser {
                    enabled,
                    limits: AccountLimits { expires_day, blocked, password_expired },
                    ..account(&["a@x"], Some("cn=a"))
                };
                round_trip(&user);
            }
        }
    }

    #[test]
    fn empty_fields_read_back_empty() {
        round_trip(&DirectoryUser {
            login_name: String::new(),
            identity: String::new(),
            full_name: String::new(),
            emails: vec![],
            enabled: true,
            distinguished_name: None,
            limits: AccountLimits::default(),
        });
    }

    #[test]
    fn a_compact_user_is_small() {
        // A listing holds one per account (see the module's documentation).
        assert!(std::mem::size_of::<CompactUser>() <= 48);
    }
}
