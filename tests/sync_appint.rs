//! `dircache-sync sync` against the mock Application Integration server, through the real
//! binary: HTTPS, Basic authentication, the JSON variants of the protocol document, faults
//! (each leaving the cache byte-identical) and the sync semantics.

mod testbed;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use mock_directory::{Action, AppIntData, AppIntServer, AppIntUser, Fault, Response, TlsIdentity};
use serde_json::{json, Value};
use testbed::{
    assert_same_snapshot, names, one_failure_line, set, snapshot, stdout_json, strings, text, Env,
    SyncCli,
};

const BASIC_USER: &str = "archive-sync";
const BASIC_PASSWORD: &str = "basic-s3cret&=+";

/// The `[directory]` section for a mock at `url`: `credentials` as (user, password), and
/// more keys.
fn appint_config(url: &str, credentials: Option<(&str, &str)>, more: &str) -> String {
    let credentials = match credentials {
        Some((user, password)) => format!("username = {user:?}\npassword = {password:?}\n"),
        None => String::new(),
    };
    let timeout = if more.contains("timeout_secs") { "" } else { "timeout_secs = 5\n" };
    format!(
        "\n[directory]\ntype = \"application-integration\"\nurl = {url:?}\n{credentials}{timeout}{more}"
    )
}

fn env_for(server: &AppIntServer, more: &str) -> Env {
    Env::with_extra_config(&appint_config(&server.url(), None, more))
}

const CLI: SyncCli = SyncCli { secret: BASIC_PASSWORD };

#[test]
fn https_sync_with_basic_auth_creates_users_with_their_attributes() {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let data = AppIntData::demo().basic_auth(BASIC_USER, BASIC_PASSWORD);
    let server = AppIntServer::start(data, Some(identity.clone())).unwrap();
    let env = Env::new();
    let ca = env.dir.path().join("mock-ca.pem");
    identity.write_cert_pem(&ca).unwrap();
    env.rewrite_extra_config(&appint_config(
        &server.url(),
        Some((BASIC_USER, BASIC_PASSWORD)),
        &format!("ca_file = {ca:?}\n"),
    ));

    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["dry_run"], json!(false));
    assert_eq!(set(&report["created"]), names(&["alice", "bob"]));
    let alice = CLI.show(&env, "alice");
    assert_eq!(alice["auth"], "directory");
    assert_eq!(alice["origin"], "application-integration");
    assert_eq!(alice["full_name"], "Alice Liddell");
    assert_eq!(strings(&alice["emails"]), ["alice@example.com", "al@example.com"]);
    assert_eq!(alice["distinguished_name"], "UID=alice,DC=example,DC=com");
    assert_eq!(alice["enabled"], json!(true));
    assert_eq!(alice["groups"], json!([]));
    assert_eq!(set(&alice["privileges"]), names(&["login", "read_own_archive"]));

    // One list request, over TLS, with the Basic credentials, as a form.
    let requests = server.mock.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].param("cmd"), Some("list"));
    assert_eq!(requests[0].basic_auth, Some((BASIC_USER.to_string(), BASIC_PASSWORD.to_string())));
    assert!(server.server.requests().iter().all(|r| r.tls));

    // Not trusted without ca_file: a TLS error, nothing written.
    server.mock.update(|d| d.users.push(AppIntUser::new("carol", "carol-password")));
    let before = snapshot(&env.cache_dir());
    env.rewrite_extra_config(&appint_config(&server.url(), Some((BASIC_USER, BASIC_PASSWORD)), ""));
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("TLS") && line.contains(&server.url()), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "untrusted certificate");

    env.rewrite_extra_config(&appint_config(
        &server.url(),
        Some((BASIC_USER, BASIC_PASSWORD)),
        "ignore_ssl_warnings = true\n",
    ));
    assert_eq!(strings(&CLI.sync_ok(&env, &[])["created"]), ["carol"]);
}

