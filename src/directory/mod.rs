//! Directory clients: what dircache reads from an IceWarp Server or an Application
//! Integration server. Read-only: nothing here ever changes the directory.
//!
//! Both clients implement [`Directory`]; the sync engine and the PAM module use only the
//! trait. A client is made per use and dropped afterwards (sshd forks; a client made before
//! a fork would be dead after it).

use std::collections::HashSet;

use thiserror::Error;

use crate::config::{Config, DirectoryKind, ReplyLimit};
use crate::user::{AccountLimits, Origin};

pub mod appint;
pub mod compact;
pub mod http;
pub mod icewarp;
pub mod parallel;

pub use appint::AppIntDirectory;
pub use compact::CompactUser;
pub use icewarp::IcewarpDirectory;

/// One account as the directory describes it, already normalized by the client: what a
/// client builds and edits; a [`Listing`] holds it as a [`CompactUser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The Linux login name the client derived (`login_name = "email" | "mailbox"` for
    /// IceWarp; `userName` for Application Integration). Not yet validated as a Unix name:
    /// the sync planner does that and skips invalid ones with a reason.
    pub login_name: String,
    /// A stable, case-folded identity for id allocation and matching across runs, e.g.
    /// `icewarp:alice@example.com` or `application-integration:john.doe`.
    pub identity: String,
    pub full_name: String,
    /// Primary address first, then aliases; no duplicates.
    pub emails: Vec<String>,
    pub enabled: bool,
    pub distinguished_name: Option<String>,
    /// Validity date, lock, password marked expired (IceWarp); none for Application
    /// Integration, whose protocol carries none.
    pub limits: AccountLimits,
}

/// A directory group (IceWarp type-7 account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The group's address, e.g. `staff@example.com`; becomes the Unix group name.
    pub name: String,
    pub identity: String,
    /// The member users, as positions in the listing's `users`, each once (resolved;
    /// `[domain]` tokens expanded; unknown and external members dropped with a warning).
    /// Positions rather than identities: a group may hold every user of a domain, and an
    /// identity held again per membership would cost more than the user's own entry. The
    /// only record of membership: a user's groups are the groups that list it (see
    /// [`Memberships`]), not written again in its entry.
    pub members: Vec<u32>,
}

/// The groups of every listed user: positions in [`Listing::groups`], in their order,
/// found from the groups' members. 4 bytes per user and per membership, built while the
/// sync plans, instead of each group's name written into every member's entry for the
/// whole listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    /// Where each user's groups start in `groups`; one more than the users, the last
    /// being `groups`' length.
    starts: Vec<u32>,
    groups: Vec<u32>,
}

impl Memberships {
    /// The memberships of the `users` listed users in `groups` (a member position past
    /// them names nobody). Counted first, so that both vectors are made exactly as long as
    /// they are.
    pub fn new(users: usize, groups: &[DirectoryGroup]) -> Memberships {
        let members = || {
            let positions = groups.iter().enumerate();
            let members = positions.flat_map(|(at, g)| g.members.iter().map(move |m| (at, *m)));
            members.filter(move |(_, member)| (*member as usize) < users)
        };
        let mut starts = vec![0u32; users + 1];
        for (_, member) in members() {
            starts[member as usize + 1] += 1;
        }
        for at in 1..starts.len() {
            starts[at] += starts[at - 1];
        }
        let mut next = starts.clone();
        let mut listed = vec![0u32; starts.last().map_or(0, |total| *total as usize)];
        for (group, member) in members() {
            let slot = &mut next[member as usize];
            listed[*slot as usize] = u32::try_from(group).unwrap_or(u32::MAX);
            *slot += 1;
        }
        Memberships { starts, groups: listed }
    }

    /// The groups of the user at `at` (positions in the listing's groups), in their order.
    pub fn of(&self, at: usize) -> &[u32] {
        let start = self.starts.get(at).map_or(0, |start| *start as usize);
        let end = at.checked_add(1).and_then(|next| self.starts.get(next));
        let end = end.map_or(start, |end| *end as usize);
        self.groups.get(start..end).unwrap_or_default()
    }
}

