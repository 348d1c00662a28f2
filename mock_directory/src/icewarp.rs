//! A mock IceWarp Server administrative API (`POST /icewarpapi/`, namespace `admin:iq:rpc`),
//! following docs/protocols/icewarp.md, read-only commands only.
//!
//! - [`IcewarpData`]: the directory (domains, accounts, group members) and the server's
//!   behaviour knobs (version 11/14 item shapes, page cap, session expiry, tarpit).
//! - [`IcewarpMock`]: the [`Handler`]; holds the data, the sessions and a log of the decoded
//!   commands ([`IcewarpMock::commands`], [`IcewarpMock::received_passwords`]). Change the
//!   data while it runs with [`IcewarpMock::update`].
//! - [`IcewarpServer`]: a mock plus the [`MockServer`] serving it; `url()` is the API URL.
//!
//! Behaviour worth knowing (the quirks clients must cope with):
//! - errors are HTTP 200 `<iq type="error"[ sid=".."]><query xmlns="admin:iq:rpc"><error uid="UID"/></query></iq>`;
//! - a request that is not well-formed XML, or whose root is not `<iq>`, gets HTTP 400; a path
//!   other than `/icewarpapi/` (or `/icewarpapi`) 404; a method other than POST 405;
//! - the internal domain `##internalservicedomain.icewarp.com##` is always listed first (unless
//!   [`IcewarpData::list_internal_domain`] is false); alias domains have `domaintype` 2;
//! - lists hold every account type; a page holds at most `count` items and at most
//!   [`IcewarpData::page_cap`], whatever `count` says; a missing or zero `count` means "all"
//!   (up to the cap); `<offset>` echoes the request, `<overallcount>` is the total;
//! - 14.x account items carry `displayemail` and `accountstate`; 11.x items have neither (use
//!   `U_AccountDisabled`); both carry a nested `<quota>` element clients must skip;
//! - empty values come out as empty elements (`<desc/>`), empty properties as `TPropertyNoValue`;
//! - `getauthtoken` on 14.x answers `<name>` as a nested `TAccountName` (given name / surname),
//!   on 11.x as plain text; only the non-empty `<authtoken>` says "right password";
//! - a wrong password (or unknown account) waits [`IcewarpData::wrong_password_delay`] before
//!   `auth_login_invalid`; `account_disabled_2` and `auth_two_factor_required` come at once and
//!   only after a right password (disabled wins over two-factor);
//! - a session made by `authenticate` with a plain user's own credentials (allowed, as on
//!   older servers) may only read that user's own properties; the listing commands answer it
//!   with the invented uid [`INSUFFICIENT_RIGHTS`] (IceWarp documents none);
//! - `getaccountsinfolist` on an alias domain answers an empty list; `typemask`, when given
//!   and numeric, keeps only accounts of exactly that type;
//! - a missing, unknown or dead `sid` gets `session_invalid`; one killed by
//!   [`IcewarpData::expire_session_after`] or [`IcewarpMock::expire_sessions`] gets
//!   `session_expired`.
//!
//! Replies no emulated server gives (garbage, a page ignoring the offset, an unknown uid) are
//! canned per command with [`IcewarpData::reply`], built with [`result_xml`] and [`error_xml`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::server::{lock, Fault, Handler, MockServer, Request, Response};
use crate::tls::TlsIdentity;
use crate::xml::{self, esc, push_el};

/// The API namespace every request's `<query>` must declare.
pub const NAMESPACE: &str = "admin:iq:rpc";
/// The API path.
pub const API_PATH: &str = "/icewarpapi/";
/// The internal domain every IceWarp server lists; clients must skip it.
pub const INTERNAL_DOMAIN: &str = "##internalservicedomain.icewarp.com##";
/// The error uid this mock answers when a user session asks for an administrator command
/// (IceWarp documents none; clients must report unknown uids verbatim).
pub const INSUFFICIENT_RIGHTS: &str = "insufficient_rights";
/// The demo administrator.
pub const DEMO_ADMIN_EMAIL: &str = "admin@example.com";
pub const DEMO_ADMIN_PASSWORD: &str = "demo-admin-password";

