//! The Application Integration client (`docs/protocols/application-integration.md`):
//! `cmd=list` returns every user as one JSON array, `cmd=auth` checks a password.

use std::cell::Cell;
use std::fmt;
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer};

use super::http::{Credentials, HttpClient};
use super::{
    unique_folded, CompactUser, DirectoryError, DirectoryUser, Listing, ListingBudget, OverBudget,
    PasswordCheck, Progress,
};
use crate::config::{Config, ReplyLimit};
use crate::user::Origin;

/// An Application Integration server, as configured. Made per use.
pub struct AppIntDirectory {
    http: HttpClient,
    server: String,
    reply_limit: ReplyLimit,
}

/// Why a `cmd=list` reply was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersError {
    Malformed(String),
    /// More users than the listing budget allows (see [`ListingBudget`]).
    OverBudget,
}

/// One element of the `cmd=list` array. Only these fields are read; others are skipped
/// without being kept.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "distinguishedName", default)]
    distinguished_name: Option<String>,
    #[serde(rename = "fullName", default)]
    full_name: Option<String>,
    #[serde(rename = "emailAddresses", default)]
    email_addresses: Option<Vec<String>>,
}

impl AppIntDirectory {
    /// Reads what the client needs from `config`; contacts nothing. The Basic credentials
    /// are needed for both calls, so a configured but unreadable password is an error here.
    pub fn new(config: &Config) -> Result<AppIntDirectory, DirectoryError> {
        let directory = &config.directory;
        let url = directory.url.clone().ok_or_else(|| {
            DirectoryError::NotConfigured(
                "directory.url is required for an Application Integration directory".to_string(),
            )
        })?;
        let credentials = match &directory.username {
            None => None,
            Some(username) => {
                let password = config
                    .directory_password()
                    .map_err(|err| DirectoryError::NotConfigured(err.to_string()))?
                    .ok_or_else(|| {
                        DirectoryError::NotConfigured(
                            "directory.username is set, so the server requires authentication: \
                             set directory.password or directory.password_file too"
                                .to_string(),
                        )
                    })?;
                Some(Credentials { username: username.clone(), password })
            }
        };
        let http = HttpClient::new(&url, &url, directory, credentials)?;
        Ok(AppIntDirectory { http, server: url, reply_limit: directory.reply_limit() })
    }

    fn malformed(&self, command: &str, reason: impl Into<String>) -> DirectoryError {
        DirectoryError::Malformed {
            server: self.server.clone(),
            command: command.to_string(),
            reason: reason.into(),
        }
    }
}

impl super::Directory for AppIntDirectory {
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        let command = "list";
        let mut budget = ListingBudget::new(self.reply_limit);
        // Parsed as it arrives: the reply (some 150 bytes per user) is never held whole.
        let parsed = self.http.post_form_streamed(command, &[("cmd", b"list")], |reply| {
            parse_users_from(reply, &mut budget)
        })?;
        let (users, warnings) = parsed.map_err(|err| match err {
            UsersError::Malformed(reason) => self.malformed(command, reason),
            UsersError::OverBudget => budget.error(&self.server, command),
        })?;
        progress.step("accounts", u64::try_from(users.len()).unwrap_or(u64::MAX), None);
        Ok(Listing { origin: Origin::ApplicationIntegration, users, groups: Vec::new(), warnings })
    }

    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        if !super::may_ask(login, password) {
            return Ok(PasswordCheck::NotAsked);
        }
        let command = "auth";
        self.http.expect_answers();
        let body = self.http.post_form(
            command,
            &[("cmd", b"auth"), ("user", login.as_bytes()), ("pass", password)],
        )?;
        match parse_auth_reply(&body) {
            Ok(true) => Ok(PasswordCheck::Accepted),
            Ok(false) => Ok(PasswordCheck::Rejected),
            Err(reason) => Err(self.malformed(command, reason)),
        }
    }

    fn server(&self) -> &str {
        &self.server
    }
}

/// Parses a `cmd=list` reply into users (names listed twice apart from case dropped, every
/// spelling) and warnings, each
/// user charged to `budget` as it is read. Streams from the byte buffer into the typed
/// [`Entry`]: no tree of every user, and unknown members are skipped without being kept.
pub fn parse_users(
    body: &[u8],
    budget: &mut ListingBudget,
) -> Result<(Vec<CompactUser>, Vec<String>), UsersError> {
    parse_with(serde_json::Deserializer::from_slice(body), budget)
}

/// [`parse_users`] from a reader, as the reply arrives: neither the reply nor a tree of it
/// is ever held whole.
pub fn parse_users_from(
    reply: impl Read,
    budget: &mut ListingBudget,
) -> Result<(Vec<CompactUser>, Vec<String>), UsersError> {
    parse_with(
        serde_json::Deserializer::from_reader(BufReader::with_capacity(64 << 10, reply)),
        budget,
    )
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    budget: &mut ListingBudget,
) -> Result<(Vec<CompactUser>, Vec<String>), UsersError> {
    let element = Cell::new(None);
    let over_budget = Cell::new(false);
    let mut warnings = Vec::new();
    let seed =
        UsersSeed { element: &element, over_budget: &over_budget, budget, warnings: &mut warnings };
    let parsed = seed.deserialize(&mut deserializer).and_then(|users| {
        deserializer.end()?;
        Ok(users)
    });
    match parsed {
        Ok(users) => Ok((users, warnings)),
        Err(_) if over_budget.get() => Err(UsersError::OverBudget),
        Err(err) => Err(UsersError::Malformed(match element.get() {
            Some(index) => format!("element {index} of the user array: {err}"),
            None => format!("not a JSON array of user objects: {err}"),
        })),
    }
}

