//! The HTTP(S) transport both directory clients share: one POST, one bounded reply.
//!
//! Everything that could let the caller's environment or the server steer the request
//! somewhere else is off: no proxy from the environment (inside PAM the user calling `su`
//! controls it), no CA bundle from `SSL_CERT_FILE`, redirects only to the same origin. The
//! reply is read through a hard cap so that a hostile or broken server cannot exhaust memory,
//! and every request has one deadline for the whole exchange (connect, TLS, sending, the
//! whole reply) besides a shorter one for connecting, so that a server dripping a byte at a
//! time cannot hold a login for longer than `timeout_secs`.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::redirect;
use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use zeroize::Zeroizing;

use super::DirectoryError;
use crate::config::{DirectoryConfig, ReplyLimit};

/// Redirects followed at most; more is a loop or a misconfiguration.
const MAX_REDIRECTS: usize = 3;

/// The most the answer to a password check may take: a real one is a few hundred bytes.
/// Far below the listing cap, so that a login (inside sshd, one process per connection)
/// never buffers more than this, whatever the server sends.
pub const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// The most one read of a reply takes in (each read returns what has arrived).
const READ_CHUNK: usize = 64 << 10;

/// The system CA bundles of the common distributions, first match wins. Fixed paths on
/// purpose: `SSL_CERT_FILE`/`SSL_CERT_DIR` come from the environment, which a user running
/// a setuid PAM client controls, and could make dircache trust the user's own CA.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL, Fedora, CentOS
    "/etc/pki/tls/certs/ca-bundle.crt",   // older RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE, SLES
    "/etc/ssl/cert.pem",                  // Alpine
];

/// HTTP Basic credentials. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a GET brought back: the status, the headers a snapshot pull looks at, and for a
/// 2xx reply its body, or None when it was longer than the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetReply {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
}

/// One endpoint, one configured client. Made per [`super::Directory`] object, never
/// shared or static: a client made before `fork()` hangs in the child.
#[derive(Debug)]
pub struct HttpClient {
    client: Client,
    url: Url,
    /// For error messages: the server or URL as configured.
    server: String,
    /// The deadline of one request as a whole.
    timeout_secs: u64,
    connect_timeout_secs: u64,
    reply_limit: ReplyLimit,
    /// Replies are answers to a password check ([`HttpClient::expect_answers`]).
    answers_only: bool,
    credentials: Option<Credentials>,
}