/// `accounttype` values.
pub mod account_type {
    pub const USER: u32 = 0;
    pub const MAILING_LIST: u32 = 1;
    pub const EXECUTABLE: u32 = 2;
    pub const NOTIFICATION: u32 = 3;
    pub const STATIC_ROUTE: u32 = 4;
    pub const CATALOG: u32 = 5;
    pub const LIST_SERVER: u32 = 6;
    pub const GROUP: u32 = 7;
    pub const RESOURCE: u32 = 8;
}

/// Which server generation the item shapes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcewarpVersion {
    /// 11.x: account items without `accountstate` and `displayemail`; `getauthtoken`'s
    /// `<name>` is plain text.
    V11,
    /// 14.x (default).
    #[default]
    V14,
}

/// A domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub desc: String,
    /// 0 a normal domain, 2 a domain alias.
    pub domaintype: u32,
    /// For an alias domain: the domain it is an alias of (its accounts get addresses in the
    /// alias domain too, see `U_AliasList`).
    pub alias_of: Option<String>,
}

impl Domain {
    /// A normal domain (type 0).
    pub fn new(name: &str) -> Domain {
        Domain { name: name.to_string(), desc: String::new(), domaintype: 0, alias_of: None }
    }

    /// A domain alias (type 2) of `of`.
    pub fn alias(name: &str, of: &str) -> Domain {
        Domain {
            name: name.to_string(),
            desc: String::new(),
            domaintype: 2,
            alias_of: Some(of.to_string()),
        }
    }

    pub fn with_desc(mut self, desc: &str) -> Domain {
        self.desc = desc.to_string();
        self
    }
}

/// An account of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Primary address; its domain part says which domain lists the account.
    pub email: String,
    /// Display name (`name` in lists, `U_Name`).
    pub name: String,
    /// `U_Mailbox`.
    pub mailbox: String,
    /// `U_Alias` entries, joined with `;` when served (local parts such as `alice`, full
    /// addresses, or `[token]`s are served as given). The constructors put the primary local
    /// part first, as IceWarp does.
    pub aliases: Vec<String>,
    /// `U_AliasList` served as is; `None` computes it: every alias entry that is not a
    /// `[token]`, a local part expanded to the account's domain and each of its alias domains.
    pub alias_list: Option<String>,
    /// See [`account_type`]; only type 0 is a user.
    pub accounttype: u32,
    /// 0 enabled; 1–4 disabled (served as `accountstate/state` and `U_AccountDisabled`).
    pub state: u32,
    /// The account's password (checked by `getauthtoken` and `authenticate`).
    pub password: String,
    /// The account requires a second factor: a right password gets `auth_two_factor_required`.
    pub two_factor: bool,
    /// `admintype` in lists (0 normal, 1 administrator).
    pub admintype: u32,
    /// For groups and mailing lists: the raw member tokens `getaccountmemberinfolist` serves
    /// (addresses, `[domain]` tokens, external or non-existent addresses — never validated).
    pub members: Vec<String>,
    /// Extra or overriding properties for `getaccountproperties` (name compared
    /// case-insensitively; an empty value is served as `TPropertyNoValue`).
    pub properties: Vec<(String, String)>,
    /// Serve this account's list item in this version's shape instead of the server's
    /// ([`IcewarpData::version`]): one listing with both shapes, so that a client is seen
    /// to decide per item.
    pub item_version: Option<IcewarpVersion>,
}

fn local_part(email: &str) -> &str {
    email.split_once('@').map_or(email, |(l, _)| l)
}

