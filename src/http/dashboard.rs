//! The dashboard's static files (`/dashboard`, `/dashboard/app.js`,
//! `/dashboard/app.css`): one page and its script and style, kept beside the
//! worker as static assets (the build copies them), with no CDN and no
//! build step; the worker answers with them and this module's headers. The
//! page reads the statistics, message and suppression APIs with a key the
//! person types in; it holds no data of its own.
//!
//! The page's policy allows only its own script, style and API calls
//! (`connect-src 'self'`), so a value from the API that tried to be markup
//! could not run even if the script wrote it as markup (it writes text).
//! Must not: read keys or records (the page asks the API, with the key).

/// One of the dashboard's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    /// Its path among the static assets (`/dashboard/<name>`).
    pub path: &'static str,
}

/// The page's `Content-Security-Policy`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const PAGE: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    path: "/dashboard/index.html",
};

/// The file at `/dashboard` (`None`) or `/dashboard/<name>`.
pub fn asset(name: Option<&str>) -> Option<Asset> {
    match name {
        None | Some("index.html") => Some(PAGE),
        Some("app.js") => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            path: "/dashboard/app.js",
        }),
        Some("app.css") => Some(Asset {
            content_type: "text/css; charset=utf-8",
            path: "/dashboard/app.css",
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's content as the build copies it.
    fn body(asset: Option<Asset>) -> &'static str {
        match asset.map(|a| a.path) {
            Some("/dashboard/index.html") => include_str!("dashboard/index.html"),
            Some("/dashboard/app.js") => include_str!("dashboard/app.js"),
            Some("/dashboard/app.css") => include_str!("dashboard/app.css"),
            other => panic!("no file {other:?}"),
        }
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let page = body(asset(None));
        for reference in ["/dashboard/app.js", "/dashboard/app.css"] {
            assert!(page.contains(reference), "{reference}");
            let name = reference.trim_start_matches("/dashboard/");
            assert!(asset(Some(name)).is_some(), "{name}");
        }
        for asset in [asset(None), asset(Some("app.js")), asset(Some("app.css"))] {
            let body = body(asset);
            // No third-party host and no inline script or handler.
            assert!(!body.contains("https://"), "{body:.60}");
            assert!(!body.contains("http://") || body.contains("http://www.w3.org/2000/svg"));
        }
        assert!(!page.contains("onclick") && !page.contains("<script>"));
        // The policy allows no inline style: nothing may rely on one.
        assert!(!page.contains("style=\""));
        let script = body(asset(Some("app.js")));
        assert!(!script.contains("style:") && !script.contains(".style."));
        assert_eq!(asset(Some("../Cargo.toml")), None);
        assert_eq!(asset(Some("app.map")), None);
    }

    #[test]
    fn the_script_writes_api_values_as_text() {
        let script = body(asset(Some("app.js")));
        assert!(!script.contains("innerHTML") && !script.contains("outerHTML"));
        assert!(!script.contains("insertAdjacentHTML") && !script.contains("document.write"));
        // The key travels in a header only.
        assert!(script.contains("Authorization: `Bearer "));
        assert!(!script.contains("?key=") && !script.contains("&key="));
    }
}
