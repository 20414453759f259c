//! The statistics report: a time range cut into hour or day buckets, each
//! with every metric's count and the rates over what the smarthosts took.
//! It is built from rollup counts only ([`super::rollup`]); nothing here
//! ever sees an event.
//!
//! Owns: the range rules (how far back, how many buckets), zero-filling,
//! summing hours into days and the report's shape. Must not: read the
//! clock or the store (the caller passes `now` and the counts).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::rollup::{Bucket, Metric, rate};
use super::time::rfc3339_ms;

/// At most this many buckets in one report (a month of hours; a year and a
/// bit of days).
pub const MAX_BUCKETS: u64 = 744;

/// Without `from`, a report starts this long before its end.
pub const DEFAULT_SPAN_SECONDS: u64 = 7 * 86_400;

/// What a report covers. `from` is inclusive, `to` exclusive, both on
/// bucket boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub from: u64,
    pub to: u64,
    pub bucket: Bucket,
    /// `name:value`: only messages with that tag.
    pub tag: Option<String>,
    /// Only messages of that stream.
    pub stream: Option<String>,
}

/// Why a range cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeProblem {
    /// `to` is not after `from`.
    Empty,
    /// More than [`MAX_BUCKETS`] buckets.
    TooLong { buckets: u64 },
}

impl StatsQuery {
    /// The range from what the caller said: `from` and `to` in Unix seconds
    /// (`to` already made exclusive: a whole day given as `to` ends after
    /// it), `now` when `to` is absent; both widened to whole buckets.
    pub fn range(
        from: Option<u64>,
        to: Option<u64>,
        bucket: Bucket,
        now: u64,
    ) -> Result<(u64, u64), RangeProblem> {
        let size = bucket.seconds();
        let to = to.unwrap_or(now).div_ceil(size).saturating_mul(size);
        let from = bucket.start(from.unwrap_or_else(|| to.saturating_sub(DEFAULT_SPAN_SECONDS)));
        if to <= from {
            return Err(RangeProblem::Empty);
        }
        let buckets = (to - from) / size;
        if buckets > MAX_BUCKETS {
            return Err(RangeProblem::TooLong { buckets });
        }
        Ok((from, to))
    }
}

/// One stored count: the hour it is for, what it counts, how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    pub hour: u64,
    pub metric: Metric,
    pub count: u64,
}

/// The report as the API answers it.
pub fn report(query: &StatsQuery, counts: &[HourCount]) -> Value {
    let size = query.bucket.seconds();
    let mut buckets: BTreeMap<u64, BTreeMap<Metric, u64>> = BTreeMap::new();
    let mut start = query.from;
    while start < query.to {
        buckets.insert(start, BTreeMap::new());
        start += size;
    }
    let mut totals: BTreeMap<Metric, u64> = BTreeMap::new();
    for c in counts {
        if c.hour < query.from || c.hour >= query.to {
            continue;
        }
        let bucket = query.bucket.start(c.hour);
        if let Some(metrics) = buckets.get_mut(&bucket) {
            *metrics.entry(c.metric).or_default() += c.count;
            *totals.entry(c.metric).or_default() += c.count;
        }
    }
    let rows: Vec<Value> = buckets
        .iter()
        .map(|(start, metrics)| {
            json!({
                "start": rfc3339_ms(start * 1000),
                "metrics": metrics_object(metrics),
                "rates": rates_object(metrics),
            })
        })
        .collect();
    json!({
        "object": "stats",
        "from": rfc3339_ms(query.from * 1000),
        "to": rfc3339_ms(query.to * 1000),
        "bucket": match query.bucket { Bucket::Hour => "hour", Bucket::Day => "day" },
        "tag": query.tag,
        "stream": query.stream,
        "totals": {"metrics": metrics_object(&totals), "rates": rates_object(&totals)},
        "buckets": rows,
    })
}

/// One tag's counts over a whole range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    /// `name:value`.
    pub tag: String,
    pub metric: Metric,
    pub count: u64,
}

/// At most this many tags in a tag report: the busiest by `requests`.
pub const MAX_TAGS: usize = 100;

