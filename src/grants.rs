//! Directory groups that grant local groups (`[unix.local_groups]`, issue 14 §1):
//! `sudo = ["it-admins@example.com"]` puts the members of the directory group
//! `it-admins@example.com` into the local group `sudo` of /etc/group.
//!
//! The rules, spelled here once:
//! - only a local group named in the configuration can be granted, and only to the members
//!   of the directory groups mapped to it: a directory group *named* `sudo` grants nothing
//!   (the name policy keeps it out of the cache, and nothing here looks at directory group
//!   names other than the mapped addresses);
//! - the local group must exist in /etc/group (read as a file, `LocalAccounts`) and must not
//!   have gid 0; otherwise the configuration is refused, naming the key and line
//!   ([`targets`]);
//! - only users that may hold local groups get one ([`User::may_hold_local_groups`]: enabled,
//!   holding `login`);
//! - the grants are a pure function of the cache's users and groups, the mapping and the
//!   local groups ([`compute`]), recomputed by every sync (and by a host that pulls a
//!   snapshot, with its own /etc/group: local gids differ between hosts), so leaving the
//!   directory group revokes the local group at the next sync;
//! - /etc/group is never written: the result goes to the cache's `grants.public`, from
//!   which the NSS module answers `initgroups` (the local gid) and `getgrnam`/`getgrgid` of
//!   the local group with the granted members only, for glibc to merge.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::local_accounts::LocalAccounts;
use crate::names::fold_name;
use crate::user::{Group, HeldUser, LocalGrant};

/// One mapped local group, checked against /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The local group's name, exactly as in /etc/group.
    pub name: String,
    pub gid: u32,
    /// The directory group addresses whose members it is granted to.
    pub directory_groups: Vec<String>,
}

/// The mapped local groups, each checked against `local` (/etc/group): a group that does
/// not exist there, or has gid 0, is a configuration error naming the key and line.
pub fn targets(config: &Config, local: &LocalAccounts) -> Result<Vec<Target>, ConfigError> {
    let mapping = &config.unix.local_groups;
    let group_file = config.unix.local_group.display();
    let mut targets = Vec::with_capacity(mapping.map.len());
    for (name, directory_groups) in &mapping.map {
        let Some(gid) = local.group_gid(name) else {
            return Err(mapping.invalid(
                name,
                format!(
                    "there is no group {name:?} in {group_file}; only an existing local group \
                     can be granted: create it (groupadd {name}) or remove the line"
                ),
            ));
        };
        if gid == 0 {
            return Err(mapping.invalid(
                name,
                format!(
                    "{name:?} has gid 0 in {group_file}: the root group is never granted, its \
                     members own root's files; remove the line"
                ),
            ));
        }
        targets.push(Target {
            name: name.clone(),
            gid,
            directory_groups: directory_groups.clone(),
        });
    }
    Ok(targets)
}

/// What [`compute`] found: the grants, and what the administrator should hear about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computed {
    /// One per target, in the targets' order, members sorted.
    pub grants: Vec<LocalGrant>,
    /// Mapped directory groups the cache does not have (a typo, a group the sync filters
    /// leave out): they grant nothing, which is safe, but probably not what was meant.
    pub warnings: Vec<String>,
}

/// The grants for `users` and `groups` (the cache after a sync or a pull): each target gets
/// the users of its directory groups that may hold local groups. Pure. Costs nothing without
/// targets, and otherwise holds only the mapped groups' members besides one pass over the
/// users (a sync of a million users must not index them all again).
pub fn compute<U: HeldUser>(users: &[U], groups: &[Group], targets: &[Target]) -> Computed {
    let mut computed = Computed::default();
    if targets.is_empty() {
        return computed;
    }
    let groups_by_name: HashMap<String, &Group> =
        groups.iter().map(|group| (fold_name(&group.name), group)).collect();
    // Per target, the folded names of its directory groups' members.
    let mut wanted: Vec<BTreeSet<String>> = Vec::with_capacity(targets.len());
    for target in targets {
        let mut members = BTreeSet::new();
        for address in &target.directory_groups {
            match groups_by_name.get(&fold_name(address)) {
                Some(group) => members.extend(group.members.iter().map(|m| fold_name(m))),
                None => computed.warnings.push(format!(
                    "unix.local_groups.{}: the directory group {address:?} is not in the \
                     cache, so it grants {} to nobody; check the address (and sync.groups)",
                    target.name, target.name
                )),
            }
        }
        wanted.push(members);
    }
    // Folded name → the name as the user record spells it, for eligible members only.
    let any: BTreeSet<&String> = wanted.iter().flatten().collect();
    let eligible: HashMap<String, &str> = users
        .iter()
        .map(HeldUser::facts)
        .filter(|user| user.may_hold_local_groups)
        .filter_map(|user| {
            let folded = fold_name(user.name);
            any.contains(&folded).then_some((folded, user.name))
        })
        .collect();
    for (target, members) in targets.iter().zip(&wanted) {
        let mut granted: Vec<String> = members
            .iter()
            .filter_map(|folded| eligible.get(folded).map(|name| name.to_string()))
            .collect();
        granted.sort();
        computed.grants.push(LocalGrant {
            name: target.name.clone(),
            gid: target.gid,
            members: granted,
        });
    }
    computed
}

/// One user gaining or losing one local group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GrantChange {
    pub local_group: String,
    pub user: String,
}

/// What changed between two sets of grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub granted: Vec<GrantChange>,
    pub revoked: Vec<GrantChange>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.granted.is_empty() && self.revoked.is_empty()
    }
}

/// The grants and revocations that turn `before` into `after` (by local group name and
/// member name, case-insensitively), sorted.
pub fn changes(before: &[LocalGrant], after: &[LocalGrant]) -> Changes {
    let pairs = |grants: &[LocalGrant]| -> BTreeMap<(String, String), GrantChange> {
        grants
            .iter()
            .flat_map(|grant| {
                grant.members.iter().map(|member| {
                    (
                        (grant.name.clone(), fold_name(member)),
                        GrantChange { local_group: grant.name.clone(), user: member.clone() },
                    )
                })
            })
            .collect()
    };
    let (before, after) = (pairs(before), pairs(after));
    let only_in = |a: &BTreeMap<(String, String), GrantChange>,
                   b: &BTreeMap<(String, String), GrantChange>| {
        a.iter().filter(|(key, _)| !b.contains_key(*key)).map(|(_, c)| c.clone()).collect()
    };
    Changes { granted: only_in(&after, &before), revoked: only_in(&before, &after) }
}

/// Everything a writer of the cache (a sync, a pull) does with grants: check the mapping
/// against /etc/group, compute the grants of `users` and `groups`, and compare them with
/// `before` (the grants of the cache as it is, `Db::grants`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub grants: Vec<LocalGrant>,
    pub changes: Changes,
    pub warnings: Vec<String>,
}

pub fn refresh<U: HeldUser>(
    users: &[U],
    groups: &[Group],
    before: &[LocalGrant],
    config: &Config,
    local: &LocalAccounts,
) -> Result<Refreshed, ConfigError> {
    let targets = targets(config, local)?;
    let Computed { grants, warnings } = compute(users, groups, &targets);
    let changes = changes(before, &grants);
    Ok(Refreshed { grants, changes, warnings })
}

/// The local groups granted to `user` in `grants`, by name (for `user show`).
pub fn granted_to<'g>(grants: &'g [LocalGrant], user: &str) -> BTreeSet<&'g str> {
    let folded = fold_name(user);
    grants
        .iter()
        .filter(|grant| grant.members.iter().any(|m| fold_name(m) == folded))
        .map(|grant| grant.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests;
