//! Upstream health: which upstreams to try, in which order, and how a
//! session's end changes an upstream's record.
//!
//! An upstream that fails `failure_threshold` sessions in a row is skipped
//! for a cool-down that doubles with each further failure, up to a ceiling;
//! one good session resets it. A configuration failure (credentials
//! refused, TLS or STARTTLS broken, greeting refused with 5xx) is not a
//! blip: it pauses the upstream at once and keeps the reason for operators.
//! The message itself is not charged an attempt for it (see
//! `policy::AttemptResult::UpstreamMisconfigured`).
//!
//! Only failures about the upstream count: it could not be reached, TLS
//! or AUTH failed, it stopped answering or reading, it sent garbage, 421,
//! or a 4xx to a session command. What a message or a recipient is told
//! (5xx to RCPT, 550/554 for content, a size or SMTPUTF8 refusal), and a
//! hang-up that follows right on such a refusal, never count: one
//! sender's content must not take the upstream away from everyone else.
//!
//! Pure: the record is stored and loaded by the edge glue, and times are
//! passed in (Unix milliseconds). Must not do I/O or read the clock.

use serde::{Deserialize, Serialize};

use super::settings::HealthSettings;
use super::shaping::reply_throttles;
use crate::smtp::{Cause, Outcome, OutcomeKind};

/// What is known about one upstream across sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamHealth {
    /// Sessions in a row that ended in an upstream failure.
    pub consecutive_failures: u32,
    /// Skip the upstream until this time; 0 when it is not cooling down.
    pub skip_until_ms: u64,
    /// Why the upstream is paused, after a configuration failure.
    pub paused_reason: Option<String>,
    /// When the pause began (Unix milliseconds): the first configuration
    /// failure of a run of them, kept while the pause lasts.
    #[serde(default)]
    pub paused_since_ms: Option<u64>,
}

/// How a session with an upstream ended, as far as its health goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionVerdict {
    /// The upstream worked: mail was accepted or refused on its merits.
    Healthy,
    /// Connection refused or lost, a timeout, 421, a 4xx greeting: it may
    /// work again soon.
    Failed(String),
    /// The relay's set-up with this upstream is broken.
    Misconfigured(String),
}

impl SessionVerdict {
    /// From the failure the session ended with (`None` after a clean QUIT).
    /// Counts only what is about the upstream (see the module notes); every
    /// cause is named, so a new one must be placed on a side.
    pub fn from_session_end(failure: Option<&Outcome>) -> Self {
        let Some(f) = failure else {
            return SessionVerdict::Healthy;
        };
        let about_the_upstream = match &f.cause {
            Cause::Timeout
            | Cause::WriteTimeout
            | Cause::ConnectionLost
            | Cause::ConnectFailed(_)
            | Cause::TlsFailed(_)
            | Cause::Protocol(_)
            | Cause::UnexpectedReply
            | Cause::StartTlsNotOffered
            | Cause::AuthNotOffered
            | Cause::InvalidEhloName => true,
            // A session ends on a reply only for 421 or a refused session
            // command (greeting, EHLO, STARTTLS, AUTH): the server's state.
            // A 5xx or 4xx to a message's own commands is that message's.
            // A throttling reply ("421 4.7.0 Too many connections") is
            // backpressure (`shaping`): the upstream is busy, not down.
            Cause::Reply if f.reply.as_ref().is_some_and(reply_throttles) => false,
            Cause::Reply => {
                f.reply.as_ref().is_some_and(|r| r.code == 421) || f.kind != OutcomeKind::Permanent
            }
            Cause::DroppedAfterRefusal
            | Cause::SizeExceeded { .. }
            | Cause::Smtputf8NotOffered
            | Cause::EightBitMimeNotOffered
            | Cause::InvalidAddress(_)
            | Cause::NoRecipients
            | Cause::TooManyRecipients
            | Cause::SessionClosed => false,
        };
        match f.kind {
            OutcomeKind::Configuration if about_the_upstream => {
                SessionVerdict::Misconfigured(f.to_string())
            }
            OutcomeKind::Transient if about_the_upstream => SessionVerdict::Failed(f.to_string()),
            _ => SessionVerdict::Healthy,
        }
    }
}

