//! The PAM module's decisions, written against a small [`PamConversation`] trait so that
//! every path can be tested with a scripted conversation; `pam_module` only translates
//! between this and libpam.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::cache::reader::ReadMapper;
use crate::cache::{CacheDir, CacheError};
use crate::config::{Config, DirectoryKind, DEFAULT_CONFIG_PATH};
use crate::directory::{self, DirectoryError, Failure, PasswordCheck};
use crate::local_accounts::LocalAccounts;
use crate::login_state::{LoginState, LoginStates};
use crate::names::validate_name;
use crate::nss::{self, Nss};
use crate::passwords::{self, Secret};
use crate::privileges::Privilege;
use crate::user::{civil_date, AuthMethod, User};
use crate::user_edits;

/// The PAM return codes this module uses (a subset of libpam's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamOutcome {
    Success,
    ServiceErr,
    SystemErr,
    PermDenied,
    AuthErr,
    AuthinfoUnavail,
    UserUnknown,
    AcctExpired,
    AuthtokErr,
    AuthtokLockBusy,
    ConvErr,
    /// PAM_IGNORE: dircache cannot decide about a name that is not its own as far as this
    /// process can tell (see [`undecided`]); the other modules of the stack decide.
    Ignore,
}

/// Which password PAM should hand over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthtokItem {
    /// The password being authenticated (PAM_AUTHTOK in `auth`).
    Current,
    /// The current password during a change (PAM_OLDAUTHTOK).
    Old,
    /// The new password during a change (PAM_AUTHTOK in `chauthtok`; libpam asks twice).
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Notice,
    Info,
    Debug,
}

/// What the module needs from libpam.
pub trait PamConversation {
    fn user_name(&mut self) -> Result<String, PamOutcome>;
    /// Obtains a password through `pam_get_authtok` (which honours `use_first_pass` and
    /// `try_first_pass` and stores the item for the modules stacked after this one).
    fn authtok(&mut self, item: AuthtokItem, prompt: Option<&str>) -> Result<Secret, PamOutcome>;
    /// A message shown to the user.
    fn error_message(&mut self, text: &str);
    /// A line for syslog (auth facility). Never given a password.
    fn log(&mut self, level: LogLevel, text: &str);
    /// Seconds since the epoch.
    fn now(&self) -> u64;
    /// Waits before a password check (the failure delay).
    fn pause(&mut self, duration: Duration);
    /// The uid the system's user database (`getpwnam`, every NSS source in order) gives
    /// `name`; `None` when it knows no such name or cannot tell. Used to refuse a name that
    /// another source (sssd, systemd-userdb, …) answers before dircache: the password would
    /// be dircache's, the session another account's.
    fn system_uid(&mut self, _name: &str) -> Option<u32> {
        None
    }
    /// Where libnss_dircache looks in this process (its defaults, or what the environment
    /// it honours says).
    fn nss_settings(&self) -> nss::Settings {
        nss::Settings::default()
    }
}

/// The phase of a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangePhase {
    /// PAM_PRELIM_CHECK: may the user change the password, and is the current one right?
    Prelim,
    /// PAM_UPDATE_AUTHTOK: store the new password.
    Update,
}

/// The module arguments from the PAM service file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamArgs {
    pub config: PathBuf,
    /// `account` requires every one of these; default `login`.
    pub require: Vec<Privilege>,
    pub debug: bool,
    pub use_first_pass: bool,
    pub try_first_pass: bool,
}

impl PamArgs {
    /// An unknown argument is an error, not a warning: a misspelt `require=` must not
    /// quietly drop a restriction.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<PamArgs, String> {
        let mut parsed = PamArgs {
            config: PathBuf::from(DEFAULT_CONFIG_PATH),
            require: vec![Privilege::Login],
            debug: false,
            use_first_pass: false,
            try_first_pass: false,
        };
        for arg in args {
            match arg.split_once('=') {
                Some(("config", path)) if !path.is_empty() => parsed.config = PathBuf::from(path),
                Some(("require", list)) => parsed.require = parse_privileges(list)?,
                None if arg == "debug" => parsed.debug = true,
                None if arg == "use_first_pass" => parsed.use_first_pass = true,
                None if arg == "try_first_pass" => parsed.try_first_pass = true,
                // Handled by pam_get_authtok itself, accepted for password stacks.
                None if arg == "use_authtok" => {}
                _ => return Err(format!("unknown module argument {arg:?}")),
            }
        }
        Ok(parsed)
    }
}

