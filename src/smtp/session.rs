//! The session: the driver-facing API, the phase of the connection, and
//! the conversation around mail transactions (greeting, EHLO/HELO,
//! STARTTLS, AUTH, QUIT, and ending the session on failure).
//!
//! Owns: the socket-facing state: the reply parser, the wire, the events for
//! the driver, the queue of envelopes and the transactions in flight, which it
//! drives through their own methods (`transaction.rs`), pipelining one behind
//! another's end of data by the rules in `pipeline.rs`. Must not: decide what
//! a transaction's replies mean for its recipients, classify outcomes itself
//! (`outcome.rs` does), or do any I/O.

use std::collections::VecDeque;

use super::auth::{self, Credentials, Mechanism};
use super::capabilities::Capabilities;
use super::config::{Security, SmtpConfig};
use super::envelope::Envelope;
use super::outcome::{Cause, Outcome, OutcomeKind, TransactionOutcome};
use super::pipeline;
use super::reply::{Reply, ReplyParser};
use super::transaction::{self, InFlight, Progress, Transaction};
use super::wire::{Expect, Wire};

/// Something the driver must act on or record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server accepted STARTTLS: upgrade the socket, then call
    /// [`SmtpSession::handle_tls_established`] (or
    /// [`SmtpSession::handle_tls_failed`]).
    StartTls,
    /// One envelope is finished; exactly one per [`SmtpSession::send`].
    TransactionDone(TransactionOutcome),
    /// The session is over; close the socket. `failure` says why when it
    /// ended other than by a clean QUIT.
    Closed { failure: Option<Outcome> },
}

/// Where the conversation is. Phases only move down this list, except that
/// the TLS handshake returns to `Opening` for the EHLO over TLS.
#[derive(Debug)]
enum Phase {
    /// Greeting, EHLO/HELO, STARTTLS and AUTH: no transaction may start.
    Opening,
    /// The server accepted STARTTLS and the driver is upgrading the socket;
    /// nothing is read until it has.
    TlsHandshake,
    /// Transactions may run.
    Ready,
    /// QUIT is on the wire; replies to the commands before it may still
    /// come. `failure` says why, when the session is ending early.
    Quitting { failure: Option<Outcome> },
    /// Over. `failure` is what envelopes handed over now are told.
    Closed { failure: Option<Outcome> },
}

/// A sans-IO SMTP submission client for one connection.
#[derive(Debug)]
pub struct SmtpSession {
    config: SmtpConfig,
    phase: Phase,
    /// The socket is encrypted: implicit TLS, or after STARTTLS.
    tls_active: bool,
    parser: ReplyParser,
    pub(crate) wire: Wire,
    capabilities: Capabilities,
    events: VecDeque<Event>,
    /// Ends of data queued in the transmit buffer, not yet taken by the driver.
    in_flight: VecDeque<InFlight>,
    queue: VecDeque<Envelope>,
    /// The caller wants QUIT once the queue is empty.
    finishing: bool,
    /// The transaction whose commands are being answered.
    active: Option<Transaction>,
    /// Transactions whose end of data is on the wire, awaiting their
    /// replies, oldest first, with the next transaction's commands (or
    /// QUIT) behind them: one pipelined past its data end, or up to
    /// `pipeline::WINDOW` blind BDAT ones; see `pipeline.rs`. The next
    /// transaction reply belongs to the front one; `active` comes after
    /// them all.
    ending: VecDeque<Transaction>,
    /// A BDAT transaction went on the wire ahead of whatever is written
    /// next, with no RSET since: the next MAIL needs one first.
    rset_owed: bool,
    /// The latest reply refused a message (5xx to MAIL, RCPT, DATA or the
    /// end of data): a hang-up right after it is the server dropping that
    /// sender, not the server failing.
    just_refused: bool,
}

