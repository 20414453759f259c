//! Per-recipient results of delivery attempts, and the message status they add
//! up to.
//!
//! Owns the rules that make retries per recipient: a recipient the upstream
//! accepted is never handed to it again, a permanently refused one is failed
//! and recorded, and only the deferred ones travel on to the next attempt.
//! Must not: touch storage or the clock; the edge records what this decides.

use crate::queue::MessageStatus;
use crate::smtp::{Cause, OutcomeKind, RecipientOutcome, TransactionOutcome};

use super::policy::Decision;

/// Where one recipient of one message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Not attempted yet.
    Pending,
    /// The upstream accepted the message for this recipient.
    Delivered,
    /// Refused for now; another attempt follows.
    Deferred,
    /// Refused for good, or out of time.
    Failed,
    /// The connection died after the data was sent: the upstream may have it.
    Unknown,
    /// In flight: written just before the final dot of its transaction, and
    /// replaced by the result as soon as the reply arrives. Found by a later
    /// attempt, it means the attempt that wrote it died in between: the
    /// upstream may have the message, so it becomes `Unknown` (see
    /// [`stale_in_flight`]) and is never sent again.
    Sending,
    /// Held back by the tenant's suppression list before any upstream saw
    /// the address (see `delivery::screen`); never sent.
    Suppressed,
    /// The upstream accepted it, then a report came back that the
    /// recipient's server refused it (a bounce after the 250).
    Bounced,
}

impl RecipientState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Delivered => "delivered",
            RecipientState::Deferred => "deferred",
            RecipientState::Failed => "failed",
            RecipientState::Unknown => "unknown",
            RecipientState::Sending => "sending",
            RecipientState::Suppressed => "suppressed",
            RecipientState::Bounced => "bounced",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RecipientState::Pending,
            "delivered" => RecipientState::Delivered,
            "deferred" => RecipientState::Deferred,
            "failed" => RecipientState::Failed,
            "unknown" => RecipientState::Unknown,
            "sending" => RecipientState::Sending,
            "suppressed" => RecipientState::Suppressed,
            "bounced" => RecipientState::Bounced,
            _ => return None,
        })
    }

    /// No further attempt may go to this recipient: sending again could
    /// duplicate (delivered, unknown, sending), is pointless (failed) or
    /// was ruled out (suppressed), or the upstream took it and it bounced
    /// later (bounced).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RecipientState::Bounced
                | RecipientState::Delivered
                | RecipientState::Failed
                | RecipientState::Unknown
                | RecipientState::Sending
                | RecipientState::Suppressed
        )
    }
}

/// One recipient's result from one attempt, as recorded and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    pub address: String,
    pub state: RecipientState,
    /// The upstream's reply code, when a reply decided the result.
    pub reply_code: Option<u16>,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub enhanced_code: Option<String>,
    /// The reply text, or what went wrong when there was no reply.
    pub reply_text: String,
}

fn state_of(kind: OutcomeKind) -> RecipientState {
    match kind {
        OutcomeKind::Delivered => RecipientState::Delivered,
        // A broken upstream setup is not the recipient's fault: try again.
        OutcomeKind::Transient | OutcomeKind::Configuration => RecipientState::Deferred,
        OutcomeKind::Permanent => RecipientState::Failed,
        OutcomeKind::Unknown => RecipientState::Unknown,
    }
}

fn result_of(r: &RecipientOutcome) -> RecipientResult {
    let reply = r.outcome.reply.as_ref();
    let reply_text = match (&r.outcome.cause, reply) {
        (Cause::Reply, Some(reply)) => reply.text(),
        (cause, Some(reply)) => format!("{cause} ({})", reply.text()),
        (cause, None) => cause.to_string(),
    };
    RecipientResult {
        address: r.address.clone(),
        state: state_of(r.outcome.kind),
        reply_code: reply.map(|r| r.code),
        enhanced_code: reply.and_then(|r| r.enhanced).map(|e| e.to_string()),
        reply_text,
    }
}