fn parse_privileges(list: &str) -> Result<Vec<Privilege>, String> {
    let privileges: Vec<Privilege> = list
        .split(',')
        .map(|name| Privilege::from_str(name.trim()).map_err(|e| format!("require=: {e}")))
        .collect::<Result<_, _>>()?;
    if privileges.is_empty() {
        return Err("require= lists no privilege".to_string());
    }
    Ok(privileges)
}

/// Everything a hook needs once arguments and configuration are read.
struct Context<'c, C: PamConversation> {
    conv: &'c mut C,
    args: PamArgs,
    config: Config,
    user_name: String,
    /// Set by `find_user` when the name is a local account's.
    local_name: bool,
}

impl<'c, C: PamConversation> Context<'c, C> {
    /// Reads the user name, arguments and configuration; any failure is the hook's answer.
    /// The name comes first: what an unusable argument or configuration means depends on
    /// whose name it is ([`undecided`]).
    fn new(conv: &'c mut C, raw_args: &[&str]) -> Result<Self, PamOutcome> {
        let user_name = conv.user_name()?;
        let args = match PamArgs::parse(raw_args.iter().copied()) {
            Ok(args) => args,
            Err(e) => {
                conv.log(LogLevel::Error, &format!("{e}; fix the PAM service file"));
                return Err(undecided(conv, &user_name, PamOutcome::ServiceErr));
            }
        };
        let config = match Config::load(&args.config) {
            Ok(config) => config,
            Err(e) => {
                conv.log(LogLevel::Error, &format!("cannot use the configuration: {e}"));
                return Err(undecided(conv, &user_name, PamOutcome::AuthinfoUnavail));
            }
        };
        Ok(Context { conv, args, config, user_name, local_name: false })
    }

    /// A context for a user the cache knows; anyone else is `PAM_USER_UNKNOWN`.
    fn for_known_user(conv: &'c mut C, raw_args: &[&str]) -> Result<(Self, User), PamOutcome> {
        let mut ctx = Context::new(conv, raw_args)?;
        match ctx.find_user()? {
            Some(user) => Ok((ctx, user)),
            None => Err(PamOutcome::UserUnknown),
        }
    }

    fn debug(&mut self, text: &str) {
        if self.args.debug {
            self.conv.log(LogLevel::Debug, text);
        }
    }

    /// The cached user, or the outcome that ends the hook: local accounts and unknown
    /// names are not ours, an unreadable cache is an outage.
    fn find_user(&mut self) -> Result<Option<User>, PamOutcome> {
        if let Err(e) = validate_name(&self.user_name) {
            self.debug(&format!("not a dircache name: {e}"));
            return Ok(None);
        }
        let local =
            LocalAccounts::load(&self.config.unix.local_passwd, &self.config.unix.local_group)
                .map_err(|e| {
                    self.conv.log(LogLevel::Error, &e.to_string());
                    undecided(self.conv, &self.user_name, PamOutcome::AuthinfoUnavail)
                })?;
        if local.win_over(&self.user_name, &[]) {
            self.debug("a local account of that name exists; local accounts win");
            self.local_name = true;
            return Ok(None);
        }
        let cache = CacheDir::new(&self.config.cache.dir);
        let found = cache.open::<User>().and_then(|users| users.by_name(&self.user_name));
        match found {
            Ok(Some(user)) if local.win_over(&user.name, &[user.uid, user.gid]) => Ok(None),
            Ok(Some(user)) => Ok(Some(self.disable_if_refused(user))),
            Ok(None) => Ok(None),
            Err(CacheError::NotInitialized { .. }) => Ok(None),
            Err(e) => {
                self.conv.log(LogLevel::Error, &format!("cannot read the user cache: {e}"));
                Err(undecided(self.conv, &self.user_name, PamOutcome::AuthinfoUnavail))
            }
        }
    }

    /// A record whose name the name policy refuses (an older cache, a new `reserved_names`
    /// entry, a record of another origin) is treated as disabled, not as unknown: "unknown"
    /// would hand the decision to the next module of the stack, which for an SSH key login
    /// may be a yes.
    fn disable_if_refused(&mut self, mut user: User) -> User {
        if let Err(e) = self.config.name_policy().check(&user.name) {
            self.log_for_user(LogLevel::Notice, &format!("treated as disabled: {e}"));
            user.enabled = false;
        }
        user
    }

