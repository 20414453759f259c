//! Mail transactions: MAIL, RCPT, DATA or BDAT, RSET, pipelined or in
//! lock-step, with per-recipient results.
//!
//! One envelope may take several SMTP transactions ("parts"): recipients
//! refused with 452 (too many recipients, RFC 5321 §4.5.3.1.10) are sent
//! again in a new transaction on the same connection once the current one
//! has delivered. A part that delivers to nobody ends the envelope, and
//! recipients still deferred get a transient `TooManyRecipients` outcome
//! for the caller to retry; that rule also guarantees the loop ends.
//!
//! A transaction that goes out "blind" (pipelined BDAT, at most
//! [`BLIND_RECIPIENTS`] recipients) writes MAIL, its RCPTs and `BDAT …
//! LAST` with the message at once; its RCPT replies then only settle
//! recipients, and the reply to the BDAT settles the accepted ones. It gets
//! no second part: recipients deferred by 452 go back to the caller.
//!
//! A [`Transaction`] is driven over the [`Wire`]: it writes its own
//! commands, reads the replies to them, and tells the session what follows
//! ([`Progress`]). It owns what every MAIL, RCPT, DATA and end-of-data
//! reply means for its recipients. Must not: know about the session: the
//! connection's phase, the queue of envelopes, QUIT and pipelining past the
//! end of data are the session's (and `pipeline.rs`'s) business.

use super::capabilities::Capabilities;
use super::config::SmtpConfig;
use super::dsn::DsnRequest;
use super::envelope::{Envelope, is_safe_address};
use super::outcome::{Cause, Outcome, OutcomeKind, RecipientOutcome, TransactionOutcome};
use super::reply::Reply;
use super::transparency::{ContentEncoder, DATA_TERMINATOR, normalised_len};
use super::wire::{Expect, Wire};

/// The most recipients a transaction may have and still go out blind
/// (`BDAT … LAST` before the RCPT replies): RFC 5321 §4.5.3.1.8 makes every
/// server take at least 100 per transaction, so no 452 is expected below it.
/// A larger envelope waits for its RCPT replies, so that recipients
/// deferred by 452 can go again in a second part on the same connection.
pub(crate) const BLIND_RECIPIENTS: usize = 100;

#[derive(Debug)]
enum RecipientState {
    /// To be sent (or sent, reply outstanding) in the current part.
    Pending,
    /// RCPT accepted in the current part; the data decides the outcome.
    Accepted,
    /// 452: try again in the next part.
    Deferred(Reply),
    Done(Outcome),
}

/// How far the end of the data has got. Only once the bytes that end it
/// (the final `.` CRLF, or the last byte of `BDAT … LAST`) may be on the
/// wire can the server hold a complete message: a failure before that is
/// a plain, retryable one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataEndState {
    /// Not written, or its reply is in.
    Idle,
    /// Written to the wire's buffer, behind the content; not yet handed to
    /// the driver, so the content may still be failing to go out.
    Queued,
    /// Handed to the driver for writing: from now on a failure leaves the
    /// delivery unknown. A write of those bytes that fails or stalls counts
    /// here too: part of it may have gone out, or go out yet.
    OnTheWire,
}

#[derive(Debug)]
struct Recipient {
    address: String,
    state: RecipientState,
}

/// The envelope being delivered.
#[derive(Debug)]
pub(crate) struct Transaction {
    id: u64,
    mail_command: String,
    recipients: Vec<Recipient>,
    /// The message, shared with the caller; encoded (dot-stuffed for DATA,
    /// normalised for BDAT) only as it is written, its end written apart.
    data: std::rc::Rc<Vec<u8>>,
    /// Its length as BDAT sends it.
    size: u64,
    use_bdat: bool,
    pipelined: bool,
    /// `BDAT … LAST` goes out with MAIL and RCPT, before their replies:
    /// see `pipeline.rs`.
    blind: bool,
    /// Recipient indices in the current part, in RCPT order.
    part: Vec<usize>,
    /// Lock-step: how many RCPTs of the part have been sent.
    rcpts_sent: usize,
    mail_accepted: bool,
    /// DATA (or, blind, `BDAT … LAST` with the data) went out with MAIL
    /// and RCPT, so its reply is already awaited.
    data_pipelined: bool,
    /// Where the end of the data is; see [`DataEndState`].
    data_end: DataEndState,
    /// The notifications asked for, when the server offers DSN.
    dsn: Option<DsnRequest>,
}

