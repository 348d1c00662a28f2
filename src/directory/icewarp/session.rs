//! Talking to one IceWarp server (docs/protocols/icewarp.md §4, §5, §7): the administrator's
//! session (login, one command with one retry after a session error, paging, logout) and
//! the check of a user's own password. What the replies mean for a listing is `select`'s.

use std::sync::{Mutex, MutexGuard, PoisonError};

use zeroize::Zeroizing;

use super::count;
use super::wire::{self, Fields, ListPage, Outcome, Reply, RequestText, Unrepresentable, Visitor};
use crate::config::{Config, DirectoryConfig};
use crate::directory::http::HttpClient;
use crate::directory::{may_ask, DirectoryError, PasswordCheck};

/// The uids that mean the session is gone (expired, the server restarted): one new login.
const SESSION_ERRORS: &[&str] =
    &["session_invalid", "session_invalid_id", "session_expired", "session_no_user"];

/// The items of one list page: for each item, the texts of the requested fields.
pub type Items = Vec<Vec<Option<String>>>;

/// The administrator's credentials, or why there are none. Missing credentials only
/// matter for listing: a password check needs no administrator, and the PAM module may
/// run where the password file is unreadable.
pub enum Admin {
    Ready { email: String, password: Zeroizing<String> },
    Missing(String),
}

impl Admin {
    /// The configured administrator, reading the password (file) now.
    pub fn from_config(config: &Config) -> Admin {
        match (config.directory.username.as_deref(), config.directory_password()) {
            (None, _) => Admin::Missing(
                "directory.username (an IceWarp administrator address) is required for \
                 listing"
                    .to_string(),
            ),
            (Some(_), Ok(None)) => Admin::Missing(
                "directory.password or directory.password_file is required for listing".to_string(),
            ),
            (Some(_), Err(err)) => Admin::Missing(err.to_string()),
            (Some(email), Ok(Some(password))) => {
                Admin::Ready { email: email.to_string(), password }
            }
        }
    }

    /// No administrator, for a client that only checks passwords.
    pub fn not_read() -> Admin {
        Admin::Missing(
            "the administrator's credentials are not read for a password check".to_string(),
        )
    }
}

/// One server, and the administrator's session on it once logged in. Shared by the
/// workers of a listing (`&Session` is all a command needs): they send their commands with
/// the one sid, and the HTTP client's pool keeps one connection per worker alive.
pub struct Session {
    http: HttpClient,
    server: String,
    admin: Admin,
    sid: Mutex<SidState>,
}

/// The current session id, and how many logins made one: a worker that saw its command
/// fail with the sid of generation `g` renews the session only if it is still at `g`.
/// Otherwise another worker renewed it already, and the new sid is used: however many
/// commands were in flight when the session expired, it costs one login.
#[derive(Default)]
struct SidState {
    generation: u64,
    sid: Option<String>,
}

