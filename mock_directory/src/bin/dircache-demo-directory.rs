//! dircache-demo-directory: serves a small demo directory on 127.0.0.1 for trying dircache
//! without a real IceWarp or Application Integration server.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mock_directory::{
    AppIntData, AppIntMock, Handler, IcewarpData, IcewarpMock, MockServer, TlsIdentity,
};

const HELP: &str = "\
dircache-demo-directory — a demo directory server for trying dircache

USAGE:
    dircache-demo-directory [--port N] [--tls [--write-cert FILE]] [--app-integration]
                            [--generate N] [--latency MS]

Serves a small, fixed directory on 127.0.0.1 and prints ONE line to standard output: the URL
to put in dircache's configuration. Then it serves until it is killed (Ctrl-C, SIGTERM).

By default it speaks the IceWarp administrative API (POST /icewarpapi/); the URL it prints is
e.g. http://127.0.0.1:40123/icewarpapi/ ([directory] type = \"icewarp\", server = that URL,
username = \"admin@example.com\", password = \"demo-admin-password\").

The directory: domain example.com (and its alias domain example.net);
    alice@example.com  \"Alice Liddell\"  password alice-password  (alias al@example.com)
    bob@example.com    \"Bob Builder\"    password bob-password
    carol@example.com  \"Carol Danvers\"  password carol-password  (disabled)
    news@example.com   a mailing list (alice, bob)
    staff@example.com  a group (alice, bob)

OPTIONS:
    --port N             listen on port N (default 0: any free port)
    --tls                serve HTTPS with a fresh self-signed certificate for localhost and
                         127.0.0.1 (set ignore_ssl_warnings = true, or trust the certificate)
    --write-cert FILE    with --tls: write that certificate (PEM) to FILE
    --app-integration    speak Application Integration instead; the URL printed is
                         http://127.0.0.1:PORT/mailstore-integration/index.php, no Basic
                         authentication; users alice (alice-password) and bob (bob-password)
    --generate N         serve N generated users instead of the demo data (benchmarks):
                         IceWarp: 100 domains of N/100 accounts; no request is recorded
    --latency MS         answer every request MS milliseconds late (decimals allowed), as a
                         network's round trip would; concurrent connections wait side by side
    --count-file FILE    keep the number of requests answered so far in FILE (rewritten
                         every 100 ms while it changes), for benchmarks
    -h, --help           show this help
";

struct Options {
    port: u16,
    tls: bool,
    write_cert: Option<String>,
    app_integration: bool,
    generate: Option<usize>,
    latency: Duration,
    count_file: Option<String>,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options {
        port: 0,
        tls: false,
        write_cert: None,
        app_integration: false,
        generate: None,
        latency: Duration::ZERO,
        count_file: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{what} needs a value")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value("--port")?;
                opts.port = v.parse().map_err(|_| format!("--port: not a port number: {v:?}"))?;
            }
            "--tls" => opts.tls = true,
            "--write-cert" => opts.write_cert = Some(value("--write-cert")?),
            "--app-integration" => opts.app_integration = true,
            "--generate" => {
                let v = value("--generate")?;
                let n = v.parse().map_err(|_| format!("--generate: not a number: {v:?}"))?;
                opts.generate = Some(n);
            }
            "--latency" => {
                let v = value("--latency")?;
                let ms: f64 = v
                    .parse()
                    .ok()
                    .filter(|ms: &f64| ms.is_finite() && (0.0..=600_000.0).contains(ms))
                    .ok_or_else(|| {
                        format!("--latency: not milliseconds from 0 to 600000: {v:?}")
                    })?;
                opts.latency = Duration::from_secs_f64(ms / 1000.0);
            }
            "--count-file" => opts.count_file = Some(value("--count-file")?),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if opts.write_cert.is_some() && !opts.tls {
        return Err("--write-cert needs --tls".to_string());
    }
    Ok(Some(opts))
}

fn run(opts: Options) -> Result<(), String> {
    let identity = if opts.tls {
        let id =
            TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).map_err(|e| e.to_string())?;
        if let Some(path) = &opts.write_cert {
            id.write_cert_pem(path).map_err(|e| format!("{path}: {e}"))?;
        }
        Some(id)
    } else {
        None
    };
    let (handler, path): (Arc<dyn Handler>, &str) = match (opts.app_integration, opts.generate) {
        (true, generate) => {
            let data = generate.map_or_else(AppIntData::demo, AppIntData::generated);
            let mock = AppIntMock::new(data);
            mock.set_recording(generate.is_none());
            (mock, mock_directory::appint::DEFAULT_PATH)
        }
        (false, generate) => {
            let data = generate
                .map_or_else(IcewarpData::demo, |n| IcewarpData::generated(100, n.div_ceil(100)));
            let mock = IcewarpMock::new(data);
            mock.set_recording(generate.is_none());
            (mock, mock_directory::icewarp::API_PATH)
        }
    };
    let server = MockServer::start_on((Ipv4Addr::LOCALHOST, opts.port), handler, identity)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", opts.port))?;
    server.set_recording(opts.generate.is_none());
    server.set_latency(opts.latency);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}{path}", server.url())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    let mut written = None;
    loop {
        match &opts.count_file {
            Some(path) => {
                let count = server.request_count();
                if written != Some(count) {
                    std::fs::write(path, format!("{count}\n"))
                        .map_err(|e| format!("{path}: {e}"))?;
                    written = Some(count);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            None => std::thread::park(),
        }
    }
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(None) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Some(opts)) => match run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dircache-demo-directory: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("dircache-demo-directory: {e}");
            ExitCode::from(2)
        }
    }
}
