use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use super::script::ScriptedConversation;
use super::*;
use crate::cache::PublicUser;
use crate::passwords::hash_password;
use crate::user::EXPIRED_LONG_AGO;
use crate::user_edits::{add_user, set_user, NewUser, UserChanges};

type Script = ScriptedConversation;

/// As if libnss_dircache answered `getpwnam(user)` from `setup`'s cache (with the uid
/// cached there).
fn served_by(mut script: Script, setup: &Setup) -> Script {
    let users = setup.cache().open::<PublicUser>().unwrap();
    script.system_uid = users.by_name(&script.user).unwrap().map(|user| user.uid);
    script.nss_settings = crate::nss::Settings {
        cache_dir: setup.config.cache.dir.clone().into(),
        local_passwd: setup.config.unix.local_passwd.clone().into(),
        local_group: setup.config.unix.local_group.clone().into(),
    };
    script
}

struct Setup {
    _dir: tempfile::TempDir,
    config_path: PathBuf,
    config: Config,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    fn with_config(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let config_path = dir.path().join("dircache.toml");
        let text = format!(
            "[cache]\ndir = {:?}\n[unix]\nlocal_passwd = {:?}\nlocal_group = {:?}\n\
             [passwords]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{extra}",
            dir.path().join("cache"),
            passwd,
            dir.path().join("group"),
        );
        fs::write(&config_path, text).unwrap();
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::load(&config_path).unwrap();
        Setup { _dir: dir, config_path, config }
    }

    fn args(&self) -> String {
        format!("config={}", self.config_path.display())
    }

    fn add(&self, name: &str, password: Option<&str>, auth: AuthMethod, privileges: &[Privilege]) {
        let hash = password.map(|p| hash_password(p.as_bytes(), &self.config.passwords).unwrap());
        let local = LocalAccounts::default();
        let new = NewUser {
            name: name.to_string(),
            full_name: None,
            emails: vec![],
            auth,
            privileges: Some(privileges.to_vec()),
            password_hash: hash,
        };
        self.cache()
            .update(Duration::from_secs(5), 1, |db| {
                add_user(db, &self.config, &local, new, 1).map(|_| ())
            })
            .unwrap();
    }

    fn change(&self, name: &str, changes: UserChanges) {
        self.cache()
            .update(Duration::from_secs(5), 2, |db| set_user(db, name, changes, 2).map(|_| ()))
            .unwrap();
    }

    fn cache(&self) -> CacheDir {
        CacheDir::new(&self.config.cache.dir)
    }
}

const LOGIN: &[Privilege] = &[Privilege::Login];

#[test]
fn right_wrong_and_unknown() {
    let setup = Setup::new();
    setup.add("alice", Some("s3cret"), AuthMethod::Local, LOGIN);
    let args = setup.args();

    let mut right = Script::new("ALICE", &[(AuthtokItem::Current, "s3cret")]);
    assert_eq!(authenticate(&mut right, &[&args]), PamOutcome::Success);
    let mut wrong = Script::new("alice", &[(AuthtokItem::Current, "s3cre")]);
    assert_eq!(authenticate(&mut wrong, &[&args]), PamOutcome::AuthErr);
    // The password is asked for even for an unknown user, so the prompt reveals nothing.
    let mut unknown = Script::new("mallory", &[(AuthtokItem::Current, "x")]);
    assert_eq!(authenticate(&mut unknown, &[&args]), PamOutcome::UserUnknown);
}

#[test]
fn local_accounts_and_invalid_names_are_never_ours() {
    let setup = Setup::new();
    let args = setup.args();
    let mut root = Script::new("root", &[(AuthtokItem::Current, "x")]);
    assert_eq!(authenticate(&mut root, &[&args]), PamOutcome::UserUnknown);
    let mut root_account = Script::new("Root", &[]);
    assert_eq!(account(&mut root_account, &[&args]), PamOutcome::UserUnknown);
    let mut bad = Script::new("../etc", &[(AuthtokItem::Current, "x")]);
    assert_eq!(authenticate(&mut bad, &[&args]), PamOutcome::UserUnknown);
}

#[test]
fn an_indented_local_user_is_never_ours() {
    let setup = Setup::new();
    setup.add("spacey", Some("pw"), AuthMethod::Local, LOGIN);
    let mut before = Script::new("spacey", &[(AuthtokItem::Current, "pw")]);
    assert_eq!(authenticate(&mut before, &[&setup.args()]), PamOutcome::Success);
    // glibc's files read this line as the local user spacey: logging in as the cache user
    // would be logging in as it.
    let passwd = setup._dir.path().join("passwd");
    fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh
  spacey:x:1600:1600::/:/bin/sh
",
    )
    .unwrap();
    let mut spacey = Script::new("spacey", &[(AuthtokItem::Current, "pw")]);
    assert_eq!(authenticate(&mut spacey, &[&setup.args()]), PamOutcome::UserUnknown);
    let mut account_step = Script::new("spacey", &[]);
    assert_eq!(account(&mut account_step, &[&setup.args()]), PamOutcome::UserUnknown);
}