    fn log_for_user(&mut self, level: LogLevel, text: &str) {
        let line = format!("{text}; user={}", self.user_name);
        self.conv.log(level, &line);
    }
}

/// The answer when dircache cannot decide about `name` (its arguments, configuration, the
/// local account files or its cache cannot be used). A name the system resolves to the
/// record libnss_dircache serves is dircache's: the session would run as that user, so it
/// is refused with `outcome`, whatever the modules after dircache would say. Any other name
/// is left to them (PAM_IGNORE): a broken dircache must not lock out local users or those
/// of another source. The public cache NSS reads and `getpwnam` are asked, not the
/// configuration, which may be what is broken.
fn undecided<C: PamConversation>(conv: &mut C, name: &str, outcome: PamOutcome) -> PamOutcome {
    // The NSS logic itself decides what it serves (name policy, local accounts win), so
    // that a local user never counts as dircache's.
    let mut nss = Nss::new(ReadMapper, conv.nss_settings(), Box::new(|_: &str| {}));
    let served = match nss.passwd_by_name(name.as_bytes()) {
        nss::Reply::Found(user) => conv.system_uid(name) == Some(user.uid),
        _ => false,
    };
    if served {
        return outcome;
    }
    conv.log(
        LogLevel::Notice,
        &format!("not a user dircache serves here: left to the other modules; user={name}"),
    );
    PamOutcome::Ignore
}

/// `pam_sm_authenticate`.
pub fn authenticate<C: PamConversation>(conv: &mut C, raw_args: &[&str]) -> PamOutcome {
    let mut ctx = match Context::new(conv, raw_args) {
        Ok(ctx) => ctx,
        Err(outcome) => return outcome,
    };
    let user = match ctx.find_user() {
        Ok(user) => user,
        Err(outcome) => return outcome,
    };
    // Ask for the password before revealing whether the user exists.
    let password = match ctx.conv.authtok(AuthtokItem::Current, None) {
        Ok(password) => password,
        Err(outcome) => return outcome,
    };
    let Some(user) = user else {
        // Hides whether a dircache user of that name exists. A local name is public
        // (/etc/passwd is world-readable), so it is answered at once: every local login
        // (sudo, su, ssh) passes through this module first.
        if !ctx.local_name {
            passwords::spend_verification_time(&password, &ctx.config.passwords);
        }
        ctx.debug("no such dircache user");
        return PamOutcome::UserUnknown;
    };
    let states = LoginStates::new(&ctx.config.cache.dir);
    let mut state = load_state_and_wait(&mut ctx, &states, &user);
    let before = state.clone();
    let outcome = match user.auth {
        AuthMethod::Local => check_local_password(&mut ctx, &user, &password),
        AuthMethod::Directory => check_directory_password(&mut ctx, &user, &password, &mut state),
    };
    // Decided before the attempt is recorded: a refused login counts as a failure whatever
    // the password, or the next attempt's delay (reset by a success) would tell that it
    // was right.
    let outcome = refuse_after_password(&mut ctx, &user, outcome);
    let now = ctx.conv.now();
    if state.forget_unusable_offline_hash(&ctx.config.auth, now) {
        ctx.log_for_user(LogLevel::Info, "cached offline credentials expired; deleted");
    }
    let offline_changed = (&state.offline_hash, state.offline_stored_at)
        != (&before.offline_hash, before.offline_stored_at);
    // Every success counts: failures recorded by parallel attempts since `before` was
    // read must be reset too. `update` writes nothing when nothing changes.
    let counts =
        matches!(outcome, PamOutcome::Success | PamOutcome::AuthErr | PamOutcome::PermDenied);
    if counts || offline_changed {
        // Applied to the record as it is now: a parallel login may have written it since.
        let recorded = states.update(&user, |current| {
            match outcome {
                PamOutcome::Success => current.record_success(),
                PamOutcome::AuthErr | PamOutcome::PermDenied => current.record_failure(now),
                _ => {}
            }
            if offline_changed {
                current.offline_hash = state.offline_hash.take();
                current.offline_stored_at = state.offline_stored_at;
            }
        });
        // Not being able to record state must not turn into a login or a lock-out.
        if let Err(e) = recorded {
            ctx.conv.log(LogLevel::Error, &e.to_string());
        }
    }
    outcome
}

