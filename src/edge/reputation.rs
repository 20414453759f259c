//! The reputation guard, carried out: the cron trigger's review of every
//! tenant's window (from the statistics rollups), the pause it stores with
//! its `stream.paused` event, `GET /v1/streams/marketing` and `POST
//! /v1/streams/marketing/resume` (with `stream.resumed`), and what the
//! consumer asks before it delivers marketing mail.
//!
//! Must not: decide whether a tenant pauses, where its window starts or what
//! an event says (`events::reputation` does).

use std::collections::HashSet;

use worker::Env;

use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::log_line::LogValue;
use crate::events::reputation::{
    GuardSettings, counts_from_after_resume, paused_event, resumed_event, review as judge,
    state_view, tenant_window_start, window_start,
};

use super::d1::Db;
use super::http::{self, internal};
use super::platform::{Loaded, now_ms};
use super::{email_events, log, random};

/// The guard's settings for this run.
fn settings(loaded: &Loaded) -> GuardSettings {
    loaded.settings.reputation
}

/// One review (the cron trigger): every tenant not paused whose window
/// the judge finds over a threshold is paused, and its `stream.paused`
/// published.
pub async fn review(env: &Env, db: &Db, loaded: &Loaded) {
    let settings = settings(loaded);
    let now = now_ms();
    let from = window_start(now / 1000, &settings);
    let records = match db.guard_records().await {
        Ok(r) => r,
        Err(e) => {
            log::error_because("reputation_review_could_not_read_the_guard", &e);
            return;
        }
    };
    let windows = match db.guard_windows(from).await {
        Ok(w) => w,
        Err(e) => {
            log::error_because("reputation_review_could_not_read_the_rollups", &e);
            return;
        }
    };
    for (tenant, counts) in windows {
        let record = records.iter().find(|(t, _)| *t == tenant).map(|(_, r)| r);
        if record.is_some_and(|r| r.paused) {
            continue;
        }
        let counts_from = record.map_or(0, |r| r.counts_from);
        let tenant_from = tenant_window_start(now / 1000, &settings, counts_from);
        let Some(pause) = judge(&tenant, counts, &settings, tenant_from, now) else {
            continue;
        };
        match db
            .pause_marketing(&tenant, pause.reason.as_str(), &pause.data, now)
            .await
        {
            Ok(true) => {
                log::warn(
                    "marketing_paused",
                    &[
                        ("tenant", LogValue::Id(&tenant)),
                        ("reason", LogValue::Text(pause.reason.as_str())),
                    ],
                );
                let event = paused_event(&pause, now, &random::bytes());
                if let Err(e) = email_events::publish(env, db, &[event]).await {
                    log::error_because("could_not_publish_stream_paused", &e);
                }
            }
            Ok(false) => {}
            Err(e) => log::error_because("could_not_pause_marketing", &e),
        }
    }
}

/// `GET /v1/streams/marketing`: the key's tenant's guard state and window.
pub async fn get(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<worker::Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    state(&db, loaded, &key.tenant).await
}

async fn state(db: &Db, loaded: &Loaded, tenant: &str) -> Result<worker::Response, ApiError> {
    let settings = settings(loaded);
    let record = db.guard_record(tenant).await.map_err(internal)?;
    let from = tenant_window_start(now_ms() / 1000, &settings, record.counts_from);
    let counts = db.guard_window(tenant, from).await.map_err(internal)?;
    http::json(200, &state_view(&record, counts, &settings, from)).map_err(internal)
}

/// `POST /v1/streams/marketing/resume`: lifts the pause (`stream.resumed`
/// fires when there was one) and answers the state. Resuming a stream
/// that is not paused changes nothing and fires nothing.
pub async fn resume(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<worker::Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let before = db.guard_record(&key.tenant).await.map_err(internal)?;
    let now = now_ms();
    let resumed = db
        .resume_marketing(&key.tenant, &key.id, now, counts_from_after_resume(now))
        .await
        .map_err(internal)?;
    if resumed {
        log::info(
            "marketing_resumed",
            &[
                ("tenant", LogValue::Id(&key.tenant)),
                ("key_id", LogValue::Id(&key.id)),
            ],
        );
        let event = resumed_event(
            &key.tenant,
            before.detail.as_ref(),
            before.paused_at_ms,
            &key.id,
            now,
            &random::bytes(),
        );
        if let Err(e) = email_events::publish(env, &db, &[event]).await {
            log::error_because("could_not_publish_stream_resumed", &e);
        }
    }
    state(&db, loaded, &key.tenant).await
}

/// Which of `tenants` have their marketing paused (for the consumer).
pub async fn paused(db: &Db, tenants: &[&str]) -> worker::Result<HashSet<String>> {
    Ok(db.paused_tenants(tenants).await?.into_iter().collect())
}
