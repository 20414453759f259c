//! `FIXED_ACCEPT`, for tests only: the clock and the random bytes the send
//! path uses to compose and sign a message (its id, its `Date`, its
//! unsubscribe tokens), fixed, so a dry run and a real send of the same
//! request can be compared byte for byte.
//!
//! The value is `<unix time in ms>:<64 hex digits>` (the 32 bytes of
//! entropy). Every message the worker composes then gets the same id: one
//! real send per worker life, which is what the comparison needs.
//! Owns: the switch's format. Must not: perform I/O, or be read in a
//! release build.

use crate::config::{ConfigError, err};

/// The clock and entropy a composed message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedAccept {
    pub now_ms: u64,
    pub entropy: [u8; 32],
}

impl FixedAccept {
    /// Reads the variable; unset or empty is `None`, anything malformed is
    /// refused (a misspelt switch must not compare the wrong things).
    pub fn parse(value: Option<&str>) -> Result<Option<FixedAccept>, ConfigError> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let bad = || err("FIXED_ACCEPT", "is not `<unix ms>:<64 hex digits>`");
        let (ms, hex) = value.split_once(':').ok_or_else(bad)?;
        let now_ms = ms.trim().parse().map_err(|_| bad())?;
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut entropy = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            entropy[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Some(FixedAccept { now_ms, entropy }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_table() {
        let hex = "ab".repeat(32);
        let good = format!("1700000000000:{hex}");
        // (value, Ok(the time it fixes) or Err(()) for a refused value)
        type Row<'a> = (Option<&'a str>, Result<Option<u64>, ()>);
        let table: [Row; 7] = [
            (None, Ok(None)),
            (Some(" "), Ok(None)),
            (Some(&good), Ok(Some(1_700_000_000_000))),
            (Some("1700000000000"), Err(())),
            (Some("x:00"), Err(())),
            (Some("1:abab"), Err(())),
            (
                Some("1:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
                Err(()),
            ),
        ];
        for (value, expected) in table {
            let got = FixedAccept::parse(value);
            match (&got, expected) {
                (Ok(f), Ok(ms)) => assert_eq!(f.map(|f| f.now_ms), ms, "{value:?}"),
                (Err(e), Err(())) => assert_eq!(e.setting, "FIXED_ACCEPT"),
                _ => panic!("{value:?}: {got:?}"),
            }
        }
        let parsed = FixedAccept::parse(Some(&good)).unwrap().unwrap();
        assert_eq!(parsed.entropy, [0xab; 32]);
    }
}
