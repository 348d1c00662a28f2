//! Planning a sync: what the directory's listing means for the cache, computed without
//! touching anything. The plan is what `--dry-run` prints and what [`super::apply`] applies.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::cache::{CachedUser, Db};
use crate::config::Config;
use crate::directory::{CompactUser, DirectoryGroup, Listing, Memberships};
use crate::ids::{IdAllocator, IdsExhausted};
use crate::local_accounts::LocalAccounts;
use crate::names::{fold_name, folded_name, NamePolicy, MAX_NAME_LEN};
use crate::paths::resolved;
use crate::privileges::PrivilegeSet;
use crate::user::{AuthMethod, Group, Origin, User};

use super::index::{position32, KeyIndex};

/// Longest full name, distinguished name or address accepted from the directory, in bytes.
pub const MAX_FIELD_LEN: usize = 4096;
/// Most addresses and groups one directory account may have.
pub const MAX_EMAILS: usize = 1000;
pub const MAX_GROUPS: usize = 10_000;

/// Why a directory entry is too large to become a cache record, if it is. One account with
/// a display name of megabytes must neither fail every sync (a record holds at most 16 MiB)
/// nor put megabytes into a passwd line; it is skipped with this reason instead.
/// `groups`: how many groups list it.
fn oversized(entry: &CompactUser, groups: usize) -> Option<String> {
    let long = |what: &str, len: usize| {
        (len > MAX_FIELD_LEN)
            .then(|| format!("{what} is {len} bytes long; at most {MAX_FIELD_LEN} are accepted"))
    };
    let emails = entry.emails().len();
    long("the full name", entry.full_name().len())
        .or_else(|| long("the distinguished name", entry.distinguished_name()?.len()))
        .or_else(|| long("an address", entry.emails().map(str::len).max()?))
        .or_else(|| {
            (emails > MAX_EMAILS)
                .then(|| format!("{emails} addresses; at most {MAX_EMAILS} are accepted"))
        })
        .or_else(|| {
            (groups > MAX_GROUPS)
                .then(|| format!("member of {groups} groups; at most {MAX_GROUPS} are accepted"))
        })
}

/// A name as reports show it: names too long to be valid are cut (a directory could send
/// megabytes), with their length.
fn shown_name(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name.to_string();
    }
    let mut end = 64;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &name[..end], name.len())
}

/// The positions of listed entries sorted by their identity (ties, which a sane listing
/// does not have, keep their listed order). In 4 bytes each, as `sync::index` keeps them.
fn canonical<T>(entries: &[T], identity: impl Fn(&T) -> &str) -> Vec<u32> {
    let mut sorted: Vec<u32> = (0..entries.len()).map(position32).collect();
    sorted.sort_by(|a, b| identity(&entries[*a as usize]).cmp(identity(&entries[*b as usize])));
    sorted
}

/// The key of a cached user in `Planner::by_identity` (only users with one are in it).
fn identity_of(user: &CachedUser) -> &str {
    user.directory_identity().unwrap_or_default()
}

/// A directory entry that did not become (or stay) a cache entry, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What changes for one existing user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpdate {
    pub after: User,
    /// Field names that change, for the dry-run listing.
    pub changed: Vec<&'static str>,
    /// A manual user with `directory` auth that this sync adopts.
    pub linked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The new users, compactly as the sync holds every user (see [`CachedUser`]).
    pub creates: Vec<CachedUser>,
    pub updates: Vec<UserUpdate>,
    /// Names of users to delete (only with `delete_missing_users`).
    pub deletes: Vec<String>,
    /// Users listed again after they vanished from the directory (also in `updates`).
    pub returned: Vec<String>,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    /// The complete set of groups of this directory after the sync.
    pub groups: Vec<PlannedGroup>,
    pub groups_created: Vec<String>,
    pub groups_updated: Vec<String>,
    pub groups_deleted: Vec<String>,
    pub warnings: Vec<String>,
    /// Users of this directory in the cache before the sync (the base of the delete limit).
    pub directory_users_before: usize,
    /// Users and groups not created because `unix.uid_range` has no free id left (each
    /// also in `skipped`): an error of the run, never a quiet success.
    pub ids_exhausted: Option<(IdsExhausted, usize)>,
}

/// A group as the plan leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGroup {
    /// The group; without members when `members_as_cached`.
    pub group: Group,
    /// Its members are the cached group's (the one of this origin with the same folded
    /// name), unchanged: they are moved from it when the plan is applied. A resync plans
    /// every group again, and a second list of every member name (one string per
    /// membership) would add to its peak what the cached groups already hold.
    pub members_as_cached: bool,
}

impl PlannedGroup {
    /// A group whose members the plan lists.
    pub fn listed(group: Group) -> PlannedGroup {
        PlannedGroup { group, members_as_cached: false }
    }

    /// `old` renamed to `name` (a change of case at most), with its cached members.
    fn as_cached(old: &Group, name: String) -> PlannedGroup {
        PlannedGroup { group: Group { name, ..without_members(old) }, members_as_cached: true }
    }
}

/// `group` without its members: copied without copying them first.
fn without_members(group: &Group) -> Group {
    Group {
        name: group.name.clone(),
        gid: group.gid,
        members: Vec::new(),
        origin: group.origin,
        directory_identity: group.directory_identity.clone(),
    }
}

impl Plan {
    /// Whether applying the plan would change anything.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.deletes.is_empty()
            && self.groups_created.is_empty()
            && self.groups_updated.is_empty()
            && self.groups_deleted.is_empty()
    }
}

