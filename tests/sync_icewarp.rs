//! `dircache-sync sync` against the mock IceWarp server, through the real binary: the happy
//! path over HTTP and HTTPS, the server quirks of the protocol document, filters, faults,
//! and the sync semantics end to end. Every failing run must leave the cache byte-identical.

mod testbed;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::Duration;

use dircache::cache::CacheDir;
use mock_directory::icewarp::account_type;
use mock_directory::{
    Account, Action, Domain, Fault, IcewarpData, IcewarpServer, IcewarpVersion, Response,
    TlsIdentity,
};
use serde_json::{json, Value};
use testbed::{
    assert_same_snapshot, names, one_failure_line, set, snapshot, stdout_json, strings, text, Env,
    SyncCli,
};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "demo-admin-password";

/// The `[directory]` and `[sync]` sections for an IceWarp mock at `url`, with more
/// `[directory]` keys and the `[sync]` body.
fn icewarp_config(url: &str, directory: &str, sync: &str) -> String {
    let timeout = if directory.contains("timeout_secs") { "" } else { "timeout_secs = 5\n" };
    format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = {ADMIN:?}\n\
         password = {ADMIN_PASSWORD:?}\n{timeout}{directory}\n[sync]\n{sync}\n"
    )
}

fn env_for(iw: &IcewarpServer, sync: &str) -> Env {
    Env::with_extra_config(&icewarp_config(&iw.url(), "", sync))
}

const CLI: SyncCli = SyncCli { secret: ADMIN_PASSWORD };

/// Two domains, an alias domain, disabled accounts, non-user accounts, and groups with a
/// `[domain]` token, an external and an unknown member.
fn quirky() -> IcewarpData {
    IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .domain(Domain::alias("example.net", "example.com"))
        .domain(Domain::new("other.org"))
        .account(Account::user("alice@example.com", "Alice Liddell", "alice-password").alias("al"))
        .account(Account::user("bob@example.com", "Bob Builder", "bob-password"))
        .account(Account::user("carol@example.com", "Carol Danvers", "carol-password").disabled(3))
        .account(Account::user("dave@other.org", "Dave Other", "dave-password"))
        .account(Account::mailing_list("news@example.com", "News", &["alice@example.com"]))
        .account(Account::of_type("room@example.com", "Meeting room", account_type::RESOURCE))
        .account(Account::group(
            "staff@example.com",
            "Staff",
            &["alice@example.com", "bob@example.com", "outsider@gmail.com", "ghost@example.com"],
        ))
        .account(Account::group("everyone@other.org", "Everyone", &["[example.com]"]))
}

const QUIRKY_USERS: [&str; 4] =
    ["alice@example.com", "bob@example.com", "carol@example.com", "dave@other.org"];

fn commands_named(iw: &IcewarpServer, name: &str) -> Vec<mock_directory::Command> {
    iw.mock.commands().into_iter().filter(|c| c.name == name).collect()
}

// ---------------------------------------------------------------------------------------
// Happy path

#[test]
fn plain_http_sync_creates_directory_users_with_their_attributes() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["dry_run"], json!(false));
    assert_eq!(
        set(&report["created"]),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
    assert_eq!(report["updated"], json!([]));
    assert_eq!(report["deleted"], json!([]));
    assert_eq!(report["skipped"], json!([]));
    assert!(report["generation"].is_u64(), "{report}");

    let alice = CLI.show(&env, "alice@example.com");
    assert_eq!(alice["auth"], "directory");
    assert_eq!(alice["origin"], "icewarp");
    assert_eq!(alice["full_name"], "Alice Liddell");
    assert_eq!(alice["enabled"], json!(true));
    assert_eq!(alice["has_password"], json!(false));
    assert_eq!(set(&alice["privileges"]), names(&["login", "read_own_archive"]));
    let emails = strings(&alice["emails"]);
    assert_eq!(emails[0], "alice@example.com", "primary address first: {emails:?}");
    assert!(emails.contains(&"al@example.com".to_string()), "alias missing: {emails:?}");
    assert_eq!(
        emails.iter().collect::<BTreeSet<_>>().len(),
        emails.len(),
        "duplicates: {emails:?}"
    );
    assert_eq!(strings(&alice["groups"]), ["staff@example.com"]);
    assert_eq!(alice["home"], "/home/alice@example.com");

    // carol's accountstate is 1: disabled, and in no group.
    let carol = CLI.show(&env, "carol@example.com");
    assert_eq!(carol["enabled"], json!(false));
    assert_eq!(carol["groups"], json!([]));

    // The mailing list and the group are not users.
    assert_eq!(
        CLI.user_names(&env),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );

    // Logged in as the administrator, logged out at the end; nothing was written to IceWarp.
    let commands = iw.mock.command_names();
    assert_eq!(commands.first().map(String::as_str), Some("authenticate"));
    assert_eq!(commands.last().map(String::as_str), Some("logout"));
    let allowed = [
        "authenticate",
        "logout",
        "getdomainsinfolist",
        "getaccountsinfolist",
        "getaccountproperties",
        "getaccountmemberinfolist",
    ];
    assert!(commands.iter().all(|c| allowed.contains(&c.as_str())), "{commands:?}");
    assert!(iw.mock.commands().iter().all(|c| c.error.is_none()), "{:?}", iw.mock.commands());
}

