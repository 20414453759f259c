//! Property tests of the reply parser: any bytes, split anywhere, never
//! panic or buffer without bound; every reply a server can send comes back
//! exactly as sent, however the network cuts it.
//!
//! `cargo test` runs proptest's default number of cases; `make proptest`
//! runs many more (`PROPTEST_CASES`).

use proptest::prelude::*;

use super::*;

/// Parses `input` cut at `cuts`, as reads from a socket would deliver it,
/// until the first error.
fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<Result<Reply, ReplyError>> {
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    let mut parser = ReplyParser::new();
    let mut out = Vec::new();
    for pair in bounds.windows(2) {
        let mut piece = &input[pair[0]..pair[1]];
        loop {
            match parser.parse(&mut piece) {
                Ok(Some(reply)) => out.push(Ok(reply)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error));
                    return out;
                }
            }
        }
        // Bounded: never more than one line (and its CR) held back.
        assert!(parser.line.len() <= MAX_LINE_LEN + 1);
        assert!(parser.lines.len() <= MAX_LINES);
    }
    out
}

/// A reply as a server could send it: a code, an enhanced code of the same
/// class or none, and lines of text that do not themselves look like an
/// enhanced code.
fn any_reply() -> impl Strategy<Value = Reply> {
    (2u16..=5, 0u16..=5, 0u16..=9)
        .prop_flat_map(|(class, tens, units)| {
            let code = class * 100 + tens * 10 + units;
            let enhanced =
                prop::option::of((0u16..=999, 0u16..=999).prop_map(move |(subject, detail)| {
                    EnhancedCode {
                        class: class as u8,
                        subject,
                        detail,
                    }
                }));
            let line = "([A-Za-z][ -~]{0,80})?";
            (
                Just(code),
                if matches!(class, 2 | 4 | 5) {
                    enhanced.boxed()
                } else {
                    Just(None).boxed()
                },
                prop::collection::vec(line, 1..6),
            )
        })
        .prop_map(|(code, enhanced, lines)| Reply {
            code,
            enhanced,
            lines,
        })
}

/// The reply on the wire, CRLF-terminated lines.
fn render(reply: &Reply) -> Vec<u8> {
    let mut out = String::new();
    for (i, text) in reply.lines.iter().enumerate() {
        let separator = if i + 1 == reply.lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{}{separator}", reply.code));
        if let (0, Some(enhanced)) = (i, reply.enhanced) {
            out.push_str(&format!("{enhanced} "));
        }
        out.push_str(text);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

proptest! {
    #[test]
    fn any_bytes_in_any_pieces_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        for reply in parse_in_pieces(&input, &cuts).into_iter().flatten() {
            prop_assert!((200..=559).contains(&reply.code));
            prop_assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_LINES);
            for line in &reply.lines {
                prop_assert!(!line.contains('\n'));
            }
        }
    }

    #[test]
    fn reply_like_noise_never_panics(
        input in prop::collection::vec(
            prop::sample::select(b"0123456789 -.\r\nabc".to_vec()), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = parse_in_pieces(&input, &[]);
        // However it is cut, the same replies and the same error.
        prop_assert_eq!(parse_in_pieces(&input, &cuts), whole);
    }

    #[test]
    fn replies_round_trip_however_they_are_cut(
        replies in prop::collection::vec(any_reply(), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let wire: Vec<u8> = replies.iter().flat_map(render).collect();
        let parsed: Vec<Reply> = parse_in_pieces(&wire, &cuts)
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(parsed, replies);
    }
}
