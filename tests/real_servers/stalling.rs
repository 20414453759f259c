//! A server that takes DATA and then stops reading, on a real TCP socket:
//! the client's writes fill the kernel's buffers and block. The write
//! deadline ends the session, and because the final dot was never handed
//! out the message is plainly retryable, not unknown.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use edgerelay::smtp::{Cause, OutcomeKind, Security};

use crate::driver::run_session;
use crate::{config, envelope};

/// Serves one connection in lock-step up to the 354, then holds it open,
/// reading nothing, until `release` fires.
fn stalling_server(release: mpsc::Receiver<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        conn.write_all(b"220 stall.test ESMTP\r\n").expect("greet");
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let command = line.trim().to_ascii_uppercase();
            line.clear();
            if command.starts_with("DATA") {
                conn.write_all(b"354 go ahead\r\n").expect("354");
                let _ = release.recv();
                return;
            }
            conn.write_all(b"250 ok\r\n").expect("250");
        }
    });
    addr
}

#[test]
fn a_server_that_stops_reading_times_out_retryably() {
    let (release, wait) = mpsc::channel();
    let addr = stalling_server(wait);
    let mut cfg = config(Security::Insecure, None);
    cfg.use_pipelining = false;
    cfg.timeouts.write_ms = 1_000;
    // Far more than loopback's socket buffers hold.
    let line = format!("{}\r\n", "x".repeat(998));
    let data = format!("Subject: big\r\n\r\n{}", line.repeat(32 * 1024));
    let started = Instant::now();
    let run = run_session(&addr, cfg, None, vec![envelope(1, data.as_bytes())]);
    let elapsed = started.elapsed();
    let _ = release.send(());
    let outcome = &run.outcome(1).outcome;
    assert_eq!(
        (outcome.kind, &outcome.cause),
        (OutcomeKind::Transient, &Cause::WriteTimeout)
    );
    assert_eq!(run.failure.map(|f| f.cause), Some(Cause::WriteTimeout));
    // The final dot was never handed to the socket.
    assert!(!run.written.iter().any(|w| w.starts_with(b".\r\n")));
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}
