//! Addresses that do not behave like any HTTP server, for a client's transport failures:
//!
//! - [`BlackHole`]: connecting never completes, as behind a firewall that drops packets;
//! - [`ResetAfterConnect`]: the connection is made, then reset as soon as the client speaks
//!   (in the middle of a request, or of a TLS handshake).
//!
//! What goes wrong within an HTTP exchange (silence, a dripping, truncated or endless body, a
//! redirect) is a [`crate::Fault`] of a [`crate::MockServer`]; a certificate for another host
//! name is a [`crate::TlsIdentity`] made for that name.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How many connections [`BlackHole::new`] queues at most before giving up.
const MAX_QUEUED: usize = 1000;

/// A port on 127.0.0.1 where connecting never completes, as with a firewall that drops
/// packets or a host that is down: a listener that never accepts, its accept queue filled
/// first, after which the kernel drops every further SYN. Works as long as it lives.
pub struct BlackHole {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    pub fn new() -> io::Result<BlackHole> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let mut queued = Vec::new();
        // The queue's length is the listener's backlog (std asks for 128); it is full when a
        // connection attempt times out.
        while queued.len() < MAX_QUEUED {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    return Ok(BlackHole { addr, _listener: listener, _queued: queued })
                }
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::other(format!(
            "the accept queue of {addr} did not fill within {MAX_QUEUED} connections"
        )))
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, as [`crate::MockServer::url`]).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A port on 127.0.0.1 that accepts every connection, reads the first few bytes the client
/// sends and closes it with the rest unread, which makes the kernel answer with a reset: the
/// connection breaks after it was made. Stops when dropped.
pub struct ResetAfterConnect {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl ResetAfterConnect {
    pub fn start() -> io::Result<ResetAfterConnect> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept_thread = thread::Builder::new()
            .name(format!("mock-reset-{}", addr.port()))
            .spawn(move || reset_every_connection(&listener, &stopping))?;
        Ok(ResetAfterConnect { addr, stop, accept_thread: Some(accept_thread) })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`; the same port answers `https://` alike (the reset comes in
    /// the middle of the TLS handshake).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ResetAfterConnect {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok();
        if let Some(thread) = self.accept_thread.take() {
            if woke {
                let _ = thread.join();
            }
        }
    }
}

fn reset_every_connection(listener: &TcpListener, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = thread::Builder::new().spawn(move || read_a_little_and_reset(stream));
    }
}

fn read_a_little_and_reset(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // Any request line or TLS ClientHello is longer: closing leaves input unread.
    let mut start = [0u8; 8];
    let _ = stream.read_exact(&mut start);
}
