//! `FAULT_ACCEPT`, for tests only: makes the accept path fail at one step, so
//! the end-to-end tests can prove that a failed store or enqueue leaves
//! nothing behind and that the caller's retry then succeeds.
//!
//! `store` or `enqueue` fails that step for every request; `store:N` or
//! `enqueue:N` only for the first N (counted per isolate). Never set it in
//! production. Must not: perform I/O; the edge counts and injects.

/// The accept step a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStep {
    /// Writing the message row to D1.
    Store,
    /// Sending the job to the queue.
    Enqueue,
}

/// A parsed `FAULT_ACCEPT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptFault {
    pub step: AcceptStep,
    /// How many requests fail; `None`: all of them.
    pub times: Option<u32>,
}

impl AcceptFault {
    /// Reads the variable; anything unreadable injects nothing.
    pub fn parse(value: &str) -> Option<AcceptFault> {
        let (step, times) = match value.trim().split_once(':') {
            Some((step, n)) => (step, Some(n.trim().parse().ok()?)),
            None => (value.trim(), None),
        };
        let step = match step {
            "store" => AcceptStep::Store,
            "enqueue" => AcceptStep::Enqueue,
            _ => return None,
        };
        Some(AcceptFault { step, times })
    }

    /// Whether the request reaching `step` after `injected` earlier faults fails.
    pub fn strikes(&self, step: AcceptStep, injected: u32) -> bool {
        self.step == step && self.times.is_none_or(|n| injected < n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        use AcceptStep::*;
        let table = [
            ("store", Some((Store, None))),
            ("enqueue", Some((Enqueue, None))),
            (" enqueue:2 ", Some((Enqueue, Some(2)))),
            ("store:0", Some((Store, Some(0)))),
            ("", None),
            ("queue", None),
            ("store:x", None),
            ("store:-1", None),
        ];
        for (input, expected) in table {
            let got = AcceptFault::parse(input).map(|f| (f.step, f.times));
            assert_eq!(got, expected, "{input:?}");
        }
    }

    #[test]
    fn a_counted_fault_stops_after_its_count() {
        let f = AcceptFault::parse("enqueue:2").unwrap();
        let hits: Vec<bool> = (0..4).map(|n| f.strikes(AcceptStep::Enqueue, n)).collect();
        assert_eq!(hits, [true, true, false, false]);
        assert!(!f.strikes(AcceptStep::Store, 0));
        let always = AcceptFault::parse("store").unwrap();
        assert!((0..100).all(|n| always.strikes(AcceptStep::Store, n)));
    }
}
