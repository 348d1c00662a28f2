use super::*;
use crate::user::sample_user;

#[test]
fn reads_names_and_ids_of_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n# comment\n\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n").unwrap();
    fs::write(&group, "wheel:x:10:alice\n").unwrap();
    let local = LocalAccounts::load(&passwd, &group).unwrap();
    assert!(local.has_name("root") && local.has_name("ROOT") && local.has_name("wheel"));
    assert!(local.has_name("alice") && !local.has_name("bob") && !local.has_name("broken"));
    assert!(local.has_id(0) && local.has_id(1000) && local.has_id(10) && !local.has_id(5));
}

#[test]
fn a_primary_gid_missing_from_the_group_file_is_local_too() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(
        &passwd,
        "carol:x:1001:4242::/home/carol:/bin/sh
",
    )
    .unwrap();
    fs::write(
        &group,
        "staff:x:50:1234
",
    )
    .unwrap();
    let local = LocalAccounts::load(&passwd, &group).unwrap();
    assert!(local.has_id(1001) && local.has_id(4242) && local.has_id(50));
    assert!(!local.has_id(1234), "a group's member list holds names, not ids");
}

#[test]
fn missing_files_are_empty() {
    let local =
        LocalAccounts::load(Path::new("/nonexistent/p"), Path::new("/nonexistent/g")).unwrap();
    assert!(!local.has_name("root"));
}

fn with_subordinate(subuid: &str, subgid: &str) -> (tempfile::TempDir, LocalAccounts) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("subuid"), subuid).unwrap();
    fs::write(dir.path().join("subgid"), subgid).unwrap();
    let local = LocalAccounts::default()
        .with_subordinate_ids(&dir.path().join("subuid"), &dir.path().join("subgid"))
        .unwrap();
    (dir, local)
}

#[test]
fn subordinate_ranges_are_read_as_ranges() {
    let (dir, local) = with_subordinate(
        "alice:100000:65536\nben:165536:65536\n1003:231072:65536\n",
        "ben:165536:65536\n",
    );
    let ranges: Vec<(&str, SubordinateKind, u32, u32)> = local
        .subordinate_ranges()
        .iter()
        .map(|r| (r.owner.as_str(), r.kind, r.first, r.last))
        .collect();
    assert_eq!(
        ranges,
        [
            ("alice", SubordinateKind::Uid, 100_000, 165_535),
            ("ben", SubordinateKind::Uid, 165_536, 231_071),
            ("1003", SubordinateKind::Uid, 231_072, 296_607),
            ("ben", SubordinateKind::Gid, 165_536, 231_071),
        ]
    );
    let ids: Vec<RangeInclusive<u32>> = local.subordinate_ids().collect();
    assert_eq!(ids[1], 165_536..=231_071);
    let shown = local.subordinate_ranges()[1].to_string();
    let file = dir.path().join("subuid");
    assert_eq!(
        shown,
        format!("local user ben's subordinate uids 165536-231071 ({})", file.display())
    );
    assert!(!local.has_name("ben") && !local.has_id(165_536), "owners are not accounts");
}

#[test]
fn malformed_subordinate_lines_are_ignored_and_overflow_saturates() {
    let text = "# comment:1:2\n\n:5:5\nnocount:5\nextra:1:2:3\nneg:-1:5\nhex:0x10:5\n\
                zero:300000:0\nbig:4294967296:5\nwords:a:b\nspace:1: 2\n\
                top:4294967000:65536\nhuge:4000000000:99999999999999999999999\n\
                crlf:500000:10\r\n";
    let (_dir, local) = with_subordinate(text, "");
    let ranges: Vec<(&str, u32, u32)> =
        local.subordinate_ranges().iter().map(|r| (r.owner.as_str(), r.first, r.last)).collect();
    assert_eq!(
        ranges,
        [
            ("top", 4_294_967_000, u32::MAX),
            ("huge", 4_000_000_000, u32::MAX),
            ("crlf", 500_000, 500_009)
        ]
    );
}

#[test]
fn missing_subordinate_files_are_empty_and_unreadable_ones_an_error() {
    let none = Path::new("/nonexistent/subuid");
    let local = LocalAccounts::default().with_subordinate_ids(none, none).unwrap();
    assert!(local.subordinate_ranges().is_empty());
    // A directory cannot be read as a file: an error naming it, not "no ranges".
    let dir = tempfile::tempdir().unwrap();
    let error = LocalAccounts::default().with_subordinate_ids(none, dir.path()).unwrap_err();
    assert_eq!(error.path, dir.path());
}

