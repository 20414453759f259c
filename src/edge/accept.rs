//! The accept path: validate and sign, then commit (store, lease, enqueue;
//! see `accept::commit`), then answer. Nothing is accepted until the commit
//! has succeeded; when it fails the caller gets 503 and nothing remains.
//! In immediate mode the row also gets its lease and the job is the message's
//! safety job (see `delivery::immediate`); the request then delivers it.
//! Must not: decide the order of the commit's steps or what undoing takes.

use worker::{Env, Response};

use crate::accept::commit::{Lease, Order};
use crate::accept::{ApiError, AuthenticatedKey, send};
use crate::delivery::immediate::{ImmediatePlan, plan};
use crate::http::accepted::{ACCEPTED, queued};
use crate::http::delivery_mode::DeliveryMode;
use crate::queue::DeliveryJob;

use super::accept_ports::{self, AcceptPorts};
use super::platform::{Loaded, now_ms};
use super::{
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
    http::json(ACCEPTED, &queued(&id)).map_err(internal)
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
    let send_settings = &loaded.settings.accept.send;
    let prepared = send::prepare(body, key, send_settings, now / 1000, &entropy)?;
    let job = signing::sign(prepared, send_settings).await?;
    let immediate = match mode {
        DeliveryMode::Queued => None,
        DeliveryMode::Immediate => Some((now, plan(&loaded.settings.delivery, job.rcpt_to.len()))),
    };
    let order = Order {
        job,
        accepted_at_ms: now,
        lease: immediate.map(|(started, plan)| Lease {
            until_ms: started + plan.lease_ms,
            safety_delay_seconds: plan.safety_delay_seconds,
        }),
    };
    let ports = AcceptPorts::new(env).map_err(internal)?;
    let job = accept_ports::commit(&ports, loaded, order).await?;
    Ok(Accepted { job, immediate })
}
