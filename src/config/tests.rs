use super::*;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new("/test/dircache.toml"))
}

fn parse_error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error for {text:?}, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

fn invalid_key(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected ConfigError::Invalid for {text:?}, got {other:?}"),
    }
}

fn write_file(dir: &tempfile::TempDir, name: &str, content: &str, mode: u32) -> PathBuf {
    let path = dir.path().join(name);
    let mut file = File::create(&path).unwrap();
    file.write_all(content.as_bytes()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

const INTERFACE_EXAMPLE: &str = r#"[cache]
dir = "/var/lib/dircache"

[directory]
type = "icewarp"                 # "icewarp" | "application-integration" | "none"
server = "mail.example.com"      # IceWarp: host or IP (→ https://HOST/icewarpapi/) or a full URL
url = "https://apps.example.com/integration/index.php"   # Application Integration
username = "admin@example.com"   # IceWarp: an administrator; AppInt: only if the server requires authentication
password = "…"                   # or password_file = "/etc/dircache/directory.secret"
timeout_secs = 60
ignore_ssl_warnings = false

[sync]
domains = []                     # IceWarp filter; empty with empty groups = everyone
groups = []                      # IceWarp filter (group addresses)
delete_missing_users = false
default_privileges = ["login", "read_own_archive"]
login_name = "email"             # IceWarp: "email" (alice@example.com) or "mailbox" (alice)
interval_secs = 900              # for `daemon`

[unix]
uid_range = [200000, 299999]     # ids for directory users; reserved ranges refused
home = "/home/{name}"
shell = "/bin/bash"
"#;

#[test]
fn empty_file_gives_the_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.cache.dir, Path::new(DEFAULT_CACHE_DIR));
    assert_eq!(config.cache.lock_timeout_secs, 30);
    assert_eq!(config.directory.kind, DirectoryKind::None);
    assert_eq!(config.directory.timeout_secs, 60);
    assert_eq!(config.directory.connect_timeout_secs(), 5);
    assert_eq!(config.directory.reply_limit(), ReplyLimit { bytes: 1 << 30, key: "max_reply_mib" });
    assert!(!config.directory.ignore_ssl_warnings);
    assert_eq!(config.sync.max_delete_percent, 10);
    assert_eq!(config.sync.default_privileges, Privilege::defaults());
    assert_eq!(config.sync.login_name, LoginNameStyle::Email);
    assert_eq!(config.sync.interval_secs, 900);
    assert_eq!(config.unix.uid_range, [1_879_048_192, 2_147_352_575]);
    assert_eq!(config.unix.home, "/home/{name}");
    assert_eq!(config.unix.shell, "/bin/bash");
    assert_eq!(config.unix.local_passwd, Path::new("/etc/passwd"));
    assert_eq!(config.unix.local_group, Path::new("/etc/group"));
    assert_eq!(config.unix.local_subuid, Path::new("/etc/subuid"));
    assert_eq!(config.unix.local_subgid, Path::new("/etc/subgid"));
    assert_eq!(config.passwords, PasswordConfig::default());
    assert_eq!(config.passwords.argon2_memory_kib, 32768);
    assert!(!config.auth.cache_credentials);
    assert_eq!(config.auth.offline_days, 7);
    assert!(!config.auth.allow_readable_config);
    Config::default().validate(Path::new("default")).expect("the defaults must be valid");
}

#[test]
fn interface_example_parses() {
    let config = parse(INTERFACE_EXAMPLE).unwrap();
    assert_eq!(config.directory.kind, DirectoryKind::Icewarp);
    assert_eq!(config.directory.server.as_deref(), Some("mail.example.com"));
    assert_eq!(config.directory.username.as_deref(), Some("admin@example.com"));
    assert_eq!(config.directory.password.as_ref().map(|p| p.as_str()), Some("…"));
    assert_eq!(config.sync.default_privileges, vec![Privilege::Login, Privilege::ReadOwnArchive]);
    assert_eq!(config.unix.uid_range, [200_000, 299_999]);
}

