//! The Application Integration client (`docs/protocols/application-integration.md`):
//! `cmd=list` returns every user as one JSON array, `cmd=auth` checks a password.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer};

use super::http::{Credentials, HttpClient};
use super::{
    unique_folded, DirectoryError, DirectoryUser, Listing, ListingBudget, OverBudget,
    PasswordCheck, Progress,
};
use crate::config::{Config, ReplyLimit};
use crate::user::Origin;

/// An Application Integration server, as configured. Made per use.
pub struct AppIntDirectory {
    http: HttpClient,
    server: String,
    reply_limit: ReplyLimit,
}

/// Why a `cmd=list` reply was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersError {
    Malformed(String),
    /// More users than the listing budget allows (see [`ListingBudget`]).
    OverBudget,
}

/// One element of the `cmd=list` array. Only these fields are read; others are skipped
/// without being kept.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "distinguishedName", default)]
    distinguished_name: Option<String>,
    #[serde(rename = "fullName", default)]
    full_name: Option<String>,
    #[serde(rename = "emailAddresses", default)]
    email_addresses: Option<Vec<String>>,
}

impl AppIntDirectory {
    /// Reads what the client needs from `config`; contacts nothing. The Basic credentials
    /// are needed for both calls, so a configured but unreadable password is an error here.
    pub fn new(config: &Config) -> Result<AppIntDirectory, DirectoryError> {
        let directory = &config.directory;
        let url = directory.url.clone().ok_or_else(|| {
            DirectoryError::NotConfigured(
                "directory.url is required for an Application Integration directory".to_string(),
            )
        })?;
        let credentials = match &directory.username {
            None => None,
            Some(username) => {
                let password = config
                    .directory_password()
                    .map_err(|err| DirectoryError::NotConfigured(err.to_string()))?
                    .ok_or_else(|| {
                        DirectoryError::NotConfigured(
                            "directory.username is set, so the server requires authentication: \
                             set directory.password or directory.password_file too"
                                .to_string(),
                        )
                    })?;
                Some(Credentials { username: username.clone(), password })
            }
        };
        let http = HttpClient::new(&url, &url, directory, credentials)?;
        Ok(AppIntDirectory { http, server: url, reply_limit: directory.reply_limit() })
    }

    fn malformed(&self, command: &str, reason: impl Into<String>) -> DirectoryError {
        DirectoryError::Malformed {
            server: self.server.clone(),
            command: command.to_string(),
            reason: reason.into(),
        }
    }
}

impl super::Directory for AppIntDirectory {
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        let command = "list";
        let body = self.http.post_form(command, &[("cmd", b"list")])?;
        let mut budget = ListingBudget::new(self.reply_limit);
        let (users, warnings) = parse_users(&body, &mut budget).map_err(|err| match err {
            UsersError::Malformed(reason) => self.malformed(command, reason),
            UsersError::OverBudget => budget.error(&self.server, command),
        })?;
        drop(body);
        progress.step("accounts", u64::try_from(users.len()).unwrap_or(u64::MAX), None);
        Ok(Listing { origin: Origin::ApplicationIntegration, users, groups: Vec::new(), warnings })
    }

    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        // Never ask about an empty password: a server that treats it as an anonymous
        // login must not let anyone in.
        if login.is_empty() || password.is_empty() {
            return Ok(PasswordCheck::NotAsked);
        }
        let command = "auth";
        self.http.expect_answers();
        let body = self.http.post_form(
            command,
            &[("cmd", b"auth"), ("user", login.as_bytes()), ("pass", password)],
        )?;
        match parse_auth_reply(&body) {
            Ok(true) => Ok(PasswordCheck::Accepted),
            Ok(false) => Ok(PasswordCheck::Rejected),
            Err(reason) => Err(self.malformed(command, reason)),
        }
    }

    fn server(&self) -> &str {
        &self.server
    }
}

/// Parses a `cmd=list` reply into users (names listed twice apart from case dropped, every
/// spelling) and warnings, each
/// user charged to `budget` as it is read. Streams from the byte buffer into the typed
/// [`Entry`]: no tree of every user, and unknown members are skipped without being kept.
pub fn parse_users(
    body: &[u8],
    budget: &mut ListingBudget,
) -> Result<(Vec<DirectoryUser>, Vec<String>), UsersError> {
    let element = Cell::new(None);
    let over_budget = Cell::new(false);
    let mut warnings = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let seed =
        UsersSeed { element: &element, over_budget: &over_budget, budget, warnings: &mut warnings };
    let parsed = seed.deserialize(&mut deserializer).and_then(|users| {
        deserializer.end()?;
        Ok(users)
    });
    match parsed {
        Ok(users) => Ok((users, warnings)),
        Err(_) if over_budget.get() => Err(UsersError::OverBudget),
        Err(err) => Err(UsersError::Malformed(match element.get() {
            Some(index) => format!("element {index} of the user array: {err}"),
            None => format!("not a JSON array of user objects: {err}"),
        })),
    }
}

