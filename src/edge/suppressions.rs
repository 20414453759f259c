//! `/v1/suppressions`: list, add and remove entries of the caller's tenant's
//! suppression list. Every key of a tenant sees and changes the same list;
//! another tenant's entries are never read, listed or removed.
//!
//! Parses with `http::suppressions`, which owns the rules and the shapes,
//! and runs the SQL in `d1::suppressions`.
//! Must not: decide anything about an entry.

use worker::{Response, Url};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::suppressions::import;
use crate::http::suppressions::{added, page, parse_add, parse_list_query, parse_removal};

use super::d1::Db;
use super::http::{self, internal};
use super::platform::now_ms;

fn pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

pub async fn list(db: &Db, key: &AuthenticatedKey, url: &Url) -> Result<Response, ApiError> {
    let pairs = pairs(url);
    let query = parse_list_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let rows = db
        .list_suppressions(&key.tenant, &query)
        .await
        .map_err(internal)?;
    http::json(200, &page(rows, query.limit, now_ms())).map_err(internal)
}

pub async fn add(db: &Db, key: &AuthenticatedKey, body: &[u8]) -> Result<Response, ApiError> {
    let now = now_ms();
    let entries = parse_add(body, &key.tenant, now)?;
    db.add_suppressions(&entries).await.map_err(internal)?;
    http::json(200, &added(&entries, now)).map_err(internal)
}

/// `POST /v1/suppressions/import`: only entries the list does not have are
/// added, so an import run twice changes nothing.
pub async fn import(
    db: &Db,
    key: &AuthenticatedKey,
    url: &Url,
    body: &[u8],
) -> Result<Response, ApiError> {
    let pairs = pairs(url);
    let query = import::parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let parsed = import::parse(body, &query, &key.tenant, now_ms())?;
    let imported = db
        .import_suppressions(&parsed.entries)
        .await
        .map_err(internal)?;
    http::json(200, &import::answer(&query, &parsed, imported)).map_err(internal)
}

pub async fn remove(
    db: &Db,
    key: &AuthenticatedKey,
    segment: &str,
    url: &Url,
) -> Result<Response, ApiError> {
    let pairs = pairs(url);
    let removal = parse_removal(segment, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let removed = db
        .remove_suppressions(&key.tenant, &removal)
        .await
        .map_err(internal)?;
    if removed == 0 {
        return Err(ApiError::not_found(format!(
            "{} is not on this tenant's suppression list{}",
            removal.address,
            removal
                .scope
                .as_deref()
                .map(|s| format!(" with scope {s}"))
                .unwrap_or_default()
        )));
    }
    http::json(
        200,
        &serde_json::json!({"address": removal.address, "removed": removed}),
    )
    .map_err(internal)
}
