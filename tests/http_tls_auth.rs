//! `--web.config.file` end to end: the real binary behind TLS with client
//! certificates and basic auth, probed with curl the way an operator would.
//! Certificates are made fresh by the openssl CLI for each run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{scratch_dir, Running, BIN};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`/`.key`) and leaves it signs, all EC P-256 (fast to make).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

const SERVER_EXT: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\n";

#[derive(Debug)]
struct Curl {
    /// curl's exit code: 0 when an HTTP response arrived.
    exit: i32,
    status: u16,
    headers: String,
    body: String,
}

/// One request with curl; `args` add TLS files, credentials and so on.
fn curl(dir: &Path, url: &str, args: &[&str]) -> Curl {
    let head = dir.join("curl-headers");
    let body = dir.join("curl-body");
    let _ = std::fs::remove_file(&head);
    let _ = std::fs::remove_file(&body);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("curl is installed");
    Curl {
        exit: out.status.code().unwrap_or(-1),
        status: String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        headers: std::fs::read_to_string(&head).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn setup(name: &str) -> (PathBuf, String) {
    let dir = scratch_dir(name);
    make_ca(&dir, "good");
    make_ca(&dir, "rogue");
    make_leaf(&dir, "good", "server", SERVER_EXT);
    make_leaf(&dir, "good", "client", CLIENT_EXT);
    make_leaf(&dir, "rogue", "intruder", CLIENT_EXT);
    // Cost 6 keeps the test quick; operators use 10 or more.
    let hash = bcrypt::hash("s3cret", 6).expect("bcrypt hashes");
    (dir, hash)
}

#[test]
fn tls_with_client_certs_and_basic_auth() {
    let (dir, hash) = setup("tls-auth");
    // Relative paths: resolved against the web config's own directory.
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: good-ca.pem\n  \
             min_version: TLS12\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
    )
    .expect("write web.yml");
    let web = dir.join("web.yml");
    let exporter = Running::start(&[
        "--config.names=syscalls",
        &format!("--web.config.file={}", web.display()),
    ]);
    let https = format!("https://{}/metrics", exporter.addr);
    let tls = [
        "--cacert",
        "good-ca.pem",
        "--cert",
        "client.pem",
        "--key",
        "client.key",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        tls.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |url: &str, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&dir, url, &args)
    };

    let ok = run(&https, with(&["-u", "prometheus:s3cret"]));
    assert_eq!((ok.exit, ok.status), (0, 200), "{}", ok.body);
    assert!(
        ok.body.contains("ebpf_exporter_syscalls_total"),
        "{}",
        ok.body
    );
    // The second time is served from the verified-password cache.
    let again = run(&https, with(&["-u", "prometheus:s3cret"]));
    assert_eq!(again.status, 200);

    let wrong = run(&https, with(&["-u", "prometheus:guess"]));
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .headers
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{}",
        wrong.headers
    );
    assert_eq!(run(&https, with(&["-u", "nobody:s3cret"])).status, 401);
    assert_eq!(run(&https, with(&[])).status, 401, "no credentials");
    // The toolkit protects every path, the health check included.
    let health = format!("https://{}/healthz", exporter.addr);
    assert_eq!(run(&health, with(&[])).status, 401);
    assert_eq!(run(&health, with(&["-u", "prometheus:s3cret"])).status, 200);

    // Plain HTTP to the TLS port is refused with a 400, never served.
    let plain = curl(
        &dir,
        &format!("http://{}/metrics", exporter.addr),
        &["-u", "prometheus:s3cret"],
    );
    assert!(
        plain.status == 400 && !plain.body.contains("ebpf_exporter"),
        "plain HTTP was served"
    );

    // Without a client certificate, or with one from another CA, the
    // handshake fails before any HTTP; and the server's certificate does
    // not verify against another CA.
    let refused: [(&str, &[&str]); 3] = [
        ("served without a client cert", &["--cacert", "good-ca.pem"]),
        (
            "served a rogue client cert",
            &[
                "--cacert",
                "good-ca.pem",
                "--cert",
                "intruder.pem",
                "--key",
                "intruder.key",
            ],
        ),
        (
            "server cert verified against the wrong CA",
            &[
                "--cacert",
                "rogue-ca.pem",
                "--cert",
                "client.pem",
                "--key",
                "client.key",
            ],
        ),
    ];
    for (what, tls_args) in refused {
        let mut args = tls_args.to_vec();
        args.extend(["-u", "prometheus:s3cret"]);
        let r = curl(&dir, &https, &args);
        assert!(r.exit != 0 && r.status == 0, "{what}");
    }
}

