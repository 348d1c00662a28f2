//! The command line. The help text is the administrator's manual for each command, so it
//! names the archive-server concept a command mirrors wherever there is one.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand};
use dircache::config::DEFAULT_CONFIG_PATH;
use dircache::privileges::Privilege;
use dircache::user::AuthMethod;

/// Fills and manages the dircache user cache, which the dircache PAM and NSS modules read.
#[derive(Debug, Parser)]
#[command(
    name = "dircache-sync",
    version,
    long_about = "Fills and manages the dircache user cache: the accounts that the dircache PAM \
                  module (logins) and NSS module (id, ls -l, getent passwd) read.\n\n\
                  Accounts come from the mail directory (IceWarp or Application Integration) or \
                  are created by hand with `user add`, like the manually created users of the \
                  archive server's User Management. Every change is written as a new complete \
                  cache generation under a lock, so concurrent runs never lose a write and \
                  readers never see a half-written cache.\n\n\
                  Run as root: the cache's private part (password hashes, privileges) is \
                  readable by root only.",
    after_help = "Exit status: 0 on success, 1 on an error (one line on standard error), 2 on \
                  a usage error."
)]
pub struct Cli {
    /// The configuration file (TOML).
    ///
    /// It is refused if it has an unknown key, or if it holds the directory password and
    /// group or others can read it.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "DIRCACHE_CONFIG",
        default_value = DEFAULT_CONFIG_PATH
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reads users and groups from the directory and records them in the cache.
    ///
    /// The archive server's "Synchronize now"; with --dry-run its "Test Settings". The
    /// directory is never changed. New users get `[sync] default_privileges` and
    /// authenticate against the directory; existing users get their names, addresses,
    /// groups and enabled flag updated, never their privileges or authentication method.
    /// With `delete_missing_users`, users whose auth method is "directory" and that the
    /// directory no longer lists are deleted (their files are kept).
    ///
    /// Safety: any error while fetching aborts the run before anything is written; an empty
    /// listing, or a run that would delete more than `max_delete_percent` of the directory
    /// users, is refused unless --force is given.
    Sync(SyncArgs),

    /// Runs `sync` every `[sync] interval_secs` (with up to 10% random delay).
    ///
    /// A failing run is logged and retried at the next interval. SIGTERM or SIGINT stops the
    /// daemon after the run in progress; SIGHUP re-reads the configuration and syncs at once.
    Daemon(DaemonArgs),

    /// Shows the last sync: when, its result, counts, duration and error.
    Status(StatusArgs),

    /// Lists, shows, adds, changes and deletes users in the cache.
    ///
    /// Like the archive server's Users and Privileges management. Users added here have the
    /// origin "manual"; a sync never deletes them and never changes any user's privileges.
    #[command(subcommand)]
    User(UserCommand),