/// The user's login state, after waiting out the failure delay it calls for. An unreadable
/// record counts as a fresh one (logged): it must not turn into a lock-out.
fn load_state_and_wait<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    states: &LoginStates,
    user: &User,
) -> LoginState {
    let state = states.load(user).unwrap_or_else(|e| {
        ctx.conv.log(LogLevel::Error, &e.to_string());
        LoginState::fresh(user)
    });
    let delay = state.delay(&ctx.config.auth);
    if !delay.is_zero() {
        let text =
            format!("{} consecutive failures: waiting {} s", state.failures, delay.as_secs());
        ctx.log_for_user(LogLevel::Notice, &text);
        ctx.conv.pause(delay);
    }
    state
}

/// `auth` answers for the whole login, not only the password: a service that calls
/// `pam_authenticate` alone (some web applications, scripts) must not let in a disabled,
/// expired or blocked user or one without the required privileges. The answer and the
/// message the user sees are the same for a right and a wrong password (issue 14 §2:
/// the reason is shown "without revealing whether the password was right"): otherwise
/// the message would tell a guesser which password is right, to be used where the
/// account is not refused (webmail, IMAP, after the lock). An unavailable directory
/// answers as it is: it says nothing about the password either.
fn refuse_after_password<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    user: &User,
    outcome: PamOutcome,
) -> PamOutcome {
    if !matches!(outcome, PamOutcome::Success | PamOutcome::AuthErr) {
        return outcome;
    }
    match access_refusal(ctx, user) {
        None => outcome,
        Some(Refusal::MissingPrivileges) => PamOutcome::PermDenied,
        Some(_) => PamOutcome::AuthErr,
    }
}

/// Why a known user may not log in although its identity is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Disabled,
    Expired,
    Blocked,
    PasswordExpired,
    ForeignAccount,
    MissingPrivileges,
}

impl Refusal {
    /// The answer of the `account` step.
    fn account_outcome(self) -> PamOutcome {
        match self {
            Refusal::Disabled | Refusal::Expired => PamOutcome::AcctExpired,
            // Not PAM_NEW_AUTHTOK_REQD: the service would then ask pam_dircache to change
            // the password, which it cannot do for a directory account.
            Refusal::Blocked
            | Refusal::PasswordExpired
            | Refusal::ForeignAccount
            | Refusal::MissingPrivileges => PamOutcome::PermDenied,
        }
    }
}

/// The limits the directory set (validity date, lock, expired password) at `now`.
fn limit_refusal(user: &User, now: u64) -> Option<(Refusal, String)> {
    let limits = &user.limits;
    if limits.blocked {
        return Some((
            Refusal::Blocked,
            "Access denied: account blocked by the mail server's login policy. Ask an \
             administrator."
                .to_string(),
        ));
    }
    if limits.expired_at(now) {
        return Some((
            Refusal::Expired,
            format!("Access denied: account expired{}. Ask an administrator.", since(user)),
        ));
    }
    if limits.password_expired {
        return Some((
            Refusal::PasswordExpired,
            "Access denied: password expired: change it in webmail, then log in again.".to_string(),
        ));
    }
    None
}

/// " (since DATE)" for an expired account, nothing for one whose date was unreadable
/// (expired long ago: the sync report names the raw value).
fn since(user: &User) -> String {
    match user.limits.expires_day {
        Some(day) if day > crate::user::EXPIRED_LONG_AGO => {
            format!(" (since {})", civil_date(day))
        }
        _ => String::new(),
    }
}

/// The checks `account` makes, and `auth` after a right password: enabled, not expired nor
/// blocked nor holding an expired password, the name not another account source's, every
/// `require=` privilege held. Logs the reason and tells the user (only these two steps
/// call it, both after the user proved who they are: a right password, or an SSH key).
fn access_refusal<C: PamConversation>(ctx: &mut Context<'_, C>, user: &User) -> Option<Refusal> {
    if !user.enabled {
        ctx.conv.error_message("Access denied: account disabled. Ask an administrator.");
        ctx.log_for_user(LogLevel::Notice, "access denied: account disabled");
        return Some(Refusal::Disabled);
    }
    let now = ctx.conv.now();
    if let Some((refusal, message)) = limit_refusal(user, now) {
        ctx.conv.error_message(&message);
        let reason = match refusal {
            Refusal::Blocked => "account blocked by the directory".to_string(),
            Refusal::Expired => format!("account expired{}", since(user)),
            _ => "the directory marked the password expired".to_string(),
        };
        ctx.log_for_user(LogLevel::Notice, &format!("access denied: {reason}"));
        return Some(refusal);
    }
    if is_foreign_account(ctx, user) {
        return Some(Refusal::ForeignAccount);
    }
    let missing: Vec<&str> =
        ctx.args.require.iter().filter(|p| !user.has_privilege(**p)).map(|p| p.as_str()).collect();
    if !missing.is_empty() {
        let list = missing.join(", ");
        ctx.conv.error_message(&format!(
            "Access denied: missing privilege {list}. Ask an administrator."
        ));
        ctx.log_for_user(LogLevel::Notice, &format!("access denied: missing privilege {list}"));
        return Some(Refusal::MissingPrivileges);
    }
    None
}