#[test]
fn every_section_and_variant_parses() {
    let config = parse(
        r#"
[cache]
dir = "/srv/cache"
lock_timeout_secs = 5
[directory]
type = "application-integration"
url = "http://apps.example.com/integration/index.php"
password_file = "/etc/dircache/directory.secret"
max_reply_bytes = 1024
[sync]
domains = ["example.com"]
groups = ["staff@example.com"]
delete_missing_users = true
max_delete_percent = 100
default_privileges = ["login", "change_password"]
login_name = "mailbox"
interval_secs = 60
[unix]
uid_range = [1000, 60000]
local_passwd = "/tmp/passwd"
local_group = "/tmp/group"
[passwords]
argon2_memory_kib = 8192
argon2_iterations = 16
argon2_parallelism = 16
[auth]
cache_credentials = true
offline_days = 365
allow_readable_config = true
"#,
    )
    .unwrap();
    assert_eq!(config.directory.kind, DirectoryKind::ApplicationIntegration);
    assert_eq!(config.sync.login_name, LoginNameStyle::Mailbox);
    assert_eq!(config.unix.uid_range, [1000, 60000]);
    assert!(config.auth.cache_credentials);
    assert_eq!(config.sync.default_privileges, vec![Privilege::Login, Privilege::ChangePassword]);
}

#[test]
fn unknown_section_names_key_and_line() {
    let message = parse_error("[cache]\ndir = \"/var/lib/dircache\"\n\n[colour]\nred = 1\n");
    assert!(message.contains("/test/dircache.toml"), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("unknown key `colour`"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn unknown_key_in_sync_names_key_and_line() {
    let message = parse_error("[sync]\ndomains = []\ncolour = \"red\"\n");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("`sync.colour`"), "{message}");
    assert!(message.contains("unknown key `colour`"), "{message}");
    // The list of valid keys helps with typos.
    assert!(message.contains("interval_secs"), "{message}");
}

#[test]
fn unknown_key_in_dotted_and_inline_forms_is_located() {
    let message = parse_error("\nunix.colour = 1\n");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("`unix.colour`"), "{message}");
    let message = parse_error("auth = { offline_days = 3, colour = 1 }\n");
    assert!(message.contains("line 1"), "{message}");
    assert!(message.contains("`auth.colour`"), "{message}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let message = parse_error("[directory]\ntimeout_secs = \"sixty\"\n");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("`directory.timeout_secs`"), "{message}");
    assert!(message.contains("expected a whole number from 0 up"), "{message}");
    // Rust's type names never reach the administrator.
    let message = parse_error("[sync]\nmax_delete_percent = 300\n");
    assert!(message.contains("`sync.max_delete_percent`"), "{message}");
    assert!(message.ends_with("expected a whole number from 0 to 255"), "{message}");

    let message = parse_error("[sync]\ndefault_privileges = [\n  \"login\",\n  \"logon\",\n]\n");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("`sync.default_privileges`"), "{message}");
    assert!(message.contains("logon"), "{message}");

    let message = parse_error("[directory]\ntype = \"ldap\"\n");
    assert!(message.contains("`directory.type`"), "{message}");
    assert!(message.contains("application-integration"), "{message}");

    let message = parse_error("[unix]\nuid_range = [-1, 5]\n");
    assert!(message.contains("`unix.uid_range`"), "{message}");
}

#[test]
fn wrongly_typed_password_is_not_echoed() {
    let message = parse_error("[directory]\npassword = 918273645\n");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("`directory.password`"), "{message}");
    assert!(!message.contains("918273645"), "{message}");
}

#[test]
fn syntax_error_names_the_line() {
    let message = parse_error("[sync]\ninterval_secs = 60\ninterval_secs = 90\n");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("duplicate key"), "{message}");
}

#[test]
fn uid_range_must_have_two_elements() {
    let message = parse_error("[unix]\nuid_range = [200000, 299999, 399999]\n");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("`unix.uid_range`"), "{message}");
    assert!(message.contains("[low, high]"), "{message}");
    let message = parse_error("[unix]\nuid_range = [200000]\n");
    assert!(message.contains("`unix.uid_range`"), "{message}");
}

