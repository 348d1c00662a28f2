//! The IceWarp Server client (`docs/protocols/icewarp.md`): lists domains,
//! accounts and groups as an administrator, and checks a user's own password with
//! `getauthtoken`. Read-only.

use std::collections::{HashMap, HashSet};

use zeroize::Zeroizing;

use super::http::HttpClient;
use super::icewarp_xml::{
    self as xml, Fields, ListPage, Outcome, Properties, PropertyValue, Reply, Unrepresentable,
    Visitor,
};
use super::{
    fold_key, unique_folded, DirectoryError, DirectoryGroup, DirectoryUser, Listing, ListingBudget,
    PasswordCheck, Progress,
};
use crate::config::{Config, LoginNameStyle, ReplyLimit};
use crate::user::Origin;

/// Page size for every paged list: explicit, because what `count=0` does is unknown.
const PAGE_SIZE: u64 = 500;

/// The domain IceWarp keeps for its own services; never a source of users.
const INTERNAL_DOMAIN: &str = "##internalservicedomain.icewarp.com##";

const SESSION_ERRORS: &[&str] =
    &["session_invalid", "session_invalid_id", "session_expired", "session_no_user"];

/// Members not resolved are named in a warning up to this many per group.
const MAX_NAMED_UNRESOLVED: usize = 10;

/// The administrator's credentials, or why there are none. Missing credentials only
/// matter for listing: a password check needs no administrator, and the PAM module may
/// run where the password file is unreadable.
enum Admin {
    Ready { email: String, password: Zeroizing<String> },
    Missing(String),
}

/// An IceWarp server, as configured. Made per use.
pub struct IcewarpDirectory {
    http: HttpClient,
    server: String,
    admin: Admin,
    domain_filter: Vec<String>,
    group_filter: Vec<String>,
    login_name: LoginNameStyle,
    sid: Option<String>,
    reply_limit: ReplyLimit,
}

/// The base URL for a configured `server`: a full http(s) URL is used as given, a host
/// name or IP address (with an optional port) becomes `https://HOST/icewarpapi/`.
pub fn api_url(server: &str) -> String {
    if server.contains("://") {
        server.to_string()
    } else {
        format!("https://{server}/icewarpapi/")
    }
}

/// The items of one list page: for each item, the texts of the requested fields.
type Items = Vec<Vec<Option<String>>>;

/// An account of type 0 as the account list shows it.
struct ListedUser {
    email: String,
    name: String,
    domain_index: usize,
    /// `accountstate/state` == 0; `None` when the item had no `accountstate` (11.x).
    enabled: Option<bool>,
}

impl IcewarpDirectory {
    /// Reads what the client needs from `config`, the administrator's credentials included;
    /// contacts nothing.
    pub fn new(config: &Config) -> Result<IcewarpDirectory, DirectoryError> {
        let admin = match (config.directory.username.as_deref(), config.directory_password()) {
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
        };
        IcewarpDirectory::with_admin(config, admin)
    }

    /// A client for password checks only: `getauthtoken` (or `authenticate`) runs with the
    /// user's own credentials, so the administrator password is never read. A process
    /// checking a login thus never holds it, and does not need to be able to read it.
    pub fn for_login(config: &Config) -> Result<IcewarpDirectory, DirectoryError> {
        let unread = "the administrator's credentials are not read for a password check";
        IcewarpDirectory::with_admin(config, Admin::Missing(unread.to_string()))
    }

    fn with_admin(config: &Config, admin: Admin) -> Result<IcewarpDirectory, DirectoryError> {
        let directory = &config.directory;
        let server = directory.server.clone().ok_or_else(|| {
            DirectoryError::NotConfigured(
                "directory.server is required for an IceWarp directory".to_string(),
            )
        })?;
        // IceWarp takes the credentials in the XML; no HTTP authentication.
        let http = HttpClient::new(&server, &api_url(&server), directory, None)?;
        Ok(IcewarpDirectory {
            http,
            server,
            admin,
            domain_filter: config.sync.domains.clone(),
            group_filter: config.sync.groups.clone(),
            login_name: config.sync.login_name,
            sid: None,
            reply_limit: directory.reply_limit(),
        })
    }

    fn malformed(&self, command: &str, reason: impl Into<String>) -> DirectoryError {
        DirectoryError::Malformed {
            server: self.server.clone(),
            command: command.to_string(),
            reason: reason.into(),
        }
    }

    fn api_error(&self, command: &str, uid: String) -> DirectoryError {
        DirectoryError::Api { server: self.server.clone(), command: command.to_string(), uid }
    }

    /// Sends one request and parses the reply into `visitor`.
    fn exchange(
        &self,
        command: &str,
        body: xml::RequestText,
        visitor: &mut dyn Visitor,
    ) -> Result<Reply, DirectoryError> {
        let bytes = self.http.post_xml(command, body)?;
        xml::parse_reply(&bytes, visitor).map_err(|reason| self.malformed(command, reason))
    }

    /// An administrator session: `authenticate`, keeping the reply's `sid`.
    fn login(&mut self) -> Result<String, DirectoryError> {
        let admin_login =
            |reason: String| DirectoryError::AdminLogin { server: self.server.clone(), reason };
        let (email, password) = match &self.admin {
            Admin::Ready { email, password } => (email, password),
            Admin::Missing(reason) => return Err(DirectoryError::NotConfigured(reason.clone())),
        };
        // The request holds the password: it is sized up front and wiped once sent.
        let body = xml::authenticate(email, password).map_err(|Unrepresentable| {
            admin_login(
                "the administrator address or password contains a control character that XML \
                 cannot carry"
                    .to_string(),
            )
        })?;
        let mut fields = Fields::new(&[&["result"]]);
        let reply = self.exchange("authenticate", body, &mut fields)?;
        match reply.outcome {
            Outcome::Error(uid) if uid == "auth_login_invalid" => Err(admin_login(format!(
                "the server answered {uid:?}: wrong administrator address ({email}) or password"
            ))),
            Outcome::Error(uid) => Err(admin_login(format!("the server answered {uid:?}"))),
            Outcome::Result => {
                let result = fields.get(0).map(str::trim).unwrap_or("");
                if result != "1" {
                    return Err(admin_login(format!(
                        "authenticate answered <result>{result}</result> instead of 1"
                    )));
                }
                let Some(sid) = reply.sid else {
                    return Err(admin_login(
                        "authenticate succeeded but the reply has no sid attribute".to_string(),
                    ));
                };
                self.sid = Some(sid.clone());
                Ok(sid)
            }
        }
    }

    /// Logs the administrator in and out again, for `dircache-sync check`: proves the
    /// server answers and accepts the configured credentials. A failed logout is returned
    /// as a warning, not an error.
    pub fn check_admin_login(&mut self) -> Result<Vec<String>, DirectoryError> {
        if let Admin::Missing(reason) = &self.admin {
            return Err(DirectoryError::NotConfigured(reason.clone()));
        }
        self.login()?;
        Ok(self.logout().into_iter().collect())
    }