#[test]
fn https_needs_a_trusted_certificate_or_ignore_ssl_warnings() {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let iw = IcewarpServer::start(IcewarpData::demo(), Some(identity.clone())).unwrap();
    assert!(iw.url().starts_with("https://127.0.0.1:"), "{}", iw.url());
    let env = Env::new();
    let ca = env.dir.path().join("mock-ca.pem");
    identity.write_cert_pem(&ca).unwrap();

    env.rewrite_extra_config(&icewarp_config(&iw.url(), &format!("ca_file = {ca:?}\n"), ""));
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["created"].as_array().unwrap().len(), 3, "{report}");
    let requests = iw.server.requests();
    assert!(!requests.is_empty() && requests.iter().all(|r| r.tls));

    // A change is waiting, so a sync that got through would write a new generation.
    iw.mock.update(|d| d.account_mut("alice@example.com").unwrap().name = "Alice Pleasance".into());
    let before = snapshot(&env.cache_dir());

    // The certificate is not trusted without ca_file.
    env.rewrite_extra_config(&icewarp_config(&iw.url(), "", ""));
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("TLS"), "{line}");
    assert!(line.contains(&iw.url()) && line.contains("authenticate"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "untrusted certificate");
    assert_eq!(CLI.show(&env, "alice@example.com")["full_name"], "Alice Liddell");

    // ignore_ssl_warnings accepts it.
    env.rewrite_extra_config(&icewarp_config(&iw.url(), "ignore_ssl_warnings = true\n", ""));
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["updated"]), ["alice@example.com"]);
    assert_eq!(CLI.show(&env, "alice@example.com")["full_name"], "Alice Pleasance");
}

#[test]
fn the_callers_proxy_variables_are_ignored() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    let proxy = testbed::dead_proxy_env();
    let vars: Vec<(&str, &str)> = proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = env.cli_with_env(&["sync", "--json"], "", &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout_json(&out)["created"].as_array().unwrap().len(), 3);
}

#[test]
fn a_wrong_administrator_password_fails_and_is_not_printed() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    iw.mock.update(|d| d.account_mut("bob@example.com").unwrap().name = "Robert".into());
    let before = snapshot(&env.cache_dir());
    let wrong = "wrong-admin-Pw-77";
    env.rewrite_extra_config(&icewarp_config(&iw.url(), "", "").replace(ADMIN_PASSWORD, wrong));
    let out = CLI.run(&env, &["sync"]);
    let line = one_failure_line(&out);
    assert!(line.contains("administrator login failed") && line.contains(ADMIN), "{line}");
    assert!(line.contains("auth_login_invalid"), "{line}");
    assert!(!text(&out).contains(wrong), "{}", text(&out));
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "wrong admin password");
    // Only the login was tried.
    let last: Vec<String> = iw.mock.command_names().into_iter().rev().take(1).collect();
    assert_eq!(last, ["authenticate"]);
}

// ---------------------------------------------------------------------------------------
// Server quirks

#[test]
fn disabled_state_comes_from_accountstate_on_14x_and_u_accountdisabled_on_11x() {
    for version in [IcewarpVersion::V14, IcewarpVersion::V11] {
        let iw = IcewarpServer::start(quirky().version(version), None).unwrap();
        let env = env_for(&iw, "");
        let report = CLI.sync_ok(&env, &[]);
        assert_eq!(set(&report["created"]), names(&QUIRKY_USERS), "{version:?}");
        assert_eq!(CLI.show(&env, "carol@example.com")["enabled"], json!(false), "{version:?}");
        assert_eq!(CLI.show(&env, "alice@example.com")["enabled"], json!(true), "{version:?}");
        assert_eq!(CLI.show(&env, "dave@other.org")["enabled"], json!(true), "{version:?}");
        let asked_disabled = commands_named(&iw, "getaccountproperties").iter().any(|c| {
            c.params_named("accountpropertylist/item/propname")
                .any(|p| p.eq_ignore_ascii_case("u_accountdisabled"))
        });
        assert_eq!(asked_disabled, version == IcewarpVersion::V11, "{version:?}");
    }
}