#[test]
fn ids_inside_a_subordinate_range_are_reported_per_range() {
    let (_dir, local) = with_subordinate("ben:200000:65536\ncarl:300000:65536\n", "");
    let group = Group {
        name: "staff".into(),
        gid: 200_500,
        members: vec![],
        origin: crate::user::Origin::Icewarp,
        directory_identity: None,
    };
    let users = [sample_user("alice", 200_123), sample_user("dora", 270_000)];
    let warnings = local.subordinate_id_warnings(&users, &[group]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    assert!(warning.starts_with("ids inside local user ben's subordinate uids 200000-265535"));
    assert!(
        warning.contains("dircache user alice (uid 200123, gid 200123), group staff (gid 200500)"),
        "{warning}"
    );
    assert!(warning.contains("ben can act as them") && !warning.contains("dora"), "{warning}");
    assert!(warning.contains("usermod --del-subuids / --add-subuids"), "{warning}");
}

#[test]
fn each_file_is_read_with_the_metadata_of_what_was_read() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    fs::write(&passwd, "alice:x:1000:1000::/home/alice:/bin/sh\n").unwrap();
    let missing = dir.path().join("group");
    let (local, [seen_passwd, seen_group]) =
        LocalAccounts::load_with_metadata(&passwd, &missing).unwrap();
    assert!(local.has_name("alice") && local.has_id(1000));
    let seen = seen_passwd.expect("passwd exists");
    let now = fs::metadata(&passwd).unwrap();
    assert_eq!((seen.ino(), seen.len()), (now.ino(), now.len()));
    assert!(seen_group.is_none(), "a missing file has no metadata");
    // Not UTF-8: read all the same (lossy), never an error.
    fs::write(&passwd, b"b\xffb:x:1001:1001::/:/bin/sh\n").unwrap();
    let (local, _) = LocalAccounts::load_with_metadata(&passwd, &missing).unwrap();
    assert!(local.has_id(1001));
}

#[test]
fn a_scan_of_the_text_and_the_index_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\r\n+nis::::::\n#c:x:7:7\nÉmile:x:1005:4242::/:/bin/sh\n\
         short:x\nben:x:+1006:1006\nbig:x:99999999999:5\n",
    )
    .unwrap();
    fs::write(&group, "wheel:x:10:alice\n-nis:x:11:\nStaff:x:50\n").unwrap();
    let questions: &[(&str, &[u32])] = &[
        ("root", &[]),
        ("ROOT", &[]),
        ("émile", &[]),
        ("ÉMILE", &[]),
        ("staff", &[]),
        ("nis", &[]),
        ("+nis", &[]),
        ("#c", &[]),
        ("short", &[]),
        ("alice", &[]),
        ("", &[0]),
        ("", &[1005, 3]),
        ("", &[4242]),
        ("", &[1006]),
        ("", &[7]),
        ("", &[11]),
        ("", &[10]),
        ("", &[5]),
    ];
    let scanned = LocalAccounts::load(&passwd, &group).unwrap();
    let indexed = LocalAccounts::load(&passwd, &group).unwrap();
    let _ = indexed.ids().count();
    for (name, ids) in questions {
        assert_eq!(scanned.win_over(name, ids), indexed.win_over(name, ids), "{name:?} {ids:?}");
    }
    assert!(scanned.index.get().is_some(), "asked more than {SCANS_BEFORE_INDEX} times");
    let expected_local = [true, true, true, true, true, false, false, false, false, false];
    for ((name, ids), local) in questions.iter().zip(expected_local) {
        assert_eq!(indexed.win_over(name, ids), local, "{name:?}");
    }
    assert!(indexed.win_over("", &[1006]) && indexed.win_over("", &[5]));
    let fresh = LocalAccounts::load(&passwd, &group).unwrap();
    for gid in [10, 11, 50, 0, 1005, 4242, 7] {
        assert_eq!(fresh.has_group_gid(gid), indexed.has_group_gid(gid), "gid {gid}");
    }
    assert!(indexed.has_group_gid(10) && indexed.has_group_gid(50));
    assert!(!indexed.has_group_gid(4242) && !indexed.has_group_gid(11), "passwd gids, NIS lines");
    assert!(!indexed.win_over("", &[7, 11]));
}

/// The parser before the local files were scanned (commit cfeb045's parent), as a model:
/// the names (folded) and ids it held local, with the blanks before a line skipped.
fn old_model(passwd: &str, group: &str) -> (std::collections::HashSet<String>, Vec<u32>) {
    let mut names = std::collections::HashSet::new();
    let mut ids = Vec::new();
    for (text, is_passwd) in [(passwd, true), (group, false)] {
        for line in text.lines() {
            // Then it held an indented line's name with its blanks, which no dircache name
            // can have, and an indented comment or NIS line as an account; glibc skips the
            // blanks (and then such a line), and so does the parser now.
            let mut fields = skip_blanks(line).split(':');
            let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let primary_gid = if is_passwd { fields.next() } else { None };
            if name.is_empty() || name.starts_with(['#', '+', '-']) {
                continue;
            }
            names.insert(fold_name(name));
            ids.extend(
                [Some(id), primary_gid].into_iter().flatten().filter_map(|i| i.parse::<u32>().ok()),
            );
        }
    }
    (names, ids)
}

