//! A randomized model of snapshot installs (`install::plan` + `Install::apply`, the
//! code a pull runs between verifying the files and committing), checked against the
//! promise "a snapshot is trusted no more than a directory" after every pull.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::install;
use crate::cache::Db;
use crate::config::Config;
use crate::local_accounts::LocalAccounts;
use crate::names::fold_name;
use crate::user::{sample_user, Group, Origin, User};

const LOCAL_USER: (&str, u32, &str) = ("localx", 200_009, "/home/localx");
const LOCAL_GROUP: (&str, u32) = ("localg", 200_010);

fn setup(dir: &Path) -> (Config, LocalAccounts) {
    fs::write(
        dir.join("passwd"),
        format!(
            "root:x:0:0::/root:/bin/sh\n{}:x:{}:{}::{}:/bin/sh\n",
            LOCAL_USER.0, LOCAL_USER.1, LOCAL_USER.1, LOCAL_USER.2
        ),
    )
    .unwrap();
    fs::write(dir.join("group"), format!("root:x:0:\n{}:x:{}:\n", LOCAL_GROUP.0, LOCAL_GROUP.1))
        .unwrap();
    let config = super::tests::config_in(dir, "");
    let local = config.local_accounts().unwrap();
    (config, local)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

type Snapshot = (Vec<User>, Vec<Group>);

fn user(name: &str, uid: u32, gid: u32, home: &str) -> User {
    User { gid, home: home.to_string(), ..sample_user(name, uid) }
}

fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group {
        name: name.to_string(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
        origin: Origin::Manual,
        directory_identity: None,
    }
}

/// Path as the kernel resolves it, lexically (no symlinks): `//` and `/./` and a trailing
/// `/` name the same directory.
fn normal(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// A user account (by uid, the host's identity of an account): its uid, private group,
    /// and a primary gid that is no group's.
    User(u32),
    Group(u32, String),
}

/// What the host has ever handed out, and to whom.
#[derive(Default)]
struct History {
    ids: HashMap<u32, Owner>,
    dead_ids: HashSet<u32>,
    homes: HashMap<String, (u32, String)>,
    dead_homes: HashSet<String>,
}

struct Options {
    /// Count the designed exception ("moved": same name, new uid, old uid gone) as fine.
    allow_moved: bool,
    /// Report a group at a gid taking a new name (a sync matches groups by name).
    group_renames: bool,
    /// Compare homes as paths (`normal`), not strings.
    alias_homes: bool,
    /// Report a user given a local account's home.
    local_homes: bool,
}

/// Checks `post` (after one pull) against `pre` and the history, and updates the history.
fn check(
    pre: &Db,
    post: &Db,
    history: &mut History,
    local: &LocalAccounts,
    options: &Options,
) -> Vec<String> {
    let mut bad = Vec::new();
    let norm = |h: &str| if options.alias_homes { normal(h) } else { h.to_string() };
    let pre_by_uid: HashMap<u32, &User> = pre.users.iter().map(|u| (u.uid, u)).collect();
    let post_uids: HashSet<u32> = post.users.iter().map(|u| u.uid).collect();
    let post_group_gids: HashSet<u32> = post.groups.iter().map(|g| g.gid).collect();
    let pre_group_gids: HashSet<u32> = pre.groups.iter().map(|g| g.gid).collect();

    // Static invariants of the result.
    for g in &post.groups {
        if post_uids.contains(&g.gid) {
            bad.push(format!("private-group: group {} on user uid {}", g.name, g.gid));
        }
        if local.win_over(&g.name, &[g.gid]) {
            bad.push(format!("local: group {} {}", g.name, g.gid));
        }
    }
    let mut seen_homes = HashMap::new();
    for u in &post.users {
        if u.gid != u.uid && post_uids.contains(&u.gid) {
            bad.push(format!("private-group: user {} gid {} is a user's uid", u.name, u.gid));
        }
        if local.win_over(&u.name, &[u.uid, u.gid]) {
            bad.push(format!("local: user {} {} {}", u.name, u.uid, u.gid));
        }
        if options.local_homes && norm(&u.home) == norm(LOCAL_USER.2) {
            bad.push(format!("local-home: user {} home {}", u.name, u.home));
        }
        if let Some(other) = seen_homes.insert(norm(&u.home), u.name.clone()) {
            bad.push(format!("home-shared: {} and {} share {}", other, u.name, u.home));
        }
        if let Some(old) = pre_by_uid.get(&u.uid) {
            if old.home != u.home {
                bad.push(format!("home-changed: {} {} -> {}", u.name, old.home, u.home));
            }
        }
    }

    // History: ids.
    for u in &post.users {
        let new = !pre_by_uid.contains_key(&u.uid);
        if new && history.dead_ids.contains(&u.uid) {
            bad.push(format!(
                "dead-id: new user {} gets uid {} of a deleted holder",
                u.name, u.uid
            ));
        }
        match history.ids.get(&u.uid) {
            Some(Owner::User(x)) if *x != u.uid => bad.push(format!(
                "id-transfer: user {} uid {} was the primary gid of account uid {x}",
                u.name, u.uid
            )),
            Some(Owner::Group(_, name)) => bad
                .push(format!("id-transfer: user {} uid {} was group {name}'s gid", u.name, u.uid)),
            _ => {}
        }
        if u.gid != u.uid {
            let kept_gid = pre_by_uid.get(&u.uid).is_some_and(|old| old.gid == u.gid);
            match history.ids.get(&u.gid) {
                Some(Owner::User(x)) if *x != u.uid => bad.push(format!(
                    "id-transfer: user {} (uid {}) primary gid {} is account uid {x}'s",
                    u.name, u.uid, u.gid
                )),
                _ => {}
            }
            let group_there = post_group_gids.contains(&u.gid) && pre_group_gids.contains(&u.gid);
            if history.dead_ids.contains(&u.gid) && !kept_gid && !group_there {
                bad.push(format!("dead-id: user {} primary gid {} is dead", u.name, u.gid));
            }
        }
    }
    for g in &post.groups {
        let new = !pre_group_gids.contains(&g.gid);
        if new && history.dead_ids.contains(&g.gid) {
            bad.push(format!("dead-id: new group {} gets dead gid {}", g.name, g.gid));
        }
        match history.ids.get(&g.gid) {
            Some(Owner::User(x)) => bad.push(format!(
                "id-transfer: group {} gid {} is account uid {x}'s (uid or primary gid)",
                g.name, g.gid
            )),
            Some(Owner::Group(_, name)) if *name != fold_name(&g.name) && options.group_renames => {
                bad.push(format!("group-rename: gid {} {name} -> {}", g.gid, g.name))
            }
            _ => {}
        }
    }

    // History: homes.
    for u in &post.users {
        let home = norm(&u.home);
        if let Some((uid, name)) = history.homes.get(&home) {
            if *uid != u.uid {
                let moved = *name == fold_name(&u.name) && !post_uids.contains(uid);
                if !(moved && options.allow_moved) {
                    bad.push(format!(
                        "home-transfer: {} (uid {}) gets {}, home of account uid {uid} ({name}){}",
                        u.name,
                        u.uid,
                        u.home,
                        if moved { " [moved exception]" } else { "" }
                    ));
                }
            }
        }
        let own = pre_by_uid.get(&u.uid).is_some_and(|old| norm(&old.home) == home);
        if history.dead_homes.contains(&home) && !own {
            bad.push(format!("dead-home: {} (uid {}) gets {}", u.name, u.uid, u.home));
        }
    }

    // Update the history.
    for old in &pre.users {
        if !post_uids.contains(&old.uid) {
            history.dead_ids.insert(old.uid);
            if old.gid != old.uid && !post_group_gids.contains(&old.gid) {
                history.dead_ids.insert(old.gid);
            }
            history.dead_homes.insert(norm(&old.home));
        }
    }
    for g in &pre.groups {
        if !post_group_gids.contains(&g.gid) {
            history.dead_ids.insert(g.gid);
        }
    }
    for u in &post.users {
        history.ids.entry(u.uid).or_insert(Owner::User(u.uid));
        if u.gid != u.uid && !post_group_gids.contains(&u.gid) {
            history.ids.entry(u.gid).or_insert(Owner::User(u.uid));
        }
        history.homes.insert(norm(&u.home), (u.uid, fold_name(&u.name)));
        history.dead_homes.remove(&norm(&u.home));
    }
    for g in &post.groups {
        if !matches!(history.ids.get(&g.gid), Some(Owner::User(_))) {
            history.ids.insert(g.gid, Owner::Group(g.gid, fold_name(&g.name)));
        }
    }
    bad
}

/// Runs `pulls` on a fresh host; the first violation (pull index, messages) if any.
fn run(
    pulls: &[Snapshot],
    config: &Config,
    local: &LocalAccounts,
    options: &Options,
    wanted: Option<&str>,
) -> Option<(usize, Vec<String>)> {
    let mut db = Db::default();
    let mut history = History::default();
    for (at, (users, groups)) in pulls.iter().enumerate() {
        let pre = db.clone();
        let plan = install::plan(&db, users.clone(), groups.clone(), config, local);
        plan.apply(&mut db);
        let bad: Vec<String> = check(&pre, &db, &mut history, local, options)
            .into_iter()
            .filter(|b| wanted.is_none_or(|w| b.starts_with(w)))
            .collect();
        if !bad.is_empty() {
            return Some((at, bad));
        }
    }
    None
}

const NAMES: &[&str] = &["alice", "Alice", "bob", "carol", "dave", "team", "localx", "localg"];
const PLAIN_HOMES: &[&str] = &["/home/alice", "/home/bob", "/home/carol", "/home/dave"];
const ALIAS_HOMES: &[&str] = &["/home/alice/", "/home//bob", "/home/./carol", "/home/localx"];
const GROUP_NAMES: &[&str] = &["team", "dev", "alice", "wheel2", "localg"];

fn random_snapshot(rng: &mut Rng, aliases: bool) -> Snapshot {
    let id = |rng: &mut Rng| {
        let n = if rng.chance(10) { 10 } else { 8 };
        200_001 + rng.below(n) as u32
    };
    let users = (0..rng.below(5))
        .map(|_| {
            let uid = id(rng);
            let gid = if rng.chance(60) { uid } else { id(rng) };
            let name = *rng.pick(NAMES);
            let home = if aliases && rng.chance(20) {
                *rng.pick(ALIAS_HOMES)
            } else {
                *rng.pick(PLAIN_HOMES)
            };
            user(name, uid, gid, home)
        })
        .collect();
    let groups = (0..rng.below(3))
        .map(|_| {
            let members: Vec<&str> = NAMES.iter().copied().filter(|_| rng.chance(30)).collect();
            let name = *rng.pick(GROUP_NAMES);
            group(name, id(rng), &members)
        })
        .collect();
    (users, groups)
}

/// Greedy shrink: drop pulls, then entries, while the same kind of violation remains.
fn shrink(
    mut pulls: Vec<Snapshot>,
    config: &Config,
    local: &LocalAccounts,
    options: &Options,
    kind: &str,
) -> Vec<Snapshot> {
    let fails = |p: &[Snapshot]| run(p, config, local, options, Some(kind)).is_some();
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < pulls.len() {
            let mut fewer = pulls.clone();
            fewer.remove(i);
            if fails(&fewer) {
                pulls = fewer;
                progress = true;
            } else {
                i += 1;
            }
        }
        for p in 0..pulls.len() {
            let mut i = 0;
            while i < pulls[p].0.len() {
                let mut fewer = pulls.clone();
                fewer[p].0.remove(i);
                if fails(&fewer) {
                    pulls = fewer;
                    progress = true;
                } else {
                    i += 1;
                }
            }
            let mut i = 0;
            while i < pulls[p].1.len() {
                let mut fewer = pulls.clone();
                fewer[p].1.remove(i);
                if fails(&fewer) {
                    pulls = fewer;
                    progress = true;
                } else {
                    i += 1;
                }
            }
            for g in 0..pulls[p].1.len() {
                if !pulls[p].1[g].members.is_empty() {
                    let mut fewer = pulls.clone();
                    fewer[p].1[g].members.clear();
                    if fails(&fewer) {
                        pulls = fewer;
                        progress = true;
                    }
                }
            }
        }
        if !progress {
            return pulls;
        }
    }
}

