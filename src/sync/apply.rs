//! Applying a plan to the in-memory database (the caller commits it).

use crate::cache::Db;
use crate::manage::{self, ManageError};
use crate::user::Origin;

use super::plan::Plan;

/// Applies `plan`, computed for `origin` against this same `db`.
pub fn apply(db: &mut Db, plan: &Plan, origin: Origin) -> Result<(), ManageError> {
    for name in &plan.deletes {
        manage::delete_user(db, name)?;
    }
    for update in &plan.updates {
        let user = db
            .users
            .iter_mut()
            .find(|u| u.uid == update.after.uid)
            .ok_or_else(|| ManageError::NotFound(update.after.name.clone()))?;
        *user = update.after.clone();
    }
    db.users.extend(plan.creates.iter().cloned());
    let deleted_gids: Vec<u32> = db
        .groups
        .iter()
        .filter(|g| g.origin == origin && plan.groups_deleted.contains(&g.name))
        .map(|g| g.gid)
        .collect();
    db.meta.retired_ids.extend(deleted_gids);
    db.groups.retain(|g| g.origin != origin);
    db.groups.extend(plan.groups.iter().cloned());
    Ok(())
}
