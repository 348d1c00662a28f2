//! The session against the mock server: administrator logins and their failures, one
//! retry after a session error, paging that cannot be trusted, logout, and the check of a
//! user's own password.

use mock_directory::icewarp::result_xml;
use mock_directory::{IcewarpData, IcewarpServer, Response};

use super::*;
use crate::directory::icewarp::tests::{
    config, error, example, list, logins, ok, requests, serve, tag,
};
use crate::directory::icewarp::IcewarpDirectory;
use crate::directory::{Directory, NoProgress};

/// A reply the mock server sends as it is, whatever the request.
fn xml(body: String) -> Response {
    Response::with_content(200, "application/xml", body)
}

#[test]
fn a_session_error_means_one_new_login_and_one_retry() {
    let iw = serve(example().expire_session_after(0));
    let listing = list(&config(&iw)).unwrap();
    assert_eq!(listing.users.len(), 6);
    assert_eq!(logins(&iw), 2);

    for uid in ["session_invalid", "session_invalid_id", "session_expired", "session_no_user"] {
        let iw = serve(example());
        // Requests 0 and 2 are the logins, 1 and 3 the first command of each session.
        for index in [1, 3] {
            iw.server.on_nth(index, xml(error(uid)));
        }
        match list(&config(&iw)).unwrap_err() {
            DirectoryError::Api { uid: have, command, .. } => {
                assert_eq!(have, uid);
                assert_eq!(command, "getdomainsinfolist");
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert_eq!(logins(&iw), 2);
    }
}

#[test]
fn check_admin_login_logs_in_and_out_and_nothing_else() {
    let iw = serve(example());
    let mut directory = IcewarpDirectory::new(&config(&iw)).unwrap();
    assert_eq!(directory.check_admin_login().unwrap(), Vec::<String>::new());
    assert_eq!(iw.mock.command_names(), ["authenticate", "logout"]);

    let iw = serve(example().reply("logout", error("session_invalid")));
    let mut directory = IcewarpDirectory::new(&config(&iw)).unwrap();
    let warnings = directory.check_admin_login().unwrap();
    assert!(warnings[0].contains("logout"), "{warnings:?}");

    let mut data = example();
    data.admin_password = "something else".to_string();
    let iw = serve(data);
    let mut directory = IcewarpDirectory::new(&config(&iw)).unwrap();
    let err = directory.check_admin_login().unwrap_err();
    assert!(matches!(err, DirectoryError::AdminLogin { .. }), "{err:?}");
}

#[test]
fn administrator_login_failures() {
    let mut data = example();
    data.admin_password = "something else".to_string();
    let iw = serve(data);
    let err = list(&config(&iw)).unwrap_err();
    assert!(matches!(err, DirectoryError::AdminLogin { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("auth_login_invalid"), "{message}");
    assert!(!message.contains("admin & <pass>"), "{message}");

    let iw = serve(example().reply("authenticate", result_xml(Some("SID1"), "<result>0</result>")));
    assert!(matches!(list(&config(&iw)), Err(DirectoryError::AdminLogin { .. })));

    let iw = serve(example().reply(
        "authenticate",
        "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>1</result></query></iq>",
    ));
    let err = list(&config(&iw)).unwrap_err();
    assert!(err.to_string().contains("no sid"), "{err}");

    let iw = serve(example());
    let mut config = config(&iw);
    config.directory.password = None;
    assert!(matches!(list(&config), Err(DirectoryError::NotConfigured(_))));
    config.directory.username = None;
    assert!(matches!(list(&config), Err(DirectoryError::NotConfigured(_))));
    assert!(iw.server.requests().is_empty());
}

#[test]
fn paging_trouble_is_malformed_not_an_endless_loop() {
    for reply in [
        // Claims more, delivers nothing.
        "<result><offset>0</offset><overallcount>5</overallcount></result>",
        // No overallcount: cannot tell whether the list is complete.
        "<result><item><name>example.com</name><domaintype>0</domaintype></item></result>",
        // Garbage count.
        "<result><offset>0</offset><overallcount>many</overallcount></result>",
        // The wrong page.
        "<result><item><name>example.com</name></item><offset>7</offset><overallcount>9</overallcount></result>",
    ] {
        let iw = serve(example().reply("getdomainsinfolist", ok(reply)));
        let err = list(&config(&iw)).unwrap_err();
        assert!(matches!(err, DirectoryError::Malformed { .. }), "{reply}: {err:?}");
    }
}

#[test]
fn logout_failure_is_only_a_warning() {
    let iw = serve(example().reply("logout", error("session_invalid")));
    let listing = list(&config(&iw)).unwrap();
    assert!(
        listing.warnings.iter().any(|warning| warning.contains("logout")),
        "{:?}",
        listing.warnings
    );
}

/// Checks `login`'s password against a server serving `data`, with a configuration that
/// has no administrator: a password check needs none.
fn check(
    data: IcewarpData,
    login: &str,
    password: &[u8],
) -> (Result<PasswordCheck, DirectoryError>, IcewarpServer) {
    let iw = serve(data);
    let mut config = config(&iw);
    config.directory.username = None;
    config.directory.password = None;
    let result = IcewarpDirectory::new(&config).unwrap().check_password(login, password);
    (result, iw)
}

fn answering(command: &str, reply: String) -> IcewarpData {
    example().reply(command, reply)
}

#[test]
fn a_login_client_never_reads_the_administrator_password() {
    let token = ok("<result><authtoken>2FD16498F17BAF4688028BD198537CED</authtoken></result>");
    let iw = serve(answering("getauthtoken", token));
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&iw);
    config.directory.password = None;
    config.directory.password_file = Some(dir.path().join("missing.secret"));

    // The full client reads it (and here records why it could not).
    let full = IcewarpDirectory::new(&config).unwrap();
    assert!(matches!(&full.session.admin, Admin::Missing(why) if why.contains("missing.secret")));

    let mut login = IcewarpDirectory::for_login(&config).unwrap();
    assert!(matches!(&login.session.admin, Admin::Missing(why) if why.contains("not read")));
    let answer = login.check_password("alice@example.com", b"pw").unwrap();
    assert_eq!(answer, PasswordCheck::Accepted);
    match login.list(&mut NoProgress) {
        Err(DirectoryError::NotConfigured(why)) => {
            assert!(why.contains("not read for a password check"), "{why}")
        }
        other => panic!("expected NotConfigured, got {other:?}"),
    }
    assert_eq!(iw.mock.command_names(), ["getauthtoken"], "no administrator session");
}

#[test]
fn password_check_needs_a_non_empty_token() {
    let token = ok("<result><email>alice@example.com</email><authtoken>2FD16498F17BAF4688028BD198537CED</authtoken></result>");
    let password = "p<&>\"' ]]>ä";
    let (result, iw) =
        check(answering("getauthtoken", token), "alice@example.com", password.as_bytes());
    assert_eq!(result.unwrap(), PasswordCheck::Accepted);
    let requests = requests(&iw);
    assert_eq!(requests.len(), 1);
    let body = &requests[0].1;
    assert!(body.starts_with("<iq><query"), "no sid: {body}");
    assert_eq!(iw.mock.received_passwords(), [password]);
    assert_eq!(tag(body, "email"), Some("alice@example.com"));

    for reply in [
        ok("<result><email>alice@example.com</email><authtoken></authtoken></result>"),
        ok("<result><email>alice@example.com</email><authtoken>  </authtoken></result>"),
        ok("<result><authtoken/></result>"),
        ok("<result>1</result>"),
        ok(""),
        "<iq type=\"result\"><query xmlns=\"other\"><result><authtoken>X</authtoken></result></query></iq>".to_string(),
        "<iq type=\"ok\"><query xmlns=\"admin:iq:rpc\"><result><authtoken>X</authtoken></result></query></iq>".to_string(),
        "garbage".to_string(),
    ] {
        let (result, _) = check(answering("getauthtoken", reply.clone()), "alice@example.com", b"pw");
        let err = result.unwrap_err();
        assert!(matches!(err, DirectoryError::Malformed { .. }), "{reply}: {err:?}");
    }
}

#[test]
fn password_check_error_uids() {
    for (uid, expected) in [
        ("auth_login_invalid", PasswordCheck::Rejected),
        ("account_disabled_2", PasswordCheck::AccountDisabled),
        ("auth_two_factor_required", PasswordCheck::SecondFactorRequired),
    ] {
        let (result, _) = check(answering("getauthtoken", error(uid)), "alice@example.com", b"pw");
        assert_eq!(result.unwrap(), expected, "{uid}");
    }
    let (result, _) =
        check(answering("getauthtoken", error("license_evaluation")), "a@example.com", b"pw");
    match result.unwrap_err() {
        DirectoryError::Api { uid, command, .. } => {
            assert_eq!(uid, "license_evaluation");
            assert_eq!(command, "getauthtoken");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn password_check_falls_back_to_authenticate_on_old_servers() {
    let mut data = answering("getauthtoken", error("invoker_commandname_invalid"));
    data.account_mut("alice@example.com").unwrap().password = "user pw".to_string();
    let (result, iw) = check(data, "alice@example.com", b"user pw");
    assert_eq!(result.unwrap(), PasswordCheck::Accepted);
    let requests = requests(&iw);
    let commands: Vec<&str> = requests.iter().map(|(command, _)| command.as_str()).collect();
    assert_eq!(commands, ["getauthtoken", "authenticate", "logout"]);

    let (result, _) = check(
        answering("getauthtoken", error("invoker_commandname_invalid")),
        "alice@example.com",
        b"wrong",
    );
    assert_eq!(result.unwrap(), PasswordCheck::Rejected);

    let data = answering("getauthtoken", error("invoker_commandname_invalid"))
        .reply("authenticate", ok("<result>1</result>"));
    let (result, _) = check(data, "alice@example.com", b"pw");
    assert!(matches!(result, Err(DirectoryError::Malformed { .. })), "{result:?}");

    let data = answering("getauthtoken", error("invoker_commandname_invalid"))
        .reply("authenticate", result_xml(Some("SID9"), "<result>0</result>"));
    let (result, _) = check(data, "alice@example.com", b"pw");
    assert_eq!(result.unwrap(), PasswordCheck::Rejected);
}

#[test]
fn passwords_that_cannot_be_anyones_are_rejected_without_asking() {
    for password in [&b""[..], b"\xff\xfe", b"nul\0"] {
        let (result, iw) = check(example(), "alice@example.com", password);
        assert_eq!(result.unwrap(), PasswordCheck::NotAsked, "{password:?}");
        assert!(iw.server.requests().is_empty());
    }
    let (result, iw) = check(example(), "", b"pw");
    assert_eq!(result.unwrap(), PasswordCheck::NotAsked);
    assert!(iw.server.requests().is_empty());
}

#[test]
fn password_check_outage_is_an_error() {
    let iw = serve(example());
    iw.server.set_override(Response::text(500, "down"));
    let mut config = Config::default();
    config.directory.server = Some(iw.url());
    let err = IcewarpDirectory::new(&config)
        .unwrap()
        .check_password("alice@example.com", b"pw")
        .unwrap_err();
    assert!(matches!(err, DirectoryError::HttpStatus { status: 500, .. }), "{err:?}");
    assert!(!err.is_unreachable(), "an HTTP error is an answer, not an outage");
}