#[test]
fn no_password_fails_and_no_configured_directory_is_an_outage() {
    let setup = Setup::new();
    setup.add("nopass", None, AuthMethod::Local, LOGIN);
    setup.add("dir", None, AuthMethod::Directory, LOGIN);
    let args = setup.args();
    let mut nopass = Script::new("nopass", &[(AuthtokItem::Current, "")]);
    assert_eq!(authenticate(&mut nopass, &[&args]), PamOutcome::AuthErr);
    let mut dir = Script::new("dir", &[(AuthtokItem::Current, "whatever")]);
    assert_eq!(authenticate(&mut dir, &[&args]), PamOutcome::AuthinfoUnavail);
    assert!(dir
        .logs
        .iter()
        .any(|(_, line)| line.contains("directory") && line.contains("user=dir")));
}

#[test]
fn account_checks_enabled_and_privileges() {
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, &[Privilege::Login, Privilege::ArchiveEmail]);
    setup.add("bob", Some("pw"), AuthMethod::Local, &[Privilege::ReadOwnArchive]);
    let args = setup.args();
    assert_eq!(account(&mut Script::new("alice", &[]), &[&args]), PamOutcome::Success);
    assert_eq!(account(&mut Script::new("bob", &[]), &[&args]), PamOutcome::PermDenied);
    let require = [args.as_str(), "require=login,archive_email"];
    assert_eq!(account(&mut Script::new("alice", &[]), &require), PamOutcome::Success);
    let require_admin = [args.as_str(), "require=admin"];
    assert_eq!(account(&mut Script::new("alice", &[]), &require_admin), PamOutcome::PermDenied);

    setup.change("alice", UserChanges { enabled: Some(false), ..UserChanges::default() });
    let mut disabled = Script::new("alice", &[]);
    assert_eq!(account(&mut disabled, &[&args]), PamOutcome::AcctExpired);
    assert!(disabled.messages[0].contains("disabled"));

    // auth refuses a disabled account too, for services that skip the account step, with
    // the same answer whatever the password: it must not tell which one is right.
    let mut right = Script::new("alice", &[(AuthtokItem::Current, "pw")]);
    assert_eq!(authenticate(&mut right, &[&args]), PamOutcome::AuthErr);
    assert!(right.messages[0].contains("disabled"), "{:?}", right.messages);
    let mut wrong = Script::new("alice", &[(AuthtokItem::Current, "nope")]);
    assert_eq!(authenticate(&mut wrong, &[&args]), PamOutcome::AuthErr);
    assert_eq!(wrong.messages, right.messages);
}

/// Sets `name`'s limits as a sync would.
fn set_limits(setup: &Setup, name: &str, limits: crate::user::AccountLimits) {
    setup
        .cache()
        .update(Duration::from_secs(5), 3, |db| {
            let user = db.users.iter_mut().find(|u| u.name == name).unwrap();
            user.limits = limits;
            Ok::<(), CacheError>(())
        })
        .unwrap();
}

const DAY: u64 = 86_400;

#[test]
fn account_refuses_expired_blocked_and_expired_password_by_the_conversation_clock() {
    use crate::user::AccountLimits;
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    let args = setup.args();
    let at = |day: u64| {
        let mut script = Script::new("alice", &[]);
        script.now = Some(day * DAY + 3600);
        script
    };
    let none = AccountLimits::default();
    // Expires on day 20_818 (2026-12-31): refused from its first second.
    set_limits(&setup, "alice", AccountLimits { expires_day: Some(20_818), ..none });
    let mut before = at(20_817);
    assert_eq!(account(&mut before, &[&args]), PamOutcome::Success);
    assert!(before.messages.is_empty(), "{:?}", before.messages);
    let mut on_the_day = Script::new("alice", &[]);
    on_the_day.now = Some(20_818 * DAY);
    assert_eq!(account(&mut on_the_day, &[&args]), PamOutcome::AcctExpired);
    assert_eq!(
        on_the_day.messages,
        ["Access denied: account expired (since 2026-12-31). Ask an administrator."]
    );
    assert!(logged(&on_the_day, "access denied: account expired (since 2026-12-31); user=alice"));

    // An unreadable date (expired long ago) shows no date.
    set_limits(&setup, "alice", AccountLimits { expires_day: Some(EXPIRED_LONG_AGO), ..none });
    let mut unreadable = at(20_000);
    assert_eq!(account(&mut unreadable, &[&args]), PamOutcome::AcctExpired);
    assert_eq!(unreadable.messages, ["Access denied: account expired. Ask an administrator."]);

    set_limits(&setup, "alice", AccountLimits { blocked: true, ..none });
    let mut blocked = at(20_000);
    assert_eq!(account(&mut blocked, &[&args]), PamOutcome::PermDenied);
    assert!(blocked.messages[0].contains("account blocked"), "{:?}", blocked.messages);

    set_limits(&setup, "alice", AccountLimits { password_expired: true, ..none });
    let mut password = at(20_000);
    assert_eq!(account(&mut password, &[&args]), PamOutcome::PermDenied);
    assert!(
        password.messages[0].contains("password expired: change it in webmail"),
        "{:?}",
        password.messages
    );

    set_limits(&setup, "alice", none);
    assert_eq!(account(&mut at(20_000), &[&args]), PamOutcome::Success);
}

