//! `GET /v1/stats` and `GET /v1/stats/tags`: the caller's tenant's
//! statistics, read from the rollups only.
//!
//! Must not: count anything or shape the report (`events::stats` does).

use url::Url;
use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::stats::{report, tag_report};
use crate::http::stats::{parse_stats_query, parse_tag_stats_query};

use super::d1::Db;
use super::http::{self, internal};
use super::platform::now_ms;

/// Which report: the buckets of one tag (or all mail), or every tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Buckets,
    Tags,
}

/// Answers the report the query asks for.
pub async fn get(
    env: &Env,
    key: &AuthenticatedKey,
    url: &Url,
    which: Report,
) -> std::result::Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let now = now_ms() / 1000;
    let db = Db::open(env).map_err(internal)?;
    let answer = match which {
        Report::Buckets => {
            let query = parse_stats_query(&pairs, now)?;
            let counts = db
                .stat_counts(&key.tenant, &query)
                .await
                .map_err(internal)?;
            report(&query, &counts)
        }
        Report::Tags => {
            let query = parse_tag_stats_query(&pairs, now)?;
            let counts = db.tag_counts(&key.tenant, &query).await.map_err(internal)?;
            tag_report(&query, &counts)
        }
    };
    http::json(200, &answer).map_err(internal)
}