fn domain_part(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

impl Account {
    fn base(email: &str, name: &str, accounttype: u32) -> Account {
        let local = local_part(email).to_string();
        Account {
            email: email.to_string(),
            name: name.to_string(),
            mailbox: local.clone(),
            aliases: vec![local],
            alias_list: None,
            accounttype,
            state: 0,
            password: String::new(),
            two_factor: false,
            admintype: 0,
            members: Vec::new(),
            properties: Vec::new(),
            item_version: None,
        }
    }

    /// A user (type 0), enabled; mailbox and first alias are the local part of `email`.
    pub fn user(email: &str, name: &str, password: &str) -> Account {
        let mut a = Account::base(email, name, account_type::USER);
        a.password = password.to_string();
        a
    }

    /// A group (type 7) with these raw member tokens.
    pub fn group(email: &str, name: &str, members: &[&str]) -> Account {
        let mut a = Account::base(email, name, account_type::GROUP);
        a.members = members.iter().map(|m| m.to_string()).collect();
        a
    }

    /// A mailing list (type 1) with these raw member tokens.
    pub fn mailing_list(email: &str, name: &str, members: &[&str]) -> Account {
        let mut a = Account::base(email, name, account_type::MAILING_LIST);
        a.members = members.iter().map(|m| m.to_string()).collect();
        a
    }

    /// An account of any other type (see [`account_type`]).
    pub fn of_type(email: &str, name: &str, accounttype: u32) -> Account {
        Account::base(email, name, accounttype)
    }

    /// Adds a `U_Alias` entry (a local part like `al`, or anything else to serve verbatim).
    pub fn alias(mut self, alias: &str) -> Account {
        self.aliases.push(alias.to_string());
        self
    }

    /// Replaces the `U_Alias` entries.
    pub fn aliases(mut self, aliases: &[&str]) -> Account {
        self.aliases = aliases.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn mailbox(mut self, mailbox: &str) -> Account {
        self.mailbox = mailbox.to_string();
        self
    }

    /// Disabled with this state (1–4).
    pub fn disabled(mut self, state: u32) -> Account {
        self.state = state;
        self
    }

    pub fn two_factor(mut self) -> Account {
        self.two_factor = true;
        self
    }

    pub fn admin(mut self) -> Account {
        self.admintype = 1;
        self
    }

    pub fn member(mut self, token: &str) -> Account {
        self.members.push(token.to_string());
        self
    }

    pub fn property(mut self, name: &str, value: &str) -> Account {
        self.properties.push((name.to_string(), value.to_string()));
        self
    }

    /// Lists this account in `version`'s item shape, whatever the server's version.
    pub fn listed_as(mut self, version: IcewarpVersion) -> Account {
        self.item_version = Some(version);
        self
    }
}

/// The directory and the server's behaviour. Cheap to build, `Clone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcewarpData {
    /// Administrator credentials for `authenticate` (the administrator is not an account).
    pub admin_email: String,
    pub admin_password: String,
    pub domains: Vec<Domain>,
    pub accounts: Vec<Account>,
    pub version: IcewarpVersion,
    /// At most this many items per page, whatever `count` asks.
    pub page_cap: Option<usize>,
    /// After this many session commands the sessions die, once: the next command gets
    /// `session_expired`; a new `authenticate` then works for good.
    pub expire_session_after: Option<usize>,
    /// How long a wrong password (or unknown account) waits before `auth_login_invalid`
    /// (IceWarp: 24–30 s; default zero).
    pub wrong_password_delay: Duration,
    /// List [`INTERNAL_DOMAIN`] first in `getdomainsinfolist` (default true).
    pub list_internal_domain: bool,
    /// Also accept the mailbox name (`U_Mailbox`) as login in `getauthtoken`/`authenticate`
    /// (default false: the primary address or an alias address).
    pub accept_mailbox_login: bool,
    /// Answer a failed `authenticate` with `<result>0</result>` instead of the
    /// `auth_login_invalid` error (both happen in the wild).
    pub failed_login_as_result_zero: bool,
    /// Canned replies: a command named here (lower case) is answered with this body, HTTP
    /// 200, instead of being run; it is still logged ([`IcewarpMock::commands`]). For replies
    /// no emulated server gives: garbage, a page that ignores the offset, an odd error uid.
    /// Build them with [`result_xml`] and [`error_xml`].
    pub replies: Vec<(String, String)>,
}

impl IcewarpData {
    /// An empty directory with these administrator credentials.
    pub fn new(admin_email: &str, admin_password: &str) -> IcewarpData {
        IcewarpData {
            admin_email: admin_email.to_string(),
            admin_password: admin_password.to_string(),
            domains: Vec::new(),
            accounts: Vec::new(),
            version: IcewarpVersion::V14,
            page_cap: None,
            expire_session_after: None,
            wrong_password_delay: Duration::ZERO,
            list_internal_domain: true,
            accept_mailbox_login: false,
            failed_login_as_result_zero: false,
            replies: Vec::new(),
        }
    }

    /// The bundled demo directory (also what `dircache-demo-directory` serves):
    /// administrator `admin@example.com` / `demo-admin-password`; domain `example.com` and
    /// its alias domain `example.net`; users alice@example.com "Alice Liddell"
    /// (`alice-password`, alias `al`), bob@example.com "Bob Builder" (`bob-password`),
    /// carol@example.com "Carol Danvers" (`carol-password`, disabled: state 1); mailing list
    /// news@example.com (alice, bob); group staff@example.com (alice, bob).
    pub fn demo() -> IcewarpData {
        IcewarpData::new(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
            .domain(Domain::new("example.com").with_desc("Demo domain"))
            .domain(Domain::alias("example.net", "example.com"))
            .account(
                Account::user("alice@example.com", "Alice Liddell", "alice-password").alias("al"),
            )
            .account(Account::user("bob@example.com", "Bob Builder", "bob-password"))
            .account(
                Account::user("carol@example.com", "Carol Danvers", "carol-password").disabled(1),
            )
            .account(Account::mailing_list(
                "news@example.com",
                "News",
                &["alice@example.com", "bob@example.com"],
            ))
            .account(Account::group(
                "staff@example.com",
                "Staff",
                &["alice@example.com", "bob@example.com"],
            ))
    }

    /// A large directory for benchmarks, built in well under a second: the demo administrator;
    /// domains `d000.example.com` … (plus `d000.example.net`, an alias of the first); in each,
    /// `accounts_per_domain` users `user00000@dNNN.example.com` … named "User N of dNNN" with
    /// password `secret-` + their address; every 10th user (N % 10 == 9) has the alias `uN`,
    /// every 100th (N % 100 == 99) is disabled; and four more accounts per domain: a group
    /// `staff@` (the first 10 users, `outsider@gmail.com`, `ghost@…`), a group `all@` (the
    /// token `[dNNN.example.com]`), a mailing list `news@` and a resource `room@`.
    pub fn generated(domains: usize, accounts_per_domain: usize) -> IcewarpData {
        let mut data = IcewarpData::new(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD);
        data.accounts.reserve(domains * (accounts_per_domain + 4));
        for d in 0..domains {
            let dom = format!("d{d:03}.example.com");
            data.domains.push(Domain::new(&dom));
            if d == 0 {
                data.domains.push(Domain::alias("d000.example.net", &dom));
            }
            for n in 0..accounts_per_domain {
                let email = format!("user{n:05}@{dom}");
                let mut a = Account::user(
                    &email,
                    &format!("User {n} of d{d:03}"),
                    &format!("secret-{email}"),
                );
                if n % 10 == 9 {
                    a.aliases.push(format!("u{n}"));
                }
                if n % 100 == 99 {
                    a.state = 1;
                }
                data.accounts.push(a);
            }
            let mut staff: Vec<String> =
                (0..accounts_per_domain.min(10)).map(|n| format!("user{n:05}@{dom}")).collect();
            staff.push("outsider@gmail.com".to_string());
            staff.push(format!("ghost@{dom}"));
            let mut group = Account::group(&format!("staff@{dom}"), "Staff", &[]);
            group.members = staff;
            data.accounts.push(group);
            data.accounts.push(Account::group(
                &format!("all@{dom}"),
                "Everyone",
                &[&format!("[{dom}]")],
            ));
            data.accounts.push(Account::mailing_list(&format!("news@{dom}"), "News", &[]));
            data.accounts.push(Account::of_type(
                &format!("room@{dom}"),
                "Meeting room",
                account_type::RESOURCE,
            ));
        }
        data
    }

    pub fn domain(mut self, domain: Domain) -> IcewarpData {
        self.domains.push(domain);
        self
    }

    pub fn account(mut self, account: Account) -> IcewarpData {
        self.accounts.push(account);
        self
    }

    pub fn version(mut self, version: IcewarpVersion) -> IcewarpData {
        self.version = version;
        self
    }

    pub fn page_cap(mut self, cap: usize) -> IcewarpData {
        self.page_cap = Some(cap);
        self
    }

    pub fn expire_session_after(mut self, commands: usize) -> IcewarpData {
        self.expire_session_after = Some(commands);
        self
    }

    pub fn wrong_password_delay(mut self, delay: Duration) -> IcewarpData {
        self.wrong_password_delay = delay;
        self
    }

    /// Answers `command` with `body` instead of running it (see [`IcewarpData::replies`]).
    pub fn reply(mut self, command: &str, body: impl Into<String>) -> IcewarpData {
        self.replies.push((command.to_ascii_lowercase(), body.into()));
        self
    }

    fn canned_reply(&self, command: &str) -> Option<String> {
        self.replies.iter().find(|(name, _)| name == command).map(|(_, body)| body.clone())
    }

    /// The account with this primary address (case-insensitive).
    pub fn account_mut(&mut self, email: &str) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// Adds a raw member token to a group or list; false if there is no such account.
    pub fn add_member(&mut self, group: &str, token: &str) -> bool {
        match self.account_mut(group) {
            Some(a) => {
                a.members.push(token.to_string());
                true
            }
            None => false,
        }
    }

    /// Removes the account with this primary address; false if there was none.
    pub fn remove_account(&mut self, email: &str) -> bool {
        let before = self.accounts.len();
        self.accounts.retain(|a| !a.email.eq_ignore_ascii_case(email));
        self.accounts.len() != before
    }
}

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

/// A reply as IceWarp writes it: `<iq type="KIND"[ sid="…"]><query xmlns="admin:iq:rpc">`,
/// `content` verbatim, `</query></iq>`.
fn reply_xml(kind: &str, sid: Option<&str>, content: &str) -> String {
    let mut out = String::with_capacity(content.len() + 96);
    out.push_str("<iq type=\"");
    out.push_str(kind);
    out.push('"');
    if let Some(sid) = sid {
        out.push_str(" sid=\"");
        out.push_str(&esc(sid));
        out.push('"');
    }
    out.push_str("><query xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\">");
    out.push_str(content);
    out.push_str("</query></iq>");
    out
}

/// A `type="result"` reply whose `<query>` holds `content` verbatim, e.g.
/// `result_xml(None, "<result><authtoken>X</authtoken></result>")`: for
/// [`IcewarpData::reply`].
pub fn result_xml(sid: Option<&str>, content: &str) -> String {
    reply_xml("result", sid, content)
}

/// A `type="error"` reply with this uid, shaped as the mock answers every error.
pub fn error_xml(sid: Option<&str>, uid: &str) -> String {
    reply_xml("error", sid, &format!("<error uid=\"{}\"/>", esc(uid)))
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

/// An IceWarp mock and the server serving it.
#[derive(Debug)]
pub struct IcewarpServer {
    pub mock: Arc<IcewarpMock>,
    pub server: MockServer,
}

impl IcewarpServer {
    /// Serves `data` on 127.0.0.1 (HTTPS with `tls`).
    pub fn start(data: IcewarpData, tls: Option<TlsIdentity>) -> io::Result<IcewarpServer> {
        let mock = IcewarpMock::new(data);
        let server = mock.serve(tls)?;
        Ok(IcewarpServer { mock, server })
    }

    /// The API URL, e.g. `http://127.0.0.1:40123/icewarpapi/`.
    pub fn url(&self) -> String {
        format!("{}{API_PATH}", self.server.url())
    }
}
