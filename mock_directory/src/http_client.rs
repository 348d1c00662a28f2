//! A tiny blocking HTTP/1.1 client for tests: one connection, requests one after another
//! (keep-alive), `Content-Length`, chunked and close-delimited bodies, optional TLS trusting
//! one [`TlsIdentity`]. Not a general-purpose client: no redirects, no proxies, no pooling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::{MockError, TlsIdentity};

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

enum ClientStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.read(buf),
            ClientStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.flush(),
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

/// One client connection.
pub struct Connection {
    reader: BufReader<ClientStream>,
    host: String,
    /// Set once the server said `Connection: close` or ended a body by closing.
    closed: bool,
}

fn http_err(what: impl Into<String>) -> MockError {
    MockError::Http(what.into())
}

/// Splits `http(s)://host:port[/path]` into (tls, host, port, path).
pub fn split_url(url: &str) -> Result<(bool, String, u16, String), MockError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(http_err(format!("not an http(s) URL: {url}")));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => {
            (h.to_string(), p.parse().map_err(|_| http_err(format!("bad port in {url}")))?)
        }
        _ => (authority.to_string(), if tls { 443 } else { 80 }),
    };
    Ok((tls, host, port, path.to_string()))
}

impl Connection {
    /// Connects to the server of `url` (`http://127.0.0.1:PORT…` or `https://…`). For HTTPS,
    /// `trust` is the only certificate accepted (`None`: nothing is, so the handshake fails).
    pub fn open(url: &str, trust: Option<&TlsIdentity>) -> Result<Connection, MockError> {
        let (tls, host, port, _) = split_url(url)?;
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        tcp.set_nodelay(true)?;
        let stream = if tls {
            let config = match trust {
                Some(id) => id.client_config()?,
                None => {
                    let roots = rustls::RootCertStore::empty();
                    std::sync::Arc::new(
                        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                            rustls::crypto::ring::default_provider(),
                        ))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| MockError::Tls(e.to_string()))?
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                    )
                }
            };
            let name = ServerName::try_from(
                host.trim_start_matches('[').trim_end_matches(']').to_string(),
            )
            .map_err(|e| MockError::Tls(e.to_string()))?;
            let conn =
                ClientConnection::new(config, name).map_err(|e| MockError::Tls(e.to_string()))?;
            ClientStream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            ClientStream::Plain(tcp)
        };
        Ok(Connection {
            reader: BufReader::new(stream),
            host: format!("{host}:{port}"),
            closed: false,
        })
    }

    /// Whether the server closed the connection after the last response.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends one request and reads the response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, MockError> {
        let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host).into_bytes();
        for (n, v) in headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        let s = self.reader.get_mut();
        s.write_all(&out)?;
        s.flush()?;
        self.read_response(method == "HEAD")
    }

    /// A POST with this content type.
    pub fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, MockError> {
        self.request("POST", path, &[("Content-Type", content_type)], body)
    }

    fn line(&mut self) -> Result<String, MockError> {
        let mut line = Vec::new();
        let n = self.reader.by_ref().take(1 << 16).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(http_err("connection closed before a complete response"));
        }
        if !line.ends_with(b"\n") {
            return Err(http_err("truncated or overlong line"));
        }
        while line.ends_with(b"\n") || line.ends_with(b"\r") {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_response(&mut self, head_only: bool) -> Result<HttpResponse, MockError> {
        let (status, headers) = loop {
            let status_line = self.line()?;
            let mut parts = status_line.splitn(3, ' ');
            let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
                return Err(http_err(format!("bad status line {status_line:?}")));
            };
            if !version.starts_with("HTTP/1.") {
                return Err(http_err(format!("bad status line {status_line:?}")));
            }
            let status: u16 = code.parse().map_err(|_| http_err(format!("bad status {code:?}")))?;
            let mut headers = Vec::new();
            loop {
                let l = self.line()?;
                if l.is_empty() {
                    break;
                }
                let (n, v) =
                    l.split_once(':').ok_or_else(|| http_err(format!("bad header {l:?}")))?;
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            if status != 100 {
                break (status, headers);
            }
        };
        let mut resp = HttpResponse { status, headers, body: Vec::new() };
        let close = resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if head_only || status == 204 || status == 304 {
            self.closed = close;
            return Ok(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let size_line = self.line()?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| http_err(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    while !self.line()?.is_empty() {}
                    break;
                }
                let start = resp.body.len();
                resp.body.resize(start + size, 0);
                self.reader
                    .read_exact(&mut resp.body[start..])
                    .map_err(|e| http_err(format!("chunked body truncated: {e}")))?;
                if !self.line()?.is_empty() {
                    return Err(http_err("bad chunk framing"));
                }
            }
            self.closed = close;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize =
                len.parse().map_err(|_| http_err(format!("bad Content-Length {len:?}")))?;
            resp.body = vec![0; len];
            let mut got = 0;
            while got < len {
                match self.reader.read(&mut resp.body[got..]) {
                    Ok(0) => return Err(http_err(format!("body truncated: {got} of {len} bytes"))),
                    Ok(n) => got += n,
                    Err(e) => {
                        return Err(http_err(format!("body truncated: {got} of {len} bytes: {e}")))
                    }
                }
            }
            self.closed = close;
        } else {
            self.reader.read_to_end(&mut resp.body)?;
            self.closed = true;
        }
        Ok(resp)
    }
}

/// Sends one POST on a fresh connection to `url` (its path is used) and reads the response.
pub fn post(
    url: &str,
    trust: Option<&TlsIdentity>,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, MockError> {
    let (_, _, _, path) = split_url(url)?;
    let mut conn = Connection::open(url, trust)?;
    let mut all = vec![("Content-Type", content_type)];
    all.extend_from_slice(headers);
    conn.request("POST", &path, &all, body)
}