    /// Checks that this host is set up: configuration, directory, cache, PAM and NSS.
    ///
    /// Like `sssctl config-check` and `nsscache verify`. One line per check: `ok`, `warn`,
    /// `FAIL` or `skip`, what was found and what to do. The checks: the configuration is
    /// valid; the directory answers and accepts the administrator (IceWarp: authenticate and
    /// logout; Application Integration: cmd=list); the cache's checksums, format version and
    /// file modes; unix.uid_range and the cache's ids against the subordinate ids of local
    /// users (/etc/subuid, /etc/subgid, login.defs); the last sync's result and age;
    /// pam_dircache.so in
    /// /etc/pam.d/common-{auth,account,password}; dircache on the passwd and group lines of
    /// /etc/nsswitch.conf; and a cached user found through `getent passwd`. Nothing is
    /// written. Run as root: the cache's private part is root's only.
    #[command(after_help = "Exit status: 0 when no check failed (warnings allowed), 1 when one \
                             did. With --configured: 0 when a directory is configured, 1 when \
                             directory.type is \"none\", 255 when the configuration is invalid.")]
    Check(CheckArgs),

    /// Makes a minisign key pair for signing snapshots (fleets, see `publish`).
    ///
    /// The secret key is written mode 0600 and unencrypted, because `publish` runs
    /// unattended: keep it on the publisher only, readable by root only (a key others can
    /// read is refused). Give the public key to every host (`[snapshot] public_key_file`).
    /// Existing files are never overwritten. The files are minisign's own formats: `minisign
    /// -Vm manifest.json -p publish.pub` checks a snapshot by hand.
    Keygen(KeygenArgs),

    /// Signs the current cache into DIR as a snapshot for the other hosts of a fleet.
    ///
    /// Needs `[publish] signing_key_file`. Writes content-addressed data files first, then
    /// manifest.json and manifest.json.minisig; old data files are kept for 3 publications
    /// and at least an hour, so hosts pulling meanwhile never see a mix. Serve DIR with any
    /// static web server, CDN or object store (upload the data files before manifest.json*).
    /// Offline credentials and login state never travel; manual users' password hashes
    /// only with `include_local_passwords = true`. Run it after every sync (and at least
    /// once per `[snapshot] max_age_secs` of the hosts).
    Publish(PublishArgs),

    /// Writes the manual pages generated from this command line (for packaging).
    #[command(hide = true)]
    Manpages(ManpagesArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print one JSON object: {"ok": bool, "checks": [{"name", "status", "message",
    /// "hint"}]}.
    #[arg(long, conflicts_with = "configured")]
    pub json: bool,

    /// Only tell whether the configuration names a directory, for systemd's
    /// ExecCondition=: exit 0 if it does, 1 if directory.type is "none" (systemd then skips
    /// the sync quietly), 255 if the configuration is invalid (the unit fails and the journal
    /// shows why).
    #[arg(long)]
    pub configured: bool,

    /// The PAM configuration directory (for tests).
    #[arg(long, value_name = "DIR", hide = true, default_value = dircache::check::DEFAULT_PAM_DIR)]
    pub pam_dir: PathBuf,

    /// The nsswitch.conf to check (for tests).
    #[arg(long, value_name = "PATH", hide = true, default_value = dircache::check::DEFAULT_NSSWITCH)]
    pub nsswitch: PathBuf,

    /// The login.defs whose SUB_UID_* and SUB_GID_* keys are checked (for tests).
    #[arg(long, value_name = "PATH", hide = true, default_value = dircache::check::DEFAULT_LOGIN_DEFS)]
    pub login_defs: PathBuf,

    /// The newuidmap whose presence makes subordinate ids usable (for tests).
    #[arg(long, value_name = "PATH", hide = true, default_value = dircache::check::DEFAULT_NEWUIDMAP)]
    pub newuidmap: PathBuf,

    /// nscd's socket, whose presence means cached lookups (for tests).
    #[arg(long, value_name = "PATH", hide = true, default_value = dircache::check::DEFAULT_NSCD_SOCKET)]
    pub nscd_socket: PathBuf,

    /// nscd's configuration (for tests).
    #[arg(long, value_name = "PATH", hide = true, default_value = dircache::check::DEFAULT_NSCD_CONF)]
    pub nscd_conf: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (mode 0600), e.g. /etc/dircache/publish.key.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,

    /// Where to write the public key, e.g. /etc/dircache/publish.pub.
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The directory to write the snapshot into (created if missing); what the web server
    /// serves, or what the upload tool copies.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print one JSON object: {"generation", "published_at", "key_id", "users", "groups",
    /// "files", "written", "pruned", …}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The directory to write dircache-sync.8 and one page per subcommand into.
    #[arg(value_name = "DIR")]
    pub out_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Lists every user in the cache, sorted by name.
    ///
    /// The table shows name, uid, authentication method, whether the account is enabled,
    /// where it came from, and the full name. A cache that has not been created yet lists no
    /// users.
    List(ListArgs),

    /// Shows one user's record (never its password hash).
    Show(ShowArgs),

    /// Creates a user by hand (origin "manual").
    ///
    /// Like adding a user in the archive server's User Management. Its uid is derived from its name within `[unix] uid_range` and is
    /// kept for as long as the user exists; its primary group is a private group with the
    /// same id. Names of local accounts (in /etc/passwd or /etc/group) are refused, since
    /// local accounts always win.
    ///
    /// With `--auth local` (the default) the user gets a local password: from standard input
    /// with --password-stdin, else asked for twice on the terminal. When standard input is
    /// not a terminal and --password-stdin is not given, the user is created without a
    /// password and cannot log in until `dircache-sync user passwd NAME`.
    Add(AddArgs),

    /// Changes a user's full name, e-mail addresses, authentication, privileges or state.
    ///
    /// Anything not given stays as it is; at least one change is needed. This is also how a manually created
    /// user is switched to "Directory Services for Authentication": `--auth directory`; make sure
    /// first that the name is the user's login name in the directory (the next sync links the
    /// two by that name).
    #[command(
        override_usage = "dircache-sync user set NAME [--full-name S] [--email A]... \
                          [--auth local|directory] [--grant P]... [--revoke P]... \
                          [--enable|--disable]",
        group(ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["full_name", "email", "auth", "grant", "revoke", "enable", "disable"]))
    )]
    Set(SetArgs),

    /// Sets a local user's password.
    ///
    /// Only for users with `--auth local`. The password comes from standard input with
    /// --password-stdin, else it is asked for twice on the terminal without echo, like
    /// passwd. Users with `--auth directory` change their password in the directory instead.
    Passwd(PasswdArgs),

    /// Deletes a user's cache entry; never any file.
    ///
    /// Like the archive server's deletion of a user entry, nothing else is touched: the home directory and every file the user owned are
    /// kept, and the uid is retired so that it is never given to anyone else.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array of user objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The user's login name (matched case-insensitively).
    pub name: String,

    /// Print one JSON object instead of "key: value" lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The login name: no ':', '/', '\', ',', white space or control characters; not "." or
    /// ".."; not only digits.
    pub name: String,

    /// The full name (the GECOS field).
    #[arg(long, value_name = "S")]
    pub full_name: Option<String>,

    /// An e-mail address; repeat for more, the first is the primary address.
    #[arg(long, value_name = "A")]
    pub email: Vec<String>,

    /// Who checks the user's password.
    #[arg(long, value_name = "METHOD", default_value = "local", value_parser = auth_parser())]
    pub auth: AuthMethod,

    /// A privilege to give; repeat for more.
    ///
    /// Without any, the user gets
    /// `[sync] default_privileges` (the archive server's "Default Privileges…"; by default
    /// login and read_own_archive).
    #[arg(long, value_name = "P", value_parser = privilege_parser())]
    pub privilege: Vec<Privilege>,

    /// Read the password from the first line of standard input (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The user's login name (matched case-insensitively).
    pub name: String,

    /// The new full name (the GECOS field).
    #[arg(long, value_name = "S")]
    pub full_name: Option<String>,

    /// An e-mail address; repeat for more. Replaces all of the user's addresses; the first
    /// is the primary address.
    #[arg(long, value_name = "A")]
    pub email: Vec<String>,

    /// The new authentication method.
    ///
    /// Switching to directory drops the local password hash;
    /// switching to local leaves the user without a password until `user passwd`.
    #[arg(long, value_name = "METHOD", value_parser = auth_parser())]
    pub auth: Option<AuthMethod>,

    /// A privilege to add; repeat for more.
    #[arg(long, value_name = "P", value_parser = privilege_parser())]
    pub grant: Vec<Privilege>,

    /// A privilege to take away; repeat for more. The names are those of --grant.
    #[arg(long, value_name = "P", value_parser = privilege_parser(), hide_possible_values = true)]
    pub revoke: Vec<Privilege>,

    /// Allow the user to log in again.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,

    /// Refuse every login of the user; the entry, uid and files stay, so `id` and `ls -l`
    /// still show the name.
    #[arg(long)]
    pub disable: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The user's login name (matched case-insensitively).
    pub name: String,

    /// Read the new password from the first line of standard input (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The user's login name (matched case-insensitively).
    pub name: String,
    /// Delete a user that came from the directory too. Without it such a user is refused:
    /// while the directory lists it, the next sync would create it again with a new uid.
    /// Use `user set NAME --disable` to lock it out instead.
    #[arg(long)]
    pub force: bool,
}

