//! The accept path: validate and sign, then commit (store, lease, enqueue;
//! see `accept::commit`), then answer. Nothing is accepted until the commit
//! has succeeded; when it fails the caller gets 503 and nothing remains.
//! In immediate mode the row also gets its lease and the job is the message's
//! safety job (see `delivery::immediate`); the request then delivers it.
//! A message sent as one copy per recipient (one-click unsubscribe) commits
//! every copy or none (`accept::commit::commit_copies`). A dry run
//! (`http::dry_run`) takes the same path up to the signed copies and answers
//! them instead of committing.
//! Must not: decide the order of the commit's steps or what undoing takes.

use worker::{Env, Response};

use crate::accept::commit::{Lease, Order};
use crate::accept::send::Signed;
use crate::accept::{ApiError, AuthenticatedKey, send};
use crate::delivery::immediate::{ImmediatePlan, plan};
use crate::http::accepted::{ACCEPTED, AcceptedIds};
use crate::http::delivery_mode::DeliveryMode;
use crate::http::dry_run;
use crate::queue::DeliveryJob;

use super::accept_ports::{self, AcceptPorts};
use super::platform::{Loaded, now_ms};
use super::{
    dns, domains,
    http::{self, internal},
    random, signing,
};

/// `?dry_run=true`: the same preparation and signing as [`accept_with`],
/// then the answer instead of the commit. Nothing is stored or enqueued.
pub async fn dry_run(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    call: Call<'_>,
) -> Result<Response, ApiError> {
    let signed = sign_request(env, loaded, key, body, now_ms(), call.origin).await?;
    call.mode.admits_copies(signed.jobs.len())?;
    let looked_up = match dry_run::dns_names(&signed) {
        Some((domain, names)) => {
            let answers = dns::txt_all(
                &loaded.settings.accept.dns_resolver_url,
                loaded.settings.accept.dns_wire_format,
                &names,
            )
            .await;
            Some((domain, answers))
        }
        None => None,
    };
    let dns = looked_up
        .as_ref()
        .map(|(domain, answers)| (domain.as_str(), answers.as_slice()));
    http::json(200, &dry_run::answer(&signed, dns)).map_err(internal)
}

/// Validates, composes and signs a send request at `now` (ms): what a real
/// send and a dry run share, up to the commit. A From domain with no key in
/// `DKIM_KEYS` may be one added through `/v1/domains`: its keys are opened
/// (once its RSA record has verified) and the request is prepared again
/// with them.
async fn sign_request(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    now: u64,
    origin: Option<&str>,
) -> Result<Signed, ApiError> {
    let entropy = random::bytes::<32>();
    // Tests compare a dry run with a real send composed at the same time
    // from the same entropy (`FIXED_ACCEPT`, diagnostics builds only).
    #[cfg(feature = "diagnostics")]
    let (now, entropy) = loaded
        .diagnostics
        .fixed_accept
        .map_or((now, entropy), |f| (f.now_ms, f.entropy));
    let prepared = prepare_request(env, loaded, key, body, now, &entropy, origin).await?;
    signing::sign_all(prepared, &loaded.settings.accept.send).await
}

/// Validates and composes a send request with the keys of its From domain:
/// those of `DKIM_KEYS`, else those of a domain added through `/v1/domains`
/// (once its RSA record has verified).
async fn prepare_request(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    now: u64,
    entropy: &[u8; 32],
    origin: Option<&str>,
) -> Result<send::Prepared, ApiError> {
    let send_settings = &loaded.settings.accept.send;
    match send::prepare_from(body, key, send_settings, now / 1000, entropy, origin) {
        Err(e) if e.rule == "domain_not_configured" => {
            let Some(domain) = send::from_domain(body, send_settings) else {
                return Err(e);
            };
            let Some(keys) = domains::signing_keys(env, loaded, &key.tenant, &domain).await? else {
                return Err(e);
            };
            send::prepare_with_keys(body, key, send_settings, keys, now / 1000, entropy, origin)
        }
        other => other,
    }
}

/// Validates and composes a send request as [`accept_with`] would, without
/// signing, storing or enqueueing it: what each message of a request that
/// makes several passes before any of them is accepted.
pub async fn check(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    origin: Option<&str>,
) -> Result<(), ApiError> {
    let entropy = random::bytes::<32>();
    prepare_request(env, loaded, key, body, now_ms(), &entropy, origin)
        .await
        .map(drop)
}

