use std::sync::Arc;

use mock_directory::{MockServer, Request, Response};
use zeroize::Zeroizing;

use super::*;
use crate::config::DirectoryKind;
use crate::directory::ACCOUNT_COST;
use crate::directory::{Directory, NoProgress};

const DOCUMENTED: &str = r#"[
  {"userName": "john.doe",
   "distinguishedName": "UID=john.doe,DC=example,DC=com",
   "fullName": "John Doe",
   "emailAddresses": ["john.doe@example.com", "jd@example.com"]},
  {"userName": "jane.roe"}
]"#;

/// The users opened up, for comparing whole.
fn parse(json: &[u8]) -> Result<(Vec<DirectoryUser>, Vec<String>), UsersError> {
    let (users, warnings) = parse_users(json, &mut ListingBudget::unlimited())?;
    Ok((users.iter().map(CompactUser::to_parts).collect(), warnings))
}

fn users(json: &str) -> Vec<DirectoryUser> {
    parse(json.as_bytes()).unwrap().0
}

fn error(json: &str) -> String {
    match parse(json.as_bytes()).unwrap_err() {
        UsersError::Malformed(reason) => reason,
        UsersError::OverBudget => panic!("over budget"),
    }
}

#[test]
fn documented_example() {
    let (users, warnings) = parse(DOCUMENTED.as_bytes()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        users,
        vec![
            DirectoryUser {
                login_name: "john.doe".to_string(),
                identity: "application-integration:john.doe".to_string(),
                full_name: "John Doe".to_string(),
                emails: vec!["john.doe@example.com".to_string(), "jd@example.com".to_string()],
                enabled: true,
                distinguished_name: Some("UID=john.doe,DC=example,DC=com".to_string()),
                limits: crate::user::AccountLimits::default(),
            },
            DirectoryUser {
                login_name: "jane.roe".to_string(),
                identity: "application-integration:jane.roe".to_string(),
                full_name: String::new(),
                emails: Vec::new(),
                enabled: true,
                distinguished_name: None,
                limits: crate::user::AccountLimits::default(),
            },
        ]
    );
}

#[test]
fn nulls_unknown_fields_and_escapes() {
    let users = users(
        r#"[{"userName": "J\u00f6rg", "fullName": null, "emailAddresses": null,
                 "distinguishedName": null, "extra": {"nested": [1, 2, {"x": null}]}, "n": 5},
                {"userName": "a\"b", "emailAddresses": ["", "X@example.com", "x@EXAMPLE.com"]}]"#,
    );
    assert_eq!(users[0].login_name, "Jörg");
    assert_eq!(users[0].identity, "application-integration:jörg");
    assert_eq!(users[0].full_name, "");
    assert!(users[0].emails.is_empty());
    assert_eq!(users[1].login_name, "a\"b");
    assert_eq!(users[1].emails, ["X@example.com"]);
    assert!(parse(b"[]").unwrap().0.is_empty());
}

