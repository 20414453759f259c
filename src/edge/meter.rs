//! Per-key limits at the edge: the `Meter` Durable Object, and the calls a
//! request makes to it.
//!
//! One object per limited key (named by `accept::limits::meter_name`), so
//! the platform runs one key's calls one at a time: the object reads its
//! counts, applies `accept::quota::apply` at its own clock, and stores the
//! result before it answers, with no await in between that would let another
//! call in. Counts are kept in the object's storage (and in memory while it
//! lives), so they outlive an eviction. A key without limits never calls it.
//! When the object cannot be reached, the request fails closed: 503 with
//! `Retry-After`, nothing accepted.
//! Must not: decide what a call costs or what a refusal says; the core does.

use std::cell::RefCell;

use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, State, durable_object,
};

use crate::accept::limits::{self, Cost};
use crate::accept::quota::{Call, Counts, Decision, apply};
use crate::accept::{ApiError, AuthenticatedKey, KeyLimits};

use super::platform::{METER, now_ms};

/// Where the counts are kept in the object's storage.
const COUNTS: &str = "counts";

#[durable_object]
pub struct Meter {
    state: State,
    counts: RefCell<Option<Counts>>,
}

impl DurableObject for Meter {
    fn new(state: State, _env: Env) -> Self {
        Meter {
            state,
            counts: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Ok(call) = req.json::<Call>().await else {
            return Response::error("not a meter call", 400);
        };
        let known = self.counts.borrow().clone();
        let counts = match known {
            Some(c) => c,
            // Storage reads hold every other call back until they return.
            None => self
                .state
                .storage()
                .get::<Counts>(COUNTS)
                .await?
                .unwrap_or_default(),
        };
        let (next, decision) = apply(&counts, &call, now_ms());
        *self.counts.borrow_mut() = Some(next.clone());
        // The answer leaves only once the write is durable.
        self.state.storage().put(COUNTS, &next).await?;
        Response::from_json(&decision)
    }
}

/// Runs one call on the named meter. Any failure to reach it is a 503.
pub async fn call(env: &Env, name: &str, call: &Call) -> std::result::Result<Decision, ApiError> {
    let unreachable = |e: worker::Error| {
        worker::console_error!("edgerelay: the rate-limit meter is unavailable: {e}");
        let mut err = ApiError::unavailable("rate limits could not be checked; retry shortly");
        err.retry_after = Some(1);
        err
    };
    let stub = env
        .durable_object(METER)
        .and_then(|ns| ns.id_from_name(name)?.get_stub())
        .map_err(unreachable)?;
    let body = serde_json::to_string(call).map_err(|e| unreachable(e.into()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://meter.invalid/", &init).map_err(unreachable)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(unreachable)?;
    if resp.status_code() != 200 {
        return Err(unreachable(worker::Error::RustError(format!(
            "status {}",
            resp.status_code()
        ))));
    }
    resp.json::<Decision>().await.map_err(unreachable)
}

/// What one request charged its key's meter: for the headers of its answer,
/// and to give back messages it did not accept.
#[derive(Default)]
pub struct Usage {
    shown: Option<(KeyLimits, Decision)>,
    charged: Option<Charged>,
}

struct Charged {
    meter: String,
    limits: KeyLimits,
    at_ms: u64,
}

impl Usage {
    /// Charges `cost` to the key's meter; a refusal is the 429 to answer.
    /// A key without limits the call touches costs nothing here.
    pub async fn charge(
        &mut self,
        env: &Env,
        key: &AuthenticatedKey,
        cost: Cost,
    ) -> std::result::Result<(), ApiError> {
        let meter = limits::meter_name(&key.tenant, &key.id);
        self.charge_meter(env, meter, key.limits, cost).await
    }

    /// [`Usage::charge`] on a named meter with these limits.
    pub async fn charge_meter(
        &mut self,
        env: &Env,
        meter: String,
        key_limits: KeyLimits,
        cost: Cost,
    ) -> std::result::Result<(), ApiError> {
        let Some(c) = limits::charge(&key_limits, cost) else {
            return Ok(());
        };
        let decision = call(env, &meter, &c).await?;
        let refused = limits::refusal(&decision);
        if let Decision::Allowed { at_ms, .. } = &decision {
            self.charged = Some(Charged {
                meter,
                limits: key_limits,
                at_ms: *at_ms,
            });
        }
        self.shown = Some((key_limits, decision));
        refused.map_or(Ok(()), Err)
    }

    /// Gives back `messages` charged but not accepted. If the meter cannot
    /// be reached they stay counted (the safe side).
    pub async fn refund(&mut self, env: &Env, messages: u32) {
        let Some(charged) = &self.charged else {
            return;
        };
        let Some(c) = limits::refund(&charged.limits, messages, charged.at_ms) else {
            return;
        };
        match call(env, &charged.meter, &c).await {
            Ok(Decision::Allowed { quotas, .. }) => {
                if let Some((_, Decision::Allowed { quotas: shown, .. })) = &mut self.shown {
                    for q in quotas {
                        if let Some(s) = shown.iter_mut().find(|s| s.name == q.name) {
                            *s = q;
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("edgerelay: a refund stays counted: {}", e.message),
        }
    }

    /// Sets the rate-limit headers on the answer of a limited key.
    pub fn stamp(&self, resp: &mut Response) {
        let Some((limits, decision)) = &self.shown else {
            return;
        };
        for (name, value) in limits::headers(limits, decision) {
            let _ = resp.headers_mut().set(name, &value);
        }
    }
}

/// Whether an answer accepted what it was charged for.
pub fn accepted(answer: &std::result::Result<Response, ApiError>) -> bool {
    matches!(answer, Ok(resp) if resp.status_code() < 300)
}
