//! Statistics kept as rollups: which counters an event moves, the buckets
//! they are kept in, and the rates a report shows. Reports read rollups
//! only, never a scan of all events.
//!
//! A rollup row is keyed by tenant, hour, stream and tag (one row per tag
//! of the message, and one with no tag for the totals); days are sums of
//! hours. Metric names follow SendGrid's where it has one.
//! Owns: the metrics, the increments of each event, bucketing and rates.
//! Must not: store or read anything.

use serde_json::Value;

use super::engagement::{Actor, MachineReason};
use super::model::{EmailEvent, EventType, MessageFacts};
use crate::message::Tag;

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Accepted by edgerelay (SendGrid: `requests`); moved by acceptance,
    /// which is not an event of the stream.
    Requests,
    /// Taken by the smarthost (`email.sent`).
    Sent,
    /// Evidence of final delivery (`email.delivered`).
    Delivered,
    Deferred,
    HardBounces,
    SoftBounces,
    SpamReports,
    Unsubscribes,
    Suppressed,
    Failed,
    Opens,
    UniqueOpens,
    HumanOpens,
    Clicks,
    UniqueClicks,
    HumanClicks,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::Requests,
        Metric::Sent,
        Metric::Delivered,
        Metric::Deferred,
        Metric::HardBounces,
        Metric::SoftBounces,
        Metric::SpamReports,
        Metric::Unsubscribes,
        Metric::Suppressed,
        Metric::Failed,
        Metric::Opens,
        Metric::UniqueOpens,
        Metric::HumanOpens,
        Metric::Clicks,
        Metric::UniqueClicks,
        Metric::HumanClicks,
    ];

    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Sent => "sent",
            Metric::Delivered => "delivered",
            Metric::Deferred => "deferred",
            Metric::HardBounces => "hard_bounces",
            Metric::SoftBounces => "soft_bounces",
            Metric::SpamReports => "spam_reports",
            Metric::Unsubscribes => "unsubscribes",
            Metric::Suppressed => "suppressed",
            Metric::Failed => "failed",
            Metric::Opens => "opens",
            Metric::UniqueOpens => "unique_opens",
            Metric::HumanOpens => "human_opens",
            Metric::Clicks => "clicks",
            Metric::UniqueClicks => "unique_clicks",
            Metric::HumanClicks => "human_clicks",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What an event says beyond its type, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// For `email.bounced`: a hard bounce.
    pub hard: bool,
    /// For opens and clicks: the first by this recipient of this message.
    pub first: bool,
    /// For opens and clicks: who did it.
    pub actor: Actor,
}

impl Default for Counted {
    fn default() -> Self {
        Counted {
            hard: false,
            first: false,
            actor: Actor::Human,
        }
    }
}

/// The counters one event moves (each by one).
pub fn increments(event: EventType, counted: Counted) -> Vec<Metric> {
    let human = counted.actor == Actor::Human;
    match event {
        EventType::Sent => vec![Metric::Sent],
        EventType::Delivered => vec![Metric::Delivered],
        EventType::DeliveryDelayed => vec![Metric::Deferred],
        EventType::Bounced if counted.hard => vec![Metric::HardBounces],
        EventType::Bounced => vec![Metric::SoftBounces],
        EventType::Complained => vec![Metric::SpamReports],
        EventType::Unsubscribed => vec![Metric::Unsubscribes],
        EventType::Suppressed => vec![Metric::Suppressed],
        EventType::Failed => vec![Metric::Failed],
        EventType::Opened => engagement(
            Metric::Opens,
            Metric::UniqueOpens,
            Metric::HumanOpens,
            counted.first,
            human,
        ),
        EventType::Clicked => engagement(
            Metric::Clicks,
            Metric::UniqueClicks,
            Metric::HumanClicks,
            counted.first,
            human,
        ),
        // A canceled message was never sent: its acceptance stays counted
        // as a request, nothing else moves.
        EventType::Canceled => Vec::new(),
        // About a stream, not a message: no message counter moves.
        EventType::StreamPaused | EventType::StreamResumed | EventType::DomainUpdated => Vec::new(),
    }
}

fn engagement(
    total: Metric,
    unique: Metric,
    people: Metric,
    first: bool,
    human: bool,
) -> Vec<Metric> {
    let mut out = vec![total];
    if first {
        out.push(unique);
    }
    if human {
        out.push(people);
    }
    out
}

/// The tag of the rollup row that counts every message of a tenant, hour
/// and stream, tagged or not.
pub const ALL_TAGS: &str = "";

/// A tag as a rollup row names it (and the stats query's `tag=` takes it):
/// `name:value`.
pub fn tag_key(name: &str, value: &str) -> String {
    format!("{name}:{value}")
}

/// One counter an event or an acceptance moves by one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RollupKey {
    pub tenant: String,
    /// Unix seconds of the UTC hour it falls in.
    pub hour: u64,
    pub stream: String,
    /// [`ALL_TAGS`] or a [`tag_key`].
    pub tag: String,
    pub metric: Metric,
}

