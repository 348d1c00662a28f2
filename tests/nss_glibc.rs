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
use testbed::{compile_c, namespace_or_skip, text};

fn nsswitch_with_dircache(dir: &Path) -> std::path::PathBuf {
    nsswitch_with(
        dir,
        &["passwd: files dircache", "group: files dircache", "shadow: files dircache"],
    )
}

/// A copy of /etc/nsswitch.conf in `dir` with the lines of `databases` (`"protocols: …"`)
/// replacing the machine's lines of those databases.
fn nsswitch_with(dir: &Path, databases: &[&str]) -> std::path::PathBuf {
    let original = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let replaced: Vec<&str> =
        databases.iter().map(|line| line.split(':').next().unwrap().trim()).collect();
    let mut edited: Vec<String> = original
        .lines()
        .filter(|l| !replaced.iter().any(|db| l.trim_start().starts_with(&format!("{db}:"))))
        .map(str::to_string)
        .collect();
    edited.extend(databases.iter().map(|line| line.to_string()));
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
    let mut mounts = vec![(nsswitch.as_path(), "/etc/nsswitch.conf")];
    mounts.extend(pam_d.map(|dir| (dir, "/etc/pam.d")));
    in_namespace(fx, &mounts, program, args, &[])
}

/// `program ARGS` in a private mount namespace with each `(source, target)` of `mounts`
/// bind-mounted, the module on LD_LIBRARY_PATH, `env` added.
fn in_namespace(
    fx: &Fixture,
    mounts: &[(&Path, &str)],
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let binds: String = mounts
        .iter()
        .map(|(source, target)| {
            format!("mount --bind '{}' '{target}' || exit 99; ", source.display())
        })
        .collect();
    Command::new("unshare")
        .args(["-m", "--", "sh", "-c"])
        .arg(format!(r#"{binds}exec "$@""#))
        .arg("sh")
        .arg(program)
        .args(args)
        .env("LD_LIBRARY_PATH", module_dir(fx.dir.path()))
        .env("DIRCACHE_CACHE_DIR", fx.cache.root())
        .env_remove("DIRCACHE_LOCAL_PASSWD")
        .env_remove("DIRCACHE_LOCAL_GROUP")
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C")
        .envs(env.iter().copied())
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

/// The functions of gshadow, hosts and networks: the only ones the module leaves undefined
/// (`nss_module/src/unserved.rs` says why).
const LEFT_UNDEFINED: [&str; 19] = [
    "endsgent",
    "getsgent_r",
    "getsgnam_r",
    "setsgent",
    "endhostent",
    "getcanonname_r",
    "gethostbyaddr2_r",
    "gethostbyaddr_r",
    "gethostbyname2_r",
    "gethostbyname3_r",
    "gethostbyname4_r",
    "gethostbyname_r",
    "gethostent_r",
    "sethostent",
    "endnetent",
    "getnetbyaddr_r",
    "getnetbyname_r",
    "getnetent_r",
    "setnetent",
];

/// glibc looks up every function of every database when it loads a module, whatever was
/// asked; each name the module lacks costs a failed `dlsym` on the first lookup of every
/// process. Read off glibc's own trace (`LD_DEBUG=symbols`): the names it looks up, and the
/// ones it fails to find.
#[test]
fn real_glibc_finds_every_function_it_looks_up_but_those_of_gshadow_hosts_and_networks() {
    let test =
        "real_glibc_finds_every_function_it_looks_up_but_those_of_gshadow_hosts_and_networks";
    if !namespace_or_skip(test) {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let nsswitch = nsswitch_with_dircache(fx.dir.path());
    let args = ["passwd", "alice@example.com"];
    let mounts = [(nsswitch.as_path(), "/etc/nsswitch.conf")];
    let out = in_namespace(&fx, &mounts, "getent", &args, &[("LD_DEBUG", "symbols")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let trace = String::from_utf8_lossy(&out.stderr);
    let names_after = |marker: &str| -> std::collections::BTreeSet<String> {
        let prefix = format!("{marker}_nss_dircache_");
        trace
            .split(prefix.as_str())
            .skip(1)
            .map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next())
            .map(|name| name.unwrap_or_default().to_string())
            .collect()
    };
    let looked_up = names_after("symbol=");
    let missing = names_after("undefined symbol: ");
    assert!(looked_up.len() >= 60, "glibc looked up only {looked_up:?}:\n{trace}");
    assert!(looked_up.contains("getpwnam_r") && looked_up.contains("getprotobyname_r"));
    let expected: std::collections::BTreeSet<String> =
        LEFT_UNDEFINED.iter().map(|name| name.to_string()).collect();
    assert_eq!(missing, expected, "looked up: {looked_up:?}");
}

/// The files of the databases the module does not serve, as a fixture: the test does not
/// depend on what the machine has installed (netbase, an MTA's aliases).
const UNSERVED_FILES: [(&str, &str); 6] = [
    ("protocols", "ip 0 IP\ntcp 6 TCP\nudp 17 UDP\n"),
    ("services", "ssh 22/tcp\nsmtp 25/tcp mail\n"),
    ("rpc", "portmapper 100000 portmap sunrpc rpcbind\n"),
    ("ethers", "02:00:00:00:00:01 printer\n"),
    ("aliases", "postmaster: root\n"),
    ("netgroup", "trusted (printer,-,)\n"),
];

/// For the databases the module does not serve (`nss_module/src/unserved.rs`), its
/// functions answer UNAVAIL: a line that names `dircache` first gives what a line naming a
/// module that does not exist gives, with glibc's default actions, with `[UNAVAIL=return]`
/// (UNAVAIL is what glibc makes of a missing function) and with `[!UNAVAIL=return]` (any
/// other status would stop the lookup); after `files`, `files`' answers stand.
#[test]
fn real_glibc_databases_the_module_does_not_serve_answer_unavailable() {
    let test = "real_glibc_databases_the_module_does_not_serve_answer_unavailable";
    if !namespace_or_skip(test) {
        return;
    }
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let etc = fx.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    for file in ["passwd", "group", "ld.so.cache"] {
        if Path::new("/etc").join(file).exists() {
            fs::copy(Path::new("/etc").join(file), etc.join(file)).unwrap();
        }
    }
    for (file, text) in UNSERVED_FILES {
        fs::write(etc.join(file), text).unwrap();
    }
    let queries = [
        "protocols tcp",
        "protocols 17",
        "protocols nosuch",
        "protocols",
        "services ssh",
        "services 25/tcp",
        "services nosuch",
        "services",
        "rpc portmapper",
        "rpc 100000",
        "rpc nosuch",
        "rpc",
        "ethers printer",
        "ethers 02:00:00:00:00:01",
        "ethers nosuch",
        "aliases postmaster",
        "aliases nosuch",
        "aliases",
        "netgroup trusted",
        "netgroup nosuch",
    ];
    // A running nscd would answer services and netgroup from the machine's own files.
    let no_nscd = fx.dir.path().join("no-nscd");
    fs::create_dir_all(&no_nscd).unwrap();
    let mut mounts = vec![(etc.as_path(), "/etc")];
    if Path::new("/run/nscd").is_dir() {
        mounts.push((no_nscd.as_path(), "/run/nscd"));
    }
    let script: String = queries
        .iter()
        .map(|query| format!("echo '== {query}'; getent {query}; echo \"exit $?\"; "))
        .collect();
    let answers = |sources: &str| -> String {
        let lines: Vec<String> =
            UNSERVED_FILES.iter().map(|(db, _)| format!("{db}: {sources}")).collect();
        let mut conf = lines.join("\n");
        conf.push_str("\npasswd: files\ngroup: files\n");
        fs::write(etc.join("nsswitch.conf"), conf).unwrap();
        let out = in_namespace(&fx, &mounts, "sh", &["-c", &script], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        stdout(&out)
    };
    let files_alone = answers("files");
    // Not vacuous: `files` alone finds every key of the fixtures and none of the others.
    for block in files_alone.split("== ").skip(1) {
        let answered = block.trim_end().ends_with("exit 0") && block.lines().count() > 2;
        assert_eq!(answered, !block.contains("nosuch"), "{block}");
    }
    for action in ["", "[UNAVAIL=return]", "[!UNAVAIL=return]"] {
        let with_module = answers(&format!("dircache {action} files"));
        let without = answers(&format!("no-such-module {action} files"));
        assert_eq!(with_module, without, "action {action:?}");
        if action == "[UNAVAIL=return]" {
            // Nothing is answered: each query's block is its title and its exit status.
            let answered = with_module.lines().filter(|l| !l.starts_with("== ")).count();
            assert_eq!(answered, queries.len(), "{with_module}");
        } else {
            assert_eq!(with_module, files_alone, "action {action:?}");
        }
    }
    assert_eq!(answers("files dircache"), files_alone);

    // What getent cannot show (it exits 2 for NOTFOUND and UNAVAIL alike), as documented:
    // after `files`, a key it lacks ends on dircache's UNAVAIL, `getprotobyname_r` returning
    // the caller's errno (EBADF, set before the call), where without the module it ends on
    // `files`' NOTFOUND and 0.
    let probe = compile_c(fx.dir.path(), "protocol", PROTOCOL_PROBE, &[]);
    let probe = probe.to_str().unwrap();
    let status = |sources: &str, name: &str| -> String {
        fs::write(etc.join("nsswitch.conf"), format!("protocols: {sources}\n")).unwrap();
        let out = in_namespace(&fx, &mounts, probe, &[name], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        stdout(&out).trim().to_string()
    };
    for sources in ["files", "files no-such-module", "dircache files", "files dircache"] {
        assert_eq!(status(sources, "tcp"), "rc=0 found=1", "{sources}");
    }
    for sources in ["files", "files no-such-module", "dircache files"] {
        assert_eq!(status(sources, "nosuch"), "rc=0 found=0", "{sources}");
    }
    assert_eq!(status("files dircache", "nosuch"), format!("rc={} found=0", libc::EBADF));
}

/// `getprotobyname_r(argv[1])` with errno set to EBADF before the call: its return value
/// and whether it found an entry.
const PROTOCOL_PROBE: &str = r#"
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
int main(int argc, char **argv) {
    struct protoent entry, *result = NULL;
    char buffer[1024];
    if (argc != 2) return 2;
    errno = EBADF;
    int rc = getprotobyname_r(argv[1], &entry, buffer, sizeof buffer, &result);
    printf("rc=%d found=%d\n", rc, result != NULL);
    return 0;
}
"#;
