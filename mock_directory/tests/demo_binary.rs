//! The demo directory binary: prints one URL line, then serves the demo data.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use mock_directory::http_client;
use mock_directory::TlsIdentity;

const BIN: &str = env!("CARGO_BIN_EXE_dircache-demo-directory");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (running, line.trim_end().to_string())
}

#[test]
fn serves_the_icewarp_demo() {
    let (_demo, url) = start(&[]);
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/icewarpapi/"), "{url}");
    let body = "<iq><query xmlns=\"admin:iq:rpc\"><commandname>getauthtoken</commandname><commandparams><email>alice@example.com</email><password>alice-password</password><digest></digest><authtype>0</authtype><persistentlogin>0</persistentlogin></commandparams></query></iq>";
    let r = http_client::post(&url, None, "text/xml", &[], body.as_bytes()).unwrap();
    assert!(r.text().contains("<authtoken>"), "{}", r.text());
}

#[test]
fn serves_app_integration_over_tls() {
    let dir = std::env::temp_dir().join(format!("demo-cert-{}.pem", std::process::id()));
    let (_demo, url) =
        start(&["--app-integration", "--tls", "--write-cert", dir.to_str().unwrap()]);
    assert!(
        url.starts_with("https://127.0.0.1:") && url.ends_with("/mailstore-integration/index.php"),
        "{url}"
    );
    let cert_pem = std::fs::read_to_string(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let trust = TlsIdentity::from_pem(&cert_pem, "").unwrap();
    let r = http_client::post(
        &url,
        Some(&trust),
        "application/x-www-form-urlencoded",
        &[],
        b"cmd=auth&user=bob&pass=bob-password",
    )
    .unwrap();
    assert_eq!(r.text(), r#"{"success": true}"#);
}

#[test]
fn help_and_bad_arguments() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice@example.com"));
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("dircache-demo-directory: "));
}

#[test]
fn latency_delays_every_answer_and_requests_are_counted() {
    let count_file = std::env::temp_dir().join(format!("demo-count-{}", std::process::id()));
    let (_demo, url) = start(&["--latency", "300", "--count-file", count_file.to_str().unwrap()]);
    let body = "<iq><query xmlns=\"admin:iq:rpc\"><commandname>getauthtoken</commandname><commandparams><email>bob@example.com</email><password>bob-password</password><digest></digest><authtype>0</authtype><persistentlogin>0</persistentlogin></commandparams></query></iq>";
    let started = std::time::Instant::now();
    let r = http_client::post(&url, None, "text/xml", &[], body.as_bytes()).unwrap();
    assert!(r.text().contains("<authtoken>"), "{}", r.text());
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let mut counted = String::new();
    for _ in 0..50 {
        counted = std::fs::read_to_string(&count_file).unwrap_or_default();
        if counted == "1\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&count_file);
    assert_eq!(counted, "1\n");
    for bad in ["-1", "fast", "NaN"] {
        let out = Command::new(BIN).args(["--latency", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--latency {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--latency"), "--latency {bad}");
    }
}