impl Session {
    /// Contacts nothing yet. `api_url` is where the API answers.
    pub fn new(
        server: String,
        api_url: &str,
        directory: &DirectoryConfig,
        admin: Admin,
    ) -> Result<Session, DirectoryError> {
        // IceWarp takes the credentials in the XML; no HTTP authentication.
        let http = HttpClient::new(&server, api_url, directory, None)?;
        Ok(Session { http, server, admin, sid: Mutex::new(SidState::default()) })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn malformed(&self, command: &str, reason: impl Into<String>) -> DirectoryError {
        DirectoryError::Malformed {
            server: self.server.clone(),
            command: command.to_string(),
            reason: reason.into(),
        }
    }

    fn api_error(&self, command: &str, uid: String) -> DirectoryError {
        DirectoryError::Api { server: self.server.clone(), command: command.to_string(), uid }
    }

    /// Fails with `NotConfigured` when there is no administrator to log in.
    pub fn require_admin(&self) -> Result<(), DirectoryError> {
        match &self.admin {
            Admin::Ready { .. } => Ok(()),
            Admin::Missing(reason) => Err(DirectoryError::NotConfigured(reason.clone())),
        }
    }

    /// Sends one request and parses the reply into `visitor`.
    fn exchange(
        &self,
        command: &str,
        body: RequestText,
        visitor: &mut dyn Visitor,
    ) -> Result<Reply, DirectoryError> {
        let bytes = self.http.post_xml(command, body)?;
        wire::parse_reply(&bytes, visitor).map_err(|reason| self.malformed(command, reason))
    }

    /// The session state; a worker that panicked while holding it left nothing half-done
    /// (the sid is replaced in one assignment), so poisoning is ignored.
    fn sid_state(&self) -> MutexGuard<'_, SidState> {
        self.sid.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An administrator session: `authenticate`, keeping the reply's `sid`.
    pub fn login(&self) -> Result<String, DirectoryError> {
        let mut state = self.sid_state();
        self.login_locked(&mut state)
    }

    /// The sid to send and its generation, logging in first when there is none. The lock
    /// is held through the login, so that workers needing a sid meanwhile wait for this one
    /// instead of logging in themselves.
    fn current_sid(&self) -> Result<(u64, String), DirectoryError> {
        let mut state = self.sid_state();
        match &state.sid {
            Some(sid) => Ok((state.generation, sid.clone())),
            None => {
                let sid = self.login_locked(&mut state)?;
                Ok((state.generation, sid))
            }
        }
    }

    /// The sid of `generation` was refused: forget it, unless a newer one replaced it.
    fn forget_sid(&self, generation: u64) {
        let mut state = self.sid_state();
        if state.generation == generation {
            state.sid = None;
        }
    }

    fn login_locked(&self, state: &mut SidState) -> Result<String, DirectoryError> {
        let admin_login =
            |reason: String| DirectoryError::AdminLogin { server: self.server.clone(), reason };
        let (email, password) = match &self.admin {
            Admin::Ready { email, password } => (email, password),
            Admin::Missing(reason) => return Err(DirectoryError::NotConfigured(reason.clone())),
        };
        // The request holds the password: it is sized up front and wiped once sent.
        let body = wire::authenticate(email, password).map_err(|Unrepresentable| {
            admin_login(
                "the administrator address or password contains a control character that XML \
                 cannot carry"
                    .to_string(),
            )
        })?;
        let mut fields = Fields::new(&[&["result"]]);
        let reply = self.exchange("authenticate", body, &mut fields)?;
        let uid = match reply.outcome {
            Outcome::Result => None,
            Outcome::Error(uid) => Some(uid),
        };
        let sid = admin_session(uid, fields.get(0), reply.sid, email).map_err(admin_login)?;
        state.generation += 1;
        state.sid = Some(sid.clone());
        Ok(sid)
    }

    /// Logs the administrator in and out again, for `dircache-sync check`: proves the
    /// server answers and accepts the configured credentials. A failed logout is returned
    /// as a warning, not an error.
    pub fn check_admin_login(&self) -> Result<Vec<String>, DirectoryError> {
        self.require_admin()?;
        self.login()?;
        Ok(self.logout().into_iter().collect())
    }

    /// Runs one session command. A session error (the sid expired, the server restarted)
    /// gets one retry with a new sid (one new login for all workers, see [`SidState`]); a
    /// second one fails.
    pub fn command(
        &self,
        command: &str,
        build: &dyn Fn(&str) -> Result<RequestText, Unrepresentable>,
        visitor: &mut dyn Visitor,
    ) -> Result<(), DirectoryError> {
        let mut retried = false;
        loop {
            let (generation, sid) = self.current_sid()?;
            let body = build(&sid).map_err(|Unrepresentable| {
                self.malformed(
                    command,
                    "a value for the request contains a character XML cannot carry",
                )
            })?;
            // Only a `type="result"` reply reaches the visitor, so a retry starts clean.
            let reply = self.exchange(command, body, visitor)?;
            match reply.outcome {
                Outcome::Result => return Ok(()),
                Outcome::Error(uid) if SESSION_ERRORS.contains(&uid.as_str()) && !retried => {
                    retried = true;
                    self.forget_sid(generation);
                }
                Outcome::Error(uid) => return Err(self.api_error(command, uid)),
            }
        }
    }

    /// Ends the session; a failure is only worth a warning.
    pub fn logout(&self) -> Option<String> {
        let sid = self.sid_state().sid.take()?;
        let body = match wire::logout(&sid) {
            Ok(body) => body,
            Err(Unrepresentable) => return Some("logout: the sid cannot be sent".to_string()),
        };
        match self.exchange("logout", body, &mut wire::Ignore) {
            Ok(Reply { outcome: Outcome::Result, .. }) => None,
            Ok(Reply { outcome: Outcome::Error(uid), .. }) => {
                Some(format!("{}: logout: the server answered error {uid:?}", self.server))
            }
            Err(err) => Some(format!("logout failed: {err}")),
        }
    }

    /// Pages through a list command until `offset + items >= overallcount`. `handle` gets
    /// each page's items.
    pub fn paged(
        &self,
        command: &str,
        fields: &'static [&'static str],
        build: &dyn Fn(&str, u64) -> Result<RequestText, Unrepresentable>,
        handle: &mut dyn FnMut(&Session, Items) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let mut offset: u64 = 0;
        let mut page = ListPage::new(fields);
        loop {
            page.clear();
            self.command(command, &|sid| build(sid, offset), &mut page)?;
            let overall = page_check(&page, offset).map_err(|why| self.malformed(command, why))?;
            offset = offset.saturating_add(count(page.items.len()));
            handle(self, std::mem::take(&mut page.items))?;
            if offset >= overall {
                return Ok(());
            }
        }
    }

