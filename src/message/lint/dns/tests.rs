use super::*;

fn records(texts: &[&str]) -> TxtAnswer {
    TxtAnswer::Records(texts.iter().map(|t| t.to_string()).collect())
}

/// Answers for mail from `news.example.com`: its own `_dmarc`, the
/// organisational domain's, and its BIMI record.
fn answers(own: TxtAnswer, org: TxtAnswer, bimi: TxtAnswer) -> Vec<(String, TxtAnswer)> {
    vec![
        ("_dmarc.news.example.com".into(), own),
        ("_dmarc.example.com".into(), org),
        ("default._bimi.news.example.com".into(), bimi),
    ]
}

fn verdicts(found: &[Finding]) -> Vec<(Rule, Severity, String)> {
    found
        .iter()
        .map(|f| (f.rule, f.severity, f.message.clone()))
        .collect()
}

#[test]
fn names_asked() {
    assert_eq!(
        names("News.Example.COM."),
        [
            "_dmarc.news.example.com",
            "_dmarc.example.com",
            "default._bimi.news.example.com"
        ]
    );
    assert_eq!(
        names("example.co.uk"),
        ["_dmarc.example.co.uk", "default._bimi.example.co.uk"]
    );
}

#[test]
fn resolver_answers() {
    let table: &[(&str, TxtAnswer)] = &[
        (
            r#"{"Status":0,"Answer":[{"name":"_dmarc.example.com","type":16,"TTL":300,"data":"\"v=DMARC1; p=reject\""}]}"#,
            records(&["v=DMARC1; p=reject"]),
        ),
        // Long records come in chunks; escapes are undone.
        (
            r#"{"Status":0,"Answer":[{"type":16,"data":"\"v=BIMI1; l=https://x/\" \"logo.svg; a=\\\"q\\\"\""}]}"#,
            records(&["v=BIMI1; l=https://x/logo.svg; a=\"q\""]),
        ),
        // A CNAME on the way, then the TXT.
        (
            r#"{"Status":0,"Answer":[{"type":5,"data":"a.example.net."},{"type":16,"data":"v=DMARC1; p=none"}]}"#,
            records(&["v=DMARC1; p=none"]),
        ),
        (r#"{"Status":0}"#, TxtAnswer::None),
        (r#"{"Status":3,"Answer":[]}"#, TxtAnswer::None),
        (r#"{"Status":2}"#, TxtAnswer::Unavailable),
        ("<html>busy</html>", TxtAnswer::Unavailable),
        ("", TxtAnswer::Unavailable),
    ];
    for (body, want) in table {
        assert_eq!(read_doh_json(body.as_bytes()), *want, "{body}");
    }
}

/// Answers, whether the stream is marketing, and the findings expected:
/// rule, severity and a part of the message.
type Case = (
    Vec<(String, TxtAnswer)>,
    bool,
    &'static [(Rule, Severity, &'static str)],
);

#[test]
fn dmarc_and_bimi_table() {
    use Severity::{Error, Info, Warning};
    let none = || TxtAnswer::None;
    let bimi_full =
        || records(&["v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem"]);
    let table: Vec<Case> = vec![
        // Enforced at the domain itself, BIMI with a certificate: ready.
        (
            answers(
                records(&["v=DMARC1; p=reject; rua=mailto:d@example.com"]),
                none(),
                bimi_full(),
            ),
            true,
            &[
                (Rule::DmarcPolicy, Info, "p=reject"),
                (Rule::BimiReadiness, Info, "BIMI ready"),
            ],
        ),
        // Inherited from the organisational domain: its sp= applies.
        (
            answers(none(), records(&["v=DMARC1; p=reject; sp=none"]), none()),
            false,
            &[
                (Rule::DmarcPolicy, Info, "p=none"),
                (Rule::BimiReadiness, Info, "not ready for BIMI"),
            ],
        ),
        (
            answers(none(), records(&["v=DMARC1; p=quarantine"]), none()),
            false,
            &[
                (Rule::DmarcPolicy, Info, "from _dmarc.example.com"),
                (Rule::BimiReadiness, Info, "ready for BIMI: publish"),
            ],
        ),
        // Part of the mail only: not enforcement, and a published BIMI record shows nothing.
        (
            answers(
                records(&["v=DMARC1; p=quarantine; pct=50"]),
                none(),
                bimi_full(),
            ),
            false,
            &[
                (Rule::DmarcPolicy, Info, "pct=50"),
                (Rule::BimiReadiness, Warning, "no logo will show"),
            ],
        ),
        // BIMI without a certificate.
        (
            answers(
                records(&["v=DMARC1; p=reject"]),
                none(),
                records(&["v=BIMI1; l=https://example.com/l.svg"]),
            ),
            false,
            &[
                (Rule::DmarcPolicy, Info, "p=reject"),
                (Rule::BimiReadiness, Info, "no certificate"),
            ],
        ),
        // No DMARC anywhere: an error for marketing mail, a warning otherwise.
        (
            answers(none(), none(), none()),
            true,
            &[
                (Rule::DmarcPolicy, Error, "publishes no DMARC record"),
                (Rule::BimiReadiness, Info, "not ready"),
            ],
        ),
        (
            answers(records(&["v=spf1 -all"]), none(), none()),
            false,
            &[
                (Rule::DmarcPolicy, Warning, "publishes no DMARC record"),
                (Rule::BimiReadiness, Info, "not ready"),
            ],
        ),
        // Two DMARC records: ignored by receivers.
        (
            answers(
                records(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]),
                none(),
                none(),
            ),
            false,
            &[
                (Rule::DmarcPolicy, Error, "more than one DMARC record"),
                (Rule::BimiReadiness, Info, "not ready"),
            ],
        ),
        // The resolver failed: said once, nothing else judged.
        (
            answers(TxtAnswer::Unavailable, none(), bimi_full()),
            true,
            &[(Rule::DmarcPolicy, Info, "could not be asked")],
        ),
    ];
    for (answers, marketing, want) in table {
        let got = verdicts(&findings("news.example.com", &answers, marketing));
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((rule, severity, text), (want_rule, want_severity, want_text)) in
            got.iter().zip(want.iter())
        {
            assert_eq!((rule, severity), (want_rule, want_severity), "{text}");
            assert!(text.contains(want_text), "{text:?} lacks {want_text:?}");
        }
    }
}
