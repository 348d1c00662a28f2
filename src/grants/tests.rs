use std::fs;
use std::path::Path;

use super::*;
use crate::privileges::Privilege;
use crate::user::{sample_group, sample_member};

const GROUP_FILE: &str = "root:x:0:\nsudo:x:27:localadmin\ndocker:x:999:\nwheel:x:0:\n";

/// A configuration with `mapping` under `[unix.local_groups]`, and the /etc/group of
/// `GROUP_FILE` in `dir`.
fn config_with(dir: &Path, mapping: &str) -> Result<Config, ConfigError> {
    let group = dir.join("group");
    fs::write(&group, GROUP_FILE).unwrap();
    let text = format!(
        "[unix]\nlocal_passwd = \"{}\"\nlocal_group = \"{}\"\n\n[unix.local_groups]\n{mapping}",
        dir.join("passwd").display(),
        group.display()
    );
    Config::from_toml_str(&text, Path::new("/test/dircache.toml"))
}

fn local(config: &Config) -> LocalAccounts {
    LocalAccounts::load(&config.unix.local_passwd, &config.unix.local_group).unwrap()
}

fn targets_of(mapping: &str) -> Result<Vec<Target>, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), mapping)?;
    targets(&config, &local(&config))
}

fn target(name: &str, gid: u32, groups: &[&str]) -> Target {
    Target {
        name: name.to_string(),
        gid,
        directory_groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

#[test]
fn a_mapping_to_an_existing_local_group_gives_its_gid() {
    let targets =
        targets_of("sudo = [\"it-admins@example.com\"]\ndocker = [\"dev@example.com\"]\n").unwrap();
    assert_eq!(
        targets,
        vec![
            target("docker", 999, &["dev@example.com"]),
            target("sudo", 27, &["it-admins@example.com"])
        ]
    );
}

#[test]
fn a_local_group_that_does_not_exist_is_a_config_error_naming_key_and_line() {
    let err = targets_of("sudo = [\"it-admins@example.com\"]\nadmins = [\"x@example.com\"]\n")
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, ConfigError::InvalidAt { line: 7, key, .. } if key == "unix.local_groups.admins"),
        "{err:?}"
    );
    assert!(message.contains("line 7") && message.contains("no group \"admins\""), "{message}");
    // Names are compared exactly, as glibc does: `Sudo` is not `sudo`.
    assert!(targets_of("Sudo = [\"it-admins@example.com\"]\n").is_err());
}

#[test]
fn gid_0_and_root_are_never_granted() {
    // `root` is refused by the configuration alone, before /etc/group is read…
    let dir = tempfile::tempdir().unwrap();
    let err = config_with(dir.path(), "root = [\"it-admins@example.com\"]\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::InvalidAt { line: 6, key, .. } if key == "unix.local_groups.root"),
        "{err:?}"
    );
    let err = config_with(dir.path(), "ROOT = [\"it-admins@example.com\"]\n").unwrap_err();
    assert!(err.to_string().contains("root group"), "{err}");
    // …and any other group with gid 0 once it is.
    let err = targets_of("wheel = [\"it-admins@example.com\"]\n").unwrap_err();
    assert!(err.to_string().contains("gid 0"), "{err}");
}