/// A transaction's end of data is about to go out: the bytes that end its
/// data (the final dot, or `BDAT … LAST` with its chunk) are in the next
/// `SmtpSession::poll_transmit`. Once they are written the upstream may
/// take the message at any moment, so the driver records `recipients` as in
/// flight before it writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The envelope's id, as given to `SmtpSession::send`.
    pub id: u64,
    /// The recipients the upstream accepted in this transaction.
    pub recipients: Vec<String>,
}

/// What the session must do after a transaction handled a reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More of this transaction's replies are due; whatever had to be
    /// written next is on the wire.
    Waiting,
    /// The end of the data went on the wire just now: the next transaction
    /// may follow it in the same write (see `pipeline.rs`).
    DataEndSent,
    /// Over, and the server closed the transaction itself: report it and
    /// go on with the next envelope.
    Concluded,
    /// Over, but the server may still hold part of it: report it and RSET
    /// before anything else.
    Abandoned,
    /// A reply that has no place here: the conversation cannot go on.
    Unexpected(Reply),
}

impl Transaction {
    /// Checks an envelope against the server's capabilities (SIZE,
    /// SMTPUTF8, 8BITMIME, address safety) before anything of it is
    /// written. An envelope that fails, or has no recipient left to try,
    /// gets its outcome now as the error.
    pub(crate) fn prepare(
        envelope: Envelope,
        capabilities: &Capabilities,
        config: &SmtpConfig,
    ) -> Result<Transaction, TransactionOutcome> {
        let permanent = |cause| Outcome::new(OutcomeKind::Permanent, cause);
        let needs_smtputf8 = envelope.requires_smtputf8();
        let size = normalised_len(&envelope.data);
        let refusal = if !is_safe_address(&envelope.mail_from) {
            Some(permanent(Cause::InvalidAddress(envelope.mail_from.clone())))
        } else if envelope.rcpt_to.is_empty() {
            Some(permanent(Cause::NoRecipients))
        } else if needs_smtputf8 && !capabilities.smtputf8 {
            Some(permanent(Cause::Smtputf8NotOffered))
        } else if envelope.has_8bit && !capabilities.eight_bit_mime {
            Some(permanent(Cause::EightBitMimeNotOffered))
        } else {
            match capabilities.size {
                Some(limit) if limit > 0 && size > limit => {
                    Some(permanent(Cause::SizeExceeded { size, limit }))
                }
                _ => None,
            }
        };
        if let Some(outcome) = refusal {
            return Err(not_attempted(envelope, &outcome));
        }

        let recipients: Vec<Recipient> = envelope
            .rcpt_to
            .into_iter()
            .map(|address| {
                let state = if address.is_empty() || !is_safe_address(&address) {
                    RecipientState::Done(permanent(Cause::InvalidAddress(address.clone())))
                } else {
                    RecipientState::Pending
                };
                Recipient { address, state }
            })
            .collect();

        let mut mail_command = format!("MAIL FROM:<{}>", envelope.mail_from);
        if capabilities.size.is_some() {
            mail_command.push_str(&format!(" SIZE={size}"));
        }
        if envelope.has_8bit {
            mail_command.push_str(" BODY=8BITMIME");
        }
        if needs_smtputf8 {
            mail_command.push_str(" SMTPUTF8");
        }
        // Only to a server that offered DSN: another would refuse MAIL.
        let dsn = envelope.dsn.filter(|_| capabilities.dsn);
        if let Some(request) = &dsn {
            mail_command.push_str(&request.mail_parameters());
        }
        mail_command.push_str("\r\n");

        let use_bdat = capabilities.chunking && config.use_chunking;
        let pipelined = capabilities.pipelining && config.use_pipelining;
        let blind = use_bdat && pipelined && recipients.len() <= BLIND_RECIPIENTS;
        let transaction = Transaction {
            id: envelope.id,
            mail_command,
            recipients,
            data: envelope.data,
            size,
            use_bdat,
            pipelined,
            blind,
            part: Vec::new(),
            rcpts_sent: 0,
            mail_accepted: false,
            data_pipelined: false,
            data_end: DataEndState::Idle,
            dsn,
        };
        if !transaction
            .recipients
            .iter()
            .any(|r| matches!(r.state, RecipientState::Pending))
        {
            return Err(transaction.finish());
        }
        Ok(transaction)
    }