impl SmtpSession {
    /// Starts a session on a freshly connected socket (with TLS already up
    /// for [`Security::ImplicitTls`]); the server speaks first.
    pub fn new(config: SmtpConfig, now_ms: u64) -> Self {
        let mut wire = Wire::new(config.timeouts);
        wire.command(b"", Expect::Greeting, now_ms);
        SmtpSession {
            tls_active: config.security == Security::ImplicitTls,
            config,
            phase: Phase::Opening,
            parser: ReplyParser::new(),
            wire,
            capabilities: Capabilities::default(),
            events: VecDeque::new(),
            in_flight: VecDeque::new(),
            queue: VecDeque::new(),
            finishing: false,
            active: None,
            ending: VecDeque::new(),
            rset_owed: false,
            just_refused: false,
        }
    }

    /// Queues an envelope. Each one yields exactly one
    /// [`Event::TransactionDone`], immediately if the session is over.
    pub fn send(&mut self, envelope: Envelope, now_ms: u64) {
        if let Phase::Quitting { failure } | Phase::Closed { failure } = &self.phase {
            let outcome = failure
                .clone()
                .unwrap_or_else(|| Outcome::new(OutcomeKind::Transient, Cause::SessionClosed));
            self.emit(transaction::not_attempted(envelope, &outcome));
            return;
        }
        self.queue.push_back(envelope);
        if self.may_advance() {
            self.advance(now_ms);
        }
    }

    /// Asks for QUIT once every queued envelope is done.
    pub fn finish(&mut self, now_ms: u64) {
        self.finishing = true;
        if self.may_advance() {
            self.advance(now_ms);
        }
    }

