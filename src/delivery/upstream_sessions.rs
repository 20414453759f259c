//! What operators see of an upstream: the record one SMTP session leaves
//! (when, how it ended, the deciding reply code, messages sent, how long it
//! took), the totals those records add up to, and the state a health record
//! reads as (healthy, cooling down, paused).
//!
//! One record per session, never per message, so watching an upstream costs
//! one write per session. Only the last [`RECENT_SESSIONS`] are kept.
//! Pure: the edge stores and loads the records; times are passed in.
//! Must not: do I/O, read the clock, or carry an address, a message or a
//! credential into a record (a record holds codes and counts only).

use crate::smtp::{Cause, OutcomeKind, TransactionOutcome};

use super::failover::SessionEnd;
use super::health::UpstreamHealth;

/// How many of an upstream's latest sessions are kept.
pub const RECENT_SESSIONS: u32 = 10;

/// How a session ended, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// It ended with QUIT: mail was taken or refused on its merits.
    Ok,
    /// It ended early on something that may pass (4xx, 421, a timeout, a
    /// lost connection).
    Transient,
    /// It ended early on a permanent refusal.
    Permanent,
    /// The relay's set-up with the upstream is broken (credentials, TLS).
    Configuration,
    /// No connection could be opened.
    Connect,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Ok => "ok",
            SessionOutcome::Transient => "transient",
            SessionOutcome::Permanent => "permanent",
            SessionOutcome::Configuration => "configuration",
            SessionOutcome::Connect => "connect",
        }
    }

    /// The outcome named `s` (as stored); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [
            SessionOutcome::Ok,
            SessionOutcome::Transient,
            SessionOutcome::Permanent,
            SessionOutcome::Configuration,
            SessionOutcome::Connect,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One session with one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// When the session began (Unix milliseconds).
    pub at_ms: u64,
    pub outcome: SessionOutcome,
    /// The reply code that ended the session, or else the last transaction's
    /// (250 after a message was taken); `None` when no reply came.
    pub code: Option<u16>,
    /// Messages at least one recipient of which the upstream took.
    pub messages_sent: u32,
    /// From the start of connecting to the end of the session.
    pub duration_ms: u64,
}

impl SessionRecord {
    /// The record of a session that began at `started_ms` and ended at
    /// `ended_ms` with `end`.
    pub fn of(end: &SessionEnd, started_ms: u64, ended_ms: u64) -> Self {
        let done: Vec<&TransactionOutcome> = end.outcomes.iter().flatten().collect();
        let messages_sent = done
            .iter()
            .filter(|t| {
                t.recipients
                    .iter()
                    .any(|r| r.outcome.kind == OutcomeKind::Delivered)
            })
            .count();
        let (outcome, code) = match &end.failure {
            None => (
                SessionOutcome::Ok,
                done.last()
                    .and_then(|t| t.outcome.reply.as_ref())
                    .map(|r| r.code),
            ),
            Some(f) => {
                let outcome = match (&f.cause, f.kind) {
                    (Cause::ConnectFailed(_), _) => SessionOutcome::Connect,
                    (_, OutcomeKind::Configuration) => SessionOutcome::Configuration,
                    (_, OutcomeKind::Permanent) => SessionOutcome::Permanent,
                    (_, OutcomeKind::Delivered) => SessionOutcome::Ok,
                    (_, OutcomeKind::Transient | OutcomeKind::Unknown) => SessionOutcome::Transient,
                };
                (outcome, f.reply.as_ref().map(|r| r.code))
            }
        };
        SessionRecord {
            at_ms: started_ms,
            outcome,
            code,
            messages_sent: u32::try_from(messages_sent).unwrap_or(u32::MAX),
            duration_ms: ended_ms.saturating_sub(started_ms),
        }
    }
}

/// Everything an upstream's sessions added up to since its first one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTotals {
    pub sessions: u64,
    /// Sessions that did not end with QUIT.
    pub failed: u64,
    pub messages_sent: u64,
    /// Summed durations, for the mean.
    pub duration_ms: u64,
}

impl SessionTotals {
    /// What one session adds to the totals (the edge adds it in storage,
    /// so concurrent sessions never lose a count).
    pub fn of(record: &SessionRecord) -> Self {
        SessionTotals {
            sessions: 1,
            failed: u64::from(record.outcome != SessionOutcome::Ok),
            messages_sent: u64::from(record.messages_sent),
            duration_ms: record.duration_ms,
        }
    }

