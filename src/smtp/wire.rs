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
use super::transparency::ContentEncoder;

/// The most message content handed out in one write: content is encoded as
/// the socket takes it, never all at once.
pub(crate) const CONTENT_CHUNK: usize = 64 * 1024;

/// Output waiting for the socket, in order.
#[derive(Debug)]
enum Segment {
    Bytes(Vec<u8>),
    Content(ContentEncoder),
}

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
    transmit: VecDeque<Segment>,
    pending: VecDeque<Expect>,
    deadline: Option<u64>,
}

impl Wire {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Wire {
            timeouts,
            transmit: VecDeque::new(),
            pending: VecDeque::new(),
            deadline: None,
        }
    }

    /// Writes a command (or content) that expects no reply of its own.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        if let Some(Segment::Bytes(last)) = self.transmit.back_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.transmit.push_back(Segment::Bytes(bytes.to_vec()));
        }
    }

    /// Writes a command and records which reply it expects.
    pub(crate) fn command(&mut self, bytes: &[u8], expect: Expect, now_ms: u64) {
        self.write(bytes);
        self.expect(expect, now_ms);
    }

    /// Writes message content, encoded as the socket takes it, and records
    /// which reply its end expects.
    pub(crate) fn content(&mut self, content: ContentEncoder, expect: Expect, now_ms: u64) {
        self.transmit.push_back(Segment::Content(content));
        self.expect(expect, now_ms);
    }

    fn expect(&mut self, expect: Expect, now_ms: u64) {
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

    /// The next piece of output: every command waiting, in one piece, and
    /// message content at most [`CONTENT_CHUNK`] (a few bytes more) at a time.
    pub(crate) fn take_transmit(&mut self) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        while let Some(front) = self.transmit.front_mut() {
            match front {
                Segment::Bytes(bytes) => {
                    if out.is_empty() {
                        out = std::mem::take(bytes);
                    } else {
                        out.extend_from_slice(bytes);
                    }
                }
                Segment::Content(content) => {
                    if out.len() >= CONTENT_CHUNK || !content.fill(&mut out, CONTENT_CHUNK) {
                        break;
                    }
                }
            }
            self.transmit.pop_front();
        }
        (!out.is_empty()).then_some(out)
    }
}
