//! Incremental parser for SMTP replies (RFC 5321 §4.2) with RFC 3463
//! enhanced status codes.
//!
//! Bytes arrive in whatever pieces the network delivers: a reply may be split
//! across reads, and one read may carry several replies. [`ReplyParser`]
//! keeps the partial reply between calls and hands back complete replies one
//! at a time, so the caller can stop consuming input at a reply boundary (the
//! session needs that after `STARTTLS`).
//!
//! Memory is bounded: a line longer than [`MAX_LINE_LEN`] bytes or a reply of
//! more than [`MAX_LINES`] lines is an error, not a reason to keep buffering.
//! Lines normally end in CRLF; a bare LF is accepted as a line ending too,
//! because some servers emit it and rejecting it buys no safety on the reply
//! side.
//!
//! Owns: the reply grammar, enhanced status codes and those bounds. Must not:
//! say what a reply means to the conversation (the session and the
//! transactions decide).

use std::fmt;

/// Longest reply line accepted, excluding the line ending. RFC 5321 allows
/// 512 octets; real servers exceed it, so leave generous headroom.
pub const MAX_LINE_LEN: usize = 4096;

/// Most lines accepted in one multi-line reply (EHLO replies are the longest
/// in practice, with a few dozen lines at most).
pub const MAX_LINES: usize = 128;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete server reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code, first digit 2 to 5.
    pub code: u16,
    /// Enhanced status code from the first line, when the server sent one.
    pub enhanced: Option<EnhancedCode>,
    /// Text of each line, without the code, the separator, the enhanced
    /// status code and the line ending.
    pub lines: Vec<String>,
}

impl Reply {
    /// Builds a reply from its parts; mostly useful in tests and for
    /// synthesised records.
    pub fn new(code: u16, text: &str) -> Self {
        Reply {
            code,
            enhanced: None,
            lines: vec![text.to_string()],
        }
    }

    /// The first digit of the code.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// 2yz: the command succeeded.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// 3yz: the server waits for more input (354 after DATA, 334 in AUTH).
    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// 4yz: failed for now; the same command may succeed later.
    pub fn is_transient_negative(&self) -> bool {
        self.class() == 4
    }

    /// 5yz: failed; repeating the same command will fail again.
    pub fn is_permanent_negative(&self) -> bool {
        self.class() == 5
    }

    /// All lines joined with a space.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Why a reply could not be parsed. Any of these ends the session: after
/// a malformed reply the client can no longer tell which command the
/// following bytes answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line exceeded [`MAX_LINE_LEN`] bytes.
    LineTooLong,
    /// A reply exceeded [`MAX_LINES`] lines.
    TooManyLines,
    /// A line did not start with three digits followed by a space, a hyphen
    /// or the end of the line.
    MalformedLine,
    /// The code is outside 200..=559 with a second digit of 0 to 5.
    InvalidCode,
    /// The lines of a multi-line reply carried different codes.
    InconsistentCode,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ReplyError::LineTooLong => "reply line too long",
            ReplyError::TooManyLines => "reply has too many lines",
            ReplyError::MalformedLine => "malformed reply line",
            ReplyError::InvalidCode => "invalid reply code",
            ReplyError::InconsistentCode => "multi-line reply with differing codes",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ReplyError {}

/// Incremental reply parser. Feed it bytes with [`ReplyParser::parse`].
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// The line being read, without its line ending.
    line: Vec<u8>,
    /// Code of the first line of the reply being read.
    code: Option<u16>,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any partial reply, e.g. when the transport is replaced by TLS
    /// and plaintext leftovers must not be read as encrypted-channel replies.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Consumes bytes from the front of `input` until one complete reply has
    /// been read (returned as `Ok(Some(_))`, with `input` advanced just past
    /// it) or `input` is exhausted (`Ok(None)`, partial state kept).
    ///
    /// After an error the parser is reset; the caller is expected to give up
    /// on the connection.
    pub fn parse(&mut self, input: &mut &[u8]) -> Result<Option<Reply>, ReplyError> {
        while let Some((&byte, rest)) = input.split_first() {
            *input = rest;
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                let accepted = if line.len() > MAX_LINE_LEN {
                    Err(ReplyError::LineTooLong)
                } else {
                    self.accept_line(line)
                };
                match accepted {
                    Ok(Some(reply)) => return Ok(Some(reply)),
                    Ok(None) => {}
                    Err(error) => {
                        self.reset();
                        return Err(error);
                    }
                }
            } else if self.line.len() > MAX_LINE_LEN {
                // One byte of headroom for the CR of a CRLF ending.
                self.reset();
                return Err(ReplyError::LineTooLong);
            } else {
                self.line.push(byte);
            }
        }
        Ok(None)
    }

    fn accept_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let (code, is_last, text) = split_line(line)?;
        if self.code.is_some_and(|first| first != code) {
            return Err(ReplyError::InconsistentCode);
        }
        if self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.code = Some(code);
        let (enhanced, text) = split_enhanced_code(code, text);
        if self.lines.is_empty() {
            self.enhanced = enhanced;
        }
        self.lines.push(String::from_utf8_lossy(text).into_owned());
        if !is_last {
            return Ok(None);
        }
        let reply = Reply {
            code,
            enhanced: self.enhanced.take(),
            lines: std::mem::take(&mut self.lines),
        };
        self.code = None;
        Ok(Some(reply))
    }
}

