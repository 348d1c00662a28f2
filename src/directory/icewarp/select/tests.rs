//! The rules of a listing, table by table, without a server.

use super::*;
use crate::directory::Listing;
use crate::user::Origin;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn domain(name: Option<&str>, domaintype: Option<&str>) -> DomainItem {
    DomainItem { name: name.map(str::to_string), domaintype: domaintype.map(str::to_string) }
}

#[test]
fn a_page_of_domains_keeps_the_ones_with_accounts_of_their_own() {
    let cases = [
        (vec![domain(Some(" example.com "), Some("0"))], Ok(vec!["example.com"])),
        // A domain alias: its accounts are the real domain's.
        (vec![domain(Some("alias.example.com"), Some(" 2 "))], Ok(vec![])),
        (vec![domain(Some("##InternalServiceDomain.icewarp.com##"), Some("0"))], Ok(vec![])),
        // No type is no alias.
        (vec![domain(Some("example.org"), None)], Ok(vec!["example.org"])),
        (
            vec![domain(Some("a.test"), Some("0")), domain(None, Some("0"))],
            Err("a domain without <name>"),
        ),
        (vec![domain(Some("  "), Some("0"))], Err("a domain without <name>")),
    ];
    for (items, expected) in cases {
        let expected = expected.map(|names| strings(&names));
        assert_eq!(listed_domains(items.clone()), expected, "{items:?}");
    }
    let fields = vec![some("example.com"), some("2"), some("ignored")];
    assert_eq!(DomainItem::from_fields(fields), domain(Some("example.com"), Some("2")));
    assert_eq!(DomainItem::from_fields(Vec::new()), domain(None, None));
}

/// One configuration of the filters, and what it makes of the listed domains.
struct FilterCase {
    domains: &'static [&'static str],
    groups: &'static [&'static str],
    scanned: &'static [&'static str],
    missing_domain: Option<&'static str>,
}

#[test]
fn filters_choose_the_scanned_domains_and_must_name_what_exists() {
    const ALL: &[&str] = &["example.com", "example.org", "example.net"];
    let listed = strings(ALL);
    let cases = [
        FilterCase { domains: &[], groups: &[], scanned: ALL, missing_domain: None },
        FilterCase {
            domains: &[" EXAMPLE.org "],
            groups: &[],
            scanned: &["example.org"],
            missing_domain: None,
        },
        // Group members may live in any domain.
        FilterCase {
            domains: &["example.org"],
            groups: &["staff@example.com"],
            scanned: ALL,
            missing_domain: None,
        },
        FilterCase {
            domains: &["example.org", "exmaple.com"],
            groups: &[],
            scanned: &["example.org"],
            missing_domain: Some("exmaple.com"),
        },
        FilterCase {
            domains: &[],
            groups: &["staff@example.com"],
            scanned: ALL,
            missing_domain: None,
        },
    ];
    for case in cases {
        let filters = Filters { domains: strings(case.domains), groups: strings(case.groups) };
        let missing = filters.missing_domain(&listed).map(String::as_str);
        assert_eq!(missing, case.missing_domain, "{filters:?}");
        assert_eq!(filters.scanned(listed.clone()), strings(case.scanned), "{filters:?}");
    }
    let filters = Filters { domains: Vec::new(), groups: strings(&["Staff@Example.com ", "x@y"]) };
    let missing = filters.missing_group(&strings(&["staff@example.com"]));
    assert_eq!(missing.map(String::as_str), Some("x@y"));
    assert_eq!(filters.missing_group(&strings(&["STAFF@example.com", "X@Y"])), None);
}