#[test]
fn rotated_certificates_are_picked_up() {
    let (dir, _) = setup("tls-rotate");
    std::fs::write(
        dir.join("web.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    )
    .expect("write web.yml");
    let exporter = Running::start(&[
        "--config.names=syscalls",
        &format!("--web.config.file={}", dir.join("web.yml").display()),
    ]);
    let url = format!("https://{}/healthz", exporter.addr);
    let before = curl(&dir, &url, &["--cacert", "good-ca.pem"]);
    assert_eq!(before.status, 200, "no client auth configured");

    // Re-issue the server certificate from the other CA, in place.
    make_leaf(&dir, "rogue", "server", SERVER_EXT);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = curl(&dir, &url, &["--cacert", "rogue-ca.pem"]);
        if after.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotated certificate never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(curl(&dir, &url, &["--cacert", "good-ca.pem"]).status, 200);
}

/// Runs the exporter with `web` as its web config; it must exit 2 before
/// serving. Returns its log.
fn refused_web_config(web: &Path) -> String {
    let out = Command::new(BIN)
        .arg(format!("--web.config.file={}", web.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run exporter");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{log}");
    log
}

#[test]
fn bad_web_config_stops_start_up() {
    let dir = scratch_dir("tls-bad");
    let web = dir.join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_fil: server.pem\n").expect("write");
    let log = refused_web_config(&web);
    assert!(
        log.contains(&format!(
            "{}:2: key `tls_server_config`: unknown field `cert_fil`",
            web.display()
        )),
        "{log}"
    );
    assert!(!log.contains("listening"), "{log}");

    // A file that parses but names a missing certificate fails the same way.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: gone.pem\n  key_file: gone.key\n",
    )
    .expect("write");
    let log = refused_web_config(&web);
    assert!(
        log.contains("key `tls_server_config.cert_file`: cannot read"),
        "{log}"
    );
}

#[test]
fn web_configs_that_would_fail_open_stop_start_up() {
    let dir = scratch_dir("tls-fail-open");
    let web = dir.join("web.yml");
    std::fs::write(&web, "").expect("write");
    let log = refused_web_config(&web);
    assert!(
        log.contains(&format!(
            "{}:1: turns on neither TLS (`tls_server_config` with `cert_file` and `key_file`) nor basic auth (`basic_auth_users`) nor response headers; to serve plain HTTP without auth, drop --web.config.file",
            web.display()
        )),
        "{log}"
    );
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  min_version: TLS10\n",
    )
    .expect("write");
    let log = refused_web_config(&web);
    assert!(
        log.contains(
            ":4: key `tls_server_config.min_version`: TLS 1.0 and 1.1 are broken and not served"
        ),
        "{log}"
    );
    let fifo = dir.join("fifo.yml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let log = refused_web_config(&fifo);
    assert!(
        log.contains("cannot read web config: not a regular file (it is a FIFO)"),
        "{log}"
    );
}

/// Users and headers follow the web config file, as the toolkit's do; plain
/// HTTP sent to the TLS port is told so with a 400.
#[test]
fn users_and_headers_reload_and_plain_http_gets_a_400() {
    let (dir, hash) = setup("tls-reload");
    let web = dir.join("web.yml");
    let write = |users: &str| {
        let text = format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n{users}"
        );
        let tmp = dir.join("web.yml.tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &web).expect("rename");
    };
    write(&format!("  alice: {hash}\n"));
    let exporter = Running::start(&[
        "--config.names=syscalls",
        &format!("--web.config.file={}", web.display()),
    ]);
    let url = format!("https://{}/healthz", exporter.addr);
    let tls = ["--cacert", "good-ca.pem"];
    let as_user = |user: &str| {
        let creds = format!("{user}:s3cret");
        curl(&dir, &url, &[tls[0], tls[1], "-u", &creds])
    };
    let alice = as_user("alice");
    assert_eq!(alice.status, 200);
    assert!(
        alice
            .headers
            .to_ascii_lowercase()
            .contains("x-frame-options: deny"),
        "{}",
        alice.headers
    );
    assert_eq!(as_user("bob").status, 401);

    // bob replaces alice: applied within a few seconds, no restart.
    write(&format!("  bob: {hash}\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while as_user("bob").status != 200 {
        assert!(Instant::now() < deadline, "new users never applied");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(as_user("alice").status, 401, "removed users are refused");
    // A broken file keeps what runs.
    std::fs::write(&web, "basic_auth_users: [\n").expect("write");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(as_user("bob").status, 200);

    let plain = curl(&dir, &format!("http://{}/metrics", exporter.addr), &[]);
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(
        plain
            .body
            .contains("Client sent an HTTP request to an HTTPS server."),
        "{}",
        plain.body
    );
}
