//! The accept path: store, then enqueue, then answer 202. Nothing is accepted
//! until both have succeeded; if the enqueue fails the stored row is removed.
//! A body too large for a queue message is put in the bodies bucket first.
//! In immediate mode the row also gets its lease and the job is the message's
//! safety job (see `delivery::immediate`); the request then delivers it.

use std::cell::Cell;

use worker::{Env, MessageBuilder, Response};

use crate::accept::{ApiError, AuthenticatedKey, send};
use crate::delivery::immediate::{ImmediatePlan, plan};
use crate::diagnostics::accept_fault::{AcceptFault, AcceptStep};
use crate::http::delivery_mode::DeliveryMode;
use crate::queue::{DeliveryJob, QueueBody, place};

use super::d1::Db;
use super::platform::{JOBS_QUEUE, Loaded, now_ms};
use super::{
    bodies,
    http::{self, internal},
    random, signing,
};

pub async fn accept(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let id = accept_one(env, loaded, key, body).await?;
    http::json(202, &serde_json::json!({"id": id, "status": "queued"})).map_err(internal)
}

/// Validates, signs, stores and enqueues one send request; returns its id.
pub async fn accept_one(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<String, ApiError> {
    accept_with(env, loaded, key, body, DeliveryMode::Queued)
        .await
        .map(|a| a.job.id)
}

/// An accepted message: stored and enqueued.
pub struct Accepted {
    /// The job with its body in place, whatever was enqueued.
    pub job: DeliveryJob,
    /// Immediate mode: when the request started and what it may take.
    pub immediate: Option<(u64, ImmediatePlan)>,
}

/// [`accept_one`] in either mode.
pub async fn accept_with(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    mode: DeliveryMode,
) -> Result<Accepted, ApiError> {
    let now = now_ms();
    let entropy = random::bytes::<32>();
    let prepared = send::prepare(body, key, &loaded.settings, now / 1000, &entropy)?;
    let whole = signing::sign(prepared, &loaded.settings).await?;
    let immediate = match mode {
        DeliveryMode::Queued => None,
        DeliveryMode::Immediate => {
            Some((now, plan(&loaded.settings.delivery, whole.rcpt_to.len())))
        }
    };
    let placed = place(DeliveryJob {
        safety_net: immediate.is_some(),
        ..whole.clone()
    });
    let job = placed.job;
    if let Some(external) = &placed.external {
        bodies::store(env, external)
            .await
            .map_err(|e| ApiError::unavailable(format!("could not store the message body: {e}")))?;
    }

    let store = Db::open(env).map_err(internal)?;
    let stored = match injected_fault(env, AcceptStep::Store) {
        Some(e) => Err(e),
        None => {
            store
                .insert_accepted(&job.id, &job.key_id, &job.mail_from, &job.rcpt_to, now)
                .await
        }
    };
    if let Err(e) = stored {
        bodies::release(env, job.body_ref.as_deref()).await;
        return Err(ApiError::unavailable(format!(
            "could not store the message: {e}"
        )));
    }

    let id = job.id.clone();
    if let Some((started, plan)) = immediate {
        let leased = store.take_lease(&id, started + plan.lease_ms).await;
        if let Err(e) = leased {
            let _ = store.delete(&id).await;
            bodies::release(env, job.body_ref.as_deref()).await;
            return Err(ApiError::unavailable(format!(
                "could not store the message: {e}"
            )));
        }
    }
    tag(env, &id, &job.tags).await;
    let mut message = MessageBuilder::new(QueueBody::deliver(job.clone()).to_json());
    if let Some((_, plan)) = immediate {
        message = message.delay_seconds(plan.safety_delay_seconds);
    }
    let sent = match (
        injected_fault(env, AcceptStep::Enqueue),
        env.queue(JOBS_QUEUE),
    ) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(queue)) => queue.send(message.build()).await,
    };
    if let Err(e) = sent {
        // Best effort: if this fails too, the row stays "queued" with no job,
        // and the caller, who got an error, retries with a fresh id.
        let _ = store.delete(&id).await;
        if immediate.is_some() {
            let _ = store.release_lease(&id).await;
        }
        bodies::release(env, job.body_ref.as_deref()).await;
        return Err(ApiError::unavailable(format!(
            "could not enqueue the message: {e}"
        )));
    }
    Ok(Accepted {
        job: DeliveryJob {
            body_ref: job.body_ref,
            ..whole
        },
        immediate,
    })
}

thread_local! {
    /// Faults injected so far in this isolate (`FAULT_ACCEPT=step:N`).
    static FAULTS_INJECTED: Cell<u32> = const { Cell::new(0) };
}

/// Tests only: the error `FAULT_ACCEPT` makes this step fail with, if any.
fn injected_fault(env: &Env, step: AcceptStep) -> Option<worker::Error> {
    let fault = env
        .var("FAULT_ACCEPT")
        .ok()
        .and_then(|v| AcceptFault::parse(&v.to_string()))?;
    let injected = FAULTS_INJECTED.with(Cell::get);
    if !fault.strikes(step, injected) {
        return None;
    }
    FAULTS_INJECTED.with(|c| c.set(injected + 1));
    Some(worker::Error::RustError(format!(
        "FAULT_ACCEPT: injected {step:?} failure"
    )))
}

/// Stores the request's tags for `GET /v1/messages?tag=`. Tags are metadata:
/// failing to store them does not refuse the message.
async fn tag(env: &Env, id: &str, tags: &[crate::message::Tag]) {
    // The validated tags, not a second parse of the request body.
    if let (Some(tags), Ok(db)) = (crate::http::listing::tags_json(tags), Db::open(env)) {
        let _ = db.annotate(id, Some(&tags), None).await;
    }
}
