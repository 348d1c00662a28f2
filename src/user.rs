//! The user model: one account as the cache records it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::privileges::{Privilege, PrivilegeSet};

/// Who checks a user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// A password hash kept in the cache's private part.
    Local,
    /// The directory checks the password at each login.
    Directory,
}

/// Where an account came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Manual,
    Icewarp,
    ApplicationIntegration,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Local => "local",
            AuthMethod::Directory => "directory",
        }
    }
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Manual => "manual",
            Origin::Icewarp => "icewarp",
            Origin::ApplicationIntegration => "application-integration",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown authentication method {0:?}; use \"local\" or \"directory\"")]
pub struct UnknownAuthMethod(pub String);

impl FromStr for AuthMethod {
    type Err = UnknownAuthMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(AuthMethod::Local),
            "directory" => Ok(AuthMethod::Directory),
            other => Err(UnknownAuthMethod(other.to_string())),
        }
    }
}

/// One account, complete. This is what the cache's private part stores; the public part
/// (what NSS reads) is derived from it by [`crate::cache::PublicUser::from_user`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub full_name: String,
    /// Primary address first.
    #[serde(default, deserialize_with = "exact_strings")]
    pub emails: Vec<String>,
    pub auth: AuthMethod,
    /// Argon2id PHC string; only for `local` users that have a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    pub privileges: PrivilegeSet,
    pub enabled: bool,
    /// Disabled by `dircache-sync user set --disable`: a sync never enables it again, whatever
    /// the directory says, until `--enable`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled_by_admin: bool,
    pub origin: Origin,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Names of the directory groups the user belongs to.
    #[serde(default, deserialize_with = "exact_strings")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinguished_name: Option<String>,
    /// The directory's stable identity of this account (`icewarp:alice@example.com`), set
    /// for users created or linked by a sync; how the next sync finds them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_identity: Option<String>,
    /// When a sync first found this directory account no longer listed (seconds since the
    /// epoch); cleared when it is listed again. An address that comes back may belong to
    /// someone else: the sync that sees it return resets its privileges (see
    /// `sync::plan`), and its login state was dropped when it vanished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<u64>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// What the directory says limits the account besides `enabled` (validity date, lock,
    /// password marked expired). Not stored when there is none: older records read as none.
    /// Last, because users.private stores records as arrays (`cache::records::StoredUser`).
    #[serde(default, skip_serializing_if = "AccountLimits::is_none")]
    pub limits: AccountLimits,
}

/// What is read of every user once a sync has planned, whichever form holds the users: a
/// [`User`], or the compact `cache::CachedUser` in which a sync holds them (README,
/// PERFORMANCE: peak RSS per user). Applying the plan, the grants, the seal, the commit and
/// the pruning of login states read every user through it.
pub trait HeldUser {
    /// The few fields read of every user.
    fn facts(&self) -> UserFacts<'_>;
    /// The whole user: itself, or opened up.
    fn user(&self) -> Cow<'_, User>;
}

/// See [`HeldUser::facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFacts<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
    pub missing_since: Option<u64>,
    /// [`User::may_hold_local_groups`].
    pub may_hold_local_groups: bool,
}

impl HeldUser for User {
    fn facts(&self) -> UserFacts<'_> {
        UserFacts {
            name: &self.name,
            uid: self.uid,
            gid: self.gid,
            home: &self.home,
            missing_since: self.missing_since,
            may_hold_local_groups: self.may_hold_local_groups(),
        }
    }

    fn user(&self) -> Cow<'_, User> {
        Cow::Borrowed(self)
    }
}

/// [`User::may_hold_local_groups`] of an account's fields, whichever form holds them (a
/// sync's compact `cache::CachedUser` too): the rule spelled once.
pub fn account_may_hold_local_groups(
    enabled: bool,
    limits: &AccountLimits,
    privileges: &PrivilegeSet,
) -> bool {
    enabled && !limits.blocked && privileges.contains(&Privilege::Login)
}

/// The expiry day of an account whose validity cannot be read: 1970-01-02 (shadow(5)
/// warns that 0 may be read as "never expires").
pub const EXPIRED_LONG_AGO: i64 = 1;

/// Seconds in a day: shadow counts days since 1970-01-01 (UTC).
const DAY_SECS: u64 = 86_400;

/// What the directory says limits an account besides `enabled` (IceWarp:
/// `U_AccountValidTill`, `U_Blocked`, `U_PasswordExpired`; docs/protocols/icewarp.md).
/// PAM's `account` step refuses a user any of them applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLimits {
    /// The first day (days since 1970-01-01, UTC) on which the account no longer works:
    /// shadow's `sp_expire`, as `pam_unix` reads it (expired when today >= this day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_day: Option<i64>,
    /// Locked by the directory's login policy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub blocked: bool,
    /// The directory marked the password expired: it must be changed there (webmail)
    /// before the next login; dircache cannot change a directory password.
    #[serde(default, skip_serializing_if = "is_false")]
    pub password_expired: bool,
}

impl AccountLimits {
    pub fn is_none(&self) -> bool {
        *self == AccountLimits::default()
    }

