//! A minimal HTTP/1.1 server for tests: one thread per connection (at most
//! [`MAX_CONNECTIONS`] at a time), keep-alive, optional TLS (rustls), a log of every request,
//! an injected per-request latency, and fault injection.
//!
//! What it does:
//! - requests with a `Content-Length` body (at most [`MAX_BODY`] bytes, else `413`) or a
//!   `chunked` body; `Expect: 100-continue` is answered; several requests per connection
//!   (HTTP/1.1 keep-alive, unless the client sends `Connection: close` or speaks HTTP/1.0
//!   without `keep-alive`);
//! - every response carries `Content-Length`, unless its [`Fault`] says otherwise;
//! - bad input (a malformed request line or header, a head over 64 KiB, a bad length) gets a
//!   `400`/`413`/`431`/`501` answer and the connection is closed: nothing here panics on input.
//!
//! How a request is answered, in this order:
//! 1. it is numbered (`Request::index`, from 0, over all connections) and recorded (see
//!    [`MockServer::requests`]; [`MockServer::set_recording`] turns that off for benchmarks);
//! 2. the fault plan is asked: an action registered with [`MockServer::on_nth`] for this
//!    index, else the next one-shot of [`MockServer::push_once`], else the standing one of
//!    [`MockServer::set_override`];
//! 3. an [`Action::Respond`] answers with its response without calling the handler; an
//!    [`Action::Fault`] calls the handler and applies the fault to its response; with no
//!    action the handler's response goes out as it is (with its own `fault`, if it set one);
//! 4. before anything is written, the connection's thread waits the latency set with
//!    [`MockServer::set_latency`] (a network's round trip; each connection waits on its own,
//!    so concurrent requests overlap as they would on a real network).
//!
//! The server stops when the [`MockServer`] is dropped: the accept thread is woken and joined,
//! open connections are shut down (their threads end at once), and delays are cut short.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::tls::TlsIdentity;

mod http;

use self::http::{read_request, write_response, ReadError};

/// The largest request body accepted; a larger `Content-Length` gets `413`.
pub const MAX_BODY: usize = 64 << 20;
/// The largest request head (request line and headers) accepted; a larger one gets `431`.
pub const MAX_HEAD: usize = 64 << 10;
/// Connections served at once; further ones wait in the listen queue until one ends.
pub const MAX_CONNECTIONS: usize = 256;

/// Locks a mutex, ignoring poisoning: a panicking test thread must not take the server down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One HTTP request as the server received it. The same type is what the request log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Position among all requests this server received, from 0 (the index [`MockServer::on_nth`] uses).
    pub index: usize,
    /// Which connection it came on (numbered from 0 per server): two requests with the same
    /// number were sent over one kept-alive connection.
    pub connection: u64,
    /// Whether the connection was TLS.
    pub tls: bool,
    pub method: String,
    /// The request target exactly as sent, query included (e.g. `/icewarpapi/?x=1`).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header names and values in the order sent (names as sent; look up with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header with this name, compared case-insensitively.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// A recorded request (the log keeps the [`Request`] as received).
pub type RecordedRequest = Request;

/// Something a response does besides (or instead of) being sent normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then send the response normally (a tarpit). Cut short when the server stops.
    Delay(Duration),
    /// Read the request, send nothing, close the connection.
    CloseWithoutResponse,
    /// Declare the full `Content-Length`, send only the first `send` bytes of the body, close.
    TruncateBody { send: usize },
    /// Send exactly these bytes as the whole response (status line included), then close.
    Raw(Vec<u8>),
    /// Answer `status` with a `Location` header and an empty body instead.
    Redirect { status: u16, location: String },
    /// Send the body without `Content-Length` (`Connection: close`), ending it by closing the
    /// connection, as an HTTP/1.0 server would.
    CloseDelimited,
    /// Send the body with `Transfer-Encoding: chunked`, in chunks of this size (at least 1).
    Chunked { chunk_size: usize },
    /// Declare the full `Content-Length`, then send the body one byte per `interval` and
    /// close: every read is quick, the whole reply slow. Cut short when the server stops.
    Drip { interval: Duration },
}