/// Splits `250-text` / `250 text` / `250` into code, "is last line", text.
fn split_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let [first, second, third, rest @ ..] = line else {
        return Err(ReplyError::MalformedLine);
    };
    if ![first, second, third].iter().all(|b| b.is_ascii_digit()) {
        return Err(ReplyError::MalformedLine);
    }
    if !(b'2'..=b'5').contains(first) || *second > b'5' {
        return Err(ReplyError::InvalidCode);
    }
    let code =
        u16::from(first - b'0') * 100 + u16::from(second - b'0') * 10 + u16::from(third - b'0');
    match rest {
        [] => Ok((code, true, rest)),
        [b' ', text @ ..] => Ok((code, true, text)),
        [b'-', text @ ..] => Ok((code, false, text)),
        _ => Err(ReplyError::MalformedLine),
    }
}

/// Recognises a leading `class.subject.detail` whose class matches the
/// reply code's class, and returns it with the remaining text. Text that
/// merely looks similar (`2.0 ready`, a class that contradicts the code) is
/// left alone.
fn split_enhanced_code(code: u16, text: &[u8]) -> (Option<EnhancedCode>, &[u8]) {
    let token_end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let (token, rest) = text.split_at(token_end);
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let mut parts = token.split(|&b| b == b'.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (None, text);
    };
    let (Some(class), Some(subject), Some(detail)) = (
        parse_small_number(class, 1),
        parse_small_number(subject, 3),
        parse_small_number(detail, 3),
    ) else {
        return (None, text);
    };
    if !matches!(class, 2 | 4 | 5) || class != code / 100 {
        return (None, text);
    }
    let enhanced = EnhancedCode {
        class: class as u8,
        subject,
        detail,
    };
    (Some(enhanced), rest)
}

