//! `FAULT_D1_OUTAGE`, for tests only: every D1 call the queue consumer makes
//! fails for this many seconds, counted from the first batch the isolate's
//! consumer receives, as a D1 outage would. The end-to-end tests use it to
//! show that a storage outage delays messages but fails none and sends none
//! twice. Never set it in production; release builds do not read it.
//!
//! Must not: perform I/O or read the clock; the edge passes the times in.

/// The variable's name.
pub const VAR: &str = "FAULT_D1_OUTAGE";

/// A parsed `FAULT_D1_OUTAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct D1Outage {
    /// How long D1 calls fail, from the consumer's first batch.
    pub seconds: u64,
}

impl D1Outage {
    /// Reads the variable; unset, zero or unreadable injects nothing.
    pub fn parse(value: Option<&str>) -> Option<D1Outage> {
        let seconds: u64 = value?.trim().parse().ok()?;
        (seconds > 0).then_some(D1Outage { seconds })
    }

    /// Until when (Unix ms) D1 calls fail, for an outage that began at
    /// `started_ms`.
    pub fn until_ms(&self, started_ms: u64) -> u64 {
        started_ms.saturating_add(self.seconds.saturating_mul(1000))
    }

    /// The error a D1 call returns during the outage; the end-to-end test
    /// looks for these words in the log.
    pub fn error(&self) -> String {
        format!(
            "{VAR}: the database is unavailable ({} s outage)",
            self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let table = [
            (None, None),
            (Some(""), None),
            (Some("0"), None),
            (Some("soon"), None),
            (Some("-3"), None),
            (Some(" 30 "), Some(30)),
        ];
        for (value, seconds) in table {
            assert_eq!(
                D1Outage::parse(value).map(|o| o.seconds),
                seconds,
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_outage_lasts_from_the_first_batch() {
        let o = D1Outage { seconds: 30 };
        assert_eq!(o.until_ms(1_000), 31_000);
        assert_eq!(
            D1Outage { seconds: u64::MAX }.until_ms(5),
            u64::MAX,
            "saturates"
        );
        assert!(
            o.error()
                .starts_with("FAULT_D1_OUTAGE: the database is unavailable")
        );
    }
}