/// An HTTP response from a handler or the fault plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Extra headers. `Content-Length`, `Transfer-Encoding` and `Connection` are always set by
    /// the server; any given here are dropped (use [`Fault::Raw`] for odd framing).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fault: Option<Fault>,
    /// Close the connection after this response (`Connection: close`).
    pub close: bool,
}

impl Response {
    /// A response with this status and no body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new(), fault: None, close: false }
    }

    /// `status` with a body of the given content type.
    pub fn with_content(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status).with_header("Content-Type", content_type).with_body(body)
    }

    /// `status` with a `text/plain; charset=utf-8` body.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::with_content(status, "text/plain; charset=utf-8", body.into())
    }

    /// `status` with a `text/html; charset=utf-8` body (a proxy's or web server's error page).
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::with_content(status, "text/html; charset=utf-8", body.into())
    }

    /// `status` with an `application/json` body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::with_content(status, "application/json", body)
    }

    /// A response that is nothing but a fault (e.g. `Response::fault(Fault::CloseWithoutResponse)`).
    pub fn fault(fault: Fault) -> Response {
        Response::new(200).with_fault(fault)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    pub fn with_fault(mut self, fault: Fault) -> Response {
        self.fault = Some(fault);
        self
    }

    /// Close the connection after sending this response.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Answers requests. Implemented for any `Fn(&Request) -> Response + Send + Sync`.
pub trait Handler: Send + Sync {
    fn handle(&self, req: &Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Response + Send + Sync,
{
    fn handle(&self, req: &Request) -> Response {
        self(req)
    }
}

/// What the fault plan does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this response; the handler is not called.
    Respond(Response),
    /// Call the handler, then apply this fault to its response.
    Fault(Fault),
}

impl From<Response> for Action {
    fn from(r: Response) -> Action {
        Action::Respond(r)
    }
}

impl From<Fault> for Action {
    fn from(f: Fault) -> Action {
        Action::Fault(f)
    }
}

#[derive(Default)]
struct Plan {
    always: Option<Action>,
    once: VecDeque<Action>,
    nth: BTreeMap<usize, Action>,
}

impl Plan {
    fn next(&mut self, index: usize) -> Option<Action> {
        if let Some(a) = self.nth.remove(&index) {
            return Some(a);
        }
        if let Some(a) = self.once.pop_front() {
            return Some(a);
        }
        self.always.clone()
    }
}

struct Log {
    next_index: usize,
    recording: bool,
    requests: Vec<Request>,
}

struct Shared {
    handler: Arc<dyn Handler>,
    tls: Option<Arc<ServerConfig>>,
    stop: AtomicBool,
    log: Mutex<Log>,
    plan: Mutex<Plan>,
    next_connection: AtomicU64,
    /// Open connections, so that stopping the server can shut them down.
    connections: Mutex<HashMap<u64, TcpStream>>,
    /// The latency every response waits, in microseconds: uniformly between the two bounds.
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    /// A xorshift state for the latency draws (reproducible runs are not needed: the tests
    /// compare results that must not depend on timing at all).
    latency_rng: AtomicU64,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, in slices, returning early (false) when the server stops.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            thread::sleep((end - now).min(Duration::from_millis(25)));
        }
    }

    /// This request's latency: the configured one, or a draw between its bounds.
    fn latency(&self) -> Duration {
        let min = self.latency_min_us.load(Ordering::Relaxed);
        let max = self.latency_max_us.load(Ordering::Relaxed);
        if max <= min {
            return Duration::from_micros(min);
        }
        let mut x = self.latency_rng.load(Ordering::Relaxed);
        loop {
            let mut next = x;
            next ^= next << 13;
            next ^= next >> 7;
            next ^= next << 17;
            match self.latency_rng.compare_exchange_weak(
                x,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Duration::from_micros(min + next % (max - min + 1)),
                Err(seen) => x = seen,
            }
        }
    }
}

