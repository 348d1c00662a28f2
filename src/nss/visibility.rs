//! What the module may show: the checks every record passes before it is answered (the
//! name policy, reserved ids, fields that would break a passwd or group line) and the rule
//! that local accounts always win, applied to users, groups, members and private groups.
//!
//! The one exception: a local group that `[unix.local_groups]` grants ([`Nss::accept_grant`])
//! is answered with its local name and gid, unchanged, listing only the granted directory
//! users, so that glibc's `[SUCCESS=merge]` adds them to the `files` entry.

use super::{GroupEntry, Nss};
use crate::cache::reader::{Mapper, Problem, Tables};
use crate::cache::{GroupHead, PublicUser};
use crate::ids::is_reserved;
use crate::names::{NameError, NamePolicy};
use crate::user::{Group, LocalGrant};

pub(super) fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Whether the module may answer for `name`: the built-in name policy (the module reads no
/// configuration; `[unix] reserved_names` is applied when the cache is written). A cache file
/// holding `admin` or `x;id` is never served.
fn servable(name: &str) -> Result<(), NameError> {
    NamePolicy::default().check(name)
}

/// A name a caller asked for that the name policy accepts: only [`query_name`] makes one.
/// A record of exactly this name needs no second check of the policy (the same built-in
/// policy on the same bytes): a lookup by name checks one name instead of two. This holds
/// while [`servable`] is a pure function of the name; should the module ever apply a
/// configured policy, both checks must use the same one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vetted<'a>(&'a str);

impl<'a> Vetted<'a> {
    pub(super) fn as_str(self) -> &'a str {
        self.0
    }
}

/// A name asked for by a caller: anything that could not be served is simply unknown.
pub(super) fn query_name(name: &[u8]) -> Option<Vetted<'_>> {
    let name = std::str::from_utf8(name).ok()?;
    servable(name).ok()?;
    Some(Vetted(name))
}

/// A name asked for that could be a local group granted by `[unix.local_groups]`: any name
/// of the safe set (`sudo` included, which [`query_name`] refuses); whether it is one is
/// decided by /etc/group and the grants.
pub(super) fn grantable_name(name: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(name).ok()?;
    crate::names::validate_name(name).ok()?;
    Some(name)
}

/// Why a passwd field cannot be emitted, if it cannot.
pub(super) fn bad_field(value: &str) -> Option<&'static str> {
    // Printable ASCII, as most fields are, holds no control character: no need to decode.
    let printable_ascii = || value.bytes().all(|b| (b' '..=b'~').contains(&b));
    if value.contains(':') {
        Some("contains ':'")
    } else if !printable_ascii() && value.chars().any(char::is_control) {
        Some("contains a control character (newline, NUL, …)")
    } else {
        None
    }
}

fn check_user(user: &PublicUser, asked: Option<Vetted>) -> Result<(), String> {
    // Exact byte equality, never `same_name` or a folded comparison: `by_name` also finds
    // records spelled otherwise (other case, a Kelvin sign for `k`), which must be checked.
    if asked.map(Vetted::as_str) != Some(user.name.as_str()) {
        servable(&user.name).map_err(|e| e.to_string())?;
    }
    for id in [user.uid, user.gid] {
        if is_reserved(id) {
            return Err(format!("id {id} is reserved"));
        }
    }
    for (field, value) in [("gecos", &user.gecos), ("home", &user.home), ("shell", &user.shell)] {
        if let Some(reason) = bad_field(value) {
            return Err(format!("its {field} {reason}"));
        }
    }
    Ok(())
}

fn check_group(name: &str, gid: u32) -> Result<(), String> {
    servable(name).map_err(|e| e.to_string())?;
    if is_reserved(gid) {
        return Err(format!("gid {gid} is reserved"));
    }
    Ok(())
}

impl<M: Mapper> Nss<M> {
    /// The rule "local accounts win" for a record of `tables`: as the local files say when
    /// they are read (sealed or not: a check is cheap once they are); unread, never when the
    /// generation is sealed for the files as they are now (the writer checked every name
    /// and id), else always (fail closed).
    fn local_wins(&self, tables: &Tables<M::Map>, name: &str, ids: &[u32]) -> bool {
        match self.accounts() {
            Some(accounts) => accounts.win_over(name, ids),
            None => !self.sealed(tables),
        }
    }

    /// Whether a user record may be shown: not when a field would break the passwd format
    /// (logged once), nor when its name or an id is local. `asked`: the name the caller
    /// asked for, when the record was found by it.
    pub(super) fn user_visible(
        &mut self,
        tables: &Tables<M::Map>,
        user: &PublicUser,
        asked: Option<Vetted>,
    ) -> bool {
        if let Err(reason) = check_user(user, asked) {
            self.log_once(format!(
                "skipping the user record {:?} (uid {}): {reason}",
                printable(&user.name),
                user.uid
            ));
            return false;
        }
        !self.local_wins(tables, &user.name, &[user.uid, user.gid])
    }

    /// The user record, if it may be shown (its password field is always `x`).
    pub(super) fn accept_user(
        &mut self,
        tables: &Tables<M::Map>,
        user: PublicUser,
        asked: Option<Vetted>,
    ) -> Option<PublicUser> {
        self.user_visible(tables, &user, asked).then_some(user)
    }

