//! `POST /v1/messages/batch`: each item accepted on its own through the
//! single-message path, one after another; the answer lists every item's
//! result (see [`crate::http::batch`] for the splitting and the shape).
//!
//! Owns: running the items in request order. Must not: judge or answer an item
//! itself, or let one item's refusal stop the others.

use serde_json::value::RawValue;
use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::batch::{self, BATCH_STATUS};

use super::platform::Loaded;
use super::{
    accept,
    http::{self, internal},
    templates,
};

/// Accepts the items of a batch (already split, see [`batch::split`]);
/// answers with how many of them were not accepted.
pub async fn accept_batch(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    items: Vec<&RawValue>,
    origin: Option<&str>,
) -> Result<(Response, u32), ApiError> {
    let mut outcomes = Vec::with_capacity(items.len());
    // One at a time: each item is a store and an enqueue, and the platform
    // caps simultaneous outgoing calls per invocation.
    for item in items {
        let outcome = match templates::fill_in(env, key, item.get().as_bytes()).await {
            Ok(body) => accept::accept_one(env, loaded, key, &body, origin).await,
            Err(e) => Err(e),
        };
        outcomes.push(outcome);
    }
    let refused = outcomes.iter().filter(|o| o.is_err()).count();
    let resp = http::json(BATCH_STATUS, &batch::response(&outcomes)).map_err(internal)?;
    Ok((resp, u32::try_from(refused).unwrap_or(u32::MAX)))
}
