//! The directory an IceWarp mock serves, and the server's behaviour knobs: plain data,
//! built with the constructors and builders here.

use std::time::Duration;

use super::{account_type, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD};
#[cfg(doc)]
use super::{error_xml, result_xml, IcewarpMock, INTERNAL_DOMAIN};

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

pub(super) fn local_part(email: &str) -> &str {
    email.split_once('@').map_or(email, |(l, _)| l)
}

pub(super) fn domain_part(email: &str) -> &str {
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

    /// Limits the account's validity: `U_AccountValid` 1 and `U_AccountValidTill` served as
    /// `till` (any spelling: a Julian day number, `2026/12/31`, garbage…).
    pub fn valid_till(self, till: &str) -> Account {
        self.property("U_AccountValid", "1").property("U_AccountValidTill", till)
    }

    /// `U_Blocked` served as `value` (`1`, `true`, garbage…).
    pub fn blocked(self, value: &str) -> Account {
        self.property("U_Blocked", value)
    }

    /// `U_PasswordExpired` served as `value`.
    pub fn password_expired(self, value: &str) -> Account {
        self.property("U_PasswordExpired", value)
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

    pub(super) fn canned_reply(&self, command: &str) -> Option<String> {
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
