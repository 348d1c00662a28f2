//! A listed account as a listing holds it: the text of a [`DirectoryUser`] in one buffer.
//!
//! A listing is held whole while the sync plans (README, PERFORMANCE: peak RSS per user),
//! beside every cached user. As a [`DirectoryUser`] one account costs a 176-byte struct and
//! five or more small strings and vectors, each with its own allocation and malloc's
//! overhead; here it is one buffer of text and a few offsets, and the planner, the clients
//! and the dry-run listing read it through the same accessors.

use std::fmt;

use crate::user::AccountLimits;

use super::DirectoryUser;

/// One listed account (see the module's documentation). Read it with its accessors, or
/// open it into a [`DirectoryUser`] with [`CompactUser::to_parts`] or [`CompactUser::into_parts`].
#[derive(Clone, PartialEq, Eq)]
pub struct CompactUser {
    /// Login name, identity, full name, distinguished name (empty when there is none), the
    /// addresses and the groups, one after another.
    text: Box<str>,
    /// Where the login name, identity, full name and distinguished name end in `text`.
    heads: [u32; 4],
    /// Where each address and group ends in `text`, but the last one (which ends with
    /// `text`): none at all for the usual account of one address and no group.
    list_ends: Box<[u32]>,
    emails: u32,
    groups: u32,
    has_distinguished_name: bool,
    enabled: bool,
    limits: AccountLimits,
}

/// An account whose text does not fit the 4 GiB that [`CompactUser`]'s offsets reach
/// (a reply that large is already refused by any sane `max_reply_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl CompactUser {
    /// `user` in one buffer; [`TooLarge`] when its text is 4 GiB or more.
    pub fn new(user: DirectoryUser) -> Result<CompactUser, TooLarge> {
        let dn = user.distinguished_name.as_deref();
        let fixed = [&*user.login_name, &*user.identity, &*user.full_name, dn.unwrap_or_default()];
        let list = user.emails.iter().chain(&user.groups).map(String::as_str);
        let len: usize = fixed.iter().copied().chain(list.clone()).map(str::len).sum();
        u32::try_from(len).map_err(|_| TooLarge)?;
        let mut text = String::with_capacity(len);
        let offset = |text: &String| u32::try_from(text.len()).map_err(|_| TooLarge);
        let mut heads = [0; 4];
        for (head, piece) in heads.iter_mut().zip(fixed) {
            text.push_str(piece);
            *head = offset(&text)?;
        }
        let pieces = user.emails.len() + user.groups.len();
        let mut list_ends = Vec::with_capacity(pieces.saturating_sub(1));
        for (at, piece) in list.enumerate() {
            text.push_str(piece);
            if at + 1 < pieces {
                list_ends.push(offset(&text)?);
            }
        }
        offset(&text)?;
        Ok(CompactUser {
            text: text.into_boxed_str(),
            heads,
            list_ends: list_ends.into_boxed_slice(),
            emails: u32::try_from(user.emails.len()).map_err(|_| TooLarge)?,
            groups: u32::try_from(user.groups.len()).map_err(|_| TooLarge)?,
            has_distinguished_name: dn.is_some(),
            enabled: user.enabled,
            limits: user.limits,
        })
    }

    /// See [`DirectoryUser::login_name`].
    pub fn login_name(&self) -> &str {
        self.piece(0)
    }

    /// See [`DirectoryUser::identity`].
    pub fn identity(&self) -> &str {
        self.piece(1)
    }

    pub fn full_name(&self) -> &str {
        self.piece(2)
    }

    pub fn distinguished_name(&self) -> Option<&str> {
        self.has_distinguished_name.then(|| self.piece(3))
    }

    /// Primary address first, then aliases; no duplicates.
    pub fn emails(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        (4..4 + self.emails as usize).map(|at| self.piece(at))
    }

    /// See [`DirectoryUser::groups`].
    pub fn groups(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        let first = 4 + self.emails as usize;
        (first..first + self.groups as usize).map(|at| self.piece(at))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn limits(&self) -> AccountLimits {
        self.limits
    }

    /// The account opened up, copied.
    pub fn to_parts(&self) -> DirectoryUser {
        DirectoryUser {
            login_name: self.login_name().to_string(),
            identity: self.identity().to_string(),
            full_name: self.full_name().to_string(),
            emails: self.emails().map(str::to_string).collect(),
            enabled: self.enabled,
            groups: self.groups().map(str::to_string).collect(),
            distinguished_name: self.distinguished_name().map(str::to_string),
            limits: self.limits,
        }
    }

    /// The account opened up; its buffer is given back.
    pub fn into_parts(self) -> DirectoryUser {
        self.to_parts()
    }

    /// The `at`th piece of `text` (see its documentation).
    fn piece(&self, at: usize) -> &str {
        let end = |at: usize| match at {
            0..=3 => self.heads[at] as usize,
            _ => self.list_ends.get(at - 4).map_or(self.text.len(), |end| *end as usize),
        };
        let start = at.checked_sub(1).map_or(0, end);
        self.text.get(start..end(at)).unwrap_or_default()
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

    fn account(emails: &[&str], groups: &[&str], dn: Option<&str>) -> DirectoryUser {
        DirectoryUser {
            login_name: "Alice".to_string(),
            identity: "icewarp:alice@example.com".to_string(),
            full_name: "Alice Ä".to_string(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            enabled: false,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            distinguished_name: dn.map(str::to_string),
            limits: AccountLimits { expires_day: Some(3), blocked: true, password_expired: false },
        }
    }

    #[test]
    fn every_field_reads_back_as_it_was_given() {
        let lists: [&[&str]; 5] = [&[], &[""], &["a@x"], &["a@x", "", "b@x"], &["", ""]];
        for emails in lists {
            for groups in lists {
                for dn in [None, Some(""), Some("cn=a")] {
                    let user = account(emails, groups, dn);
                    let listed = CompactUser::new(user.clone()).unwrap();
                    assert_eq!(listed.to_parts(), user, "{emails:?} {groups:?} {dn:?}");
                    assert_eq!(listed.emails().len(), emails.len());
                    assert_eq!(listed.groups().len(), groups.len());
                    assert_eq!(listed.clone().into_parts(), user);
                }
            }
        }
    }

    #[test]
    fn empty_fields_read_back_empty() {
        let user = DirectoryUser {
            login_name: String::new(),
            identity: String::new(),
            full_name: String::new(),
            emails: vec![],
            enabled: true,
            groups: vec![],
            distinguished_name: None,
            limits: AccountLimits::default(),
        };
        assert_eq!(CompactUser::new(user.clone()).unwrap().to_parts(), user);
    }
}