/// Everything one listing returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub origin: Origin,
    /// Held compactly (a listing is held whole while the sync plans): see [`CompactUser`].
    pub users: Vec<CompactUser>,
    pub groups: Vec<DirectoryGroup>,
    /// Things worth telling the administrator that did not stop the listing (an external
    /// group member, a case-only duplicate, …).
    pub warnings: Vec<String>,
}

impl Listing {
    /// The names of the groups that list the user at `at` as a member, in the listing's
    /// order (by a pass over every group: the planner indexes them with [`Memberships`]).
    pub fn groups_of(&self, at: usize) -> impl Iterator<Item = &str> {
        let member = u32::try_from(at).ok();
        let listed = move |g: &&DirectoryGroup| member.is_some_and(|m| g.members.contains(&m));
        self.groups.iter().filter(listed).map(|g| g.name.as_str())
    }
}

/// The directory's answer to "is this the user's password?". Anything that is not an
/// answer (network, TLS, HTTP status, garbage) is a [`DirectoryError`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    Rejected,
    /// Right password, but the directory says the account is disabled.
    AccountDisabled,
    /// The directory wants a second factor, which PAM cannot give it yet.
    SecondFactorRequired,
    /// Refused without asking the directory: an empty login or password, or one the
    /// protocol cannot carry. Not the directory's answer, so it says nothing about a
    /// password cached for offline logins.
    NotAsked,
}

/// How far a listing has come, for a progress line on a terminal.
pub trait Progress {
    fn step(&mut self, what: &str, done: u64, total: Option<u64>);
}

/// A progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _what: &str, _done: u64, _total: Option<u64>) {}
}