/// Computes the plan, for a cache whose users are held as [`CachedUser`]s. Pure: the clock
/// comes in as `now`.
pub fn plan(
    db: &Db<CachedUser>,
    listing: &Listing,
    config: &Config,
    local: &LocalAccounts,
    now: u64,
) -> Plan {
    let (mut plan, new_users, _, user_groups) =
        run_planner(Planner::new(db, listing, config, local, now));
    let groups = (listing.groups.as_slice(), user_groups);
    let template = NewUserTemplate::new(config, listing.origin, now, groups);
    let mut creates = Vec::with_capacity(new_users.len());
    for new in new_users {
        if let Some(entry) = listing.users.get(new.at as usize) {
            creates.extend(template.held(new, entry, &mut plan.skipped));
        }
    }
    plan.creates = creates;
    plan
}

/// [`plan`] for a listing that is not needed afterwards (a real sync): the same plan, but
/// the listing is given back entry by entry as the new users are made from it. In a first sync the listing and the new users are most of the
/// memory: planning holds the listing and a few bytes per new user, making the users holds
/// the users and what is left of the listing, never both whole.
pub fn plan_consuming(
    db: &Db<CachedUser>,
    listing: Listing,
    config: &Config,
    local: &LocalAccounts,
    now: u64,
) -> Plan {
    let (mut plan, mut new_users, order, user_groups) =
        run_planner(Planner::new(db, &listing, config, local, now));
    let Listing { origin, users: mut entries, groups, .. } = listing;
    let template = NewUserTemplate::new(config, origin, now, (groups.as_slice(), user_groups));
    // In canonical order, the new users' entries come in the order of `new_users`: both are
    // then taken from the end, and what was taken is given back as it goes.
    permute(&mut entries, &order);
    drop(order);
    let step = (entries.len() / 16).max(4096);
    let mut created = Vec::with_capacity(new_users.len());
    while let Some(new) = new_users.pop() {
        entries.truncate(new.rank as usize + 1);
        if let Some(entry) = entries.pop() {
            created.extend(template.held(new, &entry, &mut plan.skipped));
        }
        if entries.capacity() - entries.len() >= step {
            entries.shrink_to_fit();
            new_users.shrink_to_fit();
        }
    }
    created.reverse();
    plan.creates = created;
    plan
}

/// Puts `items` into the order `order` gives (the item at `order[i]` goes to `i`), in
/// place: following each cycle of the permutation, one swap per item.
fn permute<T>(items: &mut [T], order: &[u32]) {
    let mut done = vec![false; items.len()];
    for start in 0..items.len() {
        let mut at = start;
        while !done[at] {
            done[at] = true;
            let from = order.get(at).map_or(start, |from| *from as usize);
            if from == start || from >= items.len() {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// A new user as planned: what its listing entry does not say. The `User` is made from
/// the entry once planning is over ([`NewUserTemplate::user`]), and so are its home and
/// groups, which follow from the entry: a first sync plans every listed user as new, and
/// a home and a list of groups held for each until it is made would be most of the
/// plan's size.
struct NewUser {
    /// The position of its listing entry, and that entry's rank in the canonical order.
    at: u32,
    rank: u32,
    uid: u32,
    /// Its home when that is not `unix.home` for its name (that path is taken: see
    /// [`Config::free_home`]); `None` for the usual user.
    other_home: Option<Box<str>>,
}

/// The home of a new user whose listing entry is `entry`.
fn new_home<'n>(config: &Config, new: &'n NewUser, entry: &CompactUser) -> Cow<'n, str> {
    match &new.other_home {
        Some(home) => Cow::Borrowed(home),
        None => Cow::Owned(config.home_for(entry.login_name())),
    }
}

/// The groups of every listed user (see [`Memberships`]), and which of the listed groups
/// can become Unix groups.
struct UserGroups {
    memberships: Memberships,
    /// By position in the listing's groups: whether its folded name is that of a listed
    /// group that can become a Unix group (not refused by the name policy, no local name).
    usable: Vec<bool>,
}

impl UserGroups {
    /// Groups of nobody: what is left in a planner whose groups were taken.
    fn empty() -> UserGroups {
        UserGroups { memberships: Memberships::default(), usable: Vec::new() }
    }

    fn new(listing: &Listing, policy: &NamePolicy, local: &LocalAccounts) -> UserGroups {
        let groups = &listing.groups;
        let usable: BTreeSet<String> = (groups.iter())
            .filter(|g| policy.check(&g.name).is_ok() && !local.win_over(&g.name, &[]))
            .map(|g| fold_name(&g.name))
            .collect();
        // A listing without groups (Application Integration) indexes no user.
        let memberships = if groups.is_empty() {
            Memberships::default()
        } else {
            Memberships::new(listing.users.len(), groups)
        };
        let usable = groups.iter().map(|g| usable.contains(&fold_name(&g.name))).collect();
        UserGroups { memberships, usable }
    }

    /// How many groups list the user at `at`.
    fn count(&self, at: usize) -> usize {
        self.memberships.of(at).len()
    }

    /// The names of the groups (the listing's `groups`) of the user at `at` that will
    /// exist as Unix groups, in the directory's order.
    fn usable_of<'g>(
        &'g self,
        groups: &'g [DirectoryGroup],
        at: usize,
    ) -> impl Iterator<Item = &'g str> + 'g {
        let memberships = self.memberships.of(at).iter();
        let usable = memberships.filter(|g| self.usable.get(**g as usize) == Some(&true));
        usable.filter_map(|g| groups.get(*g as usize)).map(|g| g.name.as_str())
    }

    /// [`UserGroups::usable_of`], copied. Exactly as long as it is: every user holds one
    /// (a filtered collect keeps room for four).
    fn names_of(&self, groups: &[DirectoryGroup], at: usize) -> Vec<String> {
        let mut names: Vec<String> = self.usable_of(groups, at).map(str::to_string).collect();
        names.shrink_to_fit();
        names
    }
}

/// What every new user of a plan has alike, and what its home and groups are made from.
struct NewUserTemplate<'a> {
    config: &'a Config,
    privileges: PrivilegeSet,
    origin: Origin,
    now: u64,
    /// The listing's groups, and the groups of each listed user.
    groups: &'a [DirectoryGroup],
    user_groups: UserGroups,
}

