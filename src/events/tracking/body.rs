//! The tracked HTML part of one copy: every trackable link pointed at
//! `<base>/t/c/<token>` and the open pixel before `</body>`.
//!
//! Done on the HTML before the message is composed and DKIM-signed, so the
//! signed body is what is delivered. The scanner (`message::links`) leaves
//! `mailto:`, `tel:`, anchors, `data-notrack` links and the
//! `{{unsubscribe_url}}` placeholder alone; this module also declines links
//! to the unsubscribe or tracking routes of the base, targets with control
//! characters, and targets longer than `token::MAX_TARGET_BYTES`.
//! Owns: which links are tracked and where the pixel goes. Must not: decide
//! whether a message is tracked or for whom (`message::tracking`).

use crate::events::unsubscribe::settings::PATH as UNSUBSCRIBE_PATH;
use crate::message::links::rewrite_links;

use super::token::{HitKind, MAX_TARGET_BYTES, TokenError, TrackingClaim, TrackingSecrets};

/// The path segment the tracking routes live under.
pub const PATH: &str = "t";

/// What tracking one copy's HTML needs.
#[derive(Debug, Clone, Copy)]
pub struct BodyPlan<'a> {
    pub secrets: &'a TrackingSecrets,
    /// The tracking host, `https://host[:port]` without a trailing slash.
    pub base: &'a str,
    /// The copy's id.
    pub message_id: &'a str,
    /// The recipient's index in the copy, when it consented.
    pub recipient: Option<u16>,
    pub opens: bool,
    pub clicks: bool,
}

/// `<base>/t/<o|c>/<token>`.
pub fn url(base: &str, kind: HitKind, token: &str) -> String {
    format!("{base}/{PATH}/{}/{token}", kind.path_segment())
}

/// The HTML with its links tracked (when `clicks`) and the pixel (when
/// `opens`), and how many links were tracked.
pub fn track(html: &str, plan: &BodyPlan<'_>) -> Result<(String, usize), TokenError> {
    let mut failure = None;
    let own_routes = [
        format!("{}/{UNSUBSCRIBE_PATH}/", plan.base),
        format!("{}/{PATH}/", plan.base),
    ];
    let rewritten = if plan.clicks {
        rewrite_links(html, |index, target| {
            let link = u16::try_from(index).ok()?;
            if target.len() > MAX_TARGET_BYTES
                || target.chars().any(char::is_control)
                || target.contains("{{")
                || own_routes.iter().any(|r| target.starts_with(r.as_str()))
            {
                return None;
            }
            let claim = TrackingClaim {
                kind: HitKind::Click,
                message_id: plan.message_id.to_string(),
                recipient: plan.recipient,
                link,
                target: Some(target.to_string()),
            };
            match plan.secrets.issue(&claim) {
                Ok(token) => Some(url(plan.base, HitKind::Click, &token)),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        })
    } else {
        crate::message::links::Rewritten {
            html: html.to_string(),
            links: Vec::new(),
        }
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let mut out = rewritten.html;
    if plan.opens {
        let token = plan.secrets.issue(&TrackingClaim {
            kind: HitKind::Open,
            message_id: plan.message_id.to_string(),
            recipient: plan.recipient,
            link: 0,
            target: None,
        })?;
        let pixel = format!(
            r#"<img src="{}" alt="" width="1" height="1" style="display:block;border:0;width:1px;height:1px">"#,
            url(plan.base, HitKind::Open, &token)
        );
        let at = out
            .to_ascii_lowercase()
            .rfind("</body")
            .unwrap_or(out.len());
        out.insert_str(at, &pixel);
    }
    Ok((out, rewritten.links.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://t.example.com";

    fn plan(secrets: &TrackingSecrets) -> BodyPlan<'_> {
        BodyPlan {
            secrets,
            base: BASE,
            message_id: "m-1",
            recipient: Some(0),
            opens: true,
            clicks: true,
        }
    }

    fn tokens_of(html: &str, kind: HitKind) -> Vec<String> {
        let prefix = url(BASE, kind, "");
        html.match_indices(&prefix)
            .map(|(i, _)| {
                html[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn links_and_pixel_by_table() {
        let secrets = TrackingSecrets::parse(&"s".repeat(32)).unwrap();
        let html = concat!(
            "<html><body>",
            r#"<a href="https://shop.example.com/a?x=1&amp;y=2">Shop</a>"#,
            "<a href=https://shop.example.com/b>B</a>",
            r#"<a href="mailto:help@example.com">Mail</a>"#,
            r#"<a href="tel:+331234">Call</a>"#,
            r##"<a href="#top">Top</a>"##,
            r#"<a data-notrack href="https://shop.example.com/private">P</a>"#,
            r#"<a href="{{unsubscribe_url}}">Unsubscribe</a>"#,
            r#"<a href="https://t.example.com/unsubscribe/abc">Leave</a>"#,
            "<!--[if mso]><a href=\"https://shop.example.com/outlook\">O</a><![endif]-->",
            "</BODY></html>"
        );
        let (out, count) = track(html, &plan(&secrets)).unwrap();
        assert_eq!(count, 3);
        for kept in [
            "mailto:help@example.com",
            "tel:+331234",
            r##"href="#top""##,
            "https://shop.example.com/private",
            "{{unsubscribe_url}}",
            "https://t.example.com/unsubscribe/abc",
        ] {
            assert!(out.contains(kept), "{kept} was changed: {out}");
        }
        let targets: Vec<(u16, String)> = tokens_of(&out, HitKind::Click)
            .iter()
            .map(|t| {
                let c = secrets.verify(t, HitKind::Click).unwrap();
                assert_eq!(c.message_id, "m-1");
                assert_eq!(c.recipient, Some(0));
                (c.link, c.target.unwrap())
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                (0, "https://shop.example.com/a?x=1&y=2".to_string()),
                (1, "https://shop.example.com/b".to_string()),
                (2, "https://shop.example.com/outlook".to_string()),
            ]
        );
        let pixels = tokens_of(&out, HitKind::Open);
        assert_eq!(pixels.len(), 1);
        assert!(secrets.verify(&pixels[0], HitKind::Open).is_ok());
        // Before the closing body tag, whatever its case.
        let pixel_at = out.find("/t/o/").unwrap();
        assert!(pixel_at < out.find("</BODY>").unwrap());
        assert!(out.contains(r#"alt="" width="1" height="1""#));
    }

    #[test]
    fn only_what_is_asked_for() {
        let secrets = TrackingSecrets::parse(&"s".repeat(32)).unwrap();
        let html = r#"<p><a href="https://a.example/">a</a></p>"#;
        let opens_only = BodyPlan {
            clicks: false,
            ..plan(&secrets)
        };
        let (out, count) = track(html, &opens_only).unwrap();
        assert_eq!(count, 0);
        assert!(out.starts_with(html), "{out}");
        assert!(out.ends_with(r#"height:1px">"#), "no body tag: appended");
        let clicks_only = BodyPlan {
            opens: false,
            recipient: None,
            ..plan(&secrets)
        };
        let (out, count) = track(html, &clicks_only).unwrap();
        assert_eq!(count, 1);
        assert!(!out.contains("/t/o/"));
        let token = &tokens_of(&out, HitKind::Click)[0];
        assert_eq!(
            secrets.verify(token, HitKind::Click).unwrap().recipient,
            None
        );
        // Over-long targets stay as they are.
        let long = format!(
            r#"<a href="https://a.example/{}">x</a>"#,
            "y".repeat(MAX_TARGET_BYTES)
        );
        assert_eq!(track(&long, &clicks_only).unwrap(), (long.clone(), 0));
    }
}
