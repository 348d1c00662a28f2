//! HTTP/1.1 on one connection: reading a request head and body (`Content-Length` or
//! chunked, with the limits of [`MAX_HEAD`] and [`MAX_BODY`]), and writing a response with
//! its [`Fault`], if any.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::{After, Fault, Response, Shared, Stream, MAX_BODY, MAX_HEAD};

/// A request as read, before it is numbered and logged.
pub(super) struct Head {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) version: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) keep_alive: bool,
}

pub(super) enum ReadError {
    /// The connection failed or closed mid-request: nothing to answer.
    Io,
    /// Answer with this status and reason, then close.
    Answer(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Io
    }
}

/// Reads one line (through `\n`) within the remaining head budget.
fn read_line(r: &mut BufReader<Stream>, budget: &mut usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let n = r.by_ref().take(*budget as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        if n > *budget {
            return Err(ReadError::Answer(431, "request head too large"));
        }
        // EOF in the middle of a line.
        return Err(ReadError::Io);
    }
    *budget -= n;
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(line))
}

pub(super) fn read_request(r: &mut BufReader<Stream>) -> Result<Option<Head>, ReadError> {
    let mut budget = MAX_HEAD;
    // Skip empty lines before the request line (RFC 9112 §2.2).
    let request_line = loop {
        match read_line(r, &mut budget)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let request_line =
        String::from_utf8(request_line).map_err(|_| ReadError::Answer(400, "bad request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Answer(400, "bad request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || path.is_empty() {
        return Err(ReadError::Answer(400, "bad request line"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Answer(505, "HTTP version not supported"));
    }
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(r, &mut budget)? else {
            return Err(ReadError::Io);
        };
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ReadError::Answer(400, "obsolete header folding"));
        }
        let line = String::from_utf8_lossy(&line);
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Answer(400, "bad header line"));
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(ReadError::Answer(400, "bad header name"));
        }
        headers.push((name.to_string(), value.trim_matches([' ', '\t']).to_string()));
    }
    fn values<'a>(
        headers: &'a [(String, String)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
    let header = |name: &'static str| values(&headers, name);
    let connection_tokens: Vec<String> = header("connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let keep_alive = if version == "HTTP/1.1" {
        !connection_tokens.iter().any(|t| t == "close")
    } else {
        connection_tokens.iter().any(|t| t == "keep-alive")
    };
    let chunked = match header("transfer-encoding").last() {
        None => false,
        Some(te)
            if te.to_ascii_lowercase().split(',').map(str::trim).next_back() == Some("chunked") =>
        {
            true
        }
        Some(_) => return Err(ReadError::Answer(501, "transfer coding not supported")),
    };
    let mut length = None;
    for v in header("content-length") {
        let n: usize =
            v.trim().parse().map_err(|_| ReadError::Answer(400, "bad Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(ReadError::Answer(400, "conflicting Content-Length"));
        }
        length = Some(n);
    }
    if chunked && length.is_some() {
        return Err(ReadError::Answer(400, "both Content-Length and chunked"));
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadError::Answer(413, "request body too large"));
    }
    let expects_continue = header("expect").any(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && (chunked || length.is_some_and(|n| n > 0)) {
        let s = r.get_mut();
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        s.flush()?;
    }
    let body = if chunked {
        read_chunked(r)?
    } else {
        let n = length.unwrap_or(0);
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        body
    };
    Ok(Some(Head {
        method: method.to_string(),
        path: path.to_string(),
        version: version.to_string(),
        headers,
        body,
        keep_alive,
    }))
}

fn read_chunked(r: &mut BufReader<Stream>) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let Some(line) = read_line(r, &mut budget)? else {
            return Err(ReadError::Io);
        };
        let line = String::from_utf8_lossy(&line);
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ReadError::Answer(400, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                match read_line(r, &mut budget)? {
                    None => return Err(ReadError::Io),
                    Some(l) if l.is_empty() => return Ok(body),
                    Some(_) => continue,
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::Answer(413, "request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Answer(400, "bad chunk framing"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn head_bytes(resp: &Response, framing: &[(&str, String)], close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    for (name, value) in &resp.headers {
        if ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        // Never let a CR/LF in a value split the head.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    for (name, value) in framing {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(if close {
        b"Connection: close\r\n"
    } else {
        b"Connection: keep-alive\r\n"
    });
    out.extend_from_slice(b"\r\n");
    out
}

pub(super) fn write_response(
    shared: &Shared,
    s: &mut Stream,
    mut resp: Response,
    is_head: bool,
    keep_alive: bool,
) -> io::Result<After> {
    let mut fault = resp.fault.take();
    if let Some(Fault::Delay(d)) = fault {
        if !shared.sleep(d) {
            return Ok(After::Cut);
        }
        fault = None;
    }
    if let Some(Fault::Redirect { status, location }) = &fault {
        resp = Response::new(*status).with_header("Location", location);
        fault = None;
    }
    let close = resp.close || !keep_alive;
    let after = if close { After::Close } else { After::KeepAlive };
    let body: &[u8] = if is_head { &[] } else { &resp.body };
    match fault {
        None | Some(Fault::Delay(_)) | Some(Fault::Redirect { .. }) => {
            let mut out =
                head_bytes(&resp, &[("Content-Length", resp.body.len().to_string())], close);
            out.extend_from_slice(body);
            s.write_all(&out)?;
            s.flush()?;
            Ok(after)
        }
        Some(Fault::CloseWithoutResponse) => Ok(After::Cut),
        Some(Fault::TruncateBody { send }) => {
            let mut out =
                head_bytes(&resp, &[("Content-Length", resp.body.len().to_string())], close);
            out.extend_from_slice(&body[..send.min(body.len())]);
            s.write_all(&out)?;
            s.flush()?;
            Ok(After::Cut)
        }
        Some(Fault::Raw(bytes)) => {
            s.write_all(&bytes)?;
            s.flush()?;
            Ok(After::Close)
        }
        Some(Fault::CloseDelimited) => {
            let mut out = head_bytes(&resp, &[], true);
            out.extend_from_slice(body);
            s.write_all(&out)?;
            s.flush()?;
            Ok(After::Close)
        }
        Some(Fault::Chunked { chunk_size }) => {
            let mut out = head_bytes(&resp, &[("Transfer-Encoding", "chunked".to_string())], close);
            if !is_head {
                for chunk in body.chunks(chunk_size.max(1)) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            s.write_all(&out)?;
            s.flush()?;
            Ok(after)
        }
        Some(Fault::Drip { interval }) => {
            let length = [("Content-Length", resp.body.len().to_string())];
            s.write_all(&head_bytes(&resp, &length, true))?;
            s.flush()?;
            for byte in body.chunks(1) {
                if !shared.sleep(interval) {
                    return Ok(After::Cut);
                }
                s.write_all(byte)?;
                s.flush()?;
            }
            Ok(After::Close)
        }
    }
}
