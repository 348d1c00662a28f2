use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

use mock_directory::hostile::{BlackHole, ResetAfterConnect};
use mock_directory::{Fault, MockServer, Request, Response, TlsIdentity};

use super::*;
use crate::directory::Failure;

/// A server on 127.0.0.1 answering every request with `handler`.
fn serve(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> MockServer {
    MockServer::start(Arc::new(handler), None).unwrap()
}

/// `path` on `server`.
fn url(server: &MockServer, path: &str) -> String {
    format!("{}{path}", server.url())
}

fn ok(body: impl Into<Vec<u8>>) -> Response {
    Response::with_content(200, "text/plain", body)
}

fn settings(timeout_secs: u64, max_reply_bytes: u64) -> DirectoryConfig {
    DirectoryConfig {
        timeout_secs,
        max_reply_bytes: Some(max_reply_bytes),
        ..DirectoryConfig::default()
    }
}

fn client(url: &str, directory: &DirectoryConfig) -> HttpClient {
    HttpClient::new("test-server", url, directory, None).unwrap()
}

#[test]
fn form_encoding_escapes_every_special_byte() {
    let mut password = "p&=+% ä€\0".as_bytes().to_vec();
    password.extend_from_slice(&[0xff, 0xfe, b'~']);
    let body = form_encode(&[("cmd", b"auth"), ("user", b"john.doe-x_1*"), ("pass", &password)]);
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        "cmd=auth&user=john.doe-x_1*&pass=p%26%3D%2B%25%20%C3%A4%E2%82%AC%00%FF%FE%7E"
    );
    assert_eq!(form_encode(&[]).as_slice(), b"");
    assert_eq!(form_encode(&[("a", b""), ("b", b"=")]).as_slice(), b"a=&b=%3D");
}

#[test]
fn a_form_body_never_grows_so_no_unwiped_copy_is_left() {
    let password = vec![0xffu8; 1000];
    let body = form_encode(&[("cmd", b"auth"), ("user", b"alice"), ("pass", &password)]);
    assert_eq!(body.capacity(), 3 * (3 + 4 + 4 + 5 + 4 + 1000) + 6, "sized up front");
    assert!(body.len() <= body.capacity());
}

