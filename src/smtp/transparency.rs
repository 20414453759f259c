//! Message content on the wire: line-ending normalisation and the DATA
//! transparency procedure (RFC 5321 §4.5.2).
//!
//! SMTP ends DATA with `CRLF . CRLF`. If a body could produce that sequence
//! (or anything a lenient server reads as it, such as `LF . LF`), the rest of
//! the body would be executed as SMTP commands. So every line ending is made
//! CRLF first (bare LF and bare CR alike), and only then are lines that start
//! with `.` stuffed with another `.`. With all endings normalised, the only
//! `CRLF . CRLF` left is the terminator this module appends.
//!
//! The message is in memory already (it is signed before sending) and shared
//! with the caller, never copied whole: [`ContentEncoder`] encodes it a chunk
//! at a time as the socket takes it, so a 50 MiB message costs the session a
//! buffer of one piece (`MAX_TRANSMIT`, 256 KiB), not another 50 MiB. The input is complete, so a CR LF pair
//! split across two output chunks is still read as one ending.
//!
//! Owns: the encoding for DATA and for BDAT (normalised only, no stuffing or
//! terminator), and the normalised size the SIZE check compares. Must not be
//! bypassed: the transaction writes message content only as encoded here.

use std::rc::Rc;

/// The terminator that ends DATA.
pub(crate) const DATA_TERMINATOR: &[u8] = b".\r\n";

/// Content for `DATA`: normalised to CRLF, dot-stuffed, ending in CRLF and
/// followed by the `.` CRLF terminator.
pub fn encode_for_data(message: &[u8]) -> Vec<u8> {
    let mut out = encode_whole(ContentEncoder::for_data(Rc::new(message.to_vec())));
    out.extend_from_slice(DATA_TERMINATOR);
    out
}

/// Content for `BDAT`: normalised to CRLF and ending in CRLF, not stuffed
/// (BDAT frames content by length, so a leading dot means nothing).
pub fn encode_for_bdat(message: &[u8]) -> Vec<u8> {
    encode_whole(ContentEncoder::for_bdat(Rc::new(message.to_vec())))
}

fn encode_whole(mut encoder: ContentEncoder) -> Vec<u8> {
    let mut out = Vec::new();
    while !encoder.fill(&mut out, usize::MAX) {}
    out
}

/// A shared message encoded for the wire a chunk at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEncoder {
    message: Rc<Vec<u8>>,
    /// Next input byte.
    pos: usize,
    stuff_dots: bool,
    /// Leave out the last byte of the content (see [`Self::without_final_lf`]).
    hold_final_lf: bool,
    at_line_start: bool,
    finished: bool,
}

impl ContentEncoder {
    /// The message for `DATA`: dot-stuffed, ending in CRLF. The terminator
    /// is not part of it: it goes out as a write of its own.
    pub fn for_data(message: Rc<Vec<u8>>) -> Self {
        Self::new(message, true)
    }

    /// The message for `BDAT`: normalised only.
    pub fn for_bdat(message: Rc<Vec<u8>>) -> Self {
        Self::new(message, false)
    }

    fn new(message: Rc<Vec<u8>>, data: bool) -> Self {
        ContentEncoder {
            message,
            pos: 0,
            stuff_dots: data,
            hold_final_lf: false,
            at_line_start: true,
            finished: false,
        }
    }

    /// The same content without its final LF. Encoded content that is not
    /// empty always ends in CRLF, so the last byte of a `BDAT … LAST` chunk
    /// is always that LF: the transaction sends it as the data end, a write
    /// of its own, after everything before it has been written.
    pub fn without_final_lf(mut self) -> Self {
        self.hold_final_lf = true;
        self
    }

    /// Whether all the content has been handed out.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Appends encoded content to `out` until `out` holds at least `limit`
    /// bytes (a few more: an ending or a stuffed dot is never split) or the
    /// message is done. Returns whether it is done.
    pub fn fill(&mut self, out: &mut Vec<u8>, limit: usize) -> bool {
        if self.finished {
            return true;
        }
        let message = self.message.as_slice();
        while out.len() < limit {
            let Some(&byte) = message.get(self.pos) else {
                break;
            };
            self.pos += 1;
            match byte {
                b'\r' => {
                    // CRLF stays one ending; a CR alone becomes one too.
                    if message.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
                b'.' if self.stuff_dots && self.at_line_start => {
                    out.extend_from_slice(b"..");
                    self.at_line_start = false;
                }
                _ => {
                    // Copy the run up to the next line ending or the limit at once.
                    let rest = message.get(self.pos - 1..).unwrap_or_default();
                    let room = limit.saturating_sub(out.len()).max(1);
                    let run = rest
                        .iter()
                        .take(room)
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(rest.len().min(room));
                    out.extend_from_slice(rest.get(..run).unwrap_or_default());
                    self.pos += run.saturating_sub(1);
                    self.at_line_start = false;
                }
            }
        }
        if self.pos < message.len() {
            return false;
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        if self.hold_final_lf && out.last() == Some(&b'\n') {
            out.pop();
        }
        self.finished = true;
        true
    }
}

/// Length of the content as the server will store it (CRLF line endings, no
/// stuffing), for the SIZE check. Same as `encode_for_bdat(m).len()` without
/// allocating.
pub fn normalised_len(message: &[u8]) -> u64 {
    let mut len: u64 = 0;
    let mut at_line_start = true;
    let mut bytes = message.iter().peekable();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\r' => {
                bytes.next_if_eq(&&b'\n');
                len += 2;
                at_line_start = true;
            }
            b'\n' => {
                len += 2;
                at_line_start = true;
            }
            _ => {
                len += 1;
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        len += 2;
    }
    len
}

/// The smuggling table, public so the real-server tests send the same rows.
/// A table of constants: it takes no space in a build that does not use it.
pub mod cases;

#[cfg(test)]
mod tests {
    use super::cases::TRANSPARENCY_CASES as TABLE;
    use super::*;

