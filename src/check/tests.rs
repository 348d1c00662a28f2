use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::cache::state_dir_problem;
use super::directory::commented_example;
use super::ids::SubordinateDefaults;
use super::system::{pam_file_uses_dircache, unserved_databases_naming_dircache};
use super::*;
use crate::config::Config;

#[test]
fn a_deadline_shorter_than_icewarps_tarpit_warns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dircache.toml");
    let check = |directory: &str| {
        fs::write(&path, format!("[directory]\n{directory}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        check_config(&path).0
    };
    let icewarp = "type = \"icewarp\"\nserver = \"mail.example.com\"\n\
                   username = \"admin@example.com\"\npassword = \"secret\"";
    let result = check(&format!("{icewarp}\ntimeout_secs = 34"));
    assert_eq!(result.status, Status::Warn, "{result:?}");
    assert!(result.message.contains("IceWarp delays wrong passwords by up to 30 s"), "{result:?}");
    assert!(result.hint.unwrap().contains("directory.timeout_secs"));
    assert_eq!(check(&format!("{icewarp}\ntimeout_secs = 35")).status, Status::Ok);
    assert_eq!(check(icewarp).status, Status::Ok, "the default is 60");
    let appint = "type = \"application-integration\"\nurl = \"https://apps.example.com/\"";
    assert_eq!(check(&format!("{appint}\ntimeout_secs = 5")).status, Status::Ok);
}

#[test]
fn nsswitch_sources_skip_actions_and_comments() {
    let text = "# passwd: dircache\npasswd:   files [NOTFOUND=return] systemd # c dircache\n\
                group:\tfiles dircache\n";
    assert_eq!(nsswitch_sources(text, "passwd").unwrap(), ["files", "systemd"]);
    assert_eq!(nsswitch_sources(text, "group").unwrap(), ["files", "dircache"]);
    assert_eq!(nsswitch_sources(text, "shadow"), None);
    let spaced = "passwd: files[NOTFOUND=return] sss [ !UNAVAIL=return ] dircache\n";
    assert_eq!(nsswitch_sources(spaced, "passwd").unwrap(), ["files", "sss", "dircache"]);
}

#[test]
fn pam_lines_in_comments_do_not_count() {
    assert!(!pam_file_uses_dircache("# auth sufficient pam_dircache.so\n"));
    assert!(!pam_file_uses_dircache("auth required pam_unix.so # pam_dircache.so\n"));
    assert!(pam_file_uses_dircache(
        "auth\t[success=1 default=ignore]\tpam_dircache.so use_first_pass\n"
    ));
    assert!(pam_file_uses_dircache("-auth optional /lib/security/pam_dircache.so\n"));
}

#[test]
fn nsswitch_with_dircache_before_another_source_warns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nsswitch.conf");
    fs::write(&path, "passwd: files dircache systemd\ngroup: files systemd dircache\n").unwrap();
    let result = check_nsswitch(&path);
    assert_eq!(result.status, Status::Warn, "{result:?}");
    assert!(result.message.contains("the passwd line"), "{result:?}");
    fs::write(&path, "passwd: files systemd dircache\ngroup: files dircache # x\n").unwrap();
    assert_eq!(check_nsswitch(&path).status, Status::Ok);
}

#[test]
fn nsswitch_naming_dircache_for_a_database_it_does_not_serve_warns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nsswitch.conf");
    let served = "passwd: files dircache\ngroup: files dircache\nshadow: files dircache\n\
                  initgroups: files dircache\n";
    fs::write(&path, format!("{served}protocols: files [NOTFOUND=return] dircache\n")).unwrap();
    let result = check_nsswitch(&path);
    assert_eq!(result.status, Status::Warn, "{result:?}");
    assert!(result.message.contains("on the protocols line(s)"), "{result:?}");
    assert!(result.hint.unwrap().contains("remove `dircache`"));
    let named_elsewhere = "hosts: files dns # dircache\nservices: files # dircache\n";
    fs::write(&path, format!("{served}{named_elsewhere}")).unwrap();
    assert_eq!(check_nsswitch(&path).status, Status::Ok);
    assert_eq!(
        unserved_databases_naming_dircache("gshadow: dircache files\nrpc: dircache\n"),
        ["gshadow", "rpc"]
    );
    // As glibc: the last line of a database counts; a source's name ends at `[`.
    let text =
        "rpc: files dircache\nrpc: files\nethers: files\nethers: dircache[NOTFOUND=return]\n\
                aliases: files dircache\naliases: dircache files\n";
    assert_eq!(unserved_databases_naming_dircache(text), ["ethers", "aliases"]);
    // Shown beside a problem of the served lines too.
    fs::write(&path, "passwd: files\ngroup: files dircache\nservices: files dircache\n").unwrap();
    let result = check_nsswitch(&path);
    assert_eq!(result.status, Status::Fail, "{result:?}");
    assert!(result.message.contains("on the services line(s)"), "{result:?}");
}

