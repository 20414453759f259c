//! `POST /v1/messages?delivery=immediate`: accept the message exactly as in
//! queued mode (stored, leased, safety job enqueued), then deliver it within
//! the request and answer with the SMTP result.
//!
//! The attempt runs through the consumer's own code (`lifecycle`), so the
//! records are identical to a queued delivery's. Why this can neither lose
//! nor duplicate a message is explained in `delivery::immediate`. Once the
//! message is accepted, nothing here answers with an error: whatever goes
//! wrong afterwards, the safety job finishes the work, and the caller is told
//! the message is queued.
//! Must not: decide delivery rules, or enqueue anything beyond the safety job.

use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::{Carrier, RetryPolicy, settle};
use crate::http::accepted::{ACCEPTED, queued};
use crate::http::delivery_mode::{DeliveryMode, immediate_answer};

use super::d1::Db;
use super::lifecycle::{deliver_recording, execute};
use super::platform::{Loaded, now_ms};
use super::smtp_driver::with_timeout;
use super::{
    accept,
    http::{self, internal},
    random,
};

pub async fn accept_immediate(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let accepted = accept::accept_with(env, loaded, key, body, DeliveryMode::Immediate).await?;
    let id = accepted.job.id.clone();
    let answer_queued = || http::json(ACCEPTED, &queued(&id));
    let (Some((started, plan)), Ok(db)) = (accepted.immediate, Db::open(env)) else {
        return answer_queued().map_err(internal);
    };
    let job = accepted.job;
    let settings = &loaded.settings.delivery;

    let budget = (started + plan.deadline_ms).saturating_sub(now_ms());
    let attempt = with_timeout(deliver_recording(settings, &db, &[&job]), budget).await;
    let Some(attempt) = attempt.and_then(|mut attempts| attempts.pop()) else {
        // Out of time: only a write the upstream stopped reading gets here,
        // so the final dot was not sent. The lease stays until it runs out;
        // then the safety job delivers.
        worker::console_warn!("edgerelay: immediate delivery of {id} ran out of time");
        return answer_queued().map_err(internal);
    };

    let policy = RetryPolicy::new(settings.retry);
    let settlement = settle(
        &job,
        &[],
        attempt,
        &policy,
        now_ms(),
        random::unit(),
        Carrier::SafetyJob,
    );
    let answer = settlement
        .record
        .as_ref()
        .map(|r| immediate_answer(&id, r.status, &r.recipients, r.next_attempt_at));
    execute(env, &db, None, settlement).await;
    if let Err(e) = db.release_lease(&id).await {
        // The safety job waits for the lease to run out instead.
        worker::console_warn!("edgerelay: could not release the lease on {id}: {e}");
    }
    match answer {
        Some((status, answer)) => http::json(status, &answer).map_err(internal),
        None => answer_queued().map_err(internal),
    }
}