/// The error our redirect policy returns; found again in reqwest's error chain to word
/// the message.
#[derive(Debug)]
struct RedirectRefused(String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for RedirectRefused {}

impl HttpClient {
    /// A client that POSTs to `url`. `server` names the directory in error messages.
    /// Timeout, TLS and size settings come from `directory`.
    pub fn new(
        server: &str,
        url: &str,
        directory: &DirectoryConfig,
        credentials: Option<Credentials>,
    ) -> Result<HttpClient, DirectoryError> {
        let setup_error = |reason: String| DirectoryError::Other {
            server: server.to_string(),
            command: "setup".to_string(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|err| {
            DirectoryError::NotConfigured(format!("the directory URL {url:?} is invalid: {err}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(DirectoryError::NotConfigured(format!(
                "the directory URL {url:?} is not an http:// or https:// URL with a host"
            )));
        }
        // Credentials in the URL would end up in error messages and logs; the URL is not
        // echoed here for the same reason.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DirectoryError::NotConfigured(
                "the directory URL contains a user name or password; put them into \
                 directory.username and directory.password(_file) instead"
                    .to_string(),
            ));
        }

        // Redirects keep the scheme, so a plain-HTTP directory never needs trusted roots (a
        // host without a CA bundle can still talk to it).
        let tls = tls_config(directory, parsed.scheme() == "https").map_err(setup_error)?;
        let origin = origin_of(&parsed);
        let policy = redirect::Policy::custom(move |attempt| {
            let target = attempt.url().to_string();
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(RedirectRefused(format!(
                    "more than {MAX_REDIRECTS} redirects (the last one to {target})"
                )))
            } else if origin_of(attempt.url()) != origin {
                attempt.error(RedirectRefused(format!(
                    "refused to follow the redirect to {target}: only redirects to the same \
                     scheme, host and port are followed; configure the final URL instead"
                )))
            } else {
                attempt.follow()
            }
        });
        // Every request also gets `timeout_secs` as its own timeout (`send`): set on the
        // request, reqwest applies it to the reply body as well, not only to each read.
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(directory.timeout_secs))
            .connect_timeout(Duration::from_secs(directory.connect_timeout_secs()))
            .redirect(policy)
            .user_agent(concat!("dircache/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|err| setup_error(format!("cannot build the HTTP client: {err}")))?;
        Ok(HttpClient {
            client,
            url: parsed,
            server: server.to_string(),
            timeout_secs: directory.timeout_secs,
            connect_timeout_secs: directory.connect_timeout_secs(),
            reply_limit: directory.reply_limit(),
            answers_only: false,
            credentials,
        })
    }

    /// From now on every reply is the answer to a password check, capped at
    /// [`MAX_ANSWER_BYTES`] (or the configured cap, if smaller). For clients made to check
    /// a password, never to list.
    pub fn expect_answers(&mut self) {
        self.answers_only = true;
    }

    /// The URL every request goes to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded`. Values are bytes because a
    /// password need not be UTF-8.
    pub fn post_form(
        &self,
        command: &str,
        fields: &[(&str, &[u8])],
    ) -> Result<Vec<u8>, DirectoryError> {
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(wiped_on_drop(form_encode(fields)));
        self.send(command, request)
    }

    /// POSTs `body` as `text/xml`.
    pub fn post_xml(
        &self,
        command: &str,
        mut body: Zeroizing<String>,
    ) -> Result<Vec<u8>, DirectoryError> {
        let body = Zeroizing::new(std::mem::take(&mut *body).into_bytes());
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/xml")
            .body(wiped_on_drop(body));
        self.send(command, request)
    }

    /// POSTs `fields` like [`HttpClient::post_form`], but hands the reply to `consume` as a
    /// reader instead of buffering it: a listing of a million users is parsed as it arrives,
    /// never held whole. The reader enforces the same cap and deadline as a buffered reply;
    /// when it stops on one (or the connection breaks), that error is returned, whatever
    /// `consume` made of the cut reply.
    pub fn post_form_streamed<T>(
        &self,
        command: &str,
        fields: &[(&str, &[u8])],
        consume: impl FnOnce(&mut dyn Read) -> T,
    ) -> Result<T, DirectoryError> {
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(wiped_on_drop(form_encode(fields)));
        let mut reply = self.start(command, request)?;
        let consumed = consume(&mut reply);
        match reply.failure {
            Some(err) => Err(err),
            None => Ok(consumed),
        }
    }

    fn send(&self, command: &str, request: RequestBuilder) -> Result<Vec<u8>, DirectoryError> {
        let mut reply = self.start(command, request)?;
        // Sized once when the length is known (one byte more, to see the reply end), so that
        // the buffer never holds slack. The reply is read straight into it, cleared only a
        // chunk ahead of what has arrived: a listing makes one request per account, and a
        // separate 64 KiB chunk, allocated and cleared for each 1 KB reply, then copied, was
        // a cost per account; and a server announcing more than it sends gets no memory
        // touched for the difference.
        let mut body: Vec<u8> = Vec::with_capacity(reply.announced.saturating_add(1));
        let mut filled = 0;
        loop {
            if filled == body.len() {
                let room = body.capacity() - filled;
                let ahead = if room > 0 { room.min(READ_CHUNK) } else { READ_CHUNK };
                body.resize(filled + ahead, 0);
            }
            match reply.read(&mut body[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        body.truncate(filled);
        match reply.failure {
            Some(err) => Err(err),
            None => Ok(body),
        }
    }

    /// Sends the request and checks the status and the announced length; the body is read
    /// through the returned [`BoundedReply`].
    fn start<'c>(
        &'c self,
        command: &str,
        request: RequestBuilder,
    ) -> Result<BoundedReply<'c>, DirectoryError> {
        let request = match &self.credentials {
            Some(credentials) => {
                let header = basic_authorization(credentials).ok_or_else(|| {
                    DirectoryError::NotConfigured(
                        "directory.username and the password do not fit in an HTTP header"
                            .to_string(),
                    )
                })?;
                request.header(AUTHORIZATION, header)
            }
            None => request,
        };
        let total = Duration::from_secs(self.timeout_secs);
        let deadline = Instant::now() + total;
        let response = request
            .timeout(total)
            .send()
            .map_err(|err| self.map_error(command, &err.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DirectoryError::HttpStatus {
                server: self.server.clone(),
                command: command.to_string(),
                status: status.as_u16(),
            });
        }
        let answer_cap = self.answers_only && MAX_ANSWER_BYTES < self.reply_limit.bytes;
        let limit = if answer_cap { MAX_ANSWER_BYTES } else { self.reply_limit.bytes };
        let reply = BoundedReply {
            client: self,
            command: command.to_string(),
            // One byte more than allowed tells "exactly at the cap" from "over it" without
            // reading an oversized reply into memory.
            body: response.take(limit.saturating_add(1)),
            limit,
            answer_cap,
            deadline,
            read: 0,
            announced: 0,
            failure: None,
        };
        // An announced length over the cap is refused before reading anything.
        let announced = reply.body.get_ref().content_length();
        if announced.is_some_and(|length| length > limit) {
            return Err(reply.too_large());
        }
        let announced = announced.map_or(0, |length| usize::try_from(length).unwrap_or(0));
        Ok(BoundedReply { announced, ..reply })
    }

    /// The body of `response`, or None when it is longer than `limit`. Never holds more than
    /// `limit` + 1 bytes, whatever the server sends, and stops at `deadline`.
    fn read_capped(
        &self,
        command: &str,
        response: impl Read,
        announced: Option<u64>,
        limit: u64,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        // Sized once when the length is known, so that the buffer never holds slack.
        let mut body =
            Vec::with_capacity(announced.map_or(0, |length| usize::try_from(length).unwrap_or(0)));
        // One byte more than allowed tells "exactly at the cap" from "over it" without
        // reading an oversized reply into memory.
        let mut reply = response.take(limit.saturating_add(1));
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            // reqwest ends the body at the request's timeout; looked at after every read as
            // well, so that the deadline holds however the server spaces its bytes.
            if Instant::now() >= deadline {
                return Err(self.timed_out(command));
            }
            match reply.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => body.extend_from_slice(&chunk[..read]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.map_error(command, &err)),
            }
        }
        if u64::try_from(body.len()).map_or(true, |length| length > limit) {
            return Ok(None);
        }
        Ok(Some(body))
    }

    /// GETs `url` (which must share the client's origin: the snapshot's files live under
    /// its URL) with extra request `headers` (conditional GET). Any status comes back as a
    /// [`GetReply`]; only a 2xx body is read, through `limit` (None: over it). Same
    /// deadlines, TLS rules and redirect policy as the directory's requests.
    pub fn get(
        &self,
        command: &str,
        url: Url,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<GetReply, DirectoryError> {
        if origin_of(&url) != origin_of(&self.url) {
            return Err(DirectoryError::NotConfigured(format!(
                "{url} is not on the server of {}",
                self.url
            )));
        }
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let total = Duration::from_secs(self.timeout_secs);
        let deadline = Instant::now() + total;
        let response = request
            .timeout(total)
            .send()
            .map_err(|err| self.map_error(command, &err.without_url()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let mut reply = GetReply {
            status,
            etag: header("etag"),
            last_modified: header("last-modified"),
            retry_after: header("retry-after"),
            content_type: header("content-type"),
            body: None,
        };
        if !response.status().is_success() {
            return Ok(reply);
        }
        let announced = response.content_length();
        if announced.is_some_and(|length| length > limit) {
            return Ok(reply);
        }
        reply.body = self.read_capped(command, response, announced, limit, deadline)?;
        Ok(reply)
    }

    fn timed_out(&self, command: &str) -> DirectoryError {
        DirectoryError::Timeout {
            server: self.server.clone(),
            command: command.to_string(),
            secs: self.timeout_secs,
        }
    }

    fn map_error(&self, command: &str, err: &(dyn StdError + 'static)) -> DirectoryError {
        let error = DirectoryError::from_transport(
            &self.server,
            command,
            (self.timeout_secs, self.connect_timeout_secs),
            err,
        );
        // reqwest's connect timeout covers the TLS handshake too: a server that accepts the
        // TCP connection and then stalls the handshake would pass for an unreachable one,
        // and open offline credentials. Whether TCP alone connects tells the two apart.
        if self.url.scheme() == "https" && connect_timed_out(err) && self.accepts_tcp() {
            let secs = self.connect_timeout_secs;
            return DirectoryError::Tls {
                server: self.server.clone(),
                command: command.to_string(),
                reason: format!(
                    "the TLS handshake did not complete within {secs} s \
                     (directory.connect_timeout_secs) although the server accepts TCP \
                     connections"
                ),
            };
        }
        error
    }

    /// Whether a plain TCP connection to the directory's address comes within the connect
    /// timeout.
    fn accepts_tcp(&self) -> bool {
        let timeout = Duration::from_secs(self.connect_timeout_secs);
        let Ok(addresses) = self.url.socket_addrs(|| None) else {
            return false;
        };
        addresses.iter().any(|address| TcpStream::connect_timeout(address, timeout).is_ok())
    }
}

/// Scheme, host and port: what a redirect must keep.
/// The body of a reply, read within the cap and the deadline. The first failure ends it
/// and is kept in `failure` (an I/O error cannot carry it through a parser).
struct BoundedReply<'c> {
    client: &'c HttpClient,
    command: String,
    body: io::Take<reqwest::blocking::Response>,
    limit: u64,
    /// The cap is the one for a password check's answer, not `max_reply_mib`.
    answer_cap: bool,
    deadline: Instant,
    read: u64,
    /// The length the server announced (0 when it did not), for sizing a buffer.
    announced: usize,
    failure: Option<DirectoryError>,
}

impl BoundedReply<'_> {
    fn too_large(&self) -> DirectoryError {
        let (server, command) = (self.client.server.clone(), self.command.clone());
        if self.answer_cap {
            let reason = format!(
                "the answer to a password check is larger than {MAX_ANSWER_BYTES} bytes \
                 (a real one takes a few hundred)"
            );
            DirectoryError::Malformed { server, command, reason }
        } else {
            let key = self.client.reply_limit.key;
            DirectoryError::TooLarge { server, command, key, limit: self.limit }
        }
    }

    fn fail(&mut self, err: DirectoryError) -> io::Error {
        let message = err.to_string();
        self.failure.get_or_insert(err);
        io::Error::other(message)
    }
}

impl Read for BoundedReply<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("the reply was already refused"));
        }
        // reqwest ends the body at the request's timeout; looked at before every read as
        // well, so that the deadline holds however the server spaces its bytes.
        if Instant::now() >= self.deadline {
            let err = self.client.timed_out(&self.command);
            return Err(self.fail(err));
        }
        loop {
            match self.body.read(buf) {
                Ok(read) => {
                    self.read = self.read.saturating_add(read as u64);
                    if self.read > self.limit {
                        let err = self.too_large();
                        return Err(self.fail(err));
                    }
                    return Ok(read);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let err = self.client.map_error(&self.command, &err);
                    return Err(self.fail(err));
                }
            }
        }
    }
}