#[test]
fn password_and_password_file_together_are_refused() {
    let err = parse(
        "[directory]\npassword = \"secret\"\npassword_file = \"/etc/dircache/directory.secret\"\n",
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("directory.password"), "{message}");
    assert!(message.contains("password_file"), "{message}");
    assert!(!message.contains("secret\""), "{message}");
    assert!(matches!(err, ConfigError::Invalid { .. }));
}

#[test]
fn password_file_must_be_absolute() {
    assert_eq!(
        invalid_key("[directory]\npassword_file = \"directory.secret\"\n"),
        "directory.password_file"
    );
}

#[test]
fn ca_file_must_be_absolute() {
    assert_eq!(invalid_key("[directory]\nca_file = \"private-ca.pem\"\n"), "directory.ca_file");
    let config = parse("[directory]\nca_file = \"/etc/dircache/private-ca.pem\"\n").unwrap();
    assert_eq!(
        config.directory.ca_file.as_deref(),
        Some(Path::new("/etc/dircache/private-ca.pem"))
    );
    assert!(format!("{:?}", config.directory).contains("private-ca.pem"));
    assert_eq!(Config::default().directory.ca_file, None);
}

#[test]
fn icewarp_needs_a_valid_server() {
    assert_eq!(invalid_key("[directory]\ntype = \"icewarp\"\n"), "directory.server");
    let message = parse_error("[directory]\ntype = \"icewarp\"\n");
    assert!(message.contains("required"), "{message}");
    for bad in ["", "mail example.com", "mail.example.com/icewarpapi", "ftp://mail.example.com"] {
        let text = format!("[directory]\ntype = \"icewarp\"\nserver = \"{bad}\"\n");
        assert_eq!(invalid_key(&text), "directory.server", "{bad:?}");
    }
    for good in [
        "mail.example.com",
        "192.0.2.10",
        "[2001:db8::1]:8443",
        "mail.example.com:443",
        "https://mail.example.com/icewarpapi/",
        "http://192.0.2.10:32000/icewarpapi/",
    ] {
        let text = format!("[directory]\ntype = \"icewarp\"\nserver = \"{good}\"\n");
        parse(&text).unwrap_or_else(|err| panic!("{good:?}: {err}"));
    }
}

#[test]
fn application_integration_needs_an_http_url() {
    assert_eq!(invalid_key("[directory]\ntype = \"application-integration\"\n"), "directory.url");
    for bad in ["apps.example.com/index.php", "ftp://apps.example.com/", "https://", "https:///x"] {
        let text = format!("[directory]\ntype = \"application-integration\"\nurl = \"{bad}\"\n");
        assert_eq!(invalid_key(&text), "directory.url", "{bad:?}");
    }
    let message = parse_error(
        "[directory]\ntype = \"application-integration\"\nurl = \"apps.example.com\"\n",
    );
    assert!(message.contains("http:// or https://"), "{message}");
}

#[test]
fn directory_none_needs_neither_server_nor_url() {
    let config = parse("[directory]\ntype = \"none\"\n").unwrap();
    assert_eq!(config.directory.kind, DirectoryKind::None);
}

