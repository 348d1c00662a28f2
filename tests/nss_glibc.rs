//! The real glibc path, no wrapper: in a private mount namespace (`unshare -m`, root), an
//! edited copy of /etc/nsswitch.conf (`passwd: files dircache`, `group: files dircache`) is
//! bind-mounted over the real one and LD_LIBRARY_PATH holds `libnss_dircache.so.2`. The
//! local accounts are the machine's real /etc/passwd and /etc/group. CI runs as root: there
//! a missing `unshare` or root fails the test; elsewhere it is skipped with the reason.

mod nss_fixture;
mod testbed;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use nss_fixture::{group, lines, module_dir, standard_db, stdout, user, Fixture};
use testbed::{namespace_or_skip, text};

fn nsswitch_with_dircache(dir: &Path) -> std::path::PathBuf {
    let original = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut edited: Vec<String> = original
        .lines()
        .filter(|l| !["passwd:", "group:", "shadow:"].iter().any(|db| l.starts_with(db)))
        .map(str::to_string)
        .collect();
    edited.push("passwd: files dircache".into());
    edited.push("group: files dircache".into());
    edited.push("shadow: files dircache".into());
    let path = dir.join("nsswitch.conf");
    fs::write(&path, edited.join("\n") + "\n").unwrap();
    path
}

/// `program ARGS` inside `unshare -m` with the edited nsswitch.conf mounted over /etc's.
fn real_glibc(fx: &Fixture, program: &str, args: &[&str]) -> Output {
    real_glibc_with_pam(fx, None, program, args)
}

