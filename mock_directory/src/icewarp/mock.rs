//! The IceWarp mock's server side: the index of the data, the sessions, the commands, and
//! the [`Handler`] that decodes a request, runs it and logs it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::data::{domain_part, local_part};
use super::{
    account_type, error_xml, result_xml, Account, Domain, IcewarpData, IcewarpVersion,
    INSUFFICIENT_RIGHTS, INTERNAL_DOMAIN, NAMESPACE,
};
use crate::server::{lock, Fault, Handler, MockServer, Request, Response};
use crate::tls::TlsIdentity;
use crate::xml::{self, push_el};

/// One decoded command as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command name in lower case (`""` if the request had none).
    pub name: String,
    /// The `sid` attribute of `<iq>`, if any.
    pub sid: Option<String>,
    /// Every leaf element below `<commandparams>`, as (`path/in/lower/case`, decoded text),
    /// in document order, e.g. `("email", "alice@example.com")`,
    /// `("filter/namemask", "*")`, `("accountpropertylist/item/propname", "u_alias")`.
    pub params: Vec<(String, String)>,
    /// The error uid answered, or `None` for a result.
    pub error: Option<String>,
}

impl Command {
    /// The first parameter with this path (lower case).
    pub fn param(&self, path: &str) -> Option<&str> {
        param(&self.params, path)
    }

    /// Every parameter with this path, in order.
    pub fn params_named<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params.iter().filter(move |(p, _)| p == path).map(|(_, v)| v.as_str())
    }
}

fn param<'a>(params: &'a [(String, String)], path: &str) -> Option<&'a str> {
    params.iter().find(|(p, _)| p == path).map(|(_, v)| v.as_str())
}

#[derive(Default)]
struct Index {
    /// Lower-case address (primary first, then alias addresses not taken) → account.
    by_address: HashMap<String, usize>,
    /// Lower-case mailbox → account (first wins).
    by_mailbox: HashMap<String, usize>,
    /// Lower-case domain → its accounts in data order.
    by_domain: HashMap<String, Vec<usize>>,
    /// Per account: `U_AliasList` and `U_GROUPS` as served.
    alias_list: Vec<String>,
    groups: Vec<String>,
}

impl Index {
    fn build(data: &IcewarpData) -> Index {
        let mut ix = Index::default();
        let mut alias_domains: HashMap<String, Vec<&str>> = HashMap::new();
        for d in &data.domains {
            if let Some(of) = &d.alias_of {
                alias_domains.entry(of.to_ascii_lowercase()).or_default().push(&d.name);
            }
        }
        for (i, a) in data.accounts.iter().enumerate() {
            ix.by_address.entry(a.email.to_ascii_lowercase()).or_insert(i);
            ix.by_mailbox.entry(a.mailbox.to_ascii_lowercase()).or_insert(i);
            ix.by_domain.entry(domain_part(&a.email).to_ascii_lowercase()).or_default().push(i);
        }
        for a in &data.accounts {
            let domain = domain_part(&a.email);
            let extra =
                alias_domains.get(&domain.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or(&[]);
            let mut list: Vec<String> = Vec::new();
            for alias in &a.aliases {
                if alias.is_empty() || alias.starts_with('[') {
                    continue;
                }
                if alias.contains('@') {
                    list.push(alias.clone());
                } else {
                    list.push(format!("{alias}@{domain}"));
                    for d in extra {
                        list.push(format!("{alias}@{d}"));
                    }
                }
            }
            ix.alias_list.push(match &a.alias_list {
                Some(s) => s.clone(),
                None => list.join(";"),
            });
        }
        for (i, list) in ix.alias_list.iter().enumerate() {
            for addr in list.split(';') {
                ix.by_address.entry(addr.to_ascii_lowercase()).or_insert(i);
            }
        }
        ix.groups = vec![String::new(); data.accounts.len()];
        for g in data.accounts.iter().filter(|a| a.accounttype == account_type::GROUP) {
            let mut seen = HashSet::new();
            for token in &g.members {
                let members: Vec<usize> =
                    match token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                        Some(dom) => {
                            ix.by_domain.get(&dom.to_ascii_lowercase()).cloned().unwrap_or_default()
                        }
                        None => ix
                            .by_address
                            .get(&token.to_ascii_lowercase())
                            .map(|i| vec![*i])
                            .unwrap_or_default(),
                    };
                for m in members {
                    if seen.insert(m) {
                        ix.groups[m].push_str(&g.email);
                        ix.groups[m].push(';');
                    }
                }
            }
        }
        ix
    }

