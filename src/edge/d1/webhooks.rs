//! Webhook endpoints, deliveries and attempts (`webhook_endpoints`,
//! `webhook_deliveries`, `webhook_attempts`).
//!
//! Every read and write the API makes names the caller's tenant, so one
//! tenant can neither see nor change another's endpoints or attempts. The
//! webhooks queue's consumer reads an endpoint by id alone: the task was
//! sealed by edgerelay for that endpoint.
//! Must not: decide which endpoint an event goes to (`events::webhooks::endpoint`)
//! or what an attempt's answer means (`events::webhooks::schedule`).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use crate::events::webhooks::WebhookTask;
use crate::events::webhooks::endpoint::{EndpointRow, EndpointStatus};
use crate::events::webhooks::schedule::DeliveryState;
use crate::http::webhooks::{AttemptRow, NewEndpoint};

use super::{Db, json_list, n, opt_n, opt_s, s};

const ENDPOINT_COLUMNS: &str = "id, tenant, url, description, events, secret, previous_secret, \
     previous_secret_expires_at, status, disabled_reason, created_at, updated_at";

/// One delivery waiting for its queue message.
#[derive(Debug, Clone, Deserialize)]
pub struct DueDelivery {
    pub endpoint_id: String,
    pub event_id: String,
    pub tenant: String,
    pub event_type: String,
    pub payload: String,
    pub attempts: f64,
}

impl DueDelivery {
    pub fn task(&self) -> WebhookTask {
        WebhookTask {
            endpoint_id: self.endpoint_id.clone(),
            tenant: self.tenant.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            attempt: self.attempts as u32,
        }
    }
}

/// What one attempt wrote: its row, and the delivery's new state.
pub struct AttemptRecord<'a> {
    pub task: &'a WebhookTask,
    /// 1 for the first.
    pub attempt: u32,
    pub at_ms: u64,
    pub status_code: Option<u16>,
    pub outcome: &'static str,
    /// The delivery row's new state.
    pub delivery_state: DeliveryState,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub next_attempt_at_ms: Option<u64>,
}

