//! What a verified snapshot means for this host's cache, computed without touching
//! anything. A snapshot is trusted no more than a directory: the name policy, reserved ids,
//! `[unix] uid_range`, subordinate ids and "local accounts win" are applied here exactly as
//! a sync applies them, and what they refuse is skipped with the reason.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::cache::Db;
use crate::config::Config;
use crate::ids::reserved_overlap;
use crate::local_accounts::LocalAccounts;
use crate::names::{fold_name, NamePolicy};
use crate::paths::resolved;
use crate::sync::Skipped;
use crate::user::{Group, User};

#[derive(Debug, Default)]
pub(super) struct Install {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<User>,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub groups_created: Vec<String>,
    pub groups_updated: Vec<String>,
    pub groups_deleted: Vec<Group>,
    pub warnings: Vec<String>,
}

impl Install {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
            && self.groups_created.is_empty()
            && self.groups_updated.is_empty()
            && self.groups_deleted.is_empty()
    }

    /// Makes `db` what the plan says; deleted users' and groups' ids and homes are retired
    /// exactly as a sync retires them.
    pub fn apply(self, db: &mut Db) {
        for user in &self.deleted {
            db.retire(user);
        }
        // An account moved to another uid keeps its home (see `Held::refuse_user`): the
        // home its old record leaves is not retired.
        let held: HashSet<Cow<str>> = self.users.iter().map(|u| resolved(&u.home)).collect();
        db.meta.retired_homes.retain(|home| !held.contains(&*resolved(home)));
        db.meta.retired_ids.extend(self.groups_deleted.iter().map(|g| g.gid));
        // A primary gid a kept user gives up (not its uid, no group's) is retired too:
        // files group-owned by it stay out of anyone else's reach.
        let new_gid: HashMap<u32, u32> = self.users.iter().map(|u| (u.uid, u.gid)).collect();
        let group_gids: HashSet<u32> = self.groups.iter().map(|g| g.gid).collect();
        let given_up: Vec<u32> = db
            .users
            .iter()
            .filter(|old| old.gid != old.uid && !group_gids.contains(&old.gid))
            .filter(|old| new_gid.get(&old.uid).is_some_and(|gid| *gid != old.gid))
            .map(|old| old.gid)
            .collect();
        db.meta.retired_ids.extend(given_up);
        db.users = self.users;
        db.groups = self.groups;
    }
}

struct Rules<'a> {
    policy: NamePolicy,
    local: &'a LocalAccounts,
    range: [u32; 2],
    /// Ids this host retired: given back only to the account or group that holds them
    /// (`own` in [`Rules::refuse`]), never to someone else.
    retired: HashSet<u32>,
}

impl Rules<'_> {
    /// Why an account or group of this name and these ids cannot exist on this host. `own`:
    /// ids this very account or group already holds here (a retired one it may keep).
    fn refuse(&self, name: &str, ids: &[(&str, u32)], own: &[u32]) -> Option<String> {
        if let Err(e) = self.policy.check(name) {
            return Some(e.to_string());
        }
        for &(what, id) in ids {
            if let Some(reserved) = reserved_overlap(id, id) {
                return Some(format!("{what} {id} is reserved for {reserved}"));
            }
            let [low, high] = self.range;
            if !(low..=high).contains(&id) {
                return Some(format!(
                    "{what} {id} is outside [unix] uid_range {low}..={high} of this host; give \
                     every host of the fleet the publisher's uid_range"
                ));
            }
            if self.local.subordinate_ranges().iter().any(|r| r.contains(id)) {
                return Some(format!(
                    "{what} {id} lies in the subordinate ids of a local user (/etc/subuid, \
                     /etc/subgid)"
                ));
            }
            if self.retired.contains(&id) && !own.contains(&id) {
                return Some(format!(
                    "{what} {id} belonged to an account deleted on this host; it is never given \
                     to anyone else here"
                ));
            }
        }
        let ids: Vec<u32> = ids.iter().map(|&(_, id)| id).collect();
        if self.local.win_over(name, &ids) {
            return Some(
                "a local account or group has this name or id (local accounts win)".to_string(),
            );
        }
        None
    }
}

