//! The session: configuration, the driver-facing API, and the part of the
//! conversation before and after mail transactions (greeting, EHLO/HELO,
//! STARTTLS, AUTH, QUIT, and ending the session on failure). Transactions
//! themselves live in `transaction.rs`.

use std::collections::VecDeque;

use super::auth::{self, Credentials, Mechanism};
use super::capabilities::Capabilities;
use super::envelope::Envelope;
use super::outcome::{Cause, Outcome, OutcomeKind, RecipientOutcome, TransactionOutcome};
use super::reply::{Reply, ReplyParser};
use super::transaction::Transaction;
use super::wire::{Expect, Wire};

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS is up before the greeting (port 465).
    ImplicitTls,
    /// Plaintext until STARTTLS, which the server must offer (port 587).
    StartTls,
    /// Plaintext throughout, AUTH included. Only for explicitly configured
    /// test or private-network upstreams.
    Insecure,
}

/// How long to wait for each reply, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From connection to the greeting.
    pub greeting_ms: u64,
    /// For each command's reply.
    pub command_ms: u64,
    /// For the reply to the end of the message data, which servers answer
    /// only after their content checks.
    pub data_end_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting_ms: 30_000,
            command_ms: 30_000,
            data_end_ms: 60_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// Name sent with EHLO/HELO.
    pub ehlo_name: String,
    pub security: Security,
    pub credentials: Option<Credentials>,
    pub timeouts: Timeouts,
    /// Use PIPELINING when offered; off forces lock-step.
    pub use_pipelining: bool,
    /// Use CHUNKING (BDAT) when offered; off forces DATA.
    pub use_chunking: bool,
}

impl SmtpConfig {
    pub fn new(ehlo_name: impl Into<String>, security: Security) -> Self {
        SmtpConfig {
            ehlo_name: ehlo_name.into(),
            security,
            credentials: None,
            timeouts: Timeouts::default(),
            use_pipelining: true,
            use_chunking: true,
        }
    }
}

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