    /// Sends MAIL (and, pipelined, every RCPT and DATA) for the recipients
    /// not yet settled.
    pub(crate) fn start_part(&mut self, wire: &mut Wire, now_ms: u64) {
        for recipient in &mut self.recipients {
            if matches!(recipient.state, RecipientState::Deferred(_)) {
                recipient.state = RecipientState::Pending;
            }
        }
        self.part = (0..self.recipients.len())
            .filter(|&i| {
                matches!(
                    self.recipients.get(i).map(|r| &r.state),
                    Some(RecipientState::Pending)
                )
            })
            .collect();
        self.rcpts_sent = 0;
        self.mail_accepted = false;
        self.data_pipelined = false;
        self.data_end = DataEndState::Idle;
        wire.command(self.mail_command.as_bytes(), Expect::Mail, now_ms);
        if self.pipelined {
            for &index in &self.part {
                if let Some(recipient) = self.recipients.get(index) {
                    let command = self.rcpt_command(&recipient.address);
                    wire.command(command.as_bytes(), Expect::Rcpt(index), now_ms);
                }
            }
            self.rcpts_sent = self.part.len();
            if self.blind {
                self.write_bdat_last(wire, now_ms);
                self.data_pipelined = true;
            } else if !self.use_bdat {
                wire.command(b"DATA\r\n", Expect::Data, now_ms);
                self.data_pipelined = true;
            }
        }
    }

    /// `BDAT <size> LAST` and the whole message as its one chunk.
    fn write_bdat_last(&mut self, wire: &mut Wire, now_ms: u64) {
        let command = format!("BDAT {} LAST\r\n", self.size);
        // The chunk is complete only with its last byte (always the LF
        // of its final CRLF); an empty one with the command line itself.
        if self.size > 0 {
            wire.write(command.as_bytes());
            wire.content(ContentEncoder::for_bdat(self.data.clone()).without_final_lf());
            wire.data_end(b"\n", Expect::BdatLast, now_ms);
        } else {
            wire.data_end(command.as_bytes(), Expect::BdatLast, now_ms);
        }
        self.data_end = DataEndState::Queued;
    }

    /// Handles the reply to one of this transaction's commands (`expect`
    /// says which) and writes whatever has to follow it.
    pub(crate) fn on_reply(
        &mut self,
        wire: &mut Wire,
        expect: Expect,
        reply: Reply,
        now_ms: u64,
    ) -> Progress {
        match expect {
            Expect::Mail => self.on_mail(wire, reply, now_ms),
            Expect::Rcpt(index) => self.on_rcpt(wire, index, reply, now_ms),
            Expect::Data => self.on_data(wire, reply, now_ms),
            Expect::DataEnd | Expect::BdatLast => self.on_data_end(wire, expect, reply, now_ms),
            // The bare terminator ends a transaction with nobody to deliver
            // to, whatever the server makes of it.
            Expect::DataEndDiscard => Progress::Concluded,
            // Not a transaction's command.
            Expect::Greeting
            | Expect::Ehlo
            | Expect::Helo
            | Expect::StartTls
            | Expect::AuthResult
            | Expect::AuthLoginUsername
            | Expect::AuthLoginPassword
            | Expect::AuthXOAuth2
            | Expect::Rset
            | Expect::Quit => Progress::Unexpected(reply),
        }
    }

