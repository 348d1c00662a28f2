//! The real libpam, through pam_wrapper and pamtester, loading the built pam_dircache.so.

mod testbed;

use std::time::Duration;

use dircache::cache::CacheDir;
use dircache::config::Config;
use dircache::local_accounts::LocalAccounts;
use dircache::passwords::hash_password;
use dircache::privileges::Privilege;
use dircache::user::{AccountLimits, AuthMethod};
use dircache::user_edits::{add_user, set_user, NewUser, UserChanges};
use testbed::{text, Env};

fn add(env: &Env, name: &str, password: Option<&str>, auth: AuthMethod, privileges: &[Privilege]) {
    let config = Config::load(&env.config).unwrap();
    let hash = password.map(|p| hash_password(p.as_bytes(), &config.passwords).unwrap());
    let new = NewUser {
        name: name.to_string(),
        full_name: Some(format!("{name} Test")),
        emails: vec![],
        auth,
        privileges: Some(privileges.to_vec()),
        password_hash: hash,
    };
    let local = LocalAccounts::default();
    CacheDir::new(env.cache_dir())
        .update(Duration::from_secs(5), 1, |db| add_user(db, &config, &local, new, 1).map(|_| ()))
        .unwrap();
}

fn change(env: &Env, name: &str, changes: UserChanges) {
    CacheDir::new(env.cache_dir())
        .update(Duration::from_secs(5), 2, |db| set_user(db, name, changes, 2).map(|_| ()))
        .unwrap();
}

const LOGIN: &[Privilege] = &[Privilege::Login];

fn set_limits(env: &Env, name: &str, limits: AccountLimits) {
    CacheDir::new(env.cache_dir())
        .update(Duration::from_secs(5), 3, |db| {
            db.users.iter_mut().find(|u| u.name == name).unwrap().limits = limits;
            Ok::<(), dircache::cache::CacheError>(())
        })
        .unwrap();
}

fn pam_error_in(output: &std::process::Output, message: &str) -> bool {
    String::from_utf8_lossy(&output.stderr).contains(message)
}

#[test]
fn right_password_logs_in_and_wrong_or_unknown_do_not() {
    let env = Env::new();
    add(&env, "alice", Some("correct horse"), AuthMethod::Local, LOGIN);
    env.pam_service("login-test", "");

    let ok =
        env.pamtester("login-test", "alice", &["authenticate", "acct_mgmt"], "correct horse\n");
    assert!(ok.status.success(), "{}", text(&ok));

    let wrong = env.pamtester("login-test", "alice", &["authenticate"], "correct horsE\n");
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(pam_error_in(&wrong, "Authentication failure"), "{}", text(&wrong));

    let unknown = env.pamtester("login-test", "mallory", &["authenticate"], "x\n");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(pam_error_in(&unknown, "User not known"), "{}", text(&unknown));

    let root = env.pamtester("login-test", "root", &["authenticate"], "x\n");
    assert!(pam_error_in(&root, "User not known"), "{}", text(&root));
}