fn parse_small_number(digits: &[u8], max_digits: usize) -> Option<u16> {
    if digits.is_empty() || digits.len() > max_digits || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')),
    )
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut parser = ReplyParser::new();
        let mut rest = input;
        let mut out = Vec::new();
        loop {
            match parser.parse(&mut rest) {
                Ok(Some(reply)) => out.push(Ok(reply)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error));
                    break;
                }
            }
        }
        out
    }

    fn parse_bytewise(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut parser = ReplyParser::new();
        let mut out = Vec::new();
        for byte in input {
            let mut piece = std::slice::from_ref(byte);
            match parser.parse(&mut piece) {
                Ok(Some(reply)) => out.push(Ok(reply)),
                Ok(None) => {}
                Err(error) => {
                    out.push(Err(error));
                    break;
                }
            }
        }
        out
    }

    fn reply(code: u16, enhanced: Option<(u8, u16, u16)>, lines: &[&str]) -> Reply {
        Reply {
            code,
            enhanced: enhanced.map(|(class, subject, detail)| EnhancedCode {
                class,
                subject,
                detail,
            }),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn parses_table_of_replies_whole_and_bytewise() {
        type Parsed = Vec<Result<Reply, ReplyError>>;
        let table: Vec<(&[u8], Parsed)> = vec![
            (
                b"220 mx ready\r\n",
                vec![Ok(reply(220, None, &["mx ready"]))],
            ),
            (b"250\r\n", vec![Ok(reply(250, None, &[""]))]),
            (
                b"250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
                vec![Ok(reply(250, None, &["mx", "PIPELINING", "SIZE 100"]))],
            ),
            (
                b"550 5.1.1 no such user\r\n",
                vec![Ok(reply(550, Some((5, 1, 1)), &["no such user"]))],
            ),
            (
                b"452-4.5.3 too many\r\n452 4.5.3 recipients\r\n",
                vec![Ok(reply(452, Some((4, 5, 3)), &["too many", "recipients"]))],
            ),
            (
                b"250 2.0.0\r\n",
                vec![Ok(reply(250, Some((2, 0, 0)), &[""]))],
            ),
            // Class contradicting the code is plain text.
            (
                b"250 5.1.1 odd\r\n",
                vec![Ok(reply(250, None, &["5.1.1 odd"]))],
            ),
            (b"250 2.0 ok\r\n", vec![Ok(reply(250, None, &["2.0 ok"]))]),
            (
                b"250 2.0.1234 x\r\n",
                vec![Ok(reply(250, None, &["2.0.1234 x"]))],
            ),
            // Bare LF is accepted as a line ending.
            (
                b"250 ok\n354 go\n",
                vec![Ok(reply(250, None, &["ok"])), Ok(reply(354, None, &["go"]))],
            ),
            (b"abc\r\n", vec![Err(ReplyError::MalformedLine)]),
            (b"25\r\n", vec![Err(ReplyError::MalformedLine)]),
            (b"\r\n", vec![Err(ReplyError::MalformedLine)]),
            (b"250x\r\n", vec![Err(ReplyError::MalformedLine)]),
            (b"999 nope\r\n", vec![Err(ReplyError::InvalidCode)]),
            (b"199 nope\r\n", vec![Err(ReplyError::InvalidCode)]),
            (b"260 nope\r\n", vec![Err(ReplyError::InvalidCode)]),
            (
                b"250-a\r\n251 b\r\n",
                vec![Err(ReplyError::InconsistentCode)],
            ),
            (
                b"220 hi\r\nxyz\r\n",
                vec![
                    Ok(reply(220, None, &["hi"])),
                    Err(ReplyError::MalformedLine),
                ],
            ),
            // Invalid UTF-8 in text is replaced, not an error.
            (b"250 \xff\r\n", vec![Ok(reply(250, None, &["\u{fffd}"]))]),
        ];
        for (input, expected) in table {
            assert_eq!(
                parse_all(input),
                expected,
                "whole: {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                parse_bytewise(input),
                expected,
                "bytewise: {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn incomplete_reply_is_kept_until_completed() {
        let mut parser = ReplyParser::new();
        let mut first: &[u8] = b"250-a\r\n25";
        assert_eq!(parser.parse(&mut first), Ok(None));
        assert!(first.is_empty());
        let mut second: &[u8] = b"0 b\r\n220 next\r\n";
        assert_eq!(
            parser.parse(&mut second),
            Ok(Some(reply(250, None, &["a", "b"])))
        );
        assert_eq!(second, b"220 next\r\n");
    }

    #[test]
    fn over_long_line_is_an_error_without_unbounded_buffering() {
        let mut parser = ReplyParser::new();
        let mut input: Vec<u8> = b"250 ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_LEN));
        let mut rest = input.as_slice();
        assert_eq!(parser.parse(&mut rest), Err(ReplyError::LineTooLong));
        assert!(parser.line.capacity() <= 2 * MAX_LINE_LEN);
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let mut input: Vec<u8> = b"250 ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_LEN - 4));
        input.extend(b"\r\n");
        let parsed = parse_all(&input);
        assert!(matches!(parsed.as_slice(), [Ok(r)] if r.code == 250));
    }

    #[test]
    fn too_many_lines_is_an_error() {
        let mut input = Vec::new();
        for _ in 0..MAX_LINES {
            input.extend(b"250-x\r\n");
        }
        input.extend(b"250 last\r\n");
        assert_eq!(parse_all(&input), vec![Err(ReplyError::TooManyLines)]);
    }

    #[test]
    fn display_shows_code_enhanced_code_and_text() {
        let parsed = parse_all(b"550-5.1.1 no\r\n550 5.1.1 user\r\n");
        let Some(Ok(r)) = parsed.first() else {
            panic!("expected a reply, got {parsed:?}");
        };
        assert_eq!(r.to_string(), "550 5.1.1 no user");
    }
}