    /// `RCPT TO` for `address`, with the DSN parameters when asked for.
    fn rcpt_command(&self, address: &str) -> String {
        let parameters = self
            .dsn
            .as_ref()
            .map(|d| d.rcpt_parameters(address))
            .unwrap_or_default();
        format!("RCPT TO:<{address}>{parameters}\r\n")
    }

    fn send_next_rcpt(&mut self, wire: &mut Wire, now_ms: u64) {
        let next = self.part.get(self.rcpts_sent).copied();
        let Some(recipient) = next.and_then(|index| self.recipients.get(index)) else {
            return;
        };
        let command = self.rcpt_command(&recipient.address);
        self.rcpts_sent += 1;
        if let Some(index) = next {
            wire.command(command.as_bytes(), Expect::Rcpt(index), now_ms);
        }
    }

    fn on_mail(&mut self, wire: &mut Wire, reply: Reply, now_ms: u64) -> Progress {
        if reply.is_positive() {
            self.mail_accepted = true;
            if !self.pipelined {
                self.send_next_rcpt(wire, now_ms);
            }
            Progress::Waiting
        } else if reply.is_transient_negative() || reply.is_permanent_negative() {
            self.resolve_part(false, &Outcome::from_reply(reply));
            // Pipelined, the RCPT (and DATA) replies are still to come.
            if self.pipelined {
                Progress::Waiting
            } else {
                self.after_recipients(wire, now_ms)
            }
        } else {
            Progress::Unexpected(reply)
        }
    }

    fn on_rcpt(&mut self, wire: &mut Wire, index: usize, reply: Reply, now_ms: u64) -> Progress {
        if reply.is_intermediate() {
            return Progress::Unexpected(reply);
        }
        // After a refused MAIL the recipients are settled already and these
        // replies (503 as a rule) carry no news.
        if self.mail_accepted {
            let too_many = reply.code == 452;
            if too_many && !self.pipelined {
                // The server will refuse the rest too: defer them unsent.
                let unsent = self.part.get(self.rcpts_sent..).unwrap_or_default();
                for &later in unsent {
                    if let Some(recipient) = self.recipients.get_mut(later) {
                        recipient.state = RecipientState::Deferred(reply.clone());
                    }
                }
                self.rcpts_sent = self.part.len();
            }
            if let Some(recipient) = self.recipients.get_mut(index) {
                recipient.state = if reply.is_positive() {
                    RecipientState::Accepted
                } else if too_many {
                    RecipientState::Deferred(reply)
                } else {
                    RecipientState::Done(Outcome::from_reply(reply))
                };
            }
        }
        let all_answered = if self.pipelined {
            !matches!(wire.next_expected(), Some(Expect::Rcpt(_)))
        } else {
            self.rcpts_sent >= self.part.len()
        };
        if all_answered {
            self.after_recipients(wire, now_ms)
        } else {
            if !self.pipelined {
                self.send_next_rcpt(wire, now_ms);
            }
            Progress::Waiting
        }
    }

    /// Every RCPT of the part is answered: send the content, or give up on
    /// the part when nobody was accepted.
    fn after_recipients(&mut self, wire: &mut Wire, now_ms: u64) -> Progress {
        if self.data_pipelined {
            return Progress::Waiting;
        }
        if !(self.mail_accepted && self.accepted_in_part()) {
            return Progress::Abandoned;
        }
        if self.use_bdat {
            self.write_bdat_last(wire, now_ms);
            Progress::DataEndSent
        } else {
            wire.command(b"DATA\r\n", Expect::Data, now_ms);
            Progress::Waiting
        }
    }