#[test]
fn missing_or_wrong_basic_credentials_are_an_http_401() {
    let data = AppIntData::demo().basic_auth(BASIC_USER, BASIC_PASSWORD);
    let server = AppIntServer::start(data, None).unwrap();
    let env = Env::new();
    for credentials in
        [None, Some((BASIC_USER, "not-the-password")), Some(("someone", BASIC_PASSWORD))]
    {
        env.rewrite_extra_config(&appint_config(&server.url(), credentials, ""));
        let line = one_failure_line(&CLI.run(&env, &["sync"]));
        assert!(
            line.contains("HTTP status 401") && line.contains("list"),
            "{credentials:?}: {line}"
        );
        assert!(!env.cache_dir().join("current").exists(), "{credentials:?}");
    }
    assert!(server.mock.requests().iter().all(|r| r.status == 401));

    env.rewrite_extra_config(&appint_config(&server.url(), Some((BASIC_USER, BASIC_PASSWORD)), ""));
    assert_eq!(set(&CLI.sync_ok(&env, &[])["created"]), names(&["alice", "bob"]));
}

#[test]
fn any_json_content_type_is_accepted() {
    for content_type in ["text/json; charset=utf8", "application/json", "text/plain"] {
        let server =
            AppIntServer::start(AppIntData::demo().content_type(content_type), None).unwrap();
        let env = env_for(&server, "");
        let report = CLI.sync_ok(&env, &[]);
        assert_eq!(set(&report["created"]), names(&["alice", "bob"]), "{content_type}");
    }
}

#[test]
fn null_and_missing_fields_and_unknown_ones() {
    let data = AppIntData::new()
        .user(AppIntUser::new("nully", "x").nulls())
        .user(AppIntUser::new("bare", "y"))
        .user(
            AppIntUser::new("extra", "z")
                .full_name("Extra Fields")
                .extra("department", json!({"name": "Sales", "floor": 3}))
                .extra("active", json!(true)),
        );
    let server = AppIntServer::start(data, None).unwrap();
    let env = env_for(&server, "");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(set(&report["created"]), names(&["nully", "bare", "extra"]));
    for name in ["nully", "bare"] {
        let user = CLI.show(&env, name);
        assert_eq!(user["full_name"], "", "{name}");
        assert_eq!(user["emails"], json!([]), "{name}");
        assert!(user.get("distinguished_name").is_none_or(Value::is_null), "{name}: {user}");
    }
    assert_eq!(CLI.show(&env, "extra")["full_name"], "Extra Fields");
}

#[test]
fn names_listed_twice_apart_from_case_are_not_synced_with_a_warning() {
    let data = AppIntData::new()
        .user(AppIntUser::new("John.Doe", "a").full_name("First John"))
        .user(AppIntUser::new("john.doe", "b").full_name("Second John"))
        .user(AppIntUser::new("jane", "c"));
    let server = AppIntServer::start(data, None).unwrap();
    let env = env_for(&server, "");
    let report = CLI.sync_ok(&env, &[]);
    // Which of the two a login name would stand for must not depend on the listing order.
    assert_eq!(set(&report["created"]), names(&["jane"]));
    let warnings = strings(&report["warnings"]).join("\n");
    assert!(warnings.contains("\"john.doe\"") && warnings.contains("\"John.Doe\""), "{warnings}");
    assert!(warnings.contains("differ only in case"), "{warnings}");
    assert_eq!(CLI.user_names(&env), names(&["jane"]));
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every fault with a seeded cache and a change waiting: a clear error naming the server
/// and the command, and the cache byte-identical afterwards.
#[test]
fn faults_fail_with_a_clear_error_and_leave_the_cache_alone() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = env_for(&server, "timeout_secs = 1\n");
    CLI.sync_ok(&env, &[]);
    server.mock.update(|d| d.users.push(AppIntUser::new("carol", "carol-password")));
    let before = snapshot(&env.cache_dir());

    let json_body = |body: &str| Response::with_content(200, "text/json", body.to_string());
    let faults: Vec<(&str, Action, &[&str])> = vec![
        (
            "HTTP 500",
            Response::html(500, "<html>Internal Server Error</html>").into(),
            &["HTTP status 500"],
        ),
        (
            "HTML page with 200",
            Response::html(200, "<html><body>It works!</body></html>").into(),
            &["malformed"],
        ),
        ("malformed JSON", json_body("[{\"userName\": \"alice\",}]").into(), &["malformed"]),
        ("truncated JSON", Fault::TruncateBody { send: 30 }.into(), &["body"]),
        (
            "JSON ending early in a complete HTTP reply",
            json_body("[{\"userName\": \"alice\"}, {\"userName\": \"b").into(),
            &["malformed"],
        ),
        ("non-array JSON", json_body("{\"users\": []}").into(), &["malformed", "array"]),
        ("a string instead of users", json_body("[\"alice\", \"bob\"]").into(), &["malformed"]),
        (
            "missing userName",
            json_body("[{\"userName\": \"alice\"}, {\"fullName\": \"Nobody\"}]").into(),
            &["userName", "element 1"],
        ),
        ("empty userName", json_body("[{\"userName\": \"\"}]").into(), &["userName"]),
        ("no answer at all", Fault::CloseWithoutResponse.into(), &["closed"]),
        ("timeout", Fault::Delay(Duration::from_secs(3)).into(), &["no answer within 1 s"]),
    ];
    for (what, action, expected) in faults {
        server.server.set_override(action);
        let line = one_failure_line(&CLI.run(&env, &["sync"]));
        server.server.clear_plan();
        assert!(line.contains(&server.url()) && line.contains(": list: "), "{what}: {line}");
        CLI.assert_failed_cleanly(&env, &line, &before, what, expected);
    }

    // Connection refused.
    let url = format!("http://127.0.0.1:{}/mailstore-integration/index.php", closed_port());
    env.rewrite_extra_config(&appint_config(&url, None, ""));
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains(&url) && line.contains("cannot connect"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "connection refused");

    // Without faults the waiting change goes through.
    env.rewrite_extra_config(&appint_config(&server.url(), None, ""));
    assert_eq!(strings(&CLI.sync_ok(&env, &[])["created"]), ["carol"]);
    let status = stdout_json(&CLI.run(&env, &["status", "--json"]));
    assert_eq!(status["result"], "success");
    assert_eq!(status["created"], json!(1));
    assert_eq!(status["error"], Value::Null);
}