    fn find_login(&self, data: &IcewarpData, login: &str) -> Option<usize> {
        let key = login.to_ascii_lowercase();
        self.by_address
            .get(&key)
            .or_else(|| if data.accept_mailbox_login { self.by_mailbox.get(&key) } else { None })
            .copied()
    }
}

struct Session {
    /// `None` for the administrator, else the account the session belongs to.
    account: Option<usize>,
}

struct State {
    data: IcewarpData,
    index: Index,
    sessions: HashMap<String, Session>,
    expired: HashSet<String>,
    session_commands: usize,
    expiry_fired: bool,
    counter: u64,
    seed: u64,
    commands: Vec<Command>,
    recording: bool,
}

/// The IceWarp mock: a [`Handler`] holding the directory, the sessions and the command log.
pub struct IcewarpMock {
    state: Mutex<State>,
}

impl std::fmt::Debug for IcewarpMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcewarpMock").finish_non_exhaustive()
    }
}

enum Outcome {
    /// `<result>` content, the sid for the reply's `<iq>`, and a tarpit before answering.
    Result {
        sid: Option<String>,
        inner: String,
        delay: Duration,
    },
    Error {
        uid: &'static str,
        delay: Duration,
    },
    /// A body from [`IcewarpData::replies`], sent as it is.
    Canned(String),
}

fn err(uid: &'static str) -> Outcome {
    Outcome::Error { uid, delay: Duration::ZERO }
}

/// Case-insensitive glob with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    if pattern == "*" || pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The slice of a page and the offset to echo.
fn page_bounds(
    params: &[(String, String)],
    len: usize,
    cap: Option<usize>,
) -> (usize, usize, usize) {
    let offset: usize = param(params, "offset").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut count: usize = match param(params, "count").and_then(|v| v.trim().parse().ok()) {
        Some(0) | None => usize::MAX,
        Some(c) => c,
    };
    if let Some(cap) = cap {
        count = count.min(cap);
    }
    let start = offset.min(len);
    let end = start.saturating_add(count).min(len);
    (offset, start, end)
}

fn push_paging(out: &mut String, offset: usize, overall: usize) {
    out.push_str(&format!("<offset>{offset}</offset><overallcount>{overall}</overallcount>"));
}

const SESSIONLESS: [&str; 2] = ["authenticate", "getauthtoken"];
const KNOWN: [&str; 7] = [
    "authenticate",
    "getauthtoken",
    "logout",
    "getdomainsinfolist",
    "getaccountsinfolist",
    "getaccountproperties",
    "getaccountmemberinfolist",
];

impl State {
    fn new_sid(&mut self) -> String {
        self.counter += 1;
        // 18 digits, like IceWarp's (e.g. 201602051125504026).
        format!(
            "{}",
            100_000_000_000_000_000u64 + (self.seed % 800_000_000_000_000_000) + self.counter
        )
    }