impl UpstreamHealth {
    pub fn is_cooling_down(&self, now_ms: u64) -> bool {
        now_ms < self.skip_until_ms
    }

    /// The record after a session that ended with `verdict` at `now_ms`.
    pub fn after(&self, verdict: &SessionVerdict, settings: &HealthSettings, now_ms: u64) -> Self {
        let failures = self.consecutive_failures.saturating_add(1);
        let threshold = settings.failure_threshold.max(1);
        let (effective, paused_reason) = match verdict {
            SessionVerdict::Healthy => return UpstreamHealth::default(),
            SessionVerdict::Failed(_) if failures < threshold => {
                return UpstreamHealth {
                    consecutive_failures: failures,
                    ..UpstreamHealth::default()
                };
            }
            SessionVerdict::Failed(_) => (failures, None),
            // No point retrying a refused password a few times first.
            SessionVerdict::Misconfigured(reason) => {
                (failures.max(threshold), Some(reason.clone()))
            }
        };
        let doublings = (effective - threshold).min(20);
        let cooldown_s = u64::from(settings.cooldown_seconds)
            .saturating_mul(1 << doublings)
            .min(u64::from(settings.max_cooldown_seconds));
        // A pause that goes on keeps the time it began.
        let paused_since_ms = match (&paused_reason, &self.paused_reason) {
            (None, _) => None,
            (Some(_), Some(_)) => self.paused_since_ms.or(Some(now_ms)),
            (Some(_), None) => Some(now_ms),
        };
        UpstreamHealth {
            consecutive_failures: failures,
            skip_until_ms: now_ms.saturating_add(cooldown_s * 1000),
            paused_reason,
            paused_since_ms,
        }
    }

    /// The record after an operator lifted a pause or a cool-down: the
    /// next batch tries the upstream again in its configured place.
    pub fn resumed(&self) -> Self {
        UpstreamHealth::default()
    }
}

/// A changed health record, to store, with what operators should read about
/// it in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// The upstream's index in the configuration.
    pub upstream: usize,
    /// The upstream's label (`host:port`), the record's key.
    pub label: String,
    pub record: UpstreamHealth,
    pub notice: Option<Notice>,
}

/// Why an upstream is being skipped, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The relay's set-up with the upstream is broken: an operator must act.
    Paused(String),
    /// The upstream keeps failing; it is skipped for a while.
    CoolingDown(String),
}

/// The change a session's end makes to upstream `upstream`'s record `old`,
/// or `None` when the record stays as it is (nothing to store).
pub fn change(
    upstream: usize,
    label: &str,
    old: &UpstreamHealth,
    verdict: &SessionVerdict,
    settings: &HealthSettings,
    now_ms: u64,
) -> Option<HealthChange> {
    let new = old.after(verdict, settings, now_ms);
    if new == *old {
        return None;
    }
    let seconds = new.skip_until_ms.saturating_sub(now_ms) / 1000;
    let notice = match verdict {
        _ if !new.is_cooling_down(now_ms) => None,
        SessionVerdict::Misconfigured(reason) => Some(Notice::Paused(format!(
            "upstream {label} paused for {seconds} s: {reason}"
        ))),
        SessionVerdict::Failed(reason) => Some(Notice::CoolingDown(format!(
            "upstream {label} cooling down for {seconds} s after {} failures: {reason}",
            new.consecutive_failures
        ))),
        SessionVerdict::Healthy => None,
    };
    Some(HealthChange {
        upstream,
        label: label.to_string(),
        record: new,
        notice,
    })
}