    /// Asks whether `password` is `login`'s, with the user's own credentials: `getauthtoken`,
    /// or `authenticate` on servers without it.
    pub fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        if !may_ask(login, password) {
            return Ok(PasswordCheck::NotAsked);
        }
        // IceWarp passwords are text: bytes that are not UTF-8, or characters XML cannot
        // carry, cannot be anyone's password.
        let Ok(password) = std::str::from_utf8(password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let Ok(body) = wire::getauthtoken(login, password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let command = "getauthtoken";
        self.http.expect_answers();
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        let reply = self.exchange(command, body, &mut fields)?;
        match reply.outcome {
            // Only a non-empty token proves the password; anything else is not an answer,
            // and never a yes.
            Outcome::Result if fields.get(0).is_some_and(|token| !token.trim().is_empty()) => {
                Ok(PasswordCheck::Accepted)
            }
            Outcome::Result => {
                Err(self.malformed(command, "a result without a non-empty <authtoken>"))
            }
            Outcome::Error(uid) if uid == "invoker_commandname_invalid" => {
                self.check_with_authenticate(login, password)
            }
            Outcome::Error(uid) => self.password_error(command, uid),
        }
    }

    /// The old way of checking a password, for servers without `getauthtoken`:
    /// `authenticate` as the user, then `logout` that session.
    fn check_with_authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<PasswordCheck, DirectoryError> {
        let command = "authenticate";
        let Ok(body) = wire::authenticate(login, password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let mut fields = Fields::new(&[&["result"]]);
        let reply = self.exchange(command, body, &mut fields)?;
        if let Outcome::Error(uid) = reply.outcome {
            return self.password_error(command, uid);
        }
        match fields.get(0).map(str::trim) {
            Some("1") => {
                let Some(sid) = reply.sid else {
                    return Err(self.malformed(
                        command,
                        "<result>1</result> without a sid: cannot tell whether the password \
                         is right",
                    ));
                };
                // The session exists only to prove the password; its logout failing
                // changes nothing about the answer.
                if let Ok(body) = wire::logout(&sid) {
                    let _ = self.exchange("logout", body, &mut wire::Ignore);
                }
                Ok(PasswordCheck::Accepted)
            }
            Some("0") => Ok(PasswordCheck::Rejected),
            other => Err(self.malformed(
                command,
                format!("authenticate answered <result>{}</result>", other.unwrap_or("")),
            )),
        }
    }

    fn password_error(&self, command: &str, uid: String) -> Result<PasswordCheck, DirectoryError> {
        match uid.as_str() {
            "auth_login_invalid" => Ok(PasswordCheck::Rejected),
            "account_disabled_2" => Ok(PasswordCheck::AccountDisabled),
            "auth_two_factor_required" => Ok(PasswordCheck::SecondFactorRequired),
            _ => Err(self.api_error(command, uid)),
        }
    }
}

/// The sid of the administrator's `authenticate` reply (error `uid`, `<result>`, `sid`), or
/// why there is none.
fn admin_session(
    uid: Option<String>,
    result: Option<&str>,
    sid: Option<String>,
    email: &str,
) -> Result<String, String> {
    match uid {
        Some(uid) if uid == "auth_login_invalid" => {
            return Err(format!(
                "the server answered {uid:?}: wrong administrator address ({email}) or password"
            ))
        }
        Some(uid) => return Err(format!("the server answered {uid:?}")),
        None => {}
    }
    let result = result.map(str::trim).unwrap_or("");
    if result != "1" {
        return Err(format!("authenticate answered <result>{result}</result> instead of 1"));
    }
    sid.ok_or_else(|| "authenticate succeeded but the reply has no sid attribute".to_string())
}

/// A page's `overallcount`, once the page is seen to be the one asked for and to move on.
fn page_check(page: &ListPage, offset: u64) -> Result<u64, String> {
    let overall = parse_count(page.overall_count.as_deref())
        .ok_or("the reply has no numeric <overallcount>")?;
    if let Some(echoed) = page.offset.as_deref() {
        if parse_count(Some(echoed)) != Some(offset) {
            return Err(format!("asked for offset {offset}, the reply is for offset {echoed:?}"));
        }
    }
    if page.items.is_empty() && offset < overall {
        return Err(format!("an empty page at offset {offset} although overallcount is {overall}"));
    }
    Ok(overall)
}

/// Text of a numeric element, if it is a non-negative integer.
fn parse_count(text: Option<&str>) -> Option<u64> {
    text.and_then(|text| text.trim().parse().ok())
}

#[cfg(test)]
mod tests;