#[test]
fn replies_over_max_reply_bytes_are_refused() {
    let server = AppIntServer::start(AppIntData::generated(50), None).unwrap();
    let env = env_for(&server, "max_reply_bytes = 2000\n");
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("max_reply_bytes") && line.contains("2000"), "{line}");
    assert!(!env.cache_dir().join("current").exists());
    env.rewrite_extra_config(&appint_config(&server.url(), None, "max_reply_bytes = 200000\n"));
    assert_eq!(CLI.sync_ok(&env, &[])["created"].as_array().unwrap().len(), 50);
}

#[test]
fn an_empty_listing_is_refused_unless_forced() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = env_for(&server, "\n[sync]\ndelete_missing_users = true\nmax_delete_percent = 100\n");
    CLI.sync_ok(&env, &[]);
    server.mock.update(|d| d.users.clear());
    let before = snapshot(&env.cache_dir());
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("--force"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "empty listing");

    let report = CLI.sync_ok(&env, &["--force"]);
    assert_eq!(set(&report["deleted"]), names(&["alice", "bob"]));
    assert!(CLI.user_names(&env).is_empty());
}

#[test]
fn updates_deletes_and_unchanged_runs() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = env_for(&server, "\n[sync]\ndelete_missing_users = true\nmax_delete_percent = 50\n");
    CLI.sync_ok(&env, &[]);
    let bob_uid = CLI.show(&env, "bob")["uid"].clone();

    // Nothing changed: nothing written.
    let before = snapshot(&env.cache_dir());
    std::thread::sleep(Duration::from_millis(20));
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["generation"], Value::Null);
    assert_eq!(report["unchanged"], json!(2));
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "unchanged");

    // alice leaves, bob changes.
    server.mock.update(|d| {
        d.users.retain(|u| u.user_name != "alice");
        d.users[0] = AppIntUser::new("bob", "bob-password")
            .full_name("Robert Builder")
            .emails(&["robert@example.com", "bob@example.com"]);
    });
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["deleted"]), ["alice"]);
    assert_eq!(strings(&report["updated"]), ["bob"]);
    let bob = CLI.show(&env, "bob");
    assert_eq!(bob["full_name"], "Robert Builder");
    assert_eq!(strings(&bob["emails"]), ["robert@example.com", "bob@example.com"]);
    assert_eq!(bob["uid"], bob_uid);
    assert_eq!(CLI.user_names(&env), names(&["bob"]));
}