/// What other accounts hold while the install is planned, published or on this host: the
/// ids and homes of host users this install deletes are retired only as it is applied, and
/// must not be handed out by it. A sync never gives any of these to another account.
struct Held {
    /// The snapshot's uids, each also the gid of that user's private group (see `nss`).
    published_uids: HashSet<u32>,
    /// The host users' uids.
    host_uids: HashSet<u32>,
    /// The gids of the host's groups.
    host_group_gids: HashSet<u32>,
    /// The host users' gids other than their uid (files they own may be in that group).
    host_user_gids: HashSet<u32>,
    /// The host users' homes (as [`resolved`] gives them), with their uid and folded name.
    homes: HashMap<String, (u32, String)>,
    /// The local accounts' homes (/etc/passwd): local accounts win.
    local_homes: HashSet<String>,
}

impl Held {
    fn new(db: &Db, users: &[User], local: &LocalAccounts) -> Held {
        Held {
            published_uids: users.iter().map(|u| u.uid).collect(),
            host_uids: db.users.iter().map(|u| u.uid).collect(),
            host_group_gids: db.groups.iter().map(|g| g.gid).collect(),
            host_user_gids: db.users.iter().filter(|u| u.gid != u.uid).map(|u| u.gid).collect(),
            homes: db
                .users
                .iter()
                .map(|u| (resolved(&u.home).into_owned(), (u.uid, fold_name(&u.name))))
                .collect(),
            local_homes: local.homes().map(Cow::into_owned).collect(),
        }
    }

    /// Why a published user would take what another account holds.
    fn refuse_user(&self, user: &User) -> Option<String> {
        // A host group on a uid its user already has here (installs before the group rule
        // let one in) is the group's problem, not the user's: see `Held::private_group`.
        if self.host_group_gids.contains(&user.uid) && !self.host_uids.contains(&user.uid) {
            return Some(format!("its uid {} is the gid of a group on this host", user.uid));
        }
        if self.host_user_gids.contains(&user.uid) && !self.host_uids.contains(&user.uid) {
            return Some(format!("its uid {} is a host user's primary gid", user.uid));
        }
        let private_group = |gid| self.published_uids.contains(gid) || self.host_uids.contains(gid);
        if user.gid != user.uid && private_group(&user.gid) {
            return Some(format!("its gid {} is another user's private group", user.gid));
        }
        let home = resolved(&user.home);
        if self.local_homes.contains(&*home) {
            return Some(format!("the home {:?} is a local account's", user.home));
        }
        let (uid, name) = self.homes.get(&*home)?;
        // The same account moved to another uid (same name; a rebuilt publisher) keeps its
        // home, but only if its old uid is gone from the snapshot: else that is another,
        // living account, whose files the home holds.
        let moved = *name == fold_name(&user.name) && !self.published_uids.contains(uid);
        (*uid != user.uid && !moved)
            .then(|| format!("the home {:?} is another account's on this host", user.home))
    }

    /// Whether a published group's gid is a user's private group: an installed or host
    /// user's (those this install deletes included), or a published user's unless the
    /// host already has a group at that gid (that user is then the one skipped).
    fn private_group(&self, gid: u32, installed: &HashSet<u32>) -> bool {
        installed.contains(&gid)
            || self.host_uids.contains(&gid)
            || (self.host_user_gids.contains(&gid) && !self.host_group_gids.contains(&gid))
            || (self.published_uids.contains(&gid) && !self.host_group_gids.contains(&gid))
    }
}

/// A directory never chooses a home or a shell (the host's `[unix]` does); a snapshot
/// carries the publisher's, which must at least be a plain absolute path that cannot break
/// a passwd line or climb out of its directory.
fn unsafe_path(what: &str, path: &str) -> Option<String> {
    let plain = path.starts_with('/')
        && !path.split('/').any(|part| part == "..")
        && !path.chars().any(|c| c == ':' || c.is_control());
    (!plain).then(|| format!("the {what} {path:?} is not a plain absolute path"))
}