#[test]
fn numeric_limits_are_enforced() {
    let cases = [
        ("[directory]\ntimeout_secs = 0", "directory.timeout_secs"),
        ("[directory]\nconnect_timeout_secs = 0", "directory.connect_timeout_secs"),
        (
            "[directory]\ntimeout_secs = 30\nconnect_timeout_secs = 31",
            "directory.connect_timeout_secs",
        ),
        ("[directory]\nmax_reply_bytes = 1023", "directory.max_reply_bytes"),
        ("[directory]\nmax_reply_mib = 0", "directory.max_reply_mib"),
        ("[directory]\nmax_reply_mib = 65537", "directory.max_reply_mib"),
        ("[directory]\nmax_reply_mib = 8\nmax_reply_bytes = 8388608", "directory.max_reply_mib"),
        ("[sync]\ninterval_secs = 59", "sync.interval_secs"),
        ("[sync]\nmax_delete_percent = 101", "sync.max_delete_percent"),
        ("[passwords]\nargon2_memory_kib = 8191", "passwords.argon2_memory_kib"),
        ("[passwords]\nargon2_memory_kib = 4194305", "passwords.argon2_memory_kib"),
        ("[passwords]\nargon2_iterations = 0", "passwords.argon2_iterations"),
        ("[passwords]\nargon2_iterations = 17", "passwords.argon2_iterations"),
        ("[passwords]\nargon2_parallelism = 0", "passwords.argon2_parallelism"),
        ("[passwords]\nargon2_parallelism = 17", "passwords.argon2_parallelism"),
        ("[auth]\noffline_days = 0", "auth.offline_days"),
        ("[auth]\noffline_days = 366", "auth.offline_days"),
        ("[auth]\nfailure_threshold = 0", "auth.failure_threshold"),
        ("[auth]\nmax_failure_delay_secs = 61", "auth.max_failure_delay_secs"),
        ("[auth]\nfailure_delay_secs = 31", "auth.failure_delay_secs"),
    ];
    for (text, key) in cases {
        assert_eq!(invalid_key(text), key, "{text}");
        let message = parse_error(text);
        assert!(message.contains(&format!("`{key}`")), "{message}");
    }
    let message = parse_error("[sync]\nmax_delete_percent = 150");
    assert!(message.contains("150 is more than 100"), "{message}");
}

#[test]
fn the_reply_cap_is_max_reply_mib_or_the_older_max_reply_bytes_but_not_both() {
    let limit = |text: &str| parse(text).unwrap().directory.reply_limit();
    assert_eq!(
        limit("[directory]\nmax_reply_mib = 16\n"),
        ReplyLimit { bytes: 16 << 20, key: "max_reply_mib" }
    );
    assert_eq!(
        limit("[directory]\nmax_reply_bytes = 2000\n"),
        ReplyLimit { bytes: 2000, key: "max_reply_bytes" }
    );
    let message = parse_error("[directory]\nmax_reply_mib = 16\nmax_reply_bytes = 2000\n");
    assert!(message.contains("`directory.max_reply_mib`"), "{message}");
    assert!(message.contains("directory.max_reply_bytes are both given"), "{message}");
}

#[test]
fn the_connect_timeout_stays_within_the_request_deadline() {
    let secs = |text: &str| parse(text).unwrap().directory.connect_timeout_secs();
    assert_eq!(secs(""), 5);
    assert_eq!(secs("[directory]\ntimeout_secs = 2\n"), 2, "the default follows a short deadline");
    assert_eq!(secs("[directory]\ntimeout_secs = 60\nconnect_timeout_secs = 60\n"), 60);
    let message = parse_error("[directory]\ntimeout_secs = 30\nconnect_timeout_secs = 31\n");
    assert!(message.contains("31 is not between 1 and directory.timeout_secs (30)"), "{message}");
}

#[test]
fn uid_range_must_be_ordered_and_clear_of_reserved_ids() {
    assert_eq!(invalid_key("[unix]\nuid_range = [300000, 200000]"), "unix.uid_range");
    let cases = [
        ("[500, 5000]", "system accounts"),
        ("[999, 999]", "system accounts"),
        ("[60000, 70000]", "dynamic users"),
        ("[65519, 65519]", "dynamic users"),
        ("[65534, 65534]", "nobody"),
        ("[65535, 65535]", "16-bit -1"),
        ("[4000000000, 4294967295]", "4294967295"),
    ];
    for (range, what) in cases {
        let text = format!("[unix]\nuid_range = {range}");
        assert_eq!(invalid_key(&text), "unix.uid_range", "{range}");
        let message = parse_error(&text);
        assert!(message.contains(what), "{range}: {message}");
    }
    for range in ["[1000, 61183]", "[65520, 65533]", "[65536, 4294967294]"] {
        let text = format!("[unix]\nuid_range = {range}");
        parse(&text).unwrap_or_else(|err| panic!("{range}: {err}"));
    }
}

