//! Shaping per upstream at the edge: the `Shaper` Durable Object, and the
//! calls a session makes to it.
//!
//! One object per limited upstream (named by `delivery::shaping::shaper_name`),
//! so the platform runs one upstream's calls one at a time, whichever
//! consumer invocation makes them: the object reads its state, applies
//! `delivery::shaping::Shaper::apply` at its own clock and stores the result
//! before it answers, with no await in between that would let another call
//! in. An upstream without limits never calls it. When the object cannot be
//! reached, the session goes unshaped (mail keeps flowing; the upstream's
//! own throttling replies still slow it down) and the log says so.
//! Must not: decide what a grant allows or what a reply means; the core does.

use std::cell::RefCell;

use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, State, durable_object,
};

use crate::delivery::shaping::{
    Grant, Limits, RateChange, Shaper as Core, ShaperAnswer, ShaperCall, ShaperView, shaper_name,
};
use crate::events::log_line::LogValue;

use super::log;
use super::platform::{SHAPER, now_ms};

/// Where the state is kept in the object's storage.
const STATE: &str = "shaper";

#[durable_object]
pub struct Shaper {
    state: State,
    core: RefCell<Option<Core>>,
}

impl DurableObject for Shaper {
    fn new(state: State, _env: Env) -> Self {
        Shaper {
            state,
            core: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Ok(call) = req.json::<ShaperCall>().await else {
            return Response::error("not a shaper call", 400);
        };
        let known = self.core.borrow().clone();
        let mut core = match known {
            Some(c) => c,
            // Storage reads hold every other call back until they return.
            None => self
                .state
                .storage()
                .get::<Core>(STATE)
                .await?
                .unwrap_or_default(),
        };
        let answer = core.apply(&call, now_ms());
        *self.core.borrow_mut() = Some(core.clone());
        // The answer leaves only once the write is durable.
        self.state.storage().put(STATE, &core).await?;
        Response::from_json(&answer)
    }
}

async fn call(env: &Env, label: &str, call: &ShaperCall) -> Result<ShaperAnswer> {
    let stub = env
        .durable_object(SHAPER)?
        .id_from_name(&shaper_name(label))?
        .get_stub()?;
    let body = serde_json::to_string(call)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://shaper.invalid/", &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "status {}",
            resp.status_code()
        )));
    }
    resp.json::<ShaperAnswer>().await
}

/// Asks for a session's place and schedule; unreachable: everything goes.
pub async fn grant(env: &Env, label: &str, limits: Limits, lease: &str, wanted: u32) -> Grant {
    let asked = ShaperCall::Grant {
        limits,
        lease: lease.to_string(),
        wanted,
    };
    match call(env, label, &asked).await {
        Ok(ShaperAnswer::Grant(g)) => g,
        Ok(ShaperAnswer::View(_)) => Grant::all(wanted),
        Err(e) => {
            log::warn_because("upstream_shaper_unavailable", &e);
            Grant::all(wanted)
        }
    }
}

/// What a session came to: frees its place and adapts the rate.
pub async fn report(env: &Env, label: &str, limits: Limits, lease: &str, ended: Ended) {
    let told = ShaperCall::Report {
        limits,
        lease: lease.to_string(),
        accepted: ended.accepted,
        returned: ended.returned,
        throttled: ended.throttled,
    };
    match call(env, label, &told).await {
        Ok(ShaperAnswer::View(v)) => match v.change {
            Some(RateChange::Slowed { rate, ceiling }) => log::warn(
                "upstream_slowed",
                &[
                    ("upstream", LogValue::Id(label)),
                    ("rate", LogValue::Text(&format!("{rate}"))),
                    ("ceiling", LogValue::Text(&format!("{ceiling}"))),
                ],
            ),
            Some(RateChange::Recovered { rate }) => log::info(
                "upstream_recovered",
                &[
                    ("upstream", LogValue::Id(label)),
                    ("rate", LogValue::Text(&format!("{rate}"))),
                ],
            ),
            None => {}
        },
        Ok(ShaperAnswer::Grant(_)) => {}
        Err(e) => log::warn_because("upstream_shaper_unavailable", &e),
    }
}

/// A session's end, as the shaper counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    pub accepted: u32,
    pub returned: u32,
    pub throttled: bool,
}

/// The shaper's state for the health API; `None` when unreachable.
pub async fn view(env: &Env, label: &str, limits: Limits) -> Option<ShaperView> {
    match call(env, label, &ShaperCall::Show { limits }).await {
        Ok(ShaperAnswer::View(v)) => Some(v),
        Ok(ShaperAnswer::Grant(_)) => None,
        Err(e) => {
            log::warn_because("upstream_shaper_unavailable", &e);
            None
        }
    }
}
