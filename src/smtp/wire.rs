//! Outgoing bytes and the queue of replies the session is waiting for.
//!
//! Every command written pushes what its reply will answer; replies arrive
//! in command order (RFC 2920 §3.1), so the front of the queue always names
//! the command the next reply belongs to. The deadline follows the front:
//! it restarts whenever a reply arrives and another is still awaited, and
//! when a write has gone out (a reply cannot come before its command does).
//!
//! Output is handed to the driver in pieces of at most [`MAX_TRANSMIT`]
//! bytes, so a per-write deadline measures progress, not message size. The
//! bytes that end a message's data (the final `.` CRLF, or the last byte of
//! `BDAT … LAST`) start a piece of their own: everything before them can be
//! written, and its write can fail or stall, while the server cannot yet
//! have a complete message. The session learns when that piece is handed
//! out ([`Transmit::ends_data`]).
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

/// The largest piece of output handed to the driver at once. Each piece
/// gets the write deadline: 64 KiB that cannot be written in
/// `Timeouts::write_ms` (30 s by default, about 2 KiB/s) is a server that
/// has stopped reading.
pub const MAX_TRANSMIT: usize = 64 * 1024;

/// Output not yet handed to the driver. A new segment starts where a data
/// end starts; writes after it (the next transaction's commands, pipelined)
/// join that segment.
#[derive(Debug)]
struct Segment {
    bytes: Vec<u8>,
    /// How much of `bytes` was handed out already.
    taken: usize,
    /// It begins with the bytes that end a message's data.
    data_end: bool,
}

/// One piece of output for the driver.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub(crate) bytes: Vec<u8>,
    /// The piece begins with the end of a message's data: once it is
    /// handed out, the server may complete the message.
    pub(crate) ends_data: bool,
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
        if bytes.is_empty() {
            return;
        }
        match self.transmit.back_mut() {
            Some(segment) => segment.bytes.extend_from_slice(bytes),
            None => self.transmit.push_back(Segment {
                bytes: bytes.to_vec(),
                taken: 0,
                data_end: false,
            }),
        }
    }

    /// Writes the bytes that end a message's data, as the start of a piece
    /// of their own, and records the reply they expect.
    pub(crate) fn data_end(&mut self, bytes: &[u8], expect: Expect, now_ms: u64) {
        self.transmit.push_back(Segment {
            bytes: Vec::new(),
            taken: 0,
            data_end: true,
        });
        self.command(bytes, expect, now_ms);
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

    /// A write went out at `now_ms`: the reply awaited first cannot have
    /// been on its way before that, so its clock starts again.
    pub(crate) fn written(&mut self, now_ms: u64) {
        if let Some(next) = self.pending.front() {
            let restarted = now_ms.saturating_add(next.timeout_ms(&self.timeouts));
            self.deadline = Some(self.deadline.map_or(restarted, |d| d.max(restarted)));
        }
    }

    /// Forgets everything outstanding: the connection is over.
    pub(crate) fn clear(&mut self) {
        self.transmit.clear();
        self.pending.clear();
        self.deadline = None;
    }

    /// Whether the next piece of output begins with the end of a message's
    /// data.
    pub(crate) fn data_end_next(&self) -> bool {
        self.transmit
            .iter()
            .find(|segment| segment.taken < segment.bytes.len())
            .is_some_and(|segment| segment.data_end && segment.taken == 0)
    }

    /// The next piece of output: at most [`MAX_TRANSMIT`] bytes, never
    /// running into a segment that starts with a data end.
    pub(crate) fn take_transmit(&mut self) -> Option<Transmit> {
        loop {
            let segment = self.transmit.front_mut()?;
            let left = segment.bytes.len() - segment.taken.min(segment.bytes.len());
            if left == 0 {
                self.transmit.pop_front();
                continue;
            }
            let ends_data = segment.data_end && segment.taken == 0;
            let transmit = if segment.taken == 0 && left <= MAX_TRANSMIT {
                // The common case: the whole segment, without a copy.
                let bytes = std::mem::take(&mut segment.bytes);
                self.transmit.pop_front();
                bytes
            } else {
                let end = segment.taken + left.min(MAX_TRANSMIT);
                let bytes = segment
                    .bytes
                    .get(segment.taken..end)
                    .unwrap_or_default()
                    .to_vec();
                segment.taken = end;
                bytes
            };
            return Some(Transmit {
                bytes: transmit,
                ends_data,
            });
        }
    }
}
