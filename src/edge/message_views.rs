//! `GET /v1/messages/{id}` and `GET /v1/messages`: what a key can see of its
//! tenant's messages. Another tenant's message is indistinguishable from a
//! missing one.
//!
//! Fetches the rows and hands them to `http::views`, which owns the shapes.
//! Must not: change anything; reading only.

use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::http::copies;
use crate::http::listing::parse_query;
use crate::http::views;

use super::d1::Db;
use super::http::{self, internal};

pub async fn detail(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let Some(message) = db.message(id, &key.tenant).await.map_err(internal)? else {
        // A message sent as one copy per recipient is its copies.
        if copies::is_parent_id(id) {
            let rows = db.copies(id, &key.tenant).await.map_err(internal)?;
            if !rows.is_empty() {
                return http::json(200, &copies::parent(id, &rows)).map_err(internal);
            }
        }
        return Err(ApiError::not_found(format!("no message {id} for this key")));
    };
    let events = db.events(id).await.map_err(internal)?;
    let recipients = db.recipients(id).await.map_err(internal)?;
    let email_events = db.email_events(id).await.map_err(internal)?;
    let stored = views::Stored {
        message: &message,
        events: &events,
        recipients: &recipients,
        email_events: &email_events,
    };
    http::json(200, &views::detail(&stored)).map_err(internal)
}

pub async fn list(
    env: &Env,
    key: &AuthenticatedKey,
    url: &worker::Url,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = parse_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let db = Db::open(env).map_err(internal)?;
    let rows = db.list(&key.tenant, &query).await.map_err(internal)?;
    http::json(200, &views::page(rows, query.limit)).map_err(internal)
}
