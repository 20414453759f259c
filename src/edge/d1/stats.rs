//! Statistics rollups (`stat_rollups`): the statements that move counters
//! with the event or acceptance they count, and the one query a report
//! reads.
//!
//! A counter moves only when the row it counts was written: an event whose
//! id is already stored (`ON CONFLICT DO NOTHING`) moves nothing, so a
//! retried step never counts twice. The first rollup statement after the
//! event's insert runs only when that insert changed a row (`changes()`),
//! and each further one only when the one before it did.
//! Must not: decide which counters an event moves (`events::rollup`) or
//! what a report says (`events::stats`).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::events::rollup::ALL_TAGS;
use crate::events::rollup::{Metric, RollupKey};
use crate::events::stats::{HourCount, StatsQuery, TagCount};

use super::{Db, n, s};

/// What a report sums by, beside the metric.
enum Grouping<'a> {
    /// Hours, of the rows of this tag.
    Hour(&'a str),
    /// Tags, of every tagged row.
    Tag,
}

/// One sum: its hour or its tag (whichever was grouped by), metric, count.
#[derive(Deserialize)]
struct SumRow {
    #[serde(default)]
    hour: Option<f64>,
    #[serde(default)]
    tag: Option<String>,
    metric: String,
    count: f64,
}

/// Counters per statement: D1 binds at most 100 values, and each counter
/// takes 2 beside the statement's 3.
const KEYS_PER_STATEMENT: usize = 40;

impl Db {
    /// The statements that move `keys` by `by`, to follow the statement
    /// whose change they count in one batch. Keys of one tenant, hour and
    /// stream share a statement.
    pub fn rollup_statements(
        &self,
        keys: &[RollupKey],
        by: i64,
    ) -> Result<Vec<D1PreparedStatement>> {
        let mut groups: Vec<&[RollupKey]> = Vec::new();
        let mut start = 0;
        for i in 1..=keys.len() {
            let split = i == keys.len()
                || i - start == KEYS_PER_STATEMENT
                || (
                    keys[i].tenant.as_str(),
                    keys[i].hour,
                    keys[i].stream.as_str(),
                ) != (
                    keys[start].tenant.as_str(),
                    keys[start].hour,
                    keys[start].stream.as_str(),
                );
            if split {
                groups.push(&keys[start..i]);
                start = i;
            }
        }
        let mut statements = Vec::with_capacity(groups.len());
        for (i, group) in groups.iter().enumerate() {
            let Some(first) = group.first() else { continue };
            let rows: Vec<String> = (0..group.len())
                .map(|j| format!("(?{}, ?{})", 5 + 2 * j, 6 + 2 * j))
                .collect();
            // The first statement follows the counted insert (one row
            // changed); each later one follows a statement like itself,
            // which changed at least one row when it ran.
            let guard = if i == 0 {
                "changes() = 1"
            } else {
                "changes() > 0"
            };
            let sql = format!(
                "INSERT INTO stat_rollups (tenant, tag, hour, stream, metric, count) \
                 SELECT ?1, v.column1, ?2, ?3, v.column2, ?4 FROM (VALUES {}) AS v WHERE {guard} \
                 ON CONFLICT (tenant, tag, hour, stream, metric) \
                 DO UPDATE SET count = stat_rollups.count + excluded.count",
                rows.join(", ")
            );
            let mut binds = vec![
                s(&first.tenant),
                n(first.hour),
                s(&first.stream),
                wasm_bindgen::JsValue::from_f64(by as f64),
            ];
            for k in *group {
                binds.push(s(&k.tag));
                binds.push(s(k.metric.as_str()));
            }
            statements.push(self.prepare(&sql, &binds)?);
        }
        Ok(statements)
    }

    /// The counts of a tenant's report: per hour and metric, summed over
    /// streams unless the query names one. Reads `stat_rollups` only, along
    /// its primary key.
    pub async fn stat_counts(&self, tenant: &str, q: &StatsQuery) -> Result<Vec<HourCount>> {
        let tag = q.tag.as_deref().unwrap_or(ALL_TAGS);
        let rows = self.rollup_sums(tenant, q, Grouping::Hour(tag)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(HourCount {
                    hour: r.hour? as u64,
                    metric: Metric::parse(&r.metric)?,
                    count: r.count.max(0.0) as u64,
                })
            })
            .collect())
    }

    /// Every tag's counts over the query's range (summed over hours, and
    /// over streams unless the query names one), from `stat_rollups` only.
    pub async fn tag_counts(&self, tenant: &str, q: &StatsQuery) -> Result<Vec<TagCount>> {
        let rows = self.rollup_sums(tenant, q, Grouping::Tag).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(TagCount {
                    tag: r.tag?,
                    metric: Metric::parse(&r.metric)?,
                    count: r.count.max(0.0) as u64,
                })
            })
            .collect())
    }

    /// The sums of a tenant's counters over the query's range (and stream),
    /// per metric and either hour (of one tag) or tag (every tag).
    async fn rollup_sums(
        &self,
        tenant: &str,
        q: &StatsQuery,
        grouping: Grouping<'_>,
    ) -> Result<Vec<SumRow>> {
        let (key, tag_filter, tag) = match grouping {
            Grouping::Hour(tag) => ("hour", "tag = ?2", tag),
            Grouping::Tag => ("tag", "tag > ?2", ALL_TAGS),
        };
        let stream_filter = if q.stream.is_some() {
            " AND stream = ?5"
        } else {
            ""
        };
        let mut binds = vec![s(tenant), s(tag), n(q.from), n(q.to)];
        if let Some(stream) = &q.stream {
            binds.push(s(stream));
        }
        self.prepare(
            &format!(
                "SELECT {key}, metric, SUM(count) AS count FROM stat_rollups \
                 WHERE tenant = ?1 AND {tag_filter} AND hour >= ?3 AND hour < ?4{stream_filter} \
                 GROUP BY {key}, metric"
            ),
            &binds,
        )?
        .all()
        .await?
        .results::<SumRow>()
    }
}