/// Text the directory sends reaches a terminal only escaped: `user list` and `user show`
/// print no escape sequence and no forged line.
#[test]
fn directory_text_reaches_the_terminal_escaped() {
    let hostile = "Eve\u{1b}[31mRED\u{1b}]0;pwned\u{7}\nforged: line";
    let data = AppIntData::new().user(AppIntUser::new("eve", "x").full_name(hostile));
    let server = AppIntServer::start(data, None).unwrap();
    let env = env_for(&server, "");
    CLI.sync_ok(&env, &[]);
    assert_eq!(CLI.show(&env, "eve")["full_name"], hostile, "JSON keeps the text, escaped by JSON");
    for args in [&["user", "list"][..], &["user", "show", "eve"]] {
        let out = CLI.run(&env, args);
        assert!(out.status.success(), "{}", text(&out));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(!printed.contains('\u{1b}') && !printed.contains('\u{7}'), "{printed:?}");
        assert!(!printed.lines().any(|line| line.starts_with("forged")), "{printed}");
        assert!(printed.contains("Eve\\u{1b}[31mRED"), "{printed}");
    }
}

/// A status file that cannot be written neither swallows the JSON report nor hides the
/// sync's own error.
#[test]
fn an_unwritable_status_file_keeps_the_report_and_the_real_error() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let env = Env::with_extra_config(&appint_config(&url, None, ""));
    // A directory where the status file goes: it cannot be replaced.
    std::fs::create_dir_all(env.cache_dir().join("status.json/inside")).unwrap();
    let out = CLI.run(&env, &["sync", "--json"]);
    let line = one_failure_line(&out);
    assert!(line.contains("127.0.0.1"), "the directory error comes first: {line}");
    assert!(line.contains("status file could not be written"), "{line}");
    let report = stdout_json(&out);
    assert!(strings(&report["errors"])[0].contains("127.0.0.1"), "{report}");
}

/// A user the directory lists is not deleted by hand without --force: the next sync would
/// only create it again under a new uid.
#[test]
fn deleting_a_directory_user_needs_force() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = env_for(&server, "");
    CLI.sync_ok(&env, &[]);
    let line = one_failure_line(&CLI.run(&env, &["user", "delete", "alice"]));
    assert!(line.contains("came from the directory") && line.contains("--disable"), "{line}");
    assert!(CLI.user_names(&env).contains("alice"));
    let forced = CLI.run(&env, &["user", "delete", "alice", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(!CLI.user_names(&env).contains("alice"));
}

#[test]
fn every_sync_leaves_prometheus_metrics_for_node_exporter() {
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = Env::new();
    let textfile = env.dir.path().join("dircache.prom");
    let status = format!("\n[status]\nprometheus_textfile = {textfile:?}\n");
    env.rewrite_extra_config(&(appint_config(&server.url(), None, "") + &status));
    let report = CLI.sync_ok(&env, &[]);
    let users = strings(&report["created"]).len();
    let metrics = fs::read_to_string(&textfile).unwrap();
    assert_eq!(fs::metadata(&textfile).unwrap().permissions().mode() & 0o777, 0o644);
    for line in ["dircache_last_sync_success 1", &format!("dircache_cache_users {users}")] {
        assert!(metrics.lines().any(|l| l == line), "{line:?} not in\n{metrics}");
    }
    assert!(metrics.contains("# TYPE dircache_last_sync_timestamp_seconds gauge"), "{metrics}");
    // `status --prometheus` prints the same metrics.
    let out = CLI.run(&env, &["status", "--prometheus"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), metrics);

    // A failed sync says so, and keeps when the last successful one ran.
    let success_line = metrics
        .lines()
        .find(|l| l.starts_with("dircache_last_success_timestamp_seconds "))
        .unwrap()
        .to_string();
    server.server.set_override(Response::new(500));
    assert!(!CLI.run(&env, &["sync"]).status.success());
    let metrics = fs::read_to_string(&textfile).unwrap();
    assert!(metrics.lines().any(|l| l == "dircache_last_sync_success 0"), "{metrics}");
    assert!(metrics.lines().any(|l| l == success_line), "{success_line:?} not in\n{metrics}");
}