#[test]
fn reserved_names_extend_the_name_policy() {
    for bad in ["\" \"", "\" finance\"", "\"ops \"", "\"x;y\"", "\"\""] {
        let text = format!("[unix]\nreserved_names = [\"ok\", {bad}]");
        assert_eq!(invalid_key(&text), "unix.reserved_names", "{bad}");
    }
    let config = parse("[unix]\nreserved_names = [\"Finance\"]").unwrap();
    assert!(config.name_policy().check("finance").is_err());
    assert!(config.name_policy().check("admin").is_err(), "built-in names stay");
    assert!(Config::default().name_policy().check("finance").is_ok());
}

#[test]
fn paths_must_be_absolute() {
    let cases = [
        ("[cache]\ndir = \"var/lib/dircache\"", "cache.dir"),
        ("[unix]\nhome = \"home/{name}\"", "unix.home"),
        ("[unix]\nhome = \"/home/alice\"", "unix.home"),
        ("[unix]\nshell = \"bash\"", "unix.shell"),
        ("[unix]\nlocal_passwd = \"passwd\"", "unix.local_passwd"),
        ("[unix]\nlocal_group = \"group\"", "unix.local_group"),
        ("[unix]\nlocal_subuid = \"subuid\"", "unix.local_subuid"),
        ("[unix]\nlocal_subgid = \"subgid\"", "unix.local_subgid"),
    ];
    for (text, key) in cases {
        assert_eq!(invalid_key(text), key, "{text}");
    }
    let message = parse_error("[unix]\nhome = \"/home/alice\"");
    assert!(message.contains("{name}"), "{message}");
}

#[test]
fn the_sync_interval_is_between_a_minute_and_a_week() {
    assert_eq!(invalid_key("[sync]\ninterval_secs = 59"), "sync.interval_secs");
    assert_eq!(invalid_key("[sync]\ninterval_secs = 604801"), "sync.interval_secs");
    assert_eq!(invalid_key("[sync]\ninterval_secs = 9223372036854775807"), "sync.interval_secs");
    let week = Config::from_toml_str("[sync]\ninterval_secs = 604800", Path::new("t")).unwrap();
    assert_eq!(week.sync.interval_secs, 604_800);
}

#[test]
fn empty_filter_entries_are_refused() {
    assert_eq!(invalid_key("[sync]\ndomains = [\"\"]"), "sync.domains");
    assert_eq!(invalid_key("[sync]\ngroups = [\" \"]"), "sync.groups");
}

#[test]
fn load_reports_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn a_config_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o664, 0o646, 0o666] {
        let path = write_file(&dir, "dircache.toml", "", mode);
        let err = Config::load(&path).unwrap_err();
        assert!(
            matches!(err, ConfigError::WritableByOthers { mode: m, .. } if m == mode),
            "{mode:o}: {err:?}"
        );
        assert!(err.to_string().contains("decides who logs in"), "{err}");
        assert!(err.to_string().contains("`chmod go-w "), "{err}");
        assert!(!err.to_string().contains("chown"), "the owner is fine: {err}");
    }
    let path = write_file(&dir, "dircache.toml", "", 0o644);
    assert!(Config::load(&path).is_ok(), "no password: readable is fine");
    if crate::trust::effective_uid() == Some(0) {
        std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
        let err = Config::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::WritableByOthers { owner: 1234, .. }), "{err:?}");
    }
}

#[test]
fn readable_config_with_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[directory]\nusername = \"admin\"\npassword = \"hunter2\"\n";
    let path = write_file(&dir, "dircache.toml", text, 0o644);
    let err = Config::load(&path).unwrap_err();
    match &err {
        ConfigError::InsecurePermissions { mode, .. } => assert_eq!(*mode, 0o644),
        other => panic!("expected InsecurePermissions, got {other:?}"),
    }
    let message = err.to_string();
    let shown = path.display().to_string();
    assert_eq!(
        message,
        format!(
            "{shown} holds a directory password but is readable by group or others (mode \
             0644); run `chmod 600 {shown}` or move the password to password_file"
        )
    );
    assert!(!message.contains("hunter2"));

    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Config::load(&path),
        Err(ConfigError::InsecurePermissions { mode: 0o640, .. })
    ));
}

