//! The IceWarp Server client (docs/protocols/icewarp.md): lists domains, accounts and
//! groups as an administrator, and checks a user's own password with `getauthtoken`.
//! Read-only.
//!
//! - [`wire`]: the XML of requests and replies;
//! - `session`: the administrator's session (login, commands, paging, logout) and the
//!   password check;
//! - `select`: the rules of a listing, as pure functions;
//! - here: the [`Directory`] that fetches page by page and hands what it fetched to the rules;
//!   the per-account and per-group requests go out `max_parallel_requests` at a time
//!   ([`crate::directory::parallel`]), all in the one administrator session.

mod limits;
mod select;
mod session;
pub mod wire;

use self::select::{AccountItem, Accounts, DomainItem, Fetched, Filters, ListedUser};
use self::session::{Admin, Session};
use self::wire::Properties;
use std::sync::{Mutex, PoisonError};

use super::compact::TooLarge;
use super::{
    parallel, unique_folded, CompactUser, Directory, DirectoryError, DirectoryUser, Listing,
    ListingBudget, OverBudget, PasswordCheck, Progress,
};
use crate::config::{Config, LoginNameStyle, ReplyLimit};
use crate::user::Origin;

/// Page size for every paged list: explicit, because what `count=0` does is unknown.
const PAGE_SIZE: u64 = 500;

const DOMAINS: &str = "getdomainsinfolist";
const ACCOUNTS: &str = "getaccountsinfolist";
const PROPERTIES: &str = "getaccountproperties";
const MEMBERS: &str = "getaccountmemberinfolist";

/// An IceWarp server, as configured. Made per use.
pub struct IcewarpDirectory {
    session: Session,
    filters: Filters,
    login_name: LoginNameStyle,
    reply_limit: ReplyLimit,
    /// `directory.max_parallel_requests`.
    parallel: usize,
}

