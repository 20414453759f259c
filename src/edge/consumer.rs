//! The queue consumer: deliver a batch, then settle each message on its own
//! (ack, retry later, or dead-letter), so one bad message never re-sends the
//! others. Messages of the dead-letter queue are noted on their records.
//!
//! The order of a batch: classify each body (`delivery::dispatch`), refusing
//! jobs not sealed by edgerelay or not matching their stored message
//! (`provenance`); take in producers' messages (`producer_intake`); put
//! back the jobs of scheduled messages not due yet and claim the due ones
//! (`scheduling`, no attempt spent); check
//! immediate deliveries' safety jobs (`safety_net`); put back the marketing
//! jobs of tenants the reputation guard paused (`reputation`, no attempt
//! spent); take each message's
//! delivery lease (`delivery_lease`: one delivery at a time, no job without a
//! row); record stale in-flight recipients `unknown`, drop recipients already
//! recorded final and settle the jobs none is left of; hold back the
//! recipients on their tenants' suppression lists (`screening`) and settle
//! the jobs none is left of; then, group by group
//! (at most `delivery::plan::MAX_GROUP_BODY_BYTES` of bodies held at once),
//! fetch the bodies kept in the bucket, deliver and record (`lifecycle`),
//! settle (`delivery::settle`) and carry out each settlement; let go of the
//! leases. Retries are new queue messages carrying the attempt count and only
//! the recipients still pending, so a recipient that already accepted the
//! message is never sent it again by our own retries.
//!
//! Storage trouble (the settings, D1 or R2 unavailable) never spends the
//! platform's retries: the message's text is sent again with a delay
//! (`outage`, `delivery::outage`), so an outage shorter than a message's
//! lifetime delays messages but fails none.
//! Must not: decide anything; it runs the values the core returns.

use std::collections::HashMap;

use worker::{Env, MessageBatch, MessageExt};

use crate::delivery::dispatch::{
    DeadLetterItem, JobsItem, MISROUTED_DEAD_LETTER, dead_letter_item, jobs_item,
};
use crate::delivery::outage::{FromQueue, Trouble, queue_of};
use crate::delivery::plan::joins_group;
use crate::delivery::recipients::{stale_in_flight, still_to_deliver, with_results};
use crate::delivery::settings::DEFAULT_LIFETIME_SECONDS;
use crate::delivery::settle::{body_lost, dead_lettered, settle_recorded};
use crate::delivery::{Carrier, Outgoing, RecipientState, RetryPolicy, Settlement, settle};
use crate::events::log_line::LogValue;
use crate::events::reputation::holds;
use crate::queue::{DeliveryJob, QueueSecrets};

use super::bodies::{self, Fetched as Body};
use super::d1::Db;
use super::lifecycle::{self, Executed};
use super::log;
use super::outage::{InHand, Outage};
use super::platform::{Loaded, load, now_ms};
use super::screening::{self, Screened};
use super::{
    delivery_lease, producer_intake, provenance, queue_writer, random, reputation, safety_net,
    scheduling,
};

/// Recipients' recorded states, as `settle` reads them.
type States = Vec<(String, RecipientState)>;

/// A job to deliver, with its queue message and its recipients' recorded states.
type Pending = (InHand, DeliveryJob, States);

/// A job ready for a session: its body loaded and shared.
type Ready = (InHand, Outgoing, States);

pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    let messages: Vec<InHand> = batch.raw_iter().map(InHand::new).collect();
    let loaded = match load(&env) {
        Ok(l) => l,
        Err(e) => {
            // Nothing can be delivered with broken settings; keep every
            // message, without spending the platform's retries.
            log::error(
                "batch_retried_later",
                &[("error", LogValue::Text(&e.to_string()))],
            );
            for message in &messages {
                let outage = Outage {
                    queue: queue_of(&message.text),
                    lifetime_seconds: DEFAULT_LIFETIME_SECONDS,
                    secrets: None,
                };
                outage.meet(&env, message, Trouble::Settings).await;
            }
            return Ok(());
        }
    };
    let outage = Outage {
        queue: if batch.queue() == loaded.settings.dead_letter_queue_name {
            FromQueue::DeadLetters
        } else {
            FromQueue::Jobs
        },
        lifetime_seconds: loaded.settings.delivery.retry.lifetime_seconds,
        secrets: Some(&loaded.settings.queue_secrets),
    };
    let db = match Db::open_for_consumer(&env) {
        Ok(db) => db,
        Err(e) => {
            log::error_because("the_database_is_unavailable", &e);
            for message in &messages {
                outage.meet(&env, message, Trouble::Records).await;
            }
            return Ok(());
        }
    };
    if outage.queue == FromQueue::DeadLetters {
        record_dead_letters(&env, &db, &outage, &loaded.settings.queue_secrets, messages).await;
        return Ok(());
    }

    let secrets = &loaded.settings.queue_secrets;
    let mut sealed: Vec<(InHand, DeliveryJob)> = Vec::new();
    let mut work: Vec<(InHand, DeliveryJob)> = Vec::new();
    for message in messages {
        match jobs_item(&message.text, secrets) {
            JobsItem::Deliver(job) => sealed.push((message, job)),
            JobsItem::ProducerSend {
                producer,
                token,
                message: body,
            } => {
                let id = message.raw.id();
                let claim = producer_intake::Claim {
                    producer: &producer,
                    token: token.as_deref(),
                    message: &body,
                    raw_text: &message.text,
                };
                let taken = producer_intake::intake(&env, &loaded, &db, &id, claim).await;
                match taken {
                    Ok(producer_intake::Taken::Job(job)) => work.push((message, job)),
                    Ok(producer_intake::Taken::Settled) => message.raw.ack(),
                    Ok(producer_intake::Taken::Later(delay)) => {
                        // A new queue message: waiting spends no retries.
                        match queue_writer::resend(&env, outage.queue, &message.text, delay).await {
                            Ok(()) => message.raw.ack(),
                            Err(e) => {
                                log::error_because("could_not_put_back_a_producer_message", &e);
                                outage.meet(&env, &message, Trouble::Records).await;
                            }
                        }
                    }
                    Err(()) => outage.meet(&env, &message, Trouble::Records).await,
                }
            }
            JobsItem::Refuse(letter) => {
                queue_writer::dead_letter(&env, letter).await;
                message.raw.ack();
            }
            JobsItem::Forged(forgery) => {
                provenance::refuse_forged(&env, &db, forgery).await;
                message.raw.ack();
            }
            JobsItem::MisroutedDeadLetter(item) => {
                log::error(
                    "misrouted_dead_letter",
                    &[("detail", LogValue::Text(MISROUTED_DEAD_LETTER))],
                );
                record_dead_letter(&env, &db, &outage, &message, item).await;
            }
        }
    }
    // Sealed jobs must match their stored messages; producers' jobs were
    // stored just now.
    let (mut checked, unread) = provenance::screen(&env, &db, sealed).await;
    for message in &unread {
        outage.meet(&env, message, Trouble::Records).await;
    }
    checked.append(&mut work);
    // A scheduled message's job goes back until it is due, then claims it.
    let work = scheduling::screen(&env, &db, &outage, checked).await;
    // Safety jobs of immediate deliveries are checked before any body is read.
    let (work, unread) = safety_net::screen(&env, &loaded, &db, work).await;
    for message in &unread {
        outage.meet(&env, message, Trouble::Records).await;
    }
    // Marketing mail of a tenant the reputation guard paused waits.
    let work = hold_paused(&env, &loaded, &db, &outage, work).await;
    // One delivery per message at a time: nothing recorded is read before
    // the lease is held.
    let (work, held, unread) = delivery_lease::take(&env, &loaded, &db, work).await;
    for message in &unread {
        outage.meet(&env, message, Trouble::Records).await;
    }
    // So are the recorded recipients: a job with none left needs no body.
    let work = skip_recorded(&env, &db, &outage, work).await;
    // No upstream sees an address on its tenant's suppression list.
    let work = screen_suppressed(&env, &db, &outage, work).await;
    let mut delivered = Ok(());
    for group in groups(&env, &db, &outage, work).await {
        let ready = load_bodies(&env, &db, &outage, group).await;
        if !ready.is_empty() {
            delivered = deliver(&env, &loaded, &db, &outage, ready).await;
            if delivered.is_err() {
                break;
            }
        }
    }
    held.release(&db).await;
    delivered
}

