//! Applying a plan to the in-memory database (the caller commits it).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::cache::{CachedUser, Db};
use crate::names::{fold_name, name_key};
use crate::user::{Group, HeldUser, Origin, User};
use crate::user_edits::EditError;

use super::plan::Plan;

/// Applies `plan`, computed for `origin` against this same `db`. Linear in the number of
/// users: a sync of 100,000 accounts must not be quadratic.
pub fn apply(db: &mut Db, plan: Plan, origin: Origin) -> Result<(), EditError> {
    apply_held(db, plan, origin, Ok, |creates| hold_all(creates, |new| Ok(new.to_user())))
}

/// [`apply`] to a sync's cache, whose users are [`CachedUser`]s: the updated users go in
/// compactly too, and the new users as the plan holds them (a first sync's vector of every
/// user becomes the cache's as it is, never copied).
pub fn apply_cached(db: &mut Db<CachedUser>, plan: Plan, origin: Origin) -> Result<(), EditError> {
    let hold =
        |user: User| CachedUser::new(&user).map_err(|_| EditError::TooLarge(user.name.clone()));
    apply_held(db, plan, origin, hold, Ok)
}

/// [`apply`] to users held as `U`: each updated user made one by `hold`, the new users by
/// `hold_new`.
fn apply_held<U: HeldUser + Clone>(
    db: &mut Db<U>,
    plan: Plan,
    origin: Origin,
    hold: impl Fn(User) -> Result<U, EditError>,
    hold_new: impl FnOnce(Vec<CachedUser>) -> Result<Vec<U>, EditError>,
) -> Result<(), EditError> {
    let clashes_before = named_like_groups(&db.groups, &db.users);
    let deletes: BTreeSet<String> = plan.deletes.iter().map(|n| fold_name(n)).collect();
    if !deletes.is_empty() {
        // In place: a second vector of every user would double the peak of the sync.
        let mut gone = Vec::new();
        db.users.retain(|u| {
            let deleted = deletes.contains(&fold_name(u.facts().name));
            if deleted {
                gone.push(u.clone());
            }
            !deleted
        });
        for user in &gone {
            db.retire(user);
        }
    }

    let positions: HashMap<u32, usize> =
        db.users.iter().enumerate().map(|(i, u)| (u.facts().uid, i)).collect();
    for update in plan.updates {
        let position = *positions
            .get(&update.after.uid)
            .ok_or_else(|| EditError::NotFound(update.after.name.clone()))?;
        db.users[position] = hold(update.after)?;
    }
    let creates = hold_new(plan.creates)?;
    if db.users.is_empty() {
        // The first sync: the new vector becomes the cache's, instead of being copied into
        // a second one while it is still held.
        db.users = creates;
    } else {
        db.users.extend(creates);
    }
    check_unique(&db.users)?;

    let deleted_groups: BTreeSet<String> =
        plan.groups_deleted.iter().map(|n| fold_name(n)).collect();
    let retired_gids: Vec<u32> = db
        .groups
        .iter()
        .filter(|g| g.origin == origin && deleted_groups.contains(&fold_name(&g.name)))
        .map(|g| g.gid)
        .collect();
    db.meta.retired_ids.extend(retired_gids);
    let mut cached = cached_members(&mut db.groups, origin);
    db.groups.retain(|g| g.origin != origin);
    db.groups.extend(plan.groups.into_iter().map(|planned| {
        let mut group = planned.group;
        if planned.members_as_cached {
            group.members = cached.remove(&fold_name(&group.name)).unwrap_or_default();
        }
        group
    }));
    check_groups(&db.groups, &db.users, &clashes_before)
}

