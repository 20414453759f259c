//! Counting calls against named limits: the rule the `Meter` Durable Object
//! runs for each call it serialises (one object per limited subject, such as
//! one API key).
//!
//! A call draws a cost from one or more named buckets, each with a limit and
//! a period. Either every bucket has room and all are charged, or none is
//! charged and the answer names the bucket that refused and when the cost
//! will fit. Two kinds of window:
//!
//! - [`Window::Sliding`]: the period is cut into [`SLOTS_PER_PERIOD`] slots
//!   and a call is admitted only if the slots overlapping the last period,
//!   counting the whole of the oldest one, hold room for it. The oldest slot
//!   is counted whole, so **no period-long window, wherever it starts, ever
//!   holds more than the limit** (margin 0 above the limit); the price is
//!   that a call may be refused up to one slot (a tenth of the period) before
//!   an exact sliding log would let it in.
//! - [`Window::Calendar`]: fixed windows aligned on multiples of the period
//!   since the Unix epoch (a period of 86 400 000 ms is the UTC day), each
//!   counted on its own and forgotten when it ends.
//!
//! The limits travel with each call, so a changed setting applies at once;
//! a bucket whose period or kind changed starts afresh. Counts of a bucket
//! left undrawn are dropped once their window has passed, so the state stays
//! small (at most `SLOTS_PER_PERIOD + 1` counters per bucket).
//! Owns: the rule and its state. Must not: read the clock (the caller passes
//! `now`), perform I/O, or know what the buckets stand for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Slots a sliding period is cut into: the refusal margin below the limit is
/// one slot, a tenth of the period.
pub const SLOTS_PER_PERIOD: u64 = 10;

/// How a bucket's period is laid on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Any period-long stretch of time (see the module doc).
    Sliding,
    /// Fixed windows aligned on the epoch: UTC days, UTC hours.
    Calendar,
}

/// A named limit: at most `limit` units per `period_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub name: String,
    pub limit: u32,
    pub period_ms: u64,
    pub window: Window,
}

/// What one call takes from one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    #[serde(flatten)]
    pub limit: Limit,
    pub cost: u32,
}

/// A request to the meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    /// Take every draw's cost, or none of them.
    Charge { draws: Vec<Draw> },
    /// Give back what a charge at `charged_at_ms` took (work that was
    /// counted and then not done), if its window is still counted.
    Refund {
        draws: Vec<Draw>,
        charged_at_ms: u64,
    },
}

/// Where one bucket stands after a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub name: String,
    pub limit: u32,
    /// Units left now.
    pub remaining: u32,
    /// Seconds until the whole limit is available again (0 when it is).
    pub reset_seconds: u64,
}

/// The meter's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Charged (or refunded): every drawn bucket, in the order drawn.
    Allowed { quotas: Vec<Quota>, at_ms: u64 },
    /// Nothing charged: `quota` is the bucket without room for `cost`; the
    /// cost fits again in `retry_after_seconds` (when `cost` is over the
    /// limit itself it never fits, and that is the time until the whole
    /// limit is back).
    Refused {
        quota: Quota,
        cost: u32,
        retry_after_seconds: u64,
    },
}

/// The stored counts of one meter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    buckets: BTreeMap<String, Bucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    slot_ms: u64,
    /// How many slots before the current one are still counted.
    span: u64,
    /// (slot index, units), oldest first.
    slots: Vec<(u64, u32)>,
}

impl Bucket {
    fn for_limit(limit: &Limit) -> Bucket {
        let period = limit.period_ms.max(1);
        let (slot_ms, span) = match limit.window {
            Window::Calendar => (period, 0),
            Window::Sliding => {
                let slot = (period / SLOTS_PER_PERIOD).max(1);
                (slot, period.div_ceil(slot))
            }
        };
        Bucket {
            slot_ms,
            span,
            slots: Vec::new(),
        }
    }

    fn same_shape(&self, other: &Bucket) -> bool {
        self.slot_ms == other.slot_ms && self.span == other.span
    }

    /// Drops the slots no longer counted at `now`.
    fn prune(&mut self, now_ms: u64) {
        let oldest = (now_ms / self.slot_ms).saturating_sub(self.span);
        self.slots.retain(|(i, n)| *i >= oldest && *n > 0);
    }