/// What became of one listed user, at its place in the listing: with a [`DirectoryUser`]
/// as a worker makes it, with a [`CompactUser`] as the caller's thread keeps it (see
/// `parallel::run_keeping`).
enum UserSlot<U> {
    /// The user, the index of its domain, and the warnings its properties gave.
    User(U, usize, Vec<String>),
    /// The account vanished while listing: its address, for the warning.
    Vanished(String),
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

/// A length as the `u64` of offsets and progress.
fn count(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

impl IcewarpDirectory {
    /// Reads what the client needs from `config`, the administrator's credentials included;
    /// contacts nothing.
    pub fn new(config: &Config) -> Result<IcewarpDirectory, DirectoryError> {
        IcewarpDirectory::with_admin(config, Admin::from_config(config))
    }

    /// A client for password checks only: `getauthtoken` (or `authenticate`) runs with the
    /// user's own credentials, so the administrator password is never read. A process
    /// checking a login thus never holds it, and does not need to be able to read it.
    pub fn for_login(config: &Config) -> Result<IcewarpDirectory, DirectoryError> {
        IcewarpDirectory::with_admin(config, Admin::not_read())
    }

    fn with_admin(config: &Config, admin: Admin) -> Result<IcewarpDirectory, DirectoryError> {
        let directory = &config.directory;
        let server = directory.server.clone().ok_or_else(|| {
            DirectoryError::NotConfigured(
                "directory.server is required for an IceWarp directory".to_string(),
            )
        })?;
        let url = api_url(&server);
        Ok(IcewarpDirectory {
            session: Session::new(server, &url, directory, admin)?,
            filters: Filters {
                domains: config.sync.domains.clone(),
                groups: config.sync.groups.clone(),
            },
            login_name: config.sync.login_name,
            reply_limit: directory.reply_limit(),
            parallel: directory.max_parallel_requests,
        })
    }

    /// Whether the administrator's credentials needed for listing are there and readable.
    pub fn require_admin(&self) -> Result<(), DirectoryError> {
        self.session.require_admin()
    }

    /// Logs the administrator in and out again, for `dircache-sync check`: proves the
    /// server answers and accepts the configured credentials. A failed logout is returned
    /// as a warning, not an error.
    pub fn check_admin_login(&mut self) -> Result<Vec<String>, DirectoryError> {
        self.session.check_admin_login()
    }

    fn filter_not_found(&self, kind: &'static str, name: &str) -> DirectoryError {
        DirectoryError::FilterNotFound {
            server: self.session.server().to_string(),
            kind,
            name: name.to_string(),
        }
    }

    /// The listing, in the administrator's session: fetch, check the filters name what
    /// exists, and let the rules select.
    fn list_inner(&self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        let mut budget = ListingBudget::new(self.reply_limit);
        let listed = self.fetch_domains(&mut budget)?;
        if let Some(name) = self.filters.missing_domain(&listed) {
            return Err(self.filter_not_found("domain", name));
        }
        let domains = self.filters.scanned(listed);
        let (listed_users, listed_groups) =
            self.fetch_accounts(&domains, &mut budget, progress)?.into_lists();
        let mut warnings = Vec::new();
        let users = self.fetch_users(&domains, listed_users, progress, &mut warnings)?;
        if let Some(name) = self.filters.missing_group(&listed_groups) {
            return Err(self.filter_not_found("group", name));
        }
        let groups = self.fetch_members(listed_groups, &mut budget, progress)?;
        let fetched = Fetched { domains, users, groups };
        let (users, groups) =
            select::select(fetched, &self.filters, self.login_name, &mut warnings).map_err(
                |TooLarge| self.session.malformed(PROPERTIES, "an account's text is 4 GiB or more"),
            )?;
        Ok(Listing { origin: Origin::Icewarp, users, groups, warnings })
    }

    /// Every domain that holds accounts of its own, each once.
    fn fetch_domains(&self, budget: &mut ListingBudget) -> Result<Vec<String>, DirectoryError> {
        let mut domains = Vec::new();
        self.session.paged(
            DOMAINS,
            DomainItem::FIELDS,
            &|sid, offset| wire::getdomainsinfolist(sid, offset, PAGE_SIZE),
            &mut |session, items| {
                charge(budget.members(items.len()), budget, session, DOMAINS)?;
                let items = items.into_iter().map(DomainItem::from_fields).collect();
                let page = select::listed_domains(items)
                    .map_err(|reason| session.malformed(DOMAINS, reason))?;
                domains.extend(page);
                Ok(())
            },
        )?;
        Ok(unique_folded(domains))
    }

    /// The accounts of the scanned domains, domain by domain.
    fn fetch_accounts(
        &self,
        domains: &[String],
        budget: &mut ListingBudget,
        progress: &mut dyn Progress,
    ) -> Result<Accounts, DirectoryError> {
        let mut accounts = Accounts::default();
        for (index, domain) in domains.iter().enumerate() {
            self.session.paged(
                ACCOUNTS,
                AccountItem::FIELDS,
                &|sid, offset| wire::getaccountsinfolist(sid, domain, offset, PAGE_SIZE),
                &mut |session, items| {
                    charge(budget.accounts(items.len()), budget, session, ACCOUNTS)?;
                    let items = items.into_iter().map(AccountItem::from_fields).collect();
                    accounts
                        .add_page(items, index)
                        .map_err(|reason| session.malformed(ACCOUNTS, reason))?;
                    progress.step("accounts", count(accounts.users.len()), None);
                    Ok(())
                },
            )?;
            progress.step("domains", count(index + 1), Some(count(domains.len())));
        }
        Ok(accounts)
    }

    /// The record of each listed user, from its properties, with the index of its domain,
    /// in the order listed. An account that vanished meanwhile is left out with a warning.
    fn fetch_users(
        &self,
        domains: &[String],
        listed: Vec<ListedUser>,
        progress: &mut dyn Progress,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<(CompactUser, usize)>, DirectoryError> {
        let total = count(listed.len());
        let work = |account: ListedUser| -> Result<UserSlot<DirectoryUser>, DirectoryError> {
            Ok(match self.fetch_properties(&account)? {
                Some(properties) => {
                    let domain = &domains[account.domain];
                    // Kept with the slot, so that warnings come in the listing's order
                    // whatever order the requests finish in.
                    let mut user_warnings = Vec::new();
                    let user = select::user_from_properties(
                        &account,
                        domain,
                        &properties,
                        self.login_name,
                        &mut user_warnings,
                    );
                    UserSlot::User(user, account.domain, user_warnings)
                }
                None => UserSlot::Vanished(account.email),
            })
        };
        let keep = &mut |slot| match slot {
            UserSlot::User(user, domain, user_warnings) => {
                CompactUser::new(user).map(|user| UserSlot::User(user, domain, user_warnings))
            }
            UserSlot::Vanished(email) => Ok(UserSlot::Vanished(email)),
        };
        let slots = parallel::run_keeping(listed, self.parallel, &work, keep, &mut |done| {
            progress.step("account properties", count(done), Some(total));
        })?;
        // Collected in the slots' own buffer (a chain of `filter_map` over `into_iter`
        // is), not in a second vector beside them: both would be as long as the listing.
        slots
            .into_iter()
            .filter_map(|slot| match slot {
                Ok(UserSlot::User(user, domain, user_warnings)) => {
                    warnings.extend(user_warnings);
                    Some(Ok((user, domain)))
                }
                Ok(UserSlot::Vanished(email)) => {
                    warnings.push(format!(
                        "account {email} disappeared while listing (account_invalid); skipped"
                    ));
                    None
                }
                Err(TooLarge) => Some(Err(self
                    .session
                    .malformed(PROPERTIES, "an account's text is 4 GiB or more"))),
            })
            .collect()
    }

    /// `getaccountproperties` for one user; `None` when the account no longer exists.
    fn fetch_properties(&self, account: &ListedUser) -> Result<Option<Properties>, DirectoryError> {
        let names = select::property_names(account);
        let mut properties = Properties::new();
        let build = |sid: &str| wire::getaccountproperties(sid, &account.email, &names);
        match self.session.command(PROPERTIES, &build, &mut properties) {
            Ok(()) => Ok(Some(properties)),
            Err(DirectoryError::Api { uid, .. }) if uid == "account_invalid" => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every group with its member tokens, in the order listed, fetched before any is
    /// resolved so that only the addresses some group names need indexing.
    fn fetch_members(
        &self,
        groups: Vec<String>,
        budget: &mut ListingBudget,
        progress: &mut dyn Progress,
    ) -> Result<Vec<(String, Vec<String>)>, DirectoryError> {
        let total = count(groups.len());
        let budget = Mutex::new(budget);
        let work = |group: String| -> Result<(String, Vec<String>), DirectoryError> {
            let mut members = Vec::new();
            self.session.paged(
                MEMBERS,
                select::MEMBER_FIELDS,
                &|sid, offset| wire::getaccountmemberinfolist(sid, &group, offset, PAGE_SIZE),
                &mut |session, items| {
                    let mut budget = budget.lock().unwrap_or_else(PoisonError::into_inner);
                    charge(budget.members(items.len()), &budget, session, MEMBERS)?;
                    drop(budget);
                    members.extend(items.into_iter().filter_map(select::member_token));
                    Ok(())
                },
            )?;
            Ok((group, members))
        };
        // Copied on the caller's thread, the worker's copy given back to the worker (see
        // `parallel::run_keeping`).
        let keep = &mut |(group, members): (String, Vec<String>)| {
            (group, members.iter().map(|member| member.as_str().to_owned()).collect())
        };
        parallel::run_keeping(groups, self.parallel, &work, keep, &mut |done| {
            progress.step("groups", count(done), Some(total));
        })
    }
}

/// The listing's [`DirectoryError::TooMany`] once `charged` went over the budget.
fn charge(
    charged: Result<(), OverBudget>,
    budget: &ListingBudget,
    session: &Session,
    command: &str,
) -> Result<(), DirectoryError> {
    charged.map_err(|OverBudget| budget.error(session.server(), command))
}

impl Directory for IcewarpDirectory {
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError> {
        self.session.require_admin()?;
        self.session.login()?;
        let result = self.list_inner(progress);
        let logout_warning = self.session.logout();
        let mut listing = result?;
        listing.warnings.extend(logout_warning);
        Ok(listing)
    }

    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError> {
        self.session.check_password(login, password)
    }

    fn server(&self) -> &str {
        self.session.server()
    }
}

#[cfg(test)]
mod tests;