/// The name must be this user's for the whole system, not only for dircache: when another
/// account source answers `getpwnam` for it first, the session would run as that account.
/// Logs the refusal when it is not.
fn is_foreign_account<C: PamConversation>(ctx: &mut Context<'_, C>, user: &User) -> bool {
    let Some(uid) = ctx.conv.system_uid(&ctx.user_name).filter(|uid| *uid != user.uid) else {
        return false;
    };
    let text = format!(
        "access denied: the system's user database gives this name uid {uid}, dircache has \
         uid {}; another account source (sssd, systemd-userdb, …) answers first",
        user.uid
    );
    ctx.log_for_user(LogLevel::Error, &text);
    true
}

/// The login string the directory knows the user by: IceWarp logs in with the address the
/// cache recorded, Application Integration with its `userName`.
fn directory_login(config: &Config, user: &User) -> String {
    match config.directory.kind {
        DirectoryKind::Icewarp => user.emails.first().unwrap_or(&user.name).clone(),
        _ => user.name.clone(),
    }
}

/// Only a positive answer from the directory is a yes. The client is made here and dropped
/// before returning: nothing survives the hook (sshd forks).
fn check_directory_password<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    user: &User,
    password: &Secret,
    state: &mut LoginState,
) -> PamOutcome {
    let login = directory_login(&ctx.config, user);
    let answer = directory::connect_for_login(&ctx.config)
        .and_then(|mut dir| dir.check_password(&login, password));
    if cached_password_is_void(&answer, password, state) {
        ctx.log_for_user(
            LogLevel::Notice,
            "the directory no longer accepts the cached offline credentials; deleted",
        );
        state.forget_offline_hash();
    }
    match answer {
        Ok(PasswordCheck::Accepted) => {
            ctx.log_for_user(LogLevel::Info, "authentication succeeded (directory)");
            if ctx.config.auth.cache_credentials {
                remember_for_offline(ctx, password, state);
            }
            PamOutcome::Success
        }
        Err(e) if e.is_unreachable() && ctx.config.auth.cache_credentials => {
            offline_login(ctx, password, state, &e)
        }
        Ok(PasswordCheck::Rejected) => {
            ctx.log_for_user(
                LogLevel::Notice,
                "authentication failure: the directory refused the password",
            );
            PamOutcome::AuthErr
        }
        Ok(PasswordCheck::AccountDisabled) => {
            ctx.log_for_user(
                LogLevel::Notice,
                "authentication refused: the directory says the account is disabled",
            );
            PamOutcome::AuthErr
        }
        Ok(PasswordCheck::NotAsked) => {
            // Not the directory's answer: the cached password (if any) stays, so that an
            // empty password typed by anyone cannot wipe it during an outage.
            ctx.log_for_user(
                LogLevel::Notice,
                "authentication failure: an empty password, or one the directory protocol cannot carry",
            );
            PamOutcome::AuthErr
        }
        Ok(PasswordCheck::SecondFactorRequired) => {
            ctx.log_for_user(
                LogLevel::Notice,
                "authentication refused: the directory requires a second factor, which PAM cannot provide",
            );
            PamOutcome::AuthErr
        }
        Err(e) => {
            let text = match e.failure() {
                Failure::Suspicious => format!(
                    "possible attack: the directory's answer cannot be trusted, so no \
                     offline credentials are used: {e}"
                ),
                Failure::Unreachable | Failure::Other => {
                    format!("the directory is unavailable: {e}")
                }
            };
            ctx.log_for_user(LogLevel::Error, &text);
            PamOutcome::AuthinfoUnavail
        }
    }
}