#[test]
fn one_item_pages_are_followed_until_overallcount() {
    let iw = IcewarpServer::start(quirky().page_cap(1), None).unwrap();
    let env = env_for(&iw, "");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(set(&report["created"]), names(&QUIRKY_USERS));
    // example.com holds 6 accounts: one page each, at offsets 0..=5.
    let offsets: Vec<String> = commands_named(&iw, "getaccountsinfolist")
        .iter()
        .filter(|c| c.param("domainstr") == Some("example.com"))
        .map(|c| c.param("offset").unwrap_or("").to_string())
        .collect();
    assert_eq!(offsets, ["0", "1", "2", "3", "4", "5"]);
    // The domain list (internal, example.com, example.net, other.org) was paged too.
    assert_eq!(commands_named(&iw, "getdomainsinfolist").len(), 4);
    // And the group members: everything arrived.
    assert_eq!(
        strings(&CLI.show(&env, "bob@example.com")["groups"]),
        ["staff@example.com", "everyone@other.org"]
    );
}

#[test]
fn a_session_expiring_mid_run_is_renewed_once() {
    for parallel in [1, 8] {
        let iw = IcewarpServer::start(quirky().expire_session_after(4), None).unwrap();
        let directory = format!("max_parallel_requests = {parallel}\n");
        let env = Env::with_extra_config(&icewarp_config(&iw.url(), &directory, ""));
        let report = CLI.sync_ok(&env, &[]);
        assert_eq!(set(&report["created"]), names(&QUIRKY_USERS));
        let commands = iw.mock.commands();
        let expired: Vec<&str> = commands
            .iter()
            .filter(|c| c.error.as_deref() == Some("session_expired"))
            .map(|c| c.name.as_str())
            .collect();
        // Every command in flight when the session died is refused; one at a time, that
        // is one.
        assert!((1..=parallel).contains(&expired.len()), "{parallel}: {commands:?}");
        assert_eq!(
            commands_named(&iw, "authenticate").len(),
            2,
            "{parallel}: {:?}",
            iw.mock.command_names()
        );
        // The expired command was retried: every user has all its addresses.
        assert!(strings(&CLI.show(&env, "alice@example.com")["emails"])
            .contains(&"al@example.com".to_string()));
    }
}

#[test]
fn group_members_are_resolved_expanded_and_unknown_ones_warned_about() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(
        strings(&CLI.show(&env, "alice@example.com")["groups"]),
        ["staff@example.com", "everyone@other.org"]
    );
    assert_eq!(strings(&CLI.show(&env, "carol@example.com")["groups"]), ["everyone@other.org"]);
    assert_eq!(CLI.show(&env, "dave@other.org")["groups"], json!([]));

    let db = CacheDir::new(env.cache_dir()).load().unwrap();
    let members: BTreeMap<String, BTreeSet<String>> =
        db.groups.iter().map(|g| (g.name.clone(), g.members.iter().cloned().collect())).collect();
    assert_eq!(
        members["everyone@other.org"],
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
    assert_eq!(members["staff@example.com"], names(&["alice@example.com", "bob@example.com"]));
    assert_eq!(set(&report["groups_created"]), names(&["staff@example.com", "everyone@other.org"]));

    let warnings = strings(&report["warnings"]).join("\n");
    assert!(warnings.contains("outsider@gmail.com"), "{warnings}");
    assert!(warnings.contains("ghost@example.com"), "{warnings}");
    assert!(warnings.contains("staff@example.com"), "{warnings}");
}

#[test]
fn alias_and_internal_domains_are_skipped_and_only_type_0_accounts_are_users() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    let scanned: BTreeSet<String> = commands_named(&iw, "getaccountsinfolist")
        .iter()
        .map(|c| c.param("domainstr").unwrap().to_string())
        .collect();
    assert_eq!(scanned, names(&["example.com", "other.org"]));
    // Not the mailing list, the resource or the groups.
    assert_eq!(CLI.user_names(&env), names(&QUIRKY_USERS));
    // Only users' properties were asked for.
    let asked: BTreeSet<String> = commands_named(&iw, "getaccountproperties")
        .iter()
        .map(|c| c.param("accountemail").unwrap().to_string())
        .collect();
    assert_eq!(asked, names(&QUIRKY_USERS));
}

