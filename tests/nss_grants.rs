//! `[unix.local_groups]` end to end (issue 14 §1): `dircache-sync sync` against the mock
//! IceWarp server grants a local group to the members of a directory group, and the real
//! glibc (no wrapper) shows it: `id`, `getent initgroups`, and `getent group` through
//! `group: files [SUCCESS=merge] dircache`. A member who leaves the directory group loses
//! the local group at the next sync.
//!
//! In a private mount namespace (`unshare -m`, root), a copy of the machine's /etc/group
//! with one more group, `_dc-granted` (a name with system meaning, as `sudo` has, and a free
//! gid below 1000, reserved for directory groups: only the grant can reach either), and an
//! edited /etc/nsswitch.conf are bind-mounted over the real ones. /etc/group itself is never
//! written: the copy lists no member of `_dc-granted`. CI runs as root; elsewhere the test is
//! skipped with the reason.

mod nss_fixture;
mod testbed;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use mock_directory::{Account, Domain, IcewarpData, IcewarpServer};
use nss_fixture::{lines, module_dir, stdout};
use serde_json::{json, Value};
use testbed::{namespace_or_skip, text, Env, SyncCli};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "grants-admin-password";
const CLI: SyncCli = SyncCli { secret: ADMIN_PASSWORD };
/// A name with system meaning (the `_` prefix of service accounts), as `sudo` has: the
/// module answers for it only as a grant.
const LOCAL_GROUP: &str = "_dc-granted";

fn directory() -> IcewarpData {
    IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .account(Account::user("alice@example.com", "Alice Liddell", "alice-password"))
        .account(Account::user("bob@example.com", "Bob Builder", "bob-password"))
        .account(Account::user("carol@example.com", "Carol Danvers", "carol-password"))
        .account(Account::group(
            "it-admins@example.com",
            "IT admins",
            &["alice@example.com", "bob@example.com"],
        ))
        // A directory group that calls itself like the local group grants nothing.
        .account(Account::group("dc-granted@example.com", "dc-granted", &["carol@example.com"]))
}

/// A gid below 1000 that the machine's /etc/group does not use.
fn free_system_gid(group_file: &str) -> u32 {
    let used: Vec<u32> =
        group_file.lines().filter_map(|l| l.split(':').nth(2)?.parse().ok()).collect();
    (900..999).rev().find(|gid| !used.contains(gid)).expect("a free gid in 900..999")
}

