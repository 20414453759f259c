//! `POST /v1/messages/batch`: each item accepted on its own through the
//! single-message path, one after another; the answer lists every item's
//! result (see [`crate::http::batch`] for the splitting and the shape).
//!
//! Owns: running the items in request order. Must not: judge or answer an item
//! itself, or let one item's refusal stop the others.

use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::batch::{self, BATCH_STATUS};

use super::platform::Loaded;
use super::{
    accept,
    http::{self, internal},
};

pub async fn accept_batch(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let items = batch::split(body)?;
    let mut outcomes = Vec::with_capacity(items.len());
    // One at a time: each item is a store and an enqueue, and the platform
    // caps simultaneous outgoing calls per invocation.
    for item in items {
        outcomes.push(accept::accept_one(env, loaded, key, item.get().as_bytes(), origin).await);
    }
    http::json(BATCH_STATUS, &batch::response(&outcomes)).map_err(internal)
}
