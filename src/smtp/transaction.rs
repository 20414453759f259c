//! Mail transactions: MAIL, RCPT, DATA or BDAT, RSET, pipelined or in
//! lock-step, with per-recipient results.
//!
//! One envelope may take several SMTP transactions ("parts"): recipients
//! refused with 452 (too many recipients, RFC 5321 §4.5.3.1.10) are sent
//! again in a new transaction on the same connection once the current one
//! has delivered. A part that delivers to nobody ends the envelope, and
//! recipients still deferred get a transient `TooManyRecipients` outcome
//! for the caller to retry; that rule also guarantees the loop ends.

use super::envelope::{Envelope, is_safe_address};
use super::outcome::{Cause, Outcome, OutcomeKind, RecipientOutcome, TransactionOutcome};
use super::reply::Reply;
use super::session::{SmtpSession, unexpected};
use super::transparency::{encode_for_bdat, encode_for_data, normalised_len};
use super::wire::Expect;

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
    /// Encoded content: dot-stuffed with terminator for DATA, plain for BDAT.
    payload: Vec<u8>,
    pub(crate) use_bdat: bool,
    pub(crate) pipelined: bool,
    /// Recipient indices in the current part, in RCPT order.
    part: Vec<usize>,
    /// Lock-step: how many RCPTs of the part have been sent.
    rcpts_sent: usize,
    mail_accepted: bool,
    /// DATA went out with MAIL and RCPT, so its reply is already awaited.
    data_pipelined: bool,
    /// The end of the data is on the wire and its reply is outstanding: a
    /// failure now leaves delivery unknown.
    pub(crate) data_sent: bool,
}

impl Transaction {
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
    pub(crate) fn resolve_part(&mut self, accepted_only: bool, outcome: &Outcome) {
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

    /// The result when the session ends under this transaction. Recipients
    /// whose data end is on the wire get `Unknown`: the server may have
    /// taken the message.
    pub(crate) fn fail(mut self, failure: &Outcome) -> TransactionOutcome {
        let unknown = Outcome {
            kind: OutcomeKind::Unknown,
            ..failure.clone()
        };
        for recipient in &mut self.recipients {
            let outcome = match recipient.state {
                RecipientState::Done(_) => continue,
                RecipientState::Accepted if self.data_sent => unknown.clone(),
                _ => failure.clone(),
            };
            recipient.state = RecipientState::Done(outcome);
        }
        self.finish()
    }
}

/// Every recipient of `envelope` with the same outcome.
fn whole_envelope(envelope: Envelope, outcome: Outcome) -> TransactionOutcome {
    let recipients = envelope
        .rcpt_to
        .into_iter()
        .map(|address| RecipientOutcome {
            address,
            outcome: outcome.clone(),
        })
        .collect();
    TransactionOutcome::summarise(envelope.id, recipients, outcome)
}

impl SmtpSession {
    /// Checks an envelope against the server's capabilities and starts its
    /// first part. Returns false when it was settled without a transaction.
    pub(crate) fn start_transaction(&mut self, envelope: Envelope, now_ms: u64) -> bool {
        match self.prepare_transaction(envelope) {
            Some(transaction) => {
                self.active = Some(transaction);
                self.start_part(now_ms);
                true
            }
            None => false,
        }
    }

    /// Checks an envelope against the server's capabilities (SIZE,
    /// SMTPUTF8, 8BITMIME, address safety) before anything of it is
    /// written. An envelope that fails gets its outcome now and `None`.
    pub(crate) fn prepare_transaction(&mut self, envelope: Envelope) -> Option<Transaction> {
        let permanent = |cause| Outcome::new(OutcomeKind::Permanent, cause);
        let capabilities = &self.capabilities;
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
            self.emit(whole_envelope(envelope, outcome));
            return None;
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
        mail_command.push_str("\r\n");

        let use_bdat = capabilities.chunking && self.config.use_chunking;
        let transaction = Transaction {
            id: envelope.id,
            mail_command,
            recipients,
            payload: if use_bdat {
                encode_for_bdat(&envelope.data)
            } else {
                encode_for_data(&envelope.data)
            },
            use_bdat,
            pipelined: capabilities.pipelining && self.config.use_pipelining,
            part: Vec::new(),
            rcpts_sent: 0,
            mail_accepted: false,
            data_pipelined: false,
            data_sent: false,
        };
        if !transaction
            .recipients
            .iter()
            .any(|r| matches!(r.state, RecipientState::Pending))
        {
            self.emit(transaction.finish());
            return None;
        }
        Some(transaction)
    }

