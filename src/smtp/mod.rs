//! SMTP submission client, sans-IO.
//!
//! This module owns the client side of an SMTP conversation with one
//! upstream server: greeting, EHLO (HELO fallback), STARTTLS, AUTH (PLAIN,
//! LOGIN, XOAUTH2), MAIL/RCPT/DATA or BDAT with PIPELINING, several messages
//! per connection, QUIT, and the classification of every result for the
//! retry policy ([`OutcomeKind`]).
//!
//! Must not: do I/O: no sockets, no TLS, no clock, no `worker` import.
//! Bytes go in through `handle_*` calls and come out of
//! [`SmtpSession::poll_transmit`]; time is whatever `now_ms` the driver
//! passes (any monotonic millisecond clock), and deadlines come back through
//! [`SmtpSession::poll_timeout`] in that same clock. That keeps it
//! deterministic and testable natively, byte for byte.
//!
//! Driver loop (the edge glue owns the socket):
//!
//! ```ignore
//! let mut session = SmtpSession::new(config, now());
//! for envelope in batch {
//!     session.send(envelope, now());
//! }
//! session.finish(now()); // QUIT once the queue is done
//! loop {
//!     while let Some(bytes) = session.poll_transmit() {
//!         match timeout(session.write_timeout_ms(), socket.write_all(&bytes)).await {
//!             Ok(Ok(())) => session.handle_written(now()),
//!             Ok(Err(_)) => session.handle_closed(now()),
//!             Err(_elapsed) => session.handle_write_timeout(now()),
//!         }
//!     }
//!     // One event per turn: handling it may queue output (EHLO after TLS)
//!     // that must be written before the next read.
//!     if let Some(event) = session.poll_event() {
//!         match event {
//!             Event::StartTls => match socket.start_tls().await {
//!                 Ok(tls) => { socket = tls; session.handle_tls_established(now()) }
//!                 Err(e) => session.handle_tls_failed(e.to_string(), now()),
//!             },
//!             Event::TransactionDone(outcome) => record(outcome),
//!             Event::Closed { .. } => {}
//!         }
//!         continue;
//!     }
//!     if session.is_closed() {
//!         break;
//!     }
//!     match read_until(&mut socket, &mut buf, session.poll_timeout()).await {
//!         Read::Data(n) => session.handle_input(&buf[..n], now()),
//!         Read::Eof => session.handle_closed(now()),
//!         Read::TimedOut => session.handle_timeout(now()),
//!     }
//! }
//! ```
//! Every socket operation has a deadline: reads the one from
//! `poll_timeout`, each write (and the final close) `write_timeout_ms`, so a
//! server that stops reading cannot hang the session.
//! If the connection cannot be made at all, call
//! [`SmtpSession::connect_failed`] and drain the events. `poll_timeout` is
//! `None` only while nothing is awaited: during the TLS handshake (the
//! driver bounds that itself) and when idle because `finish` was not called
//! yet.
//!
//! Guarantees:
//! - every envelope given to [`SmtpSession::send`] yields exactly one
//!   [`Event::TransactionDone`], whatever happens to the connection;
//! - no input can make it panic or buffer without bound (see [`reply`]);
//! - credentials are sent only over TLS, unless [`Security::Insecure`];
//! - addresses that could alter a command line are refused, never sent;
//! - message content cannot end DATA early (see [`transparency`]);
//! - the bytes that end a message's data go out only after the content is
//!   written, in a piece of their own: a failure before they are handed
//!   out is retryable, and only after it is the delivery `Unknown`.
//!
//! Recipients refused with 452 are retried in a new transaction on the same
//! connection after the current one delivers; see `transaction.rs`.
//!
//! With PIPELINING, the next envelope's MAIL/RCPT/DATA (or QUIT) follow the
//! end of the current message's data in the same transmit, so each message
//! costs one round trip; the reply to the end of data still settles that
//! message alone. With CHUNKING as well, whole transactions (MAIL, RCPTs,
//! `BDAT … LAST` and the message) go out without waiting, several on the
//! wire at once, so a run of messages costs one round trip; each reply is
//! still attributed to its own message. See `pipeline.rs`.
//!
//! Files import downwards only: `session.rs` (the one `impl SmtpSession`,
//! a phase enum) drives `pipeline.rs` and `transaction.rs`; a transaction
//! writes its own commands on `wire.rs` and classifies its replies through
//! `outcome.rs`; below them sit `config.rs`, `envelope.rs`,
//! `transparency.rs`, `auth.rs`, `capabilities.rs` and `reply.rs`. None of
//! these imports the session.
//!
//! The TLS upgrade itself, DNS, connection pooling and retry scheduling
//! are the caller's business.

mod auth;
mod capabilities;
mod config;
mod dsn;
mod envelope;
mod outcome;
mod pipeline;
pub mod reply;
mod session;
mod transaction;
pub mod transparency;
mod wire;

#[cfg(test)]
mod tests;

pub use auth::Credentials;
pub use capabilities::{AuthMechanisms, Capabilities};
pub use config::{Security, SmtpConfig, Timeouts};
pub use dsn::{DsnRequest, MAX_ENVID_LEN, Notify, xtext};
pub use envelope::Envelope;
pub use outcome::{Cause, Outcome, OutcomeKind, RecipientOutcome, TransactionOutcome};
pub use reply::{EnhancedCode, Reply, ReplyError, ReplyParser};
pub use session::{Event, SmtpSession};
pub use transaction::InFlight;
pub use wire::MAX_TRANSMIT;