#[test]
fn private_config_with_password_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[directory]\npassword = \"hunter2\"\n";
    let path = write_file(&dir, "dircache.toml", text, 0o600);
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.directory_password().unwrap().as_deref().map(String::as_str),
        Some("hunter2")
    );
}

#[test]
fn allow_readable_config_disables_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[directory]\npassword = \"hunter2\"\n[auth]\nallow_readable_config = true\n";
    let path = write_file(&dir, "dircache.toml", text, 0o644);
    Config::load(&path).unwrap();
}

#[test]
fn readable_config_without_password_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[directory]\npassword_file = \"/etc/dircache/directory.secret\"\n";
    let path = write_file(&dir, "dircache.toml", text, 0o644);
    Config::load(&path).unwrap();
}

#[test]
fn load_reports_parse_errors_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "dircache.toml", "[sync]\n\ncolour = 1\n", 0o600);
    let message = Config::load(&path).unwrap_err().to_string();
    assert!(message.starts_with(&path.display().to_string()), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("colour"), "{message}");
}

fn config_with_password_file(path: &Path, allow_readable: bool) -> Config {
    let mut config = Config::default();
    config.directory.password_file = Some(path.to_path_buf());
    config.auth.allow_readable_config = allow_readable;
    config
}

#[test]
fn password_file_gives_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in
        [("lf", "s3cret pass\nsecond line\n"), ("crlf", "s3cret pass\r\n"), ("bare", "s3cret pass")]
    {
        let path = write_file(&dir, name, content, 0o600);
        let password =
            config_with_password_file(&path, false).directory_password().unwrap().unwrap();
        assert_eq!(password.as_str(), "s3cret pass", "{name}");
    }
}

#[test]
fn empty_password_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "empty", "\nsecond\n", 0o600);
    let err = config_with_password_file(&path, false).directory_password().unwrap_err();
    assert!(matches!(err, ConfigError::EmptyPasswordFile { .. }), "{err:?}");
    assert!(err.to_string().contains("first line"), "{err}");
}