    fn new_token(&mut self) -> String {
        self.counter += 1;
        format!("{:016X}{:016X}", self.seed, self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Checks a login; `Ok(None)` is the administrator, `Ok(Some(i))` account `i`.
    fn check_login(&self, params: &[(String, String)]) -> Result<Option<usize>, Outcome> {
        let email = param(params, "email").unwrap_or("");
        let password = param(params, "password").unwrap_or("");
        let wrong =
            Outcome::Error { uid: "auth_login_invalid", delay: self.data.wrong_password_delay };
        if email.eq_ignore_ascii_case(&self.data.admin_email)
            && password == self.data.admin_password
        {
            return Ok(None);
        }
        let Some(i) = self.index.find_login(&self.data, email) else {
            return Err(wrong);
        };
        let a = &self.data.accounts[i];
        if a.password.is_empty() || a.password != password {
            return Err(wrong);
        }
        if a.state != 0 {
            return Err(err("account_disabled_2"));
        }
        if a.two_factor {
            return Err(err("auth_two_factor_required"));
        }
        Ok(Some(i))
    }

    fn execute(&mut self, name: &str, sid: Option<&str>, params: &[(String, String)]) -> Outcome {
        if !KNOWN.contains(&name) {
            return err("invoker_commandname_invalid");
        }
        if SESSIONLESS.contains(&name) {
            return match name {
                "authenticate" => self.authenticate(params),
                _ => self.getauthtoken(params),
            };
        }
        let sid = sid.unwrap_or("");
        if self.expired.contains(sid) {
            return err("session_expired");
        }
        let Some(session) = self.sessions.get(sid) else {
            return err("session_invalid");
        };
        let account = session.account;
        if let Some(n) = self.data.expire_session_after {
            if !self.expiry_fired && self.session_commands >= n {
                self.expiry_fired = true;
                self.expire_all();
                return err("session_expired");
            }
        }
        self.session_commands += 1;
        let reply_sid = Some(sid.to_string());
        let inner = match name {
            "logout" => {
                self.sessions.remove(sid);
                Ok("1".to_string())
            }
            "getaccountproperties" => self.getaccountproperties(params, account),
            _ if account.is_some() => Err(err(INSUFFICIENT_RIGHTS)),
            "getdomainsinfolist" => Ok(self.getdomainsinfolist(params)),
            "getaccountsinfolist" => self.getaccountsinfolist(params),
            _ => self.getaccountmemberinfolist(params),
        };
        match inner {
            Ok(inner) => Outcome::Result { sid: reply_sid, inner, delay: Duration::ZERO },
            Err(o) => o,
        }
    }

    fn expire_all(&mut self) {
        let sids: Vec<String> = self.sessions.drain().map(|(k, _)| k).collect();
        self.expired.extend(sids);
    }

    fn authenticate(&mut self, params: &[(String, String)]) -> Outcome {
        match self.check_login(params) {
            Ok(account) => {
                let sid = self.new_sid();
                self.sessions.insert(sid.clone(), Session { account });
                Outcome::Result { sid: Some(sid), inner: "1".to_string(), delay: Duration::ZERO }
            }
            Err(Outcome::Error { uid: "auth_login_invalid", delay })
                if self.data.failed_login_as_result_zero =>
            {
                // Still tarpitted; reported as a plain result 0.
                Outcome::Result { sid: None, inner: "0".to_string(), delay }
            }
            Err(o) => o,
        }
    }

    fn getauthtoken(&mut self, params: &[(String, String)]) -> Outcome {
        match self.check_login(params) {
            Ok(account) => {
                let token = self.new_token();
                let (email, name) = match account {
                    Some(i) => {
                        (self.data.accounts[i].email.clone(), self.data.accounts[i].name.clone())
                    }
                    None => (self.data.admin_email.clone(), "Administrator".to_string()),
                };
                let mut out = String::new();
                push_el(&mut out, "email", &email);
                match self.data.version {
                    IcewarpVersion::V11 => push_el(&mut out, "name", &name),
                    IcewarpVersion::V14 => {
                        let (given, surname) = name.split_once(' ').unwrap_or((name.as_str(), ""));
                        out.push_str("<name><classname>TAccountName</classname>");
                        push_el(&mut out, "name", given);
                        push_el(&mut out, "surname", surname);
                        out.push_str("</name><avatartoken/>");
                    }
                }
                push_el(&mut out, "authtoken", &token);
                Outcome::Result { sid: None, inner: out, delay: Duration::ZERO }
            }
            Err(o) => o,
        }
    }

    fn getdomainsinfolist(&self, params: &[(String, String)]) -> String {
        let mask = param(params, "filter/namemask").unwrap_or("*");
        let internal = Domain::new(INTERNAL_DOMAIN);
        let all: Vec<&Domain> = self
            .data
            .list_internal_domain
            .then_some(&internal)
            .into_iter()
            .chain(self.data.domains.iter())
            .filter(|d| glob(mask, &d.name))
            .collect();
        let (offset, start, end) = page_bounds(params, all.len(), self.data.page_cap);
        let mut out = String::new();
        for d in &all[start..end] {
            let count = if d.domaintype == 2 {
                0
            } else {
                self.index.by_domain.get(&d.name.to_ascii_lowercase()).map_or(0, Vec::len)
            };
            out.push_str("<item>");
            push_el(&mut out, "name", &d.name);
            push_el(&mut out, "desc", &d.desc);
            out.push_str(&format!(
                "<domaintype>{}</domaintype><accountcount>{count}</accountcount>",
                d.domaintype
            ));
            out.push_str("</item>");
        }
        push_paging(&mut out, offset, all.len());
        out
    }

    fn getaccountsinfolist(&self, params: &[(String, String)]) -> Result<String, Outcome> {
        let domain = param(params, "domainstr").unwrap_or("").trim();
        if domain.is_empty() {
            return Err(err("domain_parameter_empty"));
        }
        let Some(d) = self.data.domains.iter().find(|d| d.name.eq_ignore_ascii_case(domain)) else {
            return Err(err("domain_invalid"));
        };
        let mask = param(params, "filter/namemask").unwrap_or("*");
        let typemask: Option<u32> =
            param(params, "filter/typemask").and_then(|t| t.trim().parse().ok());
        let empty = Vec::new();
        let ids = if d.domaintype == 2 {
            &empty
        } else {
            self.index.by_domain.get(&d.name.to_ascii_lowercase()).unwrap_or(&empty)
        };
        let all: Vec<&Account> = ids
            .iter()
            .map(|i| &self.data.accounts[*i])
            .filter(|a| typemask.is_none_or(|t| a.accounttype == t))
            .filter(|a| {
                mask == "*"
                    || glob(mask, local_part(&a.email))
                    || glob(mask, &a.email)
                    || glob(mask, &a.name)
            })
            .collect();
        let (offset, start, end) = page_bounds(params, all.len(), self.data.page_cap);
        let mut out = String::with_capacity((end - start) * 400 + 64);
        for a in &all[start..end] {
            let version = a.item_version.unwrap_or(self.data.version);
            out.push_str("<item>");
            push_el(&mut out, "name", &a.name);
            push_el(&mut out, "email", &a.email);
            if version == IcewarpVersion::V14 {
                push_el(&mut out, "displayemail", &a.email);
            }
            out.push_str(&format!("<accounttype>{}</accounttype>", a.accounttype));
            if version == IcewarpVersion::V14 {
                out.push_str(&format!(
                    "<accountstate><classname>TAccountState</classname><state>{}</state></accountstate>",
                    a.state
                ));
            }
            out.push_str(&format!(
                "<admintype>{}</admintype><quota><mailboxsize>0</mailboxsize><mailboxquota>0</mailboxquota></quota>",
                a.admintype
            ));
            out.push_str("</item>");
        }
        push_paging(&mut out, offset, all.len());
        Ok(out)
    }

    fn property_value(&self, i: usize, name: &str) -> String {
        let a = &self.data.accounts[i];
        if let Some((_, v)) = a.properties.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return v.clone();
        }
        match name.to_ascii_lowercase().as_str() {
            "u_mailbox" => a.mailbox.clone(),
            "u_alias" => a.aliases.join(";"),
            "u_aliaslist" => self.index.alias_list[i].clone(),
            "u_name" => a.name.clone(),
            "u_accountdisabled" => a.state.to_string(),
            "u_groups" => self.index.groups[i].clone(),
            "u_type" => a.accounttype.to_string(),
            "u_emailaddress" => a.email.clone(),
            "u_domain" => domain_part(&a.email).to_string(),
            _ => String::new(),
        }
    }

    fn getaccountproperties(
        &self,
        params: &[(String, String)],
        session: Option<usize>,
    ) -> Result<String, Outcome> {
        let email = param(params, "accountemail").unwrap_or("").trim();
        if email.is_empty() {
            return Err(err("account_email_parameter_missing"));
        }
        let Some(i) = self.index.by_address.get(&email.to_ascii_lowercase()).copied() else {
            return Err(err("account_invalid"));
        };
        if session.is_some_and(|own| own != i) {
            return Err(err(INSUFFICIENT_RIGHTS));
        }
        let mut out = String::with_capacity(512);
        for (path, name) in params {
            if path != "accountpropertylist/item/propname" {
                continue;
            }
            let value = self.property_value(i, name.trim());
            out.push_str("<item><apiproperty>");
            push_el(&mut out, "propname", name);
            out.push_str("</apiproperty><propertyval>");
            if value.is_empty() {
                out.push_str("<classname>TPropertyNoValue</classname>");
            } else {
                out.push_str("<classname>TPropertyString</classname>");
                push_el(&mut out, "val", &value);
            }
            out.push_str("</propertyval><propertyright>2</propertyright></item>");
        }
        Ok(out)
    }

    fn getaccountmemberinfolist(&self, params: &[(String, String)]) -> Result<String, Outcome> {
        let who = param(params, "who").unwrap_or("").trim();
        let Some(i) = self.index.by_address.get(&who.to_ascii_lowercase()).copied() else {
            return Err(err("account_invalid"));
        };
        let mask = param(params, "filter/namemask").unwrap_or("*");
        let members: Vec<&String> =
            self.data.accounts[i].members.iter().filter(|m| glob(mask, m)).collect();
        let (offset, start, end) = page_bounds(params, members.len(), self.data.page_cap);
        let mut out = String::new();
        for m in &members[start..end] {
            out.push_str("<item>");
            push_el(&mut out, "val", m);
            out.push_str("<default>0</default><recieve>0</recieve><post>0</post><digest>0</digest><params/></item>");
        }
        push_paging(&mut out, offset, members.len());
        Ok(out)
    }
}

fn xml_response(body: String) -> Response {
    Response::with_content(200, "application/xml", body)
}

fn with_delay(resp: Response, delay: Duration) -> Response {
    if delay.is_zero() {
        resp
    } else {
        resp.with_fault(Fault::Delay(delay))
    }
}

impl IcewarpMock {
    pub fn new(data: IcewarpData) -> Arc<IcewarpMock> {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let index = Index::build(&data);
        Arc::new(IcewarpMock {
            state: Mutex::new(State {
                data,
                index,
                sessions: HashMap::new(),
                expired: HashSet::new(),
                session_commands: 0,
                expiry_fired: false,
                counter: 0,
                seed,
                commands: Vec::new(),
                recording: true,
            }),
        })
    }