/// Puts back the marketing jobs of tenants whose marketing the reputation
/// guard paused (`events::reputation::holds`): each goes back on the queue
/// as it came, after `REPUTATION_HOLD_SECONDS`, so it spends no attempt,
/// and its message shows `held` (and is due then, so the sweep leaves it be).
/// Without the guard's records, marketing jobs wait as in any storage
/// trouble; transactional jobs go on.
async fn hold_paused(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    outage: &Outage<'_>,
    work: Vec<(InHand, DeliveryJob)>,
) -> Vec<(InHand, DeliveryJob)> {
    let mut tenants: Vec<&str> = work
        .iter()
        .filter(|(_, job)| job.is_marketing())
        .map(|(_, job)| job.tenant())
        .collect();
    if tenants.is_empty() {
        return work;
    }
    tenants.sort_unstable();
    tenants.dedup();
    let paused = match reputation::paused(db, &tenants).await {
        Ok(paused) => paused,
        Err(e) => {
            log::error_because("could_not_read_the_reputation_guard", &e);
            let mut rest = Vec::with_capacity(work.len());
            for (message, job) in work {
                if job.is_marketing() {
                    outage.meet(env, &message, Trouble::Records).await;
                } else {
                    rest.push((message, job));
                }
            }
            return rest;
        }
    };
    if paused.is_empty() {
        return work;
    }
    let hold = loaded.settings.reputation.hold_seconds;
    let mut rest = Vec::with_capacity(work.len());
    let mut held: Vec<String> = Vec::new();
    for (message, job) in work {
        if !holds(&job, &paused) {
            rest.push((message, job));
            continue;
        }
        match queue_writer::resend(env, outage.queue, &message.text, hold).await {
            Ok(()) => {
                message.raw.ack();
                held.push(job.id);
            }
            Err(e) => {
                log::error_because("could_not_put_back_a_held_job", &e);
                outage.meet(env, &message, Trouble::Records).await;
            }
        }
    }
    let ids: Vec<&str> = held.iter().map(String::as_str).collect();
    let now = now_ms() / 1000;
    if let Err(e) = db.mark_held(&ids, now + u64::from(hold), now).await {
        log::warn_because("could_not_mark_messages_held", &e);
    }
    log_held(&held);
    rest
}

/// Notes how many jobs were held back.
fn log_held(held: &[String]) {
    if !held.is_empty() {
        log::info(
            "marketing_held",
            &[("jobs", LogValue::Num(held.len() as u64))],
        );
    }
}

/// Drops the recipients already recorded final. A job with none left is a
/// redelivery: it is settled from its records and acknowledged here.
async fn skip_recorded(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    work: Vec<(InHand, DeliveryJob)>,
) -> Vec<Pending> {
    let ids: Vec<&str> = work.iter().map(|(_, j)| j.id.as_str()).collect();
    let recorded = match db.recipient_states(&ids).await {
        Ok(r) => r,
        Err(e) => {
            // Without the record we cannot tell what was sent: deliver nothing.
            log::error_because("could_not_read_recipient_states", &e);
            for (message, _) in &work {
                outage.meet(env, message, Trouble::Records).await;
            }
            return Vec::new();
        }
    };
    let mut by_message: HashMap<String, States> = HashMap::new();
    for (id, address, state) in recorded {
        by_message.entry(id).or_default().push((address, state));
    }
    let mut pending = Vec::with_capacity(work.len());
    for (message, job) in work {
        let mut states = by_message.remove(&job.id).unwrap_or_default();
        // In flight when an earlier attempt died: the upstream may have it.
        let stale = stale_in_flight(&states);
        if !stale.is_empty() {
            if let Err(e) = db.record_recipients(&job.id, &stale, true, now_ms()).await {
                // Not settled, so not delivered either: look again later.
                log::error_because("could_not_settle_in_flight_recipients", &e);
                outage.meet(env, &message, Trouble::Records).await;
                continue;
            }
            with_results(&mut states, stale);
        }
        let rcpt_to = still_to_deliver(&job.rcpt_to, &states);
        if rcpt_to.is_empty() {
            let current = match db.status_of(&job.id).await {
                Ok(current) => current,
                Err(e) => {
                    log::error_because("could_not_read_a_status", &e);
                    outage.meet(env, &message, Trouble::Records).await;
                    continue;
                }
            };
            let settlement = settle_recorded(&job, &states, current);
            run(env, db, outage, &message, Some(&job), settlement).await;
        } else {
            pending.push((message, DeliveryJob { rcpt_to, ..job }, states));
        }
    }
    pending
}

