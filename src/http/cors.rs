//! CORS for the browser-facing routes: answered only for allowed origins and
//! only for the method and headers those routes use. No wildcard, no
//! credentials: publishable keys travel in a header, never in cookies.
//!
//! Owns: the headers of a preflight and of an answer, and what a preflight may
//! ask for. Must not: decide which origins are allowed (the forms of
//! `PUBLISHABLE_KEYS` say; the edge asks them before calling here).

/// What a page may call the form route with.
pub const ALLOWED_METHODS: &str = "POST";
const ALLOWED_REQUEST_HEADERS: [&str; 2] = ["authorization", "content-type"];
const MAX_AGE_SECONDS: &str = "600";

/// Headers for an actual response to an allowed origin (errors included, so
/// the page can read and show them).
pub fn response_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Access-Control-Allow-Origin", origin.to_string()),
        ("Access-Control-Expose-Headers", "Retry-After".to_string()),
        ("Vary", "Origin".to_string()),
    ]
}

/// Whether a preflight asks only for what the route allows.
pub fn preflight_acceptable(method: Option<&str>, request_headers: Option<&str>) -> bool {
    let method_ok = method.is_some_and(|m| m.trim().eq_ignore_ascii_case(ALLOWED_METHODS));
    let headers_ok = request_headers.is_none_or(|list| {
        list.split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .all(|h| ALLOWED_REQUEST_HEADERS.contains(&h.as_str()))
    });
    method_ok && headers_ok
}

/// Headers for a successful preflight from an allowed origin.
pub fn preflight_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Access-Control-Allow-Origin", origin.to_string()),
        ("Access-Control-Allow-Methods", ALLOWED_METHODS.to_string()),
        (
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type".to_string(),
        ),
        ("Access-Control-Max-Age", MAX_AGE_SECONDS.to_string()),
        ("Vary", "Origin".to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_table() {
        let table = [
            (Some("POST"), Some("content-type, authorization"), true),
            (Some("post"), Some("Content-Type"), true),
            (Some("POST"), None, true),
            (Some("POST"), Some(""), true),
            (Some("GET"), Some("content-type"), false),
            (Some("PUT"), None, false),
            (None, Some("content-type"), false),
            (Some("POST"), Some("content-type, x-api-key"), false),
            (Some("POST"), Some("cookie"), false),
        ];
        for (method, headers, expected) in table {
            assert_eq!(
                preflight_acceptable(method, headers),
                expected,
                "{method:?} {headers:?}"
            );
        }
    }

    #[test]
    fn never_a_wildcard_never_credentials() {
        for (name, value) in preflight_headers("https://a.example")
            .into_iter()
            .chain(response_headers("https://a.example"))
        {
            assert_ne!(value, "*", "{name}");
            assert_ne!(name, "Access-Control-Allow-Credentials");
        }
        let h = response_headers("https://a.example");
        assert!(h.contains(&(
            "Access-Control-Allow-Origin",
            "https://a.example".to_string()
        )));
        assert!(h.contains(&("Vary", "Origin".to_string())));
    }
}