fn describe(pulls: &[Snapshot]) -> String {
    let mut out = String::new();
    for (at, (users, groups)) in pulls.iter().enumerate() {
        let _ = write!(out, "  pull {}:", at + 1);
        for u in users {
            let _ = write!(out, " user({} uid {} gid {} {})", u.name, u.uid, u.gid, u.home);
        }
        for g in groups {
            let _ = write!(out, " group({} gid {} {:?})", g.name, g.gid, g.members);
        }
        out.push('\n');
    }
    out
}

/// The kind of a violation: its tag and the word after it.
fn kind_of(message: &str) -> String {
    message.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn explore(seeds: u64, aliases: bool, options: &Options) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path());
    let mut kinds: HashMap<String, (usize, Vec<Snapshot>, Vec<String>)> = HashMap::new();
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let pulls: Vec<Snapshot> =
            (0..2 + rng.below(3)).map(|_| random_snapshot(&mut rng, aliases)).collect();
        if let Some((_, bad)) = run(&pulls, &config, &local, options, None) {
            for message in bad {
                let kind = kind_of(&message);
                let size: usize = pulls.iter().map(|(u, g)| u.len() + g.len()).sum();
                if kinds.get(&kind).is_none_or(|(s, _, _)| size < *s) {
                    kinds.insert(kind, (size, pulls.clone(), vec![message]));
                }
            }
        }
    }
    let mut report = BTreeSet::new();
    for (kind, (_, pulls, _)) in kinds {
        let small = shrink(pulls, &config, &local, options, &kind);
        let (_, bad) = run(&small, &config, &local, options, Some(&kind)).unwrap();
        report.insert(format!("[{kind}]\n{}  => {}\n", describe(&small), bad.join("; ")));
    }
    report
}

