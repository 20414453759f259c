//! Statistics kept as rollups: which counters an event moves, the buckets
//! they are kept in, and the rates a report shows. Reports read rollups
//! only, never a scan of all events.
//!
//! A rollup row is keyed by tenant, hour, stream and tag (one row per tag
//! of the message, and one with no tag for the totals); days are sums of
//! hours. Metric names follow SendGrid's where it has one.
//! Owns: the metrics, the increments of each event, bucketing and rates.
//! Must not: store or read anything.

use super::engagement::Actor;
use super::model::EventType;

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

    #[test]
    fn buckets_and_rates() {
        assert_eq!(Bucket::Hour.start(1_796_850_469), 1_796_850_000);
        assert_eq!(Bucket::Day.start(1_796_850_469), 1_796_774_400);
        assert_eq!(Bucket::parse("week"), None);
        assert_eq!(rate(3, 1_000), Some(0.003));
        assert_eq!(rate(3, 0), None);
    }
}
