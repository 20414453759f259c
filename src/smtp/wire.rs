//! Outgoing bytes and the queue of replies the session is waiting for.
//!
//! Every command written pushes what its reply will answer; replies arrive
//! in command order (RFC 2920 §3.1), so the front of the queue always names
//! the command the next reply belongs to. The deadline follows the front:
//! it restarts whenever a reply arrives and another is still awaited, and
//! when a write has gone out (a reply cannot come before its command does).
//!
//! Output is handed to the driver in pieces of at most [`MAX_TRANSMIT`]
//! bytes (message content a few bytes more: an ending or a stuffed dot is
//! never split), so a per-write deadline measures progress, not message
//! size. Content is encoded from the shared message as the socket takes it
//! ([`ContentEncoder`]), never copied whole. The
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
use super::transparency::ContentEncoder;

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
/// gets the write deadline: 256 KiB that cannot be written in
/// `Timeouts::write_ms` (30 s by default, about 9 KiB/s) is a server that
/// has stopped reading. Each piece costs the driver one awaited write, so a
/// large message goes out in a few of them (a 1 MB message in four).
pub const MAX_TRANSMIT: usize = 256 * 1024;

/// Output not yet handed to the driver. A new segment starts where a data
/// end starts; writes after it (the next transaction's commands, pipelined)
/// join that segment.
#[derive(Debug)]
enum Segment {
    Bytes {
        bytes: Vec<u8>,
        /// How much of `bytes` was handed out already.
        taken: usize,
        /// It begins with the bytes that end a message's data.
        data_end: bool,
    },
    /// Message content, encoded a piece at a time.
    Content(ContentEncoder),
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
            Some(Segment::Bytes { bytes: last, .. }) => last.extend_from_slice(bytes),
            _ => self.transmit.push_back(Segment::Bytes {
                bytes: bytes.to_vec(),
                taken: 0,
                data_end: false,
            }),
        }
    }

    /// Writes message content, encoded as the socket takes it. Its end (the
    /// data end) is written after it, with [`Self::data_end`].
    pub(crate) fn content(&mut self, content: ContentEncoder) {
        self.transmit.push_back(Segment::Content(content));
    }

    /// Writes the bytes that end a message's data, as the start of a piece
    /// of their own, and records the reply they expect.
    pub(crate) fn data_end(&mut self, bytes: &[u8], expect: Expect, now_ms: u64) {
        self.transmit.push_back(Segment::Bytes {
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
            .find(|segment| match segment {
                Segment::Bytes { bytes, taken, .. } => *taken < bytes.len(),
                Segment::Content(content) => !content.is_finished(),
            })
            .is_some_and(|segment| {
                matches!(
                    segment,
                    Segment::Bytes {
                        data_end: true,
                        taken: 0,
                        ..
                    }
                )
            })
    }

    /// The next piece of output: at most [`MAX_TRANSMIT`] bytes (content a
    /// few more), never running into a segment that starts with a data end.
    pub(crate) fn take_transmit(&mut self) -> Option<Transmit> {
        loop {
            match self.transmit.front_mut()? {
                Segment::Bytes {
                    bytes,
                    taken,
                    data_end,
                } => {
                    let left = bytes.len() - (*taken).min(bytes.len());
                    if left == 0 {
                        self.transmit.pop_front();
                        continue;
                    }
                    let ends_data = *data_end && *taken == 0;
                    let transmit = if *taken == 0 && left <= MAX_TRANSMIT {
                        // The common case: the whole segment, without a copy.
                        let whole = std::mem::take(bytes);
                        self.transmit.pop_front();
                        whole
                    } else {
                        let end = *taken + left.min(MAX_TRANSMIT);
                        let piece = bytes.get(*taken..end).unwrap_or_default().to_vec();
                        *taken = end;
                        piece
                    };
                    let mut bytes = transmit;
                    // Content right behind commands (`BDAT n LAST`, or after
                    // 354) joins their piece, up to the size of one.
                    if let Some(Segment::Content(content)) = self.transmit.front_mut()
                        && bytes.len() < MAX_TRANSMIT
                        && content.fill(&mut bytes, MAX_TRANSMIT)
                    {
                        self.transmit.pop_front();
                    }
                    return Some(Transmit { bytes, ends_data });
                }
                Segment::Content(content) => {
                    let mut piece = Vec::new();
                    if content.fill(&mut piece, MAX_TRANSMIT) {
                        self.transmit.pop_front();
                    }
                    if piece.is_empty() {
                        continue;
                    }
                    return Some(Transmit {
                        bytes: piece,
                        ends_data: false,
                    });
                }
            }
        }
    }
}
