//! The rules of a domain's key rotation without an outage: which
//! generation of keys signs, which is waiting for its record, which stays
//! published but unused, when edgerelay switches and when the old record
//! can go.
//!
//! A domain's keys come in generations (`er1-*`, `er2-*`, ...). A rotation
//! makes generation `n + 1` beside the signing generation `n`
//! ([`Phase::Rotating`]): `n` keeps signing while the new records wait to
//! be published. The first verification (a `verify` call or the cron
//! re-verification) that finds every DKIM record of `n + 1` matching
//! switches ([`Transition::Switch`]): `n + 1` signs from then on, and `n`
//! stays published but unused ([`Phase::Retiring`]) for the grace period
//! (`DOMAIN_KEY_GRACE_HOURS`), long enough for messages signed with it and
//! still on their way (retries included) to be verified. Then its record
//! can be removed ([`Phase::Steady`]): it is no longer listed, and its keys
//! are deleted when the next rotation starts. One
//! rotation at a time: a rotation is refused while another is waiting for
//! its record or its old key is in its grace period.
//!
//! | Setting | Kind | Meaning |
//! | --- | --- | --- |
//! | `DOMAIN_KEY_GRACE_HOURS` | var | hours a rotated-out key stays published but unused before its record can be removed (1 to 2160, default 168: seven days) |
//!
//! Must not: read the clock (callers pass `now_ms`), perform I/O, or make
//! keys.

use serde_json::{Value, json};

use crate::config::{ConfigError, ConfigSource};
use crate::events::time::rfc3339_ms;

pub use super::records::KeyRole;
use super::records::{DnsRecord, Purpose};
use super::verify::Report;

/// The default grace period of a rotated-out key, in hours (seven days).
pub const DEFAULT_GRACE_HOURS: u64 = 168;
/// The longest grace period, in hours (90 days).
pub const MAX_GRACE_HOURS: u64 = 2160;

/// The grace period of a rotated-out key (`DOMAIN_KEY_GRACE_HOURS`), in ms.
pub fn grace_ms(src: &impl ConfigSource) -> Result<u64, ConfigError> {
    let Some(raw) = src
        .get("DOMAIN_KEY_GRACE_HOURS")
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(DEFAULT_GRACE_HOURS * 3_600_000);
    };
    match raw.trim().parse::<u64>() {
        Ok(hours) if (1..=MAX_GRACE_HOURS).contains(&hours) => Ok(hours * 3_600_000),
        _ => Err(ConfigError {
            setting: "DOMAIN_KEY_GRACE_HOURS",
            problem: format!("is not a whole number of hours from 1 to {MAX_GRACE_HOURS}"),
        }),
    }
}

/// What is stored about a domain's generations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generations {
    /// The generation that signs (1 for a new domain).
    pub signing: u32,
    /// The generation made by a rotation, waiting for its records.
    pub next: Option<u32>,
    /// The generation rotated out, and when (Unix ms).
    pub previous: Option<(u32, u64)>,
}

/// Where a domain is in its keys' life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// One generation, signing.
    Steady { signing: u32 },
    /// A rotation waits for the new generation's records to verify.
    Rotating { signing: u32, next: u32 },
    /// The new generation signs; the old one stays published until
    /// `remove_after_ms`.
    Retiring {
        signing: u32,
        old: u32,
        remove_after_ms: u64,
    },
}

/// The phase of a domain at `now_ms`.
pub fn phase(g: Generations, now_ms: u64, grace_ms: u64) -> Phase {
    if let Some(next) = g.next {
        return Phase::Rotating {
            signing: g.signing,
            next,
        };
    }
    match g.previous {
        Some((old, switched_at)) if now_ms < switched_at.saturating_add(grace_ms) => {
            Phase::Retiring {
                signing: g.signing,
                old,
                remove_after_ms: switched_at.saturating_add(grace_ms),
            }
        }
        _ => Phase::Steady { signing: g.signing },
    }
}

/// The generation of a selector edgerelay made (`er<n>-<algorithm>`).
pub fn generation_of(selector: &str) -> Option<u32> {
    let rest = selector.strip_prefix("er")?;
    let (digits, _) = rest.split_once('-')?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the key of `selector` is for in `phase`; an unknown selector, or a
/// generation the phase does not name, is retired.
pub fn role(phase: Phase, selector: &str) -> KeyRole {
    let Some(g) = generation_of(selector) else {
        return KeyRole::Retired;
    };
    match phase {
        Phase::Steady { signing } if g == signing => KeyRole::Signing,
        Phase::Rotating { signing, .. } if g == signing => KeyRole::Signing,
        Phase::Rotating { next, .. } if g == next => KeyRole::Next,
        Phase::Retiring { signing, .. } if g == signing => KeyRole::Signing,
        Phase::Retiring { old, .. } if g == old => KeyRole::Retiring,
        _ => KeyRole::Retired,
    }
}

/// Why a rotation cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The last rotation's new records have not verified yet.
    Waiting { next: u32 },
    /// The last rotation's old key is in its grace period.
    Retiring { remove_after_ms: u64 },
}

