//! The IceWarp client against the mock server (`mock_directory`): whole listings through
//! [`Directory::list`]. The session's own tests (logins, paging, password checks) are in
//! `session/tests.rs`; the rules alone, without a server, in `select/tests.rs`. The
//! fixtures here serve both.

use mock_directory::icewarp::{error_xml, result_xml};
use mock_directory::{Account, Domain, IcewarpData, IcewarpServer, IcewarpVersion};
use zeroize::Zeroizing;

use super::*;
use crate::config::DirectoryKind;
use crate::directory::DirectoryUser;

/// The administrator's password of [`example`] and [`config`]: every markup character.
pub(super) const ADMIN_PASSWORD: &str = "admin & <pass>";

/// The directory of the protocol examples: two real domains, an alias domain and the
/// internal one; users of 14.x and 11.x kinds (carol and dave are listed in the 11.x
/// shape; dave has no `U_AccountDisabled` value, bob and carol no `U_Mailbox`); a group with
/// every kind of member; a mailing list; two items per page.
pub(super) fn example() -> IcewarpData {
    IcewarpData::new("admin@example.com", ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .domain(Domain::alias("alias.example.com", "example.com"))
        .domain(Domain::new("example.org"))
        .page_cap(2)
        .account(
            Account::user("alice@example.com", "Alice Liddell", "alice-pw")
                .property("u_alias", "al;[x];Alice.L@example.com;;alice@example.com")
                .property("u_aliaslist", "alice@alias.example.com;"),
        )
        .account(Account::user("bob@example.com", "Bob", "bob-pw").mailbox("").disabled(1))
        .account(Account::group(
            "staff@example.com",
            "Staff",
            &[
                "alice@example.com",
                "AL@example.com",
                "[example.org]",
                "ghost@example.com",
                "outsider@elsewhere.test",
            ],
        ))
        .account(Account::mailing_list("list@example.com", "A list", &[]))
        .account(
            Account::user("carol@example.com", "Carol", "carol-pw")
                .mailbox("")
                .listed_as(IcewarpVersion::V11),
        )
        .account(
            Account::user("dave@example.com", "Dave", "dave-pw")
                .listed_as(IcewarpVersion::V11)
                .property("u_accountdisabled", ""),
        )
        .account(Account::user("erin@example.org", "Erin", "erin-pw").mailbox("erin.x"))
        .account(Account::user("alice@example.org", "Other Alice", "alice-pw"))
}

pub(super) fn serve(data: IcewarpData) -> IcewarpServer {
    IcewarpServer::start(data, None).unwrap()
}

pub(super) fn config(iw: &IcewarpServer) -> Config {
    let mut config = Config::default();
    config.directory.kind = DirectoryKind::Icewarp;
    config.directory.server = Some(iw.url());
    config.directory.username = Some("admin@example.com".to_string());
    config.directory.password = Some(Zeroizing::new(ADMIN_PASSWORD.to_string()));
    config.directory.timeout_secs = 10;
    config
}

/// A `type="result"` reply without a sid, `content` inside `<query>`.
pub(super) fn ok(content: &str) -> String {
    result_xml(None, content)
}

pub(super) fn error(uid: &str) -> String {
    error_xml(None, uid)
}

/// The text of the first `<name>` element in a request body, as sent.
pub(super) fn tag<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(&body[start..end])
}

/// (command, body as sent) of every request the server received, in order.
pub(super) fn requests(iw: &IcewarpServer) -> Vec<(String, String)> {
    iw.server
        .requests()
        .iter()
        .map(|request| {
            let body = request.body_text().into_owned();
            (tag(&body, "commandname").unwrap_or_default().to_string(), body)
        })
        .collect()
}

/// How many times someone logged in (`authenticate` reached the mock).
pub(super) fn logins(iw: &IcewarpServer) -> usize {
    iw.mock.command_names().iter().filter(|command| *command == "authenticate").count()
}

/// The users of [`example`], in the order listed.
const EVERY_USER: [&str; 6] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.org",
    "alice@example.org",
];

#[derive(Default)]
struct Steps(Vec<(String, u64, Option<u64>)>);

impl Progress for Steps {
    fn step(&mut self, what: &str, done: u64, total: Option<u64>) {
        self.0.push((what.to_string(), done, total));
    }
}

pub(super) fn list(config: &Config) -> Result<Listing, DirectoryError> {
    IcewarpDirectory::new(config)?.list(&mut Steps::default())
}

/// The listed user of that address, opened up.
/// The groups that list the user with this address.
fn groups_of<'a>(listing: &'a Listing, email: &str) -> Vec<&'a str> {
    let at = listing.users.iter().position(|user| user.identity() == format!("icewarp:{email}"));
    listing.groups_of(at.unwrap_or_else(|| panic!("no {email}"))).collect()
}