/// Each recipient's result from a finished transaction. When the
/// transaction ended before any recipient was tried (connection refused,
/// greeting refused), every recipient gets the transaction's outcome.
pub fn from_transaction(outcome: &TransactionOutcome, rcpt_to: &[String]) -> Vec<RecipientResult> {
    if !outcome.recipients.is_empty() {
        return outcome.recipients.iter().map(result_of).collect();
    }
    rcpt_to
        .iter()
        .map(|address| {
            result_of(&RecipientOutcome {
                address: address.clone(),
                outcome: outcome.outcome.clone(),
            })
        })
        .collect()
}

/// The reply text of a recipient whose in-flight marker outlived its attempt.
pub const STALE_IN_FLIGHT: &str = "the attempt stopped between the end of the message data and \
     the upstream's reply; the upstream may have the message, so it is not sent again";

/// The in-flight markers for `addresses`, written before the final dot of
/// the transaction that carries them to the upstream.
pub fn in_flight(addresses: &[String]) -> Vec<RecipientResult> {
    addresses
        .iter()
        .map(|address| RecipientResult {
            address: address.clone(),
            state: RecipientState::Sending,
            reply_code: None,
            enhanced_code: None,
            reply_text: String::new(),
        })
        .collect()
}

/// The recipients recorded in flight by an attempt that never recorded
/// their result, as `Unknown`. Read under the message's delivery lease, a
/// marker can only be a dead attempt's: a live one replaces it with the
/// result before it lets go of the lease.
pub fn stale_in_flight(recorded: &[(String, RecipientState)]) -> Vec<RecipientResult> {
    recorded
        .iter()
        .filter(|(_, state)| *state == RecipientState::Sending)
        .map(|(address, _)| RecipientResult {
            address: address.clone(),
            state: RecipientState::Unknown,
            reply_code: None,
            enhanced_code: None,
            reply_text: STALE_IN_FLIGHT.to_string(),
        })
        .collect()
}

/// Recorded states with `results` written over them, as the store holds
/// them once the results are recorded (addresses compared without case).
pub fn with_results(states: &mut Vec<(String, RecipientState)>, results: Vec<RecipientResult>) {
    for result in results {
        states.retain(|(a, _)| !a.eq_ignore_ascii_case(&result.address));
        states.push((result.address, result.state));
    }
}

/// Every recipient deferred for a reason with no reply (no upstream reached).
pub fn all_deferred(rcpt_to: &[String], reason: &str) -> Vec<RecipientResult> {
    rcpt_to
        .iter()
        .map(|address| RecipientResult {
            address: address.clone(),
            state: RecipientState::Deferred,
            reply_code: None,
            enhanced_code: None,
            reply_text: reason.to_string(),
        })
        .collect()
}

/// Applies the policy's decision: when the message is given up, recipients
/// still deferred are failed with the reason.
pub fn settle(mut results: Vec<RecipientResult>, decision: &Decision) -> Vec<RecipientResult> {
    if let Decision::Fail(reason) = decision {
        for r in &mut results {
            if r.state == RecipientState::Deferred || r.state == RecipientState::Pending {
                r.state = RecipientState::Failed;
                if !r.reply_text.contains(reason.as_str()) {
                    r.reply_text = format!("{}; {reason}", r.reply_text);
                }
            }
        }
    }
    results
}

/// The recipients of `rcpt_to` that may still be sent the message, given what
/// is recorded. A redelivered queue message (after a crash, or a retry that
/// raced a record) therefore never re-sends to a recorded recipient.
pub fn still_to_deliver(rcpt_to: &[String], recorded: &[(String, RecipientState)]) -> Vec<String> {
    rcpt_to
        .iter()
        .filter(|a| {
            !recorded
                .iter()
                .any(|(r, state)| r.eq_ignore_ascii_case(a) && state.is_final())
        })
        .cloned()
        .collect()
}

