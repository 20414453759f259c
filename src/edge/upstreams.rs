//! `GET /v1/upstreams` and `POST /v1/upstreams/{name}/resume`, carried out:
//! read the upstreams' records (`d1::health`) and show them as
//! `http::upstreams` says, or store the resumed record of one.
//!
//! Must not: decide who may see the upstreams, what a record says or what a
//! resume changes.

use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::Upstream;
use crate::events::log_line::LogValue;
use crate::http::upstreams::{authorize, find, list_view, upstream_view};

use super::d1::Db;
use super::http::{self, internal};
use super::log;
use super::platform::{Loaded, now_ms};

fn labels(upstreams: &[Upstream]) -> Vec<String> {
    upstreams.iter().map(Upstream::label).collect()
}

pub async fn list(
    db: &Db,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<worker::Response, ApiError> {
    authorize(key)?;
    let upstreams = &loaded.settings.delivery.upstreams;
    let stored = db
        .upstream_records(&labels(upstreams))
        .await
        .map_err(internal)?;
    http::json(200, &list_view(upstreams, &stored, now_ms())).map_err(internal)
}

pub async fn resume(
    db: &Db,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    name: &str,
) -> Result<worker::Response, ApiError> {
    authorize(key)?;
    let upstreams = &loaded.settings.delivery.upstreams;
    let index = find(upstreams, name)?;
    let Some(upstream) = upstreams.get(index) else {
        return Err(ApiError::not_found("no such upstream"));
    };
    let label = upstream.label();
    let mut stored = db
        .upstream_records(std::slice::from_ref(&label))
        .await
        .map_err(internal)?
        .pop()
        .unwrap_or_default();
    let now = now_ms();
    stored.health = stored.health.resumed();
    db.store_health(&label, &stored.health, now)
        .await
        .map_err(internal)?;
    log::info(
        "upstream_resumed",
        &[
            ("upstream", LogValue::Id(&label)),
            ("key_id", LogValue::Id(&key.id)),
        ],
    );
    http::json(200, &upstream_view(upstream, index, &stored, now)).map_err(internal)
}