#[derive(Debug, Error)]
pub enum DirectoryError {
    /// Nothing at the directory's address could be reached: see [`Failure::Unreachable`].
    #[error("{server}: {command}: cannot connect: {reason}")]
    Connect { server: String, command: String, reason: String },
    #[error("{server}: {command}: no answer within {secs} s (directory.timeout_secs bounds each request as a whole)")]
    Timeout { server: String, command: String, secs: u64 },
    #[error("{server}: {command}: TLS verification failed: {reason} (a private CA belongs in directory.ca_file; an unexpected certificate may be an interception)")]
    Tls { server: String, command: String, reason: String },
    #[error("{server}: {command}: HTTP status {status}")]
    HttpStatus { server: String, command: String, status: u16 },
    /// A redirect dircache does not follow (another origin, too many).
    #[error("{server}: {command}: {reason}")]
    Redirect { server: String, command: String, reason: String },
    /// The connection was made, then broke: reset, closed before the whole reply came.
    #[error("{server}: {command}: the connection failed after it was made: {reason}")]
    Transport { server: String, command: String, reason: String },
    #[error(
        "{server}: {command}: the reply is larger than directory.{key} allows ({limit} bytes)"
    )]
    TooLarge { server: String, command: String, key: &'static str, limit: u64 },
    /// See [`ListingBudget`].
    #[error("{server}: {command}: the listing holds more than directory.{key} allows ({limit} bytes, counting {ACCOUNT_COST} bytes per account and {MEMBER_COST} per group member: about what each costs in memory during a sync); raise it if the directory is that large")]
    TooMany { server: String, command: String, key: &'static str, limit: u64 },
    #[error("{server}: {command}: the server answered with error {uid:?}")]
    Api { server: String, command: String, uid: String },
    #[error("{server}: {command}: malformed reply: {reason}")]
    Malformed { server: String, command: String, reason: String },
    #[error("{server}: administrator login failed: {reason}")]
    AdminLogin { server: String, reason: String },
    #[error("{server}: the filter names {kind} {name:?}, which does not exist (a typo here with delete_missing_users would empty the cache)")]
    FilterNotFound { server: String, kind: &'static str, name: String },
    #[error("{server}: {command}: {reason}")]
    Other { server: String, command: String, reason: String },
    #[error("the directory is not configured: {0}")]
    NotConfigured(String),
}

/// What a failed request means for a login (SECURITY.md, "An attacker on the network").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing at the directory's address could be reached: connection refused, no route
    /// to the host or network, no DNS answer, or no TCP connection within
    /// `connect_timeout_secs`. The only case in which offline credentials may be used.
    Unreachable,
    /// Something answered, but not as the directory does: a TLS failure (untrusted
    /// certificate, wrong host name, failed handshake), an HTTP error status, a redirect
    /// elsewhere (a captive portal), a malformed or oversized reply, a connection broken after it was made, or no complete answer
    /// before the deadline. Whoever can make the directory look like this (an interceptor
    /// with its own certificate, a proxy) must not get offline logins: fails closed and is
    /// logged as a possible attack. A slow answer belongs here too, since IceWarp answers a
    /// wrong password slowly on purpose.
    Suspicious,
    /// Neither: dircache's own configuration or set-up, or an answer that is the
    /// directory's (an error code, a refused administrator). Fails closed.
    Other,
}

impl DirectoryError {
    /// The one rule deciding what a failure means; [`DirectoryError::is_unreachable`] and
    /// the PAM module's logging follow it.
    pub fn failure(&self) -> Failure {
        match self {
            DirectoryError::Connect { .. } => Failure::Unreachable,
            DirectoryError::Timeout { .. }
            | DirectoryError::Tls { .. }
            | DirectoryError::HttpStatus { .. }
            | DirectoryError::Redirect { .. }
            | DirectoryError::Transport { .. }
            | DirectoryError::TooLarge { .. }
            | DirectoryError::TooMany { .. }
            | DirectoryError::Malformed { .. } => Failure::Suspicious,
            DirectoryError::Api { .. }
            | DirectoryError::AdminLogin { .. }
            | DirectoryError::FilterNotFound { .. }
            | DirectoryError::Other { .. }
            | DirectoryError::NotConfigured(_) => Failure::Other,
        }
    }

    /// Whether offline credentials may be used: [`Failure::Unreachable`] only.
    pub fn is_unreachable(&self) -> bool {
        self.failure() == Failure::Unreachable
    }
}

/// What one account (a user or a group) is charged against the reply cap, and what one
/// group member is: about what each costs in memory while a sync runs (the listing, the
/// plan and the new cache records; README, HARDENING). Without it a reply of tiny entries
/// (`{"userName":"u1"},`, 19 bytes) costs fifty times its size.
pub const ACCOUNT_COST: u64 = 1024;
pub const MEMBER_COST: u64 = 128;

/// The memory one listing may claim, from the reply cap (`max_reply_mib`): every account
/// and every group member it brings is charged, and the listing is refused
/// ([`DirectoryError::TooMany`]) when the charges pass the cap. So the peak memory of a
/// sync stays a small multiple of the cap, whatever the replies hold (each reply on its
/// own is capped by the transport).
#[derive(Debug)]
pub struct ListingBudget {
    limit: ReplyLimit,
    spent: u64,
}

/// The budget is spent; the caller makes its [`DirectoryError::TooMany`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl ListingBudget {
    pub fn new(limit: ReplyLimit) -> ListingBudget {
        ListingBudget { limit, spent: 0 }
    }

    /// A budget that never runs out, for parsing without a configuration (fuzzing, tests).
    pub fn unlimited() -> ListingBudget {
        ListingBudget::new(ReplyLimit { bytes: u64::MAX, key: "max_reply_mib" })
    }

    pub fn accounts(&mut self, count: usize) -> Result<(), OverBudget> {
        self.charge(count, ACCOUNT_COST)
    }

    pub fn members(&mut self, count: usize) -> Result<(), OverBudget> {
        self.charge(count, MEMBER_COST)
    }

    fn charge(&mut self, count: usize, each: u64) -> Result<(), OverBudget> {
        let cost = u64::try_from(count).unwrap_or(u64::MAX).saturating_mul(each);
        self.spent = self.spent.saturating_add(cost);
        if self.spent > self.limit.bytes {
            return Err(OverBudget);
        }
        Ok(())
    }

    pub fn error(&self, server: &str, command: &str) -> DirectoryError {
        DirectoryError::TooMany {
            server: server.to_string(),
            command: command.to_string(),
            key: self.limit.key,
            limit: self.limit.bytes,
        }
    }
}

