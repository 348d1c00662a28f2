//! A cached user as a sync holds it: the text of a [`User`] in one buffer.
//!
//! A sync holds every cached user from the plan to the commit, and while it plans beside
//! the whole listing (README, PERFORMANCE: peak RSS per user). As a [`User`] one account is
//! a 288-byte struct and seven or more small strings and vectors, each with its own
//! allocation and malloc's overhead (about 570 bytes for the benchmark's Application
//! Integration account); here it is an 88-byte struct of offsets and the scalar fields and
//! one buffer of text, which also holds where its addresses and groups end (about 230
//! bytes for the same account). The
//! planner reads it through accessors and opens up only the users it changes
//! ([`CachedUser::to_user`]); applying the plan, the grants, the seal and the pruning of
//! login states read it through [`HeldUser`], and the commit opens up each user as it
//! writes it.

use std::borrow::Cow;
use std::fmt;

use crate::packed_text;
use crate::privileges::PrivilegeSet;
use crate::user::{
    account_may_hold_local_groups, AccountLimits, AuthMethod, HeldUser, Origin, User, UserFacts,
};

/// One cached user (see the module's documentation).
#[derive(Clone, PartialEq, Eq)]
pub struct CachedUser {
    /// The directory identity (empty when there is none), the name (unless the identity
    /// ends with it, as it mostly does), the full name, the home, the shell, the password
    /// hash and the distinguished name (empty when there is none), then the addresses and
    /// the groups, one after another; then where each address and group but the last ends,
    /// `User::missing_since` when `MISSING` is set and `AccountLimits::expires_day` when
    /// `HAS_EXPIRY` is (see `packed_text`: in the text, rather than in a vector that every
    /// user with a group or a second address would pay an allocation for).
    text: Box<str>,
    /// Where the identity, the name, the full name, the home, the shell, the password hash
    /// and the distinguished name end in `text` (the name's end is the identity's when it
    /// is not written again).
    heads: [u32; 7],
    /// Where the name starts: in the identity or right after it.
    name_start: u32,
    emails: u32,
    groups: u32,
    uid: u32,
    gid: u32,
    created_at: u64,
    updated_at: u64,
    privileges: PrivilegeSet,
    auth: AuthMethod,
    origin: Origin,
    flags: u16,
}

const HAS_IDENTITY: u16 = 1;
const HAS_PASSWORD_HASH: u16 = 2;
const HAS_DISTINGUISHED_NAME: u16 = 4;
const ENABLED: u16 = 8;
const DISABLED_BY_ADMIN: u16 = 16;
const MISSING: u16 = 32;
const HAS_EXPIRY: u16 = 64;
const BLOCKED: u16 = 128;
const PASSWORD_EXPIRED: u16 = 256;
/// The first address is the name, not written again (`packed_text::Packed`).
const EMAIL_IS_NAME: u16 = 512;

/// Pieces of `text` before the addresses.
const HEADS: usize = 7;
const IDENTITY: usize = 0;
// 1 is the name, read with `packed_text::name`.
const FULL_NAME: usize = 2;
const HOME: usize = 3;
const SHELL: usize = 4;
const PASSWORD_HASH: usize = 5;
const DISTINGUISHED_NAME: usize = 6;