fn account(
    email: Option<&str>,
    accounttype: Option<&str>,
    state: Option<Option<&str>>,
) -> AccountItem {
    AccountItem {
        name: some(" Name "),
        email: email.map(str::to_string),
        accounttype: accounttype.map(str::to_string),
        has_state: state.is_some(),
        state: state.flatten().map(str::to_string),
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    User(Option<bool>),
    Group,
    Nothing,
    Malformed(&'static str),
}

#[test]
fn account_items_become_users_groups_or_nothing() {
    let cases = [
        // 14.x: only state 0 is enabled; a missing or garbled state is disabled.
        (account(Some("a@x.test"), Some("0"), Some(Some(" 0 "))), Seen::User(Some(true))),
        (account(Some("a@x.test"), Some("0"), Some(Some("1"))), Seen::User(Some(false))),
        (account(Some("a@x.test"), Some("0"), Some(None)), Seen::User(Some(false))),
        (account(Some("a@x.test"), Some("0"), Some(Some("zero"))), Seen::User(Some(false))),
        // 11.x: no accountstate at all, U_AccountDisabled decides later.
        (account(Some("a@x.test"), Some(" 0 "), None), Seen::User(None)),
        (account(Some("staff@x.test"), Some("7"), None), Seen::Group),
        (account(Some("list@x.test"), Some("1"), None), Seen::Nothing),
        (account(Some("room@x.test"), Some("8"), None), Seen::Nothing),
        (account(None, Some("0"), None), Seen::Malformed("an account without <email>")),
        (account(Some(" "), Some("0"), None), Seen::Malformed("an account without <email>")),
        (
            account(Some("a@x.test"), None, None),
            Seen::Malformed("account a@x.test has no <accounttype>"),
        ),
    ];
    for (item, expected) in cases {
        let mut accounts = Accounts::default();
        let seen = match accounts.add_page(vec![item.clone()], 3) {
            Err(reason) => {
                match expected {
                    Seen::Malformed(want) => assert_eq!(reason, want, "{item:?}"),
                    _ => panic!("{item:?}: {reason}"),
                }
                continue;
            }
            Ok(()) => match (accounts.users.as_slice(), accounts.groups.as_slice()) {
                ([user], []) => {
                    assert_eq!(
                        (user.email.as_str(), user.name.as_str(), user.domain),
                        ("a@x.test", "Name", 3)
                    );
                    Seen::User(user.enabled)
                }
                ([], [group]) => {
                    assert_eq!(group, "staff@x.test");
                    Seen::Group
                }
                ([], []) => Seen::Nothing,
                other => panic!("{item:?}: {other:?}"),
            },
        };
        assert_eq!(seen, expected, "{item:?}");
    }
}

#[test]
fn an_address_listed_twice_in_any_case_or_domain_fails_the_listing() {
    for (first, second) in
        [("a@x.test", "A@X.TEST"), ("staff@x.test", "staff@x.test"), ("Ä@x.test", "ä@X.test")]
    {
        let mut accounts = Accounts::default();
        accounts.add_page(vec![account(Some(first), Some("7"), None)], 0).unwrap();
        let reason =
            accounts.add_page(vec![account(Some(second), Some("0"), None)], 1).unwrap_err();
        assert!(reason.contains("listed twice"), "{reason}");
    }
    let fields = vec![some("N"), some("e@x"), some("0"), some(""), None];
    let item = AccountItem::from_fields(fields);
    assert!(item.has_state && item.state.is_none(), "{item:?}");
}

fn properties(values: &[(&str, PropertyValue)]) -> Properties {
    let mut properties = Properties::new();
    properties.values =
        values.iter().map(|(name, value)| (name.to_string(), value.clone())).collect();
    properties
}

fn text(value: &str) -> PropertyValue {
    PropertyValue::Text(value.to_string())
}

fn listed(email: &str, enabled: Option<bool>) -> ListedUser {
    ListedUser { email: email.to_string(), name: "Name".to_string(), domain: 0, enabled }
}

fn record(
    enabled: Option<bool>,
    values: &[(&str, PropertyValue)],
    style: LoginNameStyle,
) -> DirectoryUser {
    let mut warnings = Vec::new();
    let user = user_from_properties(
        &listed("al@x.test", enabled),
        "x.test",
        &properties(values),
        style,
        &mut warnings,
    );
    assert_eq!(warnings, Vec::<String>::new());
    user
}

#[test]
fn a_user_is_enabled_by_its_item_or_else_by_u_accountdisabled_0() {
    let zero = || ("u_accountdisabled", text(" 0 "));
    let cases = [
        (Some(true), vec![], true),
        // The item decides when it has a state.
        (Some(false), vec![zero()], false),
        // 11.x: only 0 is enabled; 1-4, nothing or no value is disabled (fail closed).
        (None, vec![zero()], true),
        (None, vec![("u_accountdisabled", text("3"))], false),
        (None, vec![("u_accountdisabled", PropertyValue::NoValue)], false),
        (None, vec![("u_accountdisabled", PropertyValue::List(vec!["0".to_string()]))], false),
        (None, vec![], false),
    ];
    for (listed_as, values, enabled) in cases {
        let user = record(listed_as, &values, LoginNameStyle::Email);
        assert_eq!(user.enabled, enabled, "{listed_as:?} {values:?}");
        assert_eq!(
            (user.identity.as_str(), user.full_name.as_str()),
            ("icewarp:al@x.test", "Name")
        );
    }
    let limits = ["u_accountvalid", "u_accountvalidtill", "u_blocked", "u_passwordexpired"];
    let base = ["u_mailbox", "u_alias", "u_aliaslist"];
    assert_eq!(property_names(&listed("a@x", Some(true))), [&base[..], &limits[..]].concat());
    assert_eq!(
        property_names(&listed("a@x", None)),
        [&base[..], &limits[..], &["u_accountdisabled"][..]].concat()
    );
}

#[test]
fn a_users_addresses_are_the_primary_then_the_aliases_each_once() {
    let aliases = PropertyValue::List(vec!["alice@y.test".to_string(), "Alice@x.test".to_string()]);
    let cases = [
        (vec![], vec!["al@x.test"]),
        // A bare alias is in the listing domain; settings and blanks are no addresses.
        (
            vec![("u_alias", text("al;alice;[x];AL@X.TEST;")), ("u_aliaslist", aliases)],
            vec!["al@x.test", "alice@x.test", "alice@y.test"],
        ),
        (vec![("u_aliaslist", text("b@z.test"))], vec!["al@x.test", "b@z.test"]),
    ];
    for (values, emails) in cases {
        let user = record(Some(true), &values, LoginNameStyle::Email);
        assert_eq!(user.emails, strings(&emails), "{values:?}");
    }
}

#[test]
fn a_login_name_is_the_address_or_the_mailbox_name() {
    use LoginNameStyle::{Email, Mailbox};
    let cases = [
        (Email, Some(text("alice")), "al@x.test"),
        (Mailbox, Some(text(" alice ")), "alice"),
        // Without a mailbox name, the local part stands in.
        (Mailbox, Some(text("  ")), "al"),
        (Mailbox, Some(PropertyValue::NoValue), "al"),
        (Mailbox, None, "al"),
    ];
    for (style, mailbox, login_name) in cases {
        let values: Vec<(&str, PropertyValue)> =
            mailbox.clone().map(|value| ("u_mailbox", value)).into_iter().collect();
        let user = record(Some(true), &values, style);
        assert_eq!(user.login_name, login_name, "{style:?} {mailbox:?}");
    }
}

#[test]
fn alias_tokens_drop_settings_and_blanks() {
    let value = PropertyValue::Text(" a ; [b] ;;c@x.test;[]".to_string());
    assert_eq!(alias_tokens(Some(&value)), ["a", "c@x.test"]);
    let value = PropertyValue::List(vec!["d;e".to_string(), "[f]".to_string()]);
    assert_eq!(alias_tokens(Some(&value)), ["d", "e"]);
    assert!(alias_tokens(Some(&PropertyValue::NoValue)).is_empty());
    assert!(alias_tokens(None).is_empty());
    assert!(eq_fold("ÄBC@Example.COM", "äbc@example.com"));
    assert!(!eq_fold("abc", "abcd"));
}

#[test]
fn member_tokens_are_trimmed_and_empty_ones_dropped() {
    for (fields, expected) in [
        (vec![some(" a@x.test ")], Some("a@x.test")),
        (vec![some("  ")], None),
        (vec![None], None),
        (vec![], None),
    ] {
        assert_eq!(member_token(fields.clone()).as_deref(), expected, "{fields:?}");
    }
}

/// A user of `domain` (an index into [`fetched`]'s domains) with these addresses, the first
/// primary, and this login name.
fn found(addresses: &[&str], login_name: &str, domain: usize) -> (CompactUser, usize) {
    let user = DirectoryUser {
        login_name: login_name.to_string(),
        identity: identity(addresses[0]),
        full_name: String::new(),
        emails: strings(addresses),
        enabled: true,
        distinguished_name: None,
        limits: crate::user::AccountLimits::default(),
    };
    (CompactUser::new(user).unwrap(), domain)
}

/// Two domains; alice, bob and mallory (who claims bob's address as an alias) in a.test,
/// carol in b.test; a group naming every kind of member, and an empty one.
fn fetched() -> Fetched {
    Fetched {
        domains: strings(&["a.test", "B.test"]),
        users: vec![
            found(&["alice@a.test", "al@a.test"], "alice", 0),
            found(&["mallory@a.test", "bob@a.test"], "mallory", 0),
            found(&["bob@a.test"], "bob", 0),
            found(&["carol@b.test"], "alice", 1),
        ],
        groups: vec![
            (
                "staff@a.test".to_string(),
                strings(&[
                    "AL@a.test",
                    "bob@a.test",
                    "[b.TEST]",
                    "alice@a.test",
                    "ghost@a.test",
                    "[c.test]",
                ]),
            ),
            ("empty@a.test".to_string(), strings(&["outsider@elsewhere.test"])),
        ],
    }
}

#[test]
fn members_resolve_and_filters_select() {
    // (domains, groups) → (users, groups with members, unresolved warnings)
    type Expected = (&'static [&'static str], &'static [(&'static str, &'static [&'static str])]);
    let cases: [(&[&str], &[&str], Expected); 5] = [
        (
            &[],
            &[],
            (
                &["alice@a.test", "mallory@a.test", "bob@a.test", "carol@b.test"],
                &[("staff@a.test", &["alice@a.test", "bob@a.test", "carol@b.test"])],
            ),
        ),
        (&["b.test"], &[], (&["carol@b.test"], &[("staff@a.test", &["carol@b.test"])])),
        // The union of a domain and a group; a named group is kept even when empty.
        (
            &["b.test"],
            &["empty@a.test"],
            (&["carol@b.test"], &[("staff@a.test", &["carol@b.test"]), ("empty@a.test", &[])]),
        ),
        (
            &[],
            &["STAFF@a.test"],
            (
                &["alice@a.test", "bob@a.test", "carol@b.test"],
                &[("staff@a.test", &["alice@a.test", "bob@a.test", "carol@b.test"])],
            ),
        ),
        (&["c.test"], &[], (&[], &[])),
    ];
    for (domains, groups, (users, kept)) in cases {
        let filters = Filters { domains: strings(domains), groups: strings(groups) };
        let mut warnings = Vec::new();
        let (have_users, have_groups) =
            select(fetched(), &filters, LoginNameStyle::Email, &mut warnings).unwrap();
        let have_users: Vec<&str> =
            have_users.iter().map(|user| user.identity().trim_start_matches("icewarp:")).collect();
        assert_eq!(have_users, users, "{filters:?}");
        let have_groups: Vec<(&str, Vec<&str>)> = have_groups
            .iter()
            .map(|group| {
                assert_eq!(group.identity, identity(&group.name));
                let members = group.members.iter().map(|at| have_users[*at as usize]).collect();
                (group.name.as_str(), members)
            })
            .collect();
        let kept: Vec<(&str, Vec<&str>)> =
            kept.iter().map(|(name, members)| (*name, members.to_vec())).collect();
        assert_eq!(have_groups, kept, "{filters:?}");
        // Unresolved members are told whatever the filters: ghost and [c.test] for staff,
        // the outsider for the empty group.
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("group staff@a.test: 2 member(s)"), "{warnings:?}");
        assert!(warnings[0].ends_with(": ghost@a.test, [c.test]"), "{warnings:?}");
        assert!(warnings[1].contains("outsider@elsewhere.test"), "{warnings:?}");
    }
}