/// Holds back the recipients on their tenants' suppression lists (see
/// `screening`); a job with none left is settled here. Without the list, or
/// without the record of what it held, nothing is delivered now.
async fn screen_suppressed(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    work: Vec<Pending>,
) -> Vec<Pending> {
    let jobs: Vec<&DeliveryJob> = work.iter().map(|(_, job, _)| job).collect();
    let entries = match screening::entries_for(db, &jobs).await {
        Ok(entries) => entries,
        Err(e) => {
            log::error_because("could_not_read_the_suppression_lists", &e);
            for (message, _, _) in &work {
                outage.meet(env, message, Trouble::Records).await;
            }
            return Vec::new();
        }
    };
    let mut pending = Vec::with_capacity(work.len());
    for (message, job, states) in work {
        match screening::screen_job(env, db, job, states, &entries).await {
            Screened::Go(job, states, _) => pending.push((message, job, states)),
            Screened::Settle(settlement) => run(env, db, outage, &message, None, settlement).await,
            Screened::NotRecorded => outage.meet(env, &message, Trouble::Records).await,
        }
    }
    pending
}

/// Carries out a settlement of a queue message, with the events of the
/// stream it emits when it settles an attempt at `job`; a record D1 refused
/// is storage trouble: the message is tried again later, from its records.
async fn run(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    message: &InHand,
    job: Option<&DeliveryJob>,
    settlement: Settlement,
) {
    let raw = Some(&message.raw);
    let executed = match job {
        Some(job) => lifecycle::execute_for(env, db, raw, job, settlement).await,
        None => lifecycle::execute(env, db, raw, settlement).await,
    };
    if executed == Executed::NotRecorded {
        outage.meet(env, message, Trouble::Records).await;
    }
}