    fn on_data(&mut self, wire: &mut Wire, reply: Reply, now_ms: u64) -> Progress {
        if reply.code == 354 {
            if self.mail_accepted && self.accepted_in_part() {
                // The terminator goes out as a piece of its own, after the
                // content.
                wire.content(ContentEncoder::for_data(self.data.clone()));
                wire.data_end(DATA_TERMINATOR, Expect::DataEnd, now_ms);
                self.data_end = DataEndState::Queued;
                Progress::DataEndSent
            } else {
                // Pipelined DATA accepted with nobody to deliver to: an
                // empty body ends it without sending the message.
                wire.command(b".\r\n", Expect::DataEndDiscard, now_ms);
                Progress::Waiting
            }
        } else if reply.is_transient_negative() || reply.is_permanent_negative() {
            self.resolve_part(true, &Outcome::from_reply(reply));
            Progress::Abandoned
        } else {
            Progress::Unexpected(reply)
        }
    }

    fn on_data_end(
        &mut self,
        wire: &mut Wire,
        expect: Expect,
        reply: Reply,
        now_ms: u64,
    ) -> Progress {
        match self.settle_data_end(reply) {
            Err(reply) => Progress::Unexpected(reply),
            // A blind transaction has others behind it on the wire: its
            // deferred recipients go back to the caller (see `finish`).
            Ok(DataEnd::Accepted) if self.has_deferred() && !self.blind => {
                self.start_part(wire, now_ms);
                Progress::Waiting
            }
            Ok(DataEnd::Accepted) => Progress::Concluded,
            // After DATA's final dot the server has reset the transaction
            // itself; after a refused BDAT it may keep state, so RSET.
            Ok(DataEnd::Refused) if expect == Expect::BdatLast => Progress::Abandoned,
            Ok(DataEnd::Refused) => Progress::Concluded,
        }
    }

    /// Settles the part's accepted recipients with the reply to the end of
    /// the data. A reply that cannot answer an end of data comes back as
    /// the error, and nothing changes.
    pub(crate) fn settle_data_end(&mut self, reply: Reply) -> Result<DataEnd, Reply> {
        // A 221 ("closing channel") is no acceptance of the message: a
        // server that answers a pipelined QUIT before the data end (smtp-sink
        // with a delayed reply does) must not make it look delivered; the
        // message stays Unknown.
        let acceptance = reply.is_positive() && reply.code != 221;
        if !(acceptance || reply.is_transient_negative() || reply.is_permanent_negative()) {
            return Err(reply);
        }
        self.data_end = DataEndState::Idle;
        if acceptance {
            self.resolve_part(true, &Outcome::delivered(reply));
            Ok(DataEnd::Accepted)
        } else {
            self.resolve_part(true, &Outcome::from_reply(reply));
            Ok(DataEnd::Refused)
        }
    }

    /// Its end of data, with the recipients of the current part the server
    /// accepted or (blind, replies still to come) may accept.
    pub(crate) fn in_flight(&self) -> InFlight {
        let recipients = self
            .part
            .iter()
            .filter_map(|&i| self.recipients.get(i))
            .filter(|r| matches!(r.state, RecipientState::Accepted | RecipientState::Pending))
            .map(|r| r.address.clone())
            .collect();
        InFlight {
            id: self.id,
            recipients,
        }
    }

    /// Its commands go out in pipelined groups.
    pub(crate) fn is_pipelined(&self) -> bool {
        self.pipelined
    }

    /// Its content goes out with `BDAT … LAST` rather than DATA.
    pub(crate) fn uses_bdat(&self) -> bool {
        self.use_bdat
    }

    /// Its whole transaction, data included, goes out in one write without
    /// waiting for a reply (pipelined BDAT).
    pub(crate) fn is_blind(&self) -> bool {
        self.blind
    }

    fn accepted_in_part(&self) -> bool {
        self.part.iter().any(|&i| {
            matches!(
                self.recipients.get(i).map(|r| &r.state),
                Some(RecipientState::Accepted)
            )
        })
    }