    /// Serves this mock on 127.0.0.1 (HTTPS with `tls`).
    pub fn serve(self: &Arc<Self>, tls: Option<TlsIdentity>) -> io::Result<MockServer> {
        MockServer::start(Arc::clone(self) as Arc<dyn Handler>, tls)
    }

    /// A copy of the current data.
    pub fn data(&self) -> IcewarpData {
        lock(&self.state).data.clone()
    }

    /// Changes the data (accounts, passwords, knobs) while serving; sessions stay valid.
    pub fn update(&self, f: impl FnOnce(&mut IcewarpData)) {
        let mut st = lock(&self.state);
        f(&mut st.data);
        st.index = Index::build(&st.data);
    }

    /// Replaces the data; sessions stay valid.
    pub fn set_data(&self, data: IcewarpData) {
        self.update(|d| *d = data);
    }

    /// Every command received (while recording), in order.
    pub fn commands(&self) -> Vec<Command> {
        lock(&self.state).commands.clone()
    }

    /// The lower-case names of the commands received, in order.
    pub fn command_names(&self) -> Vec<String> {
        lock(&self.state).commands.iter().map(|c| c.name.clone()).collect()
    }

    /// The decoded `password` parameters of every command received, in order.
    pub fn received_passwords(&self) -> Vec<String> {
        lock(&self.state)
            .commands
            .iter()
            .filter_map(|c| c.param("password").map(str::to_string))
            .collect()
    }

