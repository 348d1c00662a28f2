//! A mock Application Integration server, following
//! docs/protocols/application-integration.md.
//!
//! Any path answers (the URL's path is the client's business); only `POST` with an
//! `application/x-www-form-urlencoded` body:
//! - `cmd=list` → `200` with the JSON array of users ([`AppIntData::users`], or the raw bytes
//!   of [`AppIntData::raw_list`]) and the content type [`AppIntData::content_type`]
//!   (default `text/json; charset=utf8`, as the protocol's own example);
//! - `cmd=auth&user=…&pass=…` → `200` `{"success": true}` when `user` is a user's exact
//!   `userName` and `pass` its password, else `{"success": false, "message": "…"}` after
//!   [`AppIntData::wrong_password_delay`];
//! - with [`AppIntData::basic_auth`] set, a request without those HTTP Basic credentials gets
//!   `401` with `WWW-Authenticate` (and is still logged);
//! - another method `405`; another content type, a missing `cmd`, `user` or `pass`, or an
//!   unknown `cmd` `400`.
//!
//! Every request's decoded form parameters are logged ([`AppIntMock::requests`],
//! [`AppIntMock::received_passwords`]).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::server::{lock, Fault, Handler, MockServer, Request, Response};
use crate::tls::TlsIdentity;

/// The path the demo and [`AppIntServer::url`] use.
pub const DEFAULT_PATH: &str = "/mailstore-integration/index.php";
/// The default reply content type (the protocol's example).
pub const DEFAULT_CONTENT_TYPE: &str = "text/json; charset=utf8";

/// A JSON field that can be left out, be `null`, or hold a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonField<T> {
    Omitted,
    Null,
    Value(T),
}

impl<T> JsonField<T> {
    fn put(&self, obj: &mut Map<String, Value>, key: &str, f: impl FnOnce(&T) -> Value) {
        match self {
            JsonField::Omitted => {}
            JsonField::Null => {
                obj.insert(key.to_string(), Value::Null);
            }
            JsonField::Value(v) => {
                obj.insert(key.to_string(), f(v));
            }
        }
    }
}

/// One user of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct AppIntUser {
    pub user_name: String,
    pub distinguished_name: JsonField<String>,
    pub full_name: JsonField<String>,
    pub email_addresses: JsonField<Vec<String>>,
    /// The password `cmd=auth` accepts; `None`: none does.
    pub password: Option<String>,
    /// More fields to put in the user's object (clients must ignore unknown ones).
    pub extra: Vec<(String, Value)>,
}

impl AppIntUser {
    /// A user with only `userName` (every optional field omitted) and this password.
    pub fn new(user_name: &str, password: &str) -> AppIntUser {
        AppIntUser {
            user_name: user_name.to_string(),
            distinguished_name: JsonField::Omitted,
            full_name: JsonField::Omitted,
            email_addresses: JsonField::Omitted,
            password: Some(password.to_string()),
            extra: Vec::new(),
        }
    }

    pub fn full_name(mut self, name: &str) -> AppIntUser {
        self.full_name = JsonField::Value(name.to_string());
        self
    }

    pub fn emails(mut self, emails: &[&str]) -> AppIntUser {
        self.email_addresses = JsonField::Value(emails.iter().map(|e| e.to_string()).collect());
        self
    }

    pub fn dn(mut self, dn: &str) -> AppIntUser {
        self.distinguished_name = JsonField::Value(dn.to_string());
        self
    }

    /// `fullName`, `distinguishedName` and `emailAddresses` all `null`.
    pub fn nulls(mut self) -> AppIntUser {
        self.full_name = JsonField::Null;
        self.distinguished_name = JsonField::Null;
        self.email_addresses = JsonField::Null;
        self
    }

    pub fn extra(mut self, key: &str, value: Value) -> AppIntUser {
        self.extra.push((key.to_string(), value));
        self
    }

    /// The user's JSON object as served.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("userName".to_string(), Value::String(self.user_name.clone()));
        self.distinguished_name.put(&mut obj, "distinguishedName", |s| Value::String(s.clone()));
        self.full_name.put(&mut obj, "fullName", |s| Value::String(s.clone()));
        self.email_addresses.put(&mut obj, "emailAddresses", |v| json!(v));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }
}

/// The users and the server's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct AppIntData {
    pub users: Vec<AppIntUser>,
    /// Require these HTTP Basic credentials (user, password) on every request.
    pub basic_auth: Option<(String, String)>,
    /// The `Content-Type` of `cmd=list` and `cmd=auth` replies.
    pub content_type: String,
    /// Serve these bytes for `cmd=list` instead of the users (malformed JSON, duplicates, …).
    pub raw_list: Option<Vec<u8>>,
    /// How long a wrong password waits before `{"success": false}` (default zero).
    pub wrong_password_delay: Duration,
}

impl Default for AppIntData {
    fn default() -> Self {
        AppIntData::new()
    }
}