    /// Whether the group `name` of `gid` may be shown at all (its members aside).
    pub(super) fn group_visible(&mut self, tables: &Tables<M::Map>, name: &str, gid: u32) -> bool {
        if let Err(reason) = check_group(name, gid) {
            self.log_once(format!(
                "skipping the group record {:?} (gid {gid}): {reason}",
                printable(name)
            ));
            return false;
        }
        !self.local_wins(tables, name, &[gid])
    }

    /// The entry for a directory group; members that are invalid or local are left out.
    pub(super) fn accept_group(
        &mut self,
        tables: &Tables<M::Map>,
        group: &Group,
    ) -> Option<GroupEntry> {
        if !self.group_visible(tables, &group.name, group.gid) {
            return None;
        }
        let mut members = Vec::with_capacity(group.members.len());
        for member in &group.members {
            if let Err(reason) = servable(member) {
                self.log_once(format!(
                    "leaving the member {:?} out of the group {:?}: {reason}",
                    printable(member),
                    group.name
                ));
                continue;
            }
            if !self.local_wins(tables, member, &[]) {
                members.push(member.clone());
            }
        }
        Some(GroupEntry { name: group.name.clone(), gid: group.gid, members })
    }

    /// The entry for a granted local group, if it may be shown: its name and gid must be
    /// those of a group of /etc/group (read as a file), never gid 0; its members must be
    /// servable dircache names that are not local. The cache is written by root only, and
    /// only from the mapping (`grants`); this re-checks what the module can check, so a
    /// record never names a group /etc/group does not have, nor changes its gid.
    pub(super) fn accept_grant(&mut self, grant: &LocalGrant) -> Option<GroupEntry> {
        let local = self.accounts()?;
        let refusal = if crate::names::validate_name(&grant.name).is_err() {
            Some("its name is not of the safe set")
        } else if grant.gid == 0 {
            Some("gid 0 is never granted")
        } else if local.group_gid(&grant.name) != Some(grant.gid) {
            Some("/etc/group has no group of that name and gid")
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.log_once(format!(
                "skipping the local grant {:?} (gid {}): {reason}",
                printable(&grant.name),
                grant.gid
            ));
            return None;
        }
        let mut members = Vec::with_capacity(grant.members.len());
        for member in &grant.members {
            if servable(member).is_ok()
                && self.accounts().is_some_and(|local| !local.win_over(member, &[]))
            {
                members.push(member.clone());
            }
        }
        Some(GroupEntry { name: grant.name.clone(), gid: grant.gid, members })
    }

    /// The private group of `user`, if it has one: gid equal to its uid, the user visible,
    /// and no directory group of the same name (the directory group wins).
    pub(super) fn private_group(
        &mut self,
        tables: &Tables<M::Map>,
        user: &PublicUser,
    ) -> Result<Option<GroupEntry>, Problem> {
        if user.gid != user.uid || !self.user_visible(tables, user, None) {
            return Ok(None);
        }
        if self.groups_of(tables)?.by_name(&user.name).map_err(Problem::broken)?.is_some() {
            return Ok(None);
        }
        Ok(Some(GroupEntry { name: user.name.clone(), gid: user.gid, members: Vec::new() }))
    }

    pub(super) fn visible_gids(
        &mut self,
        tables: &Tables<M::Map>,
        user: &PublicUser,
    ) -> Result<Vec<u32>, Problem> {
        let mut visible = Vec::with_capacity(user.gids.len());
        for gid in unique_in_order(&user.gids).iter() {
            if self.accounts().is_none_or(|local| local.has_group_gid(*gid)) {
                // A local gid only through a grant that lists this user.
                if self.grant_lists(tables, *gid, &user.name)? {
                    visible.push(*gid);
                }
                continue;
            }
            let groups = self.groups_of(tables)?;
            let head = groups.by_id_as(*gid, |g: &GroupHead| g.gid).map_err(Problem::broken)?;
            if let Some(group) = head {
                if self.group_visible(tables, &group.name, group.gid) {
                    visible.push(*gid);
                }
            }
        }
        Ok(visible)
    }

    /// Whether the grant of the local group `gid` may be shown and lists `user`.
    fn grant_lists(
        &mut self,
        tables: &Tables<M::Map>,
        gid: u32,
        user: &str,
    ) -> Result<bool, Problem> {
        let Some(grants) = tables.grants(self.current.mapper())? else {
            return Ok(false);
        };
        let Some(grant) = grants.by_id(gid).map_err(Problem::broken)? else {
            return Ok(false);
        };
        let entry = self.accept_grant(&grant);
        Ok(entry.is_some_and(|e| e.members.iter().any(|m| crate::names::same_name(m, user))))
    }
}

/// `gids` in their order, each once. A user may be in thousands of groups: a sorted copy
/// finds whether any repeats (a record written by dircache has none), and only then does a
/// set pick the first of each.
pub(super) fn unique_in_order(gids: &[u32]) -> std::borrow::Cow<'_, [u32]> {
    let mut sorted = gids.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).all(|pair| pair[0] != pair[1]) {
        return std::borrow::Cow::Borrowed(gids);
    }
    let mut seen = std::collections::BTreeSet::new();
    std::borrow::Cow::Owned(gids.iter().copied().filter(|gid| seen.insert(*gid)).collect())
}