    /// Runs one session command. A session error (the sid expired, the server restarted)
    /// gets one new login and one retry; a second one fails.
    fn command(
        &mut self,
        command: &str,
        build: &dyn Fn(&str) -> Result<xml::RequestText, Unrepresentable>,
        visitor: &mut dyn Visitor,
    ) -> Result<(), DirectoryError> {
        let mut retried = false;
        loop {
            let sid = match &self.sid {
                Some(sid) => sid.clone(),
                None => self.login()?,
            };
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
                    self.sid = None;
                }
                Outcome::Error(uid) => return Err(self.api_error(command, uid)),
            }
        }
    }

    /// Ends the session; a failure is only worth a warning.
    fn logout(&mut self) -> Option<String> {
        let sid = self.sid.take()?;
        let body = match xml::logout(&sid) {
            Ok(body) => body,
            Err(Unrepresentable) => return Some("logout: the sid cannot be sent".to_string()),
        };
        match self.exchange("logout", body, &mut xml::Ignore) {
            Ok(Reply { outcome: Outcome::Result, .. }) => None,
            Ok(Reply { outcome: Outcome::Error(uid), .. }) => {
                Some(format!("{}: logout: the server answered error {uid:?}", self.server))
            }
            Err(err) => Some(format!("logout failed: {err}")),
        }
    }

    /// Pages through a list command until `offset + items >= overallcount`. `handle` gets
    /// each page's items.
    fn paged(
        &mut self,
        command: &str,
        fields: &'static [&'static str],
        build: &dyn Fn(&str, u64) -> Result<xml::RequestText, Unrepresentable>,
        handle: &mut dyn FnMut(&mut Self, Items) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let mut offset: u64 = 0;
        let mut page = ListPage::new(fields);
        loop {
            page.clear();
            self.command(command, &|sid| build(sid, offset), &mut page)?;
            let overall = parse_count(page.overall_count.as_deref()).ok_or_else(|| {
                self.malformed(command, "the reply has no numeric <overallcount>")
            })?;
            if let Some(echoed) = page.offset.as_deref() {
                if parse_count(Some(echoed)) != Some(offset) {
                    return Err(self.malformed(
                        command,
                        format!("asked for offset {offset}, the reply is for offset {echoed:?}"),
                    ));
                }
            }
            let items = u64::try_from(page.items.len()).unwrap_or(u64::MAX);
            if items == 0 && offset < overall {
                return Err(self.malformed(
                    command,
                    format!("an empty page at offset {offset} although overallcount is {overall}"),
                ));
            }
            offset = offset.saturating_add(items);
            handle(self, std::mem::take(&mut page.items))?;
            if offset >= overall {
                return Ok(());
            }
        }
    }

    fn list_domains(&mut self, budget: &mut ListingBudget) -> Result<Vec<String>, DirectoryError> {
        let mut domains: Vec<String> = Vec::new();
        self.paged(
            "getdomainsinfolist",
            &["name", "domaintype"],
            &|sid, offset| xml::getdomainsinfolist(sid, offset, PAGE_SIZE),
            &mut |this, items| {
                if budget.members(items.len()).is_err() {
                    return Err(budget.error(&this.server, "getdomainsinfolist"));
                }
                for item in items {
                    let name = item[0].as_deref().map(str::trim).unwrap_or("");
                    if name.is_empty() {
                        return Err(this.malformed("getdomainsinfolist", "a domain without <name>"));
                    }
                    // Type 2 is a domain alias: its accounts are the real domain's.
                    let alias = item[1].as_deref().map(str::trim) == Some("2");
                    if alias || eq_fold(name, INTERNAL_DOMAIN) {
                        continue;
                    }
                    domains.push(name.to_string());
                }
                Ok(())
            },
        )?;
        Ok(unique_folded(domains))
    }

    fn member_addresses(
        &mut self,
        group: &str,
        budget: &mut ListingBudget,
    ) -> Result<Vec<String>, DirectoryError> {
        let mut members = Vec::new();
        let group_owned = group.to_string();
        self.paged(
            "getaccountmemberinfolist",
            &["val"],
            &|sid, offset| xml::getaccountmemberinfolist(sid, &group_owned, offset, PAGE_SIZE),
            &mut |this, items| {
                if budget.members(items.len()).is_err() {
                    return Err(budget.error(&this.server, "getaccountmemberinfolist"));
                }
                members.extend(
                    items
                        .into_iter()
                        .filter_map(|mut item| item[0].take())
                        .map(|val| val.trim().to_string())
                        .filter(|val| !val.is_empty()),
                );
                Ok(())
            },
        )?;
        Ok(members)
    }

    fn list_inner(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        let mut warnings = Vec::new();
        let mut budget = ListingBudget::new(self.reply_limit);
        let all_domains = self.list_domains(&mut budget)?;
        for wanted in &self.domain_filter {
            if !all_domains.iter().any(|domain| eq_fold(domain, wanted.trim())) {
                return Err(DirectoryError::FilterNotFound {
                    server: self.server.clone(),
                    kind: "domain",
                    name: wanted.clone(),
                });
            }
        }
        // Group members may live in any domain, so a group filter needs every domain.
        let scanned: Vec<String> = if self.domain_filter.is_empty() || !self.group_filter.is_empty()
        {
            all_domains
        } else {
            all_domains
                .into_iter()
                .filter(|domain| {
                    self.domain_filter.iter().any(|wanted| eq_fold(wanted.trim(), domain))
                })
                .collect()
        };

        // Accounts, domain by domain.
        let mut listed: Vec<ListedUser> = Vec::new();
        let mut group_addresses: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let total_domains = u64::try_from(scanned.len()).unwrap_or(u64::MAX);
        for (domain_index, domain) in scanned.iter().enumerate() {
            let domain_owned = domain.clone();
            self.paged(
                "getaccountsinfolist",
                &["name", "email", "accounttype", "accountstate", "accountstate/state"],
                &|sid, offset| xml::getaccountsinfolist(sid, &domain_owned, offset, PAGE_SIZE),
                &mut |this, items| {
                    if budget.accounts(items.len()).is_err() {
                        return Err(budget.error(&this.server, "getaccountsinfolist"));
                    }
                    for item in items {
                        let email = item[1].as_deref().map(str::trim).unwrap_or("");
                        if email.is_empty() {
                            return Err(
                                this.malformed("getaccountsinfolist", "an account without <email>")
                            );
                        }
                        if !seen.insert(email.to_lowercase()) {
                            // A server that ignores <offset> repeats its first page until
                            // overallcount is reached: the accounts after it would look
                            // deleted. A listing with repeats is not trusted at all.
                            return Err(this.malformed(
                                "getaccountsinfolist",
                                format!(
                                    "account {email} was listed twice (does the server ignore \
                                     <offset>?); the listing cannot be trusted, nothing was changed"
                                ),
                            ));
                        }
                        match item[2].as_deref().map(str::trim) {
                            Some("0") => {}
                            Some("7") => {
                                group_addresses.push(email.to_string());
                                continue;
                            }
                            Some(_) => continue,
                            None => {
                                return Err(this.malformed(
                                    "getaccountsinfolist",
                                    format!("account {email} has no <accounttype>"),
                                ))
                            }
                        }
                        // Anything but state 0 is disabled, including a missing or garbled
                        // state: fail closed.
                        let enabled = item[3]
                            .is_some()
                            .then(|| item[4].as_deref().map(str::trim) == Some("0"));
                        listed.push(ListedUser {
                            email: email.to_string(),
                            name: item[0].as_deref().map(str::trim).unwrap_or("").to_string(),
                            domain_index,
                            enabled,
                        });
                    }
                    progress.step(
                        "accounts",
                        u64::try_from(listed.len()).unwrap_or(u64::MAX),
                        None,
                    );
                    Ok(())
                },
            )?;
            progress.step(
                "domains",
                u64::try_from(domain_index + 1).unwrap_or(u64::MAX),
                Some(total_domains),
            );
        }

        // Properties, one request per user.
        let total_users = u64::try_from(listed.len()).unwrap_or(u64::MAX);
        let mut users: Vec<DirectoryUser> = Vec::with_capacity(listed.len());
        let mut user_domains: Vec<usize> = Vec::with_capacity(listed.len());
        for (done, account) in listed.into_iter().enumerate() {
            let domain = &scanned[account.domain_index];
            match self.user_from_properties(&account, domain)? {
                Some(user) => {
                    users.push(user);
                    user_domains.push(account.domain_index);
                }
                None => warnings.push(format!(
                    "account {} disappeared while listing (account_invalid); skipped",
                    account.email
                )),
            }
            progress.step(
                "account properties",
                u64::try_from(done + 1).unwrap_or(u64::MAX),
                Some(total_users),
            );
        }

        let mut by_domain: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, domain_index) in user_domains.iter().enumerate() {
            by_domain.entry(scanned[*domain_index].to_lowercase()).or_default().push(index);
        }

        for wanted in &self.group_filter {
            if !group_addresses.iter().any(|group| eq_fold(group, wanted.trim())) {
                return Err(DirectoryError::FilterNotFound {
                    server: self.server.clone(),
                    kind: "group",
                    name: wanted.clone(),
                });
            }
        }

        // Members of every group, fetched first so that only the addresses some group names
        // are indexed (every address of 100,000 users would cost tens of MB).
        let total_groups = u64::try_from(group_addresses.len()).unwrap_or(u64::MAX);
        let mut fetched_members: Vec<Vec<String>> = Vec::with_capacity(group_addresses.len());
        for (done, group) in group_addresses.iter().enumerate() {
            fetched_members.push(self.member_addresses(group, &mut budget)?);
            progress.step(
                "groups",
                u64::try_from(done + 1).unwrap_or(u64::MAX),
                Some(total_groups),
            );
        }
        let wanted: HashSet<String> =
            fetched_members.iter().flatten().map(|address| address.to_lowercase()).collect();
        // Address → user, for resolving group members.
        // Primary addresses first, so that an alias claiming someone else's primary address
        // cannot take over that user's memberships.
        let mut by_address: HashMap<String, usize> = HashMap::new();
        for (index, user) in users.iter().enumerate() {
            if let Some(primary) = user.emails.first().map(|e| e.to_lowercase()) {
                if wanted.contains(&primary) {
                    by_address.insert(primary, index);
                }
            }
        }
        for (index, user) in users.iter().enumerate() {
            for email in user.emails.iter().skip(1).map(|e| e.to_lowercase()) {
                if wanted.contains(&email) {
                    by_address.entry(email).or_insert(index);
                }
            }
        }

        let mut resolved_groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (group, addresses) in group_addresses.iter().zip(fetched_members) {
            let mut members: Vec<usize> = Vec::new();
            let mut unresolved: Vec<String> = Vec::new();
            for address in addresses {
                let lower = address.to_lowercase();
                if let Some(domain) =
                    lower.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))
                {
                    match by_domain.get(domain.trim()) {
                        Some(indexes) => members.extend(indexes),
                        None => unresolved.push(address),
                    }
                } else if let Some(index) = by_address.get(&lower) {
                    members.push(*index);
                } else {
                    unresolved.push(address);
                }
            }
            if !unresolved.is_empty() {
                warnings.push(unresolved_warning(group, &unresolved));
            }
            let mut unique = HashSet::new();
            members.retain(|index| unique.insert(*index));
            resolved_groups.push((group.clone(), members));
        }

        // Which users the filters select; both empty means everyone, both set the union.
        let selected: Vec<bool> = if self.domain_filter.is_empty() && self.group_filter.is_empty() {
            vec![true; users.len()]
        } else {
            let mut selected: Vec<bool> = user_domains
                .iter()
                .map(|domain_index| {
                    let domain = &scanned[*domain_index];
                    self.domain_filter.iter().any(|wanted| eq_fold(wanted.trim(), domain))
                })
                .collect();
            for (group, members) in &resolved_groups {
                if self.group_filter.iter().any(|wanted| eq_fold(wanted.trim(), group)) {
                    for index in members {
                        selected[*index] = true;
                    }
                }
            }
            selected
        };

        // Groups with their selected members; a group without any is left out unless the
        // filter names it.
        let mut groups = Vec::new();
        for (group, members) in resolved_groups {
            let members: Vec<usize> =
                members.into_iter().filter(|index| selected[*index]).collect();
            let named = self.group_filter.iter().any(|wanted| eq_fold(wanted.trim(), &group));
            if members.is_empty() && !named {
                continue;
            }
            for index in &members {
                users[*index].groups.push(group.clone());
            }
            groups.push(DirectoryGroup {
                identity: format!("icewarp:{}", group.to_lowercase()),
                members: members.iter().map(|index| users[*index].identity.clone()).collect(),
                name: group,
            });
        }

        let mut users: Vec<DirectoryUser> = users
            .into_iter()
            .zip(selected)
            .filter_map(|(user, selected)| selected.then_some(user))
            .collect();

        if self.login_name == LoginNameStyle::Mailbox {
            use_addresses_for_shared_mailbox_names(&mut users, &mut warnings);
        }

        Ok(Listing { origin: Origin::Icewarp, users, groups, warnings })
    }

    /// `getaccountproperties` for one user, and the record derived from it. `None` when
    /// the account no longer exists.
    fn user_from_properties(
        &mut self,
        account: &ListedUser,
        domain: &str,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let mut names: Vec<&'static str> = vec!["u_mailbox", "u_alias", "u_aliaslist"];
        if account.enabled.is_none() {
            names.push("u_accountdisabled");
        }
        let mut properties = Properties::new();
        let email = account.email.clone();
        match self.command(
            "getaccountproperties",
            &|sid| xml::getaccountproperties(sid, &email, &names),
            &mut properties,
        ) {
            Ok(()) => {}
            Err(DirectoryError::Api { uid, .. }) if uid == "account_invalid" => return Ok(None),
            Err(err) => return Err(err),
        }
        let enabled = match account.enabled {
            Some(enabled) => enabled,
            // 11.x: 0 is enabled; 1-4, nothing, or anything else is disabled (fail closed).
            None => matches!(
                properties.get("u_accountdisabled"),
                Some(PropertyValue::Text(value)) if value.trim() == "0"
            ),
        };

        let aliases = ["u_alias", "u_aliaslist"]
            .into_iter()
            .flat_map(|name| alias_tokens(properties.get(name)))
            .map(|alias| if alias.contains('@') { alias } else { format!("{alias}@{domain}") });
        let emails = unique_folded(std::iter::once(account.email.clone()).chain(aliases));

        let login_name = match self.login_name {
            LoginNameStyle::Email => account.email.clone(),
            LoginNameStyle::Mailbox => match properties.get("u_mailbox") {
                Some(PropertyValue::Text(mailbox)) if !mailbox.trim().is_empty() => {
                    mailbox.trim().to_string()
                }
                _ => account.email.split('@').next().unwrap_or(&account.email).to_string(),
            },
        };
        Ok(Some(DirectoryUser {
            login_name,
            identity: format!("icewarp:{}", account.email.to_lowercase()),
            full_name: account.name.clone(),
            emails,
            enabled,
            groups: Vec::new(),
            distinguished_name: None,
        }))
    }

    /// The old way of checking a password, for servers without `getauthtoken`:
    /// `authenticate` as the user, then `logout` that session.
    fn check_with_authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<PasswordCheck, DirectoryError> {
        let command = "authenticate";
        let Ok(body) = xml::authenticate(login, password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let mut fields = Fields::new(&[&["result"]]);
        let reply = self.exchange(command, body, &mut fields)?;
        match reply.outcome {
            Outcome::Error(uid) => self.password_error(command, uid),
            Outcome::Result => match fields.get(0).map(str::trim) {
                Some("1") => {
                    let Some(sid) = reply.sid else {
                        return Err(self.malformed(
                            command,
                            "<result>1</result> without a sid: cannot tell whether the \
                             password is right",
                        ));
                    };
                    // The session exists only to prove the password; its logout failing
                    // changes nothing about the answer.
                    if let Ok(body) = xml::logout(&sid) {
                        let _ = self.exchange("logout", body, &mut xml::Ignore);
                    }
                    Ok(PasswordCheck::Accepted)
                }
                Some("0") => Ok(PasswordCheck::Rejected),
                other => Err(self.malformed(
                    command,
                    format!("authenticate answered <result>{}</result>", other.unwrap_or("")),
                )),
            },
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

/// Case-insensitive comparison of addresses and domain names, by [`fold_key`]. For the
/// short lists (filters, domains); long ones go through [`unique_folded`] or a map.
fn eq_fold(a: &str, b: &str) -> bool {
    fold_key(a) == fold_key(b)
}

/// Text of a numeric element, if it is a non-negative integer.
fn parse_count(text: Option<&str>) -> Option<u64> {
    text.and_then(|text| text.trim().parse().ok())
}

/// `login_name = "mailbox"` means the mailbox name when it is unique (docs/protocols/icewarp.md, "Login names"):
/// accounts sharing one (alice@a.com, alice@b.com) are all recorded under their full
/// addresses, so that neither the order of the listing nor a new account in another
/// domain decides who gets the bare name.
fn use_addresses_for_shared_mailbox_names(users: &mut [DirectoryUser], warnings: &mut Vec<String>) {
    let mut holders: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, user) in users.iter().enumerate() {
        holders.entry(user.login_name.to_lowercase()).or_default().push(index);
    }
    let mut shared: Vec<(String, Vec<usize>)> =
        holders.into_iter().filter(|(_, indexes)| indexes.len() > 1).collect();
    shared.sort();
    for (_, indexes) in shared {
        let addresses: Vec<String> = indexes
            .iter()
            .map(|&index| {
                let user = &users[index];
                user.emails
                    .first()
                    .cloned()
                    .unwrap_or_else(|| user.identity.trim_start_matches("icewarp:").to_string())
            })
            .collect();
        warnings.push(format!(
            "mailbox name {:?} belongs to {} accounts ({}); each is recorded under its full address",
            users[indexes[0]].login_name,
            indexes.len(),
            addresses.join(", ")
        ));
        for (index, address) in indexes.into_iter().zip(addresses) {
            users[index].login_name = address;
        }
    }
}

/// The addresses in an alias property: `;`-separated text or a string list, without empty
/// tokens and without `[…]` tokens (settings, not addresses).
fn alias_tokens(value: Option<&PropertyValue>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        Some(PropertyValue::Text(text)) => text.split(';').collect(),
        Some(PropertyValue::List(items)) => items.iter().flat_map(|item| item.split(';')).collect(),
        Some(PropertyValue::NoValue) | None => Vec::new(),
    };
    raw.into_iter()
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .filter(|token| !(token.starts_with('[') && token.ends_with(']')))
        .map(str::to_string)
        .collect()
}

fn unresolved_warning(group: &str, unresolved: &[String]) -> String {
    let shown: Vec<&str> =
        unresolved.iter().take(MAX_NAMED_UNRESOLVED).map(String::as_str).collect();
    let more = unresolved.len().saturating_sub(MAX_NAMED_UNRESOLVED);
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!(
        "group {group}: {} member(s) are not users of the listed domains (external address, \
         unknown account, or outside the domain filter) and were ignored: {}{tail}",
        unresolved.len(),
        shown.join(", ")
    )
}

impl super::Directory for IcewarpDirectory {
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        if let Admin::Missing(reason) = &self.admin {
            return Err(DirectoryError::NotConfigured(reason.clone()));
        }
        self.login()?;
        let result = self.list_inner(progress);
        let logout_warning = self.logout();
        let mut listing = result?;
        listing.warnings.extend(logout_warning);
        Ok(listing)
    }

    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        // IceWarp passwords are text: bytes that are not UTF-8, or characters XML cannot
        // carry, cannot be anyone's password. An empty password is never asked about (a
        // directory treating it as an anonymous login must not let anyone in).
        if login.is_empty() || password.is_empty() {
            return Ok(PasswordCheck::NotAsked);
        }
        let Ok(password) = std::str::from_utf8(password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let Ok(body) = xml::getauthtoken(login, password) else {
            return Ok(PasswordCheck::NotAsked);
        };
        let command = "getauthtoken";
        self.http.expect_answers();
        let mut fields = Fields::new(&[&["result", "authtoken"]]);
        let reply = self.exchange(command, body, &mut fields)?;
        match reply.outcome {
            Outcome::Result => {
                // Only a non-empty token proves the password; anything else is not an
                // answer, and never a yes.
                if fields.get(0).is_some_and(|token| !token.trim().is_empty()) {
                    Ok(PasswordCheck::Accepted)
                } else {
                    Err(self.malformed(command, "a result without a non-empty <authtoken>"))
                }
            }
            Outcome::Error(uid) if uid == "invoker_commandname_invalid" => {
                self.check_with_authenticate(login, password)
            }
            Outcome::Error(uid) => self.password_error(command, uid),
        }
    }

    fn server(&self) -> &str {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::DirectoryKind;
    use crate::directory::test_server::{Request, Response, TestServer};
    use crate::directory::{Directory, NoProgress};

    /// One account of the fake server: (email, display name, type, accountstate/state).
    type Account = (&'static str, &'static str, &'static str, Option<&'static str>);

    /// A small IceWarp stand-in that knows just the commands dircache sends.
    #[derive(Default)]
    struct Fake {
        domains: Vec<(&'static str, &'static str)>,
        accounts: HashMap<&'static str, Vec<Account>>,
        /// Lower-cased email → (property, value XML inside <propertyval>).
        properties: HashMap<&'static str, Vec<(&'static str, String)>>,
        members: HashMap<&'static str, Vec<&'static str>>,
        /// The server returns at most this many items per page (0: no limit).
        page_limit: usize,
        /// Answer the next N session commands with this error.
        session_errors: usize,
        session_error_uid: &'static str,
        /// Replies replacing the normal one for a command.
        overrides: HashMap<&'static str, String>,
        admin_password: &'static str,
        logins: usize,
        requests: Vec<(String, String)>,
    }

    fn tag<'a>(body: &'a str, name: &str) -> Option<&'a str> {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(&body[start..end])
    }

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#9;", "\t")
            .replace("&#10;", "\n")
            .replace("&#13;", "\r")
            .replace("&amp;", "&")
    }

    fn ok(sid: &str, inner: &str) -> String {
        format!(
            "<iq type=\"result\" sid=\"{sid}\"><query xmlns=\"admin:iq:rpc\">{inner}</query></iq>"
        )
    }

    fn error(uid: &str) -> String {
        format!(
            "<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"{uid}\"/></query></iq>"
        )
    }

    fn page<T>(
        items: &[T],
        offset: usize,
        count: usize,
        limit: usize,
        item: impl Fn(&T) -> String,
    ) -> String {
        let take = if limit == 0 { count } else { count.min(limit) };
        let body: String = items.iter().skip(offset).take(take).map(item).collect();
        format!(
            "<result>{body}<offset>{offset}</offset><overallcount>{}</overallcount></result>",
            items.len()
        )
    }

    impl Fake {
        fn answer(&mut self, request: &Request) -> Response {
            let body = String::from_utf8(request.body.clone()).unwrap();
            let command = tag(&body, "commandname").unwrap().to_string();
            self.requests.push((command.clone(), body.clone()));
            if let Some(reply) = self.overrides.get(command.as_str()) {
                return Response::ok("application/xml", reply.clone());
            }
            let sid_attr = body.strip_prefix("<iq sid=\"").and_then(|rest| rest.split('"').next());
            let number = |name: &str| -> usize { tag(&body, name).unwrap().parse().unwrap() };
            let reply = match command.as_str() {
                "authenticate" => {
                    assert!(sid_attr.is_none());
                    if unescape(tag(&body, "password").unwrap()) == self.admin_password {
                        self.logins += 1;
                        ok(&format!("SID{}", self.logins), "<result>1</result>")
                    } else {
                        error("auth_login_invalid")
                    }
                }
                _ if sid_attr != Some(&format!("SID{}", self.logins)) => error("session_invalid"),
                _ if self.session_errors > 0 && command != "logout" => {
                    self.session_errors -= 1;
                    error(self.session_error_uid)
                }
                "logout" => ok("", "<result>1</result>"),
                "getdomainsinfolist" => ok(
                    "",
                    &page(
                        &self.domains,
                        number("offset"),
                        number("count"),
                        self.page_limit,
                        |(name, kind)| {
                            format!("<item><name>{name}</name><desc/><domaintype>{kind}</domaintype><accountcount>-1</accountcount></item>")
                        },
                    ),
                ),
                "getaccountsinfolist" => {
                    let domain = tag(&body, "domainstr").unwrap();
                    let accounts = self.accounts.get(domain).cloned().unwrap_or_default();
                    ok(
                        "",
                        &page(
                            &accounts,
                            number("offset"),
                            number("count"),
                            self.page_limit,
                            |(email, name, kind, state)| {
                                let state = state
                            .map(|state| format!("<accountstate><classname>TAccountState</classname><state>{state}</state></accountstate>"))
                            .unwrap_or_default();
                                format!("<item><name>{name}</name><email>{email}</email><accounttype>{kind}</accounttype>{state}<admintype>0</admintype></item>")
                            },
                        ),
                    )
                }
                "getaccountproperties" => {
                    let email = tag(&body, "accountemail").unwrap().to_lowercase();
                    match self.properties.iter().find(|(have, _)| **have == email) {
                        None if !self
                            .accounts
                            .values()
                            .flatten()
                            .any(|account| account.0 == email) =>
                        {
                            error("account_invalid")
                        }
                        found => {
                            let known = found.map(|(_, values)| values.clone()).unwrap_or_default();
                            let mut items = String::new();
                            // Echo every requested name in the request's case.
                            let mut rest = body.as_str();
                            while let Some(name) = tag(rest, "propname") {
                                let value = known
                                    .iter()
                                    .find(|(have, _)| have.eq_ignore_ascii_case(name))
                                    .map(|(_, value)| value.clone())
                                    .unwrap_or_else(|| {
                                        "<classname>TPropertyNoValue</classname>".to_string()
                                    });
                                items.push_str(&format!("<item><apiproperty><propname>{name}</propname></apiproperty><propertyval>{value}</propertyval><propertyright>2</propertyright></item>"));
                                rest = &rest[rest.find("</propname>").unwrap() + 11..];
                            }
                            ok("", &format!("<result>{items}</result>"))
                        }
                    }
                }
                "getaccountmemberinfolist" => {
                    let group = tag(&body, "who").unwrap();
                    let members = self.members.get(group).cloned().unwrap_or_default();
                    ok(
                        "",
                        &page(
                            &members,
                            number("offset"),
                            number("count"),
                            self.page_limit,
                            |val| {
                                format!("<item><val>{val}</val><default>0</default><recieve>0</recieve><post>0</post><digest>0</digest><params/></item>")
                            },
                        ),
                    )
                }
                other => error(&format!("unexpected_{other}")),
            };
            Response::ok("application/xml", reply)
        }
    }

    fn text(value: &str) -> String {
        format!("<classname>TPropertyString</classname><val>{value}</val>")
    }

    /// The directory of the protocol examples: two real domains, an alias domain, the
    /// internal one; users of 14.x and 11.x kinds; a group with every kind of member.
    fn example() -> Fake {
        let mut fake = Fake {
            domains: vec![
                ("example.com", "0"),
                ("alias.example.com", "2"),
                (INTERNAL_DOMAIN, "0"),
                ("example.org", "0"),
            ],
            page_limit: 2,
            admin_password: "admin & <pass>",
            session_error_uid: "session_expired",
            ..Fake::default()
        };
        fake.accounts.insert(
            "example.com",
            vec![
                ("alice@example.com", "Alice Liddell", "0", Some("0")),
                ("bob@example.com", "Bob", "0", Some("1")),
                ("staff@example.com", "Staff", "7", Some("0")),
                ("list@example.com", "A list", "1", Some("0")),
                ("carol@example.com", "Carol", "0", None),
                ("dave@example.com", "Dave", "0", None),
            ],
        );
        fake.accounts.insert(
            "example.org",
            vec![
                ("erin@example.org", "Erin", "0", Some("0")),
                ("alice@example.org", "Other Alice", "0", Some("0")),
            ],
        );
        fake.properties.insert(
            "alice@example.com",
            vec![
                ("u_mailbox", text("alice")),
                ("u_alias", text("al;[x];Alice.L@example.com;;alice@example.com")),
                ("u_aliaslist", text("alice@alias.example.com;")),
            ],
        );
        fake.properties.insert("carol@example.com", vec![("u_accountdisabled", text("0"))]);
        fake.properties.insert("dave@example.com", vec![("u_mailbox", text("dave"))]);
        fake.properties.insert("erin@example.org", vec![("u_mailbox", text("erin.x"))]);
        fake.properties.insert("alice@example.org", vec![("u_mailbox", text("alice"))]);
        fake.members.insert(
            "staff@example.com",
            vec![
                "alice@example.com",
                "AL@example.com",
                "[example.org]",
                "ghost@example.com",
                "outsider@elsewhere.test",
            ],
        );
        fake
    }

    fn serve(fake: Fake) -> (TestServer, Arc<Mutex<Fake>>) {
        let fake = Arc::new(Mutex::new(fake));
        let state = fake.clone();
        let server = TestServer::start(move |request| state.lock().unwrap().answer(request));
        (server, fake)
    }

    fn config(server: &TestServer) -> Config {
        let mut config = Config::default();
        config.directory.kind = DirectoryKind::Icewarp;
        config.directory.server = Some(server.url("/icewarpapi/"));
        config.directory.username = Some("admin@example.com".to_string());
        config.directory.password = Some(Zeroizing::new("admin & <pass>".to_string()));
        config.directory.timeout_secs = 10;
        config
    }

    #[derive(Default)]
    struct Steps(Vec<(String, u64, Option<u64>)>);

    impl Progress for Steps {
        fn step(&mut self, what: &str, done: u64, total: Option<u64>) {
            self.0.push((what.to_string(), done, total));
        }
    }

    fn list(config: &Config) -> Result<Listing, DirectoryError> {
        IcewarpDirectory::new(config)?.list(&mut Steps::default())
    }

    fn user<'a>(listing: &'a Listing, email: &str) -> &'a DirectoryUser {
        listing
            .users
            .iter()
            .find(|user| user.identity == format!("icewarp:{email}"))
            .unwrap_or_else(|| panic!("no {email} in {:?}", listing.users))
    }

    fn identities(listing: &Listing) -> Vec<&str> {
        listing.users.iter().map(|user| user.identity.trim_start_matches("icewarp:")).collect()
    }

    #[test]
    fn lists_users_groups_and_aliases() {
        let (server, fake) = serve(example());
        let mut steps = Steps::default();
        let listing = IcewarpDirectory::new(&config(&server)).unwrap().list(&mut steps).unwrap();
        assert_eq!(listing.origin, Origin::Icewarp);
        assert_eq!(
            identities(&listing),
            [
                "alice@example.com",
                "bob@example.com",
                "carol@example.com",
                "dave@example.com",
                "erin@example.org",
                "alice@example.org"
            ]
        );
        let alice = user(&listing, "alice@example.com");
        assert_eq!(alice.login_name, "alice@example.com");
        assert_eq!(alice.full_name, "Alice Liddell");
        assert_eq!(
            alice.emails,
            [
                "alice@example.com",
                "al@example.com",
                "Alice.L@example.com",
                "alice@alias.example.com"
            ]
        );
        assert!(alice.enabled);
        assert_eq!(alice.groups, ["staff@example.com"]);
        assert_eq!(alice.distinguished_name, None);
        // 14.x state 1; 11.x U_AccountDisabled 0; 11.x without a value fails closed.
        assert!(!user(&listing, "bob@example.com").enabled);
        assert!(user(&listing, "carol@example.com").enabled);
        assert!(!user(&listing, "dave@example.com").enabled);

        assert_eq!(listing.groups.len(), 1);
        let staff = &listing.groups[0];
        assert_eq!(staff.name, "staff@example.com");
        assert_eq!(staff.identity, "icewarp:staff@example.com");
        assert_eq!(
            staff.members,
            ["icewarp:alice@example.com", "icewarp:erin@example.org", "icewarp:alice@example.org"]
        );
        assert_eq!(user(&listing, "erin@example.org").groups, ["staff@example.com"]);
        assert!(user(&listing, "bob@example.com").groups.is_empty());
        assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
        assert!(listing.warnings[0].contains("ghost@example.com"), "{:?}", listing.warnings);
        assert!(listing.warnings[0].contains("outsider@elsewhere.test"), "{:?}", listing.warnings);

        let fake = fake.lock().unwrap();
        let commands: Vec<&str> =
            fake.requests.iter().map(|(command, _)| command.as_str()).collect();
        assert_eq!(commands.first(), Some(&"authenticate"));
        assert_eq!(commands.last(), Some(&"logout"));
        // The alias and internal domains are never asked about.
        assert!(!fake
            .requests
            .iter()
            .any(|(_, body)| body.contains("alias.example.com</domainstr>")));
        assert!(!fake.requests.iter().any(|(_, body)| body.contains("##internal")));
        // One properties request per user; U_AccountDisabled only for the 11.x items.
        let properties: Vec<&String> = fake
            .requests
            .iter()
            .filter(|(command, _)| command == "getaccountproperties")
            .map(|(_, body)| body)
            .collect();
        assert_eq!(properties.len(), 6);
        assert_eq!(properties.iter().filter(|body| body.contains("u_accountdisabled")).count(), 2);
        assert!(fake.requests.iter().all(|(command, body)| command == "authenticate"
            || command == "logout"
            || command == "getaccountproperties"
            || body.contains("<count>500</count>")));
        drop(fake);

        assert!(steps.0.contains(&("domains".to_string(), 2, Some(2))), "{:?}", steps.0);
        assert!(steps.0.contains(&("accounts".to_string(), 6, None)), "{:?}", steps.0);
        assert!(steps.0.contains(&("account properties".to_string(), 6, Some(6))), "{:?}", steps.0);
    }

    #[test]
    fn domain_filter_selects_domains() {
        let (server, fake) = serve(example());
        let mut config = config(&server);
        config.sync.domains = vec!["EXAMPLE.org".to_string()];
        let listing = list(&config).unwrap();
        assert_eq!(identities(&listing), ["erin@example.org", "alice@example.org"]);
        // Members outside the filtered domains are not resolvable and not selected.
        assert_eq!(listing.groups.len(), 0);
        assert!(!fake
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|(_, body)| body.contains("example.com</domainstr>")));
    }

    #[test]
    fn group_filter_selects_members_and_unions_with_domains() {
        let (server, _fake) = serve(example());
        let mut config = config(&server);
        config.sync.groups = vec!["Staff@Example.com".to_string()];
        let listing = list(&config).unwrap();
        assert_eq!(
            identities(&listing),
            ["alice@example.com", "erin@example.org", "alice@example.org"]
        );
        assert_eq!(listing.groups.len(), 1);

        config.sync.domains = vec!["example.com".to_string()];
        let listing = list(&config).unwrap();
        assert_eq!(
            identities(&listing),
            [
                "alice@example.com",
                "bob@example.com",
                "carol@example.com",
                "dave@example.com",
                "erin@example.org",
                "alice@example.org"
            ]
        );
    }

    #[test]
    fn filters_naming_nothing_are_errors() {
        let (server, _fake) = serve(example());
        for (domains, groups, kind, name) in [
            (vec!["example.net"], vec![], "domain", "example.net"),
            (vec!["alias.example.com"], vec![], "domain", "alias.example.com"),
            (vec![], vec!["staf@example.com"], "group", "staf@example.com"),
            // A type-1 mailing list is not a group.
            (vec![], vec!["list@example.com"], "group", "list@example.com"),
        ] {
            let mut config = config(&server);
            config.sync.domains = domains.into_iter().map(str::to_string).collect();
            config.sync.groups = groups.into_iter().map(str::to_string).collect();
            match list(&config).unwrap_err() {
                DirectoryError::FilterNotFound { kind: have_kind, name: have_name, .. } => {
                    assert_eq!((have_kind, have_name.as_str()), (kind, name));
                }
                other => panic!("expected FilterNotFound, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_account_with_20000_aliases_is_de_duplicated() {
        let mut fake = example();
        // Each alias twice: as a bare name in the domain, and as a full upper-case address.
        let names: Vec<String> = (0..20_000).map(|i| format!("alias{i}")).collect();
        let listed = names
            .iter()
            .cloned()
            .chain(names.iter().map(|name| format!("{}@EXAMPLE.ORG", name.to_uppercase())))
            .collect::<Vec<_>>()
            .join(";");
        fake.properties.insert("erin@example.org", vec![("u_aliaslist", text(&listed))]);
        let (server, _fake) = serve(fake);
        let listing = list(&config(&server)).unwrap();
        let expected: Vec<String> = std::iter::once("erin@example.org".to_string())
            .chain(names.iter().map(|name| format!("{name}@example.org")))
            .collect();
        assert_eq!(user(&listing, "erin@example.org").emails, expected);
    }

    #[test]
    fn a_listing_over_the_budget_is_refused_naming_the_key() {
        let (server, _fake) = serve(example());
        let mut config = config(&server);
        // Room for 5 accounts; the example lists 8 (and 3 domains, 5 group members).
        config.directory.max_reply_bytes = Some(5 * 1024);
        let err = list(&config).unwrap_err();
        assert!(matches!(err, DirectoryError::TooMany { key: "max_reply_bytes", .. }), "{err:?}");
        assert!(err.to_string().contains("getaccountsinfolist"), "{err}");
    }

    #[test]
    fn mailbox_login_names_and_duplicates() {
        let (server, _fake) = serve(example());
        let mut config = config(&server);
        config.sync.login_name = LoginNameStyle::Mailbox;
        let listing = list(&config).unwrap();
        let names: Vec<&str> = listing.users.iter().map(|user| user.login_name.as_str()).collect();
        // bob and carol have no U_Mailbox: the local part stands in.
        // "alice" is the mailbox of two accounts: neither gets it, both keep their address.
        assert_eq!(
            names,
            ["alice@example.com", "bob", "carol", "dave", "erin.x", "alice@example.org"]
        );
        assert!(
            listing.warnings.iter().any(|warning| warning.contains("\"alice\"")
                && warning.contains("alice@example.com")
                && warning.contains("alice@example.org")),
            "{:?}",
            listing.warnings
        );
    }

    #[test]
    fn a_session_error_means_one_new_login_and_one_retry() {
        let mut fake = example();
        fake.session_errors = 1;
        let (server, state) = serve(fake);
        let listing = list(&config(&server)).unwrap();
        assert_eq!(listing.users.len(), 6);
        assert_eq!(state.lock().unwrap().logins, 2);

        for uid in ["session_invalid", "session_invalid_id", "session_expired", "session_no_user"] {
            let mut fake = example();
            fake.session_errors = 2;
            fake.session_error_uid = uid;
            let (server, state) = serve(fake);
            match list(&config(&server)).unwrap_err() {
                DirectoryError::Api { uid: have, command, .. } => {
                    assert_eq!(have, uid);
                    assert_eq!(command, "getdomainsinfolist");
                }
                other => panic!("expected Api, got {other:?}"),
            }
            assert_eq!(state.lock().unwrap().logins, 2);
        }
    }

    #[test]
    fn check_admin_login_logs_in_and_out_and_nothing_else() {
        let (server, fake) = serve(example());
        let mut directory = IcewarpDirectory::new(&config(&server)).unwrap();
        assert_eq!(directory.check_admin_login().unwrap(), Vec::<String>::new());
        let commands: Vec<String> =
            fake.lock().unwrap().requests.iter().map(|(command, _)| command.clone()).collect();
        assert_eq!(commands, ["authenticate", "logout"]);

        let mut fake = example();
        fake.overrides.insert("logout", error("session_invalid"));
        let (server, _fake) = serve(fake);
        let mut directory = IcewarpDirectory::new(&config(&server)).unwrap();
        let warnings = directory.check_admin_login().unwrap();
        assert!(warnings[0].contains("logout"), "{warnings:?}");

        let mut fake = example();
        fake.admin_password = "something else";
        let (server, _fake) = serve(fake);
        let mut directory = IcewarpDirectory::new(&config(&server)).unwrap();
        let err = directory.check_admin_login().unwrap_err();
        assert!(matches!(err, DirectoryError::AdminLogin { .. }), "{err:?}");
    }

    #[test]
    fn administrator_login_failures() {
        let mut fake = example();
        fake.admin_password = "something else";
        let (server, _fake) = serve(fake);
        let err = list(&config(&server)).unwrap_err();
        assert!(matches!(err, DirectoryError::AdminLogin { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("auth_login_invalid"), "{message}");
        assert!(!message.contains("admin & <pass>"), "{message}");

        let mut fake = example();
        fake.overrides.insert("authenticate", ok("SID1", "<result>0</result>"));
        let (server, _fake) = serve(fake);
        assert!(matches!(list(&config(&server)), Err(DirectoryError::AdminLogin { .. })));

        let mut fake = example();
        fake.overrides.insert(
            "authenticate",
            "<iq type=\"result\"><query xmlns=\"admin:iq:rpc\"><result>1</result></query></iq>"
                .to_string(),
        );
        let (server, _fake) = serve(fake);
        let err = list(&config(&server)).unwrap_err();
        assert!(err.to_string().contains("no sid"), "{err}");

        let (server, fake) = serve(example());
        let mut config = config(&server);
        config.directory.password = None;
        assert!(matches!(list(&config), Err(DirectoryError::NotConfigured(_))));
        config.directory.username = None;
        assert!(matches!(list(&config), Err(DirectoryError::NotConfigured(_))));
        assert!(fake.lock().unwrap().requests.is_empty());
    }

    #[test]
    fn paging_trouble_is_malformed_not_an_endless_loop() {
        for reply in [
            // Claims more, delivers nothing.
            "<result><offset>0</offset><overallcount>5</overallcount></result>",
            // No overallcount: cannot tell whether the list is complete.
            "<result><item><name>example.com</name><domaintype>0</domaintype></item></result>",
            // Garbage count.
            "<result><offset>0</offset><overallcount>many</overallcount></result>",
            // The wrong page.
            "<result><item><name>example.com</name></item><offset>7</offset><overallcount>9</overallcount></result>",
        ] {
            let mut fake = example();
            fake.overrides.insert("getdomainsinfolist", ok("", reply));
            let (server, _fake) = serve(fake);
            let err = list(&config(&server)).unwrap_err();
            assert!(matches!(err, DirectoryError::Malformed { .. }), "{reply}: {err:?}");
        }
    }

    #[test]
    fn a_server_that_ignores_the_offset_fails_the_listing() {
        // Every page is the first one, without an <offset> echo: the accounts after it would
        // look deleted.
        for (email, account_type) in [("alice@example.com", 0), ("staff@example.com", 7)] {
            let page = format!(
                "<result><item><name>A</name><email>{email}</email>\
                 <accounttype>{account_type}</accounttype><accountstate><state>0</state>\
                 </accountstate></item><overallcount>2</overallcount></result>"
            );
            let mut fake = example();
            fake.overrides.insert("getaccountsinfolist", ok("", &page));
            let (server, _fake) = serve(fake);
            let err = list(&config(&server)).unwrap_err();
            assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
            assert!(err.to_string().contains("listed twice"), "{err}");
        }
    }

    #[test]
    fn logout_failure_is_only_a_warning() {
        let mut fake = example();
        fake.overrides.insert("logout", error("session_invalid"));
        let (server, _fake) = serve(fake);
        let listing = list(&config(&server)).unwrap();
        assert!(
            listing.warnings.iter().any(|warning| warning.contains("logout")),
            "{:?}",
            listing.warnings
        );
    }

    #[test]
    fn account_vanishing_while_listing_is_skipped() {
        let mut fake = example();
        fake.overrides.insert("getaccountproperties", error("account_invalid"));
        let (server, _fake) = serve(fake);
        let listing = list(&config(&server)).unwrap();
        assert!(listing.users.is_empty());
        assert!(listing.warnings.iter().any(|warning| warning.contains("account_invalid")));
        let mut fake = example();
        fake.overrides.insert("getaccountproperties", error("license_evaluation"));
        let (server, _fake) = serve(fake);
        match list(&config(&server)).unwrap_err() {
            DirectoryError::Api { uid, .. } => assert_eq!(uid, "license_evaluation"),
            other => panic!("{other:?}"),
        }
    }

    fn check(
        fake: Fake,
        login: &str,
        password: &[u8],
    ) -> (Result<PasswordCheck, DirectoryError>, Vec<(String, String)>) {
        let (server, state) = serve(fake);
        let mut config = config(&server);
        // A password check needs no administrator.
        config.directory.username = None;
        config.directory.password = None;
        let result = connect_icewarp(&config).check_password(login, password);
        let requests = state.lock().unwrap().requests.clone();
        (result, requests)
    }

    fn connect_icewarp(config: &Config) -> IcewarpDirectory {
        IcewarpDirectory::new(config).unwrap()
    }

    fn answering(command: &'static str, reply: String) -> Fake {
        let mut fake = example();
        fake.overrides.insert(command, reply);
        fake
    }

    #[test]
    fn a_login_client_never_reads_the_administrator_password() {
        let token =
            ok("", "<result><authtoken>2FD16498F17BAF4688028BD198537CED</authtoken></result>");
        let (server, state) = serve(answering("getauthtoken", token));
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&server);
        config.directory.password = None;
        config.directory.password_file = Some(dir.path().join("missing.secret"));

        // The full client reads it (and here records why it could not).
        let full = IcewarpDirectory::new(&config).unwrap();
        assert!(matches!(&full.admin, Admin::Missing(why) if why.contains("missing.secret")));

        let mut login = IcewarpDirectory::for_login(&config).unwrap();
        assert!(matches!(&login.admin, Admin::Missing(why) if why.contains("not read")));
        let answer = login.check_password("alice@example.com", b"pw").unwrap();
        assert_eq!(answer, PasswordCheck::Accepted);
        match login.list(&mut NoProgress) {
            Err(DirectoryError::NotConfigured(why)) => {
                assert!(why.contains("not read for a password check"), "{why}")
            }
            other => panic!("expected NotConfigured, got {other:?}"),
        }
        let commands: Vec<String> =
            state.lock().unwrap().requests.iter().map(|(command, _)| command.clone()).collect();
        assert_eq!(commands, ["getauthtoken"], "no administrator session");
    }

    #[test]
    fn password_check_needs_a_non_empty_token() {
        let token = ok("", "<result><email>alice@example.com</email><authtoken>2FD16498F17BAF4688028BD198537CED</authtoken></result>");
        let password = "p<&>\"' ]]>ä";
        let (result, requests) =
            check(answering("getauthtoken", token), "alice@example.com", password.as_bytes());
        assert_eq!(result.unwrap(), PasswordCheck::Accepted);
        assert_eq!(requests.len(), 1);
        let body = &requests[0].1;
        assert!(body.starts_with("<iq><query"), "no sid: {body}");
        assert_eq!(unescape(tag(body, "password").unwrap()), password);
        assert_eq!(tag(body, "email"), Some("alice@example.com"));

        for reply in [
            ok("", "<result><email>alice@example.com</email><authtoken></authtoken></result>"),
            ok("", "<result><email>alice@example.com</email><authtoken>  </authtoken></result>"),
            ok("", "<result><authtoken/></result>"),
            ok("", "<result>1</result>"),
            ok("", ""),
            "<iq type=\"result\"><query xmlns=\"other\"><result><authtoken>X</authtoken></result></query></iq>".to_string(),
            "<iq type=\"ok\"><query xmlns=\"admin:iq:rpc\"><result><authtoken>X</authtoken></result></query></iq>".to_string(),
            "garbage".to_string(),
        ] {
            let (result, _) = check(answering("getauthtoken", reply.clone()), "alice@example.com", b"pw");
            let err = result.unwrap_err();
            assert!(matches!(err, DirectoryError::Malformed { .. }), "{reply}: {err:?}");
        }
    }

    #[test]
    fn password_check_error_uids() {
        for (uid, expected) in [
            ("auth_login_invalid", PasswordCheck::Rejected),
            ("account_disabled_2", PasswordCheck::AccountDisabled),
            ("auth_two_factor_required", PasswordCheck::SecondFactorRequired),
        ] {
            let (result, _) =
                check(answering("getauthtoken", error(uid)), "alice@example.com", b"pw");
            assert_eq!(result.unwrap(), expected, "{uid}");
        }
        let (result, _) =
            check(answering("getauthtoken", error("license_evaluation")), "a@example.com", b"pw");
        match result.unwrap_err() {
            DirectoryError::Api { uid, command, .. } => {
                assert_eq!(uid, "license_evaluation");
                assert_eq!(command, "getauthtoken");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn password_check_falls_back_to_authenticate_on_old_servers() {
        let mut fake = answering("getauthtoken", error("invoker_commandname_invalid"));
        fake.admin_password = "user pw";
        let (result, requests) = check(fake, "alice@example.com", b"user pw");
        assert_eq!(result.unwrap(), PasswordCheck::Accepted);
        let commands: Vec<&str> = requests.iter().map(|(command, _)| command.as_str()).collect();
        assert_eq!(commands, ["getauthtoken", "authenticate", "logout"]);

        let (result, _) = check(
            answering("getauthtoken", error("invoker_commandname_invalid")),
            "alice@example.com",
            b"wrong",
        );
        assert_eq!(result.unwrap(), PasswordCheck::Rejected);

        let mut fake = answering("getauthtoken", error("invoker_commandname_invalid"));
        fake.overrides.insert("authenticate", ok("", "<result>1</result>"));
        let (result, _) = check(fake, "alice@example.com", b"pw");
        assert!(matches!(result, Err(DirectoryError::Malformed { .. })), "{result:?}");

        let mut fake = answering("getauthtoken", error("invoker_commandname_invalid"));
        fake.overrides.insert("authenticate", ok("SID9", "<result>0</result>"));
        let (result, _) = check(fake, "alice@example.com", b"pw");
        assert_eq!(result.unwrap(), PasswordCheck::Rejected);
    }

    #[test]
    fn passwords_that_cannot_be_anyones_are_rejected_without_asking() {
        for password in [&b""[..], b"\xff\xfe", b"nul\0"] {
            let (result, requests) = check(example(), "alice@example.com", password);
            assert_eq!(result.unwrap(), PasswordCheck::NotAsked, "{password:?}");
            assert!(requests.is_empty());
        }
        let (result, requests) = check(example(), "", b"pw");
        assert_eq!(result.unwrap(), PasswordCheck::NotAsked);
        assert!(requests.is_empty());
    }

    #[test]
    fn password_check_outage_is_an_error() {
        let server = TestServer::start(|_| Response::status(500, "down"));
        let mut config = Config::default();
        config.directory.server = Some(server.url("/icewarpapi/"));
        let err = connect_icewarp(&config).check_password("alice@example.com", b"pw").unwrap_err();
        assert!(matches!(err, DirectoryError::HttpStatus { status: 500, .. }), "{err:?}");
        assert!(!err.is_unreachable(), "an HTTP error is an answer, not an outage");
    }

    #[test]
    fn server_names_become_api_urls() {
        assert_eq!(api_url("mail.example.com"), "https://mail.example.com/icewarpapi/");
        assert_eq!(api_url("192.0.2.10"), "https://192.0.2.10/icewarpapi/");
        assert_eq!(api_url("[2001:db8::1]:8443"), "https://[2001:db8::1]:8443/icewarpapi/");
        assert_eq!(
            api_url("http://127.0.0.1:8080/icewarpapi/"),
            "http://127.0.0.1:8080/icewarpapi/"
        );
    }

    #[test]
    fn alias_tokens_drop_settings_and_blanks() {
        let value = PropertyValue::Text(" a ; [b] ;;c@x.test;[]".to_string());
        assert_eq!(alias_tokens(Some(&value)), ["a", "c@x.test"]);
        let value = PropertyValue::List(vec!["d;e".to_string(), "[f]".to_string()]);
        assert_eq!(alias_tokens(Some(&value)), ["d", "e"]);
        assert!(alias_tokens(Some(&PropertyValue::NoValue)).is_empty());
        assert!(alias_tokens(None).is_empty());
        assert!(eq_fold("ÄBC@Example.COM", "äbc@example.com"));
        assert!(!eq_fold("abc", "abcd"));
    }
}
