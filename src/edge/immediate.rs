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
use crate::delivery::RetryPolicy;
use crate::http::accepted::{ACCEPTED, queued};
use crate::http::delivery_mode::{DeliveryMode, immediate_answer};

use super::leases::Leases;
use super::ledger::Ledger;
use super::lifecycle::{Carrier, deliver_recording, settle};
use super::platform::{DATABASE, Loaded, now_ms};
use super::smtp_driver::with_timeout;
use super::store::Store;
use super::{
    accept,
    http::{self, internal},
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
    let (Some((started, plan)), Ok(db_a), Ok(db_b), Ok(db_c)) = (
        accepted.immediate,
        env.d1(DATABASE),
        env.d1(DATABASE),
        env.d1(DATABASE),
    ) else {
        return answer_queued().map_err(internal);
    };
    let (ledger, store, leases) = (Ledger::new(db_a), Store::new(db_b), Leases::new(db_c));
    let job = accepted.job;

    let budget = (started + plan.deadline_ms).saturating_sub(now_ms());
    let attempt = with_timeout(deliver_recording(env, loaded, &ledger, &[&job]), budget).await;
    let Some(report) = attempt.and_then(|mut reports| reports.pop()) else {
        // Out of time: only a write the upstream stopped reading gets here,
        // so the final dot was not sent. The lease stays until it runs out;
        // then the safety job delivers.
        worker::console_warn!("edgerelay: immediate delivery of {id} ran out of time");
        return answer_queued().map_err(internal);
    };

    let policy = RetryPolicy::new(loaded.settings.retry);
    let settled = settle(
        env,
        &store,
        &ledger,
        &policy,
        Carrier::SafetyJob,
        job,
        &[],
        report,
    )
    .await;
    if let Err(e) = leases.release(&id).await {
        // The safety job waits for the lease to run out instead.
        worker::console_warn!("edgerelay: could not release the lease on {id}: {e}");
    }
    let (status, answer) = immediate_answer(
        &id,
        settled.status,
        &settled.results,
        settled.next_attempt_at,
    );
    http::json(status, &answer).map_err(internal)
}
