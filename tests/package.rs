//! The Debian package as `scripts/build-deb.sh` builds it (from the debug binaries the test
//! run already has): every file with its mode and owner, the control fields, the conffile,
//! the maintainer scripts' nsswitch.conf editing (run for real against a DPKG_ROOT), the
//! pam-auth-update profile, the systemd units (`systemd-analyze verify` and `security`),
//! the shared objects' SONAME and exports, the manual pages, and lintian's verdict.
//!
//! The install into a real Debian root is `scripts/install-test.sh` (see README).

mod testbed;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use dircache::config::{Config, DirectoryKind};
use testbed::{artifact, text};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(output.status.success(), "{command:?} failed:\n{}", text(&output));
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn multiarch() -> String {
    let out = run(Command::new("dpkg-architecture").arg("-qDEB_HOST_MULTIARCH"));
    stdout(&out).trim().to_string()
}

/// The package, built once for all tests of this file; the directory holding it is kept
/// for the whole run.
struct Built {
    deb: PathBuf,
    /// `dpkg-deb -x` of it.
    tree: PathBuf,
    /// `dpkg-deb -e` of it.
    control: PathBuf,
    _dir: tempfile::TempDir,
}

fn package() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        // The binaries the test run built; build-deb.sh must not run cargo itself here.
        for name in ["dircache-sync", "libpam_dircache.so", "libnss_dircache.so"] {
            artifact(name);
        }
        let dir = tempfile::tempdir().unwrap();
        let out = run(Command::new(workspace().join("scripts/build-deb.sh"))
            .args(["--profile", "debug", "--no-build", "--out"])
            .arg(dir.path()));
        let deb = PathBuf::from(stdout(&out).lines().last().unwrap_or_default().trim());
        assert!(deb.is_file(), "build-deb.sh did not print the package path:\n{}", text(&out));
        let tree = dir.path().join("tree");
        let control = dir.path().join("control");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
        Built { deb, tree, control, _dir: dir }
    })
}

/// `dpkg-deb --contents`: path (without the leading `.`) → (permissions, owner/group).
fn contents() -> BTreeMap<String, (String, String)> {
    let out = run(Command::new("dpkg-deb").arg("--contents").arg(&package().deb));
    stdout(&out)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields[5].trim_start_matches('.').to_string();
            (path, (fields[0].to_string(), fields[1].to_string()))
        })
        .collect()
}

#[test]
fn the_package_holds_every_file_with_its_mode() {
    let contents = contents();
    let triplet = multiarch();
    let expected = [
        ("/usr/sbin/dircache-sync", "-rwxr-xr-x"),
        (&format!("/lib/{triplet}/security/pam_dircache.so") as &str, "-rw-r--r--"),
        (&format!("/lib/{triplet}/libnss_dircache.so.2"), "-rw-r--r--"),
        ("/etc/dircache/", "drwxr-xr-x"),
        ("/etc/dircache/dircache.toml", "-rw-------"),
        ("/var/lib/dircache/", "drwxr-xr-x"),
        ("/usr/share/pam-configs/dircache", "-rw-r--r--"),
        ("/usr/share/pam-configs/dircache-password", "-rw-r--r--"),
        ("/lib/systemd/system/dircache-sync.service", "-rw-r--r--"),
        ("/lib/systemd/system/dircache-sync.timer", "-rw-r--r--"),
        ("/lib/systemd/system/dircache-sync-daemon.service", "-rw-r--r--"),
        ("/usr/share/man/man8/dircache-sync.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/dircache-sync-sync.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/dircache-sync-check.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/dircache-sync-user-add.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/pam_dircache.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/libnss_dircache.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man5/dircache.toml.5.gz", "-rw-r--r--"),
        ("/usr/share/doc/dircache/README.md.gz", "-rw-r--r--"),
        ("/usr/share/doc/dircache/copyright", "-rw-r--r--"),
        ("/usr/share/doc/dircache/changelog.Debian.gz", "-rw-r--r--"),
        ("/usr/share/doc/dircache/examples/dircache.toml", "-rw-r--r--"),
        ("/usr/share/doc/dircache/examples/pam-service.example", "-rw-r--r--"),
    ];
    for (path, mode) in expected {
        match contents.get(path) {
            Some((found, _)) => assert_eq!(found, mode, "{path}"),
            None => panic!("{path} is not in the package; it has:\n{contents:#?}"),
        }
    }
    for (path, (mode, owner)) in &contents {
        assert_eq!(owner, "root/root", "{path}");
        // Nothing in the package may be changed by anyone but root.
        assert_eq!(&mode[5..6], "-", "{path} is group-writable: {mode}");
        assert_eq!(&mode[8..9], "-", "{path} is world-writable: {mode}");
    }
    // The hidden `manpages` subcommand is an implementation detail, not a page.
    assert!(!contents.keys().any(|p| p.contains("manpages")), "{contents:#?}");
}