#[test]
fn the_mapping_is_checked_for_names_and_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    for (mapping, what) in [
        ("sudo = []\n", "empty list"),
        ("sudo = [\"\"]\n", "can never be a directory group"),
        ("sudo = [\"a:b\"]\n", "can never be a directory group"),
        ("\"x:y\" = [\"a@example.com\"]\n", "cannot be a local group"),
    ] {
        let err = config_with(dir.path(), mapping).unwrap_err().to_string();
        assert!(err.contains(what) && err.contains("line 6"), "{mapping}: {err}");
    }
    // Written inline in [unix], the line is still found.
    let text = "[unix]\nlocal_groups = { root = [\"a@example.com\"] }\n";
    let err = Config::from_toml_str(text, Path::new("/t.toml")).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn members_of_mapped_directory_groups_get_the_local_group() {
    let users = vec![
        sample_member("alice@example.com", 200_001, &["it-admins@example.com"]),
        sample_member("bob@example.com", 200_002, &["dev@example.com"]),
        sample_member("carol@example.com", 200_003, &["it-admins@example.com", "dev@example.com"]),
    ];
    let groups = vec![
        sample_group("it-admins@example.com", 300_001, &["alice@example.com", "carol@example.com"]),
        sample_group("dev@example.com", 300_002, &["bob@example.com", "carol@example.com"]),
    ];
    let targets = [
        target("sudo", 27, &["it-admins@example.com"]),
        target("docker", 999, &["dev@example.com", "IT-Admins@example.com"]),
    ];
    let computed = compute(&users, &groups, &targets);
    assert!(computed.warnings.is_empty(), "{:?}", computed.warnings);
    assert_eq!(
        computed.grants,
        vec![
            LocalGrant {
                name: "sudo".into(),
                gid: 27,
                members: vec!["alice@example.com".into(), "carol@example.com".into()],
            },
            LocalGrant {
                name: "docker".into(),
                gid: 999,
                members: vec![
                    "alice@example.com".into(),
                    "bob@example.com".into(),
                    "carol@example.com".into()
                ],
            },
        ]
    );
    assert_eq!(granted_to(&computed.grants, "Carol@example.com").len(), 2);
}

#[test]
fn a_directory_group_named_like_the_local_group_grants_nothing() {
    // The directory calls its group `sudo`; the mapping names another one.
    let users = vec![sample_member("mallory@example.com", 200_001, &["sudo"])];
    let groups = vec![sample_group("sudo", 300_001, &["mallory@example.com"])];
    let computed = compute(&users, &groups, &[target("sudo", 27, &["it-admins@example.com"])]);
    assert_eq!(computed.grants[0].members, Vec::<String>::new());
    assert!(computed.warnings[0].contains("\"it-admins@example.com\" is not in the cache"));
    // And without a mapping there is nothing at all.
    assert!(compute(&users, &groups, &[]).grants.is_empty());
}

#[test]
fn disabled_users_and_users_without_login_get_nothing() {
    let mut disabled = sample_member("dora@example.com", 200_004, &["it@example.com"]);
    disabled.enabled = false;
    let mut no_login = sample_member("nils@example.com", 200_005, &["it@example.com"]);
    no_login.privileges.remove(&Privilege::Login);
    let mut blocked = sample_member("bea@example.com", 200_006, &["it@example.com"]);
    blocked.limits.blocked = true;
    let fine = sample_member("alice@example.com", 200_001, &["it@example.com"]);
    let users = vec![disabled, no_login, blocked, fine];
    let groups = vec![sample_group(
        "it@example.com",
        300_001,
        // A member the cache has no user for grants nothing either.
        &[
            "dora@example.com",
            "nils@example.com",
            "bea@example.com",
            "alice@example.com",
            "ghost@example.com",
        ],
    )];
    let computed = compute(&users, &groups, &[target("sudo", 27, &["it@example.com"])]);
    assert_eq!(computed.grants[0].members, vec!["alice@example.com".to_string()]);
    // Every commit applies the same rule to grants computed earlier.
    let earlier = vec![LocalGrant {
        name: "sudo".into(),
        gid: 27,
        members: vec![
            "dora@example.com".into(),
            "alice@example.com".into(),
            "gone@example.com".into(),
        ],
    }];
    assert_eq!(
        crate::user::eligible_grants(&earlier, &users)[0].members,
        vec!["alice@example.com".to_string()]
    );
}

#[test]
fn leaving_the_directory_group_is_a_revocation() {
    let before = vec![LocalGrant {
        name: "sudo".into(),
        gid: 27,
        members: vec!["alice@example.com".into(), "bob@example.com".into()],
    }];
    let after = vec![LocalGrant {
        name: "sudo".into(),
        gid: 27,
        members: vec!["Bob@example.com".into(), "carol@example.com".into()],
    }];
    let changes = changes(&before, &after);
    let change = |user: &str| GrantChange { local_group: "sudo".into(), user: user.into() };
    assert_eq!(changes.granted, vec![change("carol@example.com")]);
    assert_eq!(changes.revoked, vec![change("alice@example.com")]);
    // A mapping removed from the configuration revokes all its members.
    let all_gone = super::changes(&before, &[]);
    assert_eq!(all_gone.revoked.len(), 2);
    assert!(super::changes(&after, &after).is_empty());
}
