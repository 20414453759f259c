//! Screening jobs against their tenants' suppression lists, before any body
//! is read and any upstream sees an address: the queue consumer and
//! immediate deliveries both screen here, so their records are the same.
//!
//! For each job with a held recipient, in this order: its `email.suppressed`
//! events (`email_events::publish`: stored, and queued to webhooks), then its recipients' rows and timeline
//! events, or, when none is left to send to, the settlement that ends it.
//! Events first: a death in between records them again on the redelivery
//! (events are delivered at least once), never not at all.
//! Must not: decide which recipient is held (`delivery::screen` does).

use worker::Env;

use crate::delivery::Settlement;
use crate::delivery::recipients::with_results;
use crate::delivery::screen::{Held, email_events, held_record, lookups, screen, settle_all_held};
use crate::delivery::{RecipientResult, RecipientState};
use crate::events::log_line::LogValue;
use crate::events::suppression::Entry;
use crate::queue::DeliveryJob;

use super::d1::Db;
use super::email_events;
use super::log;
use super::platform::now_ms;
use super::random;

/// Recipients' recorded states.
pub(crate) type States = Vec<(String, RecipientState)>;

/// What becomes of one screened job.
pub(crate) enum Screened {
    /// Deliver it to the recipients left (all of them when none is held):
    /// the job, the recorded states with the held ones, and their rows.
    Go(DeliveryJob, States, Vec<RecipientResult>),
    /// None is left: carry out this settlement instead of an attempt.
    Settle(Settlement),
    /// The held recipients could not be recorded: deliver nothing now.
    NotRecorded,
}

/// The suppression entries for every recipient of `jobs`, in one query.
pub(crate) async fn entries_for(db: &Db, jobs: &[&DeliveryJob]) -> worker::Result<Vec<Entry>> {
    db.suppression_entries(&lookups(jobs)).await
}

/// Screens one job against `entries` (see [`entries_for`]) and records what
/// it held back.
pub(crate) async fn screen_job(
    env: &Env,
    db: &Db,
    job: DeliveryJob,
    mut states: States,
    entries: &[Entry],
) -> Screened {
    let now = now_ms();
    let screened = screen(&job, entries, now);
    if screened.held.is_empty() {
        return Screened::Go(job, states, Vec::new());
    }
    if !record_events(env, db, &job, &screened.held, now).await {
        return Screened::NotRecorded;
    }
    if screened.rcpt_to.is_empty() {
        return Screened::Settle(settle_all_held(&job, &states, &screened.held));
    }
    let (results, events) = held_record(&screened.held);
    if let Err(e) = db.record_held(&job.id, &results, &events, now).await {
        log::error(
            "could_not_record_suppressed_recipients",
            &[
                ("message_id", LogValue::Id(&job.id)),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
        return Screened::NotRecorded;
    }
    with_results(&mut states, results.clone());
    Screened::Go(
        DeliveryJob {
            rcpt_to: screened.rcpt_to,
            ..job
        },
        states,
        results,
    )
}

async fn record_events(env: &Env, db: &Db, job: &DeliveryJob, held: &[Held], now: u64) -> bool {
    let events = email_events(job, held, now, &mut random::bytes::<16>);
    match email_events::publish(env, db, &events).await {
        Ok(()) => true,
        Err(e) => {
            log::error(
                "could_not_record_suppression_events",
                &[
                    ("message_id", LogValue::Id(&job.id)),
                    ("error", LogValue::Text(&e.to_string())),
                ],
            );
            false
        }
    }
}