/// The reason is shown whatever the password (issue 14 §2: "without revealing whether the
/// password was right"): a right and a wrong one get the same answer and the same message,
/// and both count as a failure, so that not even the next attempt's delay tells them apart.
/// Before, only the right password got the message: an oracle for guessers.
#[test]
fn auth_shows_why_whatever_the_password() {
    use crate::user::AccountLimits;
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    setup.add("bob", Some("pw"), AuthMethod::Local, &[Privilege::ReadOwnArchive]);
    let args = setup.args();
    let none = AccountLimits::default();
    let states: [(AccountLimits, &str); 4] = [
        (AccountLimits { expires_day: Some(20_000), ..none }, "account expired (since 2024-10-04)"),
        (AccountLimits { blocked: true, ..none }, "account blocked"),
        (
            AccountLimits { password_expired: true, ..none },
            "password expired: change it in webmail",
        ),
        (none, ""),
    ];
    for (limits, shown) in states {
        set_limits(&setup, "alice", limits);
        let mut wrong = Script::new("alice", &[(AuthtokItem::Current, "nope")]);
        wrong.now = Some(20_100 * DAY);
        assert_eq!(authenticate(&mut wrong, &[&args]), PamOutcome::AuthErr, "{limits:?}");
        let mut right = Script::new("alice", &[(AuthtokItem::Current, "pw")]);
        right.now = Some(20_100 * DAY);
        let outcome = authenticate(&mut right, &[&args]);
        if shown.is_empty() {
            assert!(wrong.messages.is_empty(), "{:?}", wrong.messages);
            assert_eq!(outcome, PamOutcome::Success);
            assert!(right.messages.is_empty(), "{:?}", right.messages);
        } else {
            assert_eq!(outcome, PamOutcome::AuthErr, "{limits:?}");
            assert_eq!(right.messages.len(), 1, "{:?}", right.messages);
            assert!(right.messages[0].contains(shown), "{:?}", right.messages);
            assert_eq!(wrong.messages, right.messages, "{limits:?}");
        }
    }
    // A missing privilege, too.
    let mut wrong = Script::new("bob", &[(AuthtokItem::Current, "nope")]);
    assert_eq!(authenticate(&mut wrong, &[&args]), PamOutcome::PermDenied);
    let mut right = Script::new("bob", &[(AuthtokItem::Current, "pw")]);
    assert_eq!(authenticate(&mut right, &[&args]), PamOutcome::PermDenied);
    assert_eq!(right.messages, ["Access denied: missing privilege login. Ask an administrator."]);
    assert_eq!(wrong.messages, right.messages);
    let mut key_login = Script::new("bob", &[]);
    assert_eq!(account(&mut key_login, &[&args]), PamOutcome::PermDenied);
    assert!(key_login.messages[0].contains("missing privilege login"));
}

/// A right password of a refused account counts as a failure, like a wrong one: a success
/// would reset the count, and the next attempt's delay would show which password was right.
#[test]
fn a_refused_right_password_counts_as_a_failure() {
    use crate::user::AccountLimits;
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    let args = setup.args();
    set_limits(&setup, "alice", AccountLimits { blocked: true, ..AccountLimits::default() });
    for password in ["nope", "pw", "nope"] {
        let mut script = Script::new("alice", &[(AuthtokItem::Current, password)]);
        assert_eq!(authenticate(&mut script, &[&args]), PamOutcome::AuthErr);
    }
    let alice = setup.cache().load().unwrap().user("alice").unwrap().clone();
    assert_eq!(LoginStates::new(&setup.config.cache.dir).load(&alice).unwrap().failures, 3);
}

