//! The reconciliation sweep, run by the cron trigger (`[triggers]` in
//! wrangler.toml): reads the messages not final whose next step is overdue,
//! and carries out what `delivery::recovery::sweep` says for each: its stored
//! job back on the queue, or its status corrected from its recipients. It
//! also sends the webhook deliveries that are due but have no queue message
//! (see `email_events::dispatch_due`), runs the reputation guard's review
//! (`reputation::review`), the sending domains' re-verification
//! (`domains::recheck`) and the retention purge (`privacy::purge`),
//! whatever the sweep found.
//!
//! A re-enqueued message (or one it cannot help) is marked due now, so the
//! next run leaves it alone for another grace period while its job waits on
//! the queue, and a message it cannot help never blocks the others. A re-enqueued
//! job that meets a late original is harmless: both go through
//! the consumer's delivery lease and recipient records, so at most one
//! delivers and nothing recorded is sent again.
//! Must not: decide what is overdue or what a message needs.

use worker::Env;

use crate::delivery::recovery::{SweepAction, overdue_before, sweep};
use crate::events::log_line::LogValue;

use super::d1::Db;
use crate::events::retention::RetentionSettings;

use super::log;
use super::platform::{Loaded, load, now_ms};
use super::{domains, email_events, lifecycle, privacy, queue_writer, reputation};

/// One sweep run; what it did goes to the log.
pub async fn run(env: &Env) {
    let loaded = match load(env) {
        Ok(l) => l,
        Err(e) => {
            log::error_because("sweep_skipped", &e);
            return;
        }
    };
    let db = match Db::open(env) {
        Ok(db) => db,
        Err(e) => {
            log::error_because("sweep_skipped", &e);
            return;
        }
    };
    // Webhook deliveries whose queue message was never sent, or was lost.
    email_events::dispatch_due(env, &db).await;
    recover(env, &db, &loaded).await;
    reputation::review(env, &db, &loaded).await;
    domains::recheck(env, &db, &loaded).await;
    privacy::purge(env, &db, retention(&loaded)).await;
}

/// The retention settings; a diagnostics build's `TEST_RETENTION_SECONDS`
/// replaces the period.
fn retention(loaded: &Loaded) -> RetentionSettings {
    let settings = loaded.settings.retention;
    #[cfg(feature = "diagnostics")]
    if let Some(seconds) = loaded.diagnostics.retention_seconds {
        return settings.with_period_ms(seconds.saturating_mul(1000));
    }
    settings
}

/// Re-enqueues or corrects the messages whose next step is overdue.
async fn recover(env: &Env, db: &Db, loaded: &Loaded) {
    let settings = loaded.settings.delivery.recovery;
    let now = now_ms();
    let rows = match db
        .sweep_candidates(overdue_before(&settings, now), now, settings.sweep_limit)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            log::error_because("sweep_could_not_read_messages", &e);
            return;
        }
    };
    if rows.is_empty() {
        return;
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let recorded = match db.recipient_states(&ids).await {
        Ok(r) => r,
        Err(e) => {
            log::error_because("sweep_could_not_read_recipients", &e);
            return;
        }
    };
    let (mut requeued, mut corrected, mut stuck) = (Vec::new(), 0, Vec::new());
    for action in sweep(&rows, &recorded, &settings, now) {
        match action {
            SweepAction::Requeue { id, body } => {
                match queue_writer::send_job(env, &body, None).await {
                    Ok(()) => requeued.push(id),
                    Err(e) => log::warn(
                        "sweep_could_not_requeue",
                        &[
                            ("message_id", LogValue::Id(&id)),
                            ("error", LogValue::Text(&e.to_string())),
                        ],
                    ),
                }
            }
            SweepAction::Correct(settlement) => {
                lifecycle::execute(env, db, None, settlement).await;
                corrected += 1;
            }
            SweepAction::Stuck { id, reason } => {
                log::error(
                    "sweep_cannot_recover",
                    &[
                        ("message_id", LogValue::Id(&id)),
                        ("reason", LogValue::Text(&reason.to_string())),
                    ],
                );
                stuck.push(id);
            }
        }
    }
    let swept: Vec<&str> = requeued.iter().chain(&stuck).map(String::as_str).collect();
    if let Err(e) = db.mark_swept(&swept, now / 1000).await {
        log::warn_because("sweep_could_not_reschedule_what_it_found", &e);
    }
    // Anything found here is a job that was lost or a record that was
    // wrong: worth the operator's attention.
    log::warn(
        "sweep_done",
        &[
            ("requeued", LogValue::Num(requeued.len() as u64)),
            ("corrected", LogValue::Num(corrected as u64)),
            ("stuck", LogValue::Num(stuck.len() as u64)),
        ],
    );
}