impl Refusal {
    pub fn message(self, domain: &str) -> String {
        match self {
            Refusal::Waiting { next } => format!(
                "{domain} is already rotating: publish the er{next}-* DKIM records and POST /v1/domains/{domain}/verify; it switches once they verify"
            ),
            Refusal::Retiring { remove_after_ms } => format!(
                "{domain} rotated recently: its old key stays published until {}; rotate again after that",
                rfc3339_ms(remove_after_ms)
            ),
        }
    }
}

/// A rotation's start: the generation to make, and the generations stored
/// afterwards. The keys of generations before `signing` are deleted.
pub fn start(g: Generations, now_ms: u64, grace_ms: u64) -> Result<Generations, Refusal> {
    match phase(g, now_ms, grace_ms) {
        Phase::Rotating { next, .. } => Err(Refusal::Waiting { next }),
        Phase::Retiring {
            remove_after_ms, ..
        } => Err(Refusal::Retiring { remove_after_ms }),
        Phase::Steady { signing } => Ok(Generations {
            signing,
            next: Some(signing.saturating_add(1)),
            previous: None,
        }),
    }
}

/// A change a verification makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The new generation verified: it signs from now on.
    Switch(Generations),
}

/// Whether every DKIM record of generation `next` matches in `report`
/// (at least one, the RSA one among them).
pub fn verified_generation(report: &Report, next: u32) -> bool {
    let of_next: Vec<_> = report
        .records
        .iter()
        .filter(|r| {
            r.purpose == Purpose::Dkim
                && r.selector.as_deref().and_then(generation_of) == Some(next)
        })
        .collect();
    of_next
        .iter()
        .any(|r| r.selector.as_deref().is_some_and(|s| s.ends_with("-rsa")))
        && of_next.iter().all(|r| r.matches == Some(true))
}

/// What a verification at `now_ms` that gave `report` changes.
pub fn after_verification(g: Generations, report: &Report, now_ms: u64) -> Option<Transition> {
    let next = g.next?;
    verified_generation(report, next).then_some(Transition::Switch(Generations {
        signing: next,
        next: None,
        previous: Some((g.signing, now_ms)),
    }))
}

/// Marks the DKIM records with their key's role: only the signing
/// generation's RSA record is required; the next generation's is to
/// publish now, the retiring one's to keep until it can be removed. A
/// retired key's record is left out (its keys are deleted).
pub fn annotate(records: Vec<DnsRecord>, phase: Phase) -> Vec<DnsRecord> {
    records
        .into_iter()
        .filter_map(|mut r| {
            if r.purpose != Purpose::Dkim {
                return Some(r);
            }
            let role = role(phase, r.selector.as_deref().unwrap_or(""));
            match role {
                KeyRole::Signing => {}
                KeyRole::Next => {
                    r.required = false;
                    r.note = "the next key: publish this record now, beside the one that signs; edgerelay switches to it once it verifies".to_string();
                }
                KeyRole::Retiring => {
                    r.required = false;
                    if let Phase::Retiring {
                        remove_after_ms, ..
                    } = phase
                    {
                        r.note = format!(
                            "rotated out: it no longer signs, but keep it published until {} for mail signed with it still on its way; then remove it",
                            rfc3339_ms(remove_after_ms)
                        );
                    }
                }
                KeyRole::Retired => return None,
            }
            r.key_role = Some(role);
            Some(r)
        })
        .collect()
}

