//! The rules of an IceWarp listing (docs/protocols/icewarp.md §6), as pure functions over
//! what the server listed: which domains are scanned, which accounts are users and which
//! are groups, a user's addresses, state and login name, how group members resolve, and
//! what the filters select. Nothing here talks to a server: `super` fetches, this decides.

use std::collections::{HashMap, HashSet};

use super::limits;
use super::wire::{Properties, PropertyValue};
use crate::config::LoginNameStyle;
use crate::directory::compact::TooLarge;
use crate::directory::{fold_key, unique_folded, CompactUser, DirectoryGroup, DirectoryUser};

/// The domain IceWarp keeps for its own services; never a source of users.
pub const INTERNAL_DOMAIN: &str = "##internalservicedomain.icewarp.com##";

/// Members not resolved are named in a warning up to this many per group.
const MAX_NAMED_UNRESOLVED: usize = 10;

/// Case-insensitive comparison of addresses and domain names, by [`fold_key`]. For the
/// short lists (filters, domains); long ones go through `unique_folded` or a map.
pub fn eq_fold(a: &str, b: &str) -> bool {
    fold_key(a) == fold_key(b)
}

/// The identity of an account (a user or a group): `icewarp:` and its address in lower case.
pub fn identity(address: &str) -> String {
    // Exactly as long as it is: one per listed user, kept in the cache's record.
    ["icewarp:", &address.to_lowercase()].concat()
}

// ---------------------------------------------------------------------------------------
// Domains and filters

/// One item of `getdomainsinfolist`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainItem {
    pub name: Option<String>,
    pub domaintype: Option<String>,
}

impl DomainItem {
    /// The fields an item is read from, in the order [`DomainItem::from_fields`] takes them.
    pub const FIELDS: &'static [&'static str] = &["name", "domaintype"];

    pub fn from_fields(fields: Vec<Option<String>>) -> DomainItem {
        let mut fields = fields.into_iter();
        DomainItem { name: fields.next().flatten(), domaintype: fields.next().flatten() }
    }
}

/// The domains of one page that hold accounts of their own: not a domain alias (type 2,
/// its accounts are the real domain's), not the internal domain. Err: why the page is
/// malformed.
pub fn listed_domains(items: Vec<DomainItem>) -> Result<Vec<String>, &'static str> {
    let mut domains = Vec::new();
    for item in items {
        let name = item.name.as_deref().map(str::trim).unwrap_or("");
        if name.is_empty() {
            return Err("a domain without <name>");
        }
        let alias = item.domaintype.as_deref().map(str::trim) == Some("2");
        if !alias && !eq_fold(name, INTERNAL_DOMAIN) {
            domains.push(name.to_string());
        }
    }
    Ok(domains)
}

/// `sync.domains` and `sync.groups`, each name trimmed and compared case-insensitively.
/// Both empty select everyone; with either set, a user is selected if it is in a filtered
/// domain or a member of a filtered group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub domains: Vec<String>,
    pub groups: Vec<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.groups.is_empty()
    }

    fn selects_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|wanted| eq_fold(wanted.trim(), domain))
    }

    fn names_group(&self, group: &str) -> bool {
        self.groups.iter().any(|wanted| eq_fold(wanted.trim(), group))
    }

    /// The first filtered domain that is not among `listed`: a typo that, with
    /// `delete_missing_users`, would empty the cache.
    pub fn missing_domain(&self, listed: &[String]) -> Option<&String> {
        first_missing(&self.domains, listed)
    }

    /// The first filtered group that is not among `groups` (the type-7 accounts listed).
    pub fn missing_group(&self, groups: &[String]) -> Option<&String> {
        first_missing(&self.groups, groups)
    }

    /// The domains whose accounts are listed. Group members may live in any domain, so a
    /// group filter needs every domain.
    pub fn scanned(&self, listed: Vec<String>) -> Vec<String> {
        if self.domains.is_empty() || !self.groups.is_empty() {
            return listed;
        }
        listed.into_iter().filter(|domain| self.selects_domain(domain)).collect()
    }
}

fn first_missing<'a>(wanted: &'a [String], listed: &[String]) -> Option<&'a String> {
    wanted.iter().find(|wanted| !listed.iter().any(|have| eq_fold(have, wanted.trim())))
}

