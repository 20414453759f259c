//! Timestamps as event payloads write them: RFC 3339 in UTC with
//! milliseconds (`2026-11-29T21:07:49.123Z`), the form webhook consumers
//! parse everywhere.
//!
//! Owns the conversion from Unix milliseconds, and the instants a query
//! may name (`2026-11-30` or `2026-11-30T08:00:00Z`). Must not: read the
//! clock.

/// `at_ms` (Unix milliseconds) as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let ms = at_ms % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (eras of 400 years, 146 097 days each).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`]; `None` before 1970 or for a day the month lacks.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > month_days {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// An instant a query names, in Unix seconds: a UTC day (`2026-11-30`, its
/// first second, and whether it was a whole day) or an RFC 3339 UTC time
/// to the second (`2026-11-30T08:00:00Z`; fractions are not taken).
pub fn parse_instant(text: &str) -> Option<(u64, bool)> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let day = days_from_civil(number(y)?, number(m)?, number(d)?)?;
    let Some(time) = time else {
        return Some((day * 86_400, true));
    };
    let time = time.strip_suffix('Z')?;
    let mut parts = time.split(':');
    let (h, mi, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.len() != 2 || mi.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, mi, s) = (number(h)?, number(mi)?, number(s)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some((day * 86_400 + h * 3600 + mi * 60 + s, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let table: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
            (1_796_850_469_123, "2026-12-09T21:07:49.123Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
        ];
        for (ms, want) in table {
            assert_eq!(rfc3339_ms(*ms), *want, "{ms}");
        }
    }

    #[test]
    fn instants_table() {
        let table: &[(&str, Option<(u64, bool)>)] = &[
            ("1970-01-01", Some((0, true))),
            ("2000-02-29", Some((951_782_400, true))),
            ("2026-12-09T21:07:49Z", Some((1_796_850_469, false))),
            ("2100-01-01T00:00:00Z", Some((4_102_444_800, false))),
            ("2023-02-29", None),
            ("2026-13-01", None),
            ("2026-00-10", None),
            ("1969-12-31", None),
            ("2026-1-01", None),
            ("2026-12-09T21:07:49", None),
            ("2026-12-09T21:07:49.5Z", None),
            ("2026-12-09T24:00:00Z", None),
            ("2026-12-09T+1:00:00Z", None),
            ("+026-12-09", None),
            ("", None),
            ("2026-12-09-01", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_instant(text), *want, "{text}");
        }
        // Every day of four centuries round-trips.
        for day in 0..146_097 * 4 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), Some(day));
        }
    }
}