#[test]
fn nsswitch_without_dircache_fails_with_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nsswitch.conf");
    fs::write(&path, "passwd: files dircache\ngroup: files systemd\n").unwrap();
    let result = check_nsswitch(&path);
    assert_eq!(result.status, Status::Fail);
    assert!(result.message.contains("the group line of"), "{result:?}");
    assert!(result.hint.unwrap().contains("at the end of"));
    fs::write(&path, "passwd: files dircache\ngroup: files systemd dircache\n").unwrap();
    assert_eq!(check_nsswitch(&path).status, Status::Ok);
}

#[test]
fn pam_check_names_the_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    for file in PAM_COMMON_FILES {
        fs::write(dir.path().join(file), "auth required pam_unix.so\n").unwrap();
    }
    let result = check_pam(dir.path());
    assert_eq!(result.status, Status::Fail);
    assert!(result.hint.as_deref().unwrap().contains("pam-auth-update --enable dircache"));
    fs::write(dir.path().join("common-auth"), "auth sufficient pam_dircache.so\n").unwrap();
    let result = check_pam(dir.path());
    assert!(result.message.contains("missing from common-account, common-password"));
    for file in PAM_COMMON_FILES {
        fs::write(dir.path().join(file), "x [default=bad] pam_dircache.so\n").unwrap();
    }
    assert_eq!(check_pam(dir.path()).status, Status::Ok);
}

#[test]
fn plain_http_and_ignore_ssl_warnings_are_warnings() {
    let config = |text: &str| Config::from_toml_str(text, Path::new("t")).unwrap();
    let icewarp = |extra: &str| {
        config(&format!("[directory]\ntype = \"icewarp\"\nusername = \"a@b\"\n{extra}"))
    };
    let ok = check_transport(&icewarp("server = \"mail.example.com\""));
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert!(ok.message.starts_with("https://mail.example.com/icewarpapi/: https"), "{ok:?}");
    let ca = icewarp("server = \"mail.example.com\"\nca_file = \"/etc/dircache/ca.pem\"");
    assert!(check_transport(&ca).message.contains("/etc/dircache/ca.pem"));

    let http = check_transport(&icewarp("server = \"http://192.0.2.1:32000/icewarpapi/\""));
    assert_eq!(http.status, Status::Warn, "{http:?}");
    assert!(http.message.contains("plain http://"), "{http:?}");
    assert!(http.message.contains("administrator password"), "{http:?}");
    assert!(http.hint.as_deref().unwrap().starts_with("use https://"), "{http:?}");

    let ignore = icewarp("server = \"mail.example.com\"\nignore_ssl_warnings = true");
    let ignore = check_transport(&ignore);
    assert_eq!(ignore.status, Status::Warn, "{ignore:?}");
    assert!(ignore.message.contains("answer \"yes\" for any user"), "{ignore:?}");
    assert!(ignore.hint.as_deref().unwrap().contains("directory.ca_file"), "{ignore:?}");

    let appint = config(
        "[directory]\ntype = \"application-integration\"\nurl = \"http://apps.example.com/x\"",
    );
    let appint = check_transport(&appint);
    assert_eq!(appint.status, Status::Warn, "{appint:?}");
    assert!(appint.message.contains("HTTP Basic credentials"), "{appint:?}");
    assert_eq!(check_transport(&Config::default()).status, Status::Skip);
}

#[test]
fn state_files_readable_by_others_fail() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let file = state.join("0011.json");
    fs::write(&file, "{}").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(state_dir_problem(&state), None);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let problem = state_dir_problem(&state).unwrap();
    assert_eq!(problem.hint.as_deref(), Some(format!("chmod 600 {}", file.display()).as_str()));
}

