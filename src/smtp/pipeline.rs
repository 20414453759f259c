//! Pipelining across transactions (RFC 2920 §3.1): message content may be
//! the first "command" of a group, so the end of one message's data, the
//! next transaction's MAIL, RCPTs and DATA (or QUIT after the last message)
//! go out in one write, and each message costs one round trip instead of
//! two. Replies still arrive in command order and are matched by the wire's
//! queue of expectations.
//!
//! This file owns the decision to pipeline past an end of data and the
//! handling of that data end's reply. It must not change what a reply
//! means: the reply to the end of data decides the previous message alone,
//! and the next transaction's MAIL stands on its own whatever that reply
//! was, because the end of data closes a transaction whether it succeeded
//! or not (RFC 5321 §4.1.1.4).
//!
//! Not pipelined past: a transaction with recipients deferred by 452 (its
//! continuation needs the data end's reply first), lock-step sessions, and
//! the bare terminator sent when nobody was accepted.
//!
//! After `BDAT … LAST` a RSET goes between the data and the next MAIL:
//! RFC 3030 leaves the server's state undefined after a refused BDAT and
//! asks for RSET before further commands; pipelined, it costs no round
//! trip, and after a successful BDAT it is harmless.

use super::outcome::Outcome;
use super::reply::Reply;
use super::session::SmtpSession;
use super::transaction::Transaction;
use super::wire::Expect;

impl SmtpSession {
    /// Called right after the active transaction's end of data (the final
    /// dot, or `BDAT … LAST` with its chunk) was written: appends the next
    /// envelope's commands, or QUIT, to the same transmit.
    pub(crate) fn pipeline_after_data_end(&mut self, now_ms: u64) {
        let Some(current) = self.active.as_ref() else {
            return;
        };
        if !current.pipelined || current.has_deferred() || self.ending.is_some() {
            return;
        }
        if self.queue.is_empty() && !self.finishing {
            return;
        }
        let after_bdat = current.use_bdat;
        self.ending = self.active.take();
        // Envelopes the server's extensions rule out are settled here,
        // before anything of them is written.
        while let Some(envelope) = self.queue.pop_front() {
            if let Some(transaction) = self.prepare_transaction(envelope) {
                if after_bdat {
                    self.wire.command(b"RSET\r\n", Expect::Rset, now_ms);
                }
                self.active = Some(transaction);
                self.start_part(now_ms);
                return;
            }
        }
        if self.finishing {
            self.send_quit(now_ms);
        }
    }

    /// The reply to the end of data of a transaction that has the next
    /// one's commands (or QUIT) behind it. It settles that message only;
    /// the session goes on with whatever was pipelined.
    pub(crate) fn on_pipelined_data_end(
        &mut self,
        mut ending: Transaction,
        reply: Reply,
        now_ms: u64,
    ) {
        ending.data_sent = false;
        let outcome = if reply.is_positive() {
            Outcome::delivered(reply)
        } else {
            Outcome::from_reply(reply)
        };
        ending.resolve_part(true, &outcome);
        self.emit(ending.finish());
        // Nothing was pipelined when every queued envelope was refused
        // locally; envelopes handed over since then start now.
        if self.is_idle() {
            self.advance(now_ms);
        }
    }
}
