//! A mock IceWarp Server administrative API (`POST /icewarpapi/`, namespace `admin:iq:rpc`),
//! following docs/protocols/icewarp.md, read-only commands only.
//!
//! - [`IcewarpData`]: the directory (domains, accounts, group members) and the server's
//!   behaviour knobs (version 11/14 item shapes, page cap, session expiry, tarpit).
//! - [`IcewarpMock`]: the [`Handler`](crate::Handler); holds the data, the sessions and a log of the decoded
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

mod data;
mod mock;

use std::io;
use std::sync::Arc;

use crate::server::MockServer;
use crate::tls::TlsIdentity;
use crate::xml::esc;

pub use data::{Account, Domain, IcewarpData, IcewarpVersion};
pub use mock::{Command, IcewarpMock};

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
