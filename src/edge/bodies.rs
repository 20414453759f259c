//! Message bodies too large for a queue message, kept in the bodies bucket
//! (R2) from acceptance until the message reaches an end state.
//!
//! Owns the R2 calls: store, fetch (telling a missing body from one that cannot
//! be read now), release. Must not: decide which bodies go to R2 or under which
//! key ([`crate::queue::place`]), or when one is released (the settlement).

use futures_util::StreamExt;
use worker::Env;

use crate::delivery::Outgoing;
use crate::events::log_line::LogValue;
use crate::queue::{DeliveryJob, ExternalBody};

use super::log;
use super::platform::BODIES_BUCKET;

/// Stores a body before its job is enqueued.
pub async fn store(env: &Env, body: &ExternalBody) -> worker::Result<()> {
    env.bucket(BODIES_BUCKET)?
        .put(&body.key, body.mime.as_bytes().to_vec())
        .execute()
        .await?;
    Ok(())
}

/// Deletes a job's stored body, if it has one. Best effort: a leftover object
/// costs storage, never a wrong delivery, and a bucket lifecycle rule can
/// sweep what slips through.
pub async fn release(env: &Env, body_ref: Option<&str>) {
    let Some(key) = body_ref else {
        return;
    };
    let deleted = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.delete(key).await,
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        log::warn(
            "could_not_delete_a_stored_body",
            &[
                ("body_key", LogValue::Id(key)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
    }
}

/// What became of a job whose body had to be looked up.
pub enum Fetched<T> {
    /// Found: the body (or its size).
    Ready(T),
    /// The body is gone: the message can never be delivered.
    Missing(String),
    /// The bucket could not be read now; try the message again later.
    Unavailable(String),
}

/// The size of a job's body, from the object's metadata when it is kept in
/// the bucket (the body itself is not read).
pub async fn size(env: &Env, job: &DeliveryJob) -> Fetched<usize> {
    let Some(key) = &job.body_ref else {
        return Fetched::Ready(job.mime.len());
    };
    let object = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.head(key.as_str()).await,
        Err(e) => Err(e),
    };
    match object {
        Ok(Some(object)) => Fetched::Ready(usize::try_from(object.size()).unwrap_or(usize::MAX)),
        Ok(None) => Fetched::Missing(format!("the stored body {key} does not exist")),
        Err(e) => Fetched::Unavailable(format!("could not read {key}: {e}")),
    }
}

/// Puts a job's body back, fetching it from the bucket when it lives there.
/// The object is read as a stream into one buffer of its size, so a large
/// body is held once in the isolate, not once per layer it passes through.
pub async fn load(env: &Env, job: DeliveryJob) -> Fetched<Outgoing> {
    let Some(key) = job.body_ref.clone() else {
        return Fetched::Ready(Outgoing::new(job));
    };
    let object = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.get(key.as_str()).execute().await,
        Err(e) => Err(e),
    };
    let object = match object {
        Ok(Some(object)) => object,
        Ok(None) => return Fetched::Missing(format!("the stored body {key} does not exist")),
        Err(e) => return Fetched::Unavailable(format!("could not read {key}: {e}")),
    };
    let size = usize::try_from(object.size()).unwrap_or(0);
    let Some(body) = object.body() else {
        return Fetched::Missing(format!("the stored body {key} is empty"));
    };
    let mut stream = match body.stream() {
        Ok(stream) => stream,
        Err(e) => return Fetched::Unavailable(format!("could not read {key}: {e}")),
    };
    let mut message = Vec::with_capacity(size);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => message.extend_from_slice(&chunk),
            Err(e) => return Fetched::Unavailable(format!("could not read {key}: {e}")),
        }
    }
    Fetched::Ready(Outgoing::stored(job, message))
}