// ---------------------------------------------------------------------------------------
// Accounts

/// One item of `getaccountsinfolist`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountItem {
    /// The display name.
    pub name: Option<String>,
    pub email: Option<String>,
    pub accounttype: Option<String>,
    /// Whether the item has an `<accountstate>` (14.x) at all.
    pub has_state: bool,
    /// `accountstate/state`.
    pub state: Option<String>,
}

impl AccountItem {
    /// The fields an item is read from, in the order [`AccountItem::from_fields`] takes them.
    pub const FIELDS: &'static [&'static str] =
        &["name", "email", "accounttype", "accountstate", "accountstate/state"];

    pub fn from_fields(fields: Vec<Option<String>>) -> AccountItem {
        let mut fields = fields.into_iter();
        AccountItem {
            name: fields.next().flatten(),
            email: fields.next().flatten(),
            accounttype: fields.next().flatten(),
            has_state: fields.next().flatten().is_some(),
            state: fields.next().flatten(),
        }
    }
}

/// An account of type 0 as the account list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUser {
    pub email: String,
    pub name: String,
    /// The index of the scanned domain that listed it.
    pub domain: usize,
    /// `accountstate/state` == 0; `None` when the item had no `accountstate` (11.x).
    pub enabled: Option<bool>,
}

/// The accounts of the scanned domains, as their pages arrive.
#[derive(Debug, Default)]
pub struct Accounts {
    pub users: Vec<ListedUser>,
    /// The addresses of the groups (type 7); other types are no users.
    pub groups: Vec<String>,
    /// Every address listed so far, folded.
    seen: HashSet<String>,
}

impl Accounts {
    /// The users and the groups' addresses, once every page is in. The addresses seen (a
    /// string and a slot per account, about as large as the users themselves) are given
    /// back here, before the users' properties are fetched and kept, rather than with the
    /// listing's end: freed then, they would leave a gap of that size in the heap.
    pub fn into_lists(self) -> (Vec<ListedUser>, Vec<String>) {
        (self.users, self.groups)
    }

    /// Adds one page of the scanned domain with index `domain`. Err: why the listing
    /// cannot be trusted.
    pub fn add_page(&mut self, items: Vec<AccountItem>, domain: usize) -> Result<(), String> {
        items.into_iter().try_for_each(|item| self.add(item, domain))
    }