#[test]
fn control_fields_name_the_package_its_version_and_dependencies() {
    let field = |name: &str| {
        let out = run(Command::new("dpkg-deb").arg("-f").arg(&package().deb).arg(name));
        stdout(&out).trim().to_string()
    };
    assert_eq!(field("Package"), "dircache");
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Version"), version);
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture"))).trim().to_string();
    assert_eq!(field("Architecture"), arch);
    let depends = field("Depends");
    for needed in ["libc6", "libpam0g", "libgcc-s1", "libpam-runtime", "ca-certificates"] {
        assert!(depends.contains(needed), "Depends lacks {needed}: {depends}");
    }
    assert!(
        package().deb.file_name().unwrap().to_string_lossy()
            == format!("dircache_{version}_{arch}.deb")
    );
}

#[test]
fn the_configuration_is_a_conffile_and_names_no_directory() {
    let control = &package().control;
    assert_eq!(
        fs::read_to_string(control.join("conffiles")).unwrap(),
        "/etc/dircache/dircache.toml\n"
    );
    let installed = package().tree.join("etc/dircache/dircache.toml");
    let shipped = workspace().join("conf/dircache.toml");
    assert_eq!(fs::read(&installed).unwrap(), fs::read(&shipped).unwrap());
    let config =
        Config::from_toml_str(&fs::read_to_string(&installed).unwrap(), &installed).unwrap();
    assert_eq!(config.directory.kind, DirectoryKind::None, "nothing may sync until configured");
    // The file is commented: an administrator can read what each key does.
    let comments = fs::read_to_string(&installed).unwrap().matches('#').count();
    assert!(comments > 20, "only {comments} comments");
}

#[test]
fn maintainer_scripts_are_valid_shell_and_md5sums_match() {
    let control = &package().control;
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let path = control.join(script);
        let mode = fs::metadata(&path).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o755);
        run(Command::new("sh").arg("-n").arg(&path));
        assert!(fs::read_to_string(&path).unwrap().starts_with("#!/bin/sh\n"), "{script}");
    }
    assert!(fs::read_to_string(control.join("triggers"))
        .unwrap()
        .contains("activate-noawait ldconfig"));
    let sums = fs::read_to_string(control.join("md5sums")).unwrap();
    assert!(sums.contains("usr/sbin/dircache-sync"), "{sums}");
    let check = Command::new("md5sum")
        .args(["--check", "--quiet", "-"])
        .current_dir(&package().tree)
        .stdin(fs::File::open(control.join("md5sums")).unwrap())
        .output()
        .unwrap();
    assert!(check.status.success(), "md5sums do not match:\n{}", text(&check));
}

/// Runs a maintainer script of the package with DPKG_ROOT=`root`: only nsswitch.conf
/// under that root is touched (the scripts leave PAM and systemd alone then).
fn maintainer_script(root: &Path, script: &str, args: &[&str]) -> Output {
    let out = Command::new("sh")
        .arg(package().control.join(script))
        .args(args)
        .env("DPKG_ROOT", root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script} {args:?} failed:\n{}", text(&out));
    out
}

fn fresh_root(nsswitch: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::write(root.path().join("etc/nsswitch.conf"), nsswitch).unwrap();
    root
}

