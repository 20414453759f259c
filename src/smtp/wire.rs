//! Outgoing bytes and the queue of replies the session is waiting for.
//!
//! Every command written pushes what its reply will answer; replies arrive
//! in command order (RFC 2920 §3.1), so the front of the queue always names
//! the command the next reply belongs to. The deadline follows the front:
//! it restarts whenever a reply arrives and another is still awaited.
//!
//! Must not: interpret replies: it only says which command the next one
//! answers; the session and the transaction decide what it means.

use std::collections::VecDeque;

use super::config::Timeouts;

/// The command a pending reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    /// 235 ends AUTH (PLAIN, and LOGIN/XOAUTH2 after their last step).
    AuthResult,
    /// 334 asks for the LOGIN username.
    AuthLoginUsername,
    /// 334 asks for the LOGIN password.
    AuthLoginPassword,
    /// 235, or 334 carrying an error that must be acknowledged.
    AuthXOAuth2,
    Mail,
    /// Index into the transaction's recipients.
    Rcpt(usize),
    Data,
    /// Reply to the final `.` of DATA.
    DataEnd,
    /// Reply to `BDAT n LAST`.
    BdatLast,
    /// Reply to a bare `.` sent because DATA was accepted with no
    /// recipients left to deliver to.
    DataEndDiscard,
    Rset,
    Quit,
}

impl Expect {
    fn timeout_ms(self, timeouts: &Timeouts) -> u64 {
        match self {
            Expect::Greeting => timeouts.greeting_ms,
            Expect::DataEnd | Expect::BdatLast => timeouts.data_end_ms,
            _ => timeouts.command_ms,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Wire {
    timeouts: Timeouts,
    transmit: Vec<u8>,
    pending: VecDeque<Expect>,
    deadline: Option<u64>,
}

impl Wire {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Wire {
            timeouts,
            transmit: Vec::new(),
            pending: VecDeque::new(),
            deadline: None,
        }
    }

    /// Writes a command (or content) that expects no reply of its own.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.transmit.extend_from_slice(bytes);
    }

    /// Writes a command and records which reply it expects.
    pub(crate) fn command(&mut self, bytes: &[u8], expect: Expect, now_ms: u64) {
        self.write(bytes);
        if self.pending.is_empty() {
            self.deadline = Some(now_ms.saturating_add(expect.timeout_ms(&self.timeouts)));
        }
        self.pending.push_back(expect);
    }

    /// Takes the expectation the reply that just arrived answers, and
    /// restarts the clock for the next one.
    pub(crate) fn take_expected(&mut self, now_ms: u64) -> Option<Expect> {
        let expect = self.pending.pop_front();
        self.deadline = self
            .pending
            .front()
            .map(|next| now_ms.saturating_add(next.timeout_ms(&self.timeouts)));
        expect
    }

    pub(crate) fn next_expected(&self) -> Option<Expect> {
        self.pending.front().copied()
    }

    /// How many replies are awaited.
    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(crate) fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Forgets everything outstanding: the connection is over.
    pub(crate) fn clear(&mut self) {
        self.transmit.clear();
        self.pending.clear();
        self.deadline = None;
    }

    pub(crate) fn take_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }
}
