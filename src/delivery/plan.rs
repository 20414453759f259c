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

/// The most body bytes a consumer holds at once: a batch is delivered in
/// groups whose bodies add up to at most this much (a body larger than the
/// bound goes alone). An isolate has 128 MB; a hundred 1 MiB bodies held at
/// once, with the copies a delivery makes, would not fit.
pub const MAX_GROUP_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Whether a body of `next` bytes joins a group already holding `held` bytes
/// of bodies (`jobs` of them), or the group is delivered first.
pub fn joins_group(jobs: usize, held: usize, next: usize) -> bool {
    jobs == 0 || held.saturating_add(next) <= MAX_GROUP_BODY_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_bounded_by_body_bytes() {
        const MIB: usize = 1024 * 1024;
        let table = [
            // (jobs in the group, bytes held, next body) -> joins
            (0, 0, 50 * MIB, true),
            (0, 0, 0, true),
            (1, 50 * MIB, 1, false),
            (15, 15 * MIB, MIB, true),
            (16, 16 * MIB, 1, false),
            (99, 99 * 100 * 1024, 100 * 1024, true),
            (1, MIB, usize::MAX, false),
        ];
        for (jobs, held, next, joins) in table {
            assert_eq!(joins_group(jobs, held, next), joins, "{jobs} {held} {next}");
        }
        // A hundred 1 MiB bodies make groups of sixteen at most.
        let mut groups = vec![0usize];
        let mut held = 0;
        for _ in 0..100 {
            let last = groups.len() - 1;
            if !joins_group(groups[last], held, MIB) {
                groups.push(0);
                held = 0;
            }
            let last = groups.len() - 1;
            groups[last] += 1;
            held += MIB;
        }
        assert_eq!(groups, vec![16, 16, 16, 16, 16, 16, 4]);
    }

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