fn origin_of(url: &Url) -> (String, Option<String>, Option<u16>) {
    (url.scheme().to_string(), url.host_str().map(str::to_string), url.port_or_known_default())
}

/// `Basic base64(user:password)`, built in buffers of their final size and wiped when
/// reqwest drops the request (reqwest's own `basic_auth` leaves an unwiped copy).
fn basic_authorization(credentials: &Credentials) -> Option<HeaderValue> {
    const PREFIX: &[u8] = b"Basic ";
    let (user, password) = (credentials.username.as_bytes(), credentials.password.as_bytes());
    let mut plain = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
    plain.extend_from_slice(user);
    plain.push(b':');
    plain.extend_from_slice(password);
    let encoded = base64::encoded_len(plain.len(), true)?;
    let mut header = Zeroizing::new(vec![0u8; PREFIX.len() + encoded]);
    header[..PREFIX.len()].copy_from_slice(PREFIX);
    STANDARD.encode_slice(plain.as_slice(), &mut header[PREFIX.len()..]).ok()?;
    let mut value = HeaderValue::from_maybe_shared(Bytes::from_owner(header)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A request body that reqwest owns until the request is done and that is wiped then: the
/// body may hold a password. (Copies in hyper's and rustls' own buffers are outside our
/// reach; see SECURITY.md.)
fn wiped_on_drop(body: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(body)
}

/// `application/x-www-form-urlencoded` by hand, byte by byte, so that a password that is
/// not UTF-8 arrives exactly. Only unreserved bytes stay literal; everything else
/// (including space, `+`, `&`, `=`, `%`, NUL and non-ASCII) becomes `%XX`.
/// The body is sized up front for the worst case (every byte percent-encoded) so that it
/// never grows: growing would free a copy of a password without wiping it.
pub fn form_encode(fields: &[(&str, &[u8])]) -> Zeroizing<Vec<u8>> {
    let worst = fields.iter().fold(0usize, |total, (name, value)| {
        total
            .saturating_add(name.len().saturating_add(value.len()).saturating_mul(3))
            .saturating_add(2)
    });
    let mut out = Zeroizing::new(Vec::with_capacity(worst));
    for (index, (name, value)) in fields.iter().enumerate() {
        if index > 0 {
            out.push(b'&');
        }
        percent_encode_into(&mut out, name.as_bytes());
        out.push(b'=');
        percent_encode_into(&mut out, value);
    }
    out
}

fn percent_encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'*') {
            out.push(byte);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        }
    }
}