/// A running mock server. Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    identity: Option<TlsIdentity>,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("url", &self.url()).finish()
    }
}

impl MockServer {
    /// Starts a server on `127.0.0.1`, on a free port; HTTPS with `tls`.
    pub fn start(handler: Arc<dyn Handler>, tls: Option<TlsIdentity>) -> io::Result<MockServer> {
        MockServer::start_on((Ipv4Addr::LOCALHOST, 0), handler, tls)
    }

    /// Starts a server on the given address (port 0 = any free port).
    pub fn start_on(
        addr: impl ToSocketAddrs,
        handler: Arc<dyn Handler>,
        tls: Option<TlsIdentity>,
    ) -> io::Result<MockServer> {
        let tls_config = match &tls {
            Some(identity) => Some(identity.server_config().map_err(io::Error::other)?),
            None => None,
        };
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler,
            tls: tls_config,
            stop: AtomicBool::new(false),
            log: Mutex::new(Log { next_index: 0, recording: true, requests: Vec::new() }),
            plan: Mutex::new(Plan::default()),
            next_connection: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
            latency_min_us: AtomicU64::new(0),
            latency_max_us: AtomicU64::new(0),
            latency_rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("mock-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(MockServer { addr, identity: tls, shared, accept_thread: Some(accept_thread) })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        let scheme = if self.identity.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The TLS identity the server presents, if it is HTTPS.
    pub fn tls_identity(&self) -> Option<&TlsIdentity> {
        self.identity.as_ref()
    }

    /// Every request received so far (while recording), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).requests.clone()
    }

    /// How many requests the server received (recorded or not).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).next_index
    }

    /// How many connections were accepted.
    pub fn connection_count(&self) -> u64 {
        self.shared.next_connection.load(Ordering::SeqCst)
    }

    /// Forgets the recorded requests (the numbering goes on).
    pub fn clear_requests(&self) {
        lock(&self.shared.log).requests.clear();
    }

    /// Turns recording of requests on or off (on by default; off for benchmarks).
    pub fn set_recording(&self, on: bool) {
        lock(&self.shared.log).recording = on;
    }

    /// Every following request gets this action (until [`MockServer::clear_override`]), e.g.
    /// `server.set_override(Response::html(500, "<html>…</html>"))`.
    pub fn set_override(&self, action: impl Into<Action>) {
        lock(&self.shared.plan).always = Some(action.into());
    }

    pub fn clear_override(&self) {
        lock(&self.shared.plan).always = None;
    }

    /// Queues a one-shot action: the next request without an [`MockServer::on_nth`] action
    /// gets it. Several queue up in order.
    pub fn push_once(&self, action: impl Into<Action>) {
        lock(&self.shared.plan).once.push_back(action.into());
    }

    /// The request with this index (see [`Request::index`]; 0 is the first request the
    /// server receives) gets this action.
    pub fn on_nth(&self, index: usize, action: impl Into<Action>) {
        lock(&self.shared.plan).nth.insert(index, action.into());
    }

    /// Removes every planned action (standing, one-shot and per-index).
    pub fn clear_plan(&self) {
        *lock(&self.shared.plan) = Plan::default();
    }

    /// Every response from now on waits `latency` before it is written, as a network's
    /// round trip would add (zero, the default, answers at once). Concurrent requests on
    /// different connections wait side by side.
    pub fn set_latency(&self, latency: Duration) {
        self.set_latency_range(latency, latency);
    }

    /// Every response waits a latency drawn uniformly between `min` and `max` (swapped if
    /// given the other way round): replies to concurrent requests then come back in an
    /// order of their own, as from a loaded server.
    pub fn set_latency_range(&self, min: Duration, max: Duration) {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let (min, max) = (micros(min.min(max)), micros(min.max(max)));
        self.shared.latency_min_us.store(min, Ordering::Relaxed);
        self.shared.latency_max_us.store(max, Ordering::Relaxed);
    }