/// A sync only gives homes of `[unix] home` for names its policy allows (`{name}` one
/// plain name), with `.UID` (`.UID.N`) appended when that path was taken
/// (`Config::free_home`). A snapshot's home must be one too, or it names another
/// directory: `/root`, a systemd drop-in directory pam_mkhomedir would create for the user,
/// or `/home/admin`, which a local account created later would find, owned by someone else.
/// Another spelling of a home (`/home//alice`) is that home: every home is compared
/// resolved (`crate::paths`), so it cannot alias another account's.
fn outside_home_template(config: &Config, policy: &NamePolicy, home: &str) -> Option<String> {
    // As the kernel resolves it (homes are compared so everywhere): `/home/alice/`, which
    // an older template gave, is `/home/alice`.
    let path = resolved(home);
    // The path itself, or without the `.UID` or `.UID.N` `Config::free_home` appends.
    let once = without_number(&path);
    let bases = [Some(&*path), once, once.and_then(without_number)];
    let inside = bases.into_iter().flatten().any(|base| {
        name_in_home(&config.unix.home, base)
            .is_some_and(|name| policy.check(name).is_ok() && config.home_for(name) == base)
    });
    (!inside).then(|| {
        format!("the home {home:?} is not one of [unix] home {:?} on this host", config.unix.home)
    })
}

/// `path` without a final `.` and digits.
fn without_number(path: &str) -> Option<&str> {
    let (head, tail) = path.rsplit_once('.')?;
    (!tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())).then_some(head)
}

/// The one name `template` (`{name}` k times) could give `home` for: its length is what the
/// template's own text leaves, shared by the k copies.
fn name_in_home<'h>(template: &str, home: &'h str) -> Option<&'h str> {
    const PLACEHOLDER: &str = "{name}";
    let copies = template.matches(PLACEHOLDER).count();
    let fixed = template.len() - copies * PLACEHOLDER.len();
    let spread = home.len().checked_sub(fixed)?;
    if copies == 0 || spread % copies != 0 {
        return None;
    }
    let start = template.find(PLACEHOLDER)?;
    home.get(start..start + spread / copies)
}

