//! The reputation guard: when a tenant's complaint rate over a sliding
//! window reaches Gmail's hard line (0.3%), or its hard-bounce rate passes a
//! set threshold, its marketing mail pauses (transactional mail goes on)
//! until someone resumes it. Below a minimum volume, rates say nothing and
//! nothing pauses.
//!
//! Owns: the thresholds and the verdict over counts the caller gathered.
//! Must not: count, store, or read the clock.

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardSettings {
    /// Complaints per message sent at which marketing pauses (0.003).
    pub max_complaint_rate: f64,
    /// Hard bounces per message sent at which marketing pauses.
    pub max_hard_bounce_rate: f64,
    /// Fewest messages sent in the window before a rate counts.
    pub min_volume: u64,
    /// The sliding window, seconds.
    pub window_seconds: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            max_complaint_rate: 0.003,
            max_hard_bounce_rate: 0.05,
            min_volume: 1_000,
            window_seconds: 7 * 86_400,
        }
    }
}

/// What the window holds for one tenant's marketing mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    pub sent: u64,
    pub complaints: u64,
    pub hard_bounces: u64,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guard {
    Carry,
    /// Pause marketing: which rate, and its value.
    Pause {
        reason: PauseReason,
        rate: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    ComplaintRate,
    HardBounceRate,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::ComplaintRate => "complaint_rate",
            PauseReason::HardBounceRate => "hard_bounce_rate",
        }
    }
}

/// Decides over `counts`.
pub fn judge(counts: WindowCounts, settings: &GuardSettings) -> Guard {
    if counts.sent == 0 || counts.sent < settings.min_volume {
        return Guard::Carry;
    }
    let sent = counts.sent as f64;
    let complaint_rate = counts.complaints as f64 / sent;
    if complaint_rate >= settings.max_complaint_rate {
        return Guard::Pause {
            reason: PauseReason::ComplaintRate,
            rate: complaint_rate,
        };
    }
    let bounce_rate = counts.hard_bounces as f64 / sent;
    if bounce_rate >= settings.max_hard_bounce_rate {
        return Guard::Pause {
            reason: PauseReason::HardBounceRate,
            rate: bounce_rate,
        };
    }
    Guard::Carry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u64, complaints: u64, hard_bounces: u64) -> WindowCounts {
        WindowCounts {
            sent,
            complaints,
            hard_bounces,
        }
    }

    #[test]
    fn guard_table() {
        let s = GuardSettings::default();
        let table: &[(WindowCounts, Option<PauseReason>)] = &[
            (counts(10_000, 30, 0), Some(PauseReason::ComplaintRate)),
            (counts(10_000, 29, 0), None),
            (counts(10_000, 0, 500), Some(PauseReason::HardBounceRate)),
            (counts(10_000, 0, 499), None),
            // Below the minimum volume, even a terrible rate says nothing.
            (counts(999, 500, 500), None),
            (counts(1_000, 3, 0), Some(PauseReason::ComplaintRate)),
            (counts(0, 0, 0), None),
            // Both: the complaint rate is named first.
            (counts(2_000, 10, 200), Some(PauseReason::ComplaintRate)),
        ];
        for (c, want) in table {
            let got = match judge(*c, &s) {
                Guard::Carry => None,
                Guard::Pause { reason, .. } => Some(reason),
            };
            assert_eq!(got, *want, "{c:?}");
        }
        let Guard::Pause { rate, .. } = judge(counts(10_000, 30, 0), &s) else {
            panic!("expected a pause");
        };
        assert!((rate - 0.003).abs() < 1e-12);
    }
}
