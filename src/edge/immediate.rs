//! `POST /v1/messages?delivery=immediate`: accept the message exactly as in
//! queued mode (stored, leased, safety job enqueued), then deliver it within
//! the request and answer with the SMTP result.
//!
//! The recipients are screened against the tenant's suppression list and the
//! attempt runs through the consumer's own code (`screening`, `lifecycle`),
//! so the records are identical to a queued delivery's. Why this can neither lose
//! nor duplicate a message is explained in `delivery::immediate`. Once the
//! message is accepted, nothing here answers with an error: whatever goes
//! wrong afterwards, the safety job finishes the work, and the caller is told
//! the message is queued.
//! Marketing mail of a tenant whose marketing the reputation guard paused
//! is left to the safety job (and so held by the consumer).
//! Must not: decide delivery rules, or enqueue anything beyond the safety job.

use std::rc::Rc;

use futures_channel::oneshot;
use worker::{Context, Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::immediate::ImmediatePlan;
use crate::delivery::{Carrier, Outgoing, RetryPolicy, Settlement, settle};
use crate::events::log_line::LogValue;
use crate::http::accepted::{ACCEPTED, queued};
use crate::http::delivery_mode::{DeliveryMode, immediate_answer};
use crate::queue::DeliveryJob;

use super::d1::Db;
use super::lifecycle::{Executed, deliver_recording, execute, execute_for};
use super::log;
use super::platform::{Loaded, now_ms};
use super::screening::{self, Screened};
use super::smtp_driver::with_timeout;
use super::{
    accept,
    http::{self, internal},
    random, reputation,
};

pub async fn accept_immediate(
    env: &Env,
    ctx: &Context,
    loaded: &Rc<Loaded>,
    key: &AuthenticatedKey,
    body: &[u8],
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let accepted =
        accept::accept_with(env, loaded, key, body, DeliveryMode::Immediate, origin).await?;
    let id = accepted.job.id.clone();
    let answer_queued = || http::json(ACCEPTED, &queued(&id));
    let Some((started, plan)) = accepted.immediate else {
        return answer_queued().map_err(internal);
    };
    // The attempt and its record run under `waitUntil`: a caller that hangs
    // up after sending does not cut them short, so the outcome is recorded
    // and the lease released (or kept) as if it had waited.
    let (tx, rx) = oneshot::channel();
    let (env_for_attempt, loaded_for_attempt) = (env.clone(), loaded.clone());
    let job = accepted.job;
    ctx.wait_until(async move {
        let answer = attempt(&env_for_attempt, &loaded_for_attempt, job, started, plan).await;
        // The caller may be gone; the record is what counts.
        let _ = tx.send(answer);
    });
    match rx.await {
        Ok(Some((status, answer))) => http::json(status, &answer).map_err(internal),
        _ => answer_queued().map_err(internal),
    }
}

/// Delivers the job within the plan's deadline, records the outcome and
/// releases the lease; the answer for the caller, or `None` to say "queued".
async fn attempt(
    env: &Env,
    loaded: &Loaded,
    job: DeliveryJob,
    started: u64,
    plan: ImmediatePlan,
) -> Option<(u16, serde_json::Value)> {
    let id = job.id.clone();
    let db = match Db::open(env) {
        Ok(db) => db,
        Err(e) => {
            log::warn(
                "immediate_delivery_left_to_safety_job",
                &[
                    ("message_id", LogValue::Id(&id.to_string())),
                    ("error", LogValue::Text(&e.to_string())),
                ],
            );
            return None;
        }
    };
    // Marketing mail of a tenant the reputation guard paused is not sent
    // now: the lease is let go and the safety job takes it to the consumer,
    // which holds it like any other (the caller is told it is queued).
    if job.is_marketing() {
        match reputation::paused(&db, &[job.tenant()]).await {
            Ok(paused) if paused.is_empty() => {}
            Ok(_) => {
                if let Err(e) = db.release_lease(&id).await {
                    log::warn_because("could_not_release_a_lease", &e);
                }
                return None;
            }
            Err(e) => {
                log::warn_because("immediate_delivery_left_to_safety_job", &e);
                return None;
            }
        }
    }
    // No upstream sees an address on the tenant's suppression list; without
    // the list, the safety job delivers once the lease runs out.
    let entries = match screening::entries_for(&db, &[&job]).await {
        Ok(entries) => entries,
        Err(e) => {
            log::warn(
                "immediate_delivery_left_to_safety_job",
                &[
                    ("message_id", LogValue::Id(&id.to_string())),
                    (
                        "error",
                        LogValue::Text(&format!("the suppression list is unavailable: {e}")),
                    ),
                ],
            );
            return None;
        }
    };
    let (job, screened_states, held) =
        match screening::screen_job(env, &db, job, Vec::new(), &entries).await {
            Screened::Go(job, states, held) => (job, states, held),
            Screened::Settle(settlement) => {
                let answer = settlement
                    .record
                    .as_ref()
                    .map(|r| immediate_answer(&id, r.status, &r.recipients, None));
                let record_by = started + plan.record_by_ms;
                return finish(env, &db, &id, None, settlement, record_by, answer).await;
            }
            Screened::NotRecorded => return None,
        };
    let settings = &loaded.settings.delivery;
    let outgoing = Outgoing::new(job);

    let budget = (started + plan.deadline_ms).saturating_sub(now_ms());
    let attempt = with_timeout(deliver_recording(env, settings, &db, &[&outgoing]), budget).await;
    let Some(attempt) = attempt.and_then(|mut attempts| attempts.pop()) else {
        // Out of time (a write the upstream stopped reading, or an attempt
        // past `MAX_ATTEMPT_MS`): recipients whose final dot went out are
        // recorded `sending` and end `unknown`; the others were not sent.
        // The lease stays until it runs out; then the safety job settles.
        log::warn(
            "immediate_delivery_out_of_time",
            &[("message_id", LogValue::Id(&id.to_string()))],
        );
        return None;
    };

    let policy = RetryPolicy::new(settings.retry);
    let settlement = settle(
        &outgoing.job,
        &screened_states,
        attempt,
        &policy,
        now_ms(),
        random::unit(),
        Carrier::SafetyJob,
    );
    let answer = settlement.record.as_ref().map(|r| {
        let recipients = [held.as_slice(), r.recipients.as_slice()].concat();
        immediate_answer(&id, r.status, &recipients, r.next_attempt_at)
    });
    let record_by = started + plan.record_by_ms;
    finish(
        env,
        &db,
        &id,
        Some(&outgoing.job),
        settlement,
        record_by,
        answer,
    )
    .await
}

/// Records the settlement (with the events of the stream it emits, given the
/// job whose attempt it settles) and releases the lease by `record_by_ms`
/// (the plan's deadline for it, Unix ms); then the answer, or `None` (the
/// safety job settles once the lease runs out).
async fn finish(
    env: &Env,
    db: &Db,
    id: &str,
    job: Option<&DeliveryJob>,
    settlement: Settlement,
    record_by_ms: u64,
    answer: Option<(u16, serde_json::Value)>,
) -> Option<(u16, serde_json::Value)> {
    // The record and the release must be done before the lease can run out.
    let recorded = async {
        let executed = match job {
            Some(job) => execute_for(env, db, None, job, settlement).await,
            None => execute(env, db, None, settlement).await,
        };
        match executed {
            Executed::Done => {
                if let Err(e) = db.release_lease(id).await {
                    // The record is final, so the safety job finds nothing to do.
                    log::warn(
                        "could_not_release_a_lease",
                        &[
                            ("message_id", LogValue::Id(id)),
                            ("error", LogValue::Text(&e.to_string())),
                        ],
                    );
                }
                true
            }
            Executed::NotRecorded => false,
        }
    };
    let budget = record_by_ms.saturating_sub(now_ms());
    if with_timeout(recorded, budget).await == Some(true) {
        return answer;
    }
    // The lease is kept: the safety job waits for it to run out, then
    // settles from the recipients recorded per transaction.
    log::warn(
        "immediate_outcome_not_recorded",
        &[("message_id", LogValue::Id(id))],
    );
    None
}