struct UsersSeed<'a> {
    /// The index of the element being read, for the error message.
    element: &'a Cell<Option<usize>>,
    /// Set when the budget ran out, which ends the parse with an error.
    over_budget: &'a Cell<bool>,
    budget: &'a mut ListingBudget,
    warnings: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for UsersSeed<'_> {
    type Value = Vec<DirectoryUser>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for UsersSeed<'_> {
    type Value = Vec<DirectoryUser>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of user objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut users: Vec<DirectoryUser> = Vec::new();
        // Lower-cased userName → every spelling seen.
        let mut spellings: HashMap<String, Vec<String>> = HashMap::new();
        let mut index = 0_usize;
        loop {
            self.element.set(Some(index));
            let Some(entry) = seq.next_element::<Entry>()? else { break };
            if self.budget.accounts(1) == Err(OverBudget) {
                self.over_budget.set(true);
                return Err(de::Error::custom("over the listing budget"));
            }
            if entry.user_name.trim().is_empty() {
                return Err(de::Error::custom("userName is empty"));
            }
            let key = entry.user_name.to_lowercase();
            let seen = spellings.entry(key.clone()).or_default();
            seen.push(entry.user_name.clone());
            if seen.len() > 1 {
                index += 1;
                continue;
            }
            let emails = unique_folded(
                entry
                    .email_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(|address| address.trim().to_string())
                    .filter(|address| !address.is_empty()),
            );
            users.push(DirectoryUser {
                identity: format!("application-integration:{key}"),
                login_name: entry.user_name,
                full_name: entry.full_name.unwrap_or_default(),
                emails,
                enabled: true,
                groups: Vec::new(),
                distinguished_name: entry.distinguished_name.filter(|dn| !dn.is_empty()),
            });
            index += 1;
        }
        self.element.set(None);
        Ok(without_case_twins(users, &spellings, self.warnings))
    }
}

/// Drops every user whose name the listing holds more than once apart from case, with a
/// warning naming the spellings. Keeping one of them would let the listing's order decide
/// which directory account a login name (and its uid) stands for; two hosts listing in
/// different orders would check different accounts' passwords for the same person.
fn without_case_twins(
    users: Vec<DirectoryUser>,
    spellings: &HashMap<String, Vec<String>>,
    warnings: &mut Vec<String>,
) -> Vec<DirectoryUser> {
    let twins = |user: &DirectoryUser| {
        user.identity
            .strip_prefix("application-integration:")
            .and_then(|key| spellings.get(key))
            .filter(|names| names.len() > 1)
    };
    let mut kept = Vec::with_capacity(users.len());
    for user in users {
        match twins(&user) {
            Some(names) => warnings.push(format!(
                "users {names:?} differ only in case; none of them is synced until the \
                 directory lists one"
            )),
            None => kept.push(user),
        }
    }
    kept
}

/// `Ok(success)` only for a JSON object with exactly one boolean `success`. A string
/// `"true"`, an array, a missing or repeated key are all errors: anything that is not a
/// clear answer is an outage, never a yes.
pub fn parse_auth_reply(body: &[u8]) -> Result<bool, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let success = deserializer
        .deserialize_map(AuthReplyVisitor)
        .and_then(|success| {
            deserializer.end()?;
            Ok(success)
        })
        // serde's own message quotes the offending value, which a broken server might have
        // filled with the submitted password: say only what kind of problem, and where.
        .map_err(|err| {
            format!(
                "not a JSON object with exactly one boolean \"success\" ({:?} problem at line \
                 {}, column {})",
                err.classify(),
                err.line(),
                err.column()
            )
        })?;
    success.ok_or_else(|| "the JSON object has no \"success\" member".to_string())
}

struct AuthReplyVisitor;