/// A sans-IO SMTP submission client for one connection.
#[derive(Debug)]
pub struct SmtpSession {
    pub(crate) config: SmtpConfig,
    parser: ReplyParser,
    pub(crate) wire: Wire,
    pub(crate) capabilities: Capabilities,
    events: VecDeque<Event>,
    pub(crate) queue: VecDeque<Envelope>,
    pub(crate) active: Option<Transaction>,
    /// A transaction whose end of data is on the wire, awaiting its reply,
    /// while the next transaction's commands (or QUIT) follow it in the
    /// same pipelined group; see `pipeline.rs`.
    pub(crate) ending: Option<Transaction>,
    tls_active: bool,
    awaiting_tls: bool,
    /// Greeting, EHLO, TLS and AUTH are done; transactions may run.
    ready: bool,
    /// The caller wants QUIT once the queue is empty.
    pub(crate) finishing: bool,
    quit_sent: bool,
    closed: bool,
    /// Why the session ended early.
    failure: Option<Outcome>,
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
            parser: ReplyParser::new(),
            wire,
            capabilities: Capabilities::default(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            active: None,
            ending: None,
            awaiting_tls: false,
            ready: false,
            finishing: false,
            quit_sent: false,
            closed: false,
            failure: None,
        }
    }

    /// Queues an envelope. Each one yields exactly one
    /// [`Event::TransactionDone`], immediately if the session is over.
    pub fn send(&mut self, envelope: Envelope, now_ms: u64) {
        if self.closed || self.quit_sent {
            let outcome = self
                .failure
                .clone()
                .unwrap_or_else(|| Outcome::new(OutcomeKind::Transient, Cause::SessionClosed));
            self.emit_not_attempted(envelope, &outcome);
            return;
        }
        self.queue.push_back(envelope);
        if self.is_idle() {
            self.advance(now_ms);
        }
    }

    /// Asks for QUIT once every queued envelope is done.
    pub fn finish(&mut self, now_ms: u64) {
        self.finishing = true;
        if self.is_idle() {
            self.advance(now_ms);
        }
    }

    /// Bytes to write to the socket, all pending output in one piece (so a
    /// pipelined group goes out in one write).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.wire.take_transmit()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`SmtpSession::handle_timeout`] if no input arrives,
    /// in the same clock as `now_ms`. `None` while nothing is awaited.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.closed {
            None
        } else {
            self.wire.deadline()
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
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
        while !rest.is_empty() && !self.closed && !self.awaiting_tls {
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
        if !self.awaiting_tls || self.closed {
            return;
        }
        self.awaiting_tls = false;
        self.tls_active = true;
        // RFC 3207 §4.2: forget everything learned before TLS.
        self.capabilities = Capabilities::default();
        self.send_ehlo(now_ms);
    }

    /// The TLS handshake failed; the session ends as a configuration error.
    pub fn handle_tls_failed(&mut self, reason: impl Into<String>, now_ms: u64) {
        if self.closed {
            return;
        }
        let failure = Outcome::new(OutcomeKind::Configuration, Cause::TlsFailed(reason.into()));
        self.fail_session(failure, false, now_ms);
    }

    /// The connection could not be made: every envelope fails transiently.
    pub fn connect_failed(&mut self, reason: impl Into<String>, now_ms: u64) {
        if self.closed {
            return;
        }
        let failure = Outcome::new(OutcomeKind::Transient, Cause::ConnectFailed(reason.into()));
        self.fail_session(failure, false, now_ms);
    }

    /// The peer closed the connection (read returned 0).
    pub fn handle_closed(&mut self, now_ms: u64) {
        if self.closed {
            return;
        }
        if self.only_quit_awaited() {
            self.close();
        } else {
            let failure = Outcome::new(OutcomeKind::Transient, Cause::ConnectionLost);
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
        if self.closed || !due {
            return;
        }
        if self.only_quit_awaited() {
            self.close();
        } else {
            let failure = Outcome::new(OutcomeKind::Transient, Cause::Timeout);
            self.fail_session(failure, false, now_ms);
        }
    }

    /// QUIT went out and nothing before it is still unanswered: losing the
    /// connection now loses nothing. (A QUIT pipelined behind the end of a
    /// message's data does not qualify until that data's reply is in.)
    fn only_quit_awaited(&self) -> bool {
        self.quit_sent && self.wire.next_expected() == Some(Expect::Quit)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.ready
            && !self.closed
            && !self.quit_sent
            && self.active.is_none()
            && !self.wire.is_waiting()
    }

    /// Starts the next envelope, or QUITs when asked to and none is left.
    pub(crate) fn advance(&mut self, now_ms: u64) {
        while let Some(envelope) = self.queue.pop_front() {
            if self.start_transaction(envelope, now_ms) {
                return;
            }
        }
        if self.finishing {
            self.send_quit(now_ms);
        }
    }

    pub(crate) fn send_quit(&mut self, now_ms: u64) {
        self.quit_sent = true;
        self.wire.command(b"QUIT\r\n", Expect::Quit, now_ms);
    }

    fn on_reply(&mut self, reply: Reply, now_ms: u64) {
        let Some(expect) = self.wire.take_expected(now_ms) else {
            // Nothing was asked: a 421 before an idle close, or a broken server.
            let failure = unexpected(reply);
            self.fail_session(failure, false, now_ms);
            return;
        };
        if reply.code == 421 && expect != Expect::Quit {
            // RFC 5321 §3.8: the server is shutting down this connection.
            // A 421 to the end of data is a definite "not delivered".
            if let Some(transaction) = self.ending.as_mut().or(self.active.as_mut())
                && matches!(expect, Expect::DataEnd | Expect::BdatLast)
            {
                transaction.data_sent = false;
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
            Expect::Mail => self.on_mail(reply, now_ms),
            Expect::Rcpt(index) => self.on_rcpt(index, reply, now_ms),
            Expect::Data => self.on_data(reply, now_ms),
            Expect::DataEnd | Expect::BdatLast => self.on_data_end(expect, reply, now_ms),
            Expect::DataEndDiscard => self.on_data_end_discard(now_ms),
            Expect::Rset => self.on_rset(reply, now_ms),
            Expect::Quit => self.close(),
        }
    }

    fn on_greeting(&mut self, reply: Reply, now_ms: u64) {
        if reply.code != 220 {
            let failure = if reply.is_positive() || reply.is_intermediate() {
                unexpected(reply)
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
            self.ready = true;
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
            self.awaiting_tls = true;
            self.parser.reset();
            self.events.push_back(Event::StartTls);
        } else {
            self.fail_negative_or_unexpected(reply, now_ms);
        }
    }

    fn on_auth(&mut self, step: Expect, reply: Reply, now_ms: u64) {
        match (step, reply.code / 100) {
            (Expect::AuthResult | Expect::AuthXOAuth2, 2) => {
                self.ready = true;
                self.advance(now_ms);
            }
            (Expect::AuthLoginUsername | Expect::AuthLoginPassword, 3) => {
                let Some(Credentials::Password { username, password }) = &self.config.credentials
                else {
                    return self.fail_session(unexpected(reply), false, now_ms);
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

    fn on_rset(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_positive() {
            // A RSET pipelined ahead of the next transaction leaves that
            // transaction's replies to come: nothing to start then.
            if self.is_idle() {
                self.advance(now_ms);
            }
        } else {
            // The server's transaction state is unclear; start afresh later.
            self.fail_session(unexpected(reply), true, now_ms);
        }
    }

    /// A session-level command failed: 4xx is transient, 5xx a setup
    /// problem; anything else is a confused server.
    fn fail_negative_or_unexpected(&mut self, reply: Reply, now_ms: u64) {
        if reply.is_transient_negative() || reply.is_permanent_negative() {
            self.fail_session(Outcome::session_reply(reply), true, now_ms);
        } else {
            self.fail_session(unexpected(reply), false, now_ms);
        }
    }

    /// Ends the session: the active transaction and every queued envelope
    /// get their outcome now; then QUIT politely or close at once.
    /// `failure` is Transient or Configuration, never a per-message kind.
    pub(crate) fn fail_session(&mut self, failure: Outcome, quit: bool, now_ms: u64) {
        // In wire order: the message whose data end is unanswered, then the
        // transaction pipelined behind it.
        if let Some(transaction) = self.ending.take() {
            let outcome = transaction.fail(&failure);
            self.events.push_back(Event::TransactionDone(outcome));
        }
        if let Some(transaction) = self.active.take() {
            let outcome = transaction.fail(&failure);
            self.events.push_back(Event::TransactionDone(outcome));
        }
        while let Some(envelope) = self.queue.pop_front() {
            self.emit_not_attempted(envelope, &failure);
        }
        self.wire.clear();
        self.ready = false;
        self.awaiting_tls = false;
        self.failure = Some(failure);
        if quit && !self.quit_sent {
            self.send_quit(now_ms);
        } else {
            self.close();
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.wire.clear();
        self.events.push_back(Event::Closed {
            failure: self.failure.clone(),
        });
    }

    pub(crate) fn emit(&mut self, outcome: TransactionOutcome) {
        self.events.push_back(Event::TransactionDone(outcome));
    }

    fn emit_not_attempted(&mut self, envelope: Envelope, failure: &Outcome) {
        let recipients = envelope
            .rcpt_to
            .into_iter()
            .map(|address| RecipientOutcome {
                address,
                outcome: failure.clone(),
            })
            .collect();
        self.emit(TransactionOutcome::summarise(
            envelope.id,
            recipients,
            failure.clone(),
        ));
    }
}

/// A reply that has no place at this point of the conversation.
pub(crate) fn unexpected(reply: Reply) -> Outcome {
    Outcome::new(OutcomeKind::Transient, Cause::UnexpectedReply).with_reply(reply)
}

/// The EHLO argument must be one token of printable ASCII.
fn is_valid_ehlo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic())
}
