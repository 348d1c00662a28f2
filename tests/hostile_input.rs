//! Hostile input (issue 6, part 4), through the real `dircache-sync` binary, the library's
//! PAM hooks and real libpam (pam_wrapper + pamtester): replies of 1 GB, XML nested 100,000
//! deep, entity expansion, a 10 MB user name, invalid UTF-8, NUL bytes, names that would
//! break a passwd line or a path, uids pushed towards reserved ranges, and proxies pointing
//! at a dead port. Each gives a clear error or a skipped entry with a reason, in bounded
//! memory and time; nothing corrupts a passwd line; no password appears in any output.

mod probes;
mod testbed;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use dircache::cache::{CacheDir, PublicUser};
use dircache::pam::PamOutcome;
use dircache::user::Group;
use mock_directory::{
    Account, AppIntData, AppIntServer, AppIntUser, Domain, IcewarpData, IcewarpServer, Response,
};
use probes::{pam_authenticate, wait_measuring, Transcript};
use testbed::{artifact, assert_same_snapshot, snapshot, stdout_json, text, Env};

const GIB: u64 = 1 << 30;
/// `max_reply_mib = 16`.
const CAP_MIB: u64 = 16;
const CAP: u64 = CAP_MIB << 20;
const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "Adm1n-Hostile-Pw";
const LOCAL_PASSWORD: &str = "C0rrect-Horse-9";

fn appint_section(url: &str, more: &str) -> String {
    format!("\n[directory]\ntype = \"application-integration\"\nurl = {url:?}\ntimeout_secs = 20\n{more}")
}

fn icewarp_section(url: &str, more: &str) -> String {
    format!(
        "\n[directory]\ntype = \"icewarp\"\nserver = {url:?}\nusername = {ADMIN:?}\n\
         password = {ADMIN_PASSWORD:?}\ntimeout_secs = 20\n{more}"
    )
}

fn icewarp_data() -> IcewarpData {
    IcewarpData::new(ADMIN, ADMIN_PASSWORD)
        .domain(Domain::new("example.com"))
        .account(Account::user("alice@example.com", "Alice", "alice-password"))
}

/// A second configuration file beside `env.config`, same cache, another `[directory]`.
fn other_config(env: &Env, name: &str, directory: &str) -> PathBuf {
    let base = fs::read_to_string(&env.config).unwrap();
    let cut = base.find("\n[directory]").unwrap_or(base.len());
    let path = env.dir.path().join(name);
    fs::write(&path, format!("{}{directory}", &base[..cut])).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

fn cli(env: &Env, config: &Path, args: &[&str], transcript: &Transcript) -> Output {
    let mut command = Command::new(artifact("dircache-sync"));
    command.arg("--config").arg(config).args(args);
    let out = testbed::run_with_stdin(&mut command, "");
    transcript.output(&format!("dircache-sync {}", args.join(" ")), &out);
    let _ = env;
    out
}

/// The one `dircache-sync: …` line of a failed run.
fn failure_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure:\n{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{}", text(out));
    stderr.trim().to_string()
}

// ---------------------------------------------------------------------------------------
// A server that streams a reply of any size

/// Serves `total` bytes of `filler` after the headers to every request, counting what it
/// managed to send (a client that stops reading makes the writes fail).
struct Streamer {
    port: u16,
    sent: Arc<AtomicU64>,
}

impl Streamer {
    fn start(total: u64, declare_length: bool, filler: u8) -> Streamer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let counter = counter.clone();
                thread::spawn(move || {
                    serve_stream(stream, total, declare_length, filler, &counter)
                });
            }
        });
        Streamer { port, sent }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

fn serve_stream(
    mut stream: TcpStream,
    total: u64,
    declare_length: bool,
    filler: u8,
    sent: &AtomicU64,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let framing = if declare_length {
        format!("Content-Length: {total}\r\n")
    } else {
        "Connection: close\r\n".to_string()
    };
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/json\r\n{framing}\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![filler; 64 << 10];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if stream.write_all(&chunk[..n]).is_err() {
            return;
        }
        sent.fetch_add(n as u64, Ordering::SeqCst);
        left -= n as u64;
    }
}

