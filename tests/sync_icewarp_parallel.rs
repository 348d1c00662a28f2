//! `dircache-sync sync` against the mock IceWarp server with several requests in flight
//! (`[directory] max_parallel_requests`, issue 12 §1): the same result whatever the timing,
//! one login when the session expires mid-run, and a run that stops at the first hard error
//! with the cache unchanged.

mod testbed;

use std::time::Duration;

use dircache::cache::CacheDir;
use mock_directory::{Command, IcewarpData, IcewarpServer, Response};
use serde_json::Value;
use testbed::{assert_same_snapshot, one_failure_line, snapshot, stdout_json, Env, SyncCli};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "demo-admin-password";
const CLI: SyncCli = SyncCli { secret: ADMIN_PASSWORD };

fn env_for(iw: &IcewarpServer, parallel: usize) -> Env {
    Env::with_extra_config(&format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {:?}\nusername = {ADMIN:?}\n\
         password = {ADMIN_PASSWORD:?}\ntimeout_secs = 10\nmax_parallel_requests = {parallel}\n",
        iw.url()
    ))
}

/// Three domains of 60 users (aliases, disabled ones, groups with a `[domain]` token and
/// unknown members), answered after a random 0–3 ms: replies to concurrent requests come
/// back in an order of their own.
fn jittery() -> IcewarpServer {
    let iw = IcewarpServer::start(IcewarpData::generated(3, 60), None).unwrap();
    iw.server.set_latency_range(Duration::ZERO, Duration::from_millis(3));
    iw
}

fn commands_named(iw: &IcewarpServer, name: &str) -> Vec<Command> {
    iw.mock.commands().into_iter().filter(|c| c.name == name).collect()
}

/// The report without what differs between any two runs (when, which generation).
fn comparable(mut report: Value) -> Value {
    if let Some(fields) = report.as_object_mut() {
        fields.retain(|key, _| !["generation", "duration_secs"].contains(&key.as_str()));
    }
    report
}

/// Every user and group of the cache, as recorded but for timestamps, and what `user list`
/// prints.
fn cache_contents(env: &Env) -> (String, String, Value) {
    let mut db = CacheDir::new(env.cache_dir()).load().unwrap();
    // When a record was written differs between runs; nothing else may.
    for user in &mut db.users {
        user.created_at = Default::default();
        user.updated_at = Default::default();
    }
    let mut listed = stdout_json(&CLI.run(env, &["user", "list", "--json"]));
    for user in listed.as_array_mut().into_iter().flatten() {
        if let Some(fields) = user.as_object_mut() {
            fields.retain(|key, _| !key.ends_with("_at"));
        }
    }
    (format!("{:#?}", db.users), format!("{:#?}", db.groups), listed)
}

#[test]
fn one_request_at_a_time_or_eight_give_the_same_report_and_cache() {
    let mut results = Vec::new();
    for parallel in [1, 8, 1, 8] {
        let iw = jittery();
        let env = env_for(&iw, parallel);
        let report = CLI.sync_ok(&env, &["--dry-run"]);
        let dry = comparable(report);
        let report = comparable(CLI.sync_ok(&env, &[]));
        assert_eq!(report["created"].as_array().map(Vec::len), Some(180), "{parallel}: {report}");
        assert_eq!(
            commands_named(&iw, "getaccountproperties").len(),
            2 * 180,
            "one request per account and run"
        );
        let connections = iw.server.connection_count();
        results.push((parallel, dry, report, cache_contents(&env), connections));
    }
    let (_, dry, report, cache, _) = &results[0];
    for (parallel, other_dry, other_report, other_cache, _) in &results[1..] {
        assert_eq!(other_dry, dry, "the plan with {parallel} in flight");
        assert_eq!(other_report, report, "the report with {parallel} in flight");
        assert_eq!(other_cache, cache, "the cache with {parallel} in flight");
    }
    // Kept-alive connections: about one per worker and run (a few more when a request
    // starts while a connection is still being handed back to the pool), not one per
    // request (2 × 186).
    for (parallel, _, _, _, connections) in &results {
        assert!(*connections <= 4 * *parallel as u64 + 4, "{parallel}: {connections} connections");
    }
}

#[test]
fn a_session_expiring_with_eight_requests_in_flight_costs_one_login() {
    let iw = jittery();
    iw.mock.update(|data| data.expire_session_after = Some(40));
    let env = env_for(&iw, 8);
    let report = CLI.sync_ok(&env, &[]);
    assert_eq!(report["created"].as_array().map(Vec::len), Some(180), "{report}");
    let expired =
        iw.mock.commands().iter().filter(|c| c.error.as_deref() == Some("session_expired")).count();
    assert!((1..=8).contains(&expired), "{expired} commands refused");
    assert_eq!(commands_named(&iw, "authenticate").len(), 2, "one login, one renewal");
    // Every refused command was retried with the new session: each account's properties
    // were answered once.
    let answered = commands_named(&iw, "getaccountproperties")
        .into_iter()
        .filter(|c| c.error.is_none())
        .count();
    assert_eq!(answered, 180);
    // And the cache holds what a run without expiry would write.
    let reference = jittery();
    let reference_env = env_for(&reference, 1);
    let reference_report = CLI.sync_ok(&reference_env, &[]);
    assert_eq!(comparable(report), comparable(reference_report));
    assert_eq!(cache_contents(&env), cache_contents(&reference_env));
}

#[test]
fn one_failing_request_stops_every_worker_and_leaves_the_cache_alone() {
    let xml = |body: &str| Response::with_content(200, "text/xml", body.to_string());
    let faults: Vec<(&str, Response, &str)> = vec![
        ("HTTP 500", Response::html(500, "<html><body>Internal Server Error</body></html>"), "HTTP status 500"),
        (
            "malformed XML",
            xml("<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result><item></result></query></iq>"),
            "malformed",
        ),
    ];
    for (what, fault, expected) in faults {
        let iw = IcewarpServer::start(IcewarpData::generated(3, 60), None).unwrap();
        let env = env_for(&iw, 8);
        CLI.sync_ok(&env, &[]);
        iw.mock.update(|data| {
            for account in data.accounts.iter_mut() {
                account.name.push_str(" (renamed)");
            }
        });
        let before = snapshot(&env.cache_dir());
        // Every reply waits 20 ms, so a worker that went on after the failure would be seen.
        iw.server.set_latency(Duration::from_millis(20));
        iw.mock.clear_commands();
        // Requests of the run: authenticate, the domain list, one account page per
        // domain, then the properties: the failure comes with the 31st account's.
        let first = iw.server.request_count();
        iw.server.on_nth(first + 5 + 30, fault);
        let out = CLI.run(&env, &["sync"]);
        let line = one_failure_line(&out);
        assert!(line.contains("getaccountproperties") && line.contains(expected), "{what}: {line}");
        CLI.assert_failed_cleanly(&env, &line, &before, what, &[expected]);
        assert_same_snapshot(&before, &snapshot(&env.cache_dir()), what);
        // The workers stopped: besides the failed one, at most the requests in flight
        // with it went out (and the status run's none).
        let sent = commands_named(&iw, "getaccountproperties").len();
        assert!(sent < 30 + 1 + 2 * 8, "{what}: {sent} property requests after the failure");
        assert_eq!(commands_named(&iw, "logout").len(), 1, "{what}: the session is closed");
    }
}