/// How many random sequences a model test explores: `DIRCACHE_MODEL_SEEDS`, default 3,000.
fn model_seeds() -> u64 {
    std::env::var("DIRCACHE_MODEL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000)
}

/// Explores [`model_seeds`] attacker sequences with `options` and
/// fails with every kind of violation found.
fn attacker_model_holds(aliases: bool, options: &Options) {
    let report = explore(model_seeds(), aliases, options);
    for line in &report {
        eprintln!("{line}");
    }
    assert!(report.is_empty(), "{} kinds of violation", report.len());
}

#[test]
fn model_attacker_snapshots_ids_and_homes() {
    let options =
        Options { allow_moved: true, group_renames: false, alias_homes: false, local_homes: false };
    attacker_model_holds(false, &options);
}

#[test]
fn model_attacker_snapshots_home_aliases_and_local_homes() {
    let options =
        Options { allow_moved: true, group_renames: false, alias_homes: true, local_homes: true };
    attacker_model_holds(true, &options);
}

/// A legitimate publisher (a sync's rules): ids from one counter, never reused; homes
/// `/home/{name}` or, when taken or retired, `/home/{name}.{uid}`; renames keep uid and
/// home; a user never takes a group's name or the reverse.
#[derive(Clone, Default)]
struct LegitPublisher {
    next: u32,
    users: Vec<User>,
    groups: Vec<Group>,
    retired_homes: HashSet<String>,
}

impl LegitPublisher {
    fn taken(&self, name: &str) -> bool {
        let folded = fold_name(name);
        self.users.iter().any(|u| fold_name(&u.name) == folded)
            || self.groups.iter().any(|g| fold_name(&g.name) == folded)
    }

    fn step(&mut self, rng: &mut Rng) {
        const POOL: &[&str] = &["alice", "Alice", "bob", "carol", "dave", "erin", "team", "dev"];
        match rng.below(7) {
            0 | 1 => {
                let name = *rng.pick(POOL);
                if self.taken(name) {
                    return;
                }
                let uid = self.next;
                self.next += 1;
                let wanted = format!("/home/{name}");
                let home_taken = |h: &str| {
                    self.users.iter().any(|u| u.home == h) || self.retired_homes.contains(h)
                };
                let home = if home_taken(&wanted) { format!("{wanted}.{uid}") } else { wanted };
                self.users.push(user(name, uid, uid, &home));
            }
            2 if !self.users.is_empty() => {
                let at = rng.below(self.users.len());
                let gone = self.users.remove(at);
                self.retired_homes.insert(gone.home);
                for g in &mut self.groups {
                    g.members.retain(|m| fold_name(m) != fold_name(&gone.name));
                }
            }
            3 if !self.users.is_empty() => {
                let at = rng.below(self.users.len());
                let name = *rng.pick(POOL);
                let case_only = fold_name(name) == fold_name(&self.users[at].name);
                if !case_only && self.taken(name) {
                    return;
                }
                let old = std::mem::replace(&mut self.users[at].name, name.to_string());
                for g in &mut self.groups {
                    for m in &mut g.members {
                        if fold_name(m) == fold_name(&old) {
                            *m = name.to_string();
                        }
                    }
                }
            }
            4 => {
                let name = *rng.pick(POOL);
                if self.taken(name) {
                    return;
                }
                let gid = self.next;
                self.next += 1;
                let members: Vec<&str> =
                    self.users.iter().filter(|_| rng.chance(50)).map(|u| u.name.as_str()).collect();
                let g = group(name, gid, &members);
                self.groups.push(g);
            }
            5 if !self.groups.is_empty() => {
                let at = rng.below(self.groups.len());
                self.groups.remove(at);
            }
            _ => {}
        }
    }
}

#[test]
fn model_legitimate_publishers_never_make_a_host_delete_or_skip() {
    let seeds = model_seeds();
    let dir = tempfile::tempdir().unwrap();
    let (config, local) = setup(dir.path());
    let options =
        Options { allow_moved: false, group_renames: true, alias_homes: true, local_homes: true };
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut publisher = LegitPublisher { next: 200_011, ..LegitPublisher::default() };
        let mut db = Db::default();
        let mut history = History::default();
        let mut log = Vec::new();
        for _ in 0..8 {
            for _ in 0..1 + rng.below(3) {
                publisher.step(&mut rng);
            }
            // The host misses some generations.
            if rng.chance(30) || publisher.users.is_empty() {
                continue;
            }
            let snapshot = (publisher.users.clone(), publisher.groups.clone());
            log.push(snapshot.clone());
            let pre = db.clone();
            let plan = install::plan(&db, snapshot.0.clone(), snapshot.1.clone(), &config, &local);
            let skipped: Vec<String> =
                plan.skipped.iter().map(|s| format!("{}: {}", s.name, s.reason)).collect();
            let group_warnings: Vec<String> =
                plan.warnings.iter().filter(|w| w.contains("skipped")).cloned().collect();
            plan.apply(&mut db);
            let mut bad = check(&pre, &db, &mut history, &local, &options);
            bad.extend(skipped);
            bad.extend(group_warnings);
            if db.users.len() != publisher.users.len() || db.groups.len() != publisher.groups.len()
            {
                bad.push("host differs from the publisher".to_string());
            }
            if !bad.is_empty() {
                failures.push(format!("seed {seed}\n{}  => {}", describe(&log), bad.join("; ")));
                break;
            }
        }
    }
    failures.sort_by_key(|f| f.len());
    for f in failures.iter().take(3) {
        eprintln!("{f}\n");
    }
    assert!(failures.is_empty(), "{} seeds fail", failures.len());
}