#[test]
fn bad_elements_are_named_by_index() {
    for (json, expected) in [
        (r#"[{"userName": "a"}, {"fullName": "No Name"}]"#, "element 1"),
        (r#"[{"userName": "a"}, {"userName": ""}]"#, "element 1"),
        (r#"[{"userName": "   "}]"#, "element 0"),
        (r#"[{"userName": null}]"#, "element 0"),
        (r#"[{"userName": 5}]"#, "element 0"),
        (r#"[{"userName": "a", "emailAddresses": "a@example.com"}]"#, "element 0"),
        (r#"[{"userName": "a", "emailAddresses": [1]}]"#, "element 0"),
        (r#"[{"userName": "a", "fullName": 7}]"#, "element 0"),
        (r#"[{"userName": "a"}, "b"]"#, "element 1"),
        (r#"[{"userName": "a", "userName": "b"}]"#, "element 0"),
    ] {
        let reason = error(json);
        assert!(reason.contains(expected), "{json}: {reason}");
    }
    assert!(error(r#"[{"userName": "a"}, {"userName": ""}]"#).contains("empty"));
    assert!(error(r#"[{"fullName": "x"}]"#).contains("userName"));
}

#[test]
fn anything_but_an_array_is_refused() {
    for json in [
        r#"{"userName": "a"}"#,
        r#""list""#,
        "null",
        "",
        "<html>error</html>",
        r#"[{"userName": "a"}"#,
        r#"[{"userName": "a"}] trailing"#,
    ] {
        let reason = error(json);
        assert!(!reason.is_empty(), "{json}");
    }
    assert!(error(r#"{"userName": "a"}"#).contains("not a JSON array"));
    assert!(error(r#"[{"userName": "a"}"#).contains("EOF"));
    assert!(parse(b"\xff\xfe").is_err());
}

#[test]
fn a_user_with_20000_addresses_is_de_duplicated() {
    // Each address twice, the second time in upper case. The pairwise comparison this
    // replaces took 8 s for this user in a release build (README, HARDENING).
    let addresses: Vec<String> = (0..20_000).map(|i| format!("alias{i}@example.com")).collect();
    let listed: Vec<String> =
        addresses.iter().cloned().chain(addresses.iter().map(|a| a.to_uppercase())).collect();
    let json = serde_json::json!([{"userName": "many", "emailAddresses": listed}]);
    let users = users(&json.to_string());
    assert_eq!(users[0].emails, addresses);
}

#[test]
fn users_beyond_the_listing_budget_end_the_parse() {
    let json: String = format!(
        "[{}]",
        (0..11).map(|i| format!(r#"{{"userName": "u{i}"}}"#)).collect::<Vec<_>>().join(",")
    );
    let limit = |accounts: u64| ReplyLimit { bytes: accounts * ACCOUNT_COST, key: "max_reply_mib" };
    let (users, _) = parse_users(json.as_bytes(), &mut ListingBudget::new(limit(11))).unwrap();
    assert_eq!(users.len(), 11);
    assert_eq!(
        parse_users(json.as_bytes(), &mut ListingBudget::new(limit(10))),
        Err(UsersError::OverBudget)
    );
}

#[test]
fn a_listing_over_the_budget_is_refused_naming_the_key() {
    let body = format!(
        "[{}]",
        (0..1025).map(|i| format!(r#"{{"userName": "u{i}"}}"#)).collect::<Vec<_>>().join(",")
    );
    let server = serve(move |_| Response::json(200, body.clone()));
    let mut config = config(&server);
    config.directory.max_reply_mib = Some(1);
    let err = AppIntDirectory::new(&config).unwrap().list(&mut NoProgress).unwrap_err();
    assert!(matches!(err, DirectoryError::TooMany { key: "max_reply_mib", .. }), "{err:?}");
    assert!(err.to_string().contains("1048576 bytes, counting 1024 bytes per account"), "{err}");
}

#[test]
fn names_listed_twice_apart_from_case_are_all_dropped_whatever_the_order() {
    // Keeping the first would make the listing's order decide whose password a login
    // name stands for.
    for body in [
        &br#"[{"userName": "Kate", "fullName": "First"}, {"userName": "x"}, {"userName": "kate"}, {"userName": "KATE"}]"#[..],
        &br#"[{"userName": "KATE"}, {"userName": "kate"}, {"userName": "x"}, {"userName": "Kate"}]"#[..],
    ] {
        let (users, warnings) = parse(body).unwrap();
        assert_eq!(users.iter().map(|u| u.login_name.as_str()).collect::<Vec<_>>(), ["x"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        for spelling in ["\"Kate\"", "\"kate\"", "\"KATE\"", "differ only in case"] {
            assert!(warnings[0].contains(spelling), "{warnings:?}");
        }
    }
}

#[test]
fn auth_replies() {
    assert_eq!(parse_auth_reply(br#"{"success": true}"#), Ok(true));
    assert_eq!(parse_auth_reply(br#"{"success": false, "message": "wrong password"}"#), Ok(false));
    assert_eq!(parse_auth_reply(br#" {"message": null, "success": true, "x": [1]} "#), Ok(true));
    for body in [
        &br#"{"success": "true"}"#[..],
        br#"{"success": 1}"#,
        br#"{"success": null}"#,
        br#"{"message": "ok"}"#,
        br#"{}"#,
        br#"[true]"#,
        br#"true"#,
        br#"{"success": false, "success": true}"#,
        br#"{"success": true} {"success": true}"#,
        b"OK",
        b"",
    ] {
        assert!(parse_auth_reply(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn skipped_members_do_not_change_the_answer() {
    // Found by the `appint_auth` fuzz target: serde_json skips unknown members without
    // validating them (bytes that are not UTF-8 in a key, a number out of range). That is
    // fine: only `success` decides, and it must still be exactly one boolean.
    assert_eq!(parse_auth_reply(b"{\"a\":{\"\xe2\":[1]},\"success\":true}"), Ok(true));
    assert_eq!(parse_auth_reply(b"{\"a\":{\"\":[1e444444]},\"success\":false}"), Ok(false));
    assert!(parse_auth_reply(b"{\"\xe2\":1,\"success\":\"\xe2\"}").is_err());
    assert!(parse_auth_reply(b"{\"a\":[1e444444],\"success\":1e444444}").is_err());
}

/// A server on 127.0.0.1 answering every request with `answer`; it logs the requests.
fn serve(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> MockServer {
    MockServer::start(Arc::new(answer), None).unwrap()
}

fn config(server: &MockServer) -> Config {
    let mut config = Config::default();
    config.directory.kind = DirectoryKind::ApplicationIntegration;
    config.directory.url = Some(format!("{}/mailstore-integration/index.php", server.url()));
    config.directory.timeout_secs = 10;
    config
}

#[test]
fn lists_over_http_with_basic_authentication() {
    let server = serve(|_| Response::with_content(200, "text/json; charset=utf8", DOCUMENTED));
    let mut config = config(&server);
    config.directory.username = Some("mailstore@example.test".to_string());
    config.directory.password = Some(Zeroizing::new("Passw0rd".to_string()));
    let listing = AppIntDirectory::new(&config).unwrap().list(&mut NoProgress).unwrap();
    assert_eq!(listing.origin, Origin::ApplicationIntegration);
    assert_eq!(listing.users.len(), 2);
    assert!(listing.groups.is_empty());
    let seen = server.requests();
    assert_eq!(seen[0].body, b"cmd=list");
    // The documented header: base64("mailstore@example.test:Passw0rd").
    assert_eq!(
        seen[0].header("authorization"),
        Some("Basic bWFpbHN0b3JlQGV4YW1wbGUudGVzdDpQYXNzdzByZA==")
    );
}

#[test]
fn list_failures() {
    let server = serve(|_| Response::with_content(200, "text/plain", r#"{"error": "no"}"#));
    let err = AppIntDirectory::new(&config(&server)).unwrap().list(&mut NoProgress).unwrap_err();
    assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("list"), "{err}");
    let server = serve(|_| Response::text(403, "[]"));
    let err = AppIntDirectory::new(&config(&server)).unwrap().list(&mut NoProgress).unwrap_err();
    assert!(matches!(err, DirectoryError::HttpStatus { status: 403, .. }), "{err:?}");
}

#[test]
fn password_check_over_http() {
    let server = serve(|request| {
        let body = String::from_utf8_lossy(&request.body).to_string();
        let answer = match body.as_str() {
            "cmd=auth&user=john.doe&pass=S3cr%26t%3D%2B%25%20%00%FF" => r#"{"success": true}"#,
            "cmd=auth&user=john.doe&pass=quoted" => r#"{"success": "quoted"}"#,
            _ => r#"{"success": false, "message": "wrong"}"#,
        };
        Response::json(200, answer)
    });
    let mut directory = AppIntDirectory::new(&config(&server)).unwrap();
    assert_eq!(
        directory.check_password("john.doe", b"S3cr&t=+% \0\xff").unwrap(),
        PasswordCheck::Accepted
    );
    assert_eq!(directory.check_password("john.doe", b"nope").unwrap(), PasswordCheck::Rejected);
    let err = directory.check_password("john.doe", b"quoted").unwrap_err();
    assert!(err.to_string().contains("boolean"), "{err}");
    assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
    assert!(!err.to_string().contains("quoted"), "{err}");
    let asked = server.requests().len();
    assert_eq!(directory.check_password("john.doe", b"").unwrap(), PasswordCheck::NotAsked);
    assert_eq!(directory.check_password("", b"x").unwrap(), PasswordCheck::NotAsked);
    assert_eq!(server.requests().len(), asked, "empty credentials are never sent");
}

#[test]
fn password_check_outage_is_never_a_yes() {
    for response in [
        || Response::text(500, r#"{"success": true}"#),
        || Response::text(302, r#"{"success": true}"#),
        || Response::with_content(200, "text/html", "<html>maintenance</html>"),
    ] {
        let server = serve(move |_| response());
        let err = AppIntDirectory::new(&config(&server))
            .unwrap()
            .check_password("john.doe", b"pw")
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::HttpStatus { .. } | DirectoryError::Malformed { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn username_without_password_is_not_configured() {
    let server = serve(|_| Response::json(200, "[]"));
    let mut config = config(&server);
    config.directory.username = Some("mailstore".to_string());
    assert!(matches!(AppIntDirectory::new(&config), Err(DirectoryError::NotConfigured(_))));
}

#[test]
fn a_reply_parsed_as_it_arrives_is_read_as_the_buffered_one() {
    // The listing is parsed from the connection (parse_users_from); the same bytes given
    // whole (parse_users, the fuzz target's entry) give the same users and warnings,
    // errors included, read through a reader that hands out a few bytes at a time.
    struct Dribble<'a>(&'a [u8]);
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for body in [
        DOCUMENTED,
        r#"[{"userName": "Kate"}, {"userName": "x"}, {"userName": "kate"}]"#,
        r#"[{"userName": "a"}, {"userName": 5}]"#,
        r#"[{"userName": "a"}] trailing"#,
        r#"{"userName": "a"}"#,
        "",
    ] {
        // serde_json places an error a column further on when reading from a reader.
        let without_place = |parsed: Result<_, UsersError>| {
            parsed.map_err(|err| match err {
                UsersError::Malformed(reason) => {
                    UsersError::Malformed(reason.split(" at line").next().unwrap().to_string())
                }
                other => other,
            })
        };
        let whole = without_place(parse_users(body.as_bytes(), &mut ListingBudget::unlimited()));
        let streamed = without_place(parse_users_from(
            Dribble(body.as_bytes()),
            &mut ListingBudget::unlimited(),
        ));
        assert_eq!(streamed, whole, "{body}");
    }
}

#[test]
fn a_valid_listing_over_the_reply_cap_is_too_large_not_malformed() {
    // Parsed as it arrives, the reply is cut at the cap mid-parse: the cap is the error,
    // not the JSON it cut short (within the account budget: 400 users of 1 MiB / 1 KiB).
    let name = "n".repeat(3000);
    let body = format!(
        "[{}]",
        (0..400)
            .map(|i| format!(r#"{{"userName": "u{i}", "fullName": "{name}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let server = serve(move |_| Response::json(200, body.clone()));
    let mut config = config(&server);
    config.directory.max_reply_mib = Some(1);
    let err = AppIntDirectory::new(&config).unwrap().list(&mut NoProgress).unwrap_err();
    assert!(matches!(err, DirectoryError::TooLarge { key: "max_reply_mib", .. }), "{err:?}");
}
