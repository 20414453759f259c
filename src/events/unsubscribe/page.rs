//! The small HTML pages of the unsubscribe routes: the confirmation a
//! `GET` shows (a button, nothing changed: link scanners prefetch), the
//! per-topic preference page, the page after an unsubscribe, and the page for
//! a link that does not open.
//!
//! Owns: their markup, with every value escaped. Must not: show the
//! recipient's full address (whoever holds a forwarded link sees the page),
//! load anything from elsewhere, or run script.

use super::stream::TRANSACTIONAL;
use super::token::Claim;

/// The `Content-Security-Policy` the pages are served with: no script, no
/// outside resources, forms post only back to the worker.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `a***@example.com`: enough for its owner to recognise, little for others.
pub fn masked(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
button{{font-size:1rem;padding:.5rem 1rem;margin:.25rem 0}}</style></head>\
<body><main>{body}</main></body></html>\n",
        title = escape(title)
    )
}

/// What a claim leaves, in words: `the "weekly" emails` or `marketing emails`.
fn what(stream: &str, topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("&ldquo;{}&rdquo; emails", escape(topic)),
        None => format!("{} emails", escape(stream)),
    }
}

/// A form posting the one-click body back to `action`, with `scope` when set.
fn button(action: &str, scope: Option<&str>, label: &str) -> String {
    let scope = scope
        .map(|s| format!("<input type=\"hidden\" name=\"scope\" value=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">{scope}\
<button type=\"submit\">{label}</button></form>",
        action = escape(action)
    )
}

/// Whether the whole stream may be left from this link (never the default
/// transactional stream).
pub fn offers_stream(claim: &Claim) -> bool {
    claim.stream != TRANSACTIONAL
}

/// The `GET` page: says what the button would do, and does nothing itself.
/// `action` is the link's own path; `preferences` the preference page's.
pub fn confirm(claim: &Claim, action: &str, preferences: &str) -> String {
    let more = if claim.topic.is_some() && offers_stream(claim) {
        format!(
            "<p><a href=\"{}\">Other choices</a></p>",
            escape(preferences)
        )
    } else {
        String::new()
    };
    document(
        "Unsubscribe",
        &format!(
            "<h1>Unsubscribe</h1><p>Stop sending {what} to {who}?</p>{button}{more}",
            what = what(&claim.stream, claim.topic.as_deref()),
            who = escape(&masked(&claim.recipient)),
            button = button(action, None, "Unsubscribe"),
        ),
    )
}

/// The per-topic preference page: leave this topic only, or the stream.
pub fn preferences(claim: &Claim, action: &str) -> String {
    let mut choices = String::new();
    if let Some(topic) = &claim.topic {
        choices.push_str(&button(
            action,
            Some("topic"),
            &format!("Unsubscribe from {}", what(&claim.stream, Some(topic))),
        ));
    }
    if offers_stream(claim) {
        choices.push_str(&button(
            action,
            Some("stream"),
            &format!("Unsubscribe from all {}", what(&claim.stream, None)),
        ));
    }
    document(
        "Email preferences",
        &format!(
            "<h1>Email preferences</h1><p>Choose what {who} should stop receiving. Nothing changes until you press a button.</p>{choices}",
            who = escape(&masked(&claim.recipient)),
        ),
    )
}

/// After the unsubscribe was recorded.
pub fn done(address: &str, stream: &str, topic: Option<&str>) -> String {
    document(
        "Unsubscribed",
        &format!(
            "<h1>Unsubscribed</h1><p>{who} will no longer receive {what}.</p>",
            who = escape(&masked(address)),
            what = what(stream, topic),
        ),
    )
}

/// For a link that does not open, or a request the route does not take.
pub fn problem(message: &str) -> String {
    document(
        "Unsubscribe link",
        &format!(
            "<h1>This unsubscribe link did not work</h1><p>{}</p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(stream: &str, topic: Option<&str>) -> Claim {
        Claim {
            tenant: "acme".into(),
            key_id: "backend".into(),
            stream: stream.into(),
            topic: topic.map(str::to_string),
            recipient: "ada.lovelace@example.com".into(),
            message_id: "m1".into(),
        }
    }

    #[test]
    fn pages_never_show_the_whole_address_and_escape_what_they_show() {
        assert_eq!(masked("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(masked("nobody"), "***");
        let c = claim("marketing", Some("weekly"));
        for page in [
            confirm(&c, "/unsubscribe/t", "/unsubscribe/t/preferences"),
            preferences(&c, "/unsubscribe/t"),
            done(&c.recipient, "marketing", Some("weekly")),
        ] {
            assert!(!page.contains("lovelace"), "{page}");
            assert!(page.contains("a***@example.com"), "{page}");
            assert!(!page.contains("<script"), "{page}");
        }
        let evil = problem("<script>alert(1)</script>");
        assert!(evil.contains("&lt;script&gt;"));
        assert!(!evil.contains("<script>"));
    }

    #[test]
    fn the_confirmation_is_one_button_that_posts_the_one_click_body() {
        let page = confirm(
            &claim("marketing", None),
            "/unsubscribe/tok",
            "/unsubscribe/tok/preferences",
        );
        assert_eq!(page.matches("<form method=\"post\"").count(), 1);
        assert!(page.contains("action=\"/unsubscribe/tok\""));
        assert!(page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
        assert!(page.contains("marketing emails"));
        assert!(!page.contains("Other choices"));
        let with_topic = confirm(
            &claim("marketing", Some("weekly")),
            "/unsubscribe/tok",
            "/unsubscribe/tok/preferences",
        );
        assert!(with_topic.contains("href=\"/unsubscribe/tok/preferences\""));
        assert!(with_topic.contains("&ldquo;weekly&rdquo; emails"));
    }

    #[test]
    fn preferences_offer_the_topic_and_the_stream_but_never_all_transactional_mail() {
        let page = preferences(&claim("newsletter", Some("weekly")), "/unsubscribe/t");
        assert!(page.contains("value=\"topic\""));
        assert!(page.contains("value=\"stream\""));
        assert!(page.contains("all newsletter emails"));
        let page = preferences(&claim("transactional", Some("tips")), "/unsubscribe/t");
        assert!(page.contains("value=\"topic\""));
        assert!(!page.contains("value=\"stream\""));
        let page = preferences(&claim("marketing", None), "/unsubscribe/t");
        assert!(!page.contains("value=\"topic\""));
        assert!(page.contains("value=\"stream\""));
    }
}
