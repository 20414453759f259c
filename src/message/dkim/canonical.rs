//! DKIM "relaxed" canonicalisation (RFC 6376 3.4.2 and 3.4.4) and the header
//! splitting it needs.
//!
//! Owns the byte-exact transformations both signer and verifier apply, plus
//! line-ending normalisation of the input. Must not: know about keys,
//! algorithms or tags; [`super::signature`] decides what gets canonicalised.

use crate::message::error::DkimError;

/// Rewrites bare LF and bare CR as CRLF. Signatures are computed over what
/// goes on the wire, and SMTP only carries CRLF lines. Copies the text
/// between line ends in whole runs, not byte by byte.
pub fn normalize_line_endings(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len() + input.len() / 32);
    let mut rest = input;
    while let Some(at) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        let (text, end) = rest.split_at(at);
        output.extend_from_slice(text);
        output.extend_from_slice(b"\r\n");
        let skip = if end.starts_with(b"\r\n") { 2 } else { 1 };
        rest = end.get(skip..).unwrap_or_default();
    }
    output.extend_from_slice(rest);
    output
}

/// One header field as it appears in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// Field name as written (case preserved, no colon).
    pub name: &'a str,
    /// The whole field including continuation lines and the final CRLF.
    pub raw: &'a [u8],
}

/// Splits a CRLF-normalised message into header fields and the body offset.
/// A message without an empty line is all header and has an empty body.
pub fn split_message(message: &[u8]) -> Result<(Vec<HeaderField<'_>>, usize), DkimError> {
    let mut fields: Vec<HeaderField<'_>> = Vec::new();
    let mut position = 0;
    while position < message.len() {
        let rest = &message[position..];
        let line_len = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |end| end + 2);
        let line = &rest[..line_len];
        if line == b"\r\n" {
            return Ok((fields, position + 2));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Continuation: extend the previous field in place.
            let Some(last) = fields.last_mut() else {
                return Err(DkimError::MalformedHeader(lossy(line)));
            };
            let start = position - last.raw.len();
            last.raw = &message[start..position + line_len];
        } else {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| DkimError::MalformedHeader(lossy(line)))?;
            let name = std::str::from_utf8(&line[..colon])
                .map_err(|_| DkimError::MalformedHeader(lossy(line)))?;
            fields.push(HeaderField { name, raw: line });
        }
        position += line_len;
    }
    Ok((fields, message.len()))
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end().to_string()
}

fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Relaxed header canonicalisation of one field: lowercase name, unfolded
/// value with whitespace runs reduced to one space and trimmed, `name:value`.
/// `with_crlf` is false only for the DKIM-Signature header being signed.
pub fn relaxed_header(raw: &[u8], with_crlf: bool) -> Vec<u8> {
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    let (name, value) = raw.split_at(colon);
    let value = value.get(1..).unwrap_or_default();

    let mut output: Vec<u8> = name
        .iter()
        .filter(|&&b| !is_wsp(b))
        .map(u8::to_ascii_lowercase)
        .collect();
    output.push(b':');
    let mut pending_space = false;
    let mut wrote_value = false;
    for &byte in value {
        match byte {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = true,
            _ => {
                if pending_space && wrote_value {
                    output.push(b' ');
                }
                pending_space = false;
                wrote_value = true;
                output.push(byte);
            }
        }
    }
    if with_crlf {
        output.extend_from_slice(b"\r\n");
    }
    output
}