impl<'de> de::Visitor<'de> for AuthReplyVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a boolean \"success\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut success = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "success" {
                if success.is_some() {
                    return Err(de::Error::custom("\"success\" appears twice"));
                }
                success = Some(map.next_value::<bool>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(success)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use zeroize::Zeroizing;

    use super::*;
    use crate::config::DirectoryKind;
    use crate::directory::test_server::{Request, Response, TestServer};
    use crate::directory::ACCOUNT_COST;
    use crate::directory::{Directory, NoProgress};

    const DOCUMENTED: &str = r#"[
  {"userName": "john.doe",
   "distinguishedName": "UID=john.doe,DC=example,DC=com",
   "fullName": "John Doe",
   "emailAddresses": ["john.doe@example.com", "jd@example.com"]},
  {"userName": "jane.roe"}
]"#;

    fn parse(json: &[u8]) -> Result<(Vec<DirectoryUser>, Vec<String>), UsersError> {
        parse_users(json, &mut ListingBudget::unlimited())
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
                    groups: Vec::new(),
                    distinguished_name: Some("UID=john.doe,DC=example,DC=com".to_string()),
                },
                DirectoryUser {
                    login_name: "jane.roe".to_string(),
                    identity: "application-integration:jane.roe".to_string(),
                    full_name: String::new(),
                    emails: Vec::new(),
                    enabled: true,
                    groups: Vec::new(),
                    distinguished_name: None,
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
        let limit =
            |accounts: u64| ReplyLimit { bytes: accounts * ACCOUNT_COST, key: "max_reply_mib" };
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
        let (server, _) = serve(move |_| Response::ok("application/json", body.clone()));
        let mut config = config(&server);
        config.directory.max_reply_mib = Some(1);
        let err = AppIntDirectory::new(&config).unwrap().list(&mut NoProgress).unwrap_err();
        assert!(matches!(err, DirectoryError::TooMany { key: "max_reply_mib", .. }), "{err:?}");
        assert!(
            err.to_string().contains("1048576 bytes, counting 1024 bytes per account"),
            "{err}"
        );
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
        assert_eq!(
            parse_auth_reply(br#"{"success": false, "message": "wrong password"}"#),
            Ok(false)
        );
        assert_eq!(
            parse_auth_reply(br#" {"message": null, "success": true, "x": [1]} "#),
            Ok(true)
        );
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

    fn serve(
        answer: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> (TestServer, Arc<Mutex<Vec<Request>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let server = TestServer::start(move |request| {
            record.lock().unwrap().push(request.clone());
            answer(request)
        });
        (server, seen)
    }

    fn config(server: &TestServer) -> Config {
        let mut config = Config::default();
        config.directory.kind = DirectoryKind::ApplicationIntegration;
        config.directory.url = Some(server.url("/mailstore-integration/index.php"));
        config.directory.timeout_secs = 10;
        config
    }

    #[test]
    fn lists_over_http_with_basic_authentication() {
        let (server, seen) = serve(|_| Response::ok("text/json; charset=utf8", DOCUMENTED));
        let mut config = config(&server);
        config.directory.username = Some("mailstore@example.test".to_string());
        config.directory.password = Some(Zeroizing::new("Passw0rd".to_string()));
        let listing = AppIntDirectory::new(&config).unwrap().list(&mut NoProgress).unwrap();
        assert_eq!(listing.origin, Origin::ApplicationIntegration);
        assert_eq!(listing.users.len(), 2);
        assert!(listing.groups.is_empty());
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].body, b"cmd=list");
        // The documented header: base64("mailstore@example.test:Passw0rd").
        assert_eq!(
            seen[0].header("authorization"),
            Some("Basic bWFpbHN0b3JlQGV4YW1wbGUudGVzdDpQYXNzdzByZA==")
        );
    }

    #[test]
    fn list_failures() {
        let (server, _) = serve(|_| Response::ok("text/plain", r#"{"error": "no"}"#));
        let err =
            AppIntDirectory::new(&config(&server)).unwrap().list(&mut NoProgress).unwrap_err();
        assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("list"), "{err}");
        let (server, _) = serve(|_| Response::status(403, "[]"));
        let err =
            AppIntDirectory::new(&config(&server)).unwrap().list(&mut NoProgress).unwrap_err();
        assert!(matches!(err, DirectoryError::HttpStatus { status: 403, .. }), "{err:?}");
    }

    #[test]
    fn password_check_over_http() {
        let (server, seen) = serve(|request| {
            let body = String::from_utf8_lossy(&request.body).to_string();
            let answer = match body.as_str() {
                "cmd=auth&user=john.doe&pass=S3cr%26t%3D%2B%25%20%00%FF" => r#"{"success": true}"#,
                "cmd=auth&user=john.doe&pass=quoted" => r#"{"success": "quoted"}"#,
                _ => r#"{"success": false, "message": "wrong"}"#,
            };
            Response::ok("application/json", answer)
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
        let asked = seen.lock().unwrap().len();
        assert_eq!(directory.check_password("john.doe", b"").unwrap(), PasswordCheck::NotAsked);
        assert_eq!(directory.check_password("", b"x").unwrap(), PasswordCheck::NotAsked);
        assert_eq!(seen.lock().unwrap().len(), asked, "empty credentials are never sent");
    }

    #[test]
    fn password_check_outage_is_never_a_yes() {
        for response in [
            || Response::status(500, r#"{"success": true}"#),
            || Response::status(302, r#"{"success": true}"#),
            || Response::ok("text/html", "<html>maintenance</html>"),
        ] {
            let (server, _) = serve(move |_| response());
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
        let (server, _) = serve(|_| Response::ok("application/json", "[]"));
        let mut config = config(&server);
        config.directory.username = Some("mailstore".to_string());
        assert!(matches!(AppIntDirectory::new(&config), Err(DirectoryError::NotConfigured(_))));
    }
}