/// The plan for installing `users` and `groups` (a snapshot, verified) into `db`. The host
/// gets exactly the publisher's accounts, minus what its rules refuse; the one thing of its
/// own it keeps is an administrator's local `user set --disable` (`disabled_by_admin`).
pub(super) fn plan(
    db: &Db,
    users: Vec<User>,
    groups: Vec<Group>,
    config: &Config,
    local: &LocalAccounts,
) -> Install {
    let rules = Rules {
        policy: config.name_policy(),
        local,
        range: config.unix.uid_range,
        retired: db.meta.retired_ids.iter().copied().collect(),
    };
    let by_uid: HashMap<u32, &User> = db.users.iter().map(|u| (u.uid, u)).collect();
    let accepts_local_passwords =
        config.snapshot.as_ref().is_some_and(|snapshot| snapshot.accept_local_passwords);
    let mut plan = Install::default();
    let mut names = HashSet::new();
    let mut uids = HashSet::new();
    let mut homes = HashSet::new();
    let mut users = users;
    users.sort_by_key(|u| u.uid);
    let held = Held::new(db, &users, local);
    // Homes are compared as the kernel resolves them: `/home/alice/` is `/home/alice`.
    let retired_homes: HashSet<Cow<str>> =
        db.meta.retired_homes.iter().map(|h| resolved(h)).collect();
    for mut user in users {
        // A kept account keeps its home on this host, as in a sync (which never moves one):
        // the home it would leave still holds its files, and is no one else's. A new one
        // gets its home resolved, as a sync would give it (pam_mkhomedir and systemd take
        // `/home/alice/` or `/home//alice` badly).
        match by_uid.get(&user.uid) {
            Some(old) if old.home != user.home => {
                if resolved(&old.home) != resolved(&user.home) {
                    plan.warnings.push(format!(
                        "{}: keeps its home {:?} on this host (the snapshot says {:?})",
                        user.name, old.home, user.home
                    ));
                }
                user.home = old.home.clone();
            }
            Some(_) => {}
            None => user.home = resolved(&user.home).into_owned(),
        }
        let own: Vec<u32> =
            by_uid.get(&user.uid).map(|old| vec![old.uid, old.gid]).unwrap_or_default();
        // A sync gives every user its uid as gid; a host user keeps the gid it has.
        let own_gid = user.gid == user.uid || own.get(1) == Some(&user.gid);
        let refused = rules
            .refuse(&user.name, &[("uid", user.uid), ("gid", user.gid)], &own)
            .or_else(|| {
                (!own_gid).then(|| format!("its gid {} is not its own private group", user.gid))
            })
            .or_else(|| {
                let own_home = by_uid.get(&user.uid).is_some_and(|old| old.home == user.home);
                let policy = &rules.policy;
                (!own_home).then(|| outside_home_template(config, policy, &user.home)).flatten()
            })
            .or_else(|| unsafe_path("home", &user.home))
            .or_else(|| unsafe_path("shell", &user.shell))
            .or_else(|| held.refuse_user(&user));
        if let Some(reason) = refused {
            plan.skipped.push(Skipped { name: user.name.clone(), reason });
            continue;
        }
        // Two accounts never share a home, not even one after the other (a sync's
        // `free_home`): a home left by an account deleted on this host, maybe with its
        // files, goes to no one else.
        let own_home = by_uid.get(&user.uid).is_some_and(|old| old.home == user.home);
        if retired_homes.contains(&*resolved(&user.home)) && !own_home {
            let reason = format!(
                "the home {:?} belonged to an account deleted on this host; it is never given \
                 to anyone else here",
                user.home
            );
            plan.skipped.push(Skipped { name: user.name.clone(), reason });
            continue;
        }
        if uids.contains(&user.uid)
            || names.contains(&fold_name(&user.name))
            || homes.contains(&*resolved(&user.home))
        {
            let reason = "another user of the snapshot has the same name, uid or home".to_string();
            plan.skipped.push(Skipped { name: user.name.clone(), reason });
            continue;
        }
        uids.insert(user.uid);
        names.insert(fold_name(&user.name));
        homes.insert(resolved(&user.home).into_owned());
        if !accepts_local_passwords {
            user.password_hash = None;
        }
        // The publisher's own mark does not travel (its effect, enabled = false, does); this
        // host's does, and outlasts every pull until `user set --enable` here.
        user.disabled_by_admin = false;
        let old = by_uid.get(&user.uid).copied();
        if old.is_some_and(|old| old.disabled_by_admin) {
            user.disabled_by_admin = true;
            user.enabled = false;
        }
        match old {
            None => plan.created.push(user.name.clone()),
            Some(old) if *old == user => plan.unchanged += 1,
            Some(_) => plan.updated.push(user.name.clone()),
        }
        plan.users.push(user);
    }
    plan.deleted = db.users.iter().filter(|u| !uids.contains(&u.uid)).cloned().collect();

    let kept: HashSet<String> = plan.users.iter().map(|u| fold_name(&u.name)).collect();
    let installed_uids: HashSet<u32> = plan.users.iter().map(|u| u.uid).collect();
    let old_groups: HashMap<u32, &Group> = db.groups.iter().map(|g| (g.gid, g)).collect();
    let mut gids = HashSet::new();
    let mut group_names = HashSet::new();
    let mut groups = groups;
    groups.sort_by_key(|g| g.gid);
    for mut group in groups {
        let folded = fold_name(&group.name);
        let own: &[u32] = if old_groups.contains_key(&group.gid) { &[group.gid] } else { &[] };
        let refused = rules.refuse(&group.name, &[("gid", group.gid)], own).or_else(|| {
            (kept.contains(&folded)
                || held.private_group(group.gid, &installed_uids)
                || gids.contains(&group.gid)
                || group_names.contains(&folded))
            .then(|| "its name or gid is taken by another user or group".to_string())
        });
        if let Some(reason) = refused {
            plan.warnings.push(format!("group {} skipped: {reason}", group.name));
            continue;
        }
        // Only an installed group holds its gid and name: a host group at the gid of one
        // skipped is deleted, and its gid retired.
        gids.insert(group.gid);
        group_names.insert(folded);
        group.members.retain(|m| kept.contains(&fold_name(m)));
        match old_groups.get(&group.gid) {
            None => plan.groups_created.push(group.name.clone()),
            Some(old) if **old == group => {}
            Some(_) => plan.groups_updated.push(group.name.clone()),
        }
        plan.groups.push(group);
    }
    plan.groups_deleted = db.groups.iter().filter(|g| !gids.contains(&g.gid)).cloned().collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::outside_home_template;
    use crate::config::Config;

    #[test]
    fn a_home_must_be_one_a_sync_could_give() {
        let mut config = Config::default();
        for (template, inside, outside) in [
            (
                "/home/{name}",
                // Other spellings of a home a sync gives name that home (and are compared
                // resolved everywhere).
                &[
                    "/home/alice",
                    "/home/alice.200005",
                    "/home/alice.200005.2",
                    "/home/a.b",
                    "/home//alice",
                    "/home/./alice",
                    "/home/alice/",
                    "/home/x/../alice",
                ][..],
                &[
                    "/home/..",
                    "/home/x/..",
                    "/root",
                    "/home/",
                    "/home/alice/.ssh",
                    "/home/$(id)",
                    "/home/root",
                    "/home/admin",
                    "/home/a b",
                    "/etc/systemd/system/x",
                ][..],
            ),
            (
                "/home/{name}.d",
                &["/home/alice.d", "/home/alice.d.200005", "/home/a.b.d", "/home/alice.d/"],
                &["/home/alice", "/home/.d", "/home/al/ice.d"],
            ),
            (
                "/srv/{name}/{name}",
                &["/srv/alice/alice", "/srv/alice/alice.200005", "/srv/alice/alice/"],
                &["/srv/alice/bob", "/srv/al/ice"],
            ),
            (
                "/home/{name}/mail",
                &["/home/alice/mail", "/home/alice/mail.200005", "/home/alice/mail/"],
                &["/home/alice", "/home//mail", "/home/a/b/mail"],
            ),
        ] {
            config.unix.home = template.to_string();
            for home in inside {
                let policy = config.name_policy();
                assert_eq!(
                    outside_home_template(&config, &policy, home),
                    None,
                    "{template}: {home}"
                );
            }
            for home in outside {
                let policy = config.name_policy();
                assert!(
                    outside_home_template(&config, &policy, home).is_some(),
                    "{template}: {home}"
                );
            }
        }
    }

    // Review of 4e860cb (helper-49).

    /// `name_in_home` finds the name for every template (ASCII or not around `{name}`,
    /// `{name}` repeated or adjacent to itself) and every name of the safe set, and never
    /// panics on a hostile home (off a char boundary, shorter than the template).
    #[test]
    fn name_in_home_inverts_home_for() {
        use super::name_in_home;
        let templates = [
            "/home/{name}",
            "/{name}",
            "/home/{name}{name}",
            "/home/{name}{name}{name}",
            "/srv/{name}/{name}",
            "/home/{name}.d",
            "/hömé/{name}/ß{name}€",
            "/ü{name}{name}ü",
            "/home/{name{name}}",
            "/home/{{name}}",
            "/home/x{name}name}",
        ];
        let names = ["a", "alice", "a.b", "alice.200005", "x@y.z", "a-_+.@9", &"n".repeat(256)];
        for template in templates {
            let mut config = Config::default();
            config.unix.home = template.to_string();
            for name in names {
                let home = config.home_for(name);
                assert_eq!(name_in_home(template, &home), Some(name), "{template} {name}");
            }
            for hostile in ["", "/", "/h", "/hö", "/hömé/€/ß€€", "/üüüü", "/home/ab", "/ü\u{80}"]
            {
                // No panic; any name returned is checked by the caller.
                let _ = name_in_home(template, hostile);
            }
            for cut in 0..=config.home_for("äöü").len() {
                let home = config.home_for("äöü");
                if let Some(part) = home.get(..cut) {
                    let _ = name_in_home(template, part);
                }
            }
        }
    }
}