// ---------------------------------------------------------------------------------------
// Filters and login names

#[test]
fn domain_filter_selects_only_that_domain() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "domains = [\"example.com\"]\n");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(
        set(&report["created"]),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
    assert_eq!(
        CLI.user_names(&env),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
}

#[test]
fn group_filter_selects_only_members_and_both_filters_unite() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "groups = [\"staff@example.com\"]\n");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(set(&report["created"]), names(&["alice@example.com", "bob@example.com"]));

    let both = env_for(&iw, "domains = [\"other.org\"]\ngroups = [\"staff@example.com\"]\n");
    let report = CLI.sync_ok(&both, &[]);
    assert_eq!(
        set(&report["created"]),
        names(&["alice@example.com", "bob@example.com", "dave@other.org"])
    );
}

#[test]
fn a_filter_naming_a_missing_domain_or_group_fails_and_changes_nothing() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    let before = snapshot(&env.cache_dir());
    let cases = [
        ("domains = [\"exmaple.com\"]\ndelete_missing_users = true\n", "domain", "exmaple.com"),
        (
            "groups = [\"stuff@example.com\"]\ndelete_missing_users = true\n",
            "group",
            "stuff@example.com",
        ),
    ];
    for (sync, kind, name) in cases {
        env.rewrite_extra_config(&icewarp_config(&iw.url(), "", sync));
        let line = one_failure_line(&CLI.run(&env, &["sync"]));
        assert!(line.contains(kind) && line.contains(name), "{line}");
        assert!(line.contains("does not exist"), "{line}");
        assert_same_snapshot(&before, &snapshot(&env.cache_dir()), kind);
    }
    assert_eq!(CLI.user_names(&env), names(&QUIRKY_USERS));
}

#[test]
fn mailbox_login_names() {
    let data =
        quirky().account(Account::user("eve@example.com", "Eve", "eve-password").mailbox("evie"));
    let iw = IcewarpServer::start(data, None).unwrap();
    let env = env_for(&iw, "login_name = \"mailbox\"\n");
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(set(&report["created"]), names(&["alice", "bob", "carol", "dave", "evie"]));
    let eve = CLI.show(&env, "evie");
    assert_eq!(strings(&eve["emails"])[0], "eve@example.com");
    assert_eq!(eve["home"], "/home/evie");
    // Group members use the login names.
    let db = CacheDir::new(env.cache_dir()).load().unwrap();
    let staff = db.groups.iter().find(|g| g.name == "staff@example.com").unwrap();
    assert_eq!(staff.members.iter().cloned().collect::<BTreeSet<_>>(), names(&["alice", "bob"]));
}

// ---------------------------------------------------------------------------------------
// Faults

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn connection_refused_fails_cleanly() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    let before = snapshot(&env.cache_dir());
    let url = format!("http://127.0.0.1:{}/icewarpapi/", closed_port());
    env.rewrite_extra_config(&icewarp_config(&url, "", ""));
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains(&url) && line.contains("authenticate"), "{line}");
    assert!(line.contains("cannot connect"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "connection refused");

    // --json reports the same error in the object.
    let out = CLI.run(&env, &["sync", "--json"]);
    assert_eq!(one_failure_line(&out), line);
    let report = stdout_json(&out);
    assert_eq!(report["errors"], json!([line.trim_start_matches("dircache-sync: ")]));
    assert_eq!(report["created"], json!([]));
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "connection refused, --json");

    let status = stdout_json(&CLI.run(&env, &["status", "--json"]));
    assert_eq!(status["result"], "failure");
    assert_eq!(status["error"].as_str().unwrap(), line.trim_start_matches("dircache-sync: "));
}