/// A broken configuration makes pam_dircache step aside (PAM_IGNORE) for names it does not
/// serve; a service made of pam_dircache alone then has no module that said yes, and libpam
/// refuses.
#[test]
fn a_broken_configuration_in_a_service_of_its_own_still_refuses() {
    let env = Env::new();
    add(&env, "alice", Some("correct horse"), AuthMethod::Local, LOGIN);
    env.pam_service("broken-test", "");
    std::fs::write(&env.config, "[sync]\ncolour = 1\n").unwrap();
    for operations in [&["authenticate"][..], &["acct_mgmt"], &["chauthtok"]] {
        // Nothing is asked: the module returns before prompting.
        let out = env.pamtester("broken-test", "alice", operations, "");
        assert_eq!(out.status.code(), Some(1), "{operations:?}: {}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("successfully"), "{}", text(&out));
    }
}

#[test]
fn account_step_enforces_enabled_and_privileges() {
    let env = Env::new();
    add(&env, "alice", Some("pw"), AuthMethod::Local, &[Privilege::Login, Privilege::ArchiveEmail]);
    add(&env, "nologin", Some("pw"), AuthMethod::Local, &[Privilege::ReadOwnArchive]);
    env.pam_service("plain", "");
    env.pam_service("archive", "require=archive_email");
    env.pam_service("admin", "require=login,admin");

    let plain = env.pamtester("plain", "nologin", &["authenticate", "acct_mgmt"], "pw\n");
    assert!(pam_error_in(&plain, "Permission denied"), "{}", text(&plain));
    let archive = env.pamtester("archive", "alice", &["acct_mgmt"], "");
    assert!(archive.status.success(), "{}", text(&archive));
    let admin = env.pamtester("admin", "alice", &["acct_mgmt"], "");
    assert!(pam_error_in(&admin, "Permission denied"), "{}", text(&admin));

    change(&env, "alice", UserChanges { enabled: Some(false), ..UserChanges::default() });
    let disabled = env.pamtester("plain", "alice", &["acct_mgmt"], "");
    assert_eq!(disabled.status.code(), Some(1));
    assert!(pam_error_in(&disabled, "User account has expired"), "{}", text(&disabled));
    // auth refuses it too (after the right password), for services without an account step.
    let auth = env.pamtester("plain", "alice", &["authenticate"], "pw\n");
    assert!(pam_error_in(&auth, "Authentication failure"), "{}", text(&auth));
    assert!(text(&auth).contains("account disabled"), "{}", text(&auth));
}

#[test]
fn directory_users_without_a_configured_directory_are_unavailable() {
    let env = Env::new();
    add(&env, "dirk", None, AuthMethod::Directory, LOGIN);
    env.pam_service("login-test", "");
    let out = env.pamtester("login-test", "dirk", &["authenticate"], "whatever\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        pam_error_in(&out, "Authentication service cannot retrieve authentication info"),
        "{}",
        text(&out)
    );
}

#[test]
fn odd_passwords_round_trip_through_libpam() {
    let env = Env::new();
    let long = "x".repeat(1000);
    let odd = ["<&>\"' ]]>", "pässwörd ünïcode 🔑", long.as_str(), "  spaces  ", "a\\b%c+d=e"];
    for (i, password) in odd.iter().enumerate() {
        add(&env, &format!("user{i}"), Some(password), AuthMethod::Local, LOGIN);
    }
    env.pam_service("login-test", "");
    for (i, password) in odd.iter().enumerate() {
        let out = env.pamtester(
            "login-test",
            &format!("user{i}"),
            &["authenticate"],
            &format!("{password}\n"),
        );
        assert!(out.status.success(), "password {i}: {}", text(&out));
        let off_by_one = format!("{password}!\n");
        let wrong =
            env.pamtester("login-test", &format!("user{i}"), &["authenticate"], &off_by_one);
        assert_eq!(wrong.status.code(), Some(1), "password {i}");
    }
}

#[test]
fn password_change_through_libpam() {
    let env = Env::new();
    add(
        &env,
        "alice",
        Some("old-secret"),
        AuthMethod::Local,
        &[Privilege::Login, Privilege::ChangePassword],
    );
    add(&env, "bob", Some("bob-secret"), AuthMethod::Local, LOGIN);
    env.pam_service("passwd-test", "");

    // Current password, then the new one twice (libpam asks twice).
    let changed = env.pamtester(
        "passwd-test",
        "alice",
        &["chauthtok"],
        "old-secret\nnew-secret\nnew-secret\n",
    );
    assert!(changed.status.success(), "{}", text(&changed));
    let old = env.pamtester("passwd-test", "alice", &["authenticate"], "old-secret\n");
    assert_eq!(old.status.code(), Some(1), "{}", text(&old));
    let new = env.pamtester("passwd-test", "alice", &["authenticate"], "new-secret\n");
    assert!(new.status.success(), "{}", text(&new));

    let wrong_current = env.pamtester("passwd-test", "alice", &["chauthtok"], "nope\nx1\nx1\n");
    assert_eq!(wrong_current.status.code(), Some(1), "{}", text(&wrong_current));

    let bob = env.pamtester("passwd-test", "bob", &["chauthtok"], "bob-secret\nnew\nnew\n");
    assert_eq!(bob.status.code(), Some(1), "{}", text(&bob));
    assert!(pam_error_in(&bob, "not allowed to change"), "{}", text(&bob));
}

/// Another account source (here nss_wrapper's passwd file, standing in for sssd or
/// systemd-userdb) answers `getpwnam("alice")` with another uid before dircache: the shell's
/// real getpwnam_r sees it, and the account step refuses.
#[test]
fn a_name_another_account_source_answers_first_is_refused() {
    const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
    testbed::require_tool(NSS_WRAPPER, "libnss-wrapper");
    let env = Env::new();
    add(&env, "alice", Some("pw"), AuthMethod::Local, LOGIN);
    env.pam_service("plain", "");
    let passwd = env.dir.path().join("other-source-passwd");
    let group = env.dir.path().join("other-source-group");
    std::fs::write(&group, "").unwrap();
    let preload = format!("{} {NSS_WRAPPER}", testbed::PAM_WRAPPER);
    let run = |passwd_line: &str| {
        std::fs::write(&passwd, passwd_line).unwrap();
        let vars = [
            ("LD_PRELOAD", preload.as_str()),
            ("NSS_WRAPPER_PASSWD", passwd.to_str().unwrap()),
            ("NSS_WRAPPER_GROUP", group.to_str().unwrap()),
        ];
        env.pamtester_with_env("plain", "alice", &["acct_mgmt"], "", &vars)
    };
    let foreign = run("alice:x:5000:5000::/home/other:/bin/sh\n");
    assert!(pam_error_in(&foreign, "Permission denied"), "{}", text(&foreign));
    // The same name with dircache's own uid, or not known elsewhere: allowed.
    let uid = CacheDir::new(env.cache_dir()).load().unwrap().user("alice").unwrap().uid;
    let same = run(&format!("alice:x:{uid}:{uid}::/home/alice:/bin/sh\n"));
    assert!(same.status.success(), "{}", text(&same));
    let unknown = run("bob:x:5001:5001::/home/bob:/bin/sh\n");
    assert!(unknown.status.success(), "{}", text(&unknown));
}

#[test]
fn authentication_alone_enforces_the_required_privileges() {
    // Services that call only pam_authenticate (web applications, scripts) must not let in
    // a user without `login` or without what `require=` names.
    let env = Env::new();
    add(&env, "alice", Some("pw"), AuthMethod::Local, LOGIN);
    add(&env, "nologin", Some("pw"), AuthMethod::Local, &[Privilege::ReadOwnArchive]);
    env.pam_service("plain", "");
    env.pam_service("archive", "require=archive_email");

    let refused = env.pamtester("plain", "nologin", &["authenticate"], "pw\n");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(pam_error_in(&refused, "Permission denied"), "{}", text(&refused));
    let ok = env.pamtester("plain", "alice", &["authenticate"], "pw\n");
    assert!(ok.status.success(), "{}", text(&ok));
    let archive = env.pamtester("archive", "alice", &["authenticate"], "pw\n");
    assert!(pam_error_in(&archive, "Permission denied"), "{}", text(&archive));
    // A wrong password gets the same answer: it must not tell which password is right.
    let wrong = env.pamtester("plain", "nologin", &["authenticate"], "wrong\n");
    assert!(pam_error_in(&wrong, "Permission denied"), "{}", text(&wrong));
}

#[test]
fn names_the_policy_refuses_never_log_in_even_when_the_cache_holds_them() {
    let env = Env::new();
    for name in ["alice", "finance", "placeholder"] {
        add(&env, name, Some("pw"), AuthMethod::Local, LOGIN);
    }
    // A cache written before the policy (or by hand) holds `admin`.
    CacheDir::new(env.cache_dir())
        .update(Duration::from_secs(5), 3, |db| {
            db.user_mut("placeholder").unwrap().name = "admin".into();
            Ok::<(), dircache::user_edits::EditError>(())
        })
        .unwrap();
    // And the administrator reserves `finance` after it was created.
    let text_of_config = std::fs::read_to_string(&env.config).unwrap();
    let reserved = text_of_config.replace("[unix]\n", "[unix]\nreserved_names = [\"finance\"]\n");
    std::fs::write(&env.config, reserved).unwrap();
    env.pam_service("login-test", "");

    // Refused as disabled, not "unknown": unknown would leave the decision to the next
    // module of the stack (an SSH key login has no auth step at all).
    for name in ["admin", "ADMIN", "finance"] {
        let auth = env.pamtester("login-test", name, &["authenticate"], "pw\n");
        assert_eq!(auth.status.code(), Some(1), "{name}: {}", text(&auth));
        assert!(pam_error_in(&auth, "Authentication failure"), "{name}: {}", text(&auth));
        let account = env.pamtester("login-test", name, &["acct_mgmt"], "");
        assert!(pam_error_in(&account, "User account has expired"), "{name}: {}", text(&account));
    }
    // A hostile name the cache cannot hold is simply unknown.
    let hostile = env.pamtester("login-test", "x;id", &["authenticate"], "pw\n");
    assert!(pam_error_in(&hostile, "User not known"), "{}", text(&hostile));
    let alice = env.pamtester("login-test", "alice", &["authenticate", "acct_mgmt"], "pw\n");
    assert!(alice.status.success(), "{}", text(&alice));
}

/// Through real libpam: expired → "User account has expired", blocked or password expired →
/// "Permission denied", each with its reason shown, whatever the password.
#[test]
fn account_step_refuses_expired_blocked_and_password_expired_users() {
    let env = Env::new();
    add(&env, "alice", Some("pw"), AuthMethod::Local, LOGIN);
    env.pam_service("plain", "");
    let none = AccountLimits::default();
    // Valid until 9999: logs in.
    set_limits(&env, "alice", AccountLimits { expires_day: Some(2_932_896), ..none });
    let valid = env.pamtester("plain", "alice", &["authenticate", "acct_mgmt"], "pw\n");
    assert!(valid.status.success(), "{}", text(&valid));
    for (limits, error, why) in [
        (
            AccountLimits { expires_day: Some(20_000), ..none },
            "User account has expired",
            "account expired (since 2024-10-04)",
        ),
        (AccountLimits { blocked: true, ..none }, "Permission denied", "account blocked"),
        (
            AccountLimits { password_expired: true, ..none },
            "Permission denied",
            "password expired: change it in webmail",
        ),
    ] {
        set_limits(&env, "alice", limits);
        let account = env.pamtester("plain", "alice", &["acct_mgmt"], "");
        assert_eq!(account.status.code(), Some(1), "{limits:?}: {}", text(&account));
        assert!(pam_error_in(&account, error), "{limits:?}: {}", text(&account));
        assert!(text(&account).contains(why), "{limits:?}: {}", text(&account));
        let right = env.pamtester("plain", "alice", &["authenticate"], "pw\n");
        assert!(pam_error_in(&right, "Authentication failure"), "{}", text(&right));
        assert!(text(&right).contains(why), "{limits:?}: {}", text(&right));
        // The same answer for a wrong password: it must not tell which one is right.
        let wrong = env.pamtester("plain", "alice", &["authenticate"], "nope\n");
        assert!(pam_error_in(&wrong, "Authentication failure"), "{}", text(&wrong));
        assert!(text(&wrong).contains(why), "{limits:?}: {}", text(&wrong));
    }
}