    /// The mean session duration; `None` before the first session.
    pub fn mean_duration_ms(&self) -> Option<u64> {
        self.duration_ms.checked_div(self.sessions)
    }
}

/// How an upstream stands, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamState {
    /// In use. It may have failed fewer sessions in a row than the threshold.
    Healthy,
    /// Skipped until `until_ms` after failing sessions in a row.
    CoolingDown { until_ms: u64 },
    /// A configuration failure (e.g. 535 to AUTH) paused it. It is skipped
    /// until `until_ms` (when that is still ahead); after that the next
    /// batch tries it once, and only a good session or an operator's resume
    /// ends the pause.
    Paused {
        reason: String,
        since_ms: Option<u64>,
        until_ms: Option<u64>,
    },
}

impl UpstreamState {
    pub fn of(health: &UpstreamHealth, now_ms: u64) -> Self {
        let cooling = health.is_cooling_down(now_ms);
        match &health.paused_reason {
            Some(reason) => UpstreamState::Paused {
                reason: reason.clone(),
                since_ms: health.paused_since_ms,
                until_ms: cooling.then_some(health.skip_until_ms),
            },
            None if cooling => UpstreamState::CoolingDown {
                until_ms: health.skip_until_ms,
            },
            None => UpstreamState::Healthy,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            UpstreamState::Healthy => "healthy",
            UpstreamState::CoolingDown { .. } => "cooling_down",
            UpstreamState::Paused { .. } => "paused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{Outcome, RecipientOutcome, Reply};

    fn tx(kinds: &[(OutcomeKind, u16)]) -> Option<TransactionOutcome> {
        let recipients: Vec<RecipientOutcome> = kinds
            .iter()
            .map(|&(kind, code)| RecipientOutcome {
                address: "bob@example.com".into(),
                outcome: Outcome::new(kind, Cause::Reply).with_reply(Reply::new(code, "x")),
            })
            .collect();
        let outcome = recipients[0].outcome.clone();
        Some(TransactionOutcome {
            id: 0,
            outcome,
            recipients,
        })
    }

    fn fail(kind: OutcomeKind, cause: Cause, code: Option<u16>) -> Option<Outcome> {
        let o = Outcome::new(kind, cause);
        Some(match code {
            Some(c) => o.with_reply(Reply::new(c, "x")),
            None => o,
        })
    }

    #[test]
    fn what_a_session_record_says() {
        use OutcomeKind::{Configuration, Delivered, Permanent, Transient, Unknown};
        let ok = (Delivered, 250);
        // (what, outcomes, failure) -> (outcome, code, messages sent)
        type Row = (
            &'static str,
            Vec<Option<TransactionOutcome>>,
            Option<Outcome>,
            (SessionOutcome, Option<u16>, u32),
        );
        let table: Vec<Row> = vec![
            (
                "two messages taken",
                vec![tx(&[ok]), tx(&[ok, ok])],
                None,
                (SessionOutcome::Ok, Some(250), 2),
            ),
            (
                "a partial delivery counts as sent",
                vec![tx(&[(Permanent, 550), ok])],
                None,
                (SessionOutcome::Ok, Some(550), 1),
            ),
            (
                "every recipient refused: ok session, nothing sent",
                vec![tx(&[(Permanent, 550)])],
                None,
                (SessionOutcome::Ok, Some(550), 0),
            ),
            (
                "no jobs at all",
                vec![],
                None,
                (SessionOutcome::Ok, None, 0),
            ),
            (
                "535 to AUTH",
                vec![None],
                fail(Configuration, Cause::Reply, Some(535)),
                (SessionOutcome::Configuration, Some(535), 0),
            ),
            (
                "TLS broken",
                vec![None],
                fail(Configuration, Cause::TlsFailed("bad cert".into()), None),
                (SessionOutcome::Configuration, None, 0),
            ),
            (
                "connection refused",
                vec![None],
                fail(Transient, Cause::ConnectFailed("refused".into()), None),
                (SessionOutcome::Connect, None, 0),
            ),
            (
                "421 after one message",
                vec![tx(&[ok]), None],
                fail(Transient, Cause::Reply, Some(421)),
                (SessionOutcome::Transient, Some(421), 1),
            ),
            (
                "timed out after the dot",
                vec![None],
                fail(Unknown, Cause::Timeout, None),
                (SessionOutcome::Transient, None, 0),
            ),
            (
                "5xx greeting",
                vec![None],
                fail(Permanent, Cause::Reply, Some(554)),
                (SessionOutcome::Permanent, Some(554), 0),
            ),
        ];
        for (what, outcomes, failure, want) in table {
            let end = SessionEnd { outcomes, failure };
            let r = SessionRecord::of(&end, 1_000, 1_250);
            assert_eq!((r.outcome, r.code, r.messages_sent), want, "{what}");
            assert_eq!((r.at_ms, r.duration_ms), (1_000, 250), "{what}");
        }
        // A clock that went backwards never makes a negative duration.
        let r = SessionRecord::of(&SessionEnd::default(), 2_000, 1_000);
        assert_eq!(r.duration_ms, 0);
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in [
            SessionOutcome::Ok,
            SessionOutcome::Transient,
            SessionOutcome::Permanent,
            SessionOutcome::Configuration,
            SessionOutcome::Connect,
        ] {
            assert_eq!(SessionOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(SessionOutcome::parse("OK"), None);
        assert_eq!(SessionOutcome::parse(""), None);
    }

    #[test]
    fn totals_add_one_session_each() {
        let record = |outcome, messages_sent, duration_ms| SessionRecord {
            at_ms: 0,
            outcome,
            code: None,
            messages_sent,
            duration_ms,
        };
        let table = [
            (record(SessionOutcome::Ok, 3, 120), (1, 0, 3, 120)),
            (record(SessionOutcome::Connect, 0, 5), (1, 1, 0, 5)),
            (record(SessionOutcome::Transient, 1, 40), (1, 1, 1, 40)),
        ];
        for (r, want) in table {
            let t = SessionTotals::of(&r);
            assert_eq!(
                (t.sessions, t.failed, t.messages_sent, t.duration_ms),
                want,
                "{r:?}"
            );
        }
        let t = SessionTotals {
            sessions: 4,
            duration_ms: 1_000,
            ..SessionTotals::default()
        };
        assert_eq!(t.mean_duration_ms(), Some(250));
        assert_eq!(SessionTotals::default().mean_duration_ms(), None);
    }

    #[test]
    fn how_a_health_record_reads() {
        let now = 10_000;
        let health = |failures, until, reason: Option<&str>, since| UpstreamHealth {
            consecutive_failures: failures,
            skip_until_ms: until,
            paused_reason: reason.map(str::to_string),
            paused_since_ms: since,
        };
        let paused = |since, until| UpstreamState::Paused {
            reason: "535 5.7.8 bad credentials".into(),
            since_ms: since,
            until_ms: until,
        };
        let table = [
            (health(0, 0, None, None), UpstreamState::Healthy),
            (
                health(2, 0, None, None),
                UpstreamState::Healthy, // below the threshold
            ),
            (
                health(3, 20_000, None, None),
                UpstreamState::CoolingDown { until_ms: 20_000 },
            ),
            // A cool-down that has run out reads as healthy.
            (health(3, 10_000, None, None), UpstreamState::Healthy),
            (
                health(1, 70_000, Some("535 5.7.8 bad credentials"), Some(9_000)),
                paused(Some(9_000), Some(70_000)),
            ),
            // Paused until a good session or a resume, even once the
            // cool-down has run out.
            (
                health(1, 5_000, Some("535 5.7.8 bad credentials"), Some(1_000)),
                paused(Some(1_000), None),
            ),
            // A record written before the pause's start was kept.
            (
                health(1, 70_000, Some("535 5.7.8 bad credentials"), None),
                paused(None, Some(70_000)),
            ),
        ];
        for (h, want) in table {
            let got = UpstreamState::of(&h, now);
            assert_eq!(got, want, "{h:?}");
        }
        assert_eq!(UpstreamState::Healthy.as_str(), "healthy");
        assert_eq!(paused(None, None).as_str(), "paused");
        assert_eq!(
            UpstreamState::CoolingDown { until_ms: 1 }.as_str(),
            "cooling_down"
        );
    }
}