/// The message's status from all its recipients' states.
///
/// Suppressed recipients were never meant to be sent the message, so they
/// do not count: the status is that of the others, and `suppressed` when
/// every recipient is. Of the others: `deferred` while any recipient awaits
/// another attempt; `queued` while one is pending or in flight (a stale
/// marker is settled `unknown` by the next attempt); then `unknown` if any
/// may or may not have it; `delivered` when all have it; `failed` when none
/// does; `partially_delivered` otherwise.
pub fn message_status(states: &[RecipientState]) -> MessageStatus {
    if states.is_empty() {
        return MessageStatus::Queued;
    }
    let counted: Vec<RecipientState> = states
        .iter()
        .copied()
        .filter(|s| *s != RecipientState::Suppressed)
        .collect();
    let any = |s: RecipientState| counted.contains(&s);
    if counted.is_empty() {
        MessageStatus::Suppressed
    } else if any(RecipientState::Deferred) {
        MessageStatus::Deferred
    } else if any(RecipientState::Pending) || any(RecipientState::Sending) {
        MessageStatus::Queued
    } else if any(RecipientState::Unknown) {
        MessageStatus::Unknown
    } else if counted.iter().all(|s| *s == RecipientState::Delivered) {
        MessageStatus::Delivered
    } else if any(RecipientState::Delivered) {
        MessageStatus::PartiallyDelivered
    } else {
        MessageStatus::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_markers_become_unknown_in_the_states_read() {
        let mut states = vec![
            ("a@x.net".to_string(), RecipientState::Delivered),
            ("B@x.net".to_string(), RecipientState::Sending),
        ];
        let stale = stale_in_flight(&states);
        with_results(&mut states, stale);
        assert_eq!(
            states,
            vec![
                ("a@x.net".to_string(), RecipientState::Delivered),
                ("B@x.net".to_string(), RecipientState::Unknown),
            ]
        );
        let rcpts = ["a@x.net".to_string(), "b@x.net".to_string()];
        assert!(still_to_deliver(&rcpts, &states).is_empty());
    }
    use crate::smtp::{Outcome, ReplyParser};

    fn rcpt(address: &str, kind: OutcomeKind, reply: &str) -> RecipientOutcome {
        let line = format!("{reply}\r\n");
        let mut input = line.as_bytes();
        let reply = ReplyParser::new().parse(&mut input).unwrap().unwrap();
        RecipientOutcome {
            address: address.into(),
            outcome: Outcome {
                kind,
                cause: Cause::Reply,
                reply: Some(reply),
            },
        }
    }

    #[test]
    fn mixed_replies_become_per_recipient_states() {
        use OutcomeKind::*;
        let outcome = TransactionOutcome {
            id: 0,
            outcome: Outcome::new(Transient, Cause::Reply),
            recipients: vec![
                rcpt("ok@x.net", Delivered, "250 2.0.0 Queued"),
                rcpt("later@x.net", Transient, "450 4.2.1 Mailbox busy"),
                rcpt("gone@x.net", Permanent, "550 5.1.1 No such user"),
            ],
        };
        let results = from_transaction(&outcome, &[]);
        let table = [
            (
                "ok@x.net",
                RecipientState::Delivered,
                Some(250),
                Some("2.0.0"),
            ),
            (
                "later@x.net",
                RecipientState::Deferred,
                Some(450),
                Some("4.2.1"),
            ),
            (
                "gone@x.net",
                RecipientState::Failed,
                Some(550),
                Some("5.1.1"),
            ),
        ];
        assert_eq!(results.len(), table.len());
        for (r, (address, state, code, enhanced)) in results.iter().zip(table) {
            assert_eq!(r.address, address);
            assert_eq!(r.state, state, "{address}");
            assert_eq!(r.reply_code, code, "{address}");
            assert_eq!(r.enhanced_code.as_deref(), enhanced, "{address}");
            assert!(!r.reply_text.starts_with(&code.unwrap().to_string()));
        }
        assert_eq!(results[2].reply_text, "No such user");
    }

    #[test]
    fn a_session_failure_applies_to_every_recipient() {
        let outcome = TransactionOutcome {
            id: 0,
            outcome: Outcome::new(
                OutcomeKind::Transient,
                Cause::ConnectFailed("refused".into()),
            ),
            recipients: vec![],
        };
        let rcpts = vec!["a@x.net".to_string(), "b@x.net".to_string()];
        let results = from_transaction(&outcome, &rcpts);
        assert_eq!(results.len(), 2);
        for r in &results {
            assert_eq!(r.state, RecipientState::Deferred);
            assert_eq!(r.reply_code, None);
            assert!(r.reply_text.contains("refused"), "{}", r.reply_text);
        }
    }

    #[test]
    fn giving_up_fails_the_deferred_recipients_only() {
        let results = vec![
            RecipientResult {
                address: "ok@x.net".into(),
                state: RecipientState::Delivered,
                reply_code: Some(250),
                enhanced_code: None,
                reply_text: "ok".into(),
            },
            RecipientResult {
                address: "later@x.net".into(),
                state: RecipientState::Deferred,
                reply_code: Some(450),
                enhanced_code: None,
                reply_text: "busy".into(),
            },
        ];
        let kept = settle(
            results.clone(),
            &Decision::Retry {
                delay_seconds: 60,
                counts: true,
            },
        );
        assert_eq!(kept, results);
        let failed = settle(results, &Decision::Fail("gave up".into()));
        assert_eq!(failed[0].state, RecipientState::Delivered);
        assert_eq!(failed[1].state, RecipientState::Failed);
        assert!(failed[1].reply_text.contains("gave up"));
        assert!(failed[1].reply_text.contains("busy"));
    }

    #[test]
    fn recorded_final_recipients_are_never_sent_again() {
        use RecipientState::*;
        let rcpts: Vec<String> = ["a@x.net", "b@x.net", "c@x.net", "d@x.net", "e@x.net"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let recorded = vec![
            ("A@x.net".to_string(), Delivered),
            ("b@x.net".to_string(), Deferred),
            ("c@x.net".to_string(), Failed),
            ("d@x.net".to_string(), Unknown),
            ("e@x.net".to_string(), Sending),
            ("f@x.net".to_string(), Suppressed),
        ];
        let rcpts = [rcpts, vec!["F@x.net".to_string()]].concat();
        assert_eq!(
            still_to_deliver(&rcpts, &recorded),
            vec!["b@x.net".to_string()]
        );
        assert_eq!(still_to_deliver(&rcpts, &[]), rcpts);
    }

    #[test]
    fn a_stale_in_flight_marker_becomes_unknown_and_nothing_else_changes() {
        use RecipientState::*;
        let recorded = vec![
            ("a@x.net".to_string(), Sending),
            ("b@x.net".to_string(), Delivered),
            ("c@x.net".to_string(), Deferred),
            ("d@x.net".to_string(), Sending),
        ];
        let stale = stale_in_flight(&recorded);
        let addresses: Vec<&str> = stale.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addresses, ["a@x.net", "d@x.net"]);
        assert!(
            stale
                .iter()
                .all(|r| r.state == Unknown && r.reply_code.is_none())
        );
        assert!(stale_in_flight(&[("b@x.net".to_string(), Delivered)]).is_empty());
        let marked = in_flight(&["a@x.net".to_string()]);
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0].state, Sending);
    }

    #[test]
    fn message_status_table() {
        use RecipientState::*;
        let table: &[(&[RecipientState], &str)] = &[
            (&[], "queued"),
            (&[Pending], "queued"),
            (&[Delivered], "delivered"),
            (&[Delivered, Delivered], "delivered"),
            (&[Delivered, Deferred], "deferred"),
            (&[Failed, Deferred], "deferred"),
            (&[Delivered, Failed], "partially_delivered"),
            (&[Failed, Failed], "failed"),
            (&[Delivered, Unknown], "unknown"),
            (&[Unknown, Deferred], "deferred"),
            (&[Delivered, Sending], "queued"),
            (&[Sending, Deferred], "deferred"),
            // Suppressed recipients do not count; all of them: `suppressed`.
            (&[Suppressed], "suppressed"),
            (&[Suppressed, Suppressed], "suppressed"),
            (&[Delivered, Suppressed], "delivered"),
            (&[Failed, Suppressed], "failed"),
            (&[Delivered, Failed, Suppressed], "partially_delivered"),
            (&[Pending, Suppressed], "queued"),
            (&[Deferred, Suppressed], "deferred"),
            (&[Unknown, Suppressed], "unknown"),
        ];
        for (states, expected) in table {
            assert_eq!(message_status(states).as_str(), *expected, "{states:?}");
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        use RecipientState::*;
        for s in [
            Pending, Delivered, Deferred, Failed, Unknown, Sending, Suppressed,
        ] {
            assert_eq!(RecipientState::parse(s.as_str()), Some(s));
        }
        assert_eq!(RecipientState::parse("sent"), None);
    }
}