#[test]
fn users_are_in_the_groups_they_are_selected_in() {
    let (users, groups) =
        select(fetched(), &Filters::default(), LoginNameStyle::Email, &mut Vec::new()).unwrap();
    let listing = Listing { origin: Origin::Icewarp, users, groups, warnings: vec![] };
    let groups: Vec<(&str, Vec<&str>)> = (listing.users.iter().enumerate())
        .map(|(at, user)| (user.emails().next().unwrap(), listing.groups_of(at).collect()))
        .collect();
    let staff = vec!["staff@a.test"];
    assert_eq!(
        groups,
        [
            ("alice@a.test", staff.clone()),
            ("mallory@a.test", vec![]),
            ("bob@a.test", staff.clone()),
            ("carol@b.test", staff)
        ]
    );
}

#[test]
fn a_warning_names_at_most_ten_unresolved_members() {
    let tokens: Vec<String> = (0..12).map(|i| format!("ghost{i}@a.test")).collect();
    let fetched = Fetched { groups: vec![("g@a.test".to_string(), tokens)], ..Fetched::default() };
    let mut warnings = Vec::new();
    let (_, groups) =
        select(fetched, &Filters::default(), LoginNameStyle::Email, &mut warnings).unwrap();
    assert!(groups.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("12 member(s)"), "{warnings:?}");
    assert!(warnings[0].contains("ghost9@a.test and 2 more"), "{warnings:?}");
    assert!(!warnings[0].contains("ghost10@a.test"), "{warnings:?}");
}