#[test]
fn missing_password_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.secret");
    let err = config_with_password_file(&path, false).directory_password().unwrap_err();
    assert!(matches!(err, ConfigError::PasswordFile { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.secret"), "{err}");
}

#[test]
fn readable_password_file_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "directory.secret", "hunter2\n", 0o604);
    let err = config_with_password_file(&path, false).directory_password().unwrap_err();
    assert!(matches!(err, ConfigError::InsecurePasswordFile { mode: 0o604, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("chmod 600"), "{message}");
    assert!(message.contains("0604"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let password = config_with_password_file(&path, true).directory_password().unwrap().unwrap();
    assert_eq!(password.as_str(), "hunter2");
}

/// The key, mode, owner and fix of an [`ConfigError::UntrustedFile`].
fn untrusted(err: ConfigError) -> (&'static str, u32, u32, String) {
    let message = err.to_string();
    match err {
        ConfigError::UntrustedFile { key, mode, owner, fix, .. } => {
            assert!(message.contains(key) && message.contains(&fix), "{message}");
            (key, mode, owner, fix)
        }
        other => panic!("expected UntrustedFile, got {other:?}"),
    }
}

#[test]
fn password_file_others_can_write_or_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, allow_readable) in [(0o620, false), (0o602, false), (0o666, true)] {
        let path = write_file(&dir, "directory.secret", "hunter2\n", mode);
        let err =
            config_with_password_file(&path, allow_readable).directory_password().unwrap_err();
        let shown = path.display();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let found = untrusted(err);
        assert_eq!(found.0, "directory.password_file");
        assert_eq!(found.1, mode, "allow_readable_config never admits writers");
        assert_eq!(found.3, format!("`chmod go-w {shown}`"));
    }
    if crate::trust::effective_uid() == Some(0) {
        let path = write_file(&dir, "directory.secret", "hunter2\n", 0o600);
        std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
        let err = config_with_password_file(&path, false).directory_password().unwrap_err();
        let (_, _, owner, fix) = untrusted(err);
        assert_eq!((owner, fix), (1234, format!("`chown root: {}`", path.display())));
    }
}

#[test]
fn ca_file_must_not_be_writable_by_others_but_may_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut directory = DirectoryConfig::default();
    assert!(directory.open_ca_file().unwrap().is_none());
    let path = write_file(&dir, "private-ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644);
    directory.ca_file = Some(path.clone());
    assert!(directory.open_ca_file().unwrap().is_some(), "readable by all is fine");
    for mode in [0o664, 0o646] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = directory.open_ca_file().unwrap_err();
        assert!(err.to_string().contains("which server is trusted"), "{err}");
        let (key, found, _, fix) = untrusted(err);
        assert_eq!((key, found), ("directory.ca_file", mode));
        assert_eq!(fix, format!("`chmod go-w {}`", path.display()));
    }
    if crate::trust::effective_uid() == Some(0) {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
        let (_, _, owner, fix) = untrusted(directory.open_ca_file().unwrap_err());
        assert_eq!((owner, fix), (1234, format!("`chown root: {}`", path.display())));
    }
    directory.ca_file = Some(dir.path().join("missing.pem"));
    let err = directory.open_ca_file().unwrap_err();
    assert!(matches!(err, ConfigError::CaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("(directory.ca_file)"), "{err}");
}

#[test]
fn no_password_configured_gives_none() {
    assert!(Config::default().directory_password().unwrap().is_none());
}

#[test]
fn debug_never_shows_the_password() {
    let config = parse("[directory]\npassword = \"hunter2\"\n").unwrap();
    let shown = format!("{config:?} {:?} {:#?}", config.directory, config.clone());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let shown = format!("{:?}", Config::default());
    assert!(shown.contains("password: None"), "{shown}");
}

#[test]
fn home_for_expands_the_name() {
    let mut config = Config::default();
    assert_eq!(config.home_for("alice"), "/home/alice");
    config.unix.home = "/srv/home/{name}/{name}".to_string();
    assert_eq!(config.home_for("bob"), "/srv/home/bob/bob");
}

#[test]
fn status_keys_are_checked() {
    let config = parse(
        "[status]\nprometheus_textfile = \"/var/lib/prometheus/node-exporter/dircache.prom\"\n\
         max_sync_age_secs = 3600\n",
    )
    .unwrap();
    assert_eq!(config.status.max_sync_age_secs, Some(3600));
    let relative = "[status]\nprometheus_textfile = \"dircache.prom\"";
    assert_eq!(invalid_key(relative), "status.prometheus_textfile");
    assert_eq!(invalid_key("[status]\nmax_sync_age_secs = 5"), "status.max_sync_age_secs");
}

#[test]
fn max_parallel_requests_is_1_to_64_and_a_bad_one_names_key_and_line() {
    assert_eq!(parse("").unwrap().directory.max_parallel_requests, DEFAULT_PARALLEL_REQUESTS);
    for n in [1, 8, 64] {
        let text = format!("[directory]\nmax_parallel_requests = {n}\n");
        assert_eq!(parse(&text).unwrap().directory.max_parallel_requests, n);
    }
    for bad in ["0", "65", "-1", "\"eight\"", "1.5"] {
        let text = format!("[cache]\n\n[directory]\nmax_parallel_requests = {bad}\n");
        let message = parse_error(&text);
        assert!(message.contains("line 4"), "{bad}: {message}");
        assert!(message.contains("`directory.max_parallel_requests`"), "{bad}: {message}");
    }
    let message = parse_error("[directory]\nmax_parallel_requests = 65\n");
    assert!(message.contains("65 is not between 1 and 64"), "{message}");
    // A configuration built in code is held to the same range.
    let mut config = parse("").unwrap();
    config.directory.max_parallel_requests = 0;
    match config.validate(Path::new("/test/dircache.toml")) {
        Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "directory.max_parallel_requests"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fleet_keys_are_checked_and_errors_name_key_and_line() {
    let config = parse(
        "[snapshot]\nurl = \"https://deploy.example.com/dircache/\"\n\
         public_key_file = \"/etc/dircache/publish.pub\"\n",
    )
    .unwrap();
    let snapshot = config.snapshot.unwrap();
    assert_eq!(snapshot.max_age_secs, 86_400);
    assert_eq!(snapshot.timeout_secs, 60);
    assert!(!snapshot.ignore_ssl_warnings);
    let publish = parse("[publish]\nsigning_key_file = \"/etc/dircache/publish.key\"\n").unwrap();
    assert!(!publish.publish.unwrap().include_local_passwords);

    let key = "public_key_file = \"/k.pub\"\n";
    assert_eq!(invalid_key(&format!("[snapshot]\n{key}")), "snapshot.url");
    assert_eq!(invalid_key(&format!("[snapshot]\nurl = \"ftp://x/\"\n{key}")), "snapshot.url");
    assert_eq!(invalid_key("[snapshot]\nurl = \"https://x/\"\n"), "snapshot.public_key_file");
    assert_eq!(
        invalid_key(&format!("[snapshot]\nurl = \"https://x/\"\n{key}public_key = \"RW\"\n")),
        "snapshot.public_key"
    );
    assert_eq!(
        invalid_key(&format!("[snapshot]\nurl = \"https://x/\"\n{key}max_age_secs = 5\n")),
        "snapshot.max_age_secs"
    );
    assert_eq!(
        invalid_key("[snapshot]\nurl = \"https://x/\"\npublic_key_file = \"k.pub\"\n"),
        "snapshot.public_key_file"
    );
    assert_eq!(
        invalid_key(&format!(
            "[publish]\nsigning_key_file = \"/k\"\n[snapshot]\nurl = \"https://x/\"\n{key}"
        )),
        "snapshot"
    );
    assert_eq!(invalid_key("[publish]\nsigning_key_file = \"k\"\n"), "publish.signing_key_file");
    let error = parse_error("[snapshot]\nurl = \"https://x/\"\nmax_age_secs = \"a day\"\n");
    assert!(error.contains("line 3") && error.contains("snapshot.max_age_secs"), "{error}");
    let error = parse_error("[publish]\nsigning_key = \"/k\"\n");
    assert!(error.contains("line 2") && error.contains("signing_key"), "{error}");
}

#[test]
fn a_new_home_is_never_one_already_taken_even_with_a_suffix() {
    let config = Config::from_toml_str("", Path::new("/test/dircache.toml")).unwrap();
    let home = config.home_for("x");
    let suffixed = format!("{home}.300000");
    let free_with =
        |taken: &[&String]| config.free_home("x", 300_000, |p| taken.iter().any(|t| *t == p));
    assert_eq!(free_with(&[]), home);
    assert_eq!(free_with(&[&home]), suffixed);
    // A user named `x.300000` has the suffixed path (names may hold dots, uids are
    // predictable): the next free one, never a shared home.
    assert_eq!(free_with(&[&home, &suffixed]), format!("{suffixed}.2"));
}

#[test]
fn unix_home_is_used_as_the_kernel_resolves_it() {
    // Accepted as before, but used resolved: `.UID` is never appended inside another
    // user's home (`/home/alice/.200005`), and homes compare as the directories they name.
    for written in ["/home/{name}/", "/home//{name}", "/home/./{name}", "/srv/../home/{name}"] {
        let config = parse(&format!("[unix]\nhome = {written:?}")).unwrap();
        assert_eq!(config.unix.home, "/home/{name}", "{written}");
        assert_eq!(
            config.free_home("alice", 200_005, |h| h == "/home/alice"),
            "/home/alice.200005"
        );
    }
}

/// A `Config` built in code (`validate` is public "so that a Config built in code can be
/// checked the same way") with "/home/{name}/" is refused: `free_home` would nest a new home
/// in another user's. (A file's template is resolved as it is read.)
#[test]
fn a_config_built_in_code_never_nests_a_home() {
    let mut config = Config::default();
    config.unix.home = "/home/{name}/".to_string();
    if config.validate(Path::new("in code")).is_ok() {
        let home = config.free_home("alice", 200_005, |h| h == "/home/alice/");
        assert!(!home.starts_with("/home/alice/"), "{home}");
    }
}