/// Each fault hits the first `getaccountsinfolist` of a run (after `authenticate` and
/// `getdomainsinfolist`), with a change waiting that a successful run would write.
#[test]
fn faults_mid_listing_fail_with_a_clear_error_and_leave_the_cache_alone() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = Env::with_extra_config(&icewarp_config(&iw.url(), "", ""));
    CLI.sync_ok(&env, &[]);
    let success_status = stdout_json(&CLI.run(&env, &["status", "--json"]));
    assert_eq!(success_status["result"], "success");
    assert_eq!(success_status["created"], json!(3));
    assert_eq!(success_status["error"], Value::Null);
    assert!(success_status["generation"].is_u64());

    env.rewrite_extra_config(&icewarp_config(&iw.url(), "timeout_secs = 1\n", ""));
    iw.mock.update(|d| d.account_mut("bob@example.com").unwrap().name = "Robert Builder".into());
    let xml = |body: &str| Response::with_content(200, "text/xml", body.to_string());
    let faults: Vec<(&str, Action, &[&str])> = vec![
        ("HTTP 500", Response::html(500, "<html><body>Internal Server Error</body></html>").into(), &["HTTP status 500"]),
        ("HTML page with 200", Response::html(200, "<html><body><h1>Welcome to nginx!</h1></body></html>").into(), &["malformed"]),
        (
            "malformed XML",
            xml("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><item><name>x</item></result></query></iq>").into(),
            &["malformed"],
        ),
        ("truncated XML", Fault::TruncateBody { send: 60 }.into(), &["body"]),
        (
            "XML ending early in a complete HTTP reply",
            xml("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><item><name>x</name>")
                .into(),
            &["malformed"],
        ),
        (
            "wrong namespace",
            xml("<iq type=\"result\"><query xmlns=\"urn:not-icewarp\"><result><offset>0</offset><overallcount>0</overallcount></result></query></iq>").into(),
            &["namespace"],
        ),
        (
            "unknown error uid",
            xml("<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"weird_failure_42\"/></query></iq>").into(),
            &["weird_failure_42"],
        ),
        ("no answer at all", Fault::CloseWithoutResponse.into(), &["closed"]),
        (
            "redirect to another host",
            Fault::Redirect {
                status: 307,
                location: format!("http://localhost:{}/icewarpapi/", iw.server.port()),
            }
            .into(),
            &["redirect", "localhost"],
        ),
        ("timeout", Fault::Delay(Duration::from_secs(3)).into(), &["no answer within 1 s"]),
    ];
    let before = snapshot(&env.cache_dir());
    for (what, action, expected) in faults {
        iw.server.clear_plan();
        iw.server.on_nth(iw.server.request_count() + 2, action);
        let out = CLI.run(&env, &["sync"]);
        let line = one_failure_line(&out);
        assert!(line.contains(&iw.url()), "{what}: {line}");
        assert!(line.contains("getaccountsinfolist"), "{what}: {line}");
        CLI.assert_failed_cleanly(&env, &line, &before, what, expected);
    }
    assert_eq!(CLI.show(&env, "bob@example.com")["full_name"], "Bob Builder");

    // Without faults the waiting change goes through.
    iw.server.clear_plan();
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["updated"]), ["bob@example.com"]);
    assert_eq!(stdout_json(&CLI.run(&env, &["status", "--json"]))["result"], "success");
}

#[test]
fn an_empty_listing_is_refused_unless_forced() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "delete_missing_users = true\nmax_delete_percent = 100\n");
    CLI.sync_ok(&env, &[]);
    let before = snapshot(&env.cache_dir());
    iw.mock.update(|d| d.accounts.clear());
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("--force") && line.contains("no users"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "empty listing");
    assert_eq!(CLI.user_names(&env).len(), 3);

    let report = CLI.sync_ok(&env, &["--force"]);
    assert_eq!(
        set(&report["deleted"]),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
    assert!(CLI.user_names(&env).is_empty());
}

// ---------------------------------------------------------------------------------------
// Semantics end to end

#[test]
fn a_second_sync_without_changes_writes_nothing() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let env = env_for(&iw, "");
    let first = CLI.sync_ok(&env, &[]);
    assert!(first["generation"].is_u64());
    let before = snapshot(&env.cache_dir());
    std::thread::sleep(Duration::from_millis(20));
    let second = CLI.sync_ok(&env, &[]);
    assert_eq!(second["generation"], Value::Null, "{second}");
    assert_eq!(second["created"], json!([]));
    assert_eq!(second["updated"], json!([]));
    assert_eq!(second["unchanged"], json!(4));
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "second sync");
}

