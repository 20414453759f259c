//! Real SMTP servers on loopback, started per test: aiosmtpd (through the
//! project's Python environment) and Postfix's smtp-sink.
//!
//! A server that is not installed skips the test with a note, unless `CI` is
//! set to `true`, where a missing server is a failure: CI must never pass by
//! testing nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::driver::TlsClient;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing server fails the test rather than skipping it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `Some(())` when the server is available; `None` to skip (outside CI).
fn require(available: bool, what: &str) -> Option<()> {
    if available {
        return Some(());
    }
    assert!(
        !in_ci(),
        "{what} is missing, and CI=true: install it (make setup-test)"
    );
    eprintln!("skipped: {what} is not installed (make setup-test installs it)");
    None
}

/// A fresh directory under the system temp dir.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("edgerelay-{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// How the aiosmtpd upstream protects the connection.
#[derive(Clone, Copy, Debug)]
pub enum AiosmtpdMode {
    StartTls,
    ImplicitTls,
    Plain,
}

/// What aiosmtpd saw, reported when it stops.
#[derive(Debug, serde::Deserialize)]
pub struct AiosmtpdReport {
    pub connections: usize,
    pub auth_attempts: usize,
    pub rcpt_commands: Vec<String>,
    pub messages: Vec<ReceivedMessage>,
}

#[derive(Debug, serde::Deserialize)]
pub struct ReceivedMessage {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    data: String,
}

impl ReceivedMessage {
    /// The message as the server stored it (dot-unstuffed, CRLF).
    pub fn data(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .expect("report data is base64")
    }
}

/// The end-to-end tests' aiosmtpd upstream, run as a child process.
pub struct Aiosmtpd {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub addr: String,
    pub user: String,
    pub password: String,
    ca: PathBuf,
}

#[derive(serde::Deserialize)]
struct Ready {
    port: u16,
    ca: PathBuf,
    user: String,
    password: String,
}

impl Aiosmtpd {
    /// Starts the server, or `None` when aiosmtpd is not installed (outside CI).
    pub fn start(mode: AiosmtpdMode) -> Option<Aiosmtpd> {
        let python = root().join(".venv/bin/python");
        let installed = python.exists()
            && Command::new(&python)
                .args(["-c", "import aiosmtpd, cryptography"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        require(installed, "aiosmtpd (in .venv)")?;
        let mode_arg = match mode {
            AiosmtpdMode::StartTls => "starttls",
            AiosmtpdMode::ImplicitTls => "implicit",
            AiosmtpdMode::Plain => "plain",
        };
        let mut child = Command::new(&python)
            .arg(root().join("tests/servers/aiosmtpd_upstream.py"))
            .arg(scratch_dir("aiosmtpd"))
            .arg(mode_arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the ready line");
        let ready: Ready = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("aiosmtpd did not start ({e}): {line:?}"));
        Some(Aiosmtpd {
            child,
            stdin,
            stdout,
            addr: format!("127.0.0.1:{}", ready.port),
            user: ready.user,
            password: ready.password,
            ca: ready.ca,
        })
    }

    /// A TLS client that trusts this server's CA.
    pub fn tls_client(&self) -> TlsClient {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("read the CA") {
            roots
                .add(cert.expect("a CA certificate"))
                .expect("add the CA");
        }
        tls_client_with(roots)
    }

    /// Stops the server and returns what it saw.
    pub fn finish(mut self) -> AiosmtpdReport {
        drop(self.stdin.take());
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the report line");
        let _ = self.child.wait();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad report ({e}): {line:?}"))
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TLS client with these trust anchors, verifying the name `localhost`.
pub fn tls_client_with(roots: RootCertStore) -> TlsClient {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsClient {
        config: Arc::new(config),
        server_name: ServerName::try_from("localhost").expect("a DNS name"),
    }
}

/// Postfix's smtp-sink with the given fault options, dumping each message
/// it accepts into its own file.
pub struct SmtpSink {
    child: Child,
    pub addr: String,
    dumps: PathBuf,
}

impl SmtpSink {
    /// Starts smtp-sink, or `None` when it is not installed (outside CI).
    pub fn start(options: &[&str]) -> Option<SmtpSink> {
        require(Path::new(SMTP_SINK).exists(), "Postfix's smtp-sink")?;
        let dumps = scratch_dir("smtp-sink");
        let mut command = Command::new(SMTP_SINK);
        // As root it must drop privileges, and its user must write the dumps.
        if running_as_root() {
            command.args(["-u", "nobody"]);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dumps, std::fs::Permissions::from_mode(0o777))
                .expect("open the dump directory");
        }
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let template = format!("{}/message.", dumps.display());
        let child = command
            .args(["-h", "sink.test", "-d", &template])
            .args(options)
            .arg(&addr)
            .arg("16")
            .stdout(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let sink = SmtpSink { child, addr, dumps };
        sink.wait_until_listening();
        Some(sink)
    }

    fn wait_until_listening(&self) {
        // Probing with a connect costs smtp-sink one empty session, which
        // it does not dump; nothing else sees it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages smtp-sink dumped, each as the file's bytes.
    pub fn dumped(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dumps)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    // The effective uid of this process, from procfs (no libc binding needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
