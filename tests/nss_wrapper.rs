//! The built libnss_dircache.so through the real glibc NSS calls of `getent` and `id`,
//! redirected by nss_wrapper (no root, nothing in /etc touched).

mod nss_fixture;
mod testbed;

use std::fs;

use nss_fixture::{group, lines, standard_db, stdout, user, Fixture};
use testbed::text;

const ALICE: &str =
    "alice@example.com:x:200001:200001:alice@example.com Example:/home/alice@example.com:/bin/bash";
const BOB: &str =
    "bob@example.com:x:200002:200002:bob@example.com Example:/home/bob@example.com:/bin/bash";

#[test]
fn getent_passwd_by_name_and_uid_and_unknown() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let by_name = fx.getent(&["passwd", "alice@example.com"]);
    assert_eq!(by_name.status.code(), Some(0), "{}", text(&by_name));
    assert_eq!(lines(&by_name), [ALICE]);
    let by_uid = fx.getent(&["passwd", "200002"]);
    assert_eq!(lines(&by_uid), [BOB], "{}", text(&by_uid));
    // Several keys at once; a disabled user is still a Unix account.
    let several = fx.getent(&["passwd", "dora@example.com", "200001"]);
    assert_eq!(several.status.code(), Some(0), "{}", text(&several));
    assert_eq!(lines(&several).len(), 2);
    for unknown in ["nobody@example.com", "299999", "a:b"] {
        let out = fx.getent(&["passwd", unknown]);
        assert_eq!(out.status.code(), Some(2), "{unknown}: {}", text(&out));
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn getent_group_by_name_and_gid_with_members_and_private_groups() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let staff = fx.getent(&["group", "dc-staff"]);
    assert_eq!(
        lines(&staff),
        ["dc-staff:x:300001:alice@example.com,bob@example.com"],
        "{}",
        text(&staff)
    );
    assert_eq!(lines(&fx.getent(&["group", "300002"])), ["dc-developers:x:300002:bob@example.com"]);
    assert_eq!(lines(&fx.getent(&["group", "alice@example.com"])), ["alice@example.com:x:200001:"]);
    assert_eq!(lines(&fx.getent(&["group", "200002"])), ["bob@example.com:x:200002:"]);
    assert_eq!(fx.getent(&["group", "nogroup"]).status.code(), Some(2));
    assert_eq!(fx.getent(&["group", "399999"]).status.code(), Some(2));
}

#[test]
fn getent_enumerates_local_accounts_then_directory_users_and_groups() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let passwd = fx.getent(&["passwd"]);
    assert_eq!(passwd.status.code(), Some(0), "{}", text(&passwd));
    let names: Vec<String> =
        lines(&passwd).iter().map(|l| l.split(':').next().unwrap().to_string()).collect();
    assert_eq!(
        names,
        ["root", "daemon", "carol", "alice@example.com", "bob@example.com", "dora@example.com"]
    );
    assert!(lines(&passwd).contains(&ALICE.to_string()));
    let groups = fx.getent(&["group"]);
    assert_eq!(
        lines(&groups),
        [
            "root:x:0:",
            "wheel:x:10:carol",
            "carol:x:1000:",
            "dc-staff:x:300001:alice@example.com,bob@example.com",
            "dc-developers:x:300002:bob@example.com",
            "alice@example.com:x:200001:",
            "bob@example.com:x:200002:",
            "dora@example.com:x:200004:",
        ],
        "{}",
        text(&groups)
    );
}