/// As [`real_glibc`], with `pam_d` (when given) mounted over /etc/pam.d.
fn real_glibc_with_pam(fx: &Fixture, pam_d: Option<&Path>, program: &str, args: &[&str]) -> Output {
    let nsswitch = nsswitch_with_dircache(fx.dir.path());
    let pam_mount = pam_d.map_or(String::new(), |dir| {
        format!("mount --bind '{}' /etc/pam.d || exit 99; ", dir.display())
    });
    Command::new("unshare")
        .args(["-m", "--", "sh", "-c"])
        .arg(format!(
            r#"mount --bind "$1" /etc/nsswitch.conf || exit 99; {pam_mount}shift; exec "$@""#
        ))
        .arg("sh")
        .arg(&nsswitch)
        .arg(program)
        .args(args)
        .env("LD_LIBRARY_PATH", module_dir(fx.dir.path()))
        .env("DIRCACHE_CACHE_DIR", fx.cache.root())
        .env_remove("DIRCACHE_LOCAL_PASSWD")
        .env_remove("DIRCACHE_LOCAL_GROUP")
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

/// Directory names and ids that must not collide with this machine's local accounts.
fn db_with_a_directory_root() -> dircache::cache::Db {
    let mut db = standard_db();
    db.users.push(user("root", 200_010, &["dc-staff"]));
    db.users.push(user("uid-zero@example.com", 0, &[]));
    db.groups.push(group("root", 300_010, &["alice@example.com"]));
    db
}

#[test]
fn real_glibc_getent_answers_from_the_cache_after_the_local_files() {
    if !namespace_or_skip("real_glibc_getent_answers_from_the_cache_after_the_local_files") {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&db_with_a_directory_root());
    let alice = real_glibc(&fx, "getent", &["passwd", "alice@example.com"]);
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
    assert_eq!(
        lines(&alice),
        ["alice@example.com:x:200001:200001:alice@example.com Example:/home/alice@example.com:/bin/bash"]
    );
    let bob = real_glibc(&fx, "getent", &["passwd", "200002"]);
    assert!(stdout(&bob).starts_with("bob@example.com:x:200002:200002:"), "{}", text(&bob));
    let staff = real_glibc(&fx, "getent", &["group", "dc-staff"]);
    assert_eq!(
        lines(&staff),
        ["dc-staff:x:300001:alice@example.com,bob@example.com"],
        "{}",
        text(&staff)
    );
    let private = real_glibc(&fx, "getent", &["group", "200001"]);
    assert_eq!(lines(&private), ["alice@example.com:x:200001:"], "{}", text(&private));
    let unknown = real_glibc(&fx, "getent", &["passwd", "nobody@example.com"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));

    // Root is the machine's, whatever the directory says.
    let root = real_glibc(&fx, "getent", &["passwd", "root"]);
    assert!(stdout(&root).starts_with("root:x:0:0:"), "{}", text(&root));
    for hidden in ["200010", "uid-zero@example.com"] {
        let out = real_glibc(&fx, "getent", &["passwd", hidden]);
        assert_eq!(out.status.code(), Some(2), "{hidden}: {}", text(&out));
    }
    assert_eq!(real_glibc(&fx, "getent", &["group", "300010"]).status.code(), Some(2));
    let all = real_glibc(&fx, "getent", &["passwd"]);
    assert_eq!(all.status.code(), Some(0), "{}", text(&all));
    let all = lines(&all);
    assert_eq!(all.iter().filter(|l| l.starts_with("root:")).count(), 1, "{all:?}");
    let directory: Vec<&String> = all.iter().filter(|l| l.contains("@example.com:x:")).collect();
    assert_eq!(directory.len(), 3, "{all:?}");
}

#[test]
fn real_glibc_id_shows_the_directory_groups() {
    if !namespace_or_skip("real_glibc_id_shows_the_directory_groups") {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&db_with_a_directory_root());
    // glibc asks initgroups_dyn of each service: the groups come from bob's own record.
    let id = real_glibc(&fx, "id", &["bob@example.com"]);
    assert_eq!(id.status.code(), Some(0), "{}", text(&id));
    assert_eq!(
        stdout(&id).trim(),
        "uid=200002(bob@example.com) gid=200002(bob@example.com) \
         groups=200002(bob@example.com),300001(dc-staff),300002(dc-developers)"
    );
    let initgroups = real_glibc(&fx, "getent", &["initgroups", "alice@example.com"]);
    let words: Vec<String> = stdout(&initgroups).split_whitespace().map(str::to_string).collect();
    assert_eq!(words, ["alice@example.com", "300001"], "{}", text(&initgroups));
    // A cache replaced between two calls is what the next process sees.
    let mut db = db_with_a_directory_root();
    db.users[0].groups.push("dc-developers".into());
    db.groups[1].members.push("alice@example.com".into());
    fx.commit(&db);
    let id = real_glibc(&fx, "id", &["-G", "alice@example.com"]);
    assert_eq!(stdout(&id).trim(), "200001 300001 300002", "{}", text(&id));
}

/// Shadow entries through real glibc (`shadow: files dircache`): a password no hash
/// matches, every aging field empty, `sp_expire` the validity date; and stock `pam_unix`'s
/// account check, reading them, agrees with dircache: a valid user passes, an expired one
/// is refused.
#[test]
fn real_glibc_shadow_entries_satisfy_pam_unix_account_checks() {
    if !namespace_or_skip("real_glibc_shadow_entries_satisfy_pam_unix_account_checks") {
        return;
    }
    let fx = Fixture::new();
    let mut db = db_with_a_directory_root();
    // alice: no limit; bob: expired on 1970-01-02; dora: valid until 9999.
    db.users[1].limits.expires_day = Some(1);
    db.users[2].limits.expires_day = Some(2_932_896);
    db.users[2].enabled = true;
    db.users[0].limits.blocked = true;
    fx.commit(&db);
    let alice = real_glibc(&fx, "getent", &["shadow", "alice@example.com"]);
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
    assert_eq!(lines(&alice), ["alice@example.com:!*:::::::"]);
    let bob = real_glibc(&fx, "getent", &["shadow", "BOB@example.com"]);
    assert_eq!(lines(&bob), ["bob@example.com:!*::::::1:"], "{}", text(&bob));
    // Local accounts win; reserved ids and unknown names are not served.
    let root = real_glibc(&fx, "getent", &["shadow", "root"]);
    assert!(stdout(&root).starts_with("root:"), "{}", text(&root));
    assert_eq!(stdout(&root).lines().count(), 1, "{}", text(&root));
    for hidden in ["uid-zero@example.com", "nobody@example.com"] {
        let out = real_glibc(&fx, "getent", &["shadow", hidden]);
        assert_eq!(out.status.code(), Some(2), "{hidden}: {}", text(&out));
    }
    let all = real_glibc(&fx, "getent", &["shadow"]);
    let all = lines(&all);
    let ours: Vec<&String> = all.iter().filter(|l| l.contains("@example.com:!*:")).collect();
    assert_eq!(ours.len(), 3, "{all:?}");

    if Path::new("/usr/bin/pamtester").exists() {
        let pam_d = fx.dir.path().join("pam.d");
        fs::create_dir_all(&pam_d).unwrap();
        fs::write(pam_d.join("unix-account"), "account required pam_unix.so\n").unwrap();
        let check = |name: &str| {
            real_glibc_with_pam(
                &fx,
                Some(&pam_d),
                "pamtester",
                &["-v", "unix-account", name, "acct_mgmt"],
            )
        };
        // pam_unix reads only the shadow entry: alice's lock is pam_dircache's to refuse.
        let alice = check("alice@example.com");
        assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
        let dora = check("dora@example.com");
        assert_eq!(dora.status.code(), Some(0), "{}", text(&dora));
        let bob = check("bob@example.com");
        assert_ne!(bob.status.code(), Some(0), "{}", text(&bob));
        assert!(text(&bob).contains("expired"), "{}", text(&bob));
    } else {
        testbed::may_skip(
            "real_glibc_shadow_entries_satisfy_pam_unix_account_checks (pam_unix part)",
            Some("pamtester is not installed".to_string()),
        );
    }
}