    /// Settles the part's accepted recipients, and with `accepted_only`
    /// false its pending ones too.
    fn resolve_part(&mut self, accepted_only: bool, outcome: &Outcome) {
        for &index in &self.part {
            if let Some(recipient) = self.recipients.get_mut(index) {
                let matches = match recipient.state {
                    RecipientState::Accepted => true,
                    RecipientState::Pending => !accepted_only,
                    _ => false,
                };
                if matches {
                    recipient.state = RecipientState::Done(outcome.clone());
                }
            }
        }
    }

    pub(crate) fn has_deferred(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| matches!(r.state, RecipientState::Deferred(_)))
    }

    /// The final result once the transaction has run its course. Deferred
    /// recipients that never got another part are handed back to the caller.
    pub(crate) fn finish(self) -> TransactionOutcome {
        let recipients = self
            .recipients
            .into_iter()
            .map(|recipient| {
                let outcome = match recipient.state {
                    RecipientState::Done(outcome) => outcome,
                    RecipientState::Deferred(reply) => {
                        Outcome::new(OutcomeKind::Transient, Cause::TooManyRecipients)
                            .with_reply(reply)
                    }
                    // Not reachable when parts run to completion; classify
                    // as retryable rather than lose the recipient.
                    RecipientState::Pending | RecipientState::Accepted => {
                        Outcome::new(OutcomeKind::Transient, Cause::UnexpectedReply)
                    }
                };
                RecipientOutcome {
                    address: recipient.address,
                    outcome,
                }
            })
            .collect();
        let fallback = Outcome::new(OutcomeKind::Permanent, Cause::NoRecipients);
        TransactionOutcome::summarise(self.id, recipients, fallback)
    }

    /// Its envelope's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The end of its data is written to the wire's buffer and not yet
    /// handed to the driver.
    pub(crate) fn data_end_queued(&self) -> bool {
        self.data_end == DataEndState::Queued
    }

    /// The bytes ending this transaction's data were handed to the driver.
    pub(crate) fn data_end_handed_out(&mut self) {
        if self.data_end == DataEndState::Queued {
            self.data_end = DataEndState::OnTheWire;
        }
    }

    /// The result when the session ends under this transaction. Recipients
    /// whose data end may be on the wire get `Unknown`: the server may have
    /// taken the message (a blind transaction's recipients too while their
    /// RCPT replies are still to come). Before that (content still being written, or not
    /// written at all), the failure is theirs as it is: the server cannot
    /// have a complete message.
    pub(crate) fn fail(mut self, failure: &Outcome) -> TransactionOutcome {
        let unknown = Outcome {
            kind: OutcomeKind::Unknown,
            ..failure.clone()
        };
        for recipient in &mut self.recipients {
            let outcome = match recipient.state {
                RecipientState::Done(_) => continue,
                RecipientState::Accepted | RecipientState::Pending
                    if self.data_end == DataEndState::OnTheWire =>
                {
                    unknown.clone()
                }
                _ => failure.clone(),
            };
            recipient.state = RecipientState::Done(outcome);
        }
        self.finish()
    }

    /// The server answered the end of the data with 421: the message was
    /// definitely not taken, so a session failure now is no `Unknown`.
    pub(crate) fn data_end_refused(&mut self) {
        self.data_end = DataEndState::Idle;
    }
}

/// How the server answered an end of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataEnd {
    Accepted,
    Refused,
}

/// Every recipient of `envelope` with the same outcome: an envelope that
/// never reached a transaction.
pub(crate) fn not_attempted(envelope: Envelope, outcome: &Outcome) -> TransactionOutcome {
    let recipients = envelope
        .rcpt_to
        .into_iter()
        .map(|address| RecipientOutcome {
            address,
            outcome: outcome.clone(),
        })
        .collect();
    TransactionOutcome::summarise(envelope.id, recipients, outcome.clone())
}