/// Bad arguments or configuration: a name dircache's NSS serves is refused (whatever the
/// modules after dircache say), any other name is left to them, so that a broken dircache
/// locks out neither local users nor those of another source.
#[test]
fn bad_arguments_and_configuration_refuse_dircache_users_and_leave_the_others() {
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    let args = setup.args();
    let typo = [args.as_str(), "requires=admin"];
    let unknown_privilege = [args.as_str(), "require=superuser"];
    let missing = ["config=/nonexistent/dircache.toml"];
    let cases = [
        (&typo[..], PamOutcome::ServiceErr),
        (&unknown_privilege[..], PamOutcome::ServiceErr),
        (&missing[..], PamOutcome::AuthinfoUnavail),
    ];
    for (args, refusal) in cases {
        let mut alice = served_by(Script::new("alice", &[]), &setup);
        assert_eq!(account(&mut alice, args), refusal, "{args:?}");
        let mut alice = served_by(Script::new("alice", &[]), &setup);
        assert_eq!(authenticate(&mut alice, args), refusal, "{args:?}");
        // The system resolves the name to another account (a local user, sssd, …), or
        // NSS does not serve it: not dircache's to refuse.
        for system_uid in [None, Some(1000)] {
            let mut other = served_by(Script::new("alice", &[]), &setup);
            other.system_uid = system_uid;
            assert_eq!(account(&mut other, args), PamOutcome::Ignore, "{args:?}");
            let mut other = served_by(Script::new("alice", &[]), &setup);
            other.system_uid = system_uid;
            assert_eq!(
                change_password(&mut other, args, ChangePhase::Prelim, 1),
                PamOutcome::Ignore
            );
            assert!(other.logs.iter().any(|(_, line)| line.contains("left to the other modules")));
        }
        let mut root = Script::new("root", &[]);
        root.system_uid = Some(0);
        assert_eq!(authenticate(&mut root, args), PamOutcome::Ignore, "{args:?}");
    }
    let mut script = served_by(Script::new("alice", &[]), &setup);
    assert_eq!(account(&mut script, &missing), PamOutcome::AuthinfoUnavail);
    assert!(script.logs[0].1.contains("/nonexistent/dircache.toml"));

    // alice became a local account with her old uid (to keep her files) while a stale cache
    // record remains: NSS does not serve her any more (local accounts win), so a broken
    // dircache must not lock her out.
    let uid = setup.cache().load().unwrap().user("alice").unwrap().uid;
    let local =
        format!("root:x:0:0:root:/root:/bin/sh\nalice:x:{uid}:{uid}::/home/alice:/bin/sh\n");
    fs::write(&setup.config.unix.local_passwd, local).unwrap();
    let mut local_alice = served_by(Script::new("alice", &[]), &setup);
    local_alice.system_uid = Some(uid);
    assert_eq!(account(&mut local_alice, &missing), PamOutcome::Ignore);
}

#[test]
fn corrupt_cache_is_an_outage_not_a_login() {
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    let current = setup.cache().current_dir().unwrap().unwrap();
    let private = current.join("users.private");
    let original = fs::read(&private).unwrap();
    let header = crate::cache::format::HEADER_LEN as usize;
    // Inside alice's record, inside her slot of the name index, and a truncated file.
    let name_index = original.len() - 2 * 8 * 24;
    let alice_slot = (0..8)
        .map(|slot| name_index + slot * 24)
        .find(|at| original[at + 8..at + 16] != [0u8; 8])
        .unwrap();
    for corrupt in [header + 20, alice_slot + 3, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[corrupt] ^= 0x01;
        if corrupt == original.len() - 1 {
            bytes.pop();
        }
        fs::write(&private, bytes).unwrap();
        let mut script = served_by(Script::new("alice", &[]), &setup);
        assert_eq!(
            account(&mut script, &[&setup.args()]),
            PamOutcome::AuthinfoUnavail,
            "byte {corrupt}"
        );
        assert!(script.logs[0].1.contains("corrupt"), "{:?}", script.logs);
        // A name NSS does not serve from dircache is not refused because of the damage.
        let mut bob = served_by(Script::new("bob", &[]), &setup);
        let outcome = account(&mut bob, &[&setup.args()]);
        assert!(
            matches!(outcome, PamOutcome::Ignore | PamOutcome::UserUnknown),
            "byte {corrupt}: {outcome:?}"
        );
    }
}

#[test]
fn password_change_needs_the_privilege_and_the_current_password() {
    let setup = Setup::new();
    setup.add(
        "alice",
        Some("old-pw"),
        AuthMethod::Local,
        &[Privilege::Login, Privilege::ChangePassword],
    );
    setup.add("bob", Some("pw"), AuthMethod::Local, LOGIN);
    setup.add("dir", None, AuthMethod::Directory, &[Privilege::Login, Privilege::ChangePassword]);
    let args = setup.args();

    let mut bob = Script::new("bob", &[]);
    assert_eq!(change_password(&mut bob, &[&args], ChangePhase::Prelim, 3), PamOutcome::PermDenied);
    let mut dir = Script::new("dir", &[]);
    assert_eq!(change_password(&mut dir, &[&args], ChangePhase::Prelim, 3), PamOutcome::PermDenied);
    assert!(dir.messages[0].contains("directory"));

    let mut wrong = Script::new("alice", &[(AuthtokItem::Old, "nope")]);
    assert_eq!(change_password(&mut wrong, &[&args], ChangePhase::Prelim, 3), PamOutcome::AuthErr);

    let mut prelim = Script::new("alice", &[(AuthtokItem::Old, "old-pw")]);
    assert_eq!(change_password(&mut prelim, &[&args], ChangePhase::Prelim, 3), PamOutcome::Success);
    let mut same =
        Script::new("alice", &[(AuthtokItem::Old, "old-pw"), (AuthtokItem::New, "old-pw")]);
    assert_eq!(
        change_password(&mut same, &[&args], ChangePhase::Update, 3),
        PamOutcome::AuthtokErr
    );
    let mut update =
        Script::new("alice", &[(AuthtokItem::Old, "old-pw"), (AuthtokItem::New, "new-pw")]);
    assert_eq!(change_password(&mut update, &[&args], ChangePhase::Update, 3), PamOutcome::Success);

    let mut old = Script::new("alice", &[(AuthtokItem::Current, "old-pw")]);
    assert_eq!(authenticate(&mut old, &[&args]), PamOutcome::AuthErr);
    let mut new = Script::new("alice", &[(AuthtokItem::Current, "new-pw")]);
    assert_eq!(authenticate(&mut new, &[&args]), PamOutcome::Success);
    assert_eq!(setup.cache().load().unwrap().user("alice").unwrap().updated_at, 3);
}