#[test]
fn dry_run_writes_nothing_but_prints_the_plan() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");

    let out = CLI.run(&env, &["sync", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = stdout_json(&out);
    assert_eq!(plan["dry_run"], json!(true));
    assert_eq!(
        set(&plan["created"]),
        names(&["alice@example.com", "bob@example.com", "carol@example.com"])
    );
    assert_eq!(plan["generation"], Value::Null);
    assert!(!env.cache_dir().exists(), "a dry run created the cache directory");

    let human = CLI.run(&env, &["sync", "--dry-run"]);
    assert!(human.status.success(), "{}", text(&human));
    let shown = String::from_utf8_lossy(&human.stdout);
    assert!(shown.contains("would create") && shown.contains("bob@example.com"), "{shown}");
    assert!(!env.cache_dir().exists());

    CLI.sync_ok(&env, &[]);
    iw.mock.update(|d| {
        d.remove_account("carol@example.com");
        d.account_mut("bob@example.com").unwrap().name = "Robert Builder".into();
    });
    let before = snapshot(&env.cache_dir());
    let status_before = std::fs::read(env.cache_dir().join(testbed::STATUS_FILE)).unwrap();
    let plan = stdout_json(&CLI.run(&env, &["sync", "--dry-run", "--json"]));
    assert_eq!(plan["dry_run"], json!(true));
    // carol, disabled already, is now also unlisted: marked so (see `sync::plan`).
    assert_eq!(strings(&plan["updated"]), ["bob@example.com", "carol@example.com"]);
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "dry run");
    assert_eq!(std::fs::read(env.cache_dir().join(testbed::STATUS_FILE)).unwrap(), status_before);
    assert_eq!(CLI.show(&env, "bob@example.com")["full_name"], "Bob Builder");
}

#[test]
fn deleted_accounts_go_only_with_delete_missing_users_and_their_uid_is_not_reused() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    let bob_uid = CLI.show(&env, "bob@example.com")["uid"].as_u64().unwrap();
    iw.mock.update(|d| assert!(d.remove_account("bob@example.com")));

    // Kept but disabled, with a warning, while delete_missing_users is off.
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["deleted"], json!([]));
    assert!(strings(&report["warnings"]).join("\n").contains("bob@example.com"), "{report}");
    assert!(CLI.user_names(&env).contains("bob@example.com"));
    assert_eq!(CLI.show(&env, "bob@example.com")["enabled"], json!(false));

    env.rewrite_extra_config(&icewarp_config(
        &iw.url(),
        "",
        "delete_missing_users = true\nmax_delete_percent = 50\n",
    ));
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["deleted"]), ["bob@example.com"]);
    assert_eq!(CLI.user_names(&env), names(&["alice@example.com", "carol@example.com"]));
    assert!(!CLI.run(&env, &["user", "show", "bob@example.com"]).status.success());

    // Back in the directory: a new user, with a new uid.
    iw.mock.update(|d| {
        d.accounts.push(Account::user("bob@example.com", "Bob Builder", "bob-password"))
    });
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["created"]), ["bob@example.com"]);
    assert_ne!(CLI.show(&env, "bob@example.com")["uid"].as_u64().unwrap(), bob_uid);
}

#[test]
fn too_many_deletions_are_refused_unless_forced() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "delete_missing_users = true\n");
    CLI.sync_ok(&env, &[]);
    iw.mock.update(|d| assert!(d.remove_account("bob@example.com")));
    let before = snapshot(&env.cache_dir());
    let line = one_failure_line(&CLI.run(&env, &["sync"]));
    assert!(line.contains("max_delete_percent") && line.contains("--force"), "{line}");
    assert!(line.contains("1 of 3"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "delete limit");
    assert!(CLI.user_names(&env).contains("bob@example.com"));

    let report = CLI.sync_ok(&env, &["--force"]);
    assert_eq!(strings(&report["deleted"]), ["bob@example.com"]);
    assert!(!CLI.user_names(&env).contains("bob@example.com"));
}

#[test]
fn granted_privileges_survive_later_syncs() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    CLI.sync_ok(&env, &[]);
    let granted = CLI.run(
        &env,
        &["user", "set", "alice@example.com", "--grant", "admin", "--revoke", "read_own_archive"],
    );
    assert!(granted.status.success(), "{}", text(&granted));
    iw.mock.update(|d| {
        d.account_mut("alice@example.com").unwrap().name = "Alice Pleasance Liddell".into()
    });
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["updated"]), ["alice@example.com"]);
    let alice = CLI.show(&env, "alice@example.com");
    assert_eq!(alice["full_name"], "Alice Pleasance Liddell");
    assert_eq!(set(&alice["privileges"]), names(&["admin", "login"]));
    // New users still get the defaults.
    assert_eq!(
        set(&CLI.show(&env, "bob@example.com")["privileges"]),
        names(&["login", "read_own_archive"])
    );
}