    /// Whether the validity date has passed at `now` (seconds since the epoch).
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires_day.is_some_and(|day| day_number(now) >= day)
    }
}

/// The day (since 1970-01-01, UTC) that `secs` (since the epoch) falls on.
pub fn day_number(secs: u64) -> i64 {
    i64::try_from(secs / DAY_SECS).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; `None` for a date that does not
/// exist (month 13, February 30). Howard Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_date(days: i64) -> String {
    // Any record may be read (a hand-edited cache): far dates must not overflow.
    let z = days.clamp(-1_000_000_000, 1_000_000_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A list of strings read without spare room: a sync holds every cached user and group,
/// and a list read element by element keeps room for four (96 bytes for one address), or
/// up to twice its length.
fn exact_strings<'de, D: serde::Deserializer<'de>>(reader: D) -> Result<Vec<String>, D::Error> {
    let mut strings = Vec::<String>::deserialize(reader)?;
    strings.shrink_to_fit();
    Ok(strings)
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl User {
    pub fn has_privilege(&self, privilege: Privilege) -> bool {
        self.privileges.contains(&privilege)
    }

    /// Whether `[unix.local_groups]` may grant this user a local group: only an enabled
    /// user who holds `login` and whom the directory has not blocked (a disabled one, or one
    /// kept out of logins, gets no local powers either). An expired account keeps its grants
    /// until the next sync after the date; it cannot log in meanwhile (`pam` refuses it in
    /// `account`). The one spelling of the rule: `grants::compute` and every commit
    /// ([`eligible_grants`]) use it, through [`account_may_hold_local_groups`].
    pub fn may_hold_local_groups(&self) -> bool {
        account_may_hold_local_groups(self.enabled, &self.limits, &self.privileges)
    }

    /// The GECOS field: the full name with anything that would break a passwd line removed.
    pub fn gecos(&self) -> String {
        self.full_name.chars().map(|c| if c == ':' || c.is_control() { ' ' } else { c }).collect()
    }
}

/// Never print the hash, even in debug output that might reach a log.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("full_name", &self.full_name)
            .field("emails", &self.emails)
            .field("auth", &self.auth)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .field("privileges", &self.privileges)
            .field("enabled", &self.enabled)
            .field("origin", &self.origin)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("home", &self.home)
            .field("shell", &self.shell)
            .field("groups", &self.groups)
            .field("missing_since", &self.missing_since)
            .field("limits", &self.limits)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A Unix group from the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    /// Member user names, as stored in the users' records.
    #[serde(default, deserialize_with = "exact_strings")]
    pub members: Vec<String>,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_identity: Option<String>,
}

/// A local group of /etc/group that `[unix.local_groups]` grants to directory users: the
/// local name and gid, unchanged, and only the members it grants (see `grants`). /etc/group
/// itself is never written; the NSS module answers for it where glibc merges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalGrant {
    pub name: String,
    pub gid: u32,
    /// Names of the cache users granted the group, sorted.
    #[serde(default)]
    pub members: Vec<String>,
}

/// `grants` with only the members that are still users of `users` and may hold local
/// groups ([`User::may_hold_local_groups`]): what every commit writes, so that `user set
/// --disable`, `--revoke login` or `user delete` takes a local group away at once, without
/// waiting for the next sync. A grant left without members is kept (the sync that computed
/// it reports its changes).
pub fn eligible_grants<U: HeldUser>(grants: &[LocalGrant], users: &[U]) -> Vec<LocalGrant> {
    // Only the members' names are held, not every user's: each commit of a million users
    // comes through here, most often with no grant at all.
    let members: std::collections::HashSet<String> = grants
        .iter()
        .flat_map(|grant| &grant.members)
        .map(|member| crate::names::fold_name(member))
        .collect();
    let eligible: std::collections::HashSet<String> = if members.is_empty() {
        std::collections::HashSet::new()
    } else {
        users
            .iter()
            .map(HeldUser::facts)
            .filter(|u| u.may_hold_local_groups)
            .map(|u| crate::names::fold_name(u.name))
            .filter(|folded| members.contains(folded))
            .collect()
    };
    grants
        .iter()
        .map(|grant| LocalGrant {
            members: grant
                .members
                .iter()
                .filter(|m| eligible.contains(&crate::names::fold_name(m)))
                .cloned()
                .collect(),
            ..grant.clone()
        })
        .collect()
}

/// A user with every field set to a plain value (local password method, manual origin,
/// `/home/NAME`, `/bin/bash`): the one fixture of the tests, examples and benchmarks, which
/// change what they need with `User { …, ..sample_user(name, uid) }`.
#[doc(hidden)]
pub fn sample_user(name: &str, uid: u32) -> User {
    User {
        name: name.to_string(),
        full_name: format!("{name} Example"),
        emails: vec![format!("{name}@example.com")],
        auth: AuthMethod::Local,
        password_hash: None,
        privileges: Privilege::defaults().into_iter().collect(),
        enabled: true,
        disabled_by_admin: false,
        origin: Origin::Manual,
        uid,
        gid: uid,
        home: format!("/home/{name}"),
        shell: "/bin/bash".to_string(),
        groups: Vec::new(),
        distinguished_name: None,
        directory_identity: None,
        missing_since: None,
        limits: AccountLimits::default(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    }
}

/// `count` reproducible indexes below `n` (xorshift, no dependency): which users the
/// benchmarks look up.
#[doc(hidden)]
pub fn sample_picks(n: u32, count: usize) -> Vec<u32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(n.max(1))) as u32
        })
        .collect()
}