    #[test]
    fn transparency_table() {
        for (input, data, bdat) in TABLE {
            let shown = String::from_utf8_lossy(input);
            assert_eq!(
                String::from_utf8_lossy(&encode_for_data(input)),
                String::from_utf8_lossy(data),
                "DATA for {shown:?}"
            );
            assert_eq!(
                String::from_utf8_lossy(&encode_for_bdat(input)),
                String::from_utf8_lossy(bdat),
                "BDAT for {shown:?}"
            );
            assert_eq!(
                normalised_len(input),
                bdat.len() as u64,
                "length for {shown:?}"
            );
        }
    }

    /// Encoded a few bytes at a time (line endings split across chunks),
    /// the content is byte for byte what one pass gives.
    #[test]
    fn chunked_encoding_matches_the_whole() {
        let mut inputs: Vec<Vec<u8>> = TABLE.iter().map(|(i, _, _)| i.to_vec()).collect();
        inputs.push(b"a\r\n.\r\nb\r\r\n\n.x".repeat(50));
        inputs.push(Vec::new());
        for input in inputs {
            let shared = Rc::new(input.clone());
            for limit in [1usize, 2, 3, 7, 64, 1 << 16] {
                for data in [true, false] {
                    let mut encoder = if data {
                        ContentEncoder::for_data(shared.clone())
                    } else {
                        ContentEncoder::for_bdat(shared.clone())
                    };
                    let mut whole = Vec::new();
                    let mut chunks = 0;
                    loop {
                        let mut chunk = Vec::new();
                        let done = encoder.fill(&mut chunk, limit);
                        // A chunk overshoots its limit by an ending or a
                        // stuffed dot, then the final ending.
                        assert!(chunk.len() <= limit + 3, "{limit}");
                        whole.extend_from_slice(&chunk);
                        chunks += 1;
                        if done {
                            break;
                        }
                        assert!(chunks < 100_000);
                    }
                    let want = if data {
                        // The terminator is a write of its own.
                        let mut want = encode_for_data(&input);
                        want.truncate(want.len() - DATA_TERMINATOR.len());
                        want
                    } else {
                        encode_for_bdat(&input)
                    };
                    assert_eq!(whole, want, "{limit} {data} {input:?}");
                    assert!(encoder.fill(&mut Vec::new(), limit), "stays done");
                    // Held back, the final LF is the only byte missing.
                    if !data {
                        let mut held = ContentEncoder::for_bdat(shared.clone()).without_final_lf();
                        let mut all = Vec::new();
                        loop {
                            let mut chunk = Vec::new();
                            let done = held.fill(&mut chunk, limit);
                            all.extend_from_slice(&chunk);
                            if done {
                                break;
                            }
                        }
                        if !want.is_empty() {
                            all.push(b'\n');
                        }
                        assert_eq!(all, want, "held {limit} {input:?}");
                    }
                }
            }
        }
    }

    /// Whatever the input, the encoded DATA contains exactly one
    /// `CRLF . CRLF` (or starts with `. CRLF`), and it is at the very end.
    #[test]
    fn no_input_can_end_data_early() {
        let alphabet: &[u8] = b"\r\n.a\0";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 12) as usize;
            let input: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            let encoded = encode_for_data(&input);
            let body = &encoded[..encoded.len() - DATA_TERMINATOR.len()];
            assert!(encoded.ends_with(DATA_TERMINATOR));
            assert!(body.is_empty() || body.ends_with(b"\r\n"), "{input:?}");
            assert!(!body.starts_with(b".\r\n"), "{input:?}");
            assert!(!body.windows(5).any(|w| w == b"\r\n.\r\n"), "{input:?}");
            // No bare CR or LF survives.
            for (i, &b) in body.iter().enumerate() {
                if b == b'\r' {
                    assert_eq!(body.get(i + 1), Some(&b'\n'), "{input:?}");
                }
                if b == b'\n' {
                    assert_eq!(i.checked_sub(1).map(|p| body[p]), Some(b'\r'), "{input:?}");
                }
            }
        }
    }
}