/// A user whose text does not fit the 4 GiB that [`CachedUser`]'s offsets reach (a cache
/// record holds at most 16 MiB: only a user made in memory could be that large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl CachedUser {
    /// `user` in one buffer; [`TooLarge`] when its text is 4 GiB or more.
    pub fn new(user: &User) -> Result<CachedUser, TooLarge> {
        let identity = user.directory_identity.as_deref();
        let fixed = [
            identity.unwrap_or_default(),
            &*user.name,
            &*user.full_name,
            &*user.home,
            &*user.shell,
            user.password_hash.as_deref().unwrap_or_default(),
            user.distinguished_name.as_deref().unwrap_or_default(),
        ];
        let list = user.emails.iter().chain(&user.groups).map(String::as_str);
        // Two's complement for a day before 1970: read back `as i64`.
        let expiry = user.limits.expires_day.map(|day| day as u64);
        let words: Vec<u64> = [user.missing_since, expiry].into_iter().flatten().collect();
        let packed = packed_text::pack(fixed, list, &words).map_err(|_| TooLarge)?;
        let limits = user.limits;
        let flag = |set: bool, flag: u16| if set { flag } else { 0 };
        Ok(CachedUser {
            text: packed.text,
            heads: packed.heads,
            name_start: packed.name_start,
            emails: u32::try_from(user.emails.len()).map_err(|_| TooLarge)?,
            groups: u32::try_from(user.groups.len()).map_err(|_| TooLarge)?,
            uid: user.uid,
            gid: user.gid,
            created_at: user.created_at,
            updated_at: user.updated_at,
            privileges: user.privileges,
            auth: user.auth,
            origin: user.origin,
            flags: flag(identity.is_some(), HAS_IDENTITY)
                | flag(user.password_hash.is_some(), HAS_PASSWORD_HASH)
                | flag(user.distinguished_name.is_some(), HAS_DISTINGUISHED_NAME)
                | flag(user.enabled, ENABLED)
                | flag(user.disabled_by_admin, DISABLED_BY_ADMIN)
                | flag(user.missing_since.is_some(), MISSING)
                | flag(limits.expires_day.is_some(), HAS_EXPIRY)
                | flag(limits.blocked, BLOCKED)
                | flag(limits.password_expired, PASSWORD_EXPIRED)
                | flag(packed.first_is_name, EMAIL_IS_NAME),
        })
    }

    pub fn name(&self) -> &str {
        packed_text::name(&self.text, &self.heads, self.name_start)
    }

    pub fn full_name(&self) -> &str {
        self.piece(FULL_NAME)
    }

    /// Primary address first.
    pub fn emails(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        (HEADS..HEADS + self.emails as usize).map(|at| self.piece(at))
    }

    pub fn auth(&self) -> AuthMethod {
        self.auth
    }

    pub fn enabled(&self) -> bool {
        self.has(ENABLED)
    }

    pub fn disabled_by_admin(&self) -> bool {
        self.has(DISABLED_BY_ADMIN)
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    pub fn home(&self) -> &str {
        self.piece(HOME)
    }

    /// Names of the directory groups the user belongs to.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        let first = HEADS + self.emails as usize;
        (first..first + self.groups as usize).map(|at| self.piece(at))
    }

    pub fn distinguished_name(&self) -> Option<&str> {
        self.has(HAS_DISTINGUISHED_NAME).then(|| self.piece(DISTINGUISHED_NAME))
    }

    pub fn directory_identity(&self) -> Option<&str> {
        self.has(HAS_IDENTITY).then(|| self.piece(IDENTITY))
    }

    pub fn missing_since(&self) -> Option<u64> {
        self.has(MISSING).then(|| self.word(0))
    }

    pub fn limits(&self) -> AccountLimits {
        AccountLimits {
            expires_day: self.has(HAS_EXPIRY).then(|| {
                let after_missing = usize::from(self.has(MISSING));
                self.word(after_missing) as i64
            }),
            blocked: self.has(BLOCKED),
            password_expired: self.has(PASSWORD_EXPIRED),
        }
    }

    /// The user opened up, copied: every string and list exactly as long as it is, as the
    /// cache's reader makes them.
    pub fn to_user(&self) -> User {
        User {
            name: self.name().to_string(),
            full_name: self.full_name().to_string(),
            emails: self.emails().map(str::to_string).collect(),
            auth: self.auth,
            password_hash: self.has(HAS_PASSWORD_HASH).then(|| self.piece(PASSWORD_HASH).into()),
            privileges: self.privileges,
            enabled: self.enabled(),
            disabled_by_admin: self.disabled_by_admin(),
            origin: self.origin,
            uid: self.uid,
            gid: self.gid,
            home: self.home().to_string(),
            shell: self.piece(SHELL).to_string(),
            groups: self.groups().map(str::to_string).collect(),
            distinguished_name: self.distinguished_name().map(str::to_string),
            directory_identity: self.directory_identity().map(str::to_string),
            missing_since: self.missing_since(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            limits: self.limits(),
        }
    }

    /// What follows the pieces in `text`.
    fn tail(&self) -> packed_text::Tail {
        let pieces = self.emails as usize + self.groups as usize;
        let words = usize::from(self.has(MISSING)) + usize::from(self.has(HAS_EXPIRY));
        let name_first = self.has(EMAIL_IS_NAME).then_some(self.name_start);
        packed_text::Tail { pieces, words, name_first }
    }

    /// The `at`th word after the list ends (see `text`).
    fn word(&self, at: usize) -> u64 {
        packed_text::word(&self.text, self.tail(), at)
    }

    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The `at`th piece of `text` (see its documentation).
    fn piece(&self, at: usize) -> &str {
        packed_text::piece(&self.text, &self.heads, self.tail(), at)
    }
}