/// Whether the directory's answer voids the cached offline password: a disabled or
/// two-factor account, or a refusal of the very password that is cached (changed in the
/// directory since). A refusal of any other password says nothing about the cached one:
/// anyone may type a wrong password for any name, and must not wipe its owner's offline
/// login that way.
fn cached_password_is_void(
    answer: &Result<PasswordCheck, DirectoryError>,
    password: &Secret,
    state: &LoginState,
) -> bool {
    match answer {
        Ok(PasswordCheck::AccountDisabled | PasswordCheck::SecondFactorRequired) => {
            state.offline_hash.is_some()
        }
        Ok(PasswordCheck::Rejected) => state
            .offline_hash
            .as_deref()
            .is_some_and(|hash| passwords::verify_password(password, hash).unwrap_or(false)),
        Ok(PasswordCheck::Accepted | PasswordCheck::NotAsked) | Err(_) => false,
    }
}

fn remember_for_offline<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    password: &Secret,
    state: &mut LoginState,
) {
    match passwords::hash_password(password, &ctx.config.passwords) {
        Ok(hash) => {
            state.offline_hash = Some(hash);
            state.offline_stored_at = Some(ctx.conv.now());
        }
        Err(e) => ctx.log_for_user(LogLevel::Error, &format!("credentials not cached: {e}")),
    }
}

/// Only reached when the directory could not be reached at all ([`Failure::Unreachable`]:
/// refused, no route, no DNS answer, no connection within `connect_timeout_secs`). Never
/// after a TLS failure, an HTTP error, garbage or a slow answer: whoever can produce those
/// (an interceptor with its own certificate) could otherwise log in with an old password
/// and keep the sync that disables the account away.
fn offline_login<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    password: &Secret,
    state: &LoginState,
    cause: &DirectoryError,
) -> PamOutcome {
    let now = ctx.conv.now();
    let Some(hash) = state.usable_offline_hash(&ctx.config.auth, now) else {
        let text =
            format!("the directory is unreachable and no fresh cached credentials exist: {cause}");
        ctx.log_for_user(LogLevel::Error, &text);
        return PamOutcome::AuthinfoUnavail;
    };
    if passwords::verify_password(password, hash).unwrap_or(false) {
        let age_hours = now.saturating_sub(state.offline_stored_at.unwrap_or(now)) / 3600;
        let text = format!(
            "OFFLINE login with cached credentials ({age_hours} h old); the directory is unreachable: {cause}"
        );
        ctx.log_for_user(LogLevel::Notice, &text);
        PamOutcome::Success
    } else {
        ctx.log_for_user(
            LogLevel::Notice,
            "offline authentication failure: wrong password (directory unreachable)",
        );
        PamOutcome::AuthErr
    }
}

fn check_local_password<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    user: &User,
    password: &Secret,
) -> PamOutcome {
    let Some(hash) = &user.password_hash else {
        passwords::spend_verification_time(password, &ctx.config.passwords);
        ctx.log_for_user(LogLevel::Notice, "authentication failure: no local password is set");
        return PamOutcome::AuthErr;
    };
    match passwords::verify_password(password, hash) {
        Ok(true) => {
            ctx.log_for_user(LogLevel::Info, "authentication succeeded (local password)");
            PamOutcome::Success
        }
        Ok(false) => {
            ctx.log_for_user(LogLevel::Notice, "authentication failure: wrong password");
            PamOutcome::AuthErr
        }
        Err(e) => {
            ctx.log_for_user(LogLevel::Error, &format!("authentication failure: {e}"));
            PamOutcome::AuthErr
        }
    }
}

/// `pam_sm_acct_mgmt`: the account must exist, be enabled, within its validity date (at
/// the conversation's clock), not blocked, its password not marked expired, and hold
/// every required privilege. The only step of an SSH key login: no password is asked.
pub fn account<C: PamConversation>(conv: &mut C, raw_args: &[&str]) -> PamOutcome {
    let (mut ctx, user) = match Context::for_known_user(conv, raw_args) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    if let Some(refusal) = access_refusal(&mut ctx, &user) {
        return refusal.account_outcome();
    }
    ctx.debug("account allowed");
    PamOutcome::Success
}