    fn add(&mut self, item: AccountItem, domain: usize) -> Result<(), String> {
        let email = item.email.as_deref().map(str::trim).unwrap_or("");
        if email.is_empty() {
            return Err("an account without <email>".to_string());
        }
        if !self.seen.insert(fold_key(email)) {
            // A server that ignores <offset> repeats its first page until overallcount is
            // reached: the accounts after it would look deleted. A listing with repeats is
            // not trusted at all.
            return Err(format!(
                "account {email} was listed twice (does the server ignore <offset>?); the \
                 listing cannot be trusted, nothing was changed"
            ));
        }
        match item.accounttype.as_deref().map(str::trim) {
            Some("0") => {}
            Some("7") => {
                self.groups.push(email.to_string());
                return Ok(());
            }
            Some(_) => return Ok(()),
            None => return Err(format!("account {email} has no <accounttype>")),
        }
        // Anything but state 0 is disabled, including a missing or garbled state: fail
        // closed.
        let enabled = item.has_state.then(|| item.state.as_deref().map(str::trim) == Some("0"));
        self.users.push(ListedUser {
            email: email.to_string(),
            name: item.name.as_deref().map(str::trim).unwrap_or("").to_string(),
            domain,
            enabled,
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// A user's record from its properties

/// The properties asked of a listed user (its addresses, mailbox and limits);
/// `u_accountdisabled` only when the list item had no state (11.x).
pub fn property_names(user: &ListedUser) -> Vec<&'static str> {
    let mut names = vec!["u_mailbox", "u_alias", "u_aliaslist"];
    names.extend(limits::NAMES);
    if user.enabled.is_none() {
        names.push("u_accountdisabled");
    }
    names
}

/// The record of a listed user; `domain` is the domain that listed it. A limit whose value
/// is not understood adds a warning.
pub fn user_from_properties(
    account: &ListedUser,
    domain: &str,
    properties: &Properties,
    style: LoginNameStyle,
    warnings: &mut Vec<String>,
) -> DirectoryUser {
    DirectoryUser {
        login_name: login_name(account, properties, style),
        identity: identity(&account.email),
        full_name: account.name.clone(),
        emails: addresses(account, domain, properties),
        enabled: enabled(account, properties),
        distinguished_name: None,
        limits: limits::account_limits(&account.email, properties, warnings),
    }
}

fn enabled(account: &ListedUser, properties: &Properties) -> bool {
    match account.enabled {
        Some(enabled) => enabled,
        // 11.x: 0 is enabled; 1-4, nothing, or anything else is disabled (fail closed).
        None => matches!(
            properties.get("u_accountdisabled"),
            Some(PropertyValue::Text(value)) if value.trim() == "0"
        ),
    }
}

/// The primary address, then the aliases; a bare alias is in `domain`; no repeats.
fn addresses(account: &ListedUser, domain: &str, properties: &Properties) -> Vec<String> {
    let aliases = ["u_alias", "u_aliaslist"]
        .into_iter()
        .flat_map(|name| alias_tokens(properties.get(name)))
        .map(|alias| if alias.contains('@') { alias } else { format!("{alias}@{domain}") });
    unique_folded(std::iter::once(account.email.clone()).chain(aliases))
}

/// The Linux login name before mailbox names are checked for clashes
/// ([`use_addresses_for_shared_mailbox_names`]).
fn login_name(account: &ListedUser, properties: &Properties, style: LoginNameStyle) -> String {
    match style {
        LoginNameStyle::Email => account.email.clone(),
        LoginNameStyle::Mailbox => match properties.get("u_mailbox") {
            Some(PropertyValue::Text(mailbox)) if !mailbox.trim().is_empty() => {
                mailbox.trim().to_string()
            }
            _ => account.email.split('@').next().unwrap_or(&account.email).to_string(),
        },
    }
}

/// The addresses in an alias property: `;`-separated text or a string list, without empty
/// tokens and without `[…]` tokens (settings, not addresses).
pub fn alias_tokens(value: Option<&PropertyValue>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        Some(PropertyValue::Text(text)) => text.split(';').collect(),
        Some(PropertyValue::List(items)) => items.iter().flat_map(|item| item.split(';')).collect(),
        Some(PropertyValue::NoValue) | None => Vec::new(),
    };
    raw.into_iter()
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .filter(|token| !(token.starts_with('[') && token.ends_with(']')))
        .map(str::to_string)
        .collect()
}

/// The fields a member item of `getaccountmemberinfolist` is read from.
pub const MEMBER_FIELDS: &[&str] = &["val"];

/// A group member token as listed, trimmed; `None` for an empty one.
pub fn member_token(fields: Vec<Option<String>>) -> Option<String> {
    let val = fields.into_iter().next().flatten()?;
    Some(val.trim().to_string()).filter(|val| !val.is_empty())
}

// ---------------------------------------------------------------------------------------
// Groups and the selection

/// Everything a listing fetched, for [`select`].
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The scanned domains.
    pub domains: Vec<String>,
    /// The users, each with the index of its domain in `domains`.
    pub users: Vec<(CompactUser, usize)>,
    /// Every group's address, with its member tokens as listed.
    pub groups: Vec<(String, Vec<String>)>,
}

/// A group's address with the indexes of the users its members resolve to, each once.
type Resolved = Vec<(String, Vec<usize>)>;

/// The users and groups the filters select, in the order listed. What the rules leave
/// out for a reason worth telling is added to `warnings`. The users stay compact
/// throughout (the listing holds them so): only those that change are opened up; a
/// user's groups are the kept groups that list it (`directory::Memberships`), not
/// written into its entry. [`TooLarge`] when a user's text passes 4 GiB.
pub fn select(
    fetched: Fetched,
    filters: &Filters,
    style: LoginNameStyle,
    warnings: &mut Vec<String>,
) -> Result<(Vec<CompactUser>, Vec<DirectoryGroup>), TooLarge> {
    // Split in the fetched users' own buffer (`unzip` would make two new vectors beside it).
    let user_domains: Vec<usize> = fetched.users.iter().map(|(_, domain)| *domain).collect();
    let users: Vec<CompactUser> = fetched.users.into_iter().map(|(user, _)| user).collect();
    let by_domain = users_by_domain(&user_domains, &fetched.domains);
    let resolved = resolve_groups(fetched.groups, &users, &by_domain, warnings);
    let selected = selected_users(filters, &user_domains, &fetched.domains, &resolved);
    let mut groups = kept_groups(resolved, &selected, filters);
    renumber_members(&mut groups, &selected);
    let mut users: Vec<CompactUser> = users
        .into_iter()
        .zip(selected)
        .filter_map(|(user, selected)| selected.then_some(user))
        .collect();
    // Collected in place, the vector keeps the room of every user fetched.
    users.shrink_to_fit();
    if style == LoginNameStyle::Mailbox {
        use_addresses_for_shared_mailbox_names(&mut users, warnings)?;
    }
    Ok((users, groups))
}

/// Lower-cased domain → the users it listed, for `[domain]` members.
fn users_by_domain(user_domains: &[usize], domains: &[String]) -> HashMap<String, Vec<usize>> {
    let mut by_domain: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, domain) in user_domains.iter().enumerate() {
        by_domain.entry(domains[*domain].to_lowercase()).or_default().push(index);
    }
    by_domain
}

