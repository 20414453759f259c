//! Secret API keys at the edge: authenticating a request (the `API_KEYS`
//! secret first, then one D1 read for a key issued through `/v1/keys`) and
//! checking the scope its route needs; and `/v1/keys` (issue, list, read,
//! revoke, rotate).
//!
//! Keys of `API_KEYS` are compared in constant time over every digest and
//! cost no D1 read; only a key of the issued form that matches none of
//! them is looked up by its digest (see `accept::issued_keys` on why that
//! lookup is no timing oracle). Nothing is cached, so a revoked key is
//! refused by the next request. New keys and ids come from the runtime's
//! CSPRNG; a source that fails refuses the call rather than mint a weak key.
//! Must not: decide what a key may hold or which scope a route needs
//! (`accept::issued_keys`, `http::routes`), or log a key.

use worker::{Env, Request, Response};

use crate::accept::issued_keys::{
    self, ID_BYTES, IssuedKeyRow, KEY_BYTES, MAX_KEYS_PER_TENANT, MAX_LISTED_KEYS, new_id, new_key,
    rotated_key_revoked_at,
};
use crate::accept::keys::{invalid_api_key, require_scope};
use crate::accept::{ApiError, AuthenticatedKey, Lookup, Scope};
use crate::http::keys::{created_view, key_view, parse_create, parse_rotate, settings_key_view};

use super::d1::Db;
use super::d1::api_keys::Issue;
use super::http::{self, internal};
use super::platform::{Loaded, now_ms};
use super::random;

/// The key of a request's `Authorization` header, if it holds `scope`:
/// 401 for no key or an unknown or revoked one, 403 `insufficient_scope`
/// for a key without the scope.
pub async fn authorize(
    env: &Env,
    loaded: &Loaded,
    req: &Request,
    scope: Scope,
) -> Result<AuthenticatedKey, ApiError> {
    let authorization = req.headers().get("Authorization").ok().flatten();
    let key = match loaded.keys.lookup(authorization.as_deref())? {
        Lookup::Found(key) => key,
        Lookup::Issued { sha256 } => {
            let db = Db::open(env).map_err(internal)?;
            let now = now_ms();
            db.issued_key_by_digest(&sha256, now)
                .await
                .map_err(internal)?
                .and_then(|row| row.authenticated(now))
                .ok_or_else(invalid_api_key)?
        }
    };
    require_scope(&key, scope)?;
    Ok(key)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no API key {id} for this tenant"))
}

fn unreadable(id: &str) -> ApiError {
    ApiError::unavailable(format!("the API key {id} could not be read back"))
}

/// 409 for a key of `API_KEYS` of the caller's tenant, which the API may
/// read but not change.
fn refuse_settings_key(loaded: &Loaded, key: &AuthenticatedKey, id: &str) -> Result<(), ApiError> {
    if settings_key(loaded, key, id).is_some() {
        return Err(ApiError::conflict(
            "settings_key",
            "id",
            format!(
                "{id} is a key of the API_KEYS secret: change or remove it there and redeploy; the API revokes and rotates only keys it issued"
            ),
        ));
    }
    Ok(())
}

fn settings_key<'a>(
    loaded: &'a Loaded,
    key: &AuthenticatedKey,
    id: &str,
) -> Option<&'a crate::accept::ApiKeyRecord> {
    loaded
        .settings
        .accept
        .api_keys
        .iter()
        .find(|r| r.id == id && r.tenant() == key.tenant)
}

fn new_secret() -> Result<(String, issued_keys::NewKey), ApiError> {
    let id = random::secret::<ID_BYTES>()
        .ok_or_else(|| ApiError::unavailable("no randomness for a key id; try again"))?;
    let key = random::secret::<KEY_BYTES>()
        .ok_or_else(|| ApiError::unavailable("no randomness for a key; try again"))?;
    Ok((new_id(&id), new_key(&key)))
}