/// The same guard for groups: no two share a name (case-folded) or a gid, none has a
/// user's uid (the gid of its private group) or a user's name (it would stand for the
/// user's private group in `chgrp` and sudoers, with members the directory chose). The
/// planner never plans one; should it, the sync fails and the cache stays as it was. The
/// one clash tolerated is a group named like a user that the cache already held (`before`:
/// a version before 3cd7cf9 let a user take a group's name), which the planner keeps
/// without members: failing every sync for it would stop disabling the users who leave.
fn check_groups<U: HeldUser>(
    groups: &[Group],
    users: &[U],
    before: &BTreeSet<String>,
) -> Result<(), EditError> {
    let mut names = HashSet::with_capacity(groups.len());
    let mut gids = HashSet::with_capacity(groups.len());
    if let Some(group) =
        groups.iter().find(|g| !names.insert(fold_name(&g.name)) || !gids.insert(g.gid))
    {
        return Err(EditError::GroupClash(group.name.clone()));
    }
    if let Some(user) = users.iter().map(HeldUser::facts).find(|u| gids.contains(&u.uid)) {
        return Err(EditError::GroupClash(user.name.to_string()));
    }
    match named_like_groups(groups, users).into_iter().find(|name| !before.contains(name)) {
        Some(name) => Err(EditError::GroupClash(name)),
        None => Ok(()),
    }
}

/// The folded names that a user and a group share.
fn named_like_groups<U: HeldUser>(groups: &[Group], users: &[U]) -> BTreeSet<String> {
    if groups.is_empty() {
        return BTreeSet::new();
    }
    // By `name_key` first: a user's name is folded only when a group's has its key.
    let mut by_key: HashMap<u64, Vec<String>> = HashMap::with_capacity(groups.len());
    for group in groups {
        by_key.entry(name_key(&group.name)).or_default().push(fold_name(&group.name));
    }
    let names = users.iter().map(|u| u.facts().name);
    names
        .filter_map(|name| {
            let holders = by_key.get(&name_key(name))?;
            let folded = fold_name(name);
            holders.contains(&folded).then_some(folded)
        })
        .collect()
}

/// The last guard before a commit: no two users may share a name (case-folded) or a uid,
/// whatever the plan did (a listing that repeats an identity could make it rename one user
/// twice, the second time back onto a name it had given to another). The sync then fails
/// and the cache stays as it was. Sorted keys, not a set of names: 8 bytes per user.
fn check_unique<U: HeldUser>(users: &[U]) -> Result<(), EditError> {
    let mut uids: Vec<u32> = users.iter().map(|u| u.facts().uid).collect();
    uids.sort_unstable();
    if let Some(pair) = uids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(EditError::DuplicateUid(pair[0]));
    }
    drop(uids);
    let mut keys: Vec<u64> = users.iter().map(|u| name_key(u.facts().name)).collect();
    keys.sort_unstable();
    // The keys two or more users hold: rarely any.
    let repeated: Vec<u64> = keys.windows(2).filter(|p| p[0] == p[1]).map(|p| p[0]).collect();
    drop(keys);
    let mut shared: Vec<(String, &str)> = users
        .iter()
        .map(|u| u.facts().name)
        .filter(|name| repeated.binary_search(&name_key(name)).is_ok())
        .map(|name| (fold_name(name), name))
        .collect();
    shared.sort_unstable();
    match shared.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        Some(pair) => Err(EditError::DuplicateName(pair[1].1.to_string())),
        None => Ok(()),
    }
}

/// The member lists of the groups of `origin`, taken out of them, by folded name (the last
/// of several winning, as in the plan): what the plan's groups with
/// [`PlannedGroup::members_as_cached`](super::plan::PlannedGroup) get.
fn cached_members(groups: &mut [Group], origin: Origin) -> HashMap<String, Vec<String>> {
    let ours = groups.iter_mut().filter(|g| g.origin == origin);
    ours.map(|g| (fold_name(&g.name), std::mem::take(&mut g.members))).collect()
}

/// `users` made into `U`s by `hold`, in order. Taken from the end of a vector that shrinks
/// as it empties, so that both forms of every user are never held whole.
fn hold_all<T, U>(
    mut users: Vec<T>,
    hold: impl Fn(T) -> Result<U, EditError>,
) -> Result<Vec<U>, EditError> {
    let mut held = Vec::with_capacity(users.len());
    let step = (users.len() / 16).max(4096);
    while let Some(user) = users.pop() {
        held.push(hold(user)?);
        if users.capacity() - users.len() >= step {
            users.shrink_to_fit();
        }
    }
    held.reverse();
    Ok(held)
}