impl<'a> NewUserTemplate<'a> {
    fn new(
        config: &'a Config,
        origin: Origin,
        now: u64,
        (groups, user_groups): (&'a [DirectoryGroup], UserGroups),
    ) -> NewUserTemplate<'a> {
        NewUserTemplate {
            config,
            privileges: config.sync.default_privileges.iter().copied().collect(),
            origin,
            now,
            groups,
            user_groups,
        }
    }

    /// The new user compactly; `None`, skipped with the reason, for one whose text does
    /// not fit [`CachedUser`] (4 GiB: an entry that large is skipped as oversized before).
    fn held(
        &self,
        new: NewUser,
        entry: &CompactUser,
        skipped: &mut Vec<Skipped>,
    ) -> Option<CachedUser> {
        let user = self.user(new, entry);
        let held = CachedUser::new(&user).ok();
        if held.is_none() {
            let reason = "not created: its text is 4 GiB or more".to_string();
            skipped.push(Skipped { name: shown_name(&user.name), reason });
        }
        held
    }

    fn user(&self, new: NewUser, entry: &CompactUser) -> User {
        User {
            name: entry.login_name().to_string(),
            full_name: entry.full_name().to_string(),
            emails: entry.emails().map(str::to_string).collect(),
            auth: AuthMethod::Directory,
            password_hash: None,
            privileges: self.privileges,
            enabled: entry.enabled(),
            disabled_by_admin: false,
            origin: self.origin,
            uid: new.uid,
            gid: new.uid,
            home: new_home(self.config, &new, entry).into_owned(),
            shell: self.config.unix.shell.clone(),
            groups: self.user_groups.names_of(self.groups, new.at as usize),
            distinguished_name: entry.distinguished_name().map(str::to_string),
            directory_identity: Some(entry.identity().to_string()),
            missing_since: None,
            limits: entry.limits(),
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

/// The plan without its new users, the new users as planned (in the plan's order), the
/// canonical order of the listing, and the groups of the listed users.
fn run_planner(mut planner: Planner<'_>) -> (Plan, Vec<NewUser>, Vec<u32>, UserGroups) {
    planner.plan_users();
    planner.plan_deletes();
    planner.plan_groups();
    let new_users = std::mem::take(&mut planner.new_users);
    let order = std::mem::take(&mut planner.order);
    let user_groups = std::mem::replace(&mut planner.user_groups, UserGroups::empty());
    (planner.finish(), new_users, order, user_groups)
}

struct Planner<'a> {
    db: &'a Db<CachedUser>,
    /// `db.users`.
    users: &'a [CachedUser],
    listing: &'a Listing,
    config: &'a Config,
    local: &'a LocalAccounts,
    now: u64,
    ids: IdAllocator,
    plan: Plan,
    /// Cached users (by position in `users`) the listing matched by identity.
    matched: Vec<bool>,
    /// Cached users (positions in `users`) by directory identity and by folded name, the
    /// last of several winning: the planner is linear in the number of users, and holds
    /// these for every one of them (see `sync::index`).
    by_identity: KeyIndex,
    by_name: KeyIndex,
    /// Folded names that cached users give up by a rename in this plan, and the names they
    /// are renamed to. With `by_name` and the new users' names (`sources`), the names taken
    /// after the sync.
    renamed_away: HashSet<String>,
    renamed_to: HashSet<Cow<'a, str>>,
    /// Home directories of cached users (positions in `users`) and of the users this
    /// plan creates (positions in `plan.creates`): with those of deleted users
    /// (`db.meta.retired_homes`), the homes a new user must not get.
    cached_homes: KeyIndex,
    created_homes: KeyIndex,
    /// More homes a new user (whose home is always resolved) must not get, resolved: the
    /// local accounts' (local accounts win), and cached and retired homes written another
    /// way than the kernel resolves them (by an older `[unix] home` such as `/home/{name}/`;
    /// almost never any).
    other_homes: HashSet<String>,
    /// The final login name of each listed identity, for group membership; only when the
    /// listing has groups.
    final_names: Option<FinalNames>,
    /// The groups of each listed user.
    user_groups: UserGroups,
    /// Which names may become users and groups (`names::NamePolicy`).
    policy: NamePolicy,
    /// The users to create, made into `User`s once planning is over.
    new_users: Vec<NewUser>,
    /// The positions of the listed users in canonical order (see `plan_users`).
    order: Vec<u32>,
    /// Folded names of the groups in the cache: a user never takes one (first holder wins).
    group_names: HashSet<String>,
}

/// The final login name of listed entries, by position in the listing. An entry's
/// identity names that entry: `plan_users` plans no identity the listing repeats.
struct FinalNames {
    names: Vec<FinalName>,
}

/// Whose name a listed entry ends up with: none (it is not planned), its own login name,
/// or the name of the cached user at a position. In 4 bytes rather than a reference to
/// the name (16), as the planner holds one per listed user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FinalName(u32);

impl FinalName {
    const NONE: FinalName = FinalName(0);
    const LISTED: FinalName = FinalName(1);

    /// The name of the cached user at `at` (which `sync::run_sync` keeps below 2^32 - 2).
    fn cached(at: usize) -> FinalName {
        FinalName(position32(at).saturating_add(2))
    }

    /// The name itself, for the listed `entry` and the cached `users`.
    fn name<'a>(self, entry: &'a CompactUser, users: &'a [CachedUser]) -> Option<&'a str> {
        match self.0 {
            0 => None,
            1 => Some(entry.login_name()),
            cached => users.get(cached as usize - 2).map(CachedUser::name),
        }
    }
}

impl<'a> Planner<'a> {
    fn new(
        db: &'a Db<CachedUser>,
        listing: &'a Listing,
        config: &'a Config,
        local: &'a LocalAccounts,
        now: u64,
    ) -> Self {
        // Made first, so that what it sorts while it is made is given back before the
        // indexes below are built; fed without a sorted set of every id in between.
        let ids = IdAllocator::new(
            config.unix.uid_range,
            db.ids_in_use_unsorted().chain(local.ids()),
            local.subordinate_ids(),
        );
        let users = &db.users;
        let directory_users_before = users.iter().filter(|u| u.origin() == listing.origin).count();
        let mut by_identity = KeyIndex::with_capacity(users.len());
        let mut by_name = KeyIndex::with_capacity(users.len());
        let mut cached_homes = KeyIndex::with_capacity(users.len());
        for (at, user) in users.iter().enumerate() {
            if let Some(identity) = user.directory_identity() {
                by_identity.insert(identity, at, |at| identity_of(&users[at]));
            }
            by_name.insert(&folded_name(user.name()), at, |at| folded_name(users[at].name()));
            cached_homes.insert_new(user.home(), at, |at| users[at].home());
        }
        let homes = users
            .iter()
            .map(CachedUser::home)
            .chain(db.meta.retired_homes.iter().map(String::as_str));
        let respelt = homes.filter_map(|home| match resolved(home) {
            Cow::Owned(home) => Some(home),
            Cow::Borrowed(_) => None,
        });
        let local_homes = local.homes().map(Cow::into_owned);
        let other_homes = respelt.chain(local_homes).collect();
        let final_names = (!listing.groups.is_empty())
            .then(|| FinalNames { names: vec![FinalName::NONE; listing.users.len()] });
        let policy = config.name_policy();
        let user_groups = UserGroups::new(listing, &policy, local);
        Planner {
            db,
            users,
            listing,
            config,
            local,
            now,
            ids,
            plan: Plan { directory_users_before, ..Plan::default() },
            matched: vec![false; users.len()],
            by_identity,
            by_name,
            renamed_away: HashSet::new(),
            renamed_to: HashSet::new(),
            cached_homes,
            created_homes: KeyIndex::with_capacity(0),
            other_homes,
            final_names,
            user_groups,
            policy,
            group_names: db.groups.iter().map(|g| fold_name(&g.name)).collect(),
            new_users: Vec::new(),
            order: Vec::new(),
        }
    }

    /// The cached user (position in `users`) with this directory identity.
    fn cached_by_identity(&self, identity: &str) -> Option<usize> {
        let users = self.users;
        self.by_identity.get(identity, |at| identity_of(&users[at]))
    }

    /// The cached user (position in `users`) with this folded name.
    fn cached_by_name(&self, folded: &str) -> Option<usize> {
        let users = self.users;
        self.by_name.get(folded, |at| folded_name(users[at].name()))
    }

    /// Whether a cached user has the folded name `folded` after this plan's renames. (New
    /// users' names are told apart as they are planned, see `plan_users`, and from groups'
    /// in `plan_groups`.)
    fn name_taken(&self, folded: &str) -> bool {
        self.renamed_to.contains(folded)
            || (self.cached_by_name(folded).is_some() && !self.renamed_away.contains(folded))
    }

    /// Whether a new user must not get `home`: a cached user has it, a deleted one had it,
    /// or a user this plan creates gets it.
    fn home_taken(&self, home: &str) -> bool {
        let (users, new_users) = (self.users, &self.new_users);
        self.cached_homes.contains(home, |at| users[at].home())
            || self.db.meta.retired_homes.contains(home)
            || self.other_homes.contains(home)
            || self.created_homes.contains(home, |at| self.new_home(&new_users[at]))
    }

    /// Records the final login name of the listed entry at `at`, for group membership.
    fn set_final_name(&mut self, at: usize, name: FinalName) {
        if let Some(finals) = &mut self.final_names {
            finals.names[at] = name;
        }
    }

    /// The final login name of the listed entry at `at`, if it has one.
    fn final_name(&self, at: usize) -> Option<&'a str> {
        let finals = self.final_names.as_ref()?;
        finals.names.get(at)?.name(self.listing.users.get(at)?, self.users)
    }

    /// Skips every entry of an identity the listing holds more than once (ranks in
    /// canonical order, where they stand side by side), and returns their ranks, sorted.
    /// The adapters never list one identity twice (`docs/protocols/`); a listing that does
    /// is not one account renamed twice, nor two users sharing one identity: none of its
    /// entries is synced, and the cached user with that identity is treated as one the
    /// directory no longer vouches for, except that it is never deleted for it.
    fn skip_repeated_identities(&mut self) -> Vec<u32> {
        let entries = &self.listing.users;
        let identity = |rank: &u32| entries[*rank as usize].identity();
        let order = std::mem::take(&mut self.order);
        let mut repeated = Vec::new();
        let mut start = 0;
        for run in order.chunk_by(|a, b| identity(a) == identity(b)) {
            if run.len() > 1 {
                self.skip_repeated(run);
                repeated.extend((start..start + run.len()).map(position32));
            }
            start += run.len();
        }
        self.order = order;
        repeated
    }

    /// Skips the listed entries at `run` (positions in the listing), which share one
    /// identity; see [`Planner::skip_repeated_identities`]. None of them is a group member
    /// (their final name stays none).
    fn skip_repeated(&mut self, run: &[u32]) {
        let (users, entries) = (self.users, &self.listing.users);
        for at in run.iter().map(|at| *at as usize) {
            let reason = format!(
                "not synced: the directory lists its identity {} times; none of them is \
                 synced until it lists it once",
                run.len()
            );
            self.skip(entries[at].login_name(), reason);
        }
        let Some(user_at) = self.cached_by_identity(entries[run[0] as usize].identity()) else {
            return;
        };
        // Not deleted for a listing's fault (nor its uid retired), and not missing either (a
        // return would reset its privileges and drop its login state), but no longer vouched
        // for: disabled and out of its groups until the directory lists it once
        // (`plan_update` then follows the directory again).
        self.matched[user_at] = true;
        let user = &users[user_at];
        let what = if user.auth() == AuthMethod::Directory { "disabled and out" } else { "out" };
        self.plan.warnings.push(format!(
            "{} is listed more than once by the directory; {what} of its groups until it is \
             listed once",
            user.name()
        ));
        self.plan_withdrawal(user, user.auth() == AuthMethod::Directory);
    }

    /// Plans [`Planner::withdrawn`] for `user`, disabled only if `disable` (a user with a
    /// local password stays enabled, as when the directory no longer lists it), if that
    /// changes anything.
    fn plan_withdrawal(&mut self, user: &CachedUser, disable: bool) {
        let (mut after, mut changed) = self.withdrawn(user);
        if !disable {
            after.enabled = user.enabled();
            changed.retain(|field| *field != "enabled");
        }
        if !changed.is_empty() {
            self.plan.updates.push(UserUpdate { after, changed, linked: false });
        }
    }

    /// `user` disabled and out of its groups, and which of its fields that changes: what
    /// a user the directory no longer vouches for keeps. Out of the groups' member lists
    /// is not enough: `initgroups` answers from the user's own groups.
    fn withdrawn(&self, user: &CachedUser) -> (User, Vec<&'static str>) {
        let mut changed = Vec::new();
        if user.enabled() {
            changed.push("enabled");
        }
        if user.groups().len() > 0 {
            changed.push("groups");
        }
        let mut after = user.to_user();
        after.enabled = false;
        after.groups.clear();
        after.updated_at = self.now;
        (after, changed)
    }

    fn skip(&mut self, name: &str, reason: impl Into<String>) {
        self.plan.skipped.push(Skipped { name: shown_name(name), reason: reason.into() });
    }

    /// Skips a user or group for want of an id, and counts it for the run's error.
    fn skip_exhausted(&mut self, name: &str, what: &str, e: IdsExhausted) {
        self.skip(name, format!("{what} not created: {e}"));
        let count = self.plan.ids_exhausted.as_ref().map_or(0, |(_, count)| *count);
        self.plan.ids_exhausted = Some((e, count + 1));
    }

    /// Accounts the cache already knows (by identity) come first and are always updated:
    /// a name clash only blocks a rename (see [`Planner::rename_target`]), never the
    /// account's other changes, and never makes it look unlisted (deleted). New accounts
    /// come after them, so a name a known account holds is never handed to a new one.
    ///
    /// Both are taken in the canonical order of their identities, not in the order the
    /// directory listed them: ids are probed past collisions in that order, and which of two
    /// clashing names wins is decided in it, so two hosts that sync the same directory
    /// agree however the server orders its listing.
    fn plan_users(&mut self) {
        let listing = self.listing;
        let entries = &listing.users;
        self.order = canonical(entries, |u| u.identity());
        let repeated = self.skip_repeated_identities();
        // Ranks in the canonical order.
        let (known, new): (Vec<u32>, Vec<u32>) = (0..self.order.len())
            .map(position32)
            .filter(|rank| repeated.binary_search(rank).is_err())
            .partition(|rank| {
                self.cached_by_identity(entries[self.at(*rank)].identity()).is_some()
            });
        for rank in known {
            let at = self.at(rank);
            if let Some(user) = self.cached_by_identity(entries[at].identity()) {
                self.plan_update(user, at);
            }
        }
        // Folded login names of the new accounts so far (positions in the listing).
        let mut seen = KeyIndex::with_capacity(new.len());
        // Reserved once: grown by doubling, the vector of new users would hold up to twice
        // their size.
        self.new_users.reserve_exact(new.len());
        self.created_homes = KeyIndex::with_capacity(new.len());
        for rank in new {
            let at = self.at(rank);
            let entry = &entries[at];
            // Every new account probes for its id, even one skipped below: what this host
            // skips (its reserved names, its local accounts) must not move the ids other
            // hosts give the accounts after it.
            let id = self.ids.allocate(entry.identity());
            let folded = folded_name(entry.login_name());
            if !seen.insert_new(&folded, at, |at| folded_name(entries[at].login_name())) {
                self.skip(entry.login_name(), "another directory account has the same login name");
                continue;
            }
            match self.existing_for(entry) {
                Some(user) => self.plan_update(user, at),
                None => self.plan_create(entry, (at, rank), id),
            }
        }
    }

    /// The cached user this directory entry is: same identity, or a manual user of the same
    /// name with directory authentication (the seeds' "manually created users").
    /// The position of that user in `users`.
    fn existing_for(&mut self, entry: &CompactUser) -> Option<usize> {
        if let Some(user) = self.cached_by_identity(entry.identity()) {
            return Some(user);
        }
        let at = self.cached_by_name(&folded_name(entry.login_name()))?;
        let same_name = &self.users[at];
        if same_name.directory_identity().is_some() {
            return None; // another directory account holds the name; create() reports it
        }
        if same_name.auth() == AuthMethod::Directory {
            return Some(at);
        }
        None
    }

    /// Plans the cached user at `user_at` in `users` after the listed entry at `at`.
    fn plan_update(&mut self, user_at: usize, at: usize) {
        let (users, listing) = (self.users, self.listing);
        let (user, entry) = (&users[user_at], &listing.users[at]);
        self.matched[user_at] = true;
        if let Some(problem) = oversized(entry, self.user_groups.count(at)) {
            // Kept as it is (not deleted, not changed), with the reason.
            self.set_final_name(at, FinalName::cached(user_at));
            return self.skip(entry.login_name(), format!("not updated: {problem}"));
        }
        let linked = user.directory_identity().is_none();
        let new_name = self.rename_target(user, entry);
        // A name that was fine when the account was made may be refused now (a new
        // `reserved_names` entry): the account stays, so its uid is never reused, but
        // disabled; PAM and NSS refuse the name anyway.
        let refused = self.policy.check(new_name).err();
        if let Some(reason) = &refused {
            self.skip(new_name, format!("disabled: {reason}"));
        }
        let mut changed = Vec::new();
        let mut set = |field: &'static str, differs: bool| {
            if differs {
                changed.push(field);
            }
        };
        set("name", new_name != user.name());
        set("full_name", entry.full_name() != user.full_name());
        set("emails", !entry.emails().eq(user.emails()));
        // An administrator's --disable outlasts whatever the directory says.
        let enabled = entry.enabled() && !user.disabled_by_admin() && refused.is_none();
        set("enabled", enabled != user.enabled());
        let groups = &listing.groups;
        set("groups", !self.user_groups.usable_of(groups, at).eq(user.groups()));
        set("distinguished_name", entry.distinguished_name() != user.distinguished_name());
        set("limits", entry.limits() != user.limits());
        let returned = user.missing_since().is_some();
        set("returned", returned);
        if linked {
            changed.push("origin");
        }
        // Equal names are the same name, whichever of the two is read later.
        let final_name =
            if new_name == user.name() { FinalName::cached(user_at) } else { FinalName::LISTED };
        self.set_final_name(at, final_name);
        if changed.is_empty() {
            self.plan.unchanged += 1;
            return;
        }
        let mut after = user.to_user();
        if linked {
            after.directory_identity = Some(entry.identity().to_string());
            after.origin = self.listing.origin;
        }
        after.name = new_name.to_string();
        after.full_name = entry.full_name().to_string();
        after.emails = entry.emails().map(str::to_string).collect();
        after.enabled = enabled;
        after.groups = self.user_groups.names_of(&listing.groups, at);
        after.distinguished_name = entry.distinguished_name().map(str::to_string);
        after.limits = entry.limits();
        after.updated_at = self.now;
        if returned {
            self.plan_return(&mut after);
        }
        self.plan.updates.push(UserUpdate { after, changed, linked });
    }