    /// Bytes to write to the socket: pending output in pieces of at most
    /// [`MAX_TRANSMIT`](super::MAX_TRANSMIT) bytes (a pipelined group goes out in one piece).
    /// Take the next piece only once the previous one is written and
    /// flushed: the piece that ends a message's data is handed out only
    /// then, so a write that fails or stalls before it leaves a message the
    /// server cannot have, and a retry is safe. Bound each write with
    /// [`SmtpSession::write_timeout_ms`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let transmit = self.wire.take_transmit()?;
        if transmit.ends_data {
            // With pipelining, the transaction that wrote it may already
            // sit behind the next ones' commands; a piece carries one data
            // end, the oldest not yet handed out.
            if let Some(transaction) = self
                .ending
                .iter_mut()
                .chain(self.active.as_mut())
                .find(|transaction| transaction.data_end_queued())
            {
                transaction.data_end_handed_out();
            }
        }
        Some(transmit.bytes)
    }

    /// The envelope whose end of data the next piece from
    /// [`SmtpSession::poll_transmit`] carries, if it does. Until that piece
    /// is taken the server cannot have the message; from then on it may.
    /// A driver that records "in flight" before the final dot does it here.
    pub fn data_end_next(&self) -> Option<u64> {
        if !self.wire.data_end_next() {
            return None;
        }
        self.ending
            .iter()
            .chain(self.active.as_ref())
            .find(|transaction| transaction.data_end_queued())
            .map(|transaction| transaction.id())
    }

    /// The piece last taken from [`SmtpSession::poll_transmit`] is written
    /// and flushed at `now_ms`: the clock for the reply it asks for starts
    /// now, however long the write took.
    pub fn handle_written(&mut self, now_ms: u64) {
        if !self.is_closed() {
            self.wire.written(now_ms);
        }
    }

    /// How long the driver may take to write and flush one piece from
    /// [`SmtpSession::poll_transmit`], and to close the socket, in
    /// milliseconds. Past it, call [`SmtpSession::handle_write_timeout`].
    pub fn write_timeout_ms(&self) -> u64 {
        self.config.timeouts.write_ms
    }

    /// A write (or its flush) did not finish within
    /// [`SmtpSession::write_timeout_ms`]: the server stopped reading. The
    /// session ends at once (no QUIT could get through), retryably for
    /// every message whose data end was not yet handed out.
    pub fn handle_write_timeout(&mut self, now_ms: u64) {
        if self.is_closed() {
            return;
        }
        if self.only_quit_awaited() {
            // Only QUIT was left to say: nothing is lost.
            self.quit_done();
        } else {
            let failure = Outcome::new(OutcomeKind::Transient, Cause::WriteTimeout);
            self.fail_session(failure, false, now_ms);
        }
    }

    /// The ends of data in the pending transmit, oldest first. A driver that
    /// records deliveries in flight takes these before each
    /// [`SmtpSession::poll_transmit`] and writes its record first; one that
    /// does not may ignore them.
    pub fn poll_in_flight(&mut self) -> Option<InFlight> {
        self.in_flight.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`SmtpSession::handle_timeout`] if no input arrives,
    /// in the same clock as `now_ms`. `None` while nothing is awaited.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.is_closed() {
            None
        } else {
            self.wire.deadline()
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed { .. })
    }

    /// What the server advertised in its latest EHLO reply.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Bytes read from the socket.
    pub fn handle_input(&mut self, input: &[u8], now_ms: u64) {
        let mut rest = input;
        // Stops at the STARTTLS reply: whatever follows it in plaintext was
        // sent before the handshake and must not be read as a TLS-protected
        // reply (the STARTTLS response-injection attack).
        while !rest.is_empty() && !matches!(self.phase, Phase::Closed { .. } | Phase::TlsHandshake)
        {
            match self.parser.parse(&mut rest) {
                Ok(Some(reply)) => self.on_reply(reply, now_ms),
                Ok(None) => break,
                Err(error) => {
                    let failure = Outcome::new(OutcomeKind::Transient, Cause::Protocol(error));
                    self.fail_session(failure, false, now_ms);
                }
            }
        }
    }

    /// The TLS handshake after [`Event::StartTls`] succeeded.
    pub fn handle_tls_established(&mut self, now_ms: u64) {
        if !matches!(self.phase, Phase::TlsHandshake) {
            return;
        }
        self.phase = Phase::Opening;
        self.tls_active = true;
        // RFC 3207 §4.2: forget everything learned before TLS.
        self.capabilities = Capabilities::default();
        self.send_ehlo(now_ms);
    }

    /// The TLS handshake failed; the session ends as a configuration error.
    pub fn handle_tls_failed(&mut self, reason: impl Into<String>, now_ms: u64) {
        if self.is_closed() {
            return;
        }
        let failure = Outcome::new(OutcomeKind::Configuration, Cause::TlsFailed(reason.into()));
        self.fail_session(failure, false, now_ms);
    }

    /// The connection could not be made: every envelope fails transiently.
    pub fn connect_failed(&mut self, reason: impl Into<String>, now_ms: u64) {
        if self.is_closed() {
            return;
        }
        let failure = Outcome::new(OutcomeKind::Transient, Cause::ConnectFailed(reason.into()));
        self.fail_session(failure, false, now_ms);
    }

    /// The peer closed the connection (read returned 0).
    pub fn handle_closed(&mut self, now_ms: u64) {
        if self.is_closed() {
            return;
        }
        if self.only_quit_awaited() {
            self.quit_done();
        } else {
            let cause = if self.just_refused {
                Cause::DroppedAfterRefusal
            } else {
                Cause::ConnectionLost
            };
            let failure = Outcome::new(OutcomeKind::Transient, cause);
            self.fail_session(failure, false, now_ms);
        }
    }

    /// The deadline from [`SmtpSession::poll_timeout`] may have passed.
    /// Calls before the deadline are ignored.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let due = self
            .wire
            .deadline()
            .is_some_and(|deadline| now_ms >= deadline);
        if self.is_closed() || !due {
            return;
        }
        if self.only_quit_awaited() {
            self.quit_done();
        } else {
            let failure = Outcome::new(OutcomeKind::Transient, Cause::Timeout);
            self.fail_session(failure, false, now_ms);
        }
    }

    /// QUIT went out and nothing before it is still unanswered: losing the
    /// connection now loses nothing. (A QUIT pipelined behind the end of a
    /// message's data does not qualify until that data's reply is in.)
    fn only_quit_awaited(&self) -> bool {
        matches!(self.phase, Phase::Quitting { .. })
            && self.wire.next_expected() == Some(Expect::Quit)
    }

    /// Ready, with no transaction running and no reply awaited.
    fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Ready) && self.active.is_none() && !self.wire.is_waiting()
    }

    /// Whether more may be written now: the session is idle, or the newest
    /// transaction on the wire is a blind BDAT one, which nothing written
    /// behind it can disturb.
    fn may_advance(&self) -> bool {
        self.is_idle()
            || (matches!(self.phase, Phase::Ready)
                && self.active.is_none()
                && self.ending.back().is_some_and(Transaction::is_blind))
    }

    /// Starts the next envelopes (blind BDAT ones until the window is full,
    /// any other alone), or QUITs when asked to and none is left.
    fn advance(&mut self, now_ms: u64) {
        if !matches!(self.phase, Phase::Ready) {
            return;
        }
        while self.active.is_none() && self.ending.len() < pipeline::WINDOW {
            let Some(envelope) = self.queue.pop_front() else {
                break;
            };
            if let Some(transaction) = self.prepare(envelope) {
                self.start(transaction, now_ms);
            }
        }
        if self.finishing && self.queue.is_empty() && self.active.is_none() {
            self.send_quit(None, now_ms);
        }
    }

    /// Checks an envelope against the server's extensions before anything
    /// of it is written; one that cannot go gets its outcome now.
    fn prepare(&mut self, envelope: Envelope) -> Option<Transaction> {
        match Transaction::prepare(envelope, &self.capabilities, &self.config) {
            Ok(transaction) => Some(transaction),
            Err(outcome) => {
                self.emit(outcome);
                None
            }
        }
    }

    /// Writes a transaction's commands (after the RSET a BDAT before it
    /// may need). A blind one is written whole, data end included, and
    /// joins the transactions awaiting replies at once.
    fn start(&mut self, mut transaction: Transaction, now_ms: u64) {
        if self.rset_owed {
            self.wire.command(b"RSET\r\n", Expect::Rset, now_ms);
            self.rset_owed = false;
        }
        transaction.start_part(&mut self.wire, now_ms);
        if transaction.is_blind() {
            self.in_flight.push_back(transaction.in_flight());
            self.rset_owed = pipeline::owes_rset(&transaction);
            self.ending.push_back(transaction);
        } else {
            self.active = Some(transaction);
        }
    }

    fn send_quit(&mut self, failure: Option<Outcome>, now_ms: u64) {
        self.phase = Phase::Quitting { failure };
        self.wire.command(b"QUIT\r\n", Expect::Quit, now_ms);
    }

    fn on_reply(&mut self, reply: Reply, now_ms: u64) {
        self.just_refused = false;
        let Some(expect) = self.wire.take_expected(now_ms) else {
            // Nothing was asked: a 421 before an idle close, or a broken server.
            let failure = Outcome::unexpected(reply);
            self.fail_session(failure, false, now_ms);
            return;
        };
        if reply.code == 421 && expect != Expect::Quit {
            // RFC 5321 §3.8: the server is shutting down this connection.
            // A 421 to the end of data is a definite "not delivered".
            // So is one to a blind transaction's MAIL or RCPT: the server
            // closes before it reads that transaction's BDAT.
            if let Some(transaction) = self.ending.front_mut().or(self.active.as_mut())
                && (matches!(expect, Expect::DataEnd | Expect::BdatLast)
                    || (transaction.is_blind() && matches!(expect, Expect::Mail | Expect::Rcpt(_))))
            {
                transaction.data_end_refused();
            }
            self.fail_session(Outcome::from_reply(reply), false, now_ms);
            return;
        }
        match expect {
            Expect::Greeting => self.on_greeting(reply, now_ms),
            Expect::Ehlo => self.on_ehlo(reply, now_ms),
            Expect::Helo => self.on_helo(reply, now_ms),
            Expect::StartTls => self.on_starttls(reply, now_ms),
            Expect::AuthResult
            | Expect::AuthLoginUsername
            | Expect::AuthLoginPassword
            | Expect::AuthXOAuth2 => self.on_auth(expect, reply, now_ms),
            Expect::Mail
            | Expect::Rcpt(_)
            | Expect::Data
            | Expect::DataEnd
            | Expect::BdatLast
            | Expect::DataEndDiscard => {
                let refused = reply.is_permanent_negative() && expect != Expect::DataEndDiscard;
                self.on_transaction_reply(expect, reply, now_ms);
                self.just_refused = refused;
            }
            Expect::Rset => self.on_rset(reply, now_ms),
            Expect::Quit => self.quit_done(),
        }
    }

    fn on_greeting(&mut self, reply: Reply, now_ms: u64) {
        if reply.code != 220 {
            let failure = if reply.is_positive() || reply.is_intermediate() {
                Outcome::unexpected(reply)
            } else {
                Outcome::session_reply(reply)
            };
            // RFC 5321 §3.1: after a 554 greeting the server waits for QUIT.
            self.fail_session(failure, true, now_ms);
        } else if !is_valid_ehlo_name(&self.config.ehlo_name) {
            let failure = Outcome::new(OutcomeKind::Configuration, Cause::InvalidEhloName);
            self.fail_session(failure, true, now_ms);
        } else {
            self.send_ehlo(now_ms);
        }
    }

    fn send_ehlo(&mut self, now_ms: u64) {
        let command = format!("EHLO {}\r\n", self.config.ehlo_name);
        self.wire.command(command.as_bytes(), Expect::Ehlo, now_ms);
    }

    fn on_ehlo(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_positive() {
            self.capabilities = Capabilities::from_ehlo_reply(&reply);
            self.after_hello(now_ms);
        } else if reply.is_permanent_negative() {
            // An old server without ESMTP: HELO, and no extensions.
            let command = format!("HELO {}\r\n", self.config.ehlo_name);
            self.wire.command(command.as_bytes(), Expect::Helo, now_ms);
        } else {
            self.fail_negative_or_unexpected(reply, now_ms);
        }
    }

    fn on_helo(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_positive() {
            self.capabilities = Capabilities::default();
            self.after_hello(now_ms);
        } else {
            self.fail_negative_or_unexpected(reply, now_ms);
        }
    }

    /// After EHLO/HELO: upgrade to TLS, authenticate, or start work.
    fn after_hello(&mut self, now_ms: u64) {
        if !self.tls_active && self.config.security == Security::StartTls {
            if self.capabilities.starttls {
                self.wire.command(b"STARTTLS\r\n", Expect::StartTls, now_ms);
            } else {
                let failure = Outcome::new(OutcomeKind::Configuration, Cause::StartTlsNotOffered);
                self.fail_session(failure, true, now_ms);
            }
            return;
        }
        let Some(credentials) = &self.config.credentials else {
            self.phase = Phase::Ready;
            self.advance(now_ms);
            return;
        };
        // Credentials only ever travel encrypted unless plaintext was chosen.
        if !self.tls_active && self.config.security != Security::Insecure {
            let failure = Outcome::new(OutcomeKind::Configuration, Cause::StartTlsNotOffered);
            self.fail_session(failure, true, now_ms);
            return;
        }
        let Some(mechanism) = auth::choose_mechanism(credentials, self.capabilities.auth) else {
            let failure = Outcome::new(OutcomeKind::Configuration, Cause::AuthNotOffered);
            self.fail_session(failure, true, now_ms);
            return;
        };
        let command = auth::initial_command(credentials, mechanism);
        let expect = match mechanism {
            Mechanism::Plain => Expect::AuthResult,
            Mechanism::Login => Expect::AuthLoginUsername,
            Mechanism::XOAuth2 => Expect::AuthXOAuth2,
        };
        self.wire.command(command.as_bytes(), expect, now_ms);
    }

    fn on_starttls(&mut self, reply: Reply, now_ms: u64) {
        if reply.code == 220 {
            self.phase = Phase::TlsHandshake;
            self.parser.reset();
            self.events.push_back(Event::StartTls);
        } else {
            self.fail_negative_or_unexpected(reply, now_ms);
        }
    }

    fn on_auth(&mut self, step: Expect, reply: Reply, now_ms: u64) {
        match (step, reply.code / 100) {
            (Expect::AuthResult | Expect::AuthXOAuth2, 2) => {
                self.phase = Phase::Ready;
                self.advance(now_ms);
            }
            (Expect::AuthLoginUsername | Expect::AuthLoginPassword, 3) => {
                let Some(Credentials::Password { username, password }) = &self.config.credentials
                else {
                    return self.fail_session(Outcome::unexpected(reply), false, now_ms);
                };
                let (value, next) = if step == Expect::AuthLoginUsername {
                    (username, Expect::AuthLoginPassword)
                } else {
                    (password, Expect::AuthResult)
                };
                let line = auth::encoded_line(value);
                self.wire.command(line.as_bytes(), next, now_ms);
            }
            // XOAUTH2 reports failure as a 334 challenge with details; an
            // empty response makes the server send the final 5xx.
            (Expect::AuthXOAuth2, 3) => self.wire.command(b"\r\n", Expect::AuthResult, now_ms),
            _ => self.fail_negative_or_unexpected(reply, now_ms),
        }
    }

    /// A reply to a transaction's command: the oldest transaction on the
    /// wire's (the end of data pipelined past, or a blind transaction's
    /// MAIL, RCPT or BDAT), else the active transaction's.
    fn on_transaction_reply(&mut self, expect: Expect, reply: Reply, now_ms: u64) {
        if let Some(ending) = self.ending.front_mut() {
            let settled = match expect {
                Expect::DataEnd | Expect::BdatLast => pipeline::settle_ending(ending, reply)
                    .map(Some)
                    .map_err(Outcome::unexpected),
                // A blind transaction's MAIL and RCPT replies: its data is
                // on the wire already, so they only settle recipients.
                Expect::Mail | Expect::Rcpt(_) if ending.is_blind() => {
                    match ending.on_reply(&mut self.wire, expect, reply, now_ms) {
                        Progress::Waiting => Ok(None),
                        Progress::Unexpected(reply) => Err(Outcome::unexpected(reply)),
                        // Nothing is left to write for it: not reached.
                        Progress::DataEndSent | Progress::Concluded | Progress::Abandoned => {
                            Err(Outcome::new(OutcomeKind::Transient, Cause::UnexpectedReply))
                        }
                    }
                }
                _ => Err(Outcome::unexpected(reply)),
            };
            return match settled {
                Ok(Some(_)) => self.on_pipelined_data_end(now_ms),
                Ok(None) => {}
                Err(failure) => self.fail_session(failure, false, now_ms),
            };
        }
        let progress = match self.active.as_mut() {
            Some(transaction) => transaction.on_reply(&mut self.wire, expect, reply, now_ms),
            None => Progress::Unexpected(reply),
        };
        match progress {
            Progress::Waiting => {}
            Progress::DataEndSent => {
                if let Some(transaction) = self.active.as_ref() {
                    self.in_flight.push_back(transaction.in_flight());
                }
                self.pipeline_after_data_end(now_ms)
            }
            Progress::Concluded => {
                self.report_active();
                self.advance(now_ms);
            }
            Progress::Abandoned => {
                // The server may still hold part of it.
                self.report_active();
                self.wire.command(b"RSET\r\n", Expect::Rset, now_ms);
                self.rset_owed = false;
            }
            Progress::Unexpected(reply) => {
                self.fail_session(Outcome::unexpected(reply), false, now_ms);
            }
        }
    }

    /// Called right after the active transaction's end of data (the final
    /// dot, or `BDAT … LAST` with its chunk) was written: appends the next
    /// envelope's commands, or QUIT, to the same transmit when
    /// `pipeline.rs` allows it.
    fn pipeline_after_data_end(&mut self, now_ms: u64) {
        let Some(current) = self.active.as_ref() else {
            return;
        };
        if !pipeline::may_follow_data_end(current) || !self.ending.is_empty() {
            return;
        }
        if self.queue.is_empty() && !self.finishing {
            return;
        }
        if let Some(ending) = self.active.take() {
            self.rset_owed = pipeline::owes_rset(&ending);
            self.ending.push_back(ending);
        }
        // Envelopes the server's extensions rule out are settled in
        // `advance`, before anything of them is written.
        self.advance(now_ms);
    }

    /// The pipelined-past transaction is settled: report it; the session
    /// goes on with whatever was pipelined behind it.
    fn on_pipelined_data_end(&mut self, now_ms: u64) {
        if let Some(ending) = self.ending.pop_front() {
            self.emit(ending.finish());
        }
        // Nothing was pipelined when every queued envelope was refused
        // locally; envelopes handed over since then start now. Blind BDAT
        // transactions refill the window as the oldest settle.
        if self.may_advance() {
            self.advance(now_ms);
        }
    }

    /// Reports the active transaction, which has run its course.
    fn report_active(&mut self) {
        if let Some(transaction) = self.active.take() {
            self.emit(transaction.finish());
        }
    }

    fn on_rset(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_positive() {
            // A RSET pipelined ahead of the next transaction leaves that
            // transaction's replies to come: nothing to start then.
            if self.is_idle() {
                self.advance(now_ms);
            }
        } else {
            // The server's transaction state is unclear; start afresh later.
            self.fail_session(Outcome::unexpected(reply), true, now_ms);
        }
    }

    /// A session-level command failed: 4xx is transient, 5xx a setup
    /// problem; anything else is a confused server.
    fn fail_negative_or_unexpected(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_transient_negative() || reply.is_permanent_negative() {
            self.fail_session(Outcome::session_reply(reply), true, now_ms);
        } else {
            self.fail_session(Outcome::unexpected(reply), false, now_ms);
        }
    }

    /// Ends the session: the active transaction and every queued envelope
    /// get their outcome now; then QUIT politely or close at once.
    /// `failure` is Transient or Configuration, never a per-message kind.
    fn fail_session(&mut self, failure: Outcome, quit: bool, now_ms: u64) {
        // In wire order: the message whose data end is unanswered, then the
        // transaction pipelined behind it.
        while let Some(transaction) = self.ending.pop_front() {
            self.emit(transaction.fail(&failure));
        }
        if let Some(transaction) = self.active.take() {
            self.emit(transaction.fail(&failure));
        }
        while let Some(envelope) = self.queue.pop_front() {
            self.emit(transaction::not_attempted(envelope, &failure));
        }
        self.wire.clear();
        let quit_sent = matches!(self.phase, Phase::Quitting { .. } | Phase::Closed { .. });
        if quit && !quit_sent {
            self.send_quit(Some(failure), now_ms);
        } else {
            self.close(Some(failure));
        }
    }

    /// QUIT was answered, or the connection ended when only QUIT was
    /// awaited: the session closes with whatever failure sent QUIT.
    fn quit_done(&mut self) {
        let failure = match &mut self.phase {
            Phase::Quitting { failure } => failure.take(),
            _ => None,
        };
        self.close(failure);
    }

    fn close(&mut self, failure: Option<Outcome>) {
        self.wire.clear();
        self.events.push_back(Event::Closed {
            failure: failure.clone(),
        });
        self.phase = Phase::Closed { failure };
    }

    fn emit(&mut self, outcome: TransactionOutcome) {
        self.events.push_back(Event::TransactionDone(outcome));
    }
}

/// The EHLO argument must be one token of printable ASCII.
fn is_valid_ehlo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic())
}
