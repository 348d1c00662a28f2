//! A throwaway HTTP/1.1 server on 127.0.0.1 for the unit tests of this module: either a
//! handler that answers parsed requests (keep-alive, as reqwest reuses connections), or
//! raw access to each accepted stream for canned bytes, stalls and TLS; and a
//! [`BlackHole`], an address that never completes a connection.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn status(status: u16, body: &str) -> Response {
        Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() }
    }
}

pub struct TestServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Each accepted connection is handed to `serve` on its own thread.
    pub fn raw<F>(serve: F) -> TestServer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let serve = Arc::new(serve);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let serve = serve.clone();
                thread::spawn(move || serve(stream));
            }
        });
        TestServer { port, stop }
    }

    /// Answers every request on a connection with `handler`, until the client closes it.
    pub fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        TestServer::raw(move |stream| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut stream = stream;
            while let Some(request) = read_request(&mut reader) {
                let response = handler(&request);
                if write_response(&mut stream, &response).is_err() {
                    return;
                }
            }
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A port on 127.0.0.1 where connecting never completes, as with a firewall that drops
/// packets or a host that is down: a listener that never accepts, its accept queue filled
/// first, after which the kernel drops every further SYN. Works as long as it lives.
pub struct BlackHole {
    pub port: u16,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    pub fn new() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // The queue's length is the listener's backlog (std asks for 128); it is full when a
        // connection attempt times out.
        while queued.len() < 1000 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    return BlackHole { port: address.port(), _listener: listener, _queued: queued }
                }
                Err(err) => panic!("filling the accept queue of {address}: {err}"),
            }
        }
        panic!("the accept queue of {address} did not fill within 1000 connections")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

pub fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

pub fn write_response(stream: &mut impl Write, response: &Response) -> std::io::Result<()> {
    let mut head =
        format!("HTTP/1.1 {} Test\r\nContent-Length: {}\r\n", response.status, response.body.len());
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}