/// A normal sync from the demo Application Integration directory, in a child process whose
/// peak memory (KiB) is measured: the cache that must survive, and what a sync needs anyway.
fn synced_demo_measuring() -> (AppIntServer, Env, u64) {
    let good = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = Env::with_extra_config(&appint_section(&good.url(), ""));
    let mut command = Command::new(artifact("dircache-sync"));
    command.arg("--config").arg(&env.config).args(["sync", "--json"]);
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (out, baseline_kib) = wait_measuring(child);
    assert!(out.status.success(), "{}", text(&out));
    (good, env, baseline_kib)
}

#[test]
fn replies_of_1_gb_are_cut_at_max_reply_mib_in_bounded_memory() {
    let transcript = Transcript::default();
    let (_good, env, baseline_kib) = synced_demo_measuring();
    let before = snapshot(&env.cache_dir());

    let mut figures = Vec::new();
    for (kind, declare_length) in [("application-integration", false), ("icewarp", true)] {
        let streamer = Streamer::start(GIB, declare_length, b' ');
        let directory = if kind == "icewarp" {
            icewarp_section(&streamer.url("/icewarpapi/"), &format!("max_reply_mib = {CAP_MIB}\n"))
        } else {
            appint_section(&streamer.url("/index.php"), &format!("max_reply_mib = {CAP_MIB}\n"))
        };
        let config = other_config(&env, &format!("{kind}.toml"), &directory);
        let started = Instant::now();
        let mut command = Command::new(artifact("dircache-sync"));
        command.arg("--config").arg(&config).arg("sync");
        let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (out, peak_kib) = wait_measuring(child);
        transcript.output(kind, &out);
        let line = failure_line(&out);
        assert!(
            line.contains(&format!("larger than directory.max_reply_mib allows ({CAP} bytes)")),
            "{line}"
        );
        assert_same_snapshot(&before, &snapshot(&env.cache_dir()), kind);
        // Not read beyond the cap (plus what sits in socket buffers); with a declared length
        // nothing at all is read.
        let sent = streamer.sent();
        assert!(sent < CAP + (48 << 20), "{kind}: the server could send {sent} bytes");
        assert!(
            peak_kib < baseline_kib + 3 * (CAP >> 10) + 32 * 1024,
            "{kind}: peak {peak_kib} KiB"
        );
        figures.push(format!(
            "{kind} ({}): refused after {:.2} s, {} MiB sent by the server, peak RSS {} MiB",
            if declare_length { "Content-Length: 1 GiB" } else { "1 GiB without length" },
            started.elapsed().as_secs_f64(),
            sent >> 20,
            peak_kib >> 10
        ));
    }

    // PAM: the directory's answer to a password check is 1 GB. Under the default cap
    // (1024 MiB) too, an answer is cut at 1 MiB.
    let streamer = Streamer::start(GIB, false, b' ');
    let config = other_config(&env, "pam.toml", &appint_section(&streamer.url("/index.php"), ""));
    let started = Instant::now();
    let (outcome, conversation) = pam_authenticate(&config, "alice", b"alice-password");
    transcript.conversation("pam 1 GiB", &conversation);
    assert_eq!(outcome, PamOutcome::AuthinfoUnavail, "{:?}", conversation.logs);
    assert!(
        conversation.logged("the answer to a password check is larger"),
        "{:?}",
        conversation.logs
    );
    let sent = streamer.sent();
    assert!(sent < (1 << 20) + (48 << 20), "the server could send {sent} bytes");
    figures.push(format!(
        "PAM password check (default cap): PAM_AUTHINFO_UNAVAIL after {:.2} s, {} MiB sent",
        started.elapsed().as_secs_f64(),
        sent >> 20
    ));
    println!(
        "1 GiB replies, max_reply_mib = {CAP_MIB} (a normal sync peaks at {} MiB):\n  {}",
        baseline_kib >> 10,
        figures.join("\n  ")
    );
    transcript.assert_never_shows(&["alice-password", ADMIN_PASSWORD]);
}

