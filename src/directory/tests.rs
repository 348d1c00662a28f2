use super::*;

fn not_configured(config: &Config) -> String {
    match connect(config) {
        Err(DirectoryError::NotConfigured(reason)) => reason,
        Err(other) => panic!("expected NotConfigured, got {other:?}"),
        Ok(_) => panic!("expected NotConfigured, got a client"),
    }
}

#[test]
fn connect_follows_the_configured_type() {
    let mut config = Config::default();
    assert!(not_configured(&config).contains("none"));

    config.directory.kind = DirectoryKind::Icewarp;
    assert!(not_configured(&config).contains("directory.server"));
    config.directory.server = Some("mail.example.com".to_string());
    let directory = connect(&config).unwrap();
    assert_eq!(directory.server(), "mail.example.com");

    config.directory.kind = DirectoryKind::ApplicationIntegration;
    assert!(not_configured(&config).contains("directory.url"));
    config.directory.url = Some("https://apps.example.com/integration/index.php".to_string());
    let directory = connect(&config).unwrap();
    assert_eq!(directory.server(), "https://apps.example.com/integration/index.php");
}

#[test]
fn unique_folded_keeps_the_first_spelling_in_order() {
    let items = ["B@x.test", "a@x.test", "b@X.TEST", "Straße@x.test", "A@x.test", "c@x.test"];
    assert_eq!(
        unique_folded(items.iter().map(|item| item.to_string())),
        ["B@x.test", "a@x.test", "Straße@x.test", "c@x.test"]
    );
}

#[test]
fn twenty_thousand_addresses_of_one_user_are_de_duplicated() {
    // Every address twice, the second time in upper case: 40,000 in, 20,000 out. The
    // old pairwise comparison took seconds here (README, HARDENING); this is linear.
    let addresses: Vec<String> = (0..20_000).map(|i| format!("alias{i}@example.com")).collect();
    let doubled = addresses.iter().cloned().chain(addresses.iter().map(|a| a.to_uppercase()));
    assert_eq!(unique_folded(doubled), addresses);
}

#[test]
fn the_listing_budget_charges_accounts_and_members() {
    let limit = ReplyLimit { bytes: 10 * ACCOUNT_COST, key: "max_reply_mib" };
    let mut budget = ListingBudget::new(limit);
    assert_eq!(budget.accounts(9), Ok(()));
    assert_eq!(budget.members(8), Ok(()));
    assert_eq!(budget.members(1), Err(OverBudget));
    let err = budget.error("server", "list");
    assert_eq!(err.failure(), Failure::Suspicious);
    assert!(err.to_string().contains("directory.max_reply_mib"), "{err}");
    let mut budget = ListingBudget::new(limit);
    assert_eq!(budget.accounts(usize::MAX), Err(OverBudget), "no overflow");
}

#[test]
fn icewarp_without_administrator_can_check_but_not_list() {
    let mut config = Config::default();
    config.directory.kind = DirectoryKind::Icewarp;
    config.directory.server = Some("http://127.0.0.1:9/icewarpapi/".to_string());
    let mut directory = connect(&config).unwrap();
    match directory.list(&mut NoProgress) {
        Err(DirectoryError::NotConfigured(reason)) => {
            assert!(reason.contains("directory.username"), "{reason}")
        }
        other => panic!("expected NotConfigured, got {other:?}"),
    }
}

#[test]
fn memberships_are_the_groups_that_list_each_user_in_their_order() {
    let group = |name: &str, members: &[u32]| DirectoryGroup {
        name: name.to_string(),
        identity: format!("icewarp:{name}"),
        members: members.to_vec(),
    };
    let groups = vec![
        group("a", &[2, 0]),
        group("b", &[]),
        group("c", &[0, 3, u32::MAX, 9]),
        group("d", &[3, 2, 0]),
    ];
    let users = 5;
    let listing = Listing { origin: Origin::Icewarp, users: vec![], groups, warnings: vec![] };
    let memberships = Memberships::new(users, &listing.groups);
    let expected: [&[u32]; 5] = [&[0, 2, 3], &[], &[0, 3], &[2, 3], &[]];
    for (at, groups) in expected.iter().enumerate() {
        assert_eq!(memberships.of(at), *groups, "user {at}");
        let names: Vec<&str> =
            groups.iter().map(|g| listing.groups[*g as usize].name.as_str()).collect();
        assert_eq!(listing.groups_of(at).collect::<Vec<_>>(), names, "user {at}");
    }
    // Past the users, and with no users or groups at all: nobody's groups.
    assert!(memberships.of(users).is_empty() && memberships.of(usize::MAX).is_empty());
    assert!(Memberships::new(0, &listing.groups).of(0).is_empty());
    assert!(Memberships::new(3, &[]).of(1).is_empty());
}