/// The tag report: each tag's totals and rates over the range, busiest
/// (most requests, then most sent, then by name) first.
pub fn tag_report(query: &StatsQuery, counts: &[TagCount]) -> Value {
    let mut tags: BTreeMap<&str, BTreeMap<Metric, u64>> = BTreeMap::new();
    for c in counts {
        *tags
            .entry(c.tag.as_str())
            .or_default()
            .entry(c.metric)
            .or_default() += c.count;
    }
    let mut rows: Vec<(&str, BTreeMap<Metric, u64>)> = tags.into_iter().collect();
    let volume = |m: &BTreeMap<Metric, u64>| {
        (
            m.get(&Metric::Requests).copied().unwrap_or(0),
            m.get(&Metric::Sent).copied().unwrap_or(0),
        )
    };
    rows.sort_by(|a, b| volume(&b.1).cmp(&volume(&a.1)).then(a.0.cmp(b.0)));
    let more = rows.len() > MAX_TAGS;
    rows.truncate(MAX_TAGS);
    let data: Vec<Value> = rows
        .iter()
        .map(|(tag, metrics)| {
            json!({"tag": tag, "metrics": metrics_object(metrics), "rates": rates_object(metrics)})
        })
        .collect();
    json!({
        "object": "list",
        "from": rfc3339_ms(query.from * 1000),
        "to": rfc3339_ms(query.to * 1000),
        "stream": query.stream,
        "data": data,
        "has_more": more,
    })
}

/// Every metric, zero when nothing moved it, and `bounces` (hard and soft).
fn metrics_object(metrics: &BTreeMap<Metric, u64>) -> Value {
    let get = |m: Metric| metrics.get(&m).copied().unwrap_or(0);
    let mut out = Map::new();
    for m in Metric::ALL {
        out.insert(m.as_str().into(), json!(get(m)));
    }
    out.insert(
        "bounces".into(),
        json!(get(Metric::HardBounces) + get(Metric::SoftBounces)),
    );
    Value::Object(out)
}

