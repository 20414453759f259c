//! Batch planning: how a consumer batch is spread over SMTP sessions.
//!
//! The platform allows six simultaneous outbound connections per invocation;
//! edgerelay uses at most five for SMTP and leaves one for everything else.
//! Small batches share one session (pipelining makes that the fastest way);
//! big ones are split evenly so one slow upstream reply does not hold up a
//! hundred messages. Every job goes to the same upstream list (there is no
//! per-message routing), so grouping by upstream is grouping into one group.
//! Must not: open sockets; the edge runs the sessions.

use std::ops::Range;

/// At most this many SMTP sessions at once per invocation.
pub const MAX_SESSIONS: usize = 5;

/// A session is worth opening only for at least this many jobs.
pub const MIN_JOBS_PER_SESSION: usize = 10;

/// Splits `jobs` jobs into contiguous, nearly equal ranges, one per session.
pub fn session_ranges(jobs: usize) -> Vec<Range<usize>> {
    if jobs == 0 {
        return Vec::new();
    }
    let sessions = jobs.div_ceil(MIN_JOBS_PER_SESSION).clamp(1, MAX_SESSIONS);
    let base = jobs / sessions;
    let extra = jobs % sessions;
    let mut start = 0;
    (0..sessions)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_table() {
        let table: &[(usize, &[usize])] = &[
            (0, &[]),
            (1, &[1]),
            (10, &[10]),
            (11, &[6, 5]),
            (23, &[8, 8, 7]),
            (50, &[10, 10, 10, 10, 10]),
            (100, &[20, 20, 20, 20, 20]),
            (101, &[21, 20, 20, 20, 20]),
        ];
        for (jobs, sizes) in table {
            let ranges = session_ranges(*jobs);
            let got: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            assert_eq!(&got, sizes, "{jobs} jobs");
        }
    }

    #[test]
    fn ranges_cover_every_job_once() {
        for jobs in 0..=250 {
            let ranges = session_ranges(jobs);
            assert!(ranges.len() <= MAX_SESSIONS);
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next, "{jobs} jobs: contiguous");
                assert!(!r.is_empty());
                next = r.end;
            }
            assert_eq!(next, jobs);
        }
    }
}