impl Db {
    /// Stores a new endpoint for `tenant`, enabled.
    pub async fn insert_endpoint(
        &self,
        id: &str,
        tenant: &str,
        endpoint: &NewEndpoint,
        secret: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.prepare(
            "INSERT INTO webhook_endpoints (id, tenant, url, description, events, secret, \
               status, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            &[
                s(id),
                s(tenant),
                s(&endpoint.url),
                opt_s(endpoint.description.as_deref()),
                s(&endpoint.events_json()),
                s(secret),
                s(EndpointStatus::Enabled.as_str()),
                n(now_ms),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// A tenant's endpoints, oldest first.
    pub async fn endpoints_of(&self, tenant: &str) -> Result<Vec<EndpointRow>> {
        self.prepare(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant = ?1 \
                 ORDER BY created_at, id"
            ),
            &[s(tenant)],
        )?
        .all()
        .await?
        .results::<EndpointRow>()
    }

    /// The enabled endpoints of any of `tenants`.
    pub async fn enabled_endpoints_of(&self, tenants: &[&str]) -> Result<Vec<EndpointRow>> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        self.prepare(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                 WHERE tenant IN (SELECT value FROM json_each(?1)) AND status = ?2 \
                 ORDER BY created_at, id"
            ),
            &[json_list(tenants), s(EndpointStatus::Enabled.as_str())],
        )?
        .all()
        .await?
        .results::<EndpointRow>()
    }

    /// One of a tenant's endpoints.
    pub async fn endpoint(&self, tenant: &str, id: &str) -> Result<Option<EndpointRow>> {
        self.prepare(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 AND tenant = ?2"
            ),
            &[s(id), s(tenant)],
        )?
        .first::<EndpointRow>(None)
        .await
    }

    /// An endpoint by id alone, for the webhooks queue's sealed tasks.
    pub async fn endpoint_for_task(&self, id: &str) -> Result<Option<EndpointRow>> {
        self.prepare(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1"),
            &[s(id)],
        )?
        .first::<EndpointRow>(None)
        .await
    }

    /// Deletes one of a tenant's endpoints with its pending deliveries;
    /// whether it existed. Its attempts go too: nothing can list them.
    pub async fn delete_endpoint(&self, tenant: &str, id: &str) -> Result<bool> {
        let deleted = self
            .prepare(
                "DELETE FROM webhook_endpoints WHERE id = ?1 AND tenant = ?2 RETURNING id",
                &[s(id), s(tenant)],
            )?
            .first::<serde_json::Value>(None)
            .await?;
        if deleted.is_some() {
            self.batch(vec![
                self.prepare(
                    "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                    &[s(id)],
                )?,
                self.prepare(
                    "DELETE FROM webhook_attempts WHERE endpoint_id = ?1",
                    &[s(id)],
                )?,
            ])
            .await?;
        }
        Ok(deleted.is_some())
    }

    /// Replaces an endpoint's secret; the old one keeps signing until
    /// `previous_until_ms`. Whether the endpoint exists for `tenant`.
    pub async fn rotate_endpoint_secret(
        &self,
        tenant: &str,
        id: &str,
        secret: &str,
        previous_until_ms: u64,
        now_ms: u64,
    ) -> Result<bool> {
        let rotated = self
            .prepare(
                "UPDATE webhook_endpoints SET previous_secret = secret, \
                   previous_secret_expires_at = ?3, secret = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND tenant = ?2 RETURNING id",
                &[s(id), s(tenant), n(previous_until_ms), s(secret), n(now_ms)],
            )?
            .first::<serde_json::Value>(None)
            .await?;
        Ok(rotated.is_some())
    }

    /// The statements that store one delivery row per task, waiting for its
    /// queue message; run in the same batch as the events they carry. A task
    /// stored already (the same event recorded twice) is left as it is.
    pub fn delivery_statements(
        &self,
        tasks: &[WebhookTask],
        now_ms: u64,
    ) -> Result<Vec<D1PreparedStatement>> {
        tasks
            .iter()
            .map(|t| {
                self.prepare(
                    "INSERT OR IGNORE INTO webhook_deliveries (endpoint_id, event_id, tenant, \
                       event_type, payload, state, attempts, next_attempt_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?7, 0, ?6, ?6, ?6)",
                    &[
                        s(&t.endpoint_id),
                        s(&t.event_id),
                        s(&t.tenant),
                        s(&t.event_type),
                        s(&t.payload),
                        n(now_ms),
                        s(DeliveryState::Pending.as_str()),
                    ],
                )
            })
            .collect()
    }

    /// Runs statements as one atomic batch.
    pub async fn run_batch(&self, statements: Vec<D1PreparedStatement>) -> Result<()> {
        self.batch(statements).await
    }

    /// Deliveries whose queue message is due but may not exist: pending ones
    /// (never sent to the queue) stored more than `pending_grace_ms` ago
    /// (younger ones may be on their way), and queued ones whose next attempt
    /// is more than `queued_grace_ms` late (a lost queue message), oldest first.
    pub async fn due_deliveries(
        &self,
        now_ms: u64,
        pending_grace_ms: u64,
        queued_grace_ms: u64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        self.prepare(
            "SELECT endpoint_id, event_id, tenant, event_type, payload, attempts \
             FROM webhook_deliveries \
             WHERE (state = ?4 AND next_attempt_at <= ?1) \
                OR (state = ?5 AND next_attempt_at <= ?2) \
             ORDER BY created_at LIMIT ?3",
            &[
                n(now_ms.saturating_sub(pending_grace_ms)),
                n(now_ms.saturating_sub(queued_grace_ms)),
                n(u64::from(limit)),
                s(DeliveryState::Pending.as_str()),
                s(DeliveryState::Queued.as_str()),
            ],
        )?
        .all()
        .await?
        .results::<DueDelivery>()
    }

    /// Notes that these tasks are on the queue, due at `due_ms`.
    pub async fn mark_queued(&self, tasks: &[WebhookTask], due_ms: u64) -> Result<()> {
        let statements = tasks
            .iter()
            .map(|t| {
                self.prepare(
                    "UPDATE webhook_deliveries SET state = ?5, next_attempt_at = ?3, \
                       updated_at = ?3 WHERE endpoint_id = ?1 AND event_id = ?2 \
                       AND state IN (?4, ?5)",
                    &[
                        s(&t.endpoint_id),
                        s(&t.event_id),
                        n(due_ms),
                        s(DeliveryState::Pending.as_str()),
                        s(DeliveryState::Queued.as_str()),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch(statements).await
    }

    /// Records one attempt and the delivery's new state, at once.
    pub async fn record_webhook_attempt(&self, r: &AttemptRecord<'_>) -> Result<()> {
        self.batch(vec![
            self.prepare(
                "INSERT INTO webhook_attempts (endpoint_id, tenant, event_id, event_type, attempt, \
                   at, status_code, outcome, error, duration_ms, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                &[
                    s(&r.task.endpoint_id),
                    s(&r.task.tenant),
                    s(&r.task.event_id),
                    s(&r.task.event_type),
                    n(u64::from(r.attempt)),
                    n(r.at_ms),
                    opt_n(r.status_code.map(u64::from)),
                    s(r.outcome),
                    opt_s(r.error.as_deref()),
                    n(r.duration_ms),
                    opt_n(r.next_attempt_at_ms),
                ],
            )?,
            self.prepare(
                "UPDATE webhook_deliveries SET state = ?3, attempts = ?4, next_attempt_at = ?5, \
                   updated_at = ?6 WHERE endpoint_id = ?1 AND event_id = ?2",
                &[
                    s(&r.task.endpoint_id),
                    s(&r.task.event_id),
                    s(r.delivery_state.as_str()),
                    n(u64::from(r.attempt)),
                    opt_n(r.next_attempt_at_ms),
                    n(r.at_ms),
                ],
            )?,
        ])
        .await
    }

    /// Disables an endpoint (it answered `410 Gone`), and drops what was
    /// still waiting to go to it.
    pub async fn disable_endpoint(&self, id: &str, reason: &str, now_ms: u64) -> Result<()> {
        self.batch(vec![
            self.prepare(
                "UPDATE webhook_endpoints SET status = ?2, disabled_reason = ?3, updated_at = ?4 \
                 WHERE id = ?1",
                &[
                    s(id),
                    s(EndpointStatus::Disabled.as_str()),
                    s(reason),
                    n(now_ms),
                ],
            )?,
            self.prepare(
                "UPDATE webhook_deliveries SET state = ?3, updated_at = ?2 \
                 WHERE endpoint_id = ?1 AND state IN (?4, ?5)",
                &[
                    s(id),
                    n(now_ms),
                    s(DeliveryState::EndpointDisabled.as_str()),
                    s(DeliveryState::Pending.as_str()),
                    s(DeliveryState::Queued.as_str()),
                ],
            )?,
        ])
        .await
    }

    /// One page of an endpoint's attempts, newest first, plus one extra row
    /// when another page follows. The endpoint must be `tenant`'s.
    pub async fn webhook_attempts(
        &self,
        tenant: &str,
        endpoint_id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AttemptRow>> {
        self.prepare(
            "SELECT seq, event_id, event_type, attempt, at, status_code, outcome, error, \
               duration_ms, next_attempt_at FROM webhook_attempts \
             WHERE endpoint_id = ?1 AND tenant = ?2 AND (?3 IS NULL OR seq < ?3) \
             ORDER BY seq DESC LIMIT ?4",
            &[
                s(endpoint_id),
                s(tenant),
                opt_n(before),
                n(u64::from(limit) + 1),
            ],
        )?
        .all()
        .await?
        .results::<AttemptRow>()
    }
}
