//! Recording events of the stream: every stage that produces an
//! `EmailEvent` (delivery, suppression, unsubscribes) hands it here.
//!
//! `record` stores the events and, in the same D1 batch, one delivery row per
//! event and webhook endpoint that wants it (`events::webhooks::endpoint::fan_out`),
//! so an event is never stored without its deliveries. `publish` does the
//! same, then puts those deliveries on the webhooks queue at once (and each
//! event on the optional `EVENTS` queue); a delivery whose queue message was
//! never sent (`record` alone, or a failed send) is sent by
//! [`dispatch_due`], which the cron trigger runs.
//! Owns the one way events are written and fanned out. Must not: build
//! events (the core does) or decide which a stage emits.

use worker::{D1PreparedStatement, Env, Result};

use crate::events::EmailEvent;
use crate::events::log_line::LogValue;
use crate::events::webhooks::WebhookTask;
use crate::events::webhooks::endpoint::fan_out;
use crate::events::webhooks::schedule::{DISPATCH_LIMIT, PENDING_GRACE_MS, REDISPATCH_GRACE_MS};

use super::d1::Db;
use super::log;
use super::platform::{load, now_ms};
use super::queue_writer;

/// Stores `events` with their webhook deliveries (nothing to do for none).
/// The deliveries wait for [`dispatch_due`]; use [`publish`] where the
/// environment is at hand to send them at once.
pub async fn record(db: &Db, events: &[EmailEvent]) -> Result<()> {
    store(db, events, Vec::new()).await.map(|_| ())
}

/// Stores `events` with their deliveries, then sends the deliveries to the
/// webhooks queue and the events to the `EVENTS` queue when it is bound.
/// Storing is what counts: a send that fails is retried by the sweep.
pub async fn publish(env: &Env, db: &Db, events: &[EmailEvent]) -> Result<()> {
    publish_with(env, db, events, Vec::new()).await
}

/// [`publish`], with `also` written in the same D1 batch as the events (a
/// count that moves with its event, in one round trip).
pub async fn publish_with(
    env: &Env,
    db: &Db,
    events: &[EmailEvent],
    also: Vec<D1PreparedStatement>,
) -> Result<()> {
    let tasks = store(db, events, also).await?;
    send_tasks(env, db, &tasks).await;
    let payloads = events.iter().map(EmailEvent::payload_json).collect();
    if let Err(e) = queue_writer::send_events(env, payloads).await {
        log::warn_because("could_not_send_events_to_the_events_queue", &e);
    }
    Ok(())
}

/// Sends the webhook deliveries that are due but have no queue message:
/// never sent (and older than `PENDING_GRACE_MS`), or overdue by more than
/// `REDISPATCH_GRACE_MS` (see `events::webhooks::schedule`).
pub async fn dispatch_due(env: &Env, db: &Db) {
    let now = now_ms();
    let due = db
        .due_deliveries(now, PENDING_GRACE_MS, REDISPATCH_GRACE_MS, DISPATCH_LIMIT)
        .await;
    match due {
        Ok(due) => {
            let tasks: Vec<WebhookTask> = due.iter().map(|d| d.task()).collect();
            send_tasks(env, db, &tasks).await;
        }
        Err(e) => log::error_because("could_not_read_due_webhook_deliveries", &e),
    }
}

async fn store(
    db: &Db,
    events: &[EmailEvent],
    also: Vec<D1PreparedStatement>,
) -> Result<Vec<WebhookTask>> {
    if events.is_empty() {
        db.run_batch(also).await?;
        return Ok(Vec::new());
    }
    let mut tenants: Vec<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let endpoints = db.enabled_endpoints_of(&tenants).await?;
    let tasks = fan_out(events, &endpoints);
    let mut statements = db.email_event_statements(events)?;
    statements.extend(db.delivery_statements(&tasks, now_ms())?);
    statements.extend(also);
    db.run_batch(statements).await?;
    Ok(tasks)
}

/// Sends tasks to the webhooks queue, in order, and notes them queued.
pub(crate) async fn send_tasks(env: &Env, db: &Db, tasks: &[WebhookTask]) {
    if tasks.is_empty() {
        return;
    }
    let loaded = match load(env) {
        Ok(l) => l,
        Err(e) => {
            log::error(
                "webhook_deliveries_wait_for_the_sweep",
                &[("error", LogValue::Text(&e.to_string()))],
            );
            return;
        }
    };
    let secrets = &loaded.settings.queue_secrets;
    // A queue batch takes at most 100 messages.
    for chunk in tasks.chunks(100) {
        let sealed = chunk.iter().map(|t| t.seal(secrets)).collect();
        match queue_writer::send_webhook_tasks(env, sealed, None).await {
            Ok(()) => {
                if let Err(e) = db.mark_queued(chunk, now_ms()).await {
                    log::warn_because("could_not_mark_webhook_deliveries_queued", &e);
                }
            }
            Err(e) => {
                log::warn_because("webhook_deliveries_left_to_the_sweep", &e);
                return;
            }
        }
    }
}