#[test]
fn logs_never_contain_the_password() {
    let setup = Setup::new();
    setup.add("alice", Some("hunter2-secret"), AuthMethod::Local, LOGIN);
    let args = setup.args();
    let debug = [args.as_str(), "debug"];
    for attempt in ["hunter2-secret", "hunter2-wrong"] {
        let mut script = Script::new("alice", &[(AuthtokItem::Current, attempt)]);
        authenticate(&mut script, &debug);
        assert!(!script.logs.is_empty());
        for (_, line) in &script.logs {
            assert!(!line.contains("hunter2"), "{line}");
        }
    }
}

#[test]
fn argument_parsing() {
    let args =
        PamArgs::parse(["config=/x.toml", "require=login, admin", "debug", "try_first_pass"])
            .unwrap();
    assert_eq!(args.config, PathBuf::from("/x.toml"));
    assert_eq!(args.require, vec![Privilege::Login, Privilege::Admin]);
    assert!(args.debug && args.try_first_pass && !args.use_first_pass);
    assert_eq!(PamArgs::parse([]).unwrap().require, vec![Privilege::Login]);
    assert!(PamArgs::parse(["require="]).is_err());
    assert!(PamArgs::parse(["config="]).is_err());
}

const ALICE: &str = "alice@example.com";

fn directory_setup(url: &str) -> Setup {
    let setup = Setup::with_config(&format!(
        "[directory]\ntype = \"icewarp\"\nserver = {url:?}\ntimeout_secs = 1\n\
         [auth]\ncache_credentials = true\noffline_days = 7\n"
    ));
    setup.add(ALICE, None, AuthMethod::Directory, LOGIN);
    setup
}

fn attempt(setup: &Setup, password: &'static str, now: u64) -> (PamOutcome, Script) {
    let mut script = Script::new(ALICE, &[(AuthtokItem::Current, password)]);
    script.now = Some(now);
    let outcome = authenticate(&mut script, &[&setup.args()]);
    (outcome, script)
}

fn logged(script: &Script, text: &str) -> bool {
    script.logs.iter().any(|(_, line)| line.contains(text))
}

fn alice_directory() -> mock_directory::IcewarpServer {
    use mock_directory::{Account, Domain, IcewarpData, IcewarpServer};
    let data = IcewarpData::new("admin@example.com", "admin-pw")
        .domain(Domain::new("example.com"))
        .account(Account::user(ALICE, "Alice", "right-pw"));
    IcewarpServer::start(data, None).unwrap()
}

fn logged_at(script: &Script, level: LogLevel, text: &str) -> bool {
    script.logs.iter().any(|(at, line)| *at == level && line.contains(text))
}

#[test]
fn offline_credentials_only_when_the_directory_is_unreachable() {
    use mock_directory::{Action, Fault, Response};
    let iw = alice_directory();
    let setup = directory_setup(&iw.url());
    let day = 86_400;

    // Online: the directory decides, and the password is remembered.
    assert_eq!(attempt(&setup, "right-pw", day).0, PamOutcome::Success);

    // Something answers, but not as the directory does: slow (a tarpit may hide a wrong
    // password), an HTTP error, garbage, a cut connection. Whoever sits in the path can
    // produce each of these, so none opens the cached password.
    let answers: [(&str, Action); 4] = [
        ("no answer within 1 s", Fault::Delay(Duration::from_secs(3)).into()),
        ("HTTP status 503", Response::new(503).into()),
        ("malformed reply", Response::text(200, "<html>maintenance</html>").into()),
        ("the connection failed", Fault::CloseWithoutResponse.into()),
    ];
    for (what, action) in answers {
        iw.server.set_override(action);
        let (outcome, script) = attempt(&setup, "right-pw", 2 * day);
        assert_eq!(outcome, PamOutcome::AuthinfoUnavail, "{what}: {:?}", script.logs);
        assert!(!logged(&script, "OFFLINE"), "{what}: {:?}", script.logs);
        assert!(
            logged_at(&script, LogLevel::Error, "possible attack"),
            "{what}: {:?}",
            script.logs
        );
        assert!(logged(&script, what), "{what}: {:?}", script.logs);
    }

    // Unreachable (nothing listens any more): the cached hash decides, and says so.
    drop(iw);
    let (outcome, offline) = attempt(&setup, "right-pw", 2 * day);
    assert_eq!(outcome, PamOutcome::Success, "{:?}", offline.logs);
    assert!(logged(&offline, "OFFLINE login"), "{:?}", offline.logs);
    assert!(!logged(&offline, "possible attack"), "{:?}", offline.logs);
    assert_eq!(attempt(&setup, "wrong-pw", 2 * day).0, PamOutcome::AuthErr);
    // An empty password is refused without asking anyone, and wipes nothing.
    let (outcome, empty) = attempt(&setup, "", 2 * day);
    assert_eq!(outcome, PamOutcome::AuthErr);
    assert!(logged(&empty, "an empty password"), "{:?}", empty.logs);
    assert_eq!(attempt(&setup, "right-pw", 2 * day).0, PamOutcome::Success);
    // Expired after offline_days.
    assert_eq!(attempt(&setup, "right-pw", 9 * day).0, PamOutcome::AuthinfoUnavail);
}