#[test]
fn a_shared_mailbox_name_goes_to_nobody() {
    // alice@a.test and carol@b.test both have the mailbox name "alice" (any case).
    for (style, names, warned) in [
        (LoginNameStyle::Mailbox, ["alice@a.test", "mallory", "bob", "carol@b.test"], true),
        // Email login names are never mailbox names: the sync planner sees this clash.
        (LoginNameStyle::Email, ["alice", "mallory", "bob", "ALICE"], false),
    ] {
        let mut fetched = fetched();
        fetched.users[3].0.edit(|user| user.login_name = "ALICE".to_string()).unwrap();
        let mut warnings = Vec::new();
        let (users, _) = select(fetched, &Filters::default(), style, &mut warnings).unwrap();
        let have: Vec<&str> = users.iter().map(|user| user.login_name()).collect();
        assert_eq!(have, names);
        let shared = warnings
            .iter()
            .any(|warning| warning.contains("belongs to 2 accounts (alice@a.test, carol@b.test)"));
        assert_eq!(shared, warned, "{warnings:?}");
    }
}

#[test]
fn members_are_renumbered_among_selected_users_and_an_unfit_position_names_nobody() {
    let mut groups = vec![DirectoryGroup {
        name: "staff@example.com".to_string(),
        identity: identity("staff@example.com"),
        members: vec![0, 2, 3, position32(usize::MAX)],
    }];
    renumber_members(&mut groups, &[true, false, true, true]);
    assert_eq!(groups[0].members, [0, 1, 2, NO_POSITION]);
    // Fetched positions beyond the selection name nobody either.
    groups[0].members = vec![9];
    renumber_members(&mut groups, &[true]);
    assert_eq!(groups[0].members, [NO_POSITION]);
}