/// Relaxed body canonicalisation, streamed to `emit` so a large body is
/// hashed without a second copy: whitespace runs become one space, trailing
/// whitespace and trailing empty lines go, a non-empty body ends in CRLF.
pub fn relaxed_body(body: &[u8], emit: &mut impl FnMut(&[u8])) {
    let mut empty_lines = 0usize;
    let mut collapsed = Vec::new();
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if lines.peek().is_none() && raw.is_empty() {
            // Text after the final CRLF is empty: not a line of its own.
            break;
        }
        // Most lines have nothing to rewrite (no tab, no run of spaces, no
        // trailing space): those are emitted as they are, without a copy.
        let as_is = !raw.contains(&b'\t')
            && raw.last() != Some(&b' ')
            && !raw.windows(2).any(|w| w == b"  ");
        let line: &[u8] = if as_is {
            raw
        } else {
            collapsed.clear();
            let mut pending_space = false;
            for &byte in raw {
                if is_wsp(byte) {
                    pending_space = true;
                } else {
                    if pending_space {
                        collapsed.push(b' ');
                    }
                    pending_space = false;
                    collapsed.push(byte);
                }
            }
            &collapsed
        };
        if line.is_empty() {
            // Held back until a non-empty line proves they are not trailing.
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            emit(b"\r\n");
        }
        empty_lines = 0;
        emit(line);
        emit(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rules written byte by byte, as RFC 6376 states them: what the
    /// run-copying versions must match exactly.
    fn reference_normalize(input: &[u8]) -> Vec<u8> {
        let mut output = Vec::new();
        let mut bytes = input.iter().copied().peekable();
        while let Some(byte) = bytes.next() {
            match byte {
                b'\r' => {
                    output.extend_from_slice(b"\r\n");
                    if bytes.peek() == Some(&b'\n') {
                        bytes.next();
                    }
                }
                b'\n' => output.extend_from_slice(b"\r\n"),
                _ => output.push(byte),
            }
        }
        output
    }

    fn reference_body(body: &[u8]) -> Vec<u8> {
        let mut output = Vec::new();
        let mut empty_lines = 0usize;
        let mut lines = body.split(|&b| b == b'\n').peekable();
        while let Some(raw) = lines.next() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if lines.peek().is_none() && raw.is_empty() {
                break;
            }
            let mut line = Vec::new();
            let mut pending_space = false;
            for &byte in raw {
                if is_wsp(byte) {
                    pending_space = true;
                } else {
                    if pending_space {
                        line.push(b' ');
                    }
                    pending_space = false;
                    line.push(byte);
                }
            }
            if line.is_empty() {
                empty_lines += 1;
                continue;
            }
            for _ in 0..empty_lines {
                output.extend_from_slice(b"\r\n");
            }
            empty_lines = 0;
            output.extend_from_slice(&line);
            output.extend_from_slice(b"\r\n");
        }
        output
    }

    proptest! {
        #[test]
        fn run_copying_matches_the_byte_rules(
            input in proptest::collection::vec(
                prop_oneof![Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
                0..200,
            )
        ) {
            prop_assert_eq!(normalize_line_endings(&input), reference_normalize(&input));
            let normalized = normalize_line_endings(&input);
            let mut got = Vec::new();
            relaxed_body(&normalized, &mut |chunk| got.extend_from_slice(chunk));
            prop_assert_eq!(got, reference_body(&normalized));
        }
    }

    fn body(input: &str) -> String {
        let mut output = Vec::new();
        relaxed_body(input.as_bytes(), &mut |chunk| {
            output.extend_from_slice(chunk)
        });
        String::from_utf8(output).unwrap()
    }

    #[test]
    fn relaxed_body_matches_rfc_6376_rules() {
        for (input, expected) in [
            ("", ""),
            ("\r\n", ""),
            ("\r\n\r\n\r\n", ""),
            ("abc", "abc\r\n"),
            ("abc\r\n", "abc\r\n"),
            (" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"),
            ("a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"),
            ("a  \t\r\n \r\nb", "a\r\n\r\nb\r\n"),
            ("line\t\r\n\t\r\n", "line\r\n"),
        ] {
            assert_eq!(body(input), expected, "{input:?}");
        }
    }

    #[test]
    fn relaxed_header_matches_rfc_6376_rules() {
        for (input, expected) in [
            ("A: X\r\n", "a:X\r\n"),
            ("B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"),
            ("SUBJECT:\ttest  \t  \r\n", "subject:test\r\n"),
            ("From: \"A  B\" <a@b.c>\r\n", "from:\"A B\" <a@b.c>\r\n"),
            ("X-Empty:\r\n", "x-empty:\r\n"),
        ] {
            let got = relaxed_header(input.as_bytes(), true);
            assert_eq!(String::from_utf8(got).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn line_endings_become_crlf() {
        for (input, expected) in [
            ("a\nb\n", "a\r\nb\r\n"),
            ("a\r\nb\r\n", "a\r\nb\r\n"),
            ("a\rb\r", "a\r\nb\r\n"),
            ("a\r\r\nb", "a\r\n\r\nb"),
            ("\n\n", "\r\n\r\n"),
        ] {
            assert_eq!(
                normalize_line_endings(input.as_bytes()),
                expected.as_bytes(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn splits_folded_headers_and_finds_the_body() {
        let message = b"From: a@b.c\r\nSubject: one\r\n two\r\n\r\nbody\r\n";
        let (fields, offset) = split_message(message).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["From", "Subject"]);
        assert_eq!(fields[1].raw, b"Subject: one\r\n two\r\n");
        assert_eq!(&message[offset..], b"body\r\n");

        let (fields, offset) = split_message(b"From: a@b.c\r\n").unwrap();
        assert_eq!((fields.len(), offset), (1, 13));
        for bad in [
            &b" leading continuation\r\n\r\n"[..],
            b"no colon here\r\n\r\n",
        ] {
            assert!(matches!(
                split_message(bad),
                Err(DkimError::MalformedHeader(_))
            ));
        }
    }
}
