//! `GET /v1/upstreams` and `POST /v1/upstreams/{name}/resume`, carried out:
//! read the upstreams' records (`d1::health`) and their shapers' state
//! (`shaper`) and show them as
//! `http::upstreams` says, or store the resumed record of one.
//!
//! Must not: decide who may see the upstreams, what a record says or what a
//! resume changes.

use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::Upstream;
use crate::events::log_line::LogValue;
use crate::http::upstreams::{Stored, authorize, find, list_view, upstream_view};
use worker::Env;

use super::d1::Db;
use super::http::{self, internal};
use super::platform::{Loaded, now_ms};
use super::{log, shaper};

fn labels(upstreams: &[Upstream]) -> Vec<String> {
    upstreams.iter().map(Upstream::label).collect()
}

pub async fn list(
    env: &Env,
    db: &Db,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<worker::Response, ApiError> {
    authorize(key)?;
    let upstreams = &loaded.settings.delivery.upstreams;
    let mut stored = db
        .upstream_records(&labels(upstreams))
        .await
        .map_err(internal)?;
    for (upstream, s) in upstreams.iter().zip(stored.iter_mut()) {
        shaping(env, loaded, upstream, s).await;
    }
    http::json(200, &list_view(upstreams, &stored, now_ms())).map_err(internal)
}

/// Adds an upstream's limits and its shaper's state to its records.
async fn shaping(env: &Env, loaded: &Loaded, upstream: &Upstream, stored: &mut Stored) {
    let label = upstream.label();
    stored.limits = loaded.settings.delivery.limits.of(&label);
    if let Some(limits) = stored.limits {
        stored.shaping = shaper::view(env, &label, limits).await;
    }
}

pub async fn resume(
    env: &Env,
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
    shaping(env, loaded, upstream, &mut stored).await;
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