/// `program ARGS` inside `unshare -m` with the copied /etc/group and an nsswitch.conf whose
/// group line merges.
fn real_glibc(env: &Env, program: &str, args: &[&str]) -> Output {
    let dir = env.dir.path();
    let original = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut edited: Vec<String> = original
        .lines()
        .filter(|l| !l.starts_with("passwd:") && !l.starts_with("group:"))
        .map(str::to_string)
        .collect();
    edited.push("passwd: files dircache".into());
    edited.push("group: files [SUCCESS=merge] dircache".into());
    let nsswitch = dir.join("nsswitch.conf");
    fs::write(&nsswitch, edited.join("\n") + "\n").unwrap();
    Command::new("unshare")
        .args(["-m", "--", "sh", "-c"])
        .arg(
            r#"mount --bind "$1" /etc/nsswitch.conf && mount --bind "$2" /etc/group || exit 99
               shift 2; exec "$@""#,
        )
        .arg("sh")
        .arg(&nsswitch)
        .arg(dir.join("group"))
        .arg(program)
        .args(args)
        .env("LD_LIBRARY_PATH", module_dir(dir))
        .env("DIRCACHE_CACHE_DIR", env.cache_dir())
        .env_remove("DIRCACHE_LOCAL_PASSWD")
        .env_remove("DIRCACHE_LOCAL_GROUP")
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

fn gids(env: &Env, user: &str) -> Vec<u32> {
    let out = real_glibc(env, "id", &["-G", user]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    stdout(&out).split_whitespace().map(|g| g.parse().unwrap()).collect()
}

fn changes(report: &Value, key: &str) -> Vec<String> {
    let list = report[key].as_array().unwrap_or_else(|| panic!("no {key} in {report}"));
    list.iter()
        .map(|c| format!("{} {}", c["local_group"].as_str().unwrap(), c["user"].as_str().unwrap()))
        .collect()
}

#[test]
fn a_mapped_directory_group_grants_a_local_group_through_real_glibc_and_a_resync_revokes_it() {
    if !namespace_or_skip(
        "a_mapped_directory_group_grants_a_local_group_through_real_glibc_and_a_resync_revokes_it",
    ) {
        return;
    }
    let iw = IcewarpServer::start(directory(), None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[unix.local_groups]\n{LOCAL_GROUP} = [\"it-admins@example.com\"]\n\n[directory]\n\
         type = \"icewarp\"\nserver = {:?}\nusername = {ADMIN:?}\npassword = {ADMIN_PASSWORD:?}\n\
         timeout_secs = 5\n",
        iw.url()
    ));
    // The machine's /etc/group and the local group; the sync and NSS both read this copy.
    let machine = fs::read_to_string("/etc/group").unwrap();
    let gid = free_system_gid(&machine);
    let copy = format!("{}\n{LOCAL_GROUP}:x:{gid}:\n", machine.trim_end());
    fs::write(env.dir.path().join("group"), &copy).unwrap();
    // The real /etc/passwd too, so the sync keeps clear of the machine's names and ids.
    fs::copy("/etc/passwd", env.dir.path().join("passwd")).unwrap();

    // A dry run says what it would grant and writes nothing.
    let dry = CLI.sync_ok(&env, &["--dry-run"]);
    assert_eq!(
        changes(&dry, "granted"),
        [format!("{LOCAL_GROUP} alice@example.com"), format!("{LOCAL_GROUP} bob@example.com")]
    );
    assert!(!env.cache_dir().join("current").exists());

    let first = CLI.sync_ok(&env, &[]);
    assert_eq!(changes(&first, "granted"), changes(&dry, "granted"));
    assert_eq!(first["revoked"], json!([]));

    for user in ["alice@example.com", "bob@example.com"] {
        assert!(gids(&env, user).contains(&gid), "{user} lacks {gid}");
    }
    assert!(!gids(&env, "carol@example.com").contains(&gid), "carol got {gid}");
    let id = real_glibc(&env, "id", &["alice@example.com"]);
    assert!(stdout(&id).contains(&format!("{gid}({LOCAL_GROUP})")), "{}", text(&id));
    let initgroups = real_glibc(&env, "getent", &["initgroups", "bob@example.com"]);
    assert!(stdout(&initgroups).split_whitespace().any(|g| g == gid.to_string()));
    // The merge: the local entry (no members in the file) plus the granted members.
    let entry = format!("{LOCAL_GROUP}:x:{gid}:alice@example.com,bob@example.com");
    for key in [LOCAL_GROUP.to_string(), gid.to_string()] {
        let group = real_glibc(&env, "getent", &["group", &key]);
        assert_eq!(lines(&group), std::slice::from_ref(&entry), "{}", text(&group));
    }
    assert_eq!(CLI.show(&env, "alice@example.com")["local_groups"], json!([LOCAL_GROUP]));
    assert_eq!(CLI.show(&env, "carol@example.com")["local_groups"], json!([]));
    // /etc/group is never written.
    assert_eq!(fs::read_to_string(env.dir.path().join("group")).unwrap(), copy);

    // bob leaves it-admins: the next sync revokes the local group.
    iw.mock.update(|d| {
        d.account_mut("it-admins@example.com").unwrap().members.retain(|m| m != "bob@example.com")
    });
    let dry = CLI.sync_ok(&env, &["--dry-run"]);
    assert_eq!(changes(&dry, "revoked"), [format!("{LOCAL_GROUP} bob@example.com")]);
    assert!(gids(&env, "bob@example.com").contains(&gid), "a dry run changed nothing");
    let second = CLI.sync_ok(&env, &[]);
    assert_eq!(changes(&second, "revoked"), [format!("{LOCAL_GROUP} bob@example.com")]);
    assert_eq!(second["granted"], json!([]));
    assert!(!gids(&env, "bob@example.com").contains(&gid), "bob kept {gid}");
    assert_eq!(CLI.show(&env, "bob@example.com")["local_groups"], json!([]));
    assert!(gids(&env, "alice@example.com").contains(&gid));
    let group = real_glibc(&env, "getent", &["group", LOCAL_GROUP]);
    assert_eq!(lines(&group), [format!("{LOCAL_GROUP}:x:{gid}:alice@example.com")]);

    // The mapping removed from the configuration: everything is revoked.
    let text_now = fs::read_to_string(&env.config).unwrap();
    let without = text_now.replace(&format!("{LOCAL_GROUP} = [\"it-admins@example.com\"]\n"), "");
    fs::write(&env.config, without).unwrap();
    let third = CLI.sync_ok(&env, &[]);
    assert_eq!(changes(&third, "revoked"), [format!("{LOCAL_GROUP} alice@example.com")]);
    assert!(!gids(&env, "alice@example.com").contains(&gid));
}

#[test]
fn a_mapping_to_a_group_the_machine_lacks_fails_the_sync_naming_the_key_and_line() {
    let iw = IcewarpServer::start(directory(), None).unwrap();
    let env = Env::with_extra_config(&format!(
        "\n[unix.local_groups]\nno-such-group = [\"it-admins@example.com\"]\n\n[directory]\n\
         type = \"icewarp\"\nserver = {:?}\nusername = {ADMIN:?}\npassword = {ADMIN_PASSWORD:?}\n\
         timeout_secs = 5\n",
        iw.url()
    ));
    let line = testbed::one_failure_line(&CLI.run(&env, &["sync"]));
    let config_text = fs::read_to_string(&env.config).unwrap();
    let key_line = config_text.lines().position(|l| l.starts_with("no-such-group")).unwrap() + 1;
    assert!(line.contains(&format!("line {key_line}")), "{line}");
    assert!(line.contains("unix.local_groups.no-such-group"), "{line}");
    assert!(!Path::new(&env.cache_dir()).join("current").exists());
}