/// `pam_sm_chauthtok`: `local` users holding `change_password` change their own password,
/// always proving the current one first (even when root calls).
pub fn change_password<C: PamConversation>(
    conv: &mut C,
    raw_args: &[&str],
    phase: ChangePhase,
    now: u64,
) -> PamOutcome {
    let (mut ctx, user) = match Context::for_known_user(conv, raw_args) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    if let Some(refusal) = refuse_change(&mut ctx, &user) {
        return refusal;
    }
    let old = match ctx.conv.authtok(AuthtokItem::Old, Some("Current password: ")) {
        Ok(old) => old,
        Err(outcome) => return outcome,
    };
    // Guessing the current password here is as slow as logging in: same delay, same count.
    let states = LoginStates::new(&ctx.config.cache.dir);
    let state = load_state_and_wait(&mut ctx, &states, &user);
    let current_ok = user
        .password_hash
        .as_deref()
        .is_some_and(|hash| passwords::verify_password(&old, hash).unwrap_or(false));
    let recorded = match (current_ok, state.failures) {
        (true, 0) => Ok(()),
        (true, _) => states.update(&user, LoginState::record_success),
        (false, _) => states.update(&user, |current| current.record_failure(now)),
    };
    if let Err(e) = recorded {
        ctx.conv.log(LogLevel::Error, &e.to_string());
    }
    if !current_ok {
        ctx.log_for_user(LogLevel::Notice, "password change refused: wrong current password");
        return PamOutcome::AuthErr;
    }
    match phase {
        ChangePhase::Prelim => PamOutcome::Success,
        ChangePhase::Update => store_new_password(&mut ctx, &user, &old, now),
    }
}

fn refuse_change<C: PamConversation>(ctx: &mut Context<'_, C>, user: &User) -> Option<PamOutcome> {
    let reason = refusal_reason(user)?;
    ctx.conv.error_message(reason);
    ctx.log_for_user(LogLevel::Notice, "password change refused");
    Some(PamOutcome::PermDenied)
}

/// Why `user` may not change its password here, if it may not.
fn refusal_reason(user: &User) -> Option<&'static str> {
    if user.auth == AuthMethod::Directory {
        Some("Your password is managed by the directory server: change it there (for example in webmail).")
    } else if !user.enabled {
        Some("Your account is disabled. Ask an administrator.")
    } else if !user.has_privilege(Privilege::ChangePassword) {
        Some("You are not allowed to change your password here. Ask an administrator (dircache-sync user passwd).")
    } else {
        None
    }
}

fn store_new_password<C: PamConversation>(
    ctx: &mut Context<'_, C>,
    user: &User,
    old: &Secret,
    now: u64,
) -> PamOutcome {
    let new = match ctx.conv.authtok(AuthtokItem::New, None) {
        Ok(new) => new,
        Err(outcome) => return outcome,
    };
    if new[..] == old[..] {
        ctx.conv.error_message("Password unchanged.");
        return PamOutcome::AuthtokErr;
    }
    let hash = match passwords::hash_password(&new, &ctx.config.passwords) {
        Ok(hash) => hash,
        Err(e) => {
            ctx.conv.error_message(&format!("The new password was refused: {e}."));
            return PamOutcome::AuthtokErr;
        }
    };
    let cache = CacheDir::new(&ctx.config.cache.dir);
    let lock_wait = Duration::from_secs(ctx.config.cache.lock_timeout_secs.min(10));
    let name = ctx.user_name.clone();
    let stored = cache.update(lock_wait, now, |db| {
        // Re-checked under the lock: the user may have changed since the prompt (another
        // password, disabled, the privilege revoked, switched to the directory).
        let unchanged = db.user(&name).is_some_and(|now_user| {
            now_user.uid == user.uid
                && now_user.password_hash == user.password_hash
                && refusal_reason(now_user).is_none()
        });
        if !unchanged {
            return Err(user_edits::EditError::ChangedMeanwhile(name.clone()));
        }
        user_edits::set_password_hash(db, &name, hash, now)
    });
    match stored {
        Ok(()) => {
            ctx.log_for_user(LogLevel::Info, "password changed");
            PamOutcome::Success
        }
        Err(user_edits::EditError::Cache(CacheError::LockTimeout { .. })) => {
            ctx.log_for_user(LogLevel::Error, "password change failed: the cache is locked");
            PamOutcome::AuthtokLockBusy
        }
        Err(e) => {
            ctx.log_for_user(LogLevel::Error, &format!("password change failed: {e}"));
            PamOutcome::AuthtokErr
        }
    }
}

pub mod script;

#[cfg(test)]
mod tests;