#[test]
fn manual_users_are_linked_when_directory_authenticated_and_skipped_when_local() {
    let iw = IcewarpServer::start(IcewarpData::demo(), None).unwrap();
    let env = env_for(&iw, "");
    let add = CLI.run(
        &env,
        &["user", "add", "alice@example.com", "--auth", "directory", "--privilege", "login"],
    );
    assert!(add.status.success(), "{}", text(&add));
    let alice_uid = CLI.show(&env, "alice@example.com")["uid"].clone();
    let add = env.cli(&["user", "add", "bob@example.com", "--password-stdin"], "local-secret\n");
    assert!(add.status.success(), "{}", text(&add));

    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(strings(&report["created"]), ["carol@example.com"]);
    assert_eq!(strings(&report["linked"]), ["alice@example.com"]);
    assert!(strings(&report["updated"]).contains(&"alice@example.com".to_string()));
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(skipped[0]["name"], "bob@example.com");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("local password"), "{report}");

    let alice = CLI.show(&env, "alice@example.com");
    assert_eq!(alice["origin"], "icewarp");
    assert_eq!(alice["uid"], alice_uid);
    assert_eq!(alice["full_name"], "Alice Liddell");
    assert_eq!(set(&alice["privileges"]), names(&["login"]), "linking does not change privileges");
    let bob = CLI.show(&env, "bob@example.com");
    assert_eq!(bob["origin"], "manual");
    assert_eq!(bob["auth"], "local");
    assert_eq!(bob["has_password"], json!(true));
}

#[test]
fn two_fresh_caches_get_the_same_ids() {
    let iw = IcewarpServer::start(quirky(), None).unwrap();
    let ids = || {
        let env = env_for(&iw, "");
        CLI.sync_ok(&env, &[]);
        let out = CLI.run(&env, &["user", "list", "--json"]);
        let users: BTreeMap<String, (u64, u64)> = stdout_json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["name"].as_str().unwrap().to_string(),
                    (u["uid"].as_u64().unwrap(), u["gid"].as_u64().unwrap()),
                )
            })
            .collect();
        let groups: BTreeMap<String, u32> = CacheDir::new(env.cache_dir())
            .load()
            .unwrap()
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.gid))
            .collect();
        (users, groups)
    };
    let (users_a, groups_a) = ids();
    let (users_b, groups_b) = ids();
    assert_eq!(users_a.keys().cloned().collect::<BTreeSet<_>>(), names(&QUIRKY_USERS));
    assert_eq!(users_a, users_b);
    assert_eq!(groups_a.len(), 2);
    assert_eq!(groups_a, groups_b);
    let all: BTreeSet<u64> = users_a
        .values()
        .map(|(uid, _)| *uid)
        .chain(groups_a.values().map(|g| u64::from(*g)))
        .collect();
    assert_eq!(all.len(), 6, "ids collide: {users_a:?} {groups_a:?}");
    assert!(all.iter().all(|id| (1_879_048_192..=2_147_352_575).contains(id)), "{all:?}");
}

#[test]
fn a_full_uid_range_is_an_error_naming_the_key_and_counts_everyone_skipped() {
    // Ten ids for fifteen users and three groups: ten users are created, five users and the
    // three groups are skipped, and the run is not a success.
    let mut data = IcewarpData::new(ADMIN, ADMIN_PASSWORD).domain(Domain::new("example.com"));
    for i in 0..15 {
        let email = format!("u{i:02}@example.com");
        data = data.account(Account::user(&email, "U", "pw"));
    }
    for g in ["g1", "g2", "g3"] {
        data = data.account(Account::group(&format!("{g}@example.com"), g, &["u00@example.com"]));
    }
    let server = IcewarpServer::start(data, None).unwrap();
    let env = env_for(&server, "");
    let text_of = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text_of.replace("[unix]\n", "[unix]\nuid_range = [300000, 300009]\n"),
    )
    .unwrap();

    let out = CLI.run(&env, &["sync", "--json"]);
    assert!(!out.status.success(), "{}", text(&out));
    let report = stdout_json(&out);
    assert_eq!(report["created"].as_array().unwrap().len(), 10, "{report}");
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 8, "{report}");
    assert!(skipped.iter().all(|s| s["reason"].as_str().unwrap().contains("unix.uid_range")));
    assert_eq!(report["groups_created"], json!([]));
    let error = report["errors"][0].as_str().unwrap();
    assert!(error.starts_with("8 users and groups were not created"), "{error}");
    assert!(error.contains("widen or move unix.uid_range"), "{error}");
    assert!(one_failure_line(&out).contains("unix.uid_range"), "{}", text(&out));
    let status = stdout_json(&CLI.run(&env, &["status", "--json"]));
    assert_eq!((status["created"].clone(), status["skipped"].clone()), (json!(10), json!(8)));
    assert!(status["error"].as_str().unwrap().contains("unix.uid_range"), "{status}");

    // The next run: the same, and the summary line counts them.
    let out = CLI.run(&env, &["sync"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 created, 0 updated, 0 deleted, 10 unchanged, 8 skipped"),
        "{stdout}"
    );
}