    /// Sends MAIL (and, pipelined, every RCPT and DATA) for the recipients
    /// not yet settled.
    pub(crate) fn start_part(&mut self, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return;
        };
        for recipient in &mut transaction.recipients {
            if matches!(recipient.state, RecipientState::Deferred(_)) {
                recipient.state = RecipientState::Pending;
            }
        }
        transaction.part = (0..transaction.recipients.len())
            .filter(|&i| {
                matches!(
                    transaction.recipients.get(i).map(|r| &r.state),
                    Some(RecipientState::Pending)
                )
            })
            .collect();
        transaction.rcpts_sent = 0;
        transaction.mail_accepted = false;
        transaction.data_pipelined = false;
        transaction.data_sent = false;
        self.wire
            .command(transaction.mail_command.as_bytes(), Expect::Mail, now_ms);
        if transaction.pipelined {
            for &index in &transaction.part {
                if let Some(recipient) = transaction.recipients.get(index) {
                    let command = format!("RCPT TO:<{}>\r\n", recipient.address);
                    self.wire
                        .command(command.as_bytes(), Expect::Rcpt(index), now_ms);
                }
            }
            transaction.rcpts_sent = transaction.part.len();
            if !transaction.use_bdat {
                self.wire.command(b"DATA\r\n", Expect::Data, now_ms);
                transaction.data_pipelined = true;
            }
        }
    }

