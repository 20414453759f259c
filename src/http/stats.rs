//! `GET /v1/stats` without the HTTP: its query (`from`, `to`, `bucket`,
//! `tag`, `stream`) checked into an [`events::stats::StatsQuery`].
//!
//! Must not: perform I/O or read the clock (the edge passes `now`).

use crate::accept::error::ApiError;
use crate::events::rollup::{Bucket, tag_key};
use crate::events::stats::{MAX_BUCKETS, RangeProblem, StatsQuery};
use crate::events::time::parse_instant;

use super::listing::{single_parameter, unknown_parameter};

const KNOWN: &str = "from, to, bucket, tag, stream";

/// The parameters of `GET /v1/stats/tags` (whole days, every tag).
const KNOWN_FOR_TAGS: &str = "from, to, stream";

/// Reads `GET /v1/stats`'s query pairs (already percent-decoded) at `now`
/// (Unix seconds).
pub fn parse_stats_query(pairs: &[(&str, &str)], now: u64) -> Result<StatsQuery, ApiError> {
    only(pairs, KNOWN)?;
    parse(pairs, now)
}

/// Reads `GET /v1/stats/tags`'s query pairs: the range in whole days.
pub fn parse_tag_stats_query(pairs: &[(&str, &str)], now: u64) -> Result<StatsQuery, ApiError> {
    only(pairs, KNOWN_FOR_TAGS)?;
    parse(pairs, now)
}

fn only(pairs: &[(&str, &str)], known: &str) -> Result<(), ApiError> {
    match pairs
        .iter()
        .find(|(k, _)| !known.split(", ").any(|n| n == *k))
    {
        Some((name, _)) => Err(unknown_parameter(name, known)),
        None => Ok(()),
    }
}

fn parse(pairs: &[(&str, &str)], now: u64) -> Result<StatsQuery, ApiError> {
    let one = |name: &str| single_parameter(pairs.iter().copied(), name, "repeated_parameter");
    let bucket = match one("bucket")? {
        None => Bucket::Day,
        Some(b) => Bucket::parse(b).ok_or_else(|| {
            ApiError::invalid_field("bucket", "invalid_bucket", "must be hour or day")
        })?,
    };
    let instant = |name: &str| -> Result<Option<(u64, bool)>, ApiError> {
        one(name)?
            .map(|v| {
                parse_instant(v).ok_or_else(|| {
                    ApiError::invalid_field(
                        name,
                        "invalid_time",
                        "must be a UTC day (2026-11-30) or time (2026-11-30T08:00:00Z)",
                    )
                })
            })
            .transpose()
    };
    let from = instant("from")?.map(|(at, _)| at);
    // A day given as `to` is included whole.
    let to = instant("to")?.map(|(at, whole_day)| if whole_day { at + 86_400 } else { at });
    let tag = match one("tag")? {
        None => None,
        Some(t) => match t.split_once(':') {
            Some((name, value)) if !name.is_empty() => Some(tag_key(name, value)),
            _ => {
                return Err(ApiError::invalid_field(
                    "tag",
                    "invalid_tag",
                    "must be name:value",
                ));
            }
        },
    };
    let stream = match one("stream")? {
        Some(s) if s.is_empty() || s.len() > 64 => {
            return Err(ApiError::invalid_field(
                "stream",
                "invalid_stream",
                "must be a stream name (1 to 64 characters)",
            ));
        }
        other => other.map(str::to_string),
    };
    let (from, to) = StatsQuery::range(from, to, bucket, now).map_err(|p| match p {
        RangeProblem::Empty => {
            ApiError::invalid_field("to", "empty_range", "must be after `from`")
        }
        RangeProblem::TooLong { buckets } => ApiError::invalid_field(
            "from",
            "range_too_long",
            format!(
                "the range holds {buckets} buckets; at most {MAX_BUCKETS} (use bucket=day for longer ranges)"
            ),
        ),
    })?;
    Ok(StatsQuery {
        from,
        to,
        bucket,
        tag,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-09T21:07:49Z
    const NOW: u64 = 1_796_850_469;
    const D0: u64 = 1_796_774_400;

    type Want = Result<(u64, u64, Bucket, Option<&'static str>), (&'static str, &'static str)>;
    type Case = (&'static [(&'static str, &'static str)], Want);

    #[test]
    fn query_table() {
        let table: &[Case] = &[
            (&[], Ok((D0 - 6 * 86_400, D0 + 86_400, Bucket::Day, None))),
            (
                &[
                    ("from", "2026-12-09"),
                    ("to", "2026-12-09"),
                    ("bucket", "hour"),
                ],
                Ok((D0, D0 + 86_400, Bucket::Hour, None)),
            ),
            (
                &[
                    ("from", "2026-12-09T01:30:00Z"),
                    ("to", "2026-12-09T03:00:00Z"),
                    ("bucket", "hour"),
                ],
                Ok((D0 + 3600, D0 + 3 * 3600, Bucket::Hour, None)),
            ),
            (
                &[("tag", "campaign:spring"), ("from", "2026-12-01")],
                Ok((
                    D0 - 8 * 86_400,
                    D0 + 86_400,
                    Bucket::Day,
                    Some("campaign:spring"),
                )),
            ),
            (&[("bucket", "week")], Err(("bucket", "invalid_bucket"))),
            (&[("from", "yesterday")], Err(("from", "invalid_time"))),
            (&[("to", "2026-02-30")], Err(("to", "invalid_time"))),
            (&[("tag", "spring")], Err(("tag", "invalid_tag"))),
            (&[("tag", ":x")], Err(("tag", "invalid_tag"))),
            (&[("stream", "")], Err(("stream", "invalid_stream"))),
            (
                &[("from", "2026-12-10"), ("to", "2026-12-09")],
                Err(("to", "empty_range")),
            ),
            (
                &[("from", "2026-01-01"), ("bucket", "hour")],
                Err(("from", "range_too_long")),
            ),
            (
                &[("bucket", "day"), ("bucket", "hour")],
                Err(("bucket", "repeated_parameter")),
            ),
            (&[("since", "1")], Err(("since", "unknown_parameter"))),
        ];
        for (pairs, want) in table {
            let got = parse_stats_query(pairs, NOW);
            match (want, got) {
                (Ok((from, to, bucket, tag)), Ok(q)) => {
                    assert_eq!(
                        (q.from, q.to, q.bucket, q.tag.as_deref()),
                        (*from, *to, *bucket, *tag),
                        "{pairs:?}"
                    );
                }
                (Err((field, rule)), Err(e)) => {
                    assert_eq!(e.status, 422, "{pairs:?}");
                    let problem = &e.details[0];
                    assert_eq!(
                        (problem.field.as_str(), problem.rule.as_str()),
                        (*field, *rule),
                        "{pairs:?}"
                    );
                }
                (want, got) => panic!("{pairs:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_tag_report_takes_a_range_and_a_stream_only() {
        let q =
            parse_tag_stats_query(&[("from", "2026-12-09"), ("stream", "marketing")], NOW).unwrap();
        assert_eq!((q.from, q.to, q.bucket), (D0, D0 + 86_400, Bucket::Day));
        assert_eq!(q.stream.as_deref(), Some("marketing"));
        for name in ["tag", "bucket"] {
            let e = parse_tag_stats_query(&[(name, "x")], NOW).unwrap_err();
            assert_eq!(e.details[0].rule, "unknown_parameter");
        }
    }
}