fn nsswitch(root: &Path) -> String {
    fs::read_to_string(root.join("etc/nsswitch.conf")).unwrap()
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const DEBIAN_NSSWITCH: &str = "# /etc/nsswitch.conf\n\npasswd:         files systemd\n\
                               group:          files systemd\nshadow:         files\n\
                               gshadow:        files\n\nhosts:          files dns\n";

#[test]
fn install_adds_dircache_last_and_removal_restores_the_bytes() {
    let root = fresh_root(DEBIAN_NSSWITCH);
    maintainer_script(root.path(), "preinst", &["install"]);
    maintainer_script(root.path(), "postinst", &["configure", ""]);
    let edited = nsswitch(root.path());
    // Last: /etc files and every other source answer before dircache.
    assert!(edited.contains("\npasswd:         files systemd dircache\n"), "{edited}");
    assert!(edited.contains("\ngroup:          files systemd dircache\n"), "{edited}");
    assert!(edited.contains("\nshadow:         files dircache\n"), "{edited}");
    assert!(edited.contains("\ngshadow:        files\n"), "gshadow is not ours: {edited}");
    assert!(!root.path().join("etc/nsswitch.conf.nss.dircache-will-install").exists());

    // An upgrade (or a second configure) changes nothing.
    maintainer_script(root.path(), "preinst", &["upgrade", "0.1.0-1"]);
    maintainer_script(root.path(), "postinst", &["configure", "0.1.0-1"]);
    assert_eq!(nsswitch(root.path()), edited);

    maintainer_script(root.path(), "prerm", &["remove"]);
    maintainer_script(root.path(), "postrm", &["remove"]);
    assert_eq!(nsswitch(root.path()), DEBIAN_NSSWITCH, "removal must restore the bytes");
    maintainer_script(root.path(), "postrm", &["purge"]);
    assert_eq!(nsswitch(root.path()), DEBIAN_NSSWITCH);
}

#[test]
fn install_handles_tabs_comments_and_a_bare_files_line() {
    let original = "passwd:\tfiles\ngroup: files # local groups\n";
    let root = fresh_root(original);
    maintainer_script(root.path(), "preinst", &["install"]);
    maintainer_script(root.path(), "postinst", &["configure", ""]);
    assert_eq!(
        nsswitch(root.path()),
        "passwd:\tfiles dircache\ngroup: files dircache # local groups\n"
    );
    maintainer_script(root.path(), "postrm", &["remove"]);
    assert_eq!(nsswitch(root.path()), original);
}

#[test]
fn dircache_goes_after_every_other_source() {
    let original = "passwd: files systemd sss winbind\ngroup:\tfiles sss\t# AD groups\n";
    let root = fresh_root(original);
    maintainer_script(root.path(), "preinst", &["install"]);
    maintainer_script(root.path(), "postinst", &["configure", ""]);
    assert_eq!(
        nsswitch(root.path()),
        "passwd: files systemd sss winbind dircache\ngroup:\tfiles sss dircache\t# AD groups\n"
    );
    maintainer_script(root.path(), "postrm", &["remove"]);
    assert_eq!(nsswitch(root.path()), original);
}

#[test]
fn lines_edited_by_hand_are_left_alone_with_a_message() {
    for (original, says) in [
        // Already names dircache: nothing to add.
        ("passwd: files dircache\ngroup: dircache files\n", "already names dircache"),
        // An action: it could stop the lookup before dircache.
        (
            "passwd: files [NOTFOUND=return] ldap\ngroup: files [NOTFOUND=return] ldap\n",
            "[STATUS=action]",
        ),
        // No `files` at all.
        ("passwd: compat\ngroup: compat\n", "no 'files' source"),
        // No group line.
        ("passwd: files dircache\n", "0 'group:' lines"),
    ] {
        let root = fresh_root(original);
        maintainer_script(root.path(), "preinst", &["install"]);
        let out = maintainer_script(root.path(), "postinst", &["configure", ""]);
        assert_eq!(nsswitch(root.path()), original, "changed a hand-edited file");
        assert!(output_text(&out).contains(says), "{original:?}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("by hand") || says.contains("already"),
            "{}",
            output_text(&out)
        );
    }
}

#[test]
fn an_upgrade_does_not_add_dircache_back() {
    // The administrator took dircache out; without the preinst note of a fresh install,
    // configure leaves the file alone (as libnss-systemd does).
    let root = fresh_root(DEBIAN_NSSWITCH);
    maintainer_script(root.path(), "preinst", &["upgrade", "0.1.0-1"]);
    maintainer_script(root.path(), "postinst", &["configure", "0.1.0-1"]);
    assert_eq!(nsswitch(root.path()), DEBIAN_NSSWITCH);
}

#[test]
fn purge_removes_the_cache_and_removal_takes_out_actions_after_dircache() {
    let root =
        fresh_root("passwd: files dircache [NOTFOUND=return] systemd\ngroup: files dircache\n");
    let cache = root.path().join("var/lib/dircache/gen-000000000001");
    fs::create_dir_all(&cache).unwrap();
    maintainer_script(root.path(), "postrm", &["remove"]);
    assert_eq!(nsswitch(root.path()), "passwd: files systemd\ngroup: files\n");
    assert!(cache.exists(), "remove keeps the cache");
    maintainer_script(root.path(), "postrm", &["purge"]);
    assert!(!root.path().join("var/lib/dircache").exists(), "purge removes the cache");
}

/// A profile as pam-auth-update reads it: field → lines.
fn pam_profile(name: &str) -> BTreeMap<String, Vec<String>> {
    let path = package().tree.join("usr/share/pam-configs").join(name);
    let text = fs::read_to_string(path).unwrap();
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            fields.entry(current.clone()).or_default().push(rest.to_string());
        } else if let Some((key, value)) = line.split_once(':') {
            current = key.to_string();
            let value = value.trim();
            fields.entry(current.clone()).or_default();
            if !value.is_empty() {
                fields.entry(current.clone()).or_default().push(value.to_string());
            }
        }
    }
    fields
}