/// Validity date, lock and expired password (issue 14 §2): each accepted spelling lands in
/// the user record, an unreadable one fails closed with the raw value in a warning, and a
/// later sync follows the directory.
#[test]
fn account_limits_are_read_in_every_spelling_and_fail_closed() {
    let data = IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .account(Account::user("julian@example.com", "J", "pw").valid_till("2461406"))
        .account(Account::user("slash@example.com", "S", "pw").valid_till("2026/12/31"))
        .account(Account::user("iso@example.com", "I", "pw").valid_till("2026-12-31T08:00:00Z"))
        .account(Account::user("garbage@example.com", "G", "pw").valid_till("31.12.2026"))
        .account(
            Account::user("unlimited@example.com", "U", "pw")
                .property("U_AccountValid", "0")
                .property("U_AccountValidTill", "2461406"),
        )
        .account(Account::user("blocked@example.com", "B", "pw").blocked("true"))
        .account(Account::user("locked@example.com", "L", "pw").blocked("locked"))
        .account(Account::user("stale@example.com", "P", "pw").password_expired("1"))
        .account(Account::user("plain@example.com", "N", "pw"));
    let iw = IcewarpServer::start(data, None).unwrap();
    let env = env_for(&iw, "");
    let report = CLI.sync_ok(&env, &[]);
    for name in ["julian", "slash", "iso"] {
        let user = CLI.show(&env, &format!("{name}@example.com"));
        assert_eq!(user["expires"], json!("2026-12-31"), "{name}: {user}");
        assert_eq!(user["blocked"], json!(false), "{name}");
    }
    // Unreadable: expired long ago, and the warning names the raw value.
    assert_eq!(CLI.show(&env, "garbage@example.com")["expires"], json!("1970-01-02"));
    let warnings = strings(&report["warnings"]).join("\n");
    assert!(
        warnings
            .contains("garbage@example.com: U_AccountValidTill \"31.12.2026\" is not understood"),
        "{warnings}"
    );
    assert!(warnings.contains("locked@example.com: U_Blocked \"locked\""), "{warnings}");
    for name in ["unlimited", "plain", "blocked", "locked", "stale"] {
        let user = CLI.show(&env, &format!("{name}@example.com"));
        assert!(user.get("expires").is_none(), "{name}: {user}");
    }
    assert_eq!(CLI.show(&env, "blocked@example.com")["blocked"], json!(true));
    assert_eq!(CLI.show(&env, "locked@example.com")["blocked"], json!(true));
    assert_eq!(CLI.show(&env, "stale@example.com")["password_expired"], json!(true));
    assert_eq!(CLI.show(&env, "plain@example.com")["password_expired"], json!(false));
    // The properties were asked for.
    let asked: Vec<String> = commands_named(&iw, "getaccountproperties")[0]
        .params_named("accountpropertylist/item/propname")
        .map(|p| p.to_ascii_lowercase())
        .collect();
    for property in ["u_accountvalid", "u_accountvalidtill", "u_blocked", "u_passwordexpired"] {
        assert!(asked.iter().any(|p| p == property), "{property} not asked: {asked:?}");
    }

    // The directory lifts the lock and the date: the next sync follows.
    iw.mock.update(|d| {
        d.account_mut("blocked@example.com").unwrap().properties.clear();
        d.account_mut("julian@example.com").unwrap().properties.clear();
    });
    CLI.sync_ok(&env, &[]);
    assert_eq!(CLI.show(&env, "blocked@example.com")["blocked"], json!(false));
    assert!(CLI.show(&env, "julian@example.com").get("expires").is_none());
}
