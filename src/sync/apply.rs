//! Applying a plan to the in-memory database (the caller commits it).

use std::collections::{BTreeSet, HashMap};

use crate::cache::Db;
use crate::names::fold_name;
use crate::user::Origin;
use crate::user_edits::EditError;

use super::plan::Plan;

/// Applies `plan`, computed for `origin` against this same `db`. Linear in the number of
/// users: a sync of 100,000 accounts must not be quadratic.
pub fn apply(db: &mut Db, plan: Plan, origin: Origin) -> Result<(), EditError> {
    let deletes: BTreeSet<String> = plan.deletes.iter().map(|n| fold_name(n)).collect();
    if !deletes.is_empty() {
        // In place: a second vector of every user would double the peak of the sync.
        let mut gone = Vec::new();
        db.users.retain(|u| {
            let deleted = deletes.contains(&fold_name(&u.name));
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
        db.users.iter().enumerate().map(|(i, u)| (u.uid, i)).collect();
    for update in plan.updates {
        let position = *positions
            .get(&update.after.uid)
            .ok_or_else(|| EditError::NotFound(update.after.name.clone()))?;
        db.users[position] = update.after;
    }
    if db.users.is_empty() {
        // The first sync: the plan's vector becomes the cache's, instead of being copied
        // into a second one while it is still held.
        db.users = plan.creates;
    } else {
        db.users.extend(plan.creates);
    }

    let deleted_groups: BTreeSet<String> =
        plan.groups_deleted.iter().map(|n| fold_name(n)).collect();
    let retired_gids: Vec<u32> = db
        .groups
        .iter()
        .filter(|g| g.origin == origin && deleted_groups.contains(&fold_name(&g.name)))
        .map(|g| g.gid)
        .collect();
    db.meta.retired_ids.extend(retired_gids);
    db.groups.retain(|g| g.origin != origin);
    db.groups.extend(plan.groups);
    Ok(())
}