/// The accept path's compute for one send request, without any storage
/// call: validate, compose, sign, then place, serialize and seal each
/// copy's queue body and serialize the job its row stores. Returns the
/// copies and the bytes serialized. For `POST /bench/accept`.
#[cfg(feature = "diagnostics")]
pub async fn compute(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<(usize, usize), ApiError> {
    let signed = sign_request(env, loaded, key, body, now_ms(), None).await?;
    let copies = signed.jobs.len();
    let mut bytes = 0;
    for job in signed.jobs {
        let placed = crate::queue::place(job);
        let wire = crate::queue::QueueBody::deliver(placed.job.clone())
            .to_wire(&loaded.settings.queue_secrets);
        let stored = serde_json::to_string(&placed.job.for_queue())
            .map_err(|e| ApiError::misconfigured(e.to_string()))?;
        bytes += wire.len() + stored.len();
    }
    Ok((copies, bytes))
}

pub async fn accept(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let ids = accept_one(env, loaded, key, body, origin).await?;
    http::json(ACCEPTED, &ids.answer()).map_err(internal)
}

/// Validates, signs, stores and enqueues one send request; returns its id
/// (and its copies' ids when it went out as one copy per recipient).
pub async fn accept_one(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    origin: Option<&str>,
) -> Result<AcceptedIds, ApiError> {
    accept_with(env, loaded, key, body, DeliveryMode::Queued, origin)
        .await
        .map(|a| a.ids)
}

/// How a send came in: the delivery mode asked for, and the origin of the
/// request (for unsubscribe links when `UNSUBSCRIBE_BASE_URL` is unset).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub mode: DeliveryMode,
    pub origin: Option<&'a str>,
}

/// An accepted message: stored and enqueued.
pub struct Accepted {
    /// The job with its body in place, whatever was enqueued (the first
    /// copy's; immediate mode takes messages of one copy only).
    pub job: DeliveryJob,
    /// The message's id and its copies'.
    pub ids: AcceptedIds,
    /// Immediate mode: when the request started and what it may take.
    pub immediate: Option<(u64, ImmediatePlan)>,
}

/// [`accept_one`] in either mode. `origin` is where the request came in,
/// for unsubscribe links when `UNSUBSCRIBE_BASE_URL` is unset.
pub async fn accept_with(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    mode: DeliveryMode,
    origin: Option<&str>,
) -> Result<Accepted, ApiError> {
    let now = now_ms();
    let signed = sign_request(env, loaded, key, body, now, origin).await?;
    let ids = AcceptedIds {
        id: signed.id.clone(),
        copies: signed.copies(),
    };
    let warnings = signed.warnings;
    let send_at = signed.send_at;
    let immediate = match mode {
        DeliveryMode::Queued => None,
        DeliveryMode::Immediate => {
            mode.admits_copies(signed.jobs.len())?;
            if send_at.is_some() {
                return Err(ApiError::invalid_field(
                    "scheduled_at",
                    "immediate_not_scheduled",
                    "a scheduled message cannot be delivered immediately; drop `scheduled_at` or the immediate mode",
                ));
            }
            let recipients = signed.jobs.first().map_or(0, |j| j.rcpt_to.len());
            Some((now, plan(&loaded.settings.delivery, recipients)))
        }
    };
    let orders = signed
        .jobs
        .into_iter()
        .map(|job| Order {
            job,
            accepted_at_ms: now,
            lease: immediate.map(|(started, plan)| Lease {
                until_ms: started + plan.lease_ms,
                safety_delay_seconds: plan.safety_delay_seconds,
            }),
            // Shown in the status; the message is accepted without them.
            warnings: warnings.clone(),
            send_at,
        })
        .collect();
    let ports = AcceptPorts::new(env).map_err(internal)?;
    let mut jobs = accept_ports::commit_copies(&ports, loaded, orders).await?;
    let job = jobs
        .drain(..)
        .next()
        .ok_or_else(|| ApiError::misconfigured("no copy was accepted"))?;
    Ok(Accepted {
        job,
        ids,
        immediate,
    })
}