impl HeldUser for CachedUser {
    fn facts(&self) -> UserFacts<'_> {
        UserFacts {
            name: self.name(),
            uid: self.uid,
            gid: self.gid,
            home: self.home(),
            missing_since: self.missing_since(),
            may_hold_local_groups: account_may_hold_local_groups(
                self.enabled(),
                &self.limits(),
                &self.privileges,
            ),
        }
    }

    fn user(&self) -> Cow<'_, User> {
        Cow::Owned(self.to_user())
    }
}

impl fmt::Debug for CachedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_user().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privileges::Privilege;
    use crate::user::sample_user;

    fn round_trip(user: &User) {
        let cached = CachedUser::new(user).unwrap();
        assert_eq!(&cached.to_user(), user);
        assert_eq!(cached.name(), user.name);
        assert_eq!(cached.home(), user.home);
        assert_eq!(cached.directory_identity(), user.directory_identity.as_deref());
        assert_eq!(cached.emails().len(), user.emails.len());
        assert_eq!(cached.groups().len(), user.groups.len());
        assert_eq!(cached.facts(), user.facts());
        assert_eq!(&*cached.user(), user);
    }

    #[test]
    fn a_cached_user_is_smaller_than_a_user_before_its_text() {
        // What the module's documentation says it saves, per user a sync holds.
        assert_eq!(std::mem::size_of::<CachedUser>(), 88);
        assert_eq!(std::mem::size_of::<User>(), 288);
    }

    #[test]
    fn a_cached_user_opens_up_as_the_user_it_was_made_from() {
        let plain = sample_user("alice", 1_879_048_299);
        round_trip(&plain);
        // Every field set, and set apart from the others of its type, so that two fields
        // read in each other's place cannot open up equal.
        let full = User {
            full_name: "Alice Ä".into(),
            emails: vec!["alice@example.com".into(), "al@example.com".into()],
            auth: AuthMethod::Local,
            password_hash: Some("$argon2id$hash".into()),
            privileges: [Privilege::Login, Privilege::Admin].into(),
            enabled: false,
            disabled_by_admin: true,
            origin: Origin::ApplicationIntegration,
            gid: 1_879_048_300,
            home: "/home/alice2".into(),
            shell: "/bin/zsh".into(),
            groups: vec!["staff".into(), "wheel".into()],
            distinguished_name: Some("UID=alice".into()),
            directory_identity: Some("application-integration:alice".into()),
            missing_since: Some(5),
            created_at: 6,
            updated_at: 7,
            limits: AccountLimits {
                expires_day: Some(20_000),
                blocked: true,
                password_expired: true,
            },
            ..plain.clone()
        };
        round_trip(&full);
        // Set but empty is not absent; an identity that does not end with the name; one
        // address and no group, one group and no address.
        round_trip(&User {
            password_hash: Some(String::new()),
            distinguished_name: Some(String::new()),
            directory_identity: Some("icewarp:someone-else@example.com".into()),
            emails: vec![],
            groups: vec!["staff".into()],
            limits: AccountLimits { expires_day: Some(-3), ..AccountLimits::default() },
            ..full.clone()
        });
        round_trip(&User {
            directory_identity: Some(String::new()),
            name: String::new(),
            emails: vec!["a@b".into()],
            groups: vec![],
            ..full.clone()
        });
        round_trip(&User { directory_identity: Some("alice".into()), ..full.clone() });
        // The first address is the name (as an IceWarp user's is), or the second one is.
        for emails in [["alice", "al@example.com"], ["al@example.com", "alice"]] {
            let emails = emails.map(str::to_string).to_vec();
            round_trip(&User { emails: emails.clone(), ..full.clone() });
            round_trip(&User { emails, directory_identity: None, ..full.clone() });
        }
        // An expiry without `missing_since`, a day before 1970, and the largest values.
        round_trip(&User { missing_since: None, ..full.clone() });
        round_trip(&User {
            missing_since: Some(u64::MAX),
            limits: AccountLimits { expires_day: Some(i64::MIN), ..full.limits },
            ..full.clone()
        });
        // Who may hold local groups: enabled, not blocked, with the login privilege.
        round_trip(&User { enabled: true, ..full.clone() });
        let may = User { enabled: true, limits: AccountLimits::default(), ..full.clone() };
        assert!(may.may_hold_local_groups());
        round_trip(&may);
        round_trip(&User { privileges: [Privilege::Admin].into(), ..may });
    }
}