#[test]
fn the_directory_refusing_the_cached_password_itself_wipes_it() {
    let iw = alice_directory();
    let setup = directory_setup(&iw.url());
    assert_eq!(attempt(&setup, "right-pw", 10).0, PamOutcome::Success);
    // Changed in the directory since: the cached password is refused there, so it goes.
    iw.mock.update(|d| d.account_mut(ALICE).unwrap().password = "new-pw".into());
    let (outcome, stale) = attempt(&setup, "right-pw", 10);
    assert_eq!(outcome, PamOutcome::AuthErr);
    assert!(logged(&stale, "no longer accepts the cached offline credentials"), "{:?}", stale.logs);
    drop(iw);
    let (outcome, refused) = attempt(&setup, "right-pw", 10);
    assert_eq!(outcome, PamOutcome::AuthinfoUnavail, "the wiped hash must not log anyone in");
    assert!(logged(&refused, "no fresh cached credentials"), "{:?}", refused.logs);
}

#[test]
fn a_black_holed_directory_falls_back_to_offline_credentials_after_the_connect_timeout() {
    let iw = alice_directory();
    let setup = Setup::with_config(&format!(
        "[directory]\ntype = \"icewarp\"\nserver = {:?}\ntimeout_secs = 60\n\
         connect_timeout_secs = 1\n[auth]\ncache_credentials = true\n",
        iw.url()
    ));
    setup.add(ALICE, None, AuthMethod::Directory, LOGIN);
    assert_eq!(attempt(&setup, "right-pw", 10).0, PamOutcome::Success);
    // The same configuration, pointed at an address that never answers a SYN.
    let hole = mock_directory::hostile::BlackHole::new().unwrap();
    let text = fs::read_to_string(&setup.config_path).unwrap();
    let dead = format!("{}/icewarpapi/", hole.url());
    fs::write(&setup.config_path, text.replace(&iw.url(), &dead)).unwrap();
    let (outcome, offline) = attempt(&setup, "right-pw", 20);
    assert_eq!(outcome, PamOutcome::Success, "{:?}", offline.logs);
    assert!(logged(&offline, "OFFLINE login"), "{:?}", offline.logs);
    assert!(logged(&offline, "no connection within 1 s"), "{:?}", offline.logs);
}

/// Cached offline credentials of `setup`'s ALICE, as stored.
fn offline_hash(setup: &Setup) -> Option<String> {
    let alice = setup.cache().load().unwrap().user(ALICE).unwrap().clone();
    LoginStates::new(&setup.config.cache.dir).load(&alice).unwrap().offline_hash
}

#[test]
fn a_wrong_password_from_anyone_keeps_the_offline_credential() {
    let iw = alice_directory();
    let setup = directory_setup(&iw.url());
    assert_eq!(attempt(&setup, "right-pw", 1).0, PamOutcome::Success);
    let cached = offline_hash(&setup);
    assert!(cached.is_some());
    // Anyone may type a wrong password for alice: the directory refuses it, which says
    // nothing about alice's own password.
    for guess in ["guess-1", "right-pw ", ""] {
        assert_eq!(attempt(&setup, guess, 2).0, PamOutcome::AuthErr, "{guess:?}");
    }
    assert_eq!(offline_hash(&setup), cached, "the cached credential was wiped");
    drop(iw);
    let (outcome, offline) = attempt(&setup, "right-pw", 3);
    assert_eq!(outcome, PamOutcome::Success, "{:?}", offline.logs);
    assert!(logged(&offline, "OFFLINE login"), "{:?}", offline.logs);
}

#[test]
fn a_disabled_account_loses_its_offline_credential_whatever_password_is_typed() {
    let iw = alice_directory();
    let setup = directory_setup(&iw.url());
    assert_eq!(attempt(&setup, "right-pw", 1).0, PamOutcome::Success);
    iw.mock.update(|d| d.account_mut(ALICE).unwrap().state = 2);
    assert_eq!(attempt(&setup, "right-pw", 2).0, PamOutcome::AuthErr);
    assert_eq!(offline_hash(&setup), None);
}

