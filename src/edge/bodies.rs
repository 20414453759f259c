//! Message bodies too large for a queue message, kept in the bodies bucket
//! (R2) from acceptance until the message reaches an end state.
//!
//! Owns the R2 calls: store, fetch (telling a missing body from one that cannot
//! be read now), release. Must not: decide which bodies go to R2 or under which
//! key ([`crate::queue::place`]), or when one is released (the settlement).

use worker::Env;

use crate::queue::{DeliveryJob, ExternalBody};

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
        worker::console_warn!("edgerelay: could not delete stored body {key}: {e}");
    }
}

/// What became of a job whose body had to be fetched.
pub enum Loaded {
    /// Ready to deliver: the job with its body in place.
    Ready(DeliveryJob),
    /// The body is gone: the message can never be delivered.
    Missing(String),
    /// The bucket could not be read now; try the message again later.
    Unavailable(String),
}

/// Puts a job's body back, fetching it from the bucket when it lives there.
pub async fn load(env: &Env, job: &DeliveryJob) -> Loaded {
    let Some(key) = &job.body_ref else {
        return Loaded::Ready(job.clone());
    };
    let object = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.get(key.as_str()).execute().await,
        Err(e) => Err(e),
    };
    let object = match object {
        Ok(Some(object)) => object,
        Ok(None) => return Loaded::Missing(format!("the stored body {key} does not exist")),
        Err(e) => return Loaded::Unavailable(format!("could not read {key}: {e}")),
    };
    let Some(body) = object.body() else {
        return Loaded::Missing(format!("the stored body {key} is empty"));
    };
    match body.text().await {
        Ok(mime) => Loaded::Ready(job.with_body(mime)),
        Err(e) => Loaded::Unavailable(format!("could not read {key}: {e}")),
    }
}