#[test]
fn scans_and_the_index_agree_on_generated_files_and_hold_all_the_old_parser_did() {
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "root", "Root", "alice", "ALICE", "Émile", "émile", "\u{212A}elvin", "kelvin", "x", "",
        ":", ":", ":", "::", "0", "1000", "+1001", "-1", " 7", "4294967295", "4294967296", "99",
        "#", "+", "-", " ", "\t", "\r", "\r\n", "\n", "\n", "\n", "İ", "ß", "SS", "a:b",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let dir = tempfile::tempdir().unwrap();
    let (passwd, group) = (dir.path().join("passwd"), dir.path().join("group"));
    for round in 0..400 {
        let mut texts = [String::new(), String::new()];
        for text in &mut texts {
            for _ in 0..next(40) {
                text.push_str(PIECES[next(PIECES.len())]);
            }
        }
        fs::write(&passwd, &texts[0]).unwrap();
        fs::write(&group, &texts[1]).unwrap();
        let (old_names, old_ids) = old_model(&texts[0], &texts[1]);
        let mut names: Vec<String> = PIECES.iter().map(|p| p.to_string()).collect();
        names.extend(old_names.iter().cloned());
        names.extend(texts.iter().flat_map(|t| t.split([':', '\n'])).map(str::to_string));
        let mut ids: Vec<u32> = vec![0, 1, 7, 99, 1000, 1001, u32::MAX];
        ids.extend(&old_ids);
        let indexed = LocalAccounts::load(&passwd, &group).unwrap();
        let _ = indexed.ids().count();
        for name in &names {
            // A fresh reader scans: the question is its first.
            let scanned = LocalAccounts::load(&passwd, &group).unwrap();
            let answer = scanned.win_over(name, &[]);
            assert_eq!(answer, indexed.win_over(name, &[]), "round {round}: {name:?} in {texts:?}");
            if old_names.contains(&fold_name(name)) {
                assert!(answer, "round {round}: {name:?} was local before, in {texts:?}");
            }
        }
        for id in &ids {
            let scanned = LocalAccounts::load(&passwd, &group).unwrap();
            let answer = scanned.win_over("", &[*id]);
            assert_eq!(answer, indexed.win_over("", &[*id]), "round {round}: {id} in {texts:?}");
            if old_ids.contains(id) {
                assert!(answer, "round {round}: {id} was local before, in {texts:?}");
            }
        }
    }
}
#[test]
fn an_indented_line_is_the_local_account_glibc_reads() {
    // glibc's `files` skips the blanks before a line, and strtoul those before a number:
    // `getent -s files passwd spacey` answers uid 1500 for these lines (checked with the
    // files bind-mounted over /etc/passwd and /etc/group).
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    fs::write(
        &passwd,
        "  spacey:x:1500:1500::/home/s:/bin/sh\n\tws:x: 1501:\t1601::/:/bin/sh\n \
         #comment:x:1502:1502::/:/bin/sh\n",
    )
    .unwrap();
    fs::write(&group, " grpsp:x:2500:\ngws:x: 2501:\n").unwrap();
    for scans_first in [true, false] {
        let local = LocalAccounts::load(&passwd, &group).unwrap();
        if !scans_first {
            let _ = local.ids().count();
        }
        for name in ["spacey", "SPACEY", "ws", "grpsp"] {
            assert!(local.win_over(name, &[]), "{name} (scan first: {scans_first})");
        }
        for id in [1500, 1501, 1601, 2500, 2501] {
            assert!(local.win_over("", &[id]), "{id} (scan first: {scans_first})");
        }
        assert!(!local.win_over("#comment", &[]) && !local.win_over("", &[1502]));
        assert_eq!(local.group_gid("grpsp"), Some(2500));
        assert_eq!(local.group_gid("gws"), Some(2501));
        assert!(local.has_group_gid(2501));
    }
}

#[test]
fn group_gid_answers_for_the_line_glibc_reads() {
    // In a CRLF file, glibc reads `sudo:x:27\r` as a gid running into '\r': no group (checked
    // with getent over a bind-mounted /etc/group), and answers getgrnam from the next line.
    let dir = tempfile::tempdir().unwrap();
    let group = dir.path().join("group");
    fs::write(&group, "sudo:x:27\r\nsudo:x:0:\r\nops:x:30:\r\nlast:x:31\r").unwrap();
    let local = LocalAccounts::load(&dir.path().join("passwd"), &group).unwrap();
    assert_eq!(local.group_gid("sudo"), Some(0));
    assert_eq!(local.group_gid("ops"), Some(30));
    assert_eq!(local.group_gid("last"), None);
    // Local all the same for "local accounts win", as before.
    assert!(local.has_group_gid(27) && local.win_over("", &[27, 31]));
}