    pub fn clear_commands(&self) {
        lock(&self.state).commands.clear();
    }

    /// Turns the command log on or off (on by default; off for benchmarks).
    pub fn set_recording(&self, on: bool) {
        lock(&self.state).recording = on;
    }

    /// The live session ids.
    pub fn sessions(&self) -> Vec<String> {
        lock(&self.state).sessions.keys().cloned().collect()
    }

    /// Kills every live session now: their next command gets `session_expired`.
    pub fn expire_sessions(&self) {
        lock(&self.state).expire_all();
    }

    /// Forgets every session, as a server restart does: their next command gets `session_invalid`.
    pub fn forget_sessions(&self) {
        let mut st = lock(&self.state);
        st.sessions.clear();
        st.expired.clear();
    }

    /// Arms [`IcewarpData::expire_session_after`] again, counting from now.
    pub fn rearm_session_expiry(&self) {
        let mut st = lock(&self.state);
        st.expiry_fired = false;
        st.session_commands = 0;
    }
}

impl Handler for IcewarpMock {
    fn handle(&self, req: &Request) -> Response {
        let path = req.path_only();
        if !path.eq_ignore_ascii_case("/icewarpapi/") && !path.eq_ignore_ascii_case("/icewarpapi") {
            return Response::html(404, "<html><body><h1>404 Not Found</h1></body></html>");
        }
        if !req.method.eq_ignore_ascii_case("POST") {
            return Response::html(
                405,
                "<html><body><h1>405 Method Not Allowed</h1></body></html>",
            )
            .with_header("Allow", "POST");
        }
        let root = match xml::parse(&req.body) {
            Ok(r) => r,
            Err(e) => return Response::text(400, format!("malformed XML request: {e}\n")),
        };
        if root.name != "iq" {
            return Response::text(400, "the root element is not <iq>\n");
        }
        let sid = root.attr("sid");
        let query = root.child("query");
        let name = query
            .and_then(|q| q.child("commandname"))
            .map(|c| c.text.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let params =
            query.and_then(|q| q.child("commandparams")).map(|p| p.flatten()).unwrap_or_default();
        let mut st = lock(&self.state);
        let outcome = if let Some(body) = st.data.canned_reply(&name) {
            Outcome::Canned(body)
        } else if query.and_then(|q| q.attr("xmlns")) != Some(NAMESPACE) {
            err("iq_query_xmlns_invalid")
        } else {
            st.execute(&name, sid, &params)
        };
        if st.recording {
            let error = match &outcome {
                Outcome::Error { uid, .. } => Some(uid.to_string()),
                Outcome::Result { .. } | Outcome::Canned(_) => None,
            };
            st.commands.push(Command { name, sid: sid.map(str::to_string), params, error });
        }
        drop(st);
        match outcome {
            Outcome::Error { uid, delay } => with_delay(xml_response(error_xml(sid, uid)), delay),
            Outcome::Result { sid: reply_sid, inner, delay } => {
                let content = format!("<result>{inner}</result>");
                with_delay(xml_response(result_xml(reply_sid.as_deref(), &content)), delay)
            }
            Outcome::Canned(body) => xml_response(body),
        }
    }
}