#[test]
fn login_defs_keys_are_read_and_missing_ones_are_shadows_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("login.defs");
    fs::write(
        &path,
        "# SUB_GID_MIN 5\nSUB_UID_MIN\t\t300000\nSUB_UID_MAX 400000\nSUB_GID_COUNT 0\n\
         SUB_GID_MAX nonsense\n",
    )
    .unwrap();
    let defs = SubordinateDefaults::read(&path);
    assert_eq!(defs.ranges, [("UID", 300_000, 400_000, 65_536), ("GID", 100_000, 600_100_000, 0)]);
    let missing = SubordinateDefaults::read(&dir.path().join("none"));
    assert_eq!(missing.ranges[0], ("UID", 100_000, 600_100_000, 65_536));
    assert!(missing.source.contains("shadow's defaults"), "{}", missing.source);
}

/// A configuration whose local files live in `dir`, with this login.defs text.
fn ids_setup(dir: &Path, login_defs: &str) -> (Config, PathBuf) {
    let mut config = Config::default();
    config.cache.dir = dir.join("cache");
    for (field, name) in [
        (&mut config.unix.local_passwd, "passwd"),
        (&mut config.unix.local_group, "group"),
        (&mut config.unix.local_subuid, "subuid"),
        (&mut config.unix.local_subgid, "subgid"),
    ] {
        *field = dir.join(name);
    }
    let path = dir.join("login.defs");
    fs::write(&path, login_defs).unwrap();
    (config, path)
}

#[test]
fn uid_range_clear_of_subordinate_ids_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    // useradd gives none (COUNT 0), or gives them above uid_range.
    let defs = "SUB_UID_COUNT 0\nSUB_GID_MIN 300000\n";
    let (config, login_defs) = ids_setup(dir.path(), defs);
    fs::write(&config.unix.local_subuid, "ben:100000:65536\ncarl:300000:65536\n").unwrap();
    let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
    assert_eq!(result.status, Status::Ok, "{result:?}");
    assert!(result.message.contains("[1879048192, 2147352575] is clear"), "{result:?}");
}

#[test]
fn the_default_uid_range_is_clear_of_what_useradd_gives_on_a_stock_host() {
    // login.defs as Debian ships it (no SUB_* keys: 100000-600100000), newuidmap
    // installed, and a local user with subordinate ids: no warning for the default.
    let dir = tempfile::tempdir().unwrap();
    let (config, login_defs) = ids_setup(dir.path(), "");
    fs::write(
        &config.unix.local_subuid,
        "ben:100000:65536
",
    )
    .unwrap();
    let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
    assert_eq!(result.status, Status::Ok, "{result:?}");
    assert_eq!(
        UID_RANGE_CLEAR_OF_SUBORDINATE_IDS,
        format!("{:?}", crate::ids::DEFAULT_UID_RANGE).replace(' ', "").replace(',', ", ")
    );
}

#[test]
fn the_range_useradd_would_give_is_only_said_while_newuidmap_is_missing() {
    // A stock Debian host: login.defs' defaults cover the default uid_range, but nobody
    // can use subordinate ids without newuidmap.
    let dir = tempfile::tempdir().unwrap();
    let (mut config, login_defs) = ids_setup(dir.path(), "");
    config.unix.uid_range = [200_000, 299_999]; // the default before 1879048192
    let missing = dir.path().join("no-newuidmap");
    let result = check_ids(&config, &login_defs, &missing);
    assert_eq!(result.status, Status::Ok, "{result:?}");
    assert!(result.message.contains("which grant nothing while"), "{result:?}");
    let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
    assert_eq!(result.status, Status::Warn, "{result:?}");
}

#[test]
fn subordinate_ids_over_uid_range_warn_and_name_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, login_defs) = ids_setup(dir.path(), "SUB_UID_MIN 1000000\n");
    config.unix.uid_range = [200_000, 299_999];
    let subgid = &config.unix.local_subgid;
    fs::write(subgid, "ben:165536:65536\n").unwrap();
    let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
    assert_eq!(result.status, Status::Warn, "{result:?}");
    let range = format!("local user ben's subordinate gids 165536-231071 ({})", subgid.display());
    assert!(result.message.starts_with(&format!("{range} overlaps unix.uid_range")));
    // SUB_GID_* keep their defaults (100000-600100000); SUB_UID_* are clear.
    assert!(result.message.contains("(SUB_GID_MIN-SUB_GID_MAX 100000-600100000 in"));
    assert!(!result.message.contains("SUB_UID_MIN"), "{result:?}");
    // An unreadable file is a failure, as for the sync.
    fs::remove_file(subgid).unwrap();
    fs::create_dir(subgid).unwrap();
    let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
    assert_eq!(result.status, Status::Fail, "{result:?}");
    assert!(result.message.contains(&format!("cannot read {}", subgid.display())));
}