fn user(listing: &Listing, email: &str) -> DirectoryUser {
    listing
        .users
        .iter()
        .find(|user| user.identity() == format!("icewarp:{email}"))
        .unwrap_or_else(|| panic!("no {email} in {:?}", listing.users))
        .to_parts()
}

fn identities(listing: &Listing) -> Vec<&str> {
    listing.users.iter().map(|user| user.identity().trim_start_matches("icewarp:")).collect()
}

#[test]
fn lists_users_groups_and_aliases() {
    let iw = serve(example());
    let mut steps = Steps::default();
    let listing = IcewarpDirectory::new(&config(&iw)).unwrap().list(&mut steps).unwrap();
    assert_eq!(listing.origin, Origin::Icewarp);
    assert_eq!(identities(&listing), EVERY_USER);
    let alice = user(&listing, "alice@example.com");
    assert_eq!(alice.login_name, "alice@example.com");
    assert_eq!(alice.full_name, "Alice Liddell");
    assert_eq!(
        alice.emails,
        ["alice@example.com", "al@example.com", "Alice.L@example.com", "alice@alias.example.com"]
    );
    assert!(alice.enabled);
    assert_eq!(groups_of(&listing, "alice@example.com"), ["staff@example.com"]);
    assert_eq!(alice.distinguished_name, None);
    // 14.x state 1; 11.x U_AccountDisabled 0; 11.x without a value fails closed.
    assert!(!user(&listing, "bob@example.com").enabled);
    assert!(user(&listing, "carol@example.com").enabled);
    assert!(!user(&listing, "dave@example.com").enabled);

    assert_eq!(listing.groups.len(), 1);
    let staff = &listing.groups[0];
    assert_eq!(staff.name, "staff@example.com");
    assert_eq!(staff.identity, "icewarp:staff@example.com");
    let members: Vec<&str> =
        staff.members.iter().map(|at| listing.users[*at as usize].identity()).collect();
    assert_eq!(
        members,
        ["icewarp:alice@example.com", "icewarp:erin@example.org", "icewarp:alice@example.org"]
    );
    assert_eq!(groups_of(&listing, "erin@example.org"), ["staff@example.com"]);
    assert!(groups_of(&listing, "bob@example.com").is_empty());
    assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
    assert!(listing.warnings[0].contains("ghost@example.com"), "{:?}", listing.warnings);
    assert!(listing.warnings[0].contains("outsider@elsewhere.test"), "{:?}", listing.warnings);

    let requests = requests(&iw);
    let commands: Vec<&str> = requests.iter().map(|(command, _)| command.as_str()).collect();
    assert_eq!(commands.first(), Some(&"authenticate"));
    assert_eq!(commands.last(), Some(&"logout"));
    // The alias and internal domains are never asked about.
    assert!(!requests.iter().any(|(_, body)| body.contains("alias.example.com</domainstr>")));
    assert!(!requests.iter().any(|(_, body)| body.contains("##internal")));
    // One properties request per user; U_AccountDisabled only for the 11.x items.
    let properties: Vec<&String> = requests
        .iter()
        .filter(|(command, _)| command == "getaccountproperties")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(properties.len(), 6);
    assert_eq!(properties.iter().filter(|body| body.contains("u_accountdisabled")).count(), 2);
    assert!(requests.iter().all(|(command, body)| command == "authenticate"
        || command == "logout"
        || command == "getaccountproperties"
        || body.contains("<count>500</count>")));

    assert!(steps.0.contains(&("domains".to_string(), 2, Some(2))), "{:?}", steps.0);
    assert!(steps.0.contains(&("accounts".to_string(), 6, None)), "{:?}", steps.0);
    assert!(steps.0.contains(&("account properties".to_string(), 6, Some(6))), "{:?}", steps.0);
}

#[test]
fn domain_filter_selects_domains() {
    let iw = serve(example());
    let mut config = config(&iw);
    config.sync.domains = vec!["EXAMPLE.org".to_string()];
    let listing = list(&config).unwrap();
    assert_eq!(identities(&listing), ["erin@example.org", "alice@example.org"]);
    // Members outside the filtered domains are not resolvable and not selected.
    assert_eq!(listing.groups.len(), 0);
    assert!(!requests(&iw).iter().any(|(_, body)| body.contains("example.com</domainstr>")));
}

#[test]
fn group_filter_selects_members_and_unions_with_domains() {
    let iw = serve(example());
    let mut config = config(&iw);
    config.sync.groups = vec!["Staff@Example.com".to_string()];
    let listing = list(&config).unwrap();
    assert_eq!(
        identities(&listing),
        ["alice@example.com", "erin@example.org", "alice@example.org"]
    );
    assert_eq!(listing.groups.len(), 1);

    config.sync.domains = vec!["example.com".to_string()];
    let listing = list(&config).unwrap();
    assert_eq!(identities(&listing), EVERY_USER);
}

