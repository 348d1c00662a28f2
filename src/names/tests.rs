use super::*;

#[test]
fn accepts_ordinary_names() {
    for name in ["alice", "alice@example.com", "j.doe", "x_y-z", "a1", "a+tag@b.c", "Bob"] {
        assert_eq!(validate_name(name), Ok(()), "{name}");
    }
}

#[test]
fn refuses_names_that_break_files_paths_or_tools() {
    let cases = [
        ("", NameError::Empty),
        ("a:b", NameError::ForbiddenChar(':')),
        ("a/b", NameError::ForbiddenChar('/')),
        ("a\nb", NameError::ForbiddenChar('\n')),
        ("a\0b", NameError::ForbiddenChar('\0')),
        ("a b", NameError::ForbiddenChar(' ')),
        ("a,b", NameError::ForbiddenChar(',')),
        ("-rf", NameError::LeadingDash),
        (".", NameError::DotName),
        ("..", NameError::DotName),
        ("1234", NameError::AllDigits),
    ];
    for (name, expected) in cases {
        assert_eq!(validate_name(name), Err(expected), "{name:?}");
    }
}

#[test]
fn refuses_invisible_characters_that_make_one_name_look_like_another() {
    for (name, c) in [
        ("root\u{200B}", '\u{200B}'),
        ("ro\u{200D}ot", '\u{200D}'),
        ("\u{FEFF}admin", '\u{FEFF}'),
        ("alice\u{202E}moc.elpmaxe", '\u{202E}'),
        ("bob\u{2066}", '\u{2066}'),
        ("ad\u{00AD}min", '\u{00AD}'),
        ("x\u{FE0F}", '\u{FE0F}'),
        ("tag\u{E0041}", '\u{E0041}'),
    ] {
        assert_eq!(validate_name(name), Err(NameError::ForbiddenChar(c)), "{name:?}");
    }
    // Non-ASCII letters can pass for ASCII ones: refused too.
    assert_eq!(validate_name("Zoë"), Err(NameError::ForbiddenChar('ë')));
    assert_eq!(validate_name("\u{430}dmin"), Err(NameError::ForbiddenChar('\u{430}')));
}

#[test]
fn refuses_shell_and_glob_characters() {
    for (name, c) in [
        ("x;id", ';'),
        ("$(reboot)", '$'),
        ("a*b", '*'),
        ("a?b", '?'),
        ("`id`", '`'),
        ("a'b", '\''),
        ("a\"b", '"'),
        ("a|b", '|'),
        ("a&b", '&'),
        ("a<b", '<'),
        ("a\\b", '\\'),
        ("a\tb", '\t'),
        ("a%b", '%'),
        ("a=b", '='),
        ("a~b", '~'),
        ("a#b", '#'),
    ] {
        assert_eq!(validate_name(name), Err(NameError::ForbiddenChar(c)), "{name:?}");
    }
    assert_eq!(validate_name("+nis"), Err(NameError::LeadingDash));
}

#[test]
fn names_with_system_meaning_are_refused_in_any_case() {
    let policy = NamePolicy::default();
    for name in [
        "root",
        "ROOT",
        "admin",
        "Admin",
        "sudo",
        "wheel",
        "adm",
        "staff",
        "docker",
        "lxd",
        "libvirt",
        "kvm",
        "disk",
        "shadow",
        "systemd-network",
        "systemd-anything",
        "_apt",
        "nobody",
    ] {
        assert_eq!(policy.check(name), Err(NameError::SystemName(name.to_string())), "{name}");
    }
    for name in ["alice", "admin@example.com", "sudoku", "dockers", "rooted"] {
        assert_eq!(policy.check(name), Ok(()), "{name}");
    }
    assert!(matches!(policy.check("a;b"), Err(NameError::ForbiddenChar(';'))));
}

#[test]
fn every_built_in_system_name_is_refused() {
    // The list is searched by bisection: an entry out of order would silently pass.
    assert!(SYSTEM_NAMES.windows(2).all(|pair| pair[0] < pair[1]), "SYSTEM_NAMES must stay sorted");
    let policy = NamePolicy::default();
    for name in SYSTEM_NAMES {
        assert_eq!(fold_name(name), *name, "{name} is not folded");
        for spelling in [name.to_string(), name.to_ascii_uppercase()] {
            assert_eq!(policy.check(&spelling), Err(NameError::SystemName(spelling.clone())));
        }
    }
}

#[test]
fn configured_reserved_names_are_refused_too() {
    let policy = NamePolicy::new(&["Finance", "ops@example.com"]);
    assert_eq!(policy.check("finance"), Err(NameError::ConfiguredReserved("finance".into())));
    assert!(policy.check("OPS@example.com").is_err());
    assert_eq!(policy.check("alice"), Ok(()));
    assert_eq!(NamePolicy::default().check("finance"), Ok(()));
}

#[test]
fn length_limit_is_256_bytes() {
    assert_eq!(validate_name(&"a".repeat(256)), Ok(()));
    assert_eq!(validate_name(&"a".repeat(257)), Err(NameError::TooLong(257)));
}

#[test]
fn matching_ignores_case_and_keys_agree() {
    assert!(same_name("Alice@Example.COM", "alice@example.com"));
    assert!(!same_name("alice", "alice2"));
    assert_eq!(name_key("ALICE"), name_key("alice"));
    assert_ne!(name_key("alice"), name_key("bob"));
}

#[test]
fn name_key_is_fnv1a_of_the_folded_name() {
    // Fixed on-disk values: a change here breaks every existing cache.
    assert_eq!(name_key(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(name_key("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(name_key("A"), 0xaf63_dc4c_8601_ec8c);
    // Every name hashes its fold_name, ASCII or not.
    let fnv = |name: &str| {
        name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    for name in ["Alice@Example.COM", "bob", "ÄRGER", "straße", "İstanbul", "a-Z_0.9", "ǅemal"]
    {
        assert_eq!(name_key(name), fnv(&fold_name(name)), "{name}");
    }
}
