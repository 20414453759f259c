//! `/v1/webhooks`: a tenant's endpoints (create, list, read, delete), secret
//! rotation, test events and the attempts list.
//!
//! Every call reads and writes only the caller's tenant's rows: another
//! tenant's endpoint is indistinguishable from a missing one. New secrets and
//! ids come from the runtime's CSPRNG; a source that fails refuses the call
//! rather than mint a weak secret.
//! Must not: decide what a request may hold or how an answer looks
//! (`http::webhooks`), or which URLs are allowed (`events::webhooks::url_policy`).

use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::webhooks::WebhookTask;
use crate::events::webhooks::endpoint::ROTATION_GRACE_MS;
use crate::events::webhooks::signing::{SECRET_BYTES, SigningSecret};
use crate::events::webhooks::test_event::test_payload;
use crate::http::webhooks::{
    MAX_ENDPOINTS_PER_TENANT, attempts_page, created_view, endpoint_view, parse_attempts_query,
    parse_create, parse_test, rotated_view,
};

use super::d1::Db;
use super::email_events::send_tasks;
use super::http::{self, internal};
use super::platform::{Loaded, now_ms};
use super::random;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no webhook endpoint {id} for this key"))
}

/// A new secret, or 503 if the CSPRNG failed.
fn new_secret() -> Result<SigningSecret, ApiError> {
    random::secret::<SECRET_BYTES>()
        .map(SigningSecret::from_random)
        .ok_or_else(|| ApiError::unavailable("no randomness for a secret; try again"))
}

fn new_id(prefix: &str) -> Result<String, ApiError> {
    let bytes = random::secret::<16>()
        .ok_or_else(|| ApiError::unavailable("no randomness for an id; try again"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{prefix}{hex}"))
}

pub async fn create(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let endpoint = parse_create(body, loaded.settings.webhooks.allow_local_urls)?;
    let db = Db::open(env).map_err(internal)?;
    let existing = db.endpoints_of(&key.tenant).await.map_err(internal)?;
    if existing.len() >= MAX_ENDPOINTS_PER_TENANT {
        return Err(ApiError::conflict(
            "too_many_endpoints",
            "url",
            format!("a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints"),
        ));
    }
    let id = new_id("wh_")?;
    let secret = new_secret()?.reveal();
    db.insert_endpoint(&id, &key.tenant, &endpoint, &secret, now_ms())
        .await
        .map_err(internal)?;
    let row = db
        .endpoint(&key.tenant, &id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::unavailable("the new endpoint could not be read back"))?;
    http::json(201, &created_view(&row)).map_err(internal)
}

pub async fn list(env: &Env, key: &AuthenticatedKey) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let rows = db.endpoints_of(&key.tenant).await.map_err(internal)?;
    let data: Vec<_> = rows.iter().map(endpoint_view).collect();
    http::json(200, &serde_json::json!({ "data": data })).map_err(internal)
}

pub async fn get(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    match db.endpoint(&key.tenant, id).await.map_err(internal)? {
        Some(row) => http::json(200, &endpoint_view(&row)).map_err(internal),
        None => Err(not_found(id)),
    }
}

pub async fn delete(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    if db
        .delete_endpoint(&key.tenant, id)
        .await
        .map_err(internal)?
    {
        http::json(200, &serde_json::json!({ "id": id, "deleted": true })).map_err(internal)
    } else {
        Err(not_found(id))
    }
}

pub async fn rotate(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let secret = new_secret()?.reveal();
    let now = now_ms();
    let until = now + ROTATION_GRACE_MS;
    if db
        .rotate_endpoint_secret(&key.tenant, id, &secret, until, now)
        .await
        .map_err(internal)?
    {
        http::json(200, &rotated_view(id, &secret, until)).map_err(internal)
    } else {
        Err(not_found(id))
    }
}

/// Queues a test event to the endpoint, through the same path as real ones
/// (signed, retried, its attempts listed); answers 202 with the event's id.
pub async fn test(
    env: &Env,
    key: &AuthenticatedKey,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let event_type = parse_test(body)?;
    let db = Db::open(env).map_err(internal)?;
    let Some(endpoint) = db.endpoint(&key.tenant, id).await.map_err(internal)? else {
        return Err(not_found(id));
    };
    if !endpoint.is_enabled() {
        return Err(ApiError::conflict(
            "endpoint_disabled",
            "id",
            "the endpoint is disabled; create it again to receive events",
        ));
    }
    let event_id = new_id("evt_test_")?;
    let task = WebhookTask {
        endpoint_id: endpoint.id.clone(),
        tenant: key.tenant.clone(),
        event_id: event_id.clone(),
        event_type: event_type.as_str().to_string(),
        payload: test_payload(event_type, now_ms()),
        attempt: 0,
    };
    let tasks = [task];
    db.run_batch(db.delivery_statements(&tasks, now_ms()).map_err(internal)?)
        .await
        .map_err(internal)?;
    send_tasks(env, &db, &tasks).await;
    http::json(
        202,
        &serde_json::json!({ "id": event_id, "type": event_type.as_str() }),
    )
    .map_err(internal)
}

pub async fn attempts(
    env: &Env,
    key: &AuthenticatedKey,
    id: &str,
    url: &worker::Url,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = parse_attempts_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let db = Db::open(env).map_err(internal)?;
    if db
        .endpoint(&key.tenant, id)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(not_found(id));
    }
    let rows = db
        .webhook_attempts(&key.tenant, id, query.before, query.limit)
        .await
        .map_err(internal)?;
    http::json(200, &attempts_page(rows, query.limit)).map_err(internal)
}