    /// Stops the server (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        if let Some(t) = self.accept_thread.take() {
            // Without the wake-up connection the accept thread might never return: leave it.
            if woke {
                let _ = t.join();
            }
        }
        for (_, s) in lock(&self.shared.connections).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let tcp = match incoming {
            Ok(s) => s,
            Err(_) => {
                // EMFILE and friends: back off a little instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Bounded: a client opening connections without end gets no more threads.
        while lock(&shared.connections).len() >= MAX_CONNECTIONS && !shared.stopping() {
            thread::sleep(Duration::from_millis(5));
        }
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        let ctl = match tcp.try_clone() {
            Ok(c) => c,
            Err(_) => continue,
        };
        lock(&shared.connections).insert(id, ctl);
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new().name(format!("mock-conn-{id}")).spawn(move || {
            serve_connection(&conn_shared, tcp, id);
            lock(&conn_shared.connections).remove(&id);
        });
        if spawned.is_err() {
            if let Some(s) = lock(&shared.connections).remove(&id) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn send_close_notify(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How a connection ends after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepAlive,
    /// Close cleanly (TLS close_notify, then FIN).
    Close,
    /// Close without close_notify (a cut connection).
    Cut,
}

fn serve_connection(shared: &Shared, tcp: TcpStream, connection: u64) {
    let tls = shared.tls.is_some();
    let stream = match &shared.tls {
        Some(cfg) => match ServerConnection::new(Arc::clone(cfg)) {
            Ok(conn) => Stream::Tls(Box::new(StreamOwned::new(conn, tcp))),
            Err(_) => return,
        },
        None => Stream::Plain(tcp),
    };
    let mut reader = BufReader::with_capacity(16 << 10, stream);
    loop {
        if shared.stopping() {
            return;
        }
        let after = match read_request(&mut reader) {
            Ok(None) => return,
            Err(ReadError::Io) => return,
            Err(ReadError::Answer(status, reason)) => {
                let resp = Response::text(status, format!("{reason}\n")).closing();
                let _ = write_response(shared, reader.get_mut(), resp, false, false);
                After::Close
            }
            Ok(Some(head)) => {
                let req_keep_alive = head.keep_alive;
                let is_head = head.method.eq_ignore_ascii_case("HEAD");
                let req = {
                    let mut log = lock(&shared.log);
                    let index = log.next_index;
                    log.next_index += 1;
                    let req = Request {
                        index,
                        connection,
                        tls,
                        method: head.method,
                        path: head.path,
                        version: head.version,
                        headers: head.headers,
                        body: head.body,
                    };
                    if log.recording {
                        log.requests.push(req.clone());
                    }
                    req
                };
                let action = lock(&shared.plan).next(req.index);
                let resp = match action {
                    Some(Action::Respond(r)) => r,
                    Some(Action::Fault(f)) => shared.handler.handle(&req).with_fault(f),
                    None => shared.handler.handle(&req),
                };
                let latency = shared.latency();
                if !latency.is_zero() && !shared.sleep(latency) {
                    return;
                }
                match write_response(shared, reader.get_mut(), resp, is_head, req_keep_alive) {
                    Ok(a) => a,
                    Err(_) => return,
                }
            }
        };
        match after {
            After::KeepAlive => continue,
            After::Close | After::Cut => {
                let stream = reader.get_mut();
                if after == After::Close {
                    stream.send_close_notify();
                }
                close_gently(shared, stream.tcp());
                return;
            }
        }
    }
}

/// Half-closes and drains what the client still sends, so that the kernel sends FIN rather
/// than RST (an RST could make the client lose the bytes it has not read yet).
fn close_gently(shared: &Shared, tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    if shared.stopping() {
        return;
    }
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut scratch = [0u8; 4096];
    let mut reader = tcp;
    while Instant::now() < deadline && !shared.stopping() {
        match reader.read(&mut scratch) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => break,
        }
    }
}