/// The reasoning for every control is in SECURITY.md, "The PAM stack"; the stacks these
/// profiles produce are run through the real libpam in tests/pam_stack.rs.
#[test]
fn the_pam_profiles_put_logins_before_pam_unix_and_password_changes_after_it() {
    let logins = pam_profile("dircache");
    let passwords = pam_profile("dircache-password");
    for profile in [&logins, &passwords] {
        assert_eq!(profile["Default"], ["no"], "the package must never enable one by itself");
        assert!(!profile.contains_key("Session"), "pam_dircache has nothing to do in sessions");
    }
    let priority = |profile: &BTreeMap<String, Vec<String>>| -> u32 {
        profile["Priority"][0].parse().unwrap()
    };
    // pam_unix's profile has 256. Logins: dircache decides its users before pam_unix can
    // end the stack for them (a stale shadow entry, broken_shadow).
    assert!(priority(&logins) > 256, "{logins:?}");
    // Password changes: after pam_unix, which then keeps its own first prompt (its later
    // line has use_authtok and would fail for every local user behind dircache).
    assert!(priority(&passwords) < 256, "{passwords:?}");
    assert!(!logins.contains_key("Password-Type") && !passwords.contains_key("Auth-Type"));
    for (profile, kind) in [(&logins, "Auth"), (&logins, "Account"), (&passwords, "Password")] {
        assert_eq!(profile[&format!("{kind}-Type")], ["Primary"], "{kind}");
        for variant in [kind.to_string(), format!("{kind}-Initial")] {
            let lines = &profile[&variant];
            assert_eq!(lines.len(), 1, "{variant}: {lines:?}");
            let line = &lines[0];
            assert!(line.contains("pam_dircache.so"), "{variant}: {line}");
            // Its own users: success ends the block, every refusal is final. Not its own,
            // or it cannot tell and NSS does not serve the name: the next module decides.
            let controls = line.split(']').next().unwrap();
            for control in ["[success=end", "user_unknown=ignore", "ignore=ignore", "default=die"] {
                assert!(controls.contains(control), "{variant}: {line}");
            }
            // No failure code may be ignored: its own users would fall through to pam_unix.
            let ignored: Vec<&str> =
                controls.split_whitespace().filter(|c| c.ends_with("=ignore")).collect();
            assert_eq!(ignored, ["user_unknown=ignore", "ignore=ignore"], "{variant}: {line}");
        }
    }
    // First in auth it prompts itself; behind another module it takes the password typed.
    assert!(logins["Auth-Initial"][0].ends_with("pam_dircache.so"));
    assert!(logins["Auth"][0].ends_with("pam_dircache.so try_first_pass"));
    assert!(logins["Account"][0].contains("new_authtok_reqd=done"));
}