/// A directory user in `groups`: the user of the NSS fixtures.
#[doc(hidden)]
pub fn sample_member(name: &str, uid: u32, groups: &[&str]) -> User {
    User {
        auth: AuthMethod::Directory,
        origin: Origin::Icewarp,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..sample_user(name, uid)
    }
}

/// A directory group of `members`: the group of the NSS fixtures.
#[doc(hidden)]
pub fn sample_group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group {
        name: name.to_string(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
        origin: Origin::Icewarp,
        directory_identity: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gecos_never_breaks_a_passwd_line() {
        let mut user = sample_user("alice", 200_001);
        user.full_name = "Alice: the\nadmin".to_string();
        assert_eq!(user.gecos(), "Alice  the admin");
    }

    #[test]
    fn debug_output_hides_the_hash() {
        let mut user = sample_user("alice", 200_001);
        user.password_hash = Some("$argon2id$secret".to_string());
        let shown = format!("{user:?}");
        assert!(!shown.contains("argon2id"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn auth_and_origin_use_the_interface_spelling() {
        assert_eq!(serde_json::to_string(&AuthMethod::Directory).unwrap(), "\"directory\"");
        assert_eq!(
            serde_json::to_string(&Origin::ApplicationIntegration).unwrap(),
            "\"application-integration\""
        );
        assert_eq!("local".parse::<AuthMethod>(), Ok(AuthMethod::Local));
        assert!("ldap".parse::<AuthMethod>().is_err());
    }

    #[test]
    fn calendar_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
        assert_eq!(days_from_civil(2026, 12, 31), Some(20_818));
        assert_eq!(days_from_civil(2025, 2, 29), None);
        assert_eq!(days_from_civil(2025, 13, 1), None);
        assert_eq!(days_from_civil(2025, 4, 31), None);
        for day in [-1, 0, 11_016, 20_818, 2_932_896] {
            let date = civil_date(day);
            let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
            assert_eq!(days_from_civil(parts[0], parts[1] as u32, parts[2] as u32), Some(day));
        }
        assert_eq!(civil_date(20_818), "2026-12-31");
    }

    #[test]
    fn an_account_expires_at_the_start_of_its_expiry_day() {
        let limits = AccountLimits { expires_day: Some(20_818), ..AccountLimits::default() };
        assert!(!limits.expired_at(20_818 * 86_400 - 1));
        assert!(limits.expired_at(20_818 * 86_400));
        assert!(!AccountLimits::default().expired_at(u64::MAX));
    }

    #[test]
    fn records_without_limits_are_stored_as_before() {
        let user = sample_user("alice", 200_001);
        let json = serde_json::to_string(&user).unwrap();
        assert!(!json.contains("limits"), "{json}");
        let limited =
            User { limits: AccountLimits { blocked: true, ..AccountLimits::default() }, ..user };
        let json = serde_json::to_string(&limited).unwrap();
        assert!(json.contains(r#""limits":{"blocked":true}"#), "{json}");
        assert_eq!(serde_json::from_str::<User>(&json).unwrap(), limited);
    }
}

/// What `user show --json` prints: everything but secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub full_name: String,
    pub emails: Vec<String>,
    pub auth: AuthMethod,
    pub has_password: bool,
    pub privileges: Vec<Privilege>,
    pub enabled: bool,
    /// Disabled by an administrator (`user set --disable`); a sync keeps it disabled.
    #[serde(default)]
    pub disabled_by_admin: bool,
    pub origin: Origin,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<String>,
    /// The local groups `[unix.local_groups]` grants the user (as of the last sync or
    /// commit); filled by `user show` from the cache's grants.
    #[serde(default)]
    pub local_groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinguished_name: Option<String>,
    /// The validity date (`YYYY-MM-DD`, UTC): the account no longer works from that day on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Locked by the directory's login policy.
    #[serde(default)]
    pub blocked: bool,
    /// The directory marked the password expired (change it in webmail).
    #[serde(default)]
    pub password_expired: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            name: user.name.clone(),
            full_name: user.full_name.clone(),
            emails: user.emails.clone(),
            auth: user.auth,
            has_password: user.password_hash.is_some(),
            privileges: user.privileges.iter().collect(),
            enabled: user.enabled,
            disabled_by_admin: user.disabled_by_admin,
            origin: user.origin,
            uid: user.uid,
            gid: user.gid,
            home: user.home.clone(),
            shell: user.shell.clone(),
            groups: user.groups.clone(),
            local_groups: Vec::new(),
            distinguished_name: user.distinguished_name.clone(),
            expires: user.limits.expires_day.map(civil_date),
            blocked: user.limits.blocked,
            password_expired: user.limits.password_expired,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}