#[test]
fn id_and_initgroups_show_the_directory_groups() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    let id = fx.wrapped("id", &["bob@example.com"]);
    assert_eq!(id.status.code(), Some(0), "{}", text(&id));
    assert_eq!(
        stdout(&id).trim(),
        "uid=200002(bob@example.com) gid=200002(bob@example.com) \
         groups=200002(bob@example.com),300001(dc-staff),300002(dc-developers)"
    );
    let initgroups = fx.getent(&["initgroups", "bob@example.com"]);
    assert_eq!(initgroups.status.code(), Some(0), "{}", text(&initgroups));
    let words: Vec<String> = stdout(&initgroups).split_whitespace().map(str::to_string).collect();
    assert_eq!(words, ["bob@example.com", "300001", "300002"], "{}", text(&initgroups));
    let unknown = fx.wrapped("id", &["nobody@example.com"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
}

#[test]
fn a_cache_replaced_between_two_calls_is_seen_by_the_next() {
    let fx = Fixture::new();
    fx.commit(&standard_db());
    assert_eq!(fx.getent(&["passwd", "erin@example.com"]).status.code(), Some(2));
    let mut db = standard_db();
    db.users.push(user("erin@example.com", 200_005, &["dc-staff"]));
    db.groups[0].members.push("erin@example.com".into());
    db.users.retain(|u| u.name != "alice@example.com");
    fx.commit(&db);
    let erin = fx.getent(&["passwd", "erin@example.com"]);
    assert_eq!(erin.status.code(), Some(0), "{}", text(&erin));
    assert!(stdout(&erin).starts_with("erin@example.com:x:200005:200005:"));
    assert_eq!(fx.getent(&["passwd", "alice@example.com"]).status.code(), Some(2));
}

#[test]
fn a_directory_root_never_shadows_root() {
    let fx = Fixture::new();
    let mut db = standard_db();
    let mut evil_root = user("root", 200_010, &["dc-staff"]);
    evil_root.home = "/".into();
    db.users.push(evil_root);
    db.users.push(user("ROOT", 200_011, &[]));
    db.users.push(user("uid-zero@example.com", 0, &[]));
    db.users.push(user("carol", 200_012, &[]));
    db.groups.push(group("wheel", 300_010, &["alice@example.com"]));
    db.groups.push(group("gid-ten", 10, &["alice@example.com"]));
    fx.commit(&db);
    assert_eq!(lines(&fx.getent(&["passwd", "root"])), ["root:x:0:0:root:/root:/bin/bash"]);
    assert_eq!(lines(&fx.getent(&["passwd", "0"])), ["root:x:0:0:root:/root:/bin/bash"]);
    for hidden in ["200010", "200011", "uid-zero@example.com", "200012"] {
        let out = fx.getent(&["passwd", hidden]);
        assert_eq!(out.status.code(), Some(2), "{hidden}: {}", text(&out));
    }
    assert_eq!(lines(&fx.getent(&["group", "wheel"])), ["wheel:x:10:carol"]);
    assert_eq!(fx.getent(&["group", "300010"]).status.code(), Some(2));
    assert_eq!(fx.getent(&["group", "gid-ten"]).status.code(), Some(2));
    let all = fx.getent(&["passwd"]);
    let roots: Vec<String> = lines(&all)
        .into_iter()
        .filter(|l| l.to_lowercase().starts_with("root:") || l.contains(":0:"))
        .collect();
    assert_eq!(roots, ["root:x:0:0:root:/root:/bin/bash"], "{}", text(&all));
    let carols = lines(&all).into_iter().filter(|l| l.starts_with("carol:")).count();
    assert_eq!(carols, 1);
}

#[test]
fn a_corrupt_or_missing_cache_answers_nothing_and_never_crashes() {
    let fx = Fixture::new();
    // Missing: the local accounts still answer.
    assert_eq!(fx.getent(&["passwd", "alice@example.com"]).status.code(), Some(2));
    assert_eq!(lines(&fx.getent(&["passwd", "root"])), ["root:x:0:0:root:/root:/bin/bash"]);
    fx.commit(&standard_db());
    let path = fx.users_public();
    let groups_path = path.with_file_name("groups.public");
    let good = fs::read(&path).unwrap();
    let flip = |bytes: &[u8]| -> Vec<u8> {
        let mut flipped = bytes.to_vec();
        for (i, byte) in flipped.iter_mut().enumerate().skip(100) {
            if i % 7 == 0 {
                *byte ^= 0x5a;
            }
        }
        flipped
    };
    let good_groups = fs::read(&groups_path).unwrap();
    // A broken header or length makes the whole generation unavailable; flipped bytes in
    // the body (both files here) fail each lookup that reads them.
    let corruptions: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), good_groups.clone()),
        ("empty", Vec::new(), good_groups.clone()),
        ("garbage", b"not a cache at all\n".repeat(50), good_groups.clone()),
        ("bytes flipped", flip(&good), flip(&good_groups)),
    ];
    for (what, users, groups) in corruptions {
        fs::write(&path, &users).unwrap();
        fs::write(&groups_path, &groups).unwrap();
        for args in [
            &["passwd", "alice@example.com"][..],
            &["passwd", "200001"],
            &["group", "dc-staff"],
            &["group", "300001"],
        ] {
            let out = fx.getent(args);
            assert_eq!(out.status.code(), Some(2), "{what} {args:?}: {}", text(&out));
            assert_eq!(stdout(&out), "", "{what}");
        }
        // getent initgroups exits 0 even for an unknown user: no group may show up.
        let initgroups = fx.getent(&["initgroups", "alice@example.com"]);
        assert!(initgroups.status.code().is_some(), "{what}: {}", text(&initgroups));
        assert!(!stdout(&initgroups).contains("300001"), "{what}: {}", text(&initgroups));
        let all = fx.getent(&["passwd"]);
        assert_eq!(all.status.code(), Some(0), "{what}: {}", text(&all));
        assert_eq!(lines(&all).len(), 3, "only the local accounts ({what}): {}", text(&all));
    }
}
