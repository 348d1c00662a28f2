//! Self-tests of the HTTP server (keep-alive, faults, limits, shutdown) and of the
//! Application Integration mock.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mock_directory::appint::DEFAULT_CONTENT_TYPE;
use mock_directory::hostile::{BlackHole, ResetAfterConnect};
use mock_directory::http_client::{self, Connection};
use mock_directory::{
    Action, AppIntData, AppIntServer, AppIntUser, Fault, MockServer, Request, Response, TlsIdentity,
};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

fn echo_server() -> MockServer {
    let handler = |req: &Request| {
        Response::text(200, format!("{} {} {}", req.method, req.path, req.body_text()))
    };
    MockServer::start(Arc::new(handler), None).unwrap()
}

fn raw_exchange(server: &MockServer, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn faults_are_observable() {
    let server = echo_server();
    let mut conn = Connection::open(&server.url(), None).unwrap();
    assert_eq!(conn.post("/a", "text/plain", b"one").unwrap().text(), "POST /a one");

    // The next request gets no answer at all; a new connection works again.
    server.push_once(Fault::CloseWithoutResponse);
    assert!(conn.post("/b", "text/plain", b"two").is_err());
    let mut conn = Connection::open(&server.url(), None).unwrap();
    assert_eq!(conn.post("/c", "text/plain", b"three").unwrap().text(), "POST /c three");

    // Request index 3 gets its body ("POST /d four") truncated after 4 of 12 bytes.
    server.on_nth(3, Fault::TruncateBody { send: 4 });
    let err = conn.post("/d", "text/plain", b"four").unwrap_err();
    assert!(err.to_string().contains("body truncated: 4 of 12 bytes"), "{err}");

    // A standing override: an HTML error page for everything, the handler is not called.
    let mut conn = Connection::open(&server.url(), None).unwrap();
    server.set_override(Response::html(500, "<html><body>Internal Server Error</body></html>"));
    for _ in 0..2 {
        let r = conn.post("/e", "text/plain", b"five").unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("Internal Server Error"));
    }
    server.clear_override();

    // Raw bytes, then close.
    server.push_once(Fault::Raw(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<h1>proxy</h1>".to_vec(),
    ));
    let r = conn.post("/f", "text/plain", b"six").unwrap();
    assert_eq!((r.status, r.text().as_str()), (502, "<h1>proxy</h1>"));
    assert!(conn.is_closed());

    // Chunked, close-delimited, redirect, delay.
    let mut conn = Connection::open(&server.url(), None).unwrap();
    server.push_once(Fault::Chunked { chunk_size: 3 });
    let r = conn.post("/g", "text/plain", b"seven").unwrap();
    assert_eq!(
        (r.header("transfer-encoding"), r.text().as_str()),
        (Some("chunked"), "POST /g seven")
    );
    assert!(!conn.is_closed());
    server.push_once(Fault::Redirect {
        status: 302,
        location: "https://elsewhere.test/".to_string(),
    });
    let r = conn.post("/h", "text/plain", b"").unwrap();
    assert_eq!((r.status, r.header("location")), (302, Some("https://elsewhere.test/")));
    let t = Instant::now();
    server.push_once(Action::Fault(Fault::Delay(Duration::from_millis(300))));
    assert_eq!(conn.post("/i", "text/plain", b"x").unwrap().text(), "POST /i x");
    assert!(t.elapsed() >= Duration::from_millis(300));
    server.push_once(Fault::CloseDelimited);
    let r = conn.post("/j", "text/plain", b"y").unwrap();
    assert_eq!((r.header("content-length"), r.text().as_str()), (None, "POST /j y"));
    assert!(conn.is_closed());

    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/d", "/e", "/e", "/f", "/g", "/h", "/i", "/j"]);
    assert_eq!(server.request_count(), 11);
}