/// Splits the jobs into groups whose bodies add up to at most
/// `MAX_GROUP_BODY_BYTES` (see `delivery::plan::joins_group`). The size of a
/// body kept in the bucket is read from its metadata, without the body.
async fn groups(env: &Env, db: &Db, outage: &Outage<'_>, work: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    let mut current: Vec<Pending> = Vec::new();
    let mut held = 0usize;
    for (message, job, states) in work {
        let size = match bodies::size(env, &job).await {
            Body::Ready(size) => size,
            Body::Missing(reason) => {
                let settlement = body_lost(&job, &states, None, &reason);
                run(env, db, outage, &message, Some(&job), settlement).await;
                continue;
            }
            Body::Unavailable(reason) => {
                log::warn(
                    "body_unavailable",
                    &[("reason", LogValue::Text(&reason.to_string()))],
                );
                outage.meet(env, &message, Trouble::Bodies).await;
                continue;
            }
        };
        if !joins_group(current.len(), held, size) {
            groups.push(std::mem::take(&mut current));
            held = 0;
        }
        held = held.saturating_add(size);
        current.push((message, job, states));
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Puts back one group's bodies kept in the bucket. Retries and dead letters
/// carry only the reference (see `DeliveryJob::for_queue`). A body that is
/// gone ends its message from its records; one that cannot be read now is
/// tried again later.
async fn load_bodies(env: &Env, db: &Db, outage: &Outage<'_>, group: Vec<Pending>) -> Vec<Ready> {
    let mut ready = Vec::with_capacity(group.len());
    for (message, job, states) in group {
        let lost = |reason: &str| body_lost(&job, &states, None, reason);
        match bodies::load(env, job.clone()).await {
            Body::Ready(outgoing) => ready.push((message, outgoing, states)),
            Body::Missing(reason) => {
                run(env, db, outage, &message, Some(&job), lost(&reason)).await
            }
            Body::Unavailable(reason) => {
                log::warn(
                    "body_unavailable",
                    &[("reason", LogValue::Text(&reason.to_string()))],
                );
                outage.meet(env, &message, Trouble::Bodies).await;
            }
        }
    }
    ready
}

/// Delivers one group, then carries out each job's settlement.
async fn deliver(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    outage: &Outage<'_>,
    work: Vec<Ready>,
) -> worker::Result<()> {
    let settings = &loaded.settings.delivery;
    let jobs: Vec<&Outgoing> = work.iter().map(|(_, out, _)| out).collect();
    let attempts = lifecycle::deliver_recording(env, settings, db, &jobs).await;
    let policy = RetryPolicy::new(settings.retry);
    let mut settled: Vec<(InHand, DeliveryJob, Settlement)> = work
        .into_iter()
        .zip(attempts)
        .map(|((message, out, states), attempt)| {
            let jitter = random::unit();
            let s = settle(
                &out.job,
                &states,
                attempt,
                &policy,
                now_ms(),
                jitter,
                Carrier::Queue,
            );
            (message, out.job, s)
        })
        .collect();

    // Diagnostics builds only (`FAULT_CONSUMER_CRASH_AFTER`): settle part of
    // the group, then throw as a dying isolate would, leaving the rest unacknowledged.
    #[cfg(feature = "diagnostics")]
    let crash = {
        use crate::diagnostics::consumer_crash::{ConsumerCrash, VAR};
        let value = env.var(VAR).ok().map(|v| v.to_string());
        ConsumerCrash::parse(value.as_deref()).and_then(|c| c.strikes(settled.len()))
    };
    #[cfg(not(feature = "diagnostics"))]
    let crash: Option<(usize, String)> = None;

    if let Some((after, _)) = &crash {
        settled.truncate(*after);
    }
    for (message, job, settlement) in settled {
        run(env, db, outage, &message, Some(&job), settlement).await;
    }
    match crash {
        Some((_, message)) => Err(worker::Error::RustError(message)),
        None => Ok(()),
    }
}

/// The dead-letter queue's consumer: whatever arrives is noted on its
/// message's record, a job's message settled from its recipients' recorded
/// states; then acknowledged. A record D1 refused is tried again later.
async fn record_dead_letters(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    secrets: &QueueSecrets,
    messages: Vec<InHand>,
) {
    for message in messages {
        let item = dead_letter_item(&message.text, secrets);
        record_dead_letter(env, db, outage, &message, item).await;
    }
}

/// Notes one dead letter on its message's record, then acknowledges it; if
/// the record cannot be written, the message is tried again later.
async fn record_dead_letter(
    env: &Env,
    db: &Db,
    outage: &Outage<'_>,
    message: &InHand,
    item: DeadLetterItem,
) {
    let written = match item {
        DeadLetterItem::Note(text) => {
            log::warn(
                "dead_letter_noted",
                &[("detail", LogValue::Text(&text.to_string()))],
            );
            Ok(())
        }
        DeadLetterItem::Settle { job, reason } => {
            let ids = [job.id.as_str()];
            let recorded = db.recipient_states(&ids).await;
            let current = db.status_of(&job.id).await;
            match (recorded, current) {
                (Ok(recorded), Ok(current)) => {
                    let states: States = recorded.into_iter().map(|(_, a, s)| (a, s)).collect();
                    let settlement = dead_lettered(&job, &states, current, &reason);
                    // Recorded first, then the body released and the letter acked.
                    match lifecycle::execute_for(env, db, Some(&message.raw), &job, settlement)
                        .await
                    {
                        Executed::Done => return,
                        Executed::NotRecorded => Err("the record was not written".to_string()),
                    }
                }
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            }
        }
        DeadLetterItem::Record {
            message_id,
            kind,
            detail,
            status,
            release_body,
        } => {
            let now = now_ms();
            let written = match status {
                Some(status) => {
                    db.record_attempt(&message_id, status, false, kind, Some(&detail), now)
                        .await
                }
                None => db.add_event(&message_id, kind, Some(&detail), now).await,
            };
            if written.is_ok() {
                bodies::release(env, release_body.as_deref()).await;
            }
            written.map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => message.raw.ack(),
        Err(e) => {
            log::error_because("could_not_record_a_dead_letter", &e);
            outage.meet(env, message, Trouble::Records).await;
        }
    }
}