    /// An address listed again after it vanished may belong to someone else now: it keeps
    /// its uid and home (an id, once given, is kept), but not what was granted to whoever
    /// held it before: its privileges go back to `default_privileges`. Its login state
    /// (offline credentials, failures) was dropped when it vanished, and is dropped again
    /// after this sync's commit (see `sync::run_sync`), so it logs in only with what the
    /// directory says now.
    fn plan_return(&mut self, after: &mut User) {
        after.missing_since = None;
        after.privileges = self.config.sync.default_privileges.iter().copied().collect();
        self.plan.returned.push(after.name.clone());
    }

    /// A renamed directory account keeps its uid; the new name is used only when it is
    /// valid and free, otherwise the old one stays and the reason is reported.
    fn rename_target(&mut self, user: &'a CachedUser, entry: &'a CompactUser) -> &'a str {
        if entry.login_name() == user.name() {
            return user.name();
        }
        let folded = folded_name(entry.login_name());
        let blocker = if let Err(e) = self.policy.check(entry.login_name()) {
            Some(e.to_string())
        } else if self.local.win_over(entry.login_name(), &[]) {
            Some("a local account has that name".to_string())
        } else if *fold_name(user.name()) != *folded && self.name_taken(&folded) {
            Some("another cache user has that name".to_string())
        } else if self.group_names.contains(&*folded) {
            Some("a group has that name".to_string())
        } else {
            None
        };
        if let Some(reason) = blocker {
            self.skip(entry.login_name(), format!("not renamed from {}: {reason}", user.name()));
            return user.name();
        }
        let away = fold_name(user.name());
        self.renamed_to.remove(away.as_str());
        self.renamed_away.insert(away);
        self.renamed_to.insert(folded);
        entry.login_name()
    }

    /// Plans a new user for `entry`, at `at` in the listing and `rank` in canonical order.
    fn plan_create(
        &mut self,
        entry: &'a CompactUser,
        (at, rank): (usize, u32),
        id: Result<u32, IdsExhausted>,
    ) {
        let name = entry.login_name();
        if let Err(e) = self.policy.check(name) {
            return self.skip(name, format!("invalid name: {e}"));
        }
        if let Some(problem) = oversized(entry, self.user_groups.count(at)) {
            return self.skip(name, problem);
        }
        if self.local.win_over(name, &[]) {
            return self.skip(
                name,
                "a local account in /etc/passwd or /etc/group has that name; local accounts win",
            );
        }
        if let Some(holder) = self.cached_by_name(&folded_name(name)).map(|at| &self.users[at]) {
            let reason = if holder.auth() == AuthMethod::Local
                && holder.directory_identity().is_none()
            {
                "a manually created user with a local password has that name; switch it to `--auth directory` to link it"
            } else {
                "another cache user has that name"
            };
            return self.skip(name, reason);
        }
        // A new user's name is never another's: `plan_users` skipped the repeats.
        if self.name_taken(&folded_name(name)) {
            return self.skip(name, "another cache user has that name");
        }
        if self.group_names.contains(&fold_name(name)) {
            return self.skip(name, "a group has that name; the first holder keeps it");
        }
        let uid = match id {
            Ok(uid) => uid,
            Err(e) => return self.skip_exhausted(name, "user", e),
        };
        self.set_final_name(at, FinalName::LISTED);
        let home = self.config.free_home(name, uid, |home| self.home_taken(home));
        self.warn_if_other_home(name, &home);
        let other_home = (home != self.config.home_for(name)).then(|| home.clone().into());
        self.new_users.push(NewUser { at: position32(at), rank, uid, other_home });
        let (config, entries, new_users) = (self.config, &self.listing.users, &self.new_users);
        let home_of =
            |at: usize| new_home(config, &new_users[at], &entries[new_users[at].at as usize]);
        self.created_homes.insert_new(&home, new_users.len() - 1, home_of);
    }

    /// The home of a user this plan creates.
    fn new_home<'n>(&self, new: &'n NewUser) -> Cow<'n, str> {
        new_home(self.config, new, &self.listing.users[new.at as usize])
    }

    /// The position in the listing of the entry of canonical `rank`.
    fn at(&self, rank: u32) -> usize {
        self.order[rank as usize] as usize
    }

    /// Says why a new user does not get `unix.home` for its name.
    fn warn_if_other_home(&mut self, name: &str, home: &str) {
        let wanted = self.config.home_for(name);
        if home == wanted {
            return;
        }
        let retired = self.db.meta.retired_homes.iter().any(|h| resolved(h) == wanted.as_str());
        let whose = if retired {
            "was the home of a deleted user (its files may still be there)"
        } else if self.local.homes().any(|home| home == wanted.as_str()) {
            "is a local account's home (local accounts win)"
        } else {
            "belongs to another cache user (renamed since)"
        };
        self.plan.warnings.push(format!("{name}: {wanted} {whose}; the new user gets {home}"));
    }

    /// Users of this origin that the directory no longer lists. Only `directory` users
    /// are ever deleted, never local-password users, and only when configured.
    fn plan_deletes(&mut self) {
        let users = self.users;
        let matched =
            |identity: &str| self.cached_by_identity(identity).is_some_and(|at| self.matched[at]);
        let missing: Vec<&CachedUser> = users
            .iter()
            .filter(|u| u.origin() == self.listing.origin)
            .filter(|u| u.directory_identity().is_some_and(|id| !matched(id)))
            .collect();
        for user in missing {
            if user.auth() == AuthMethod::Directory && !self.config.sync.delete_missing_users {
                // Kept, but disabled: the directory no longer vouches for it, and an SSH key
                // or offline credentials must not keep letting it in. Listed again, it is
                // enabled again (plan_update follows the directory).
                self.plan_disable_missing(user);
            } else if !self.config.sync.delete_missing_users {
                self.plan.warnings.push(format!(
                    "{} is no longer in the directory; kept, out of its groups \
                     (delete_missing_users = false)",
                    user.name()
                ));
                self.plan_withdrawal(user, false);
            } else if user.auth() != AuthMethod::Directory {
                self.plan.warnings.push(format!(
                    "{} is no longer in the directory; kept, out of its groups, because its \
                     auth method is local",
                    user.name()
                ));
                self.plan_withdrawal(user, false);
            } else {
                self.plan.deletes.push(user.name().to_string());
            }
        }
    }

    /// Marks the user as vanished (`missing_since`): its login state is dropped after the
    /// commit, and if it is listed again it returns as a possibly new person
    /// ([`Planner::plan_return`]).
    fn plan_disable_missing(&mut self, user: &CachedUser) {
        let name = user.name();
        let what = if user.enabled() { "disabled and kept" } else { "kept disabled" };
        let dropped = if user.missing_since().is_none() {
            "; its cached offline credentials and login state are dropped"
        } else {
            ""
        };
        self.plan.warnings.push(format!(
            "{name} is no longer in the directory; {what} (delete_missing_users = false){dropped}"
        ));
        let (mut after, mut changed) = self.withdrawn(user);
        if user.missing_since().is_none() {
            changed.push("missing_since");
        }
        if changed.is_empty() {
            return;
        }
        after.missing_since = user.missing_since().or(Some(self.now));
        self.plan.updates.push(UserUpdate { after, changed, linked: false });
    }

    fn plan_groups(&mut self) {
        let existing: BTreeMap<String, &Group> = self
            .db
            .groups
            .iter()
            .filter(|g| g.origin == self.listing.origin)
            .map(|g| (fold_name(&g.name), g))
            .collect();
        let mut listed = BTreeSet::new();
        // Folded names of the listed groups that users this plan creates take: one pass over
        // the new users, for the few groups.
        let group_names: HashSet<String> =
            self.listing.groups.iter().map(|g| fold_name(&g.name)).collect();
        let created_names: HashSet<String> = if group_names.is_empty() {
            HashSet::new()
        } else {
            let entries = &self.listing.users;
            self.new_users
                .iter()
                .map(|new| folded_name(entries[new.at as usize].login_name()))
                .filter(|folded| group_names.contains(&**folded))
                .map(Cow::into_owned)
                .collect()
        };
        // Canonical order for the same reason as the users' (see `plan_users`).
        let groups = &self.listing.groups;
        for group in canonical(groups, |g| &g.identity).into_iter().map(|at| &groups[at as usize]) {
            // As for users: a new group probes for its gid even when skipped below.
            let gid = (!existing.contains_key(&fold_name(&group.name)))
                .then(|| self.ids.allocate(&format!("group:{}", group.identity)));
            if let Err(e) = self.policy.check(&group.name) {
                self.skip(&group.name, format!("group not created: invalid name: {e}"));
                continue;
            }
            let folded = folded_name(&group.name);
            if self.local.win_over(&group.name, &[])
                || self.name_taken(&folded)
                || created_names.contains(&*folded)
            {
                self.skip(
                    &group.name,
                    "group not created: a local account or a user has that name",
                );
                continue;
            }
            if !listed.insert(fold_name(&group.name)) {
                continue;
            }
            match existing.get(&fold_name(&group.name)) {
                Some(old) => self.plan_group_update(group, old),
                None => {
                    let members = self.member_names(group);
                    self.plan_group_create(group, members, gid);
                }
            }
        }
        for (folded, old) in existing {
            if listed.contains(&folded) {
                continue;
            }
            // A group whose name the policy now refuses is dropped whatever the setting.
            if self.config.sync.delete_missing_users || self.policy.check(&old.name).is_err() {
                self.plan.groups_deleted.push(old.name.clone());
                continue;
            }
            // Kept for its gid (files keep their group name), but the directory no longer
            // vouches for its members: a member list frozen here would keep granting what
            // pam_access, pam_succeed_if or pam_wheel grant to members.
            if !old.members.is_empty() {
                self.plan.groups_updated.push(old.name.clone());
                self.plan.warnings.push(format!(
                    "group {} is no longer listed as a Unix group; kept without members",
                    old.name
                ));
            }
            self.plan.groups.push(PlannedGroup::listed(without_members(old)));
        }
    }

    /// The final login names of `group`'s members, in the directory's order.
    fn listed_members(&self, group: &'a DirectoryGroup) -> impl Iterator<Item = &'a str> + '_ {
        group.members.iter().filter_map(|at| self.final_name(*at as usize))
    }

    /// [`Planner::listed_members`], copied.
    fn member_names(&self, group: &'a DirectoryGroup) -> Vec<String> {
        let mut members: Vec<String> = self.listed_members(group).map(str::to_string).collect();
        // Filtered, the list would keep room for up to twice its members.
        members.shrink_to_fit();
        members
    }

    /// Plans the listed `group` that is cached as `old`: its members are listed again only
    /// when they changed (see [`PlannedGroup::members_as_cached`]).
    fn plan_group_update(&mut self, group: &'a DirectoryGroup, old: &Group) {
        let same = self.listed_members(group).eq(old.members.iter().map(String::as_str));
        if !same || old.name != group.name {
            self.plan.groups_updated.push(group.name.clone());
        }
        let planned = if same {
            PlannedGroup::as_cached(old, group.name.clone())
        } else {
            let members = self.member_names(group);
            PlannedGroup::listed(Group {
                name: group.name.clone(),
                members,
                ..without_members(old)
            })
        };
        self.plan.groups.push(planned);
    }

    fn plan_group_create(
        &mut self,
        group: &DirectoryGroup,
        members: Vec<String>,
        gid: Option<Result<u32, IdsExhausted>>,
    ) {
        let gid = gid.unwrap_or_else(|| self.ids.allocate(&format!("group:{}", group.identity)));
        match gid {
            Ok(gid) => {
                self.plan.groups_created.push(group.name.clone());
                self.plan.groups.push(PlannedGroup::listed(Group {
                    name: group.name.clone(),
                    gid,
                    members,
                    origin: self.listing.origin,
                    directory_identity: Some(group.identity.clone()),
                }));
            }
            Err(e) => self.skip_exhausted(&group.name, "group", e),
        }
    }

    fn finish(mut self) -> Plan {
        self.plan.warnings.extend(self.listing.warnings.iter().cloned());
        // Ids are kept, even inside a subordinate range: the administrator must act.
        let users = self.users.iter().map(|u| (u.name(), u.uid(), u.gid()));
        let inside = self.local.subordinate_id_warnings_of(users, &self.db.groups);
        self.plan.warnings.extend(inside);
        self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::permute;

    #[test]
    fn permute_puts_each_item_where_the_order_says() {
        for order in [vec![], vec![0], vec![2, 0, 1], vec![1, 0, 3, 2, 4], vec![4, 3, 2, 1, 0]] {
            let mut items: Vec<u32> = (0..order.len() as u32).map(|i| i * 10).collect();
            permute(&mut items, &order);
            let expected: Vec<u32> = order.iter().map(|from| from * 10).collect();
            assert_eq!(items, expected, "{order:?}");
        }
    }
}