struct UsersSeed<'a> {
    /// The index of the element being read, for the error message.
    element: &'a Cell<Option<usize>>,
    /// Set when the budget ran out, which ends the parse with an error.
    over_budget: &'a Cell<bool>,
    budget: &'a mut ListingBudget,
    warnings: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for UsersSeed<'_> {
    type Value = Vec<CompactUser>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for UsersSeed<'_> {
    type Value = Vec<CompactUser>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of user objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Every entry, case twins included: they are found afterwards by their identity,
        // which is the folded name, without a map of every name on the side.
        let mut users: Vec<CompactUser> = Vec::new();
        let mut index = 0_usize;
        loop {
            self.element.set(Some(index));
            let Some(entry) = seq.next_element::<Entry>()? else { break };
            if self.budget.accounts(1) == Err(OverBudget) {
                self.over_budget.set(true);
                return Err(de::Error::custom("over the listing budget"));
            }
            if entry.user_name.trim().is_empty() {
                return Err(de::Error::custom("userName is empty"));
            }
            let key = entry.user_name.to_lowercase();
            let emails = unique_folded(
                entry
                    .email_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(|address| address.trim().to_string())
                    .filter(|address| !address.is_empty()),
            );
            let user = CompactUser::new(DirectoryUser {
                // Exactly as long as it is (`format!` keeps room for twice the prefix): one
                // per listed user, and it becomes the cached user's.
                identity: ["application-integration:", &key].concat(),
                login_name: entry.user_name,
                full_name: entry.full_name.unwrap_or_default(),
                emails,
                enabled: true,
                distinguished_name: entry.distinguished_name.filter(|dn| !dn.is_empty()),
                // The protocol carries no validity date nor lock
                // (docs/protocols/application-integration.md).
                limits: crate::user::AccountLimits::default(),
            })
            .map_err(|_| de::Error::custom("the user's text is 4 GiB or more"))?;
            users.push(user);
            index += 1;
        }
        self.element.set(None);
        without_case_twins(&mut users, self.warnings);
        Ok(users)
    }
}

/// Drops every user whose name the listing holds more than once apart from case, with a
/// warning naming the spellings. Keeping one of them would let the listing's order decide
/// which directory account a login name (and its uid) stands for; two hosts listing in
/// different orders would check different accounts' passwords for the same person.
/// Twins share their identity (the folded name): sorted by it, they stand side by side.
/// The warnings come in the order each name was first listed, spellings in listed order.
fn without_case_twins(users: &mut Vec<CompactUser>, warnings: &mut Vec<String>) {
    let mut order: Vec<usize> = (0..users.len()).collect();
    // Stable: the spellings of one name keep their listed order.
    order.sort_by(|a, b| users[*a].identity().cmp(users[*b].identity()));
    let mut twins: Vec<(usize, Vec<String>)> = Vec::new();
    let mut dropped = vec![false; users.len()];
    for run in order.chunk_by(|a, b| users[*a].identity() == users[*b].identity()) {
        if run.len() > 1 {
            for position in run {
                dropped[*position] = true;
            }
            let names =
                run.iter().map(|position| users[*position].login_name().to_string()).collect();
            twins.push((run[0], names));
        }
    }
    drop(order);
    twins.sort_by_key(|(first, _)| *first);
    for (_, names) in twins {
        warnings.push(format!(
            "users {names:?} differ only in case; none of them is synced until the \
             directory lists one"
        ));
    }
    let mut position = 0;
    users.retain(|_| {
        let keep = !dropped[position];
        position += 1;
        keep
    });
    // Grown by doubling while read, the vector may be up to twice the listing; it is held
    // through the whole plan, so the slack is given back now, while little else is held.
    users.shrink_to_fit();
}

/// `Ok(success)` only for a JSON object with exactly one boolean `success`. A string
/// `"true"`, an array, a missing or repeated key are all errors: anything that is not a
/// clear answer is an outage, never a yes.
pub fn parse_auth_reply(body: &[u8]) -> Result<bool, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let success = deserializer
        .deserialize_map(AuthReplyVisitor)
        .and_then(|success| {
            deserializer.end()?;
            Ok(success)
        })
        // serde's own message quotes the offending value, which a broken server might have
        // filled with the submitted password: say only what kind of problem, and where.
        .map_err(|err| {
            format!(
                "not a JSON object with exactly one boolean \"success\" ({:?} problem at line \
                 {}, column {})",
                err.classify(),
                err.line(),
                err.column()
            )
        })?;
    success.ok_or_else(|| "the JSON object has no \"success\" member".to_string())
}

struct AuthReplyVisitor;

impl<'de> de::Visitor<'de> for AuthReplyVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a boolean \"success\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut success = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "success" {
                if success.is_some() {
                    return Err(de::Error::custom("\"success\" appears twice"));
                }
                success = Some(map.next_value::<bool>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(success)
    }
}

#[cfg(test)]
mod tests;