#[test]
fn a_listing_of_tiny_users_is_refused_at_the_budget_in_bounded_memory() {
    let transcript = Transcript::default();
    let (_good, env, baseline_kib) = synced_demo_measuring();
    let before = snapshot(&env.cache_dir());

    // 300,000 users of 20 bytes each: 6 MB, well within the 16 MiB cap, but a user costs
    // about 1 KB in memory during a sync, so it would take some 300 MB. The cap charges
    // 1 KiB per account: 16,384 fit.
    let users: Vec<String> = (0..300_000).map(|i| format!(r#"{{"userName":"u{i}"}}"#)).collect();
    let mut data = AppIntData::demo();
    data.raw_list = Some(format!("[{}]", users.join(",")).into_bytes());
    let tiny = AppIntServer::start(data, None).unwrap();
    let config = other_config(
        &env,
        "tiny.toml",
        &appint_section(&tiny.url(), &format!("max_reply_mib = {CAP_MIB}\n")),
    );
    let started = Instant::now();
    let mut command = Command::new(artifact("dircache-sync"));
    command.arg("--config").arg(&config).arg("sync");
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (out, peak_kib) = wait_measuring(child);
    transcript.output("tiny users", &out);
    let line = failure_line(&out);
    assert!(line.contains("the listing holds more than directory.max_reply_mib allows"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "tiny users");
    assert!(peak_kib < baseline_kib + 3 * (CAP >> 10) + 32 * 1024, "peak {peak_kib} KiB");
    println!(
        "300,000 users in 6 MB, max_reply_mib = {CAP_MIB}: refused after {:.2} s, peak RSS {} MiB \
         (a normal sync: {} MiB)",
        started.elapsed().as_secs_f64(),
        peak_kib >> 10,
        baseline_kib >> 10
    );
}

// ---------------------------------------------------------------------------------------
// Hostile XML and JSON

#[test]
fn deep_nesting_and_entity_expansion_are_refused_quickly() {
    let transcript = Transcript::default();
    let iw = IcewarpServer::start(icewarp_data(), None).unwrap();
    let env = Env::with_extra_config(&icewarp_section(&iw.url(), ""));
    let out = cli(&env, &env.config, &["sync"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    let before = snapshot(&env.cache_dir());

    let deep = 100_000;
    let nested = format!(
        "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\">{}{}</query></iq>",
        "<a>".repeat(deep),
        "</a>".repeat(deep)
    );
    let laughs = {
        let mut doctype = String::from("<!DOCTYPE iq [<!ENTITY lol0 \"lol\">");
        for i in 1..10 {
            let previous = format!("&lol{};", i - 1);
            doctype.push_str(&format!("<!ENTITY lol{i} \"{}\">", previous.repeat(10)));
        }
        doctype.push_str("]>");
        format!("<?xml version=\"1.0\"?>{doctype}<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>&lol9;</result></query></iq>")
    };
    let undeclared =
        "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>&lol9;</result></query></iq>";
    let not_utf8 =
        b"<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>\xff\xfe</result></query></iq>"
            .to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("XML nested 100,000 deep", nested.into_bytes(), "nested deeper than 64 levels"),
        ("billion laughs", laughs.into_bytes(), "DOCTYPE, which is not accepted"),
        ("an undeclared entity", undeclared.as_bytes().to_vec(), "undeclared entity &lol9;"),
        ("invalid UTF-8", not_utf8, "not UTF-8"),
    ];
    let mut figures = Vec::new();
    for (what, body, expected) in cases {
        iw.server.set_override(Response::with_content(200, "text/xml", body));
        let started = Instant::now();
        let out = cli(&env, &env.config, &["sync"], &transcript);
        let line = failure_line(&out);
        assert!(line.contains("malformed reply") && line.contains(expected), "{what}: {line}");
        assert_same_snapshot(&before, &snapshot(&env.cache_dir()), what);
        figures.push(format!("{what}: {:.2} s", started.elapsed().as_secs_f64()));
        // The same reply to a password check through PAM is an outage, never a yes.
        let (outcome, conversation) =
            pam_authenticate(&env.config, "alice@example.com", b"alice-password");
        transcript.conversation(what, &conversation);
        assert_eq!(outcome, PamOutcome::AuthinfoUnavail, "{what}: {:?}", conversation.logs);
    }
    iw.server.clear_override();

    // JSON nested 100,000 deep, as the list and inside a user's unknown member.
    let appint = AppIntServer::start(
        AppIntData::new().raw_list(format!("{}{}", "[".repeat(deep), "]".repeat(deep))),
        None,
    )
    .unwrap();
    let list_config = other_config(&env, "deep-list.toml", &appint_section(&appint.url(), ""));
    let inner = format!(
        "[{{\"userName\":\"x\",\"extra\":{}1{}}}]",
        "{\"a\":".repeat(deep),
        "}".repeat(deep)
    );
    let member = AppIntServer::start(AppIntData::new().raw_list(inner), None).unwrap();
    let member_config = other_config(&env, "deep-member.toml", &appint_section(&member.url(), ""));
    // The list itself: refused at the first element, which is not a user object.
    let started = Instant::now();
    let line = failure_line(&cli(&env, &list_config, &["sync"], &transcript));
    assert!(line.contains("element 0 of the user array: invalid type: sequence"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "JSON list");
    figures
        .push(format!("JSON list nested 100,000 deep: {:.2} s", started.elapsed().as_secs_f64()));
    // An unknown member: serde_json skips it without recursion (and without building it),
    // so the user is synced.
    let started = Instant::now();
    let out = cli(&env, &member_config, &["sync", "--json"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout_json(&out)["created"], serde_json::json!(["x"]));
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    figures.push(format!(
        "an unknown JSON member nested 100,000 deep: skipped in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    println!("hostile XML/JSON (errors leave the cache unchanged): {}", figures.join("; "));
    transcript.assert_never_shows(&["alice-password", ADMIN_PASSWORD]);
}

// ---------------------------------------------------------------------------------------
// Hostile names

fn passwd_line(user: &PublicUser) -> String {
    format!("{}:x:{}:{}:{}:{}:{}", user.name, user.uid, user.gid, user.gecos, user.home, user.shell)
}

#[test]
fn hostile_names_are_skipped_with_a_reason_and_never_reach_a_passwd_line() {
    let transcript = Transcript::default();
    let ten_mb = "m".repeat(10 * 1024 * 1024);
    let hostile: Vec<(String, &str)> = vec![
        ("a:b".into(), "':'"),
        ("new\nline".into(), "'\\n'"),
        ("sl/ash".into(), "'/'"),
        ("back\\slash".into(), "'\\\\'"),
        ("..".into(), "'.' and '..'"),
        (".".into(), "'.' and '..'"),
        ("root".into(), "has a meaning on this host"),
        ("DAEMON".into(), "has a meaning on this host"),
        ("admin".into(), "has a meaning on this host"),
        ("Docker".into(), "has a meaning on this host"),
        ("systemd-journal".into(), "has a meaning on this host"),
        ("x;id".into(), "';'"),
        ("$(reboot)".into(), "'$'"),
        ("a*b".into(), "'*'"),
        ("Émile".into(), "'É'"),
        ("\u{430}dmin".into(), "'\u{430}'"),
        ("root\u{200B}".into(), "'\\u{200b}'"),
        ("nul\0byte".into(), "'\\0'"),
        ("-rf".into(), "starts with '-'"),
        ("1234".into(), "only of digits"),
        ("esc\u{1b}[31m".into(), "'\\u{1b}'"),
        ("tab\there".into(), "'\\t'"),
        ("comma,name".into(), "','"),
        ("space name".into(), "' '"),
        ("a".repeat(257), "257 bytes long"),
        (ten_mb.clone(), "10485760 bytes long"),
    ];
    let mut data = AppIntData::new()
        .user(AppIntUser::new("good.user", "good-Pw-1").full_name("Good: User\nwith lines"))
        .user(AppIntUser::new("e.mile+tag@b.c", "emile-Pw-2"));
    for (name, _) in &hostile {
        data = data.user(AppIntUser::new(name, "hostile-Pw-3"));
    }
    // A display name of 10 MB: that account is skipped too, the others are synced.
    data = data.user(AppIntUser::new("big.name", "big-Pw-4").full_name(&ten_mb));
    let server = AppIntServer::start(data, None).unwrap();
    let env = Env::with_extra_config(&appint_section(&server.url(), ""));

    // The dry run's text report shows every name escaped, one line each.
    let out = cli(&env, &env.config, &["sync", "--dry-run"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!report.contains('\u{1b}') && !report.contains('\0'), "raw control characters");
    assert!(report.len() < 64 * 1024, "a {} byte report", report.len());
    for line in report.lines().filter(|l| l.starts_with("skipped")) {
        assert!(line.contains(": "), "{line}");
    }

    let out = cli(&env, &env.config, &["sync", "--json"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout.len() < 64 * 1024, "a {} byte JSON report", out.stdout.len());
    let report = stdout_json(&out);
    let created: Vec<&str> =
        report["created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(created, ["e.mile+tag@b.c", "good.user"]);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), hostile.len() + 1, "{skipped:#?}");
    let shown_as = |name: &str, shown: &str| {
        if name.len() <= 256 {
            shown == name
        } else {
            shown.len() < 100 && shown.contains(&format!("({} bytes)", name.len()))
        }
    };
    for (name, reason) in &hostile {
        let entry = skipped.iter().find(|e| shown_as(name, e["name"].as_str().unwrap()));
        let entry = entry.unwrap_or_else(|| panic!("{name:.40?} is not in {skipped:#?}"));
        let why = entry["reason"].as_str().unwrap();
        assert!(why.contains(reason), "{name:.40?}: {why}");
    }
    let big = skipped.iter().find(|e| e["name"] == "big.name").unwrap();
    assert!(big["reason"].as_str().unwrap().contains("the full name is 10485760 bytes long"));
    let status = stdout_json(&cli(&env, &env.config, &["status", "--json"], &transcript));
    assert_eq!(status["skipped"], hostile.len() + 1);

    // What NSS reads: every record makes exactly one well-formed passwd line.
    let cache = CacheDir::new(env.cache_dir());
    let public = cache.open::<PublicUser>().unwrap();
    let mut cursor = public.first_cursor();
    let mut lines = Vec::new();
    while let Some((user, next)) = public.next(cursor).unwrap() {
        let line = passwd_line(&user);
        assert_eq!(line.split(':').count(), 7, "{line:?}");
        assert_eq!(line.lines().count(), 1, "{line:?}");
        assert!(!line.contains('\0'), "{line:?}");
        lines.push(line);
        cursor = next;
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains(":Good  User with lines:/home/good.user:")),
        "{lines:?}"
    );
    assert!(public.by_name("root").unwrap().is_none());
    assert!(cache.open::<Group>().unwrap().is_empty());
    let meta_len: u64 = fs::read_dir(cache.current_dir().unwrap().unwrap())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(meta_len < 64 * 1024, "the cache holds {meta_len} bytes");

    // Through PAM, the same names are not ours (PAM_USER_UNKNOWN), a 10 MB one included.
    for name in ["a:b", "new\nline", "root\u{200B}", "ROOT", "nul\0byte", "..", "x;id", &ten_mb] {
        let (outcome, conversation) = pam_authenticate(&env.config, name, b"hostile-Pw-3");
        transcript.conversation("pam hostile name", &conversation);
        let shown: String = name.chars().take(20).collect();
        assert_eq!(outcome, PamOutcome::UserUnknown, "{shown:?}");
    }
    println!(
        "hostile names: {} skipped with a reason ({} byte JSON report), 2 created, {} passwd \
         lines all well-formed",
        hostile.len() + 1,
        out.stdout.len(),
        lines.len()
    );
    transcript.assert_never_shows(&["good-Pw-1", "emile-Pw-2", "hostile-Pw-3", "big-Pw-4"]);
}

// ---------------------------------------------------------------------------------------
// NUL bytes in passwords, invalid UTF-8 in a list

#[test]
fn nul_bytes_in_passwords_never_match_and_are_refused_as_new_passwords() {
    let transcript = Transcript::default();
    let appint = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = Env::with_extra_config(&appint_section(&appint.url(), ""));
    let out = cli(&env, &env.config, &["sync"], &transcript);
    assert!(out.status.success(), "{}", text(&out));

    // A local user: the password with anything after a NUL is another password.
    let out =
        env.cli(&["user", "add", "nully", "--password-stdin"], &format!("{LOCAL_PASSWORD}\n"));
    transcript.output("user add", &out);
    assert!(out.status.success(), "{}", text(&out));
    let with_nul = format!("{LOCAL_PASSWORD}\0suffix");
    for (password, wanted) in [
        (LOCAL_PASSWORD.as_bytes(), PamOutcome::Success),
        (with_nul.as_bytes(), PamOutcome::AuthErr),
        (&with_nul.as_bytes()[..LOCAL_PASSWORD.len() + 1], PamOutcome::AuthErr),
        (b"\0", PamOutcome::AuthErr),
    ] {
        let (outcome, conversation) = pam_authenticate(&env.config, "nully", password);
        transcript.conversation("nul local", &conversation);
        assert_eq!(outcome, wanted, "{password:?}");
    }
    // A new password holding a NUL could never be typed: refused, nothing stored.
    let out = env.cli(&["user", "passwd", "nully", "--password-stdin"], "new\0password\n");
    transcript.output("user passwd", &out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("NUL byte"), "{}", text(&out));
    assert_eq!(
        pam_authenticate(&env.config, "nully", LOCAL_PASSWORD.as_bytes()).0,
        PamOutcome::Success
    );

    // Application Integration: the bytes arrive exactly (%00), and do not match.
    appint.mock.clear_requests();
    let (outcome, conversation) = pam_authenticate(&env.config, "alice", b"alice-password\0x");
    transcript.conversation("nul appint", &conversation);
    assert_eq!(outcome, PamOutcome::AuthErr, "{:?}", conversation.logs);
    assert_eq!(appint.mock.received_passwords(), ["alice-password\0x"]);

    // IceWarp: XML cannot carry a NUL, so the directory is not even asked.
    let iw = IcewarpServer::start(icewarp_data(), None).unwrap();
    let iw_config = other_config(&env, "icewarp.toml", &icewarp_section(&iw.url(), ""));
    let out = cli(&env, &iw_config, &["sync"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    iw.mock.clear_commands();
    let (outcome, conversation) =
        pam_authenticate(&iw_config, "alice@example.com", b"alice-password\0");
    transcript.conversation("nul icewarp", &conversation);
    assert_eq!(outcome, PamOutcome::AuthErr, "{:?}", conversation.logs);
    assert!(iw.mock.commands().is_empty(), "{:?}", iw.mock.command_names());
    assert_eq!(
        pam_authenticate(&iw_config, "alice@example.com", b"alice-password").0,
        PamOutcome::Success
    );

    // A list whose user name is not UTF-8: a clear error, nothing written.
    let before = snapshot(&env.cache_dir());
    let broken = AppIntServer::start(
        AppIntData::new().raw_list(b"[{\"userName\":\"bad\xff\xfename\"}]".to_vec()),
        None,
    )
    .unwrap();
    let broken_config = other_config(&env, "broken.toml", &appint_section(&broken.url(), ""));
    let line = failure_line(&cli(&env, &broken_config, &["sync"], &transcript));
    assert!(line.contains("malformed reply") && line.contains("element 0"), "{line}");
    assert_same_snapshot(&before, &snapshot(&env.cache_dir()), "invalid UTF-8");
    transcript.assert_never_shows(&[
        LOCAL_PASSWORD,
        "alice-password",
        ADMIN_PASSWORD,
        "password\0",
    ]);
}

// ---------------------------------------------------------------------------------------
// Reserved ids

#[test]
fn uids_are_never_handed_out_in_reserved_ranges_or_over_local_ids() {
    let transcript = Transcript::default();
    let mut data = AppIntData::new();
    for i in 0..10 {
        data = data.user(AppIntUser::new(&format!("edge{i}"), "edge-Pw-5"));
    }
    let server = AppIntServer::start(data, None).unwrap();
    let env = Env::with_extra_config(&appint_section(&server.url(), ""));

    // Ranges touching reserved ids are refused before anything happens.
    for (range, what) in [
        ("[0, 5000]", "system accounts"),
        ("[900, 1100]", "system accounts"),
        ("[61180, 61190]", "systemd's dynamic users"),
        ("[65000, 65100]", "systemd's dynamic users"),
        ("[65520, 65534]", "nobody (65534)"),
        ("[65535, 70000]", "16-bit -1"),
        ("[4000000000, 4294967295]", "4294967295"),
    ] {
        let text_of = fs::read_to_string(&env.config).unwrap();
        let config = env.dir.path().join("reserved.toml");
        fs::write(&config, text_of.replace("[unix]\n", &format!("[unix]\nuid_range = {range}\n")))
            .unwrap();
        fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let line = failure_line(&cli(&env, &config, &["sync"], &transcript));
        assert!(line.contains("unix.uid_range") && line.contains(what), "{range}: {line}");
    }
    assert!(!env.cache_dir().exists(), "a refused configuration wrote something");

    // Five ids just below systemd's range, one of them a local uid: four users fit, the rest
    // are skipped with a reason, none gets 61184 or above, or the local id.
    let passwd = env.dir.path().join("passwd");
    let mut local = fs::read_to_string(&passwd).unwrap();
    local.push_str("svc:x:61181:61181::/:/bin/false\n");
    fs::write(&passwd, local).unwrap();
    let text_of = fs::read_to_string(&env.config).unwrap();
    fs::write(&env.config, text_of.replace("[unix]\n", "[unix]\nuid_range = [61179, 61183]\n"))
        .unwrap();
    let out = cli(&env, &env.config, &["sync", "--json"], &transcript);
    // The users that fit are written, but a full range is an error of the run.
    assert!(!out.status.success(), "{}", text(&out));
    let report = stdout_json(&out);
    assert!(report["errors"][0].as_str().unwrap().contains("unix.uid_range"), "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 4, "{report}");
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 6);
    assert!(skipped.iter().all(|s| s["reason"].as_str().unwrap().contains("no free id left")));
    let db = CacheDir::new(env.cache_dir()).load().unwrap();
    let mut ids: Vec<u32> = db.users.iter().flat_map(|u| [u.uid, u.gid]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, [61179, 61180, 61182, 61183]);
    println!("reserved ids: 7 ranges refused; 10 users in 5 ids (one local): 4 created, 6 skipped");
    transcript.assert_never_shows(&["edge-Pw-5"]);
}

// ---------------------------------------------------------------------------------------
// Real libpam: proxies pointing at a dead port, and no password in its syslog lines

#[test]
fn pam_ignores_proxy_variables_and_never_logs_a_password() {
    let transcript = Transcript::default();
    let server = AppIntServer::start(AppIntData::demo(), None).unwrap();
    let env = Env::with_extra_config(&appint_section(&server.url(), ""));
    let out = cli(&env, &env.config, &["sync"], &transcript);
    assert!(out.status.success(), "{}", text(&out));
    let out =
        env.cli(&["user", "add", "localpw", "--password-stdin"], &format!("{LOCAL_PASSWORD}\n"));
    transcript.output("user add", &out);
    assert!(out.status.success(), "{}", text(&out));
    env.pam_service("dircache", "debug");

    let proxy = testbed::dead_proxy_env();
    let mut vars: Vec<(&str, &str)> = proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Every syslog line of the module, down to LOG_DEBUG, on stderr.
    vars.push(("PAM_WRAPPER_DEBUGLEVEL", "2"));
    let cases: [(&str, &str, bool); 5] = [
        ("alice", "alice-password", true),
        ("alice", "wrong-alice-Pw", false),
        ("bob", "bob-password", true),
        ("localpw", LOCAL_PASSWORD, true),
        ("localpw", "wrong-local-Pw", false),
    ];
    for (user, password, accepted) in cases {
        let out = env.pamtester_with_env(
            "dircache",
            user,
            &["authenticate", "acct_mgmt"],
            &format!("{password}\n"),
            &vars,
        );
        transcript.output(&format!("pamtester {user}"), &out);
        assert_eq!(out.status.success(), accepted, "{user}: {}", text(&out));
    }
    assert!(server.mock.requests().iter().any(|r| r.param("cmd") == Some("auth")));
    transcript.assert_never_shows(&[
        "alice-password",
        "wrong-alice-Pw",
        "bob-password",
        LOCAL_PASSWORD,
        "wrong-local-Pw",
    ]);
    println!("real libpam with proxies at a dead port: 5 logins answered right; {} bytes of output and syslog checked for passwords", transcript.len());
}