/// The case-insensitive form of an address or domain name (full Unicode lower case:
/// either may be internationalized).
pub fn fold_key(text: &str) -> String {
    text.to_lowercase()
}

/// `items` without case-insensitive repeats, each kept in the spelling and at the place it
/// first had. Linear: one account may list thousands of addresses. Exactly as long as it
/// is: a listing holds one per account, and the room a growing vector leaves (four
/// addresses for one) would be most of its size.
pub fn unique_folded(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut unique: Vec<String> =
        items.into_iter().filter(|item| seen.insert(fold_key(item))).collect();
    unique.shrink_to_fit();
    unique
}

/// Whether a password check may go to the directory at all: never with an empty login or
/// password, since a directory that treats an empty password as an anonymous login must not
/// let anyone in. Otherwise the answer is [`PasswordCheck::NotAsked`].
pub fn may_ask(login: &str, password: &[u8]) -> bool {
    !login.is_empty() && !password.is_empty()
}

/// A directory server, read-only.
pub trait Directory {
    /// Lists every user (and group) the configured filters select.
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError>;

    /// Asks the directory whether `password` is `login`'s password. `login` is the
    /// address (IceWarp) or user name (Application Integration) the cache recorded.
    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError>;

    /// For messages: the server or URL.
    fn server(&self) -> &str;
}

/// The configured directory client. Contacts nothing yet: the first request happens in
/// [`Directory::list`] or [`Directory::check_password`]. Call it where the client is used
/// (after any `fork()`), and drop the client afterwards.
///
/// An IceWarp client needs `directory.server`; the administrator credentials are only
/// needed (and only reported missing) by `list`. An Application Integration client needs
/// `directory.url`, and the password as soon as `directory.username` is set.
pub fn connect(config: &Config) -> Result<Box<dyn Directory>, DirectoryError> {
    match config.directory.kind {
        DirectoryKind::None => Err(not_configured()),
        DirectoryKind::Icewarp => Ok(Box::new(IcewarpDirectory::new(config)?)),
        DirectoryKind::ApplicationIntegration => Ok(Box::new(AppIntDirectory::new(config)?)),
    }
}

/// The client for [`Directory::check_password`] at login (the PAM module), which reads no
/// more secrets than the check needs. IceWarp checks a password with the user's own
/// credentials (`getauthtoken`), so the administrator password is never read: a process
/// answering a login never holds it. An Application Integration server that requires
/// authentication wants the configured HTTP Basic credentials on every request, `cmd=auth`
/// included, so there the password is still read when `directory.username` is set.
pub fn connect_for_login(config: &Config) -> Result<Box<dyn Directory>, DirectoryError> {
    match config.directory.kind {
        DirectoryKind::None => Err(not_configured()),
        DirectoryKind::Icewarp => Ok(Box::new(IcewarpDirectory::for_login(config)?)),
        DirectoryKind::ApplicationIntegration => Ok(Box::new(AppIntDirectory::new(config)?)),
    }
}

/// Whether a sync could start with this configuration, contacting nothing: the address,
/// and the credentials a listing needs, there and readable. The reason names the key.
pub fn ready_to_list(config: &Config) -> Result<(), DirectoryError> {
    match config.directory.kind {
        DirectoryKind::None => Ok(()),
        DirectoryKind::Icewarp => IcewarpDirectory::new(config)?.require_admin(),
        DirectoryKind::ApplicationIntegration => AppIntDirectory::new(config).map(|_| ()),
    }
}

fn not_configured() -> DirectoryError {
    DirectoryError::NotConfigured(
        "directory.type is \"none\"; set it to \"icewarp\" or \"application-integration\""
            .to_string(),
    )
}

#[cfg(test)]
mod tests;