/// Lower-cased address → user, for the addresses some group names (indexing every address
/// of 100,000 users would cost tens of MB). Primary addresses first, so that an alias
/// claiming someone else's primary address cannot take over that user's memberships.
fn users_by_address(
    users: &[CompactUser],
    groups: &[(String, Vec<String>)],
) -> HashMap<String, usize> {
    let wanted: HashSet<String> =
        groups.iter().flat_map(|(_, tokens)| tokens).map(|token| token.to_lowercase()).collect();
    let mut by_address: HashMap<String, usize> = HashMap::new();
    for (index, user) in users.iter().enumerate() {
        if let Some(primary) = user.emails().next().map(|email| email.to_lowercase()) {
            if wanted.contains(&primary) {
                by_address.insert(primary, index);
            }
        }
    }
    for (index, user) in users.iter().enumerate() {
        for email in user.emails().skip(1).map(|email| email.to_lowercase()) {
            if wanted.contains(&email) {
                by_address.entry(email).or_insert(index);
            }
        }
    }
    by_address
}

/// Every group with its members resolved to users; one warning per group naming what did
/// not resolve (an external address, an unknown account, a user outside the filter, a
/// nested group).
fn resolve_groups(
    groups: Vec<(String, Vec<String>)>,
    users: &[CompactUser],
    by_domain: &HashMap<String, Vec<usize>>,
    warnings: &mut Vec<String>,
) -> Resolved {
    let by_address = users_by_address(users, &groups);
    let mut resolved = Vec::with_capacity(groups.len());
    for (group, tokens) in groups {
        let mut members: Vec<usize> = Vec::new();
        let mut unresolved: Vec<String> = Vec::new();
        for token in tokens {
            match member_users(&token, by_domain, &by_address) {
                Some(indexes) => members.extend(indexes),
                None => unresolved.push(token),
            }
        }
        if !unresolved.is_empty() {
            warnings.push(unresolved_warning(&group, &unresolved));
        }
        let mut unique = HashSet::new();
        members.retain(|index| unique.insert(*index));
        resolved.push((group, members));
    }
    resolved
}

/// The users one member token stands for: `[domain]` (any case) is every user that domain
/// listed, anything else an address.
fn member_users<'a>(
    token: &str,
    by_domain: &'a HashMap<String, Vec<usize>>,
    by_address: &'a HashMap<String, usize>,
) -> Option<&'a [usize]> {
    let lower = token.to_lowercase();
    match lower.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(domain) => by_domain.get(domain.trim()).map(Vec::as_slice),
        None => by_address.get(&lower).map(std::slice::from_ref),
    }
}