#[test]
fn posts_form_and_xml_with_basic_authentication() {
    let server = serve(|_| ok("fine"));
    let credentials = Credentials {
        username: "archive@example.test".to_string(),
        password: Zeroizing::new("Passw0rd".to_string()),
    };
    let http = HttpClient::new(
        "test-server",
        &url(&server, "/mailstore-integration/index.php"),
        &settings(5, 1024),
        Some(credentials),
    )
    .unwrap();
    assert_eq!(http.post_form("list", &[("cmd", b"list")]).unwrap(), b"fine");
    assert_eq!(
        http.post_xml("getauthtoken", Zeroizing::new("<iq/>".to_string())).unwrap(),
        b"fine"
    );

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/mailstore-integration/index.php");
    assert_eq!(seen[0].body, b"cmd=list");
    assert_eq!(seen[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    // base64("archive@example.test:Passw0rd")
    assert_eq!(
        seen[0].header("authorization"),
        Some("Basic YXJjaGl2ZUBleGFtcGxlLnRlc3Q6UGFzc3cwcmQ=")
    );
    assert_eq!(seen[1].header("content-type"), Some("text/xml"));
    assert_eq!(seen[1].body, b"<iq/>");
    let shown = format!("{http:?}");
    assert!(!shown.contains("Passw0rd"), "{shown}");
}

#[test]
fn reply_size_is_capped() {
    let server = serve(|request| {
        let size: usize = String::from_utf8_lossy(&request.body).parse().unwrap();
        ok(vec![b'x'; size])
    });
    let http = client(&url(&server, "/"), &settings(5, 1024));
    assert_eq!(http.post_xml("c", Zeroizing::new("1024".to_string())).unwrap().len(), 1024);
    let err = http.post_xml("c", Zeroizing::new("1025".to_string())).unwrap_err();
    assert!(matches!(err, DirectoryError::TooLarge { limit: 1024, .. }), "{err:?}");
    assert!(err.to_string().contains("directory.max_reply_bytes allows (1024 bytes)"), "{err}");
    let mut directory = settings(5, 1024);
    directory.max_reply_bytes = None;
    directory.max_reply_mib = Some(1);
    let http = client(&url(&server, "/"), &directory);
    let err = http.post_xml("c", Zeroizing::new((1 << 20 | 1).to_string())).unwrap_err();
    assert!(err.to_string().contains("directory.max_reply_mib allows (1048576 bytes)"), "{err}");
}

#[test]
fn a_password_check_answer_is_capped_at_one_mib() {
    let server = serve(|request| {
        let size: usize = String::from_utf8_lossy(&request.body).parse().unwrap();
        ok(vec![b'x'; size])
    });
    let mut http = client(&url(&server, "/"), &DirectoryConfig::default());
    let big = (MAX_ANSWER_BYTES + 1).to_string();
    assert!(http.post_xml("list", Zeroizing::new(big.clone())).is_ok(), "a listing may");
    http.expect_answers();
    let exact = MAX_ANSWER_BYTES.to_string();
    assert_eq!(
        http.post_xml("auth", Zeroizing::new(exact)).unwrap().len() as u64,
        MAX_ANSWER_BYTES
    );
    let err = http.post_xml("auth", Zeroizing::new(big)).unwrap_err();
    assert!(matches!(err, DirectoryError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("the answer to a password check is larger"), "{err}");
    assert_eq!(err.failure(), Failure::Suspicious);
}

#[test]
fn reply_without_length_is_capped_while_reading() {
    // Far more than the cap; the client stops reading after cap + 1 bytes.
    let server = serve(|_| ok(vec![b'y'; 64 * 1024]).with_fault(Fault::CloseDelimited));
    let http = client(&url(&server, "/"), &settings(5, 2048));
    let err = http.post_xml("getaccountsinfolist", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::TooLarge { limit: 2048, .. }), "{err:?}");
}

#[test]
fn non_success_status_is_an_error() {
    let server = serve(|request| {
        let status = String::from_utf8_lossy(&request.body).parse().unwrap();
        Response::new(status).with_body("{\"success\": true}")
    });
    let http = client(&url(&server, "/"), &settings(5, 1024));
    let http_status =
        |status: &str| http.post_xml("auth", Zeroizing::new(status.to_string())).unwrap_err();
    // A server error is an answer: whoever sits in the path can produce one.
    let err = http_status("503");
    assert!(matches!(err, DirectoryError::HttpStatus { status: 503, .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Suspicious);
    let err = http_status("401");
    assert!(matches!(err, DirectoryError::HttpStatus { status: 401, .. }), "{err:?}");
    assert!(!err.is_unreachable());
    // A 3xx without Location is not followed: an answer, but not a success.
    let err = http_status("304");
    assert!(matches!(err, DirectoryError::HttpStatus { status: 304, .. }), "{err:?}");
}

#[test]
fn redirect_to_another_port_is_refused() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let elsewhere = serve(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        ok("stolen")
    });
    let location = url(&elsewhere, "/icewarpapi/");
    let redirecting = serve(move |_| Response::new(307).with_header("Location", &location));
    let http = client(&url(&redirecting, "/icewarpapi/"), &settings(5, 1024));
    let err = http.post_xml("getauthtoken", Zeroizing::new("<iq/>".to_string())).unwrap_err();
    assert!(matches!(err, DirectoryError::Redirect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&url(&elsewhere, "/icewarpapi/")), "{message}");
    assert!(message.contains("same scheme, host and port"), "{message}");
    assert_eq!(err.failure(), Failure::Suspicious);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn same_origin_redirects_are_followed_at_most_three_times() {
    let server = serve(|request| {
        let hop: u32 = request.path.trim_start_matches("/hop").parse().unwrap_or(0);
        let last: u32 = String::from_utf8_lossy(&request.body).parse().unwrap();
        if hop < last {
            Response::new(307).with_header("Location", &format!("/hop{}", hop + 1))
        } else {
            ok(format!("arrived at {hop}"))
        }
    });
    let http = client(&url(&server, "/hop0"), &settings(5, 1024));
    // 307 keeps the method and the body, so the handler sees the body at every hop.
    assert_eq!(http.post_xml("c", Zeroizing::new("3".to_string())).unwrap(), b"arrived at 3");
    let err = http.post_xml("c", Zeroizing::new("4".to_string())).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("more than 3 redirects"), "{message}");
    assert!(message.contains("/hop4"), "{message}");
}

#[test]
fn silence_is_a_timeout() {
    // Read the request, then say nothing for longer than the client waits.
    let server = serve(|_| ok("late").with_fault(Fault::Delay(Duration::from_secs(3))));
    let http = client(&url(&server, "/"), &settings(1, 1024));
    let err = http.post_xml("getauthtoken", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Timeout { secs: 1, .. }), "{err:?}");
    assert!(!err.is_unreachable());
    assert!(err.to_string().contains("timeout_secs"), "{err}");
}

#[test]
fn a_reply_dripping_one_byte_at_a_time_ends_at_the_deadline() {
    // 200 bytes at one per 200 ms: 40 s in all, each read well within the timeout.
    let drip = Fault::Drip { interval: Duration::from_millis(200) };
    let server = serve(move |_| ok(vec![b'x'; 200]).with_fault(drip.clone()));
    let http = client(&url(&server, "/"), &settings(2, 1024));
    let started = Instant::now();
    let err = http.post_xml("getaccountsinfolist", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Timeout { secs: 2, .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Suspicious, "a deadline after connecting");
    // Generous on purpose: it ends near the deadline, not after the 40 s of dripping.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn a_black_holed_address_is_unreachable_after_the_connect_timeout() {
    let hole = BlackHole::new().unwrap();
    let mut directory = settings(30, 1024);
    directory.connect_timeout_secs = Some(1);
    let http = client(&format!("{}/icewarpapi/", hole.url()), &directory);
    let err = http.post_xml("getauthtoken", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Connect { .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Unreachable);
    assert!(err.to_string().contains("no connection within 1 s"), "{err}");
}

#[test]
fn a_stalled_tls_handshake_is_not_unreachable() {
    // Accepts TCP, then never answers the ClientHello: reqwest's connect timeout ends it,
    // but something answered at the address, so it must not open offline logins.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let mut directory = settings(30, 1024);
    directory.connect_timeout_secs = Some(1);
    let http = client(&format!("https://127.0.0.1:{port}/icewarpapi/"), &directory);
    let err = http.post_xml("getauthtoken", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Tls { .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Suspicious);
    assert!(err.to_string().contains("TLS handshake did not complete within 1 s"), "{err}");
}

#[test]
fn refused_connection_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let http = client(&format!("http://127.0.0.1:{port}/icewarpapi/"), &settings(5, 1024));
    let err = http.post_xml("authenticate", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Connect { .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Unreachable);
    assert!(err.to_string().contains("test-server: authenticate: cannot connect"), "{err}");
}

#[test]
fn unresolvable_host_is_a_connect_error() {
    let http = client("http://no-such-host.invalid/", &settings(5, 1024));
    let err = http.post_xml("authenticate", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Connect { .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Unreachable);
}

#[test]
fn bad_urls_are_refused_without_echoing_credentials() {
    for url in ["not a url", "ftp://example.test/", "mailto:admin@example.test"] {
        let err = HttpClient::new("s", url, &settings(5, 1024), None).unwrap_err();
        assert!(matches!(err, DirectoryError::NotConfigured(_)), "{url}: {err:?}");
    }
    let err = HttpClient::new("s", "https://admin:hunter2@example.test/", &settings(5, 1024), None)
        .unwrap_err();
    assert!(matches!(err, DirectoryError::NotConfigured(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A one-certificate HTTPS server answering "secure" to every request; the certificate
/// names 127.0.0.1 and localhost.
fn tls_server() -> (MockServer, String) {
    tls_server_for(&["127.0.0.1", "localhost"])
}

fn tls_server_for(names: &[&str]) -> (MockServer, String) {
    let identity = TlsIdentity::self_signed(names).unwrap();
    let pem = identity.cert_pem.clone();
    let server = MockServer::start(Arc::new(|_: &Request| ok("secure")), Some(identity)).unwrap();
    (server, pem)
}

#[test]
fn untrusted_certificate_is_a_tls_error() {
    let (server, _) = tls_server();
    let http = client(&format!("https://127.0.0.1:{}/", server.port()), &settings(5, 1024));
    let err = http.post_xml("getauthtoken", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Tls { .. }), "{err:?}");
    // reqwest calls this a connect error too; it is not an outage.
    assert_eq!(err.failure(), Failure::Suspicious);
    assert!(err.to_string().contains("TLS verification failed"), "{err}");
    assert!(err.to_string().contains("directory.ca_file"), "{err}");
}

#[test]
fn a_certificate_for_another_host_name_is_a_tls_error() {
    let (server, pem) = tls_server_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    let mut directory = settings(5, 1024);
    directory.ca_file = Some(path);
    let http = client(&format!("https://localhost:{}/", server.port()), &directory);
    assert_eq!(http.post_xml("c", Zeroizing::default()).unwrap(), b"secure");
    // Trusted, but not for 127.0.0.1.
    let http = client(&format!("https://127.0.0.1:{}/", server.port()), &directory);
    let err = http.post_xml("c", Zeroizing::default()).unwrap_err();
    assert!(matches!(err, DirectoryError::Tls { .. }), "{err:?}");
    assert_eq!(err.failure(), Failure::Suspicious);
}

#[test]
fn a_reset_after_connecting_is_not_unreachable() {
    let reset_in_reply = ResetAfterConnect::start().unwrap();
    let reset_in_handshake = ResetAfterConnect::start().unwrap();
    let plain = client(&format!("{}/", reset_in_reply.url()), &settings(5, 1024));
    let tls =
        client(&format!("https://127.0.0.1:{}/", reset_in_handshake.port()), &settings(5, 1024));
    for (what, http) in [("reply", plain), ("TLS handshake", tls)] {
        let err = http.post_xml("getauthtoken", Zeroizing::default()).unwrap_err();
        assert!(matches!(err, DirectoryError::Transport { .. }), "{what}: {err:?}");
        assert_eq!(err.failure(), Failure::Suspicious, "{what}");
    }
}

#[test]
fn ignore_ssl_warnings_accepts_a_self_signed_certificate() {
    let (server, _) = tls_server();
    let mut directory = settings(5, 1024);
    directory.ignore_ssl_warnings = true;
    let http = client(&format!("https://127.0.0.1:{}/", server.port()), &directory);
    assert_eq!(http.post_xml("c", Zeroizing::default()).unwrap(), b"secure");
}

#[test]
fn ca_file_makes_a_private_certificate_trusted() {
    let (server, pem) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private-ca.pem");
    std::fs::write(&path, pem).unwrap();
    let mut directory = settings(5, 1024);
    directory.ca_file = Some(path);
    let http = client(&format!("https://127.0.0.1:{}/", server.port()), &directory);
    assert_eq!(http.post_xml("c", Zeroizing::default()).unwrap(), b"secure");
}

#[test]
fn ca_file_others_can_write_is_refused_even_with_the_right_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let (server, pem) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private-ca.pem");
    std::fs::write(&path, pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut directory = settings(5, 1024);
    directory.ca_file = Some(path.clone());
    let url = format!("https://127.0.0.1:{}/", server.port());
    let err = HttpClient::new("s", &url, &directory, None).unwrap_err();
    assert!(matches!(err, DirectoryError::Other { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("(directory.ca_file) can be changed by others"), "{message}");
    assert!(message.contains(&format!("`chmod go-w {}`", path.display())), "{message}");
    // Readable by everyone is fine: a CA certificate is no secret.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(client(&url, &directory).post_xml("c", Zeroizing::default()).unwrap(), b"secure");
}

#[test]
fn unusable_ca_file_is_refused_at_setup() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    for path in [dir.path().join("missing.pem"), garbage] {
        let mut directory = settings(5, 1024);
        directory.ca_file = Some(path.clone());
        let err = HttpClient::new("s", "https://example.test/", &directory, None).unwrap_err();
        assert!(matches!(err, DirectoryError::Other { .. }), "{err:?}");
        assert!(err.to_string().contains("ca_file"), "{err}");
    }
}
