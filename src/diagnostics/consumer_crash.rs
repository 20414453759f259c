//! `FAULT_CONSUMER_CRASH_AFTER`, for tests only: the queue consumer throws
//! after settling this many freshly delivered messages of a batch, leaving
//! the rest unacknowledged as a crash would. The end-to-end tests use it to
//! show that redelivered messages never go again to recipients already
//! recorded. Never set it in production.
//!
//! Must not: perform I/O; the consumer reads the variable and crashes.

/// The variable's name.
pub const VAR: &str = "FAULT_CONSUMER_CRASH_AFTER";

/// A parsed `FAULT_CONSUMER_CRASH_AFTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerCrash {
    /// Messages settled before the crash.
    pub after: usize,
}

impl ConsumerCrash {
    /// Reads the variable; unset or unreadable injects nothing.
    pub fn parse(value: Option<&str>) -> Option<ConsumerCrash> {
        let after = value?.trim().parse().ok()?;
        Some(ConsumerCrash { after })
    }

    /// For a batch of `total` messages to settle: how many to settle before
    /// crashing, and the crash's message. `None` when the batch is too small
    /// to crash part-way.
    pub fn strikes(&self, total: usize) -> Option<(usize, String)> {
        (self.after < total).then(|| {
            (
                self.after,
                format!("{VAR}: crashing after {} of {total} messages", self.after),
            )
        })
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
            (Some("soon"), None),
            (Some("-1"), None),
            (Some("0"), Some(0)),
            (Some(" 3 "), Some(3)),
        ];
        for (value, after) in table {
            let got = ConsumerCrash::parse(value).map(|c| c.after);
            assert_eq!(got, after, "{value:?}");
        }
    }

    #[test]
    fn crashes_only_part_way() {
        let crash = ConsumerCrash { after: 3 };
        for (total, want) in [(0, None), (3, None), (4, Some(3)), (100, Some(3))] {
            let got = crash.strikes(total);
            assert_eq!(got.as_ref().map(|(k, _)| *k), want, "{total}");
            if let Some((_, message)) = got {
                // The end-to-end test looks for these words in the log.
                assert!(message.starts_with("FAULT_CONSUMER_CRASH_AFTER: crashing"));
                assert!(message.contains(&format!("of {total}")));
            }
        }
    }
}