#[test]
fn the_example_named_is_one_that_exists() {
    assert_eq!(
        commented_example(Path::new("/bin/sh")),
        "/bin/sh",
        "the installed example when the package put it there"
    );
    let missing = commented_example(Path::new("/nonexistent/dircache.toml"));
    assert_eq!(missing, "conf/dircache.toml in the dircache source tree");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/dircache.toml").exists());
}

#[test]
fn a_last_successful_sync_older_than_the_bound_fails_for_monitoring() {
    use crate::sync::{write_status, SyncReport, SyncStatus};
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.cache.dir = dir.path().to_path_buf();
    config.directory.kind = crate::config::DirectoryKind::Icewarp;
    config.status.max_sync_age_secs = Some(3600);
    let check = |config: &Config, now| check_last_sync(config, now);
    assert_eq!(check(&config, 10_000).status, Status::Fail, "no sync at all");
    write_status(dir.path(), &SyncStatus::finished(&SyncReport::default(), 10_000)).unwrap();
    assert_ne!(check(&config, 10_000 + 3600).status, Status::Fail, "within the bound");
    let old = check(&config, 10_000 + 3601);
    assert_eq!(old.status, Status::Fail, "{old:?}");
    assert!(old.message.contains("status.max_sync_age_secs = 3600"), "{old:?}");
    // Without the key an old sync is only a warning, as before.
    config.status.max_sync_age_secs = None;
    assert_ne!(check(&config, 10_000 + 86_400).status, Status::Fail);
}

#[test]
fn nscd_is_a_warning_only_when_it_runs_and_caches_passwd_or_group() {
    use super::grants::nscd_cached;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let conf = dir.path().join("nscd.conf");
    assert_eq!(check_nscd(&socket, &conf).status, Status::Ok, "not running");
    // A listening socket is a running nscd; a missing nscd.conf means its defaults.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let result = check_nscd(&socket, &conf);
    assert_eq!(result.status, Status::Warn, "{result:?}");
    assert!(result.message.contains("passwd and group"), "{result:?}");
    assert!(result.hint.unwrap().contains("nscd -i passwd && nscd -i group"));
    fs::write(&conf, "\tenable-cache\t\tpasswd\t\tno\n enable-cache group yes # stale\n").unwrap();
    let result = check_nscd(&socket, &conf);
    assert!(result.message.contains("caches group data"), "{result:?}");
    assert!(result.hint.unwrap().contains("`nscd -i group`"));
    fs::write(&conf, "enable-cache passwd no\nenable-cache group no\nenable-cache hosts yes\n")
        .unwrap();
    assert_eq!(check_nscd(&socket, &conf).status, Status::Ok);
    assert_eq!(nscd_cached(Some("#enable-cache group no\n")), ["group", "passwd"]);
}

#[test]
fn local_groups_are_checked_against_the_local_group_file_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("group"), "root:x:0:\nsudo:x:27:\n").unwrap();
    let config = |mapping: &str| {
        let text = format!(
            "[cache]\ndir = {:?}\n[unix]\nlocal_group = {:?}\nlocal_passwd = {:?}\n\
             [unix.local_groups]\n{mapping}",
            dir.path().join("cache"),
            dir.path().join("group"),
            dir.path().join("passwd"),
        );
        Config::from_toml_str(&text, Path::new("/etc/dircache/dircache.toml")).unwrap()
    };
    assert_eq!(check_local_groups(&Config::default()).status, Status::Ok);
    let missing = check_local_groups(&config("docker = [\"dev@example.com\"]\n"));
    assert_eq!(missing.status, Status::Fail, "{missing:?}");
    assert!(missing.message.contains("line 7, invalid `unix.local_groups.docker`"), "{missing:?}");
    // No cache yet: the mapped directory group is unknown.
    let unknown = check_local_groups(&config("sudo = [\"it@example.com\"]\n"));
    assert_eq!(unknown.status, Status::Warn, "{unknown:?}");
    assert!(unknown.message.contains("\"it@example.com\" is not in the cache"), "{unknown:?}");
}
