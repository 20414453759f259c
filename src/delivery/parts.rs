//! Recipient limits per upstream: how a share of the batch is cut into
//! transactions ("parts") and sessions so that no transaction carries more
//! than `recipients_per_message` recipients and no session more than
//! `recipients_per_session`, and how the parts' outcomes come back together
//! as one outcome per job.
//!
//! Parts keep the jobs' order, and a job's parts follow each other; a
//! session is filled to its limit, so a job may start in one session and
//! end in the next. Every part of a job carries the same message bytes:
//! only the envelope's recipients differ, so each recipient gets exactly
//! one copy. The rate, session and daily limits of `shaping` count jobs,
//! not parts: a job's first part waits for the job's slot and its other
//! parts follow it at once.
//! Owns: those rules. Must not: open sockets or know about the session.

use std::ops::Range;

use crate::smtp::{Cause, Outcome, OutcomeKind, RecipientOutcome, TransactionOutcome};

/// One transaction: job `job` (its index in the share) to its recipients
/// `recipients` (a range of its `rcpt_to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub job: usize,
    pub recipients: Range<usize>,
}

impl Part {
    /// Whether this part opens its job (it waits for the job's slot).
    pub fn opens_job(&self) -> bool {
        self.recipients.start == 0
    }
}

/// The sessions to run, in order, each a list of parts, for jobs with these
/// recipient counts. Without limits: one session, each job whole.
pub fn plan(
    counts: &[usize],
    per_message: Option<u32>,
    per_session: Option<u32>,
) -> Vec<Vec<Part>> {
    let cap = |v: Option<u32>| v.map_or(usize::MAX, |v| (v as usize).max(1));
    let per_session = cap(per_session);
    let per_message = cap(per_message).min(per_session);
    let mut sessions: Vec<Vec<Part>> = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut room = per_session;
    for (job, &count) in counts.iter().enumerate() {
        if count == 0 {
            // Nothing to cut; the session tells the job it has no recipients.
            current.push(Part {
                job,
                recipients: 0..0,
            });
            continue;
        }
        let mut start = 0;
        while start < count {
            if room == 0 {
                sessions.push(std::mem::take(&mut current));
                room = per_session;
            }
            let take = (count - start).min(per_message).min(room);
            current.push(Part {
                job,
                recipients: start..start + take,
            });
            start += take;
            room -= take;
        }
    }
    if !current.is_empty() {
        sessions.push(current);
    }
    sessions
}

/// The recipients one transaction may carry: the configured
/// `recipients_per_message` or the upstream kind's own limit, the lower.
pub fn per_message(configured: Option<u32>, kind_limit: Option<u32>) -> Option<u32> {
    match (configured, kind_limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the plan is the plain one: one session, every job whole.
pub fn is_whole(plan: &[Vec<Part>], counts: &[usize]) -> bool {
    match plan {
        [] => true,
        [only] => {
            only.len() == counts.len()
                && only
                    .iter()
                    .zip(counts)
                    .all(|(p, &c)| p.recipients == (0..c))
        }
        _ => false,
    }
}

/// One job's outcome from its parts' (in order, `None` for a part that got
/// none). A part that got none stands for its recipients with `unreached`
/// (the failure the session ended with); `None` when no part got one.
pub fn merge(
    id: u64,
    rcpt_to: &[String],
    parts: &[(Range<usize>, Option<&TransactionOutcome>)],
    unreached: Option<&Outcome>,
) -> Option<TransactionOutcome> {
    if parts.iter().all(|(_, o)| o.is_none()) {
        return None;
    }
    let unreached = unreached.cloned().unwrap_or(Outcome {
        kind: OutcomeKind::Transient,
        cause: Cause::SessionClosed,
        reply: None,
    });
    let mut recipients = Vec::with_capacity(rcpt_to.len());
    for (range, outcome) in parts {
        let addresses = rcpt_to.get(range.clone()).unwrap_or_default();
        match outcome {
            Some(o) if !o.recipients.is_empty() => recipients.extend(o.recipients.iter().cloned()),
            Some(o) => recipients.extend(addresses.iter().map(|a| RecipientOutcome {
                address: a.clone(),
                outcome: o.outcome.clone(),
            })),
            None => recipients.extend(addresses.iter().map(|a| RecipientOutcome {
                address: a.clone(),
                outcome: unreached.clone(),
            })),
        }
    }
    let fallback = parts
        .iter()
        .find_map(|(_, o)| o.map(|o| o.outcome.clone()))
        .unwrap_or(unreached);
    Some(TransactionOutcome::summarise(id, recipients, fallback))
}

#[cfg(test)]
mod tests;
