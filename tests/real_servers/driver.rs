//! A blocking driver for the sans-IO `SmtpSession`: a `std::net::TcpStream`,
//! rustls for STARTTLS and implicit TLS, and the wall clock. It plays the part
//! the Workers socket driver plays in production, so the session can be run
//! against real servers natively.
//!
//! It must stay a plain pump: every protocol decision is the session's. It
//! records what it wrote, one entry per write, so tests can check the exact
//! bytes on the wire.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgerelay::smtp::{Envelope, Event, Outcome, SmtpConfig, SmtpSession, TransactionOutcome};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// What one session came to.
pub struct SessionRun {
    /// One per envelope, in the order the session finished them.
    pub outcomes: Vec<TransactionOutcome>,
    /// Why the session ended, when it was not a clean QUIT.
    pub failure: Option<Outcome>,
    /// Every write, in order, as the session produced it (before TLS).
    pub written: Vec<Vec<u8>>,
}

impl SessionRun {
    /// The outcome for the envelope with this id.
    pub fn outcome(&self, id: u64) -> &TransactionOutcome {
        self.outcomes
            .iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("no outcome for envelope {id}"))
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }
}

/// The TLS side of a connection: whom to trust and the name to verify.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// Runs the handshake on `tcp` within `limit`; the session's timeouts do not
/// cover the handshake, so the driver bounds it itself.
fn handshake(
    tls: &TlsClient,
    mut tcp: TcpStream,
    limit: Duration,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let mut conn = ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    while conn.is_handshaking() {
        let left = limit
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or("TLS handshake timed out")?;
        tcp.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// Connects to `addr`, runs every envelope through one session and QUITs.
pub fn run_session(
    addr: &str,
    config: SmtpConfig,
    tls: Option<&TlsClient>,
    envelopes: Vec<Envelope>,
) -> SessionRun {
    let started = Instant::now();
    let now = || started.elapsed().as_millis() as u64;
    let handshake_limit = Duration::from_millis(config.timeouts.command_ms);
    let implicit = config.security == edgerelay::smtp::Security::ImplicitTls;
    let mut session = SmtpSession::new(config, now());
    for envelope in envelopes {
        session.send(envelope, now());
    }
    session.finish(now());
    let mut run = SessionRun {
        outcomes: Vec::new(),
        failure: None,
        written: Vec::new(),
    };

    let mut stream = match TcpStream::connect(addr) {
        Ok(tcp) if implicit => {
            let tls = tls.expect("implicit TLS needs a TLS client");
            match handshake(tls, tcp, handshake_limit) {
                Ok(s) => Some(Stream::Tls(Box::new(s))),
                Err(reason) => {
                    session.handle_tls_failed(reason, now());
                    None
                }
            }
        }
        Ok(tcp) => Some(Stream::Plain(tcp)),
        Err(e) => {
            session.connect_failed(e.to_string(), now());
            None
        }
    };

    let mut buf = vec![0u8; 16 * 1024];
    while let Some(s) = stream.as_mut() {
        while let Some(bytes) = session.poll_transmit() {
            run.written.push(bytes.clone());
            let limit = Duration::from_millis(session.write_timeout_ms().max(1));
            if s.tcp().set_write_timeout(Some(limit)).is_err() {
                session.handle_closed(now());
                break;
            }
            match s.write_all(&bytes) {
                Ok(()) => session.handle_written(now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    session.handle_write_timeout(now());
                    break;
                }
                Err(_) => {
                    session.handle_closed(now());
                    break;
                }
            }
        }
        if let Some(event) = session.poll_event() {
            match event {
                Event::StartTls => {
                    let Some(Stream::Plain(tcp)) = stream.take() else {
                        panic!("STARTTLS requested on a TLS stream");
                    };
                    let tls = tls.expect("STARTTLS needs a TLS client");
                    match handshake(tls, tcp, handshake_limit) {
                        Ok(upgraded) => {
                            stream = Some(Stream::Tls(Box::new(upgraded)));
                            session.handle_tls_established(now());
                        }
                        Err(reason) => session.handle_tls_failed(reason, now()),
                    }
                }
                Event::TransactionDone(outcome) => run.outcomes.push(outcome),
                Event::Closed { failure } => run.failure = failure,
            }
            continue;
        }
        if session.is_closed() {
            break;
        }
        // Wait at most until the session's deadline; a read that times out
        // hands the clock to the session, which decides whether it expired.
        let wait = session
            .poll_timeout()
            .map_or(Duration::from_secs(60), |at| {
                Duration::from_millis(at.saturating_sub(now()).max(1))
            });
        if s.tcp().set_read_timeout(Some(wait)).is_err() {
            session.handle_closed(now());
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) => session.handle_closed(now()),
            Ok(n) => session.handle_input(&buf[..n], now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                session.handle_timeout(now())
            }
            Err(_) => session.handle_closed(now()),
        }
    }
    while let Some(event) = session.poll_event() {
        match event {
            Event::TransactionDone(outcome) => run.outcomes.push(outcome),
            Event::Closed { failure } => run.failure = failure,
            Event::StartTls => {}
        }
    }
    run
}