    fn used(&self) -> u64 {
        self.slots.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// When slot `index` stops being counted.
    fn expiry_ms(&self, index: u64) -> u64 {
        index
            .saturating_add(self.span)
            .saturating_add(1)
            .saturating_mul(self.slot_ms)
    }

    fn quota(&self, limit: &Limit, now_ms: u64) -> Quota {
        let used = self.used();
        let reset_ms = self
            .slots
            .last()
            .map_or(0, |(i, _)| self.expiry_ms(*i).saturating_sub(now_ms));
        Quota {
            name: limit.name.clone(),
            limit: limit.limit,
            remaining: u64::from(limit.limit).saturating_sub(used) as u32,
            reset_seconds: ceil_seconds(reset_ms),
        }
    }

    /// Milliseconds from `now` until `cost` more units fit under `limit`;
    /// until the bucket is empty when they never fit.
    fn wait_ms(&self, limit: u32, cost: u32, now_ms: u64) -> u64 {
        let mut used = self.used();
        for (i, n) in &self.slots {
            used -= u64::from(*n);
            if used + u64::from(cost) <= u64::from(limit) {
                return self.expiry_ms(*i).saturating_sub(now_ms);
            }
        }
        self.slots
            .last()
            .map_or(0, |(i, _)| self.expiry_ms(*i).saturating_sub(now_ms))
    }

    fn add(&mut self, index: u64, cost: u32) {
        match self.slots.last_mut() {
            Some((i, n)) if *i == index => *n = n.saturating_add(cost),
            _ => self.slots.push((index, cost)),
        }
    }

    fn give_back(&mut self, index: u64, cost: u32) {
        if let Some((_, n)) = self.slots.iter_mut().find(|(i, _)| *i == index) {
            *n = n.saturating_sub(cost);
        }
        self.slots.retain(|(_, n)| *n > 0);
    }
}

fn ceil_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// Runs one call at `now_ms` on `counts`: the new counts and the answer.
pub fn apply(counts: &Counts, call: &Call, now_ms: u64) -> (Counts, Decision) {
    let mut next = counts.clone();
    next.buckets.retain(|_, b| {
        b.prune(now_ms);
        !b.slots.is_empty()
    });
    let draws = match call {
        Call::Charge { draws } | Call::Refund { draws, .. } => draws,
    };
    // Each drawn bucket in the shape its limit asks for now.
    for draw in draws {
        let fresh = Bucket::for_limit(&draw.limit);
        let bucket = next
            .buckets
            .entry(draw.limit.name.clone())
            .or_insert_with(|| fresh.clone());
        if !bucket.same_shape(&fresh) {
            *bucket = fresh;
        }
    }
    match call {
        Call::Charge { draws } => charge(next, draws, now_ms),
        Call::Refund {
            draws,
            charged_at_ms,
        } => {
            for draw in draws {
                if let Some(b) = next.buckets.get_mut(&draw.limit.name) {
                    b.give_back(charged_at_ms / b.slot_ms, draw.cost);
                }
            }
            let quotas = quotas(&next, draws, now_ms);
            (
                next,
                Decision::Allowed {
                    quotas,
                    at_ms: now_ms,
                },
            )
        }
    }
}

fn charge(mut next: Counts, draws: &[Draw], now_ms: u64) -> (Counts, Decision) {
    // The refusal that takes longest to clear: every bucket must have room.
    let mut refusal: Option<Decision> = None;
    for draw in draws {
        let Some(b) = next.buckets.get(&draw.limit.name) else {
            continue;
        };
        if draw.cost == 0 || b.used() + u64::from(draw.cost) <= u64::from(draw.limit.limit) {
            continue;
        }
        let wait = ceil_seconds(b.wait_ms(draw.limit.limit, draw.cost, now_ms)).max(1);
        let longer = match &refusal {
            Some(Decision::Refused {
                retry_after_seconds,
                ..
            }) => wait > *retry_after_seconds,
            _ => true,
        };
        if longer {
            refusal = Some(Decision::Refused {
                quota: b.quota(&draw.limit, now_ms),
                cost: draw.cost,
                retry_after_seconds: wait,
            });
        }
    }
    if let Some(refused) = refusal {
        return (next, refused);
    }
    for draw in draws {
        if draw.cost == 0 {
            continue;
        }
        if let Some(b) = next.buckets.get_mut(&draw.limit.name) {
            b.add(now_ms / b.slot_ms, draw.cost);
        }
    }
    let quotas = quotas(&next, draws, now_ms);
    (
        next,
        Decision::Allowed {
            quotas,
            at_ms: now_ms,
        },
    )
}

fn quotas(counts: &Counts, draws: &[Draw], now_ms: u64) -> Vec<Quota> {
    draws
        .iter()
        .filter_map(|d| {
            counts
                .buckets
                .get(&d.limit.name)
                .map(|b| b.quota(&d.limit, now_ms))
        })
        .collect()
}

#[cfg(test)]
mod tests;