/// The units with ExecStart pointing into the unpacked package, so that systemd-analyze
/// finds the binary.
fn units_for_analysis(dir: &Path) -> Vec<PathBuf> {
    let binary = package().tree.join("usr/sbin/dircache-sync");
    ["dircache-sync.service", "dircache-sync.timer", "dircache-sync-daemon.service"]
        .iter()
        .map(|unit| {
            let text = fs::read_to_string(package().tree.join("lib/systemd/system").join(unit))
                .unwrap()
                .replace("/usr/sbin/dircache-sync", binary.to_str().unwrap());
            let path = dir.join(unit);
            fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

#[test]
fn systemd_units_verify_and_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let units = units_for_analysis(dir.path());
    let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "systemd-analyze verify complained");

    let service = fs::read_to_string(&units[0]).unwrap();
    for directive in [
        "Type=oneshot",
        "ExecCondition=",
        "ProtectSystem=strict",
        "StateDirectory=dircache",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(service.contains(directive), "dircache-sync.service lacks {directive:?}");
    }
    let timer = fs::read_to_string(&units[1]).unwrap();
    for directive in
        ["OnCalendar=*:0/15", "RandomizedDelaySec=", "Persistent=true", "WantedBy=timers.target"]
    {
        assert!(timer.contains(directive), "dircache-sync.timer lacks {directive:?}");
    }
    let daemon = fs::read_to_string(&units[2]).unwrap();
    assert!(daemon.contains("daemon\n") && daemon.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(daemon.contains("Conflicts=dircache-sync.timer"), "the daemon replaces the timer");

    // systemd's own exposure score: "OK" is below 4.0 (lower is better).
    for unit in [&units[0], &units[2]] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=30"])
            .arg(unit)
            .output()
            .unwrap();
        let all = output_text(&out);
        let level = all
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|score| score.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no exposure level:\n{all}"));
        assert!(level < 3.0, "{}: exposure {level}", unit.display());
    }
}

#[test]
fn the_shared_objects_have_their_sonames_and_exports() {
    let triplet = multiarch();
    let nss = package().tree.join(format!("lib/{triplet}/libnss_dircache.so.2"));
    let pam = package().tree.join(format!("lib/{triplet}/security/pam_dircache.so"));
    let dynamic = stdout(&run(Command::new("readelf").arg("-d").arg(&nss)));
    assert!(dynamic.contains("Library soname: [libnss_dircache.so.2]"), "{dynamic}");
    let symbols = stdout(&run(Command::new("nm").args(["-D", "--defined-only"]).arg(&nss)));
    for symbol in [
        "_nss_dircache_getpwnam_r",
        "_nss_dircache_getpwuid_r",
        "_nss_dircache_getgrnam_r",
        "_nss_dircache_getspnam_r",
        "_nss_dircache_getspent_r",
    ] {
        assert!(symbols.contains(symbol), "{symbol} is not exported");
    }
    let symbols = stdout(&run(Command::new("nm").args(["-D", "--defined-only"]).arg(&pam)));
    for symbol in ["pam_sm_authenticate", "pam_sm_acct_mgmt", "pam_sm_chauthtok"] {
        assert!(symbols.contains(symbol), "{symbol} is not exported");
    }
    let sections = stdout(&run(Command::new("readelf").arg("-S").arg(&pam)));
    assert!(!sections.contains(".debug_info"), "the modules are stripped");
}

#[test]
fn manual_pages_render_without_warnings() {
    let mut pages: Vec<PathBuf> = ["usr/share/man/man5", "usr/share/man/man8"]
        .iter()
        .flat_map(|dir| fs::read_dir(package().tree.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    pages.sort();
    assert!(pages.len() >= 15, "{pages:?}");
    for page in &pages {
        let roff = run(Command::new("gzip").arg("-dc").arg(page)).stdout;
        let mut groff = Command::new("groff")
            .args(["-k", "-man", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut groff.stdin.take().unwrap(), &roff).unwrap();
        let out = groff.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}:\n{}",
            page.display(),
            text(&out)
        );
    }
    let check = String::from_utf8_lossy(
        &run(Command::new("gzip")
            .arg("-dc")
            .arg(package().tree.join("usr/share/man/man8/dircache-sync-check.8.gz")))
        .stdout,
    )
    .into_owned();
    // Generated from the clap definitions: the same words as `dircache-sync check --help`.
    assert!(check.contains("configured"), "{check}");
    assert!(check.contains(".TH dircache-sync-check 8"), "{check}");
}

/// lintian finds no error and no warning; what the package does on purpose is overridden in
/// packaging/lintian-overrides, each with its reason.
#[test]
fn lintian_finds_no_error_or_warning() {
    testbed::require_tool("/usr/bin/lintian", "lintian");
    // Run from the package's own directory: lintian refuses a cwd it cannot read as root.
    let out = Command::new("lintian")
        .args(["--info", "--display-info"])
        .arg(&package().deb)
        .current_dir(package().deb.parent().unwrap())
        .output()
        .unwrap();
    let report = stdout(&out);
    let complaints: Vec<&str> =
        report.lines().filter(|line| line.starts_with("E:") || line.starts_with("W:")).collect();
    assert!(complaints.is_empty(), "lintian:\n{}", complaints.join("\n"));
    assert!(out.status.success(), "lintian failed:\n{}", text(&out));
}