/// The rates, each over `sent` (what the smarthosts took); `null` with
/// nothing sent. Open and click rates count each recipient once; the
/// `human_` rates leave out what machines did.
fn rates_object(metrics: &BTreeMap<Metric, u64>) -> Value {
    let get = |m: Metric| metrics.get(&m).copied().unwrap_or(0);
    let sent = get(Metric::Sent);
    let r = |count: u64| rate(count, sent).map_or(Value::Null, |x| json!(x));
    json!({
        "delivered": r(get(Metric::Delivered)),
        "bounced": r(get(Metric::HardBounces) + get(Metric::SoftBounces)),
        "hard_bounced": r(get(Metric::HardBounces)),
        "complained": r(get(Metric::SpamReports)),
        "unsubscribed": r(get(Metric::Unsubscribes)),
        "opened": r(get(Metric::UniqueOpens)),
        "human_opened": r(get(Metric::HumanOpens)),
        "clicked": r(get(Metric::UniqueClicks)),
        "human_clicked": r(get(Metric::HumanClicks)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    // 2026-12-09T00:00:00Z
    const D0: u64 = 1_796_774_400;

    type Case = (
        Option<u64>,
        Option<u64>,
        Bucket,
        u64,
        Result<(u64, u64), RangeProblem>,
    );

    #[test]
    fn ranges_table() {
        let table: &[Case] = &[
            // Defaults: the week up to now, in whole days.
            (
                None,
                None,
                Bucket::Day,
                D0 + 3600,
                Ok((D0 - 6 * DAY, D0 + DAY)),
            ),
            // Hours widen to whole hours.
            (
                Some(D0 + 90),
                Some(D0 + 3 * 3600 + 1),
                Bucket::Hour,
                0,
                Ok((D0, D0 + 4 * 3600)),
            ),
            (Some(D0), Some(D0), Bucket::Day, 0, Err(RangeProblem::Empty)),
            (
                Some(D0 + DAY),
                Some(D0),
                Bucket::Day,
                0,
                Err(RangeProblem::Empty),
            ),
            (
                Some(D0),
                Some(D0 + 745 * 3600),
                Bucket::Hour,
                0,
                Err(RangeProblem::TooLong { buckets: 745 }),
            ),
            (
                Some(D0),
                Some(D0 + 744 * 3600),
                Bucket::Hour,
                0,
                Ok((D0, D0 + 744 * 3600)),
            ),
        ];
        for (from, to, bucket, now, want) in table {
            assert_eq!(
                StatsQuery::range(*from, *to, *bucket, *now),
                *want,
                "{from:?} {to:?} {bucket:?}"
            );
        }
    }

    #[test]
    fn tags_are_summed_and_busiest_first() {
        let query = StatsQuery {
            from: D0,
            to: D0 + DAY,
            bucket: Bucket::Day,
            tag: None,
            stream: None,
        };
        let c = |tag: &str, metric, count| TagCount {
            tag: tag.into(),
            metric,
            count,
        };
        let counts = [
            c("campaign:spring", Metric::Requests, 2),
            c("campaign:spring", Metric::Requests, 3),
            c("campaign:spring", Metric::Sent, 5),
            c("campaign:spring", Metric::SpamReports, 1),
            c("kind:promo", Metric::Requests, 9),
            c("a:b", Metric::Sent, 1),
            c("a:a", Metric::Sent, 1),
        ];
        let r = tag_report(&query, &counts);
        let tags: Vec<&str> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tag"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["kind:promo", "campaign:spring", "a:a", "a:b"]);
        assert_eq!(r["data"][1]["metrics"]["requests"], 5);
        assert_eq!(r["data"][1]["rates"]["complained"], 0.2);
        assert_eq!(r["has_more"], false);
        let many: Vec<TagCount> = (0..=MAX_TAGS)
            .map(|i| c(&format!("t:{i:03}"), Metric::Requests, 1))
            .collect();
        let r = tag_report(&query, &many);
        assert_eq!(r["data"].as_array().unwrap().len(), MAX_TAGS);
        assert_eq!(r["has_more"], true);
    }

    #[test]
    fn hours_sum_into_days_and_rates_use_sent() {
        let query = StatsQuery {
            from: D0,
            to: D0 + 2 * DAY,
            bucket: Bucket::Day,
            tag: None,
            stream: None,
        };
        let counts = [
            HourCount {
                hour: D0,
                metric: Metric::Sent,
                count: 600,
            },
            HourCount {
                hour: D0 + 5 * 3600,
                metric: Metric::Sent,
                count: 400,
            },
            HourCount {
                hour: D0 + 5 * 3600,
                metric: Metric::SpamReports,
                count: 3,
            },
            HourCount {
                hour: D0 + 7 * 3600,
                metric: Metric::HardBounces,
                count: 10,
            },
            HourCount {
                hour: D0 + 7 * 3600,
                metric: Metric::SoftBounces,
                count: 5,
            },
            HourCount {
                hour: D0 + 7 * 3600,
                metric: Metric::UniqueOpens,
                count: 250,
            },
            HourCount {
                hour: D0 + 7 * 3600,
                metric: Metric::HumanOpens,
                count: 200,
            },
            // Outside the range: ignored.
            HourCount {
                hour: D0 + 2 * DAY,
                metric: Metric::Sent,
                count: 99,
            },
        ];
        let r = report(&query, &counts);
        let buckets = r["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[0]["start"], "2026-12-09T00:00:00.000Z");
        assert_eq!(buckets[0]["metrics"]["sent"], 1000);
        assert_eq!(buckets[0]["metrics"]["bounces"], 15);
        assert_eq!(buckets[0]["rates"]["complained"], 0.003);
        assert_eq!(buckets[0]["rates"]["bounced"], 0.015);
        assert_eq!(buckets[0]["rates"]["opened"], 0.25);
        assert_eq!(buckets[0]["rates"]["human_opened"], 0.2);
        // An empty day: every metric zero, no rate.
        assert_eq!(buckets[1]["metrics"]["sent"], 0);
        assert_eq!(buckets[1]["metrics"]["requests"], 0);
        assert!(buckets[1]["rates"]["delivered"].is_null());
        assert_eq!(r["totals"]["metrics"]["sent"], 1000);
        assert_eq!(r["from"], "2026-12-09T00:00:00.000Z");
        assert_eq!(r["to"], "2026-12-11T00:00:00.000Z");
        assert_eq!(r["bucket"], "day");
    }
}
