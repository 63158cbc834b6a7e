//! The Online Inbox as an installable app (issue 17): the web app manifest, its icons, the
//! service worker (`/inbox/sw.js`, scope `/inbox`), the script that registers it and keeps
//! drafts (`/static/pwa.js`), and the page shown offline when nothing was kept for an address.
//! All of it is static, included at build time, and needs no session: it holds nobody's mail.

use crate::web::render;
use askama::Template;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

/// The web app manifest, served at `/static/inbox.webmanifest`.
pub const MANIFEST: &str = include_str!("../../static/inbox.webmanifest");
/// The service worker, served at `/inbox/sw.js`.
pub const SERVICE_WORKER: &str = include_str!("../../static/sw.js");
/// The app's page script, served at `/static/pwa.js`.
pub const PWA_JS: &str = include_str!("../../static/pwa.js");
const ICON_SVG: &str = include_str!("../../static/icons/icon.svg");
const ICON_192: &[u8] = include_bytes!("../../static/icons/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../../static/icons/icon-512.png");

/// Icons and the manifest change only with a release: a day in browsers' caches.
const LONG: &str = "public, max-age=86400";

fn asset(body: impl IntoResponse, content_type: &'static str, cache: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /inbox/sw.js`: the service worker. `no-cache`: the browser asks each time whether it
/// changed, so a release reaches installed apps at their next visit. `Service-Worker-Allowed`:
/// a worker under `/inbox/` may control `/inbox` itself (the start page) only with it.
pub async fn service_worker() -> Response {
    let mut r = asset(SERVICE_WORKER, "text/javascript; charset=utf-8", "no-cache");
    r.headers_mut().insert(
        HeaderName::from_static("service-worker-allowed"),
        HeaderValue::from_static("/inbox"),
    );
    r
}

/// `GET /static/pwa.js`.
pub async fn script() -> Response {
    render::script(PWA_JS)
}

/// `GET /static/inbox.webmanifest`.
pub async fn manifest() -> Response {
    asset(MANIFEST, "application/manifest+json", LONG)
}

/// `GET /static/icons/icon.svg`.
pub async fn icon_svg() -> Response {
    asset(ICON_SVG, "image/svg+xml", LONG)
}

/// `GET /static/icons/icon-192.png`.
pub async fn icon_192() -> Response {
    asset(ICON_192, "image/png", LONG)
}

/// `GET /static/icons/icon-512.png`.
pub async fn icon_512() -> Response {
    asset(ICON_512, "image/png", LONG)
}

#[derive(Template)]
#[template(path = "inbox/offline.html")]
struct OfflinePage {
    title: &'static str,
    nav: Option<String>,
}

/// `GET /inbox/offline`: what the service worker shows for a page it never kept, with no
/// network. Cached briefly like the scripts (it is part of the app's shell).
pub async fn offline() -> Response {
    match render::page(&OfflinePage {
        title: "Offline",
        nav: None,
    }) {
        Ok(Html(page)) => asset(
            Html(page),
            "text/html; charset=utf-8",
            "public, max-age=300",
        ),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_its_start_scope_and_icons() {
        let m: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        assert_eq!(m["start_url"], "/inbox");
        assert_eq!(m["scope"], "/inbox");
        assert_eq!(m["display"], "standalone");
        let sizes: Vec<&str> = m["icons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["sizes"].as_str().unwrap())
            .collect();
        assert_eq!(sizes, ["any", "192x192", "512x512"]);
    }

    #[test]
    fn the_icons_are_pngs_of_their_size() {
        for (png, size) in [(ICON_192, 192u32), (ICON_512, 512)] {
            assert_eq!(&png[1..4], b"PNG");
            let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
            let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
            assert_eq!((w, h), (size, size));
        }
    }
}