fn answer(status: u16, row: &IssuedKeyRow, secret: Option<&str>) -> Result<Response, ApiError> {
    let view = match secret {
        Some(secret) => created_view(row, secret),
        None => key_view(row),
    }
    .ok_or_else(|| unreadable(&row.id))?;
    http::json(status, &view).map_err(internal)
}

pub async fn create(env: &Env, key: &AuthenticatedKey, body: &[u8]) -> Result<Response, ApiError> {
    let grant = issued_keys::grant(parse_create(body)?, key)?;
    let db = Db::open(env).map_err(internal)?;
    let now = now_ms();
    if db
        .issued_keys_in_force(&key.tenant, now)
        .await
        .map_err(internal)?
        >= MAX_KEYS_PER_TENANT
    {
        return Err(ApiError::conflict(
            "too_many_keys",
            "name",
            format!(
                "a tenant may have at most {MAX_KEYS_PER_TENANT} issued keys in force; revoke one first"
            ),
        ));
    }
    let (id, new) = new_secret()?;
    let issue = Issue {
        id: &id,
        tenant: &key.tenant,
        key: &new,
        created_by: &key.id,
        now_ms: now,
    };
    db.insert_issued_key(&issue, &grant)
        .await
        .map_err(internal)?;
    let row = db
        .issued_key(&key.tenant, &id)
        .await
        .map_err(internal)?
        .ok_or_else(|| unreadable(&id))?;
    answer(201, &row, Some(&new.secret))
}

pub async fn list(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let rows = db
        .issued_keys_of(&key.tenant, MAX_LISTED_KEYS)
        .await
        .map_err(internal)?;
    let mut data: Vec<serde_json::Value> = rows.iter().filter_map(key_view).collect();
    data.extend(
        loaded
            .settings
            .accept
            .api_keys
            .iter()
            .filter(|r| r.tenant() == key.tenant)
            .map(settings_key_view),
    );
    http::json(200, &serde_json::json!({ "data": data })).map_err(internal)
}

pub async fn get(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    id: &str,
) -> Result<Response, ApiError> {
    if let Some(record) = settings_key(loaded, key, id) {
        return http::json(200, &settings_key_view(record)).map_err(internal);
    }
    let db = Db::open(env).map_err(internal)?;
    match db.issued_key(&key.tenant, id).await.map_err(internal)? {
        Some(row) => answer(200, &row, None),
        None => Err(not_found(id)),
    }
}

pub async fn revoke(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    id: &str,
) -> Result<Response, ApiError> {
    refuse_settings_key(loaded, key, id)?;
    let db = Db::open(env).map_err(internal)?;
    db.revoke_issued_key(&key.tenant, id, now_ms())
        .await
        .map_err(internal)?;
    match db.issued_key(&key.tenant, id).await.map_err(internal)? {
        Some(row) => answer(200, &row, None),
        None => Err(not_found(id)),
    }
}

pub async fn rotate(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let grace_seconds = parse_rotate(body)?;
    refuse_settings_key(loaded, key, id)?;
    let db = Db::open(env).map_err(internal)?;
    let now = now_ms();
    if db
        .issued_key(&key.tenant, id)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(not_found(id));
    }
    let (new_key_id, new) = new_secret()?;
    let issue = Issue {
        id: &new_key_id,
        tenant: &key.tenant,
        key: &new,
        created_by: &key.id,
        now_ms: now,
    };
    db.rotate_issued_key(id, &issue, rotated_key_revoked_at(now, grace_seconds))
        .await
        .map_err(internal)?;
    match db
        .issued_key(&key.tenant, &new_key_id)
        .await
        .map_err(internal)?
    {
        Some(row) => answer(201, &row, Some(&new.secret)),
        None => Err(ApiError::conflict(
            "key_revoked",
            "id",
            format!(
                "{id} is revoked or was rotated already; rotate its successor, or create a key"
            ),
        )),
    }
}

/// The ids of a tenant's issued keys, for erasure.
pub async fn issued_ids(env: &Env, tenant: &str) -> Result<Vec<String>, ApiError> {
    Db::open(env)
        .map_err(internal)?
        .issued_key_ids_of(tenant)
        .await
        .map_err(internal)
}