fn auth_parser() -> impl TypedValueParser<Value = AuthMethod> {
    PossibleValuesParser::new([
        PossibleValue::new("local")
            .help("a password kept (hashed) in the cache, set with `user passwd`"),
        PossibleValue::new("directory")
            .help("the mail directory checks the password at each login"),
    ])
    .try_map(|text| text.parse::<AuthMethod>())
}

fn privilege_parser() -> impl TypedValueParser<Value = Privilege> {
    PossibleValuesParser::new(
        Privilege::ALL.map(|p| PossibleValue::new(p.as_str()).help(privilege_help(p))),
    )
    .try_map(|text| text.parse::<Privilege>())
}

/// The archive server's wording, so that an administrator recognises each privilege. The
/// PAM module's `require=` option decides which of them a service needs.
fn privilege_help(privilege: Privilege) -> &'static str {
    match privilege {
        Privilege::Login => "log on at all (what PAM requires by default)",
        Privilege::ChangePassword => "change the own local password (passwd)",
        Privilege::ArchiveEmail => "archive e-mail",
        Privilege::ModifyArchiveProfiles => "create and change archiving profiles",
        Privilege::ExportEmail => "export e-mail",
        Privilege::ModifyExportProfiles => "create and change export profiles",
        Privilege::DeleteEmail => "delete archived e-mail",
        Privilege::Admin => "administer the archive",
        Privilege::ReadOwnArchive => "read the own archive folder",
        Privilege::WriteOwnArchive => "write to the own archive folder",
        Privilege::DeleteOwnArchive => "delete from the own archive folder",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn set_needs_at_least_one_change() {
        let parsed = Cli::try_parse_from(["dircache-sync", "user", "set", "alice"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn privileges_and_auth_parse_into_library_types() {
        let cli = Cli::try_parse_from([
            "dircache-sync",
            "user",
            "add",
            "alice",
            "--auth",
            "directory",
            "--privilege",
            "login",
            "--privilege",
            "archive_email",
        ])
        .unwrap();
        let Command::User(UserCommand::Add(add)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(add.auth, AuthMethod::Directory);
        assert_eq!(add.privilege, [Privilege::Login, Privilege::ArchiveEmail]);
    }

    #[test]
    fn enable_and_disable_conflict() {
        let parsed =
            Cli::try_parse_from(["dircache-sync", "user", "set", "a", "--enable", "--disable"]);
        assert!(parsed.is_err());
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Fetch and plan, print the plan and what the directory returned, write nothing
    /// ("Test Settings").
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON object: {"dry_run", "created", "updated", "deleted", "unchanged",
    /// "skipped", "errors", …}.
    #[arg(long)]
    pub json: bool,

    /// Accept an empty listing and deletions beyond `max_delete_percent`.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Override `[sync] interval_secs` (seconds; for testing, no lower limit).
    #[arg(long, value_name = "SECS", hide = true)]
    pub interval_secs: Option<u64>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as one JSON object.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,

    /// Print the status and the cache's size as Prometheus metrics (the text format of
    /// node_exporter's textfile collector; `[status] prometheus_textfile` writes the same
    /// after every sync).
    #[arg(long)]
    pub prometheus: bool,
}