/// Every error in `err`'s chain, including the ones an `io::Error` wraps (its `source()`
/// skips the wrapped error itself, which is where rustls and reqwest put theirs).
fn error_chain<'a>(err: &'a (dyn StdError + 'static), out: &mut Vec<&'a (dyn StdError + 'static)>) {
    let mut current = Some(err);
    // Bounded: a chain is short, and this must terminate whatever a library does.
    while let Some(err) = current {
        if out.len() >= 32 {
            return;
        }
        out.push(err);
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            let inner: &(dyn StdError + 'static) = inner;
            error_chain(inner, out);
            return;
        }
        current = err.source();
    }
}

impl DirectoryError {
    /// The `DirectoryError` a transport error stands for, found by walking its source
    /// chain. Only these are [`DirectoryError::Connect`] (the one kind that lets PAM use
    /// offline credentials): while connecting, the connection was refused, the host or
    /// network was unreachable, the name did not resolve, or no connection came within
    /// `connect_timeout_secs`. A TLS error is looked for first, because reqwest reports a
    /// failed handshake as a connect error too; anything else that breaks a connection once
    /// made (a reset, an early close, in the handshake or later) is
    /// [`DirectoryError::Transport`]; the overall deadline is [`DirectoryError::Timeout`].
    pub(crate) fn from_transport(
        server: &str,
        command: &str,
        (secs, connect_secs): (u64, u64),
        err: &(dyn StdError + 'static),
    ) -> DirectoryError {
        let mut chain = Vec::new();
        error_chain(err, &mut chain);
        let mut messages: Vec<String> = Vec::new();
        for err in &chain {
            let message = err.to_string();
            // Wrappers often repeat their source's message; say each thing once.
            if !messages.iter().any(|seen| seen.contains(&message)) {
                messages.push(message);
            }
        }
        let reason = messages.join(": ");
        let server = server.to_string();
        let command = command.to_string();

        if let Some(refused) = chain.iter().find_map(|err| err.downcast_ref::<RedirectRefused>()) {
            return DirectoryError::Redirect { server, command, reason: refused.0.clone() };
        }
        if chain.iter().any(|err| err.downcast_ref::<rustls::Error>().is_some()) {
            return DirectoryError::Tls { server, command, reason };
        }
        let reqwest = |test: fn(&reqwest::Error) -> bool| {
            chain.iter().any(|err| err.downcast_ref::<reqwest::Error>().is_some_and(test))
        };
        let io_kind = |wanted: &[io::ErrorKind]| {
            chain.iter().any(|err| {
                err.downcast_ref::<io::Error>().is_some_and(|io| wanted.contains(&io.kind()))
            })
        };
        let timed_out = reqwest(reqwest::Error::is_timeout) || io_kind(&[io::ErrorKind::TimedOut]);
        if reqwest(reqwest::Error::is_connect) {
            if connect_timed_out(err) {
                let reason = format!(
                    "no connection within {connect_secs} s (directory.connect_timeout_secs): \
                     {reason}"
                );
                return DirectoryError::Connect { server, command, reason };
            }
            let unreachable = reqwest(reqwest::Error::is_dns)
                || io_kind(&[
                    io::ErrorKind::ConnectionRefused,
                    io::ErrorKind::HostUnreachable,
                    io::ErrorKind::NetworkUnreachable,
                    io::ErrorKind::NetworkDown,
                    io::ErrorKind::AddrNotAvailable,
                ]);
            return if unreachable {
                DirectoryError::Connect { server, command, reason }
            } else {
                DirectoryError::Transport { server, command, reason }
            };
        }
        if timed_out {
            return DirectoryError::Timeout { server, command, secs };
        }
        DirectoryError::Transport { server, command, reason }
    }
}

/// Whether `err` is reqwest giving up on connecting (TCP and, for https, the TLS handshake)
/// within the connect timeout.
fn connect_timed_out(err: &(dyn StdError + 'static)) -> bool {
    let mut chain = Vec::new();
    error_chain(err, &mut chain);
    let reqwest = |test: fn(&reqwest::Error) -> bool| {
        chain.iter().any(|err| err.downcast_ref::<reqwest::Error>().is_some_and(test))
    };
    let io_timeout = chain.iter().any(|err| {
        err.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    });
    reqwest(reqwest::Error::is_connect) && (reqwest(reqwest::Error::is_timeout) || io_timeout)
}

/// The rustls configuration, built here rather than by reqwest so that the `ring`
/// provider is passed explicitly (no process-wide default is installed: the PAM module
/// lives inside other programs) and the trusted roots are exactly the system bundle plus
/// `ca_file`.
fn tls_config(directory: &DirectoryConfig, https: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("cannot set up TLS: {err}"))?;
    let mut config = if directory.ignore_ssl_warnings {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(trusted_roots(directory, https)?).with_no_client_auth()
    };
    // reqwest is built without HTTP/2; offering only HTTP/1.1 keeps ALPN consistent.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn trusted_roots(directory: &DirectoryConfig, required: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if let Some(bundle) = SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|path| path.is_file()) {
        // A single unreadable or odd system certificate must not break every connection;
        // the ones that parse are used.
        if let Ok(certificates) = CertificateDer::pem_file_iter(bundle) {
            roots.add_parsable_certificates(certificates.filter_map(Result::ok));
        }
    }
    // The administrator named this file on purpose: every problem with it is an error,
    // including who could have written it.
    let ca_file = directory.open_ca_file().map_err(|err| err.to_string())?;
    if let (Some(file), Some(path)) = (ca_file, directory.ca_file.as_deref()) {
        let shown = path.display();
        let certificates = CertificateDer::pem_reader_iter(file);
        let mut added = 0_usize;
        for certificate in certificates {
            let certificate = certificate
                .map_err(|err| format!("directory.ca_file {shown} is not valid PEM: {err}"))?;
            roots.add(certificate).map_err(|err| {
                format!("directory.ca_file {shown} holds a bad certificate: {err}")
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "directory.ca_file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
    }
    if roots.is_empty() && required {
        return Err(format!(
            "no trusted CA certificates: none of {} exists or holds certificates; install the \
             ca-certificates package or set directory.ca_file",
            SYSTEM_CA_BUNDLES.join(", ")
        ));
    }
    Ok(roots)
}

/// `ignore_ssl_warnings = true`: any certificate and host name is accepted, but the
/// handshake signatures are still checked, so the connection is at least encrypted to
/// whoever holds the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