#[test]
fn a_login_deletes_stale_offline_credentials() {
    let iw = alice_directory();
    let setup = directory_setup(&iw.url());
    assert_eq!(attempt(&setup, "right-pw", 1).0, PamOutcome::Success);
    drop(iw);
    // offline_days = 7: unusable from the eighth day on, and then deleted, not kept.
    assert_eq!(attempt(&setup, "right-pw", 7 * 86_400).0, PamOutcome::Success);
    assert!(offline_hash(&setup).is_some());
    let (outcome, stale) = attempt(&setup, "right-pw", 8 * 86_400);
    assert_eq!(outcome, PamOutcome::AuthinfoUnavail);
    assert!(logged(&stale, "cached offline credentials expired; deleted"), "{:?}", stale.logs);
    assert_eq!(offline_hash(&setup), None);
    let state_dir = setup.config.cache.dir.join("state");
    let records: Vec<_> = fs::read_dir(state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert!(records.is_empty(), "an empty record is not kept: {records:?}");
}

#[test]
fn without_cache_credentials_nothing_is_stored() {
    let iw = alice_directory();
    let setup = Setup::with_config(&format!(
        "[directory]\ntype = \"icewarp\"\nserver = {:?}\ntimeout_secs = 1\n",
        iw.url()
    ));
    setup.add(ALICE, None, AuthMethod::Directory, LOGIN);
    assert_eq!(attempt(&setup, "right-pw", 1).0, PamOutcome::Success);
    drop(iw);
    assert_eq!(attempt(&setup, "right-pw", 2).0, PamOutcome::AuthinfoUnavail);
    let state_dir = setup.config.cache.dir.join("state");
    for entry in fs::read_dir(state_dir).into_iter().flatten() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("argon2"), "{text}");
    }
}

#[test]
fn consecutive_failures_slow_down_further_attempts() {
    let setup = Setup::with_config(
        "[auth]\nfailure_threshold = 2\nfailure_delay_secs = 1\nmax_failure_delay_secs = 4\n",
    );
    setup.add("bob", Some("right"), AuthMethod::Local, LOGIN);
    let mut pauses = Vec::new();
    for password in ["w1", "w2", "w3", "w4", "w5", "right", "w6"] {
        let mut script = Script::new("bob", &[(AuthtokItem::Current, password)]);
        authenticate(&mut script, &[&setup.args()]);
        pauses.push(script.pauses.iter().map(Duration::as_secs).sum::<u64>());
    }
    // Two free failures, then 1, 2, 4 (the bound), 4 s; a success resets the count.
    assert_eq!(pauses, [0, 0, 1, 2, 4, 4, 0]);
}

#[test]
fn a_held_state_lock_changes_no_outcome_and_is_logged() {
    let setup = Setup::new();
    setup.add("bob", Some("right"), AuthMethod::Local, LOGIN);
    let states = LoginStates::new(&setup.config.cache.dir);
    let bob = setup.cache().load().unwrap().user("bob").unwrap().clone();
    states.update(&bob, |_| {}).unwrap();
    let held = fs::File::options().write(true).open(states.lock_path(bob.uid)).unwrap();
    held.lock().unwrap();

    for (password, expected) in [("wrong", PamOutcome::AuthErr), ("right", PamOutcome::Success)] {
        let started = std::time::Instant::now();
        let mut script = Script::new("bob", &[(AuthtokItem::Current, password)]);
        assert_eq!(authenticate(&mut script, &[&setup.args()]), expected);
        assert!(started.elapsed() < crate::login_state::LOCK_WAIT * 3, "{:?}", started.elapsed());
        assert!(logged(&script, "not recorded"), "{:?}", script.logs);
    }
    assert_eq!(states.load(&bob).unwrap().failures, 0, "nothing written without the lock");
}

/// When a [`Interrupted`] conversation runs its hook.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// The first time the module asks for the time, which it does after checking the
    /// password and before recording the outcome: when a parallel attempt could write the
    /// login record.
    FirstNow,
    /// When the module asks for the new password of a change: after the current one was
    /// checked, before the new hash is stored.
    NewPassword,
}

/// A scripted conversation that runs `hook` once, at `moment`: something another process
/// does while the module works.
struct Interrupted<F: Fn()> {
    script: Script,
    hook: F,
    moment: Moment,
    ran: std::cell::Cell<bool>,
}

impl<F: Fn()> Interrupted<F> {
    fn new(script: Script, moment: Moment, hook: F) -> Self {
        Interrupted { script, hook, moment, ran: std::cell::Cell::new(false) }
    }

    fn at(&self, moment: Moment) {
        if self.moment == moment && !self.ran.replace(true) {
            (self.hook)();
        }
    }
}

impl<F: Fn()> PamConversation for Interrupted<F> {
    fn user_name(&mut self) -> Result<String, PamOutcome> {
        self.script.user_name()
    }
    fn authtok(&mut self, item: AuthtokItem, prompt: Option<&str>) -> Result<Secret, PamOutcome> {
        if item == AuthtokItem::New {
            self.at(Moment::NewPassword);
        }
        self.script.authtok(item, prompt)
    }
    fn error_message(&mut self, text: &str) {
        self.script.error_message(text)
    }
    fn log(&mut self, level: LogLevel, text: &str) {
        self.script.log(level, text)
    }
    fn now(&self) -> u64 {
        self.at(Moment::FirstNow);
        self.script.now()
    }
    fn pause(&mut self, duration: Duration) {
        self.script.pause(duration)
    }
}