impl AppIntData {
    /// No users, no Basic authentication, the default content type.
    pub fn new() -> AppIntData {
        AppIntData {
            users: Vec::new(),
            basic_auth: None,
            content_type: DEFAULT_CONTENT_TYPE.to_string(),
            raw_list: None,
            wrong_password_delay: Duration::ZERO,
        }
    }

    /// The demo users (also what `dircache-demo-directory --app-integration` serves): alice
    /// "Alice Liddell" (`alice-password`; alice@example.com, al@example.com) and bob "Bob
    /// Builder" (`bob-password`; bob@example.com), with distinguished names.
    pub fn demo() -> AppIntData {
        AppIntData::new()
            .user(
                AppIntUser::new("alice", "alice-password")
                    .dn("UID=alice,DC=example,DC=com")
                    .full_name("Alice Liddell")
                    .emails(&["alice@example.com", "al@example.com"]),
            )
            .user(
                AppIntUser::new("bob", "bob-password")
                    .dn("UID=bob,DC=example,DC=com")
                    .full_name("Bob Builder")
                    .emails(&["bob@example.com"]),
            )
    }

    /// `n` users `user000000` … with full name "User N", address `userN@example.com`, a
    /// distinguished name, and password `secret-` + user name.
    pub fn generated(n: usize) -> AppIntData {
        let mut data = AppIntData::new();
        data.users = (0..n)
            .map(|i| {
                let name = format!("user{i:06}");
                AppIntUser::new(&name, &format!("secret-{name}"))
                    .dn(&format!("UID={name},DC=example,DC=com"))
                    .full_name(&format!("User {i}"))
                    .emails(&[&format!("{name}@example.com")])
            })
            .collect();
        data
    }

    pub fn user(mut self, user: AppIntUser) -> AppIntData {
        self.users.push(user);
        self
    }

    pub fn basic_auth(mut self, user: &str, password: &str) -> AppIntData {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    pub fn content_type(mut self, content_type: &str) -> AppIntData {
        self.content_type = content_type.to_string();
        self
    }

    pub fn raw_list(mut self, body: impl Into<Vec<u8>>) -> AppIntData {
        self.raw_list = Some(body.into());
        self
    }

    /// The `cmd=list` body as served.
    pub fn list_body(&self) -> Vec<u8> {
        match &self.raw_list {
            Some(raw) => raw.clone(),
            None => {
                let list: Vec<Value> = self.users.iter().map(AppIntUser::to_json).collect();
                serde_json::to_vec(&list).unwrap_or_default()
            }
        }
    }
}

/// One request as the mock decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIntRequest {
    /// The decoded form parameters in order (`+` is a space; invalid UTF-8 replaced).
    pub params: Vec<(String, String)>,
    /// The HTTP Basic credentials sent, decoded, if any.
    pub basic_auth: Option<(String, String)>,
    /// The status answered.
    pub status: u16,
}

impl AppIntRequest {
    /// The first parameter with this name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

struct State {
    data: AppIntData,
    /// The `cmd=list` body, built once per data change.
    list: Arc<Vec<u8>>,
    /// userName → index of the first user with it.
    by_name: HashMap<String, usize>,
    requests: Vec<AppIntRequest>,
    recording: bool,
}

impl State {
    fn reindex(&mut self) {
        self.list = Arc::new(self.data.list_body());
        self.by_name.clear();
        for (i, u) in self.data.users.iter().enumerate() {
            self.by_name.entry(u.user_name.clone()).or_insert(i);
        }
    }
}

/// The Application Integration mock: a [`Handler`] holding the users and the request log.
pub struct AppIntMock {
    state: Mutex<State>,
}

impl std::fmt::Debug for AppIntMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppIntMock").finish_non_exhaustive()
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space; a `%` not
/// followed by two hex digits stays as it is).
fn form_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a form body into (name, value) pairs.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.iter().position(|b| *b == b'=') {
            Some(eq) => (form_decode(&part[..eq]), form_decode(&part[eq + 1..])),
            None => (form_decode(part), String::new()),
        })
        .collect()
}

fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.header("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl AppIntMock {
    pub fn new(data: AppIntData) -> Arc<AppIntMock> {
        let mut state = State {
            data,
            list: Arc::new(Vec::new()),
            by_name: HashMap::new(),
            requests: Vec::new(),
            recording: true,
        };
        state.reindex();
        Arc::new(AppIntMock { state: Mutex::new(state) })
    }

    /// Serves this mock on 127.0.0.1 (HTTPS with `tls`).
    pub fn serve(self: &Arc<Self>, tls: Option<TlsIdentity>) -> io::Result<MockServer> {
        MockServer::start(Arc::clone(self) as Arc<dyn Handler>, tls)
    }

    /// A copy of the current data.
    pub fn data(&self) -> AppIntData {
        lock(&self.state).data.clone()
    }

    /// Changes the data while serving.
    pub fn update(&self, f: impl FnOnce(&mut AppIntData)) {
        let mut st = lock(&self.state);
        f(&mut st.data);
        st.reindex();
    }

    pub fn set_data(&self, data: AppIntData) {
        self.update(|d| *d = data);
    }

    /// Every request received (while recording), in order.
    pub fn requests(&self) -> Vec<AppIntRequest> {
        lock(&self.state).requests.clone()
    }

    /// The decoded `pass` parameters of every request, in order.
    pub fn received_passwords(&self) -> Vec<String> {
        lock(&self.state)
            .requests
            .iter()
            .filter_map(|r| r.param("pass").map(str::to_string))
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// Turns the request log on or off (on by default).
    pub fn set_recording(&self, on: bool) {
        lock(&self.state).recording = on;
    }

    fn answer(
        &self,
        req: &Request,
        params: &[(String, String)],
        creds: &Option<(String, String)>,
    ) -> Response {
        let st = lock(&self.state);
        if !req.method.eq_ignore_ascii_case("POST") {
            return Response::text(405, "only POST is supported\n").with_header("Allow", "POST");
        }
        if let Some(expected) = &st.data.basic_auth {
            if creds.as_ref() != Some(expected) {
                return Response::html(401, "<html><body><h1>401 Unauthorized</h1></body></html>")
                    .with_header("WWW-Authenticate", "Basic realm=\"Application Integration\"");
            }
        }
        let form = req.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !form {
            return Response::text(400, "expected an application/x-www-form-urlencoded body\n");
        }
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        match get("cmd") {
            Some("list") => {
                Response::with_content(200, &st.data.content_type, st.list.as_ref().clone())
            }
            Some("auth") => {
                let (Some(user), Some(pass)) = (get("user"), get("pass")) else {
                    return Response::text(400, "cmd=auth needs user and pass\n");
                };
                let ok = st
                    .by_name
                    .get(user)
                    .and_then(|i| st.data.users[*i].password.as_deref())
                    .is_some_and(|p| p == pass);
                if ok {
                    Response::with_content(200, &st.data.content_type, r#"{"success": true}"#)
                } else {
                    let resp = Response::with_content(
                        200,
                        &st.data.content_type,
                        r#"{"success": false, "message": "Invalid user name or password."}"#,
                    );
                    if st.data.wrong_password_delay.is_zero() {
                        resp
                    } else {
                        resp.with_fault(Fault::Delay(st.data.wrong_password_delay))
                    }
                }
            }
            Some(_) => Response::text(400, "unknown cmd\n"),
            None => Response::text(400, "missing cmd\n"),
        }
    }
}

impl Handler for AppIntMock {
    fn handle(&self, req: &Request) -> Response {
        let params = parse_form(&req.body);
        let creds = basic_credentials(req);
        let resp = self.answer(req, &params, &creds);
        let mut st = lock(&self.state);
        if st.recording {
            st.requests.push(AppIntRequest { params, basic_auth: creds, status: resp.status });
        }
        resp
    }
}

/// An Application Integration mock and the server serving it.
#[derive(Debug)]
pub struct AppIntServer {
    pub mock: Arc<AppIntMock>,
    pub server: MockServer,
}

impl AppIntServer {
    /// Serves `data` on 127.0.0.1 (HTTPS with `tls`).
    pub fn start(data: AppIntData, tls: Option<TlsIdentity>) -> io::Result<AppIntServer> {
        let mock = AppIntMock::new(data);
        let server = mock.serve(tls)?;
        Ok(AppIntServer { mock, server })
    }

    /// The URL to configure, e.g. `http://127.0.0.1:40123/mailstore-integration/index.php`.
    pub fn url(&self) -> String {
        format!("{}{DEFAULT_PATH}", self.server.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let p = parse_form(
            b"cmd=auth&user=john.doe&pass=S3cr%26t%3D%2B%25+x%C3%A9%00&bad=%zz%4&empty=&flag",
        );
        assert_eq!(p[0], ("cmd".to_string(), "auth".to_string()));
        assert_eq!(p[2], ("pass".to_string(), "S3cr&t=+% xé\0".to_string()));
        assert_eq!(p[3], ("bad".to_string(), "%zz%4".to_string()));
        assert_eq!(p[4], ("empty".to_string(), String::new()));
        assert_eq!(p[5], ("flag".to_string(), String::new()));
    }

    #[test]
    fn users_json_with_nulls_and_omissions() {
        let data = AppIntData::new()
            .user(AppIntUser::new("a", "x").full_name("A").emails(&["a@x"]).dn("UID=a"))
            .user(AppIntUser::new("b", "y"))
            .user(AppIntUser::new("c", "z").nulls());
        let v: Value = serde_json::from_slice(&data.list_body()).unwrap();
        assert_eq!(
            v,
            json!([
                {"userName": "a", "distinguishedName": "UID=a", "fullName": "A", "emailAddresses": ["a@x"]},
                {"userName": "b"},
                {"userName": "c", "distinguishedName": null, "fullName": null, "emailAddresses": null},
            ])
        );
    }
}