#[test]
fn filters_naming_nothing_are_errors() {
    let iw = serve(example());
    for (domains, groups, kind, name) in [
        (vec!["example.net"], vec![], "domain", "example.net"),
        (vec!["alias.example.com"], vec![], "domain", "alias.example.com"),
        (vec![], vec!["staf@example.com"], "group", "staf@example.com"),
        // A type-1 mailing list is not a group.
        (vec![], vec!["list@example.com"], "group", "list@example.com"),
    ] {
        let mut config = config(&iw);
        config.sync.domains = domains.into_iter().map(str::to_string).collect();
        config.sync.groups = groups.into_iter().map(str::to_string).collect();
        match list(&config).unwrap_err() {
            DirectoryError::FilterNotFound { kind: have_kind, name: have_name, .. } => {
                assert_eq!((have_kind, have_name.as_str()), (kind, name));
            }
            other => panic!("expected FilterNotFound, got {other:?}"),
        }
    }
}

#[test]
fn an_account_with_20000_aliases_is_de_duplicated() {
    let mut data = example();
    // Each alias twice: as a bare name in the domain, and as a full upper-case address.
    let names: Vec<String> = (0..20_000).map(|i| format!("alias{i}")).collect();
    let listed = names
        .iter()
        .cloned()
        .chain(names.iter().map(|name| format!("{}@EXAMPLE.ORG", name.to_uppercase())))
        .collect::<Vec<_>>()
        .join(";");
    data.account_mut("erin@example.org").unwrap().properties =
        vec![("u_aliaslist".to_string(), listed)];
    let iw = serve(data);
    let listing = list(&config(&iw)).unwrap();
    let expected: Vec<String> = std::iter::once("erin@example.org".to_string())
        .chain(names.iter().map(|name| format!("{name}@example.org")))
        .collect();
    assert_eq!(user(&listing, "erin@example.org").emails, expected);
}

#[test]
fn a_listing_over_the_budget_is_refused_naming_the_key() {
    let iw = serve(example());
    let mut config = config(&iw);
    // Room for 5 accounts; the example lists 8 (and 4 domains, 5 group members).
    config.directory.max_reply_bytes = Some(5 * 1024);
    let err = list(&config).unwrap_err();
    assert!(matches!(err, DirectoryError::TooMany { key: "max_reply_bytes", .. }), "{err:?}");
    assert!(err.to_string().contains("getaccountsinfolist"), "{err}");
}

#[test]
fn mailbox_login_names_and_duplicates() {
    let iw = serve(example());
    let mut config = config(&iw);
    config.sync.login_name = LoginNameStyle::Mailbox;
    let listing = list(&config).unwrap();
    let names: Vec<&str> = listing.users.iter().map(|user| user.login_name()).collect();
    // bob and carol have no U_Mailbox: the local part stands in.
    // "alice" is the mailbox of two accounts: neither gets it, both keep their address.
    assert_eq!(names, ["alice@example.com", "bob", "carol", "dave", "erin.x", "alice@example.org"]);
    assert!(
        listing.warnings.iter().any(|warning| warning.contains("\"alice\"")
            && warning.contains("alice@example.com")
            && warning.contains("alice@example.org")),
        "{:?}",
        listing.warnings
    );
}

#[test]
fn a_server_that_ignores_the_offset_fails_the_listing() {
    // Every page is the first one, without an <offset> echo: the accounts after it would
    // look deleted.
    for (email, account_type) in [("alice@example.com", 0), ("staff@example.com", 7)] {
        let page = format!(
            "<result><item><name>A</name><email>{email}</email>\
             <accounttype>{account_type}</accounttype><accountstate><state>0</state>\
             </accountstate></item><overallcount>2</overallcount></result>"
        );
        let iw = serve(example().reply("getaccountsinfolist", ok(&page)));
        let err = list(&config(&iw)).unwrap_err();
        assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}

#[test]
fn account_vanishing_while_listing_is_skipped() {
    let iw = serve(example().reply("getaccountproperties", error("account_invalid")));
    let listing = list(&config(&iw)).unwrap();
    assert!(listing.users.is_empty());
    assert!(listing.warnings.iter().any(|warning| warning.contains("account_invalid")));
    let iw = serve(example().reply("getaccountproperties", error("license_evaluation")));
    match list(&config(&iw)).unwrap_err() {
        DirectoryError::Api { uid, .. } => assert_eq!(uid, "license_evaluation"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_names_become_api_urls() {
    assert_eq!(api_url("mail.example.com"), "https://mail.example.com/icewarpapi/");
    assert_eq!(api_url("192.0.2.10"), "https://192.0.2.10/icewarpapi/");
    assert_eq!(api_url("[2001:db8::1]:8443"), "https://[2001:db8::1]:8443/icewarpapi/");
    assert_eq!(api_url("http://127.0.0.1:8080/icewarpapi/"), "http://127.0.0.1:8080/icewarpapi/");
}