/// The counters of `metrics` for one message: each in the row of all
/// messages and in the row of each of its tags.
fn keys_of(
    tenant: &str,
    at_ms: u64,
    stream: &str,
    tags: &[String],
    metrics: &[Metric],
) -> Vec<RollupKey> {
    let hour = Bucket::Hour.start(at_ms / 1000);
    let mut out = Vec::with_capacity(metrics.len() * (tags.len() + 1));
    for metric in metrics {
        for tag in std::iter::once(ALL_TAGS).chain(tags.iter().map(String::as_str)) {
            out.push(RollupKey {
                tenant: tenant.to_string(),
                hour,
                stream: stream.to_string(),
                tag: tag.to_string(),
                metric: *metric,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The counters an accepted message moves (`requests`), at its acceptance.
pub fn accepted_keys(tenant: &str, stream: &str, tags: &[Tag], at_ms: u64) -> Vec<RollupKey> {
    let tags: Vec<String> = tags.iter().map(|t| tag_key(&t.name, &t.value)).collect();
    keys_of(tenant, at_ms, stream, &tags, &[Metric::Requests])
}

/// What an event's payload says for counting: `bounce.type` `hard`; for
/// opens and clicks `machine` (with `machine_reason`) and `first` (the
/// recipient's first of this message).
pub fn counted_of(event: &EmailEvent) -> Counted {
    let data = &event.data;
    let hard = data
        .get("bounce")
        .and_then(|b| b.get("type"))
        .and_then(Value::as_str)
        == Some("hard");
    let machine = data.get("machine").and_then(Value::as_bool) == Some(true);
    let actor = if machine {
        let reason = data
            .get("machine_reason")
            .and_then(Value::as_str)
            .and_then(MachineReason::parse)
            .unwrap_or(MachineReason::KnownScanner);
        Actor::Machine(reason)
    } else {
        Actor::Human
    };
    let first = data.get("first").and_then(Value::as_bool) == Some(true);
    Counted { hard, first, actor }
}

/// The counters an event moves: its metrics ([`increments`]) in the hour it
/// happened, for its message's stream and tags (from the payload).
pub fn event_keys(event: &EmailEvent) -> Vec<RollupKey> {
    let metrics = increments(event.event_type, counted_of(event));
    let stream = event
        .data
        .get("stream")
        .and_then(Value::as_str)
        .unwrap_or(UNKNOWN_STREAM);
    let tags: Vec<String> = event
        .data
        .get("tags")
        .and_then(Value::as_object)
        .map(|tags| {
            tags.iter()
                .filter_map(|(name, value)| Some(tag_key(name, value.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    keys_of(&event.tenant, event.created_at_ms, stream, &tags, &metrics)
}

/// The counters an open or click moves when it names no one (no consent,
/// or aggregate tracking): the total and, unless a machine made it, the
/// people's count, in the hour of the hit, for the message's stream and
/// tags. Never a unique count: without a person there is no first.
pub fn anonymous_hit_keys(
    facts: &MessageFacts,
    event_type: EventType,
    machine: bool,
    at_ms: u64,
) -> Vec<RollupKey> {
    let actor = if machine {
        Actor::Machine(MachineReason::KnownScanner)
    } else {
        Actor::Human
    };
    let counted = Counted {
        hard: false,
        first: false,
        actor,
    };
    let metrics = match event_type {
        EventType::Opened | EventType::Clicked => increments(event_type, counted),
        _ => Vec::new(),
    };
    let tags: Vec<String> = facts
        .tags
        .iter()
        .map(|t| tag_key(&t.name, &t.value))
        .collect();
    keys_of(&facts.tenant, at_ms, &facts.stream, &tags, &metrics)
}

/// The stream of an event whose payload names none.
pub const UNKNOWN_STREAM: &str = "unknown";

/// How long a bucket of a report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    pub fn seconds(self) -> u64 {
        match self {
            Bucket::Hour => 3_600,
            Bucket::Day => 86_400,
        }
    }

    /// The start (Unix seconds, UTC) of the bucket holding `at_seconds`.
    pub fn start(self, at_seconds: u64) -> u64 {
        at_seconds - at_seconds % self.seconds()
    }
}

/// Rates of a bucket, each over the messages taken by the smarthost
/// (`sent`), the base every provider's rates use; `None` with nothing sent.
pub fn rate(count: u64, sent: u64) -> Option<f64> {
    (sent > 0).then(|| count as f64 / sent as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::engagement::MachineReason;

    #[test]
    fn increments_table() {
        let machine = Actor::Machine(MachineReason::AppleProxy);
        let table: &[(EventType, Counted, &[Metric])] = &[
            (EventType::Sent, Counted::default(), &[Metric::Sent]),
            (
                EventType::Delivered,
                Counted::default(),
                &[Metric::Delivered],
            ),
            (
                EventType::Bounced,
                Counted {
                    hard: true,
                    ..Counted::default()
                },
                &[Metric::HardBounces],
            ),
            (
                EventType::Bounced,
                Counted::default(),
                &[Metric::SoftBounces],
            ),
            (
                EventType::Complained,
                Counted::default(),
                &[Metric::SpamReports],
            ),
            (
                EventType::Opened,
                Counted {
                    first: true,
                    ..Counted::default()
                },
                &[Metric::Opens, Metric::UniqueOpens, Metric::HumanOpens],
            ),
            // Apple's proxy: counted as an open, never as a person's.
            (
                EventType::Opened,
                Counted {
                    first: true,
                    actor: machine,
                    hard: false,
                },
                &[Metric::Opens, Metric::UniqueOpens],
            ),
            (
                EventType::Clicked,
                Counted::default(),
                &[Metric::Clicks, Metric::HumanClicks],
            ),
        ];
        for (event, counted, want) in table {
            assert_eq!(
                increments(*event, *counted),
                want.to_vec(),
                "{event:?} {counted:?}"
            );
        }
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
    }

    fn event(event_type: EventType, data: serde_json::Value) -> EmailEvent {
        EmailEvent {
            id: "evt_1".into(),
            tenant: "acme".into(),
            message_id: "msg_1".into(),
            recipient: Some("a@example.net".into()),
            event_type,
            // 2026-12-09T21:07:49.123Z
            created_at_ms: 1_796_850_469_123,
            data: data.as_object().cloned().unwrap_or_default(),
        }
    }

    fn key(stream: &str, tag: &str, metric: Metric) -> RollupKey {
        RollupKey {
            tenant: "acme".into(),
            hour: 1_796_850_000,
            stream: stream.into(),
            tag: tag.into(),
            metric,
        }
    }

    #[test]
    fn events_move_their_rows() {
        let mut want = vec![
            key("marketing", "", Metric::HardBounces),
            key("marketing", "campaign:spring", Metric::HardBounces),
            key("marketing", "kind:promo", Metric::HardBounces),
        ];
        want.sort();
        let bounced = event(
            EventType::Bounced,
            serde_json::json!({"stream": "marketing", "bounce": {"type": "hard"},
                               "tags": {"campaign": "spring", "kind": "promo"}}),
        );
        assert_eq!(event_keys(&bounced), want);

        let soft = event(
            EventType::Bounced,
            serde_json::json!({"stream": "transactional", "bounce": {"type": "soft"}, "tags": {}}),
        );
        assert_eq!(
            event_keys(&soft),
            vec![key("transactional", "", Metric::SoftBounces)]
        );

        // A machine's first open: an open and a unique open, not a person's.
        let proxy = event(
            EventType::Opened,
            serde_json::json!({"stream": "marketing", "machine": true,
                               "machine_reason": "apple_proxy", "first": true}),
        );
        assert_eq!(
            counted_of(&proxy).actor,
            Actor::Machine(MachineReason::AppleProxy)
        );
        let metrics: Vec<Metric> = event_keys(&proxy).into_iter().map(|k| k.metric).collect();
        assert_eq!(metrics, vec![Metric::Opens, Metric::UniqueOpens]);

        // No stream and a tag that is not text: counted, under "unknown",
        // without the tag.
        let odd = event(EventType::Sent, serde_json::json!({"tags": {"n": 3}}));
        assert_eq!(
            event_keys(&odd),
            vec![key(UNKNOWN_STREAM, "", Metric::Sent)]
        );
    }

    #[test]
    fn an_anonymous_hit_counts_without_a_unique() {
        let facts = MessageFacts {
            tenant: "acme".into(),
            stream: "marketing".into(),
            tags: vec![Tag {
                name: "campaign".into(),
                value: "spring".into(),
            }],
            ..MessageFacts::default()
        };
        let at = 1_796_850_469_123;
        let mut want = vec![
            key("marketing", "", Metric::Opens),
            key("marketing", "", Metric::HumanOpens),
            key("marketing", "campaign:spring", Metric::Opens),
            key("marketing", "campaign:spring", Metric::HumanOpens),
        ];
        want.sort();
        assert_eq!(
            anonymous_hit_keys(&facts, EventType::Opened, false, at),
            want
        );
        let scanner: Vec<Metric> = anonymous_hit_keys(&facts, EventType::Clicked, true, at)
            .into_iter()
            .map(|k| k.metric)
            .collect();
        assert_eq!(scanner, [Metric::Clicks, Metric::Clicks]);
        assert!(anonymous_hit_keys(&facts, EventType::Sent, false, at).is_empty());
    }

    #[test]
    fn acceptance_counts_requests_per_tag() {
        let tags = vec![
            Tag {
                name: "campaign".into(),
                value: "spring".into(),
            },
            Tag {
                name: "campaign".into(),
                value: "spring".into(),
            },
        ];
        assert_eq!(
            accepted_keys("acme", "marketing", &tags, 1_796_850_469_123),
            vec![
                key("marketing", "", Metric::Requests),
                key("marketing", "campaign:spring", Metric::Requests),
            ]
        );
    }

    #[test]
    fn buckets_and_rates() {
        assert_eq!(Bucket::Hour.start(1_796_850_469), 1_796_850_000);
        assert_eq!(Bucket::Day.start(1_796_850_469), 1_796_774_400);
        assert_eq!(Bucket::parse("week"), None);
        assert_eq!(rate(3, 1_000), Some(0.003));
        assert_eq!(rate(3, 0), None);
    }
}