    fn send_next_rcpt(&mut self, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return;
        };
        let next = transaction.part.get(transaction.rcpts_sent).copied();
        let Some(recipient) = next.and_then(|index| transaction.recipients.get(index)) else {
            return;
        };
        let command = format!("RCPT TO:<{}>\r\n", recipient.address);
        transaction.rcpts_sent += 1;
        if let Some(index) = next {
            self.wire
                .command(command.as_bytes(), Expect::Rcpt(index), now_ms);
        }
    }

    pub(crate) fn on_mail(&mut self, reply: Reply, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return self.fail_session(unexpected(reply), false, now_ms);
        };
        if reply.is_positive() {
            transaction.mail_accepted = true;
            if !transaction.pipelined {
                self.send_next_rcpt(now_ms);
            }
        } else if reply.is_transient_negative() || reply.is_permanent_negative() {
            transaction.resolve_part(false, &Outcome::from_reply(reply));
            // Pipelined, the RCPT (and DATA) replies are still to come.
            if !transaction.pipelined {
                self.after_recipients(now_ms);
            }
        } else {
            self.fail_session(unexpected(reply), false, now_ms);
        }
    }

    pub(crate) fn on_rcpt(&mut self, index: usize, reply: Reply, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return self.fail_session(unexpected(reply), false, now_ms);
        };
        if reply.is_intermediate() {
            return self.fail_session(unexpected(reply), false, now_ms);
        }
        // After a refused MAIL the recipients are settled already and these
        // replies (503 as a rule) carry no news.
        if transaction.mail_accepted {
            let too_many = reply.code == 452;
            if too_many && !transaction.pipelined {
                // The server will refuse the rest too: defer them unsent.
                let unsent = transaction
                    .part
                    .get(transaction.rcpts_sent..)
                    .unwrap_or_default();
                for &later in unsent {
                    if let Some(recipient) = transaction.recipients.get_mut(later) {
                        recipient.state = RecipientState::Deferred(reply.clone());
                    }
                }
                transaction.rcpts_sent = transaction.part.len();
            }
            if let Some(recipient) = transaction.recipients.get_mut(index) {
                recipient.state = if reply.is_positive() {
                    RecipientState::Accepted
                } else if too_many {
                    RecipientState::Deferred(reply)
                } else {
                    RecipientState::Done(Outcome::from_reply(reply))
                };
            }
        }
        let pipelined = transaction.pipelined;
        let all_answered = if pipelined {
            !matches!(self.wire.next_expected(), Some(Expect::Rcpt(_)))
        } else {
            transaction.rcpts_sent >= transaction.part.len()
        };
        if all_answered {
            self.after_recipients(now_ms);
        } else if !pipelined {
            self.send_next_rcpt(now_ms);
        }
    }

    /// Every RCPT of the part is answered: send the content, or give up on
    /// the part when nobody was accepted.
    fn after_recipients(&mut self, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return;
        };
        if transaction.data_pipelined {
            return;
        }
        if transaction.mail_accepted && transaction.accepted_in_part() {
            if transaction.use_bdat {
                let command = format!("BDAT {} LAST\r\n", transaction.payload.len());
                self.wire.write(command.as_bytes());
                self.wire
                    .command(&transaction.payload, Expect::BdatLast, now_ms);
                transaction.data_sent = true;
                self.pipeline_after_data_end(now_ms);
            } else {
                self.wire.command(b"DATA\r\n", Expect::Data, now_ms);
            }
        } else {
            self.abandon_part(now_ms);
        }
    }

    pub(crate) fn on_data(&mut self, reply: Reply, now_ms: u64) {
        let Some(transaction) = self.active.as_mut() else {
            return self.fail_session(unexpected(reply), false, now_ms);
        };
        if reply.code == 354 {
            if transaction.mail_accepted && transaction.accepted_in_part() {
                self.wire
                    .command(&transaction.payload, Expect::DataEnd, now_ms);
                transaction.data_sent = true;
                self.pipeline_after_data_end(now_ms);
            } else {
                // Pipelined DATA accepted with nobody to deliver to: an
                // empty body ends it without sending the message.
                self.wire.command(b".\r\n", Expect::DataEndDiscard, now_ms);
            }
        } else if reply.is_transient_negative() || reply.is_permanent_negative() {
            transaction.resolve_part(true, &Outcome::from_reply(reply));
            self.abandon_part(now_ms);
        } else {
            self.fail_session(unexpected(reply), false, now_ms);
        }
    }

    pub(crate) fn on_data_end(&mut self, expect: Expect, reply: Reply, now_ms: u64) {
        // A 221 ("closing channel") is no acceptance of the message: a
        // server that answers a pipelined QUIT before the data end (smtp-sink
        // with a delayed reply does) must not make it look delivered; the
        // message stays Unknown.
        let acceptance = reply.is_positive() && reply.code != 221;
        if !(acceptance || reply.is_transient_negative() || reply.is_permanent_negative()) {
            return self.fail_session(unexpected(reply), false, now_ms);
        }
        // The next transaction's commands went out behind this data end.
        if let Some(ending) = self.ending.take() {
            return self.on_pipelined_data_end(ending, reply, now_ms);
        }
        let Some(transaction) = self.active.as_mut() else {
            return self.fail_session(unexpected(reply), false, now_ms);
        };
        transaction.data_sent = false;
        if reply.is_positive() {
            transaction.resolve_part(true, &Outcome::delivered(reply));
            if transaction.has_deferred() {
                return self.start_part(now_ms);
            }
            self.conclude(now_ms);
        } else {
            transaction.resolve_part(true, &Outcome::from_reply(reply));
            // After DATA's final dot the server has reset the transaction
            // itself; after a refused BDAT it may keep state, so RSET.
            if expect == Expect::BdatLast {
                self.abandon_part(now_ms);
            } else {
                self.conclude(now_ms);
            }
        }
    }

    pub(crate) fn on_data_end_discard(&mut self, now_ms: u64) {
        self.conclude(now_ms);
    }

    /// Reports the transaction and moves on to the next envelope.
    fn conclude(&mut self, now_ms: u64) {
        if let Some(transaction) = self.active.take() {
            self.emit(transaction.finish());
        }
        self.advance(now_ms);
    }

    /// Reports the transaction and RSETs before the next one, because the
    /// server may still hold part of this one.
    fn abandon_part(&mut self, now_ms: u64) {
        if let Some(transaction) = self.active.take() {
            self.emit(transaction.finish());
        }
        self.wire.command(b"RSET\r\n", Expect::Rset, now_ms);
    }
}