#[test]
fn a_dripping_reply_comes_whole_unless_the_server_stops() {
    let server = echo_server();
    server.push_once(Fault::Drip { interval: Duration::from_millis(10) });
    let reply = raw_exchange(&server, b"POST /drip HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(
        text.contains("Content-Length: 12\r\n") && text.contains("Connection: close"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nPOST /drip x"), "{text}");

    // A drip that would take hours ends, unfinished, when the server is dropped.
    server.push_once(Fault::Drip { interval: Duration::from_secs(3600) });
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(server);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("GET /slow"), "{rest:?}");
}

#[test]
fn a_black_hole_never_completes_a_connection() {
    let hole = BlackHole::new().unwrap();
    assert_eq!(hole.url(), format!("http://127.0.0.1:{}", hole.port()));
    let addr = ([127, 0, 0, 1], hole.port()).into();
    let err = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
}

#[test]
fn reset_after_connect_breaks_a_connection_that_was_made() {
    let reset = ResetAfterConnect::start().unwrap();
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", reset.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let err = s.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }
    let port = reset.port();
    drop(reset);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_handler_can_answer_with_a_fault() {
    let server = MockServer::start(
        Arc::new(|_: &Request| Response::fault(Fault::CloseWithoutResponse)),
        Some(TlsIdentity::self_signed(&["127.0.0.1"]).unwrap()),
    )
    .unwrap();
    let id = server.tls_identity().unwrap().clone();
    let mut conn = Connection::open(&server.url(), Some(&id)).unwrap();
    assert!(conn.post("/", "text/plain", b"").is_err());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn bad_requests_get_http_errors_not_panics() {
    let server = echo_server();
    let huge =
        raw_exchange(&server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n");
    assert!(huge.starts_with(b"HTTP/1.1 413 "), "{}", String::from_utf8_lossy(&huge));
    let garbage = raw_exchange(&server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    assert!(garbage.starts_with(b"HTTP/1.1 400 "), "{}", String::from_utf8_lossy(&garbage));
    let bad_len = raw_exchange(&server, b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n");
    assert!(bad_len.starts_with(b"HTTP/1.1 400 "));
    let long_head =
        [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; 70_000], b"\r\n\r\n"].concat();
    assert!(raw_exchange(&server, &long_head).starts_with(b"HTTP/1.1 431 "));
    // Chunked request bodies, and pipelined requests with Connection: close on the last.
    let two = raw_exchange(
        &server,
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /y HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&two);
    assert!(text.contains("POST /x abcde") && text.ends_with("GET /y "), "{text}");
    assert_eq!(server.requests().len(), 2);
    // HTTP/1.0 without keep-alive is closed after one answer.
    let one = raw_exchange(&server, b"GET /z HTTP/1.0\r\n\r\n");
    assert!(String::from_utf8_lossy(&one).contains("Connection: close"));
}

#[test]
fn dropping_the_server_stops_everything() {
    let server = echo_server();
    let addr = server.addr();
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    assert!(idle.read(&mut buf).unwrap() > 0);
    // A request stuck in a long delay.
    server.set_override(Fault::Delay(Duration::from_secs(600)));
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    waiting.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(server);
    assert!(t.elapsed() < Duration::from_secs(3));
    // Both connections are closed, and nobody listens any more.
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
    assert_eq!(waiting.read(&mut buf).unwrap_or(0), 0);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn many_servers_come_and_go() {
    for _ in 0..200 {
        let server = echo_server();
        let mut conn = Connection::open(&server.url(), None).unwrap();
        assert_eq!(conn.post("/", "text/plain", b"x").unwrap().status, 200);
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn appint_basic_auth() {
    let app =
        AppIntServer::start(AppIntData::demo().basic_auth("archive", "s3cret:x"), None).unwrap();
    let url = app.url();
    assert!(url.ends_with("/mailstore-integration/index.php"));
    let r = http_client::post(&url, None, FORM, &[], b"cmd=list").unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic "));
    let r = http_client::post(
        &url,
        None,
        FORM,
        &[("Authorization", &basic("archive", "wrong"))],
        b"cmd=list",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    let r = http_client::post(
        &url,
        None,
        FORM,
        &[("Authorization", &basic("archive", "s3cret:x"))],
        b"cmd=list",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let reqs = app.mock.requests();
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [401, 401, 200]);
    assert_eq!(reqs[2].basic_auth, Some(("archive".to_string(), "s3cret:x".to_string())));
}

#[test]
fn appint_list_and_auth() {
    let tls = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let password = "p&ss=w+rd%20 é\u{0}";
    let data = AppIntData::demo().user(AppIntUser::new("odd", password).nulls());
    let app = AppIntServer::start(data, Some(tls.clone())).unwrap();
    let url = app.url();
    let r = http_client::post(&url, Some(&tls), FORM, &[], b"cmd=list").unwrap();
    assert_eq!((r.status, r.header("content-type")), (200, Some(DEFAULT_CONTENT_TYPE)));
    let users: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(users[0]["userName"], "alice");
    assert_eq!(users[0]["fullName"], "Alice Liddell");
    assert_eq!(users[0]["emailAddresses"][1], "al@example.com");
    assert_eq!(users[1]["distinguishedName"], "UID=bob,DC=example,DC=com");
    assert_eq!(users[2]["fullName"], Value::Null);

    let encoded = "p%26ss%3Dw%2Brd%2520+%C3%A9%00";
    let mut conn = Connection::open(&url, Some(&tls)).unwrap();
    let path = "/mailstore-integration/index.php";
    let r = conn.post(path, FORM, format!("cmd=auth&user=odd&pass={encoded}").as_bytes()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        serde_json::json!({"success": true})
    );
    assert_eq!(app.mock.received_passwords(), [password]);
    let r = conn.post(path, FORM, b"cmd=auth&user=alice&pass=bob-password").unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["success"], false);
    assert!(v["message"].is_string());
    let r = conn.post(path, FORM, b"cmd=auth&user=ALICE&pass=alice-password").unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["success"], false);
    assert_eq!(conn.post(path, FORM, b"cmd=auth&user=alice").unwrap().status, 400);
    assert_eq!(conn.post(path, FORM, b"cmd=delete").unwrap().status, 400);
    assert_eq!(conn.post(path, "application/json", b"{}").unwrap().status, 400);
    assert_eq!(conn.request("GET", path, &[], b"").unwrap().status, 405);

    // Raw list override and another content type.
    app.mock.update(|d| {
        d.raw_list = Some(br#"[{"userName": "x"}, {"userName": "X"}"#.to_vec());
        d.content_type = "text/plain".to_string();
    });
    let r = conn.post(path, FORM, b"cmd=list").unwrap();
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body, br#"[{"userName": "x"}, {"userName": "X"}"#);
}

#[test]
fn appint_generated_is_big() {
    let app = AppIntServer::start(AppIntData::generated(100_000), None).unwrap();
    let r = http_client::post(&app.url(), None, FORM, &[], b"cmd=list").unwrap();
    let users: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(users.len(), 100_000);
    assert_eq!(users[99_999]["userName"], "user099999");
    let r = http_client::post(
        &app.url(),
        None,
        FORM,
        &[],
        b"cmd=auth&user=user000042&pass=secret-user000042",
    )
    .unwrap();
    assert_eq!(r.text(), r#"{"success": true}"#);
}

#[test]
fn identity_round_trips_through_pem() {
    let id = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let again = TlsIdentity::from_pem(&id.cert_pem, &id.key_pem).unwrap();
    assert_eq!((&again.cert_der, &again.key_der), (&id.cert_der, &id.key_der));
    let server =
        MockServer::start(Arc::new(|_: &Request| Response::text(200, "hi")), Some(again)).unwrap();
    // The certificate names localhost only: connecting by IP fails verification, by name works.
    let by_ip =
        Connection::open(&server.url(), Some(&id)).and_then(|mut c| c.post("/", "text/plain", b""));
    assert!(by_ip.is_err());
    let by_name = server.url().replace("127.0.0.1", "localhost");
    assert_eq!(
        Connection::open(&by_name, Some(&id)).unwrap().post("/", "text/plain", b"").unwrap().text(),
        "hi"
    );
}

#[test]
fn latency_delays_every_reply_and_connections_wait_side_by_side() {
    let server = echo_server();
    server.set_latency(Duration::from_millis(400));
    let url = server.url();
    let started = Instant::now();
    // Eight connections, two requests each on the same kept-alive connection.
    let answers: Vec<(String, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let url = url.clone();
                scope.spawn(move || {
                    let mut conn = Connection::open(&url, None).unwrap();
                    let first = conn.post(&format!("/{n}a"), "text/plain", b"").unwrap().text();
                    let second = conn.post(&format!("/{n}b"), "text/plain", b"").unwrap().text();
                    (first, second)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    for (n, (first, second)) in answers.iter().enumerate() {
        assert_eq!(
            (first.as_str(), second.as_str()),
            (&*format!("POST /{n}a "), &*format!("POST /{n}b "))
        );
    }
    // Each connection waited twice; one after another the 16 replies would take 6.4 s.
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(4000),
        "connections were served one at a time: {elapsed:?}"
    );
    assert_eq!(server.connection_count(), 8, "keep-alive: one connection per worker");
    assert_eq!(server.request_count(), 16);

    server.set_latency_range(Duration::ZERO, Duration::from_millis(20));
    let mut conn = Connection::open(&url, None).unwrap();
    assert_eq!(conn.post("/r", "text/plain", b"x").unwrap().text(), "POST /r x");
    server.set_latency(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(conn.post("/z", "text/plain", b"").unwrap().text(), "POST /z ");
    assert!(started.elapsed() < Duration::from_millis(400));
}