/// Which users the filters select, by index.
fn selected_users(
    filters: &Filters,
    user_domains: &[usize],
    domains: &[String],
    groups: &Resolved,
) -> Vec<bool> {
    if filters.is_empty() {
        return vec![true; user_domains.len()];
    }
    let mut selected: Vec<bool> =
        user_domains.iter().map(|domain| filters.selects_domain(&domains[*domain])).collect();
    for (_, members) in groups.iter().filter(|(group, _)| filters.names_group(group)) {
        for index in members {
            selected[*index] = true;
        }
    }
    selected
}

/// The groups with their selected members. A group without any is left out unless the
/// filter names it.
fn kept_groups(groups: Resolved, selected: &[bool], filters: &Filters) -> Vec<DirectoryGroup> {
    let mut kept = Vec::new();
    for (group, members) in groups {
        let members: Vec<usize> = members.into_iter().filter(|index| selected[*index]).collect();
        if members.is_empty() && !filters.names_group(&group) {
            continue;
        }
        // Positions among all users fetched until `renumber_members`.
        let members = members.into_iter().map(position32).collect();
        kept.push(DirectoryGroup { identity: identity(&group), members, name: group });
    }
    kept
}

/// A position as [`DirectoryGroup::members`] holds it. One that does not fit becomes
/// [`NO_POSITION`], which names no user: the member is dropped, never mistaken for another.
fn position32(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(NO_POSITION)
}

/// The groups' members as positions among the selected users (the listing's), from their
/// positions among all users fetched. Every member is selected (see [`kept_groups`]).
fn renumber_members(groups: &mut [DirectoryGroup], selected: &[bool]) {
    let mut positions = Vec::with_capacity(selected.len());
    let mut next = 0u32;
    for selected in selected {
        positions.push(next);
        next = next.saturating_add(u32::from(*selected));
    }
    for member in groups.iter_mut().flat_map(|group| group.members.iter_mut()) {
        *member = match *member {
            NO_POSITION => NO_POSITION,
            at => positions.get(at as usize).copied().unwrap_or(NO_POSITION),
        };
    }
}

/// A member position that names no user (see [`position32`]). The planner finds no entry
/// there: a listing whose selected users do not all fit in 4-byte positions is refused
/// before it is planned (`sync::run_sync`).
const NO_POSITION: u32 = u32::MAX;

fn unresolved_warning(group: &str, unresolved: &[String]) -> String {
    let shown: Vec<&str> =
        unresolved.iter().take(MAX_NAMED_UNRESOLVED).map(String::as_str).collect();
    let more = unresolved.len().saturating_sub(MAX_NAMED_UNRESOLVED);
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!(
        "group {group}: {} member(s) are not users of the listed domains (external address, \
         unknown account, or outside the domain filter) and were ignored: {}{tail}",
        unresolved.len(),
        shown.join(", ")
    )
}

/// `login_name = "mailbox"` means the mailbox name when it is unique
/// (docs/protocols/icewarp.md, §6.7): accounts sharing one (alice@a.com, alice@b.com) are
/// all recorded under their full addresses, so that neither the order of the listing nor
/// a new account in another domain decides who gets the bare name.
fn use_addresses_for_shared_mailbox_names(
    users: &mut [CompactUser],
    warnings: &mut Vec<String>,
) -> Result<(), TooLarge> {
    let mut holders: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, user) in users.iter().enumerate() {
        holders.entry(user.login_name().to_lowercase()).or_default().push(index);
    }
    let mut shared: Vec<(String, Vec<usize>)> =
        holders.into_iter().filter(|(_, indexes)| indexes.len() > 1).collect();
    shared.sort();
    for (_, indexes) in shared {
        let addresses: Vec<String> = indexes
            .iter()
            .map(|&index| {
                let user = &users[index];
                user.emails()
                    .next()
                    .unwrap_or_else(|| user.identity().trim_start_matches("icewarp:"))
                    .to_string()
            })
            .collect();
        warnings.push(format!(
            "mailbox name {:?} belongs to {} accounts ({}); each is recorded under its full address",
            users[indexes[0]].login_name(),
            indexes.len(),
            addresses.join(", ")
        ));
        for (index, address) in indexes.into_iter().zip(addresses) {
            users[index].edit(|user| user.login_name = address)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
