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
//! The whole message is in memory already (it is signed before sending), so
//! the encoding is done in one pass over one buffer; there is no streaming
//! state to carry across writes.
//!
//! Owns: the encoding for DATA and for BDAT (normalised only, no stuffing or
//! terminator), and the normalised size the SIZE check compares. Must not be
//! bypassed: the transaction writes message content only as returned here.

/// The terminator that ends DATA.
pub(crate) const DATA_TERMINATOR: &[u8] = b".\r\n";

/// Content for `DATA`: normalised to CRLF, dot-stuffed, ending in CRLF and
/// followed by the `.` CRLF terminator.
pub fn encode_for_data(message: &[u8]) -> Vec<u8> {
    let mut out = encode(message, true);
    out.extend_from_slice(DATA_TERMINATOR);
    out
}

/// Content for `BDAT`: normalised to CRLF and ending in CRLF, not stuffed
/// (BDAT frames content by length, so a leading dot means nothing).
pub fn encode_for_bdat(message: &[u8]) -> Vec<u8> {
    encode(message, false)
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

fn encode(message: &[u8], stuff_dots: bool) -> Vec<u8> {
    // Room for a few stuffed dots and converted endings without regrowing.
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 8);
    let mut at_line_start = true;
    let mut bytes = message.iter().peekable();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\r' => {
                // CRLF stays one ending; a CR alone becomes one too.
                bytes.next_if_eq(&&b'\n');
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            b'.' if stuff_dots && at_line_start => {
                out.extend_from_slice(b"..");
                at_line_start = false;
            }
            _ => {
                out.push(byte);
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out
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