/// The `rotation` object of a domain's JSON: its phase, the selectors of
/// each role, and when the old record can be removed.
pub fn to_json(phase: Phase) -> Value {
    match phase {
        Phase::Steady { signing } => json!({
            "state": "steady",
            "signing_generation": signing,
            "next_generation": null,
            "retiring_generation": null,
            "old_record_removable_at": null,
        }),
        Phase::Rotating { signing, next } => json!({
            "state": "rotating",
            "signing_generation": signing,
            "next_generation": next,
            "retiring_generation": null,
            "old_record_removable_at": null,
        }),
        Phase::Retiring {
            signing,
            old,
            remove_after_ms,
        } => json!({
            "state": "retiring",
            "signing_generation": signing,
            "next_generation": null,
            "retiring_generation": old,
            "old_record_removable_at": rfc3339_ms(remove_after_ms),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pairs_source as source;
    use crate::http::domains::verify::RecordReport;

    const GRACE: u64 = 10_000;

    fn gens(signing: u32, next: Option<u32>, previous: Option<(u32, u64)>) -> Generations {
        Generations {
            signing,
            next,
            previous,
        }
    }

    #[test]
    fn phases_follow_the_stored_generations_and_the_clock() {
        for (g, now, want) in [
            (gens(1, None, None), 0, Phase::Steady { signing: 1 }),
            (
                gens(1, Some(2), None),
                5,
                Phase::Rotating {
                    signing: 1,
                    next: 2,
                },
            ),
            (
                gens(2, None, Some((1, 100))),
                100,
                Phase::Retiring {
                    signing: 2,
                    old: 1,
                    remove_after_ms: 100 + GRACE,
                },
            ),
            (
                gens(2, None, Some((1, 100))),
                100 + GRACE - 1,
                Phase::Retiring {
                    signing: 2,
                    old: 1,
                    remove_after_ms: 100 + GRACE,
                },
            ),
            // The grace period is over: the old key is retired.
            (
                gens(2, None, Some((1, 100))),
                100 + GRACE,
                Phase::Steady { signing: 2 },
            ),
            (
                gens(2, None, Some((1, u64::MAX - 1))),
                u64::MAX - 1,
                Phase::Retiring {
                    signing: 2,
                    old: 1,
                    remove_after_ms: u64::MAX,
                },
            ),
        ] {
            assert_eq!(phase(g, now, GRACE), want, "{g:?} at {now}");
        }
    }

    #[test]
    fn each_key_has_its_role() {
        let rotating = Phase::Rotating {
            signing: 1,
            next: 2,
        };
        let retiring = Phase::Retiring {
            signing: 2,
            old: 1,
            remove_after_ms: 9,
        };
        for (phase, selector, want) in [
            (Phase::Steady { signing: 1 }, "er1-rsa", KeyRole::Signing),
            (Phase::Steady { signing: 2 }, "er1-rsa", KeyRole::Retired),
            (rotating, "er1-ed25519", KeyRole::Signing),
            (rotating, "er2-rsa", KeyRole::Next),
            (rotating, "er3-rsa", KeyRole::Retired),
            (retiring, "er2-rsa", KeyRole::Signing),
            (retiring, "er1-rsa", KeyRole::Retiring),
            (retiring, "s1", KeyRole::Retired),
            (retiring, "er-rsa", KeyRole::Retired),
            (retiring, "er+1-rsa", KeyRole::Retired),
            (retiring, "er99999999999-rsa", KeyRole::Retired),
        ] {
            assert_eq!(role(phase, selector), want, "{phase:?} {selector}");
        }
        assert_eq!(generation_of("er12-ed25519"), Some(12));
    }

    #[test]
    fn one_rotation_at_a_time() {
        assert_eq!(
            start(gens(1, None, None), 0, GRACE),
            Ok(gens(1, Some(2), None))
        );
        assert_eq!(
            start(gens(1, Some(2), None), 0, GRACE),
            Err(Refusal::Waiting { next: 2 })
        );
        assert_eq!(
            start(gens(2, None, Some((1, 100))), 200, GRACE),
            Err(Refusal::Retiring {
                remove_after_ms: 100 + GRACE
            })
        );
        // Once the old key is retired, the next rotation starts (and its
        // keys are deleted).
        assert_eq!(
            start(gens(2, None, Some((1, 100))), 100 + GRACE, GRACE),
            Ok(gens(2, Some(3), None))
        );
        assert!(
            Refusal::Waiting { next: 2 }
                .message("a.example")
                .contains("er2-*")
        );
    }

    fn dkim_report(selector: &str, matches: Option<bool>) -> RecordReport {
        RecordReport {
            purpose: Purpose::Dkim,
            record_type: "TXT",
            name: format!("{selector}._domainkey.a.example"),
            selector: Some(selector.to_string()),
            required: selector.starts_with("er1-rsa"),
            found: matches,
            matches,
            problems: Vec::new(),
            published: Vec::new(),
        }
    }

    fn report(of: &[(&str, Option<bool>)]) -> Report {
        Report {
            records: of.iter().map(|(s, m)| dkim_report(s, *m)).collect(),
            verified: true,
        }
    }

    #[test]
    fn the_switch_waits_for_every_new_record() {
        let rotating = gens(1, Some(2), None);
        let switched = Some(Transition::Switch(gens(2, None, Some((1, 50)))));
        let ok = Some(true);
        for (records, want) in [
            // New records not published yet: still the old generation.
            (
                vec![
                    ("er1-rsa", ok),
                    ("er1-ed25519", ok),
                    ("er2-rsa", Some(false)),
                    ("er2-ed25519", Some(false)),
                ],
                None,
            ),
            // The RSA one only: the Ed25519 signature would fail; wait.
            (
                vec![
                    ("er1-rsa", ok),
                    ("er2-rsa", ok),
                    ("er2-ed25519", Some(false)),
                ],
                None,
            ),
            // DNS could not be asked: no switch.
            (vec![("er1-rsa", ok), ("er2-rsa", None)], None),
            // No RSA record of the new generation: no switch.
            (vec![("er1-rsa", ok), ("er2-ed25519", ok)], None),
            (
                vec![
                    ("er1-rsa", Some(false)),
                    ("er2-rsa", ok),
                    ("er2-ed25519", ok),
                ],
                switched,
            ),
            (vec![("er1-rsa", ok), ("er2-rsa", ok)], switched),
        ] {
            assert_eq!(
                after_verification(rotating, &report(&records), 50),
                want,
                "{records:?}"
            );
        }
        // Nothing rotating: nothing changes.
        assert_eq!(
            after_verification(gens(1, None, None), &report(&[("er2-rsa", ok)]), 50),
            None
        );
    }

    fn record(selector: &str) -> DnsRecord {
        DnsRecord {
            purpose: Purpose::Dkim,
            record_type: "TXT",
            name: format!("{selector}._domainkey.a.example"),
            value: if selector.ends_with("rsa") {
                "v=DKIM1; k=rsa; p=AAAA".to_string()
            } else {
                "v=DKIM1; k=ed25519; p=AAAA".to_string()
            },
            required: selector.ends_with("rsa"),
            selector: Some(selector.to_string()),
            note: String::new(),
            key_role: None,
        }
    }

    #[test]
    fn records_say_what_to_publish_and_what_can_go() {
        let all = || vec![record("er1-rsa"), record("er2-rsa"), record("er2-ed25519")];
        let shown = |phase| -> Vec<(String, bool, Option<KeyRole>)> {
            annotate(all(), phase)
                .into_iter()
                .map(|r| (r.selector.unwrap_or_default(), r.required, r.key_role))
                .collect()
        };
        let s = |x: &str| x.to_string();
        assert_eq!(
            shown(Phase::Rotating {
                signing: 1,
                next: 2
            }),
            [
                (s("er1-rsa"), true, Some(KeyRole::Signing)),
                (s("er2-rsa"), false, Some(KeyRole::Next)),
                (s("er2-ed25519"), false, Some(KeyRole::Next)),
            ]
        );
        let retiring = Phase::Retiring {
            signing: 2,
            old: 1,
            remove_after_ms: 1_700_000_000_000,
        };
        let annotated = annotate(all(), retiring);
        assert_eq!(
            annotated
                .iter()
                .map(|r| (r.required, r.key_role))
                .collect::<Vec<_>>(),
            [
                (false, Some(KeyRole::Retiring)),
                (true, Some(KeyRole::Signing)),
                (false, Some(KeyRole::Signing)),
            ]
        );
        assert!(annotated[0].note.contains("2023-11-14T22:13:20"));
        // After the grace period the old record is not listed any more.
        assert_eq!(
            shown(Phase::Steady { signing: 2 }),
            [
                (s("er2-rsa"), true, Some(KeyRole::Signing)),
                (s("er2-ed25519"), false, Some(KeyRole::Signing)),
            ]
        );
        assert_eq!(
            to_json(retiring)["old_record_removable_at"],
            "2023-11-14T22:13:20.000Z"
        );
    }

    #[test]
    fn the_grace_period_setting() {
        assert_eq!(grace_ms(&source(&[])).unwrap(), 168 * 3_600_000);
        assert_eq!(
            grace_ms(&source(&[("DOMAIN_KEY_GRACE_HOURS", " 24 ")])).unwrap(),
            24 * 3_600_000
        );
        for bad in ["0", "2161", "-1", "1.5", "week"] {
            let e = grace_ms(&source(&[("DOMAIN_KEY_GRACE_HOURS", bad)])).unwrap_err();
            assert_eq!(e.setting, "DOMAIN_KEY_GRACE_HOURS");
            assert!(!e.problem.contains(bad) || bad == "0", "{bad}");
        }
    }
}
