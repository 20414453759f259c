//! The benchmark-only SMTP route. Exists only in a build with the
//! `diagnostics` feature, and answers only with `BENCH_ROUTES=on` there: it
//! lets one key make the relay send many copies at once.
//!
//! `POST /bench/smtp?count=N&pipelining=on|off&chunking=on|off`: prepares N
//! signed copies of the posted message (untimed), then delivers them over one
//! SMTP session through the same driver the queue consumer uses (the first
//! healthy upstream), and answers the elapsed milliseconds. The query
//! switches override `SMTP_PIPELINING` for this request only, so one worker
//! can measure pipelined and lock-step sessions side by side. No message is
//! stored or queued (upstream health is read and updated as for any session).
//! Must not: hold any rule of its own about email.

use futures_util::future::LocalBoxFuture;
use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey, send};
use crate::delivery::{AttemptResult, Outgoing};
use crate::diagnostics::bench::BenchSmtpRequest;
use crate::queue::DeliveryJob;

use super::d1::Db;
use super::platform::{Loaded, now_ms};
use super::{
    http::{self, internal},
    random, smtp_driver,
};

/// Records nothing before a data end: no message of this route is stored.
fn no_record(_: Vec<(usize, Vec<String>)>) -> LocalBoxFuture<'static, bool> {
    Box::pin(async { true })
}

/// Whether the bench routes answer; otherwise they do not exist (404).
pub fn enabled(loaded: &Loaded) -> bool {
    loaded.diagnostics.bench_routes
}

pub async fn smtp(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    query: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let params = BenchSmtpRequest::from_query(query)?;
    let settings = &loaded.settings;
    let send_settings = &settings.accept.send;
    let mut jobs: Vec<DeliveryJob> = Vec::with_capacity(params.count);
    for _ in 0..params.count {
        let now = now_ms();
        let prepared = send::prepare(body, key, send_settings, now / 1000, &random::bytes::<32>())?;
        jobs.push(send::sign_natively(prepared, send_settings)?);
    }
    let mime_bytes: usize = jobs.iter().map(|j| j.mime.len()).sum();
    let outgoing: Vec<Outgoing> = jobs.into_iter().map(Outgoing::new).collect();
    let refs: Vec<&Outgoing> = outgoing.iter().collect();

    let db = Db::open(env).map_err(internal)?;
    let started = now_ms();
    let reports = smtp_driver::deliver_tuned(
        env,
        &settings.delivery,
        &db,
        &refs,
        &no_record,
        &|_, _| {},
        &|config| {
            config.use_pipelining = params.pipelining;
            config.use_chunking = params.chunking;
        },
    )
    .await;
    let elapsed_ms = now_ms().saturating_sub(started);

    let delivered = reports
        .iter()
        .filter(|r| r.result == AttemptResult::Delivered)
        .count();
    let first_failure = reports
        .iter()
        .find(|r| r.result != AttemptResult::Delivered)
        .map(|r| r.detail.as_str());
    let answer = params.answer(delivered, elapsed_ms, mime_bytes, first_failure);
    http::json(200, &answer).map_err(internal)
}