#[test]
fn a_success_resets_failures_recorded_by_parallel_attempts() {
    let setup = Setup::new();
    setup.add("bob", Some("right"), AuthMethod::Local, LOGIN);
    let states = LoginStates::new(&setup.config.cache.dir);
    let bob = setup.cache().load().unwrap().user("bob").unwrap().clone();
    let parallel_failure = || states.update(&bob, |state| state.record_failure(1)).unwrap();
    let script = Script::new("bob", &[(AuthtokItem::Current, "right")]);
    let mut conv = Interrupted::new(script, Moment::FirstNow, parallel_failure);
    assert_eq!(authenticate(&mut conv, &[&setup.args()]), PamOutcome::Success);
    assert!(conv.ran.get(), "the hook must run, or this test proves nothing");
    assert_eq!(states.load(&bob).unwrap().failures, 0);
}

#[test]
fn guessing_the_current_password_in_a_change_is_slowed_like_a_login() {
    let setup = Setup::with_config(
        "[auth]\nfailure_threshold = 1\nfailure_delay_secs = 1\nmax_failure_delay_secs = 4\n",
    );
    setup.add(
        "alice",
        Some("old-pw"),
        AuthMethod::Local,
        &[Privilege::Login, Privilege::ChangePassword],
    );
    let args = setup.args();
    let mut pauses = Vec::new();
    for guess in ["g1", "g2", "g3", "old-pw", "g4"] {
        let mut script = Script::new("alice", &[(AuthtokItem::Old, guess)]);
        change_password(&mut script, &[&args], ChangePhase::Prelim, 3);
        pauses.push(script.pauses.iter().map(Duration::as_secs).sum::<u64>());
    }
    // One free failure, then 1, 2 s; the right password waits 4 s and resets the count.
    assert_eq!(pauses, [0, 1, 2, 4, 0]);
    // A login sees the failure the change recorded.
    let mut login = Script::new("alice", &[(AuthtokItem::Current, "old-pw")]);
    assert_eq!(authenticate(&mut login, &[&args]), PamOutcome::Success);
    assert_eq!(login.pauses, [Duration::from_secs(1)]);
}

#[test]
fn a_password_change_is_refused_if_the_user_changed_meanwhile() {
    let setup = Setup::new();
    let privileges = [Privilege::Login, Privilege::ChangePassword];
    setup.add("alice", Some("old-pw"), AuthMethod::Local, &privileges);
    let args = setup.args();
    // Between the check of the current password and the store, an administrator revokes
    // the privilege.
    let revoke = || {
        let revoke = vec![Privilege::ChangePassword];
        setup.change("alice", UserChanges { revoke, ..UserChanges::default() });
    };
    let script = Script::new("alice", &[(AuthtokItem::Old, "old-pw"), (AuthtokItem::New, "new")]);
    let mut conv = Interrupted::new(script, Moment::NewPassword, revoke);
    assert_eq!(
        change_password(&mut conv, &[&args], ChangePhase::Update, 3),
        PamOutcome::AuthtokErr
    );
    assert!(conv.ran.get(), "the hook must run, or this test proves nothing");
    assert!(logged(&conv.script, "changed while"), "{:?}", conv.script.logs);
    let mut old = Script::new("alice", &[(AuthtokItem::Current, "old-pw")]);
    assert_eq!(authenticate(&mut old, &[&args]), PamOutcome::Success, "the old password stays");
}

#[test]
fn a_name_another_account_source_answers_first_is_refused() {
    let setup = Setup::new();
    setup.add("alice", Some("pw"), AuthMethod::Local, LOGIN);
    let uid = setup.cache().load().unwrap().user("alice").unwrap().uid;
    let args = setup.args();
    let with_system_uid = |password: Option<&'static str>, system_uid| {
        let passwords: Vec<_> = password.map(|p| (AuthtokItem::Current, p)).into_iter().collect();
        let mut script = Script::new("alice", &passwords);
        script.system_uid = system_uid;
        script
    };
    for (system_uid, expected) in [
        (None, PamOutcome::Success),
        (Some(uid), PamOutcome::Success),
        (Some(5000), PamOutcome::PermDenied),
    ] {
        let mut script = with_system_uid(None, system_uid);
        assert_eq!(account(&mut script, &[&args]), expected, "{system_uid:?}");
    }
    let mut foreign = with_system_uid(Some("pw"), Some(5000));
    assert_eq!(authenticate(&mut foreign, &[&args]), PamOutcome::AuthErr);
    assert!(logged(&foreign, "another account source"), "{:?}", foreign.logs);
    let mut wrong = with_system_uid(Some("nope"), Some(5000));
    assert_eq!(authenticate(&mut wrong, &[&args]), PamOutcome::AuthErr);
    // The same whatever the password (nothing tells a guesser which one was right).
    assert!(logged(&wrong, "another account source"), "{:?}", wrong.logs);
}
