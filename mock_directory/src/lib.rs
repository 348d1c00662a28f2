//! Mock directory servers for dircache's tests, in-process and without an async runtime:
//!
//! - [`server`]: a minimal HTTP/1.1 server ([`MockServer`]) on 127.0.0.1, plain or HTTPS
//!   (rustls with a self-signed [`TlsIdentity`] from rcgen), keep-alive, a request log, and
//!   fault injection ([`Fault`], [`Action`], [`MockServer::set_override`],
//!   [`MockServer::push_once`], [`MockServer::on_nth`]);
//! - [`icewarp`]: the IceWarp administrative API ([`IcewarpServer`], [`IcewarpData`]);
//! - [`appint`]: the Application Integration protocol ([`AppIntServer`], [`AppIntData`]);
//! - [`hostile`]: addresses that are no HTTP server at all (a black hole, a reset after
//!   connecting), for a client's transport failures;
//! - [`http_client`]: a tiny blocking HTTP/1.1 client, for this crate's self-tests and for
//!   tests that want to poke a mock by hand.
//!
//! ```no_run
//! use mock_directory::{IcewarpData, IcewarpServer};
//! let iw = IcewarpServer::start(IcewarpData::demo().page_cap(1), None)?;
//! // configure the client with iw.url() ("http://127.0.0.1:PORT/icewarpapi/"), run it, then:
//! let names = iw.mock.command_names();
//! let raw = iw.server.requests();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The `dircache-demo-directory` binary serves [`IcewarpData::demo`] (or [`AppIntData::demo`]).

pub mod appint;
pub mod hostile;
pub mod http_client;
pub mod icewarp;
pub mod server;
pub mod tls;
mod xml;

use thiserror::Error;

pub use appint::{AppIntData, AppIntMock, AppIntRequest, AppIntServer, AppIntUser, JsonField};
pub use icewarp::{
    Account, Command, Domain, IcewarpData, IcewarpMock, IcewarpServer, IcewarpVersion,
};
pub use server::{Action, Fault, Handler, MockServer, RecordedRequest, Request, Response};
pub use tls::TlsIdentity;

/// Errors of this crate's set-up functions (never of serving: bad requests get HTTP answers).
#[derive(Debug, Error)]
pub enum MockError {
    #[error("certificate generation failed: {0}")]
    Cert(String),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(String),
}