/// The upstreams to try, as indexes in priority order: every one not
/// cooling down. When all are cooling down, only the one whose cool-down
/// ends first, so the health record alone never holds mail back; its
/// session doubles as the probe that ends the cool-down early.
pub fn upstream_order(health: &[UpstreamHealth], now_ms: u64) -> Vec<usize> {
    let ready: Vec<usize> = (0..health.len())
        .filter(|&i| !health[i].is_cooling_down(now_ms))
        .collect();
    if !ready.is_empty() {
        return ready;
    }
    (0..health.len())
        .min_by_key(|&i| health[i].skip_until_ms)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: HealthSettings = HealthSettings {
        failure_threshold: 3,
        cooldown_seconds: 60,
        max_cooldown_seconds: 600,
    };

    fn failed() -> SessionVerdict {
        SessionVerdict::Failed("connect failed".into())
    }

    fn misconfigured() -> SessionVerdict {
        SessionVerdict::Misconfigured("535 5.7.8 bad credentials".into())
    }

    /// A sequence of session ends, one a second apart from t = 1000 s, and
    /// after each: (consecutive failures, cool-down left in seconds, paused).
    #[test]
    fn records_through_sequences_of_sessions() {
        use SessionVerdict::Healthy;
        // (failures, cool-down seconds left, paused) after each session.
        type After = Vec<(u32, u64, bool)>;
        let table: Vec<(&str, Vec<SessionVerdict>, After)> = vec![
            (
                "failures below the threshold do not cool down",
                vec![failed(), failed()],
                vec![(1, 0, false), (2, 0, false)],
            ),
            (
                "the threshold starts the cool-down, which then doubles to the ceiling",
                vec![
                    failed(),
                    failed(),
                    failed(),
                    failed(),
                    failed(),
                    failed(),
                    failed(),
                ],
                vec![
                    (1, 0, false),
                    (2, 0, false),
                    (3, 60, false),
                    (4, 120, false),
                    (5, 240, false),
                    (6, 480, false),
                    (7, 600, false),
                ],
            ),
            (
                "a good session resets everything",
                vec![failed(), failed(), failed(), Healthy, failed()],
                vec![
                    (1, 0, false),
                    (2, 0, false),
                    (3, 60, false),
                    (0, 0, false),
                    (1, 0, false),
                ],
            ),
            (
                "a configuration failure pauses at once",
                vec![misconfigured(), misconfigured()],
                vec![(1, 60, true), (2, 60, true)],
            ),
            (
                "after failures, a configuration failure continues the doubling",
                vec![failed(), failed(), failed(), misconfigured()],
                vec![(1, 0, false), (2, 0, false), (3, 60, false), (4, 120, true)],
            ),
            (
                "a failure after a pause clears the reason",
                vec![misconfigured(), failed(), Healthy],
                vec![(1, 60, true), (2, 0, false), (0, 0, false)],
            ),
        ];
        for (what, verdicts, want) in table {
            let mut health = UpstreamHealth::default();
            let mut got = Vec::new();
            for (n, verdict) in verdicts.iter().enumerate() {
                let now = 1_000_000 + n as u64 * 1000;
                health = health.after(verdict, &SETTINGS, now);
                let left = health.skip_until_ms.saturating_sub(now) / 1000;
                got.push((
                    health.consecutive_failures,
                    left,
                    health.paused_reason.is_some(),
                ));
            }
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn misconfiguration_keeps_the_reason() {
        let h = UpstreamHealth::default().after(&misconfigured(), &SETTINGS, 0);
        assert_eq!(
            h.paused_reason.as_deref(),
            Some("535 5.7.8 bad credentials")
        );
    }

    /// A pause keeps the time it began while configuration failures go
    /// on; anything else ends it; resuming clears everything.
    #[test]
    fn a_pause_keeps_its_start() {
        let first = UpstreamHealth::default().after(&misconfigured(), &SETTINGS, 1_000);
        assert_eq!(first.paused_since_ms, Some(1_000));
        let again = first.after(&misconfigured(), &SETTINGS, 90_000);
        assert_eq!(again.paused_since_ms, Some(1_000));
        assert_eq!(
            again.after(&failed(), &SETTINGS, 99_000).paused_since_ms,
            None
        );
        let ok = again.after(&SessionVerdict::Healthy, &SETTINGS, 99_000);
        assert_eq!(ok, UpstreamHealth::default());
        let resumed = again.resumed();
        assert!(!resumed.is_cooling_down(90_001) && resumed.paused_reason.is_none());
        assert_eq!(resumed.paused_since_ms, None);
    }

    #[test]
    fn cool_down_ends_at_its_deadline() {
        let h = UpstreamHealth {
            consecutive_failures: 3,
            skip_until_ms: 5_000,
            ..UpstreamHealth::default()
        };
        assert!(h.is_cooling_down(4_999));
        assert!(!h.is_cooling_down(5_000));
    }

    #[test]
    fn order_skips_cooling_upstreams_and_probes_when_all_are() {
        let cooling = |until: u64| UpstreamHealth {
            consecutive_failures: 3,
            skip_until_ms: until,
            ..UpstreamHealth::default()
        };
        let ok = UpstreamHealth::default;
        let now = 10_000;
        let table: Vec<(Vec<UpstreamHealth>, Vec<usize>)> = vec![
            (vec![], vec![]),
            (vec![ok(), ok(), ok()], vec![0, 1, 2]),
            (vec![cooling(20_000), ok(), ok()], vec![1, 2]),
            (vec![cooling(20_000), ok(), cooling(11_000)], vec![1]),
            // A cool-down that has run out counts as ready.
            (vec![cooling(10_000), cooling(20_000)], vec![0]),
            (vec![cooling(30_000), cooling(20_000)], vec![1]),
        ];
        for (health, want) in table {
            assert_eq!(upstream_order(&health, now), want, "{health:?}");
        }
    }

    #[test]
    fn verdict_from_session_end() {
        use crate::smtp::Reply;
        let table = [
            (None, "healthy"),
            (Some(OutcomeKind::Transient), "failed"),
            (Some(OutcomeKind::Configuration), "misconfigured"),
            (Some(OutcomeKind::Permanent), "healthy"),
        ];
        for (kind, want) in table {
            let failure = kind.map(|k| outcome(k, Reply::new(421, "4.3.2 going down")));
            let got = match SessionVerdict::from_session_end(failure.as_ref()) {
                SessionVerdict::Healthy => "healthy",
                SessionVerdict::Failed(reason) => {
                    assert!(reason.contains("421"), "{reason}");
                    "failed"
                }
                SessionVerdict::Misconfigured(_) => "misconfigured",
            };
            assert_eq!(got, want, "{kind:?}");
        }
    }

    /// Only failures about the upstream count toward its cool-down; what a
    /// message or recipient was told never does.
    #[test]
    fn what_counts_against_an_upstream() {
        use crate::smtp::{Cause, Reply, ReplyError};
        use OutcomeKind::{Configuration, Permanent, Transient};
        let reply = |kind, code, text: &str| Outcome {
            kind,
            cause: Cause::Reply,
            reply: Some(Reply::new(code, text)),
        };
        let cause = |kind, cause| Outcome {
            kind,
            cause,
            reply: None,
        };
        let table: Vec<(&str, Option<Outcome>, &str)> = vec![
            ("clean QUIT", None, "healthy"),
            (
                "connect refused",
                Some(cause(Transient, Cause::ConnectFailed("refused".into()))),
                "failed",
            ),
            (
                "TLS handshake",
                Some(cause(Configuration, Cause::TlsFailed("bad cert".into()))),
                "misconfigured",
            ),
            (
                "AUTH refused",
                Some(reply(Configuration, 535, "5.7.8 bad credentials")),
                "misconfigured",
            ),
            (
                "no reply in time",
                Some(cause(Transient, Cause::Timeout)),
                "failed",
            ),
            (
                "stopped reading",
                Some(cause(Transient, Cause::WriteTimeout)),
                "failed",
            ),
            (
                "connection lost",
                Some(cause(Transient, Cause::ConnectionLost)),
                "failed",
            ),
            (
                "garbage reply",
                Some(cause(Transient, Cause::Protocol(ReplyError::MalformedLine))),
                "failed",
            ),
            (
                "421",
                Some(reply(Transient, 421, "4.3.2 shutting down")),
                "failed",
            ),
            (
                "4xx greeting",
                Some(reply(Transient, 450, "4.3.2 busy")),
                "failed",
            ),
            // A server that drops the connection after refusing one
            // sender's message (554 for content, 5xx to RCPT).
            (
                "hang-up after a 554",
                Some(cause(Transient, Cause::DroppedAfterRefusal)),
                "healthy",
            ),
            (
                "554 for content",
                Some(reply(Permanent, 554, "5.7.1 spam")),
                "healthy",
            ),
            (
                "550 to RCPT",
                Some(reply(Permanent, 550, "5.1.1 no such user")),
                "healthy",
            ),
            (
                "over SIZE",
                Some(cause(Permanent, Cause::SizeExceeded { size: 9, limit: 1 })),
                "healthy",
            ),
            (
                "452 too many recipients",
                Some(cause(Transient, Cause::TooManyRecipients)),
                "healthy",
            ),
            (
                "bad address",
                Some(cause(Permanent, Cause::InvalidAddress("x".into()))),
                "healthy",
            ),
        ];
        for (what, failure, want) in table {
            let got = match SessionVerdict::from_session_end(failure.as_ref()) {
                SessionVerdict::Healthy => "healthy",
                SessionVerdict::Failed(_) => "failed",
                SessionVerdict::Misconfigured(_) => "misconfigured",
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn changes_and_their_notices() {
        let cooling = UpstreamHealth {
            consecutive_failures: 2,
            ..UpstreamHealth::default()
        };
        let now = 1_000_000;
        // (old record, verdict) -> None (nothing to store) or the notice's kind and text.
        type Want = Option<Option<(&'static str, &'static str)>>;
        let table: Vec<(UpstreamHealth, SessionVerdict, Want)> = vec![
            (UpstreamHealth::default(), SessionVerdict::Healthy, None),
            (UpstreamHealth::default(), failed(), Some(None)),
            (
                cooling.clone(),
                failed(),
                Some(Some((
                    "cooling",
                    "upstream a:465 cooling down for 60 s after 3 failures: connect failed",
                ))),
            ),
            (
                UpstreamHealth::default(),
                misconfigured(),
                Some(Some((
                    "paused",
                    "upstream a:465 paused for 60 s: 535 5.7.8 bad credentials",
                ))),
            ),
            (cooling, SessionVerdict::Healthy, Some(None)),
        ];
        for (old, verdict, want) in table {
            let got = change(1, "a:465", &old, &verdict, &SETTINGS, now);
            let got = got.map(|c| {
                assert_eq!((c.upstream, c.label.as_str()), (1, "a:465"));
                assert_eq!(c.record, old.after(&verdict, &SETTINGS, now));
                c.notice.map(|n| match n {
                    Notice::Paused(text) => ("paused", text),
                    Notice::CoolingDown(text) => ("cooling", text),
                })
            });
            let got = got
                .as_ref()
                .map(|n| n.as_ref().map(|(k, t)| (*k, t.as_str())));
            assert_eq!(got, want, "{old:?} {verdict:?}");
        }
    }

    fn outcome(kind: OutcomeKind, reply: crate::smtp::Reply) -> Outcome {
        Outcome {
            kind,
            cause: crate::smtp::Cause::Reply,
            reply: Some(reply),
        }
    }
}
