//! The Online Inbox as an installable app, over HTTP (issue 17): the manifest, icons and service
//! worker with their content types and cache headers, the content security policy that lets
//! them load, gzip of pages and static files when the client accepts it (and only then), and
//! sign-out telling the browser to clear what it kept. Against the API on a loopback port with
//! DynamoDB Local and moto.

use integration_tests::inbox_support::{addr, plain, InboxRig};
use integration_tests::{t, unique};
use reqwest::header::HeaderMap;
use std::io::Read;

const NOW: &str = "2026-11-23T10:00:00Z";

async fn get(rig: &InboxRig, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = rig.http.get(rig.api.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("GET");
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.bytes().await.expect("body").to_vec())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn gunzip(z: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::GzDecoder::new(z)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

#[tokio::test]
async fn the_manifest_icons_and_service_worker_are_served_with_their_types_and_cache_headers() {
    let rig = InboxRig::start(t(NOW)).await;
    let (s, h, body) = get(&rig, "/inbox/sw.js", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert_eq!(header(&h, "service-worker-allowed"), "/inbox");
    assert!(String::from_utf8_lossy(&body).contains("addEventListener('fetch'"));

    let (s, h, body) = get(&rig, "/static/inbox.webmanifest", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "application/manifest+json");
    assert_eq!(header(&h, "cache-control"), "public, max-age=86400");
    let m: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(m["start_url"], "/inbox");
    // Every icon the manifest names is served, as the type it says.
    for icon in m["icons"].as_array().expect("icons") {
        let src = icon["src"].as_str().expect("src");
        let (s, h, body) = get(&rig, src, &[]).await;
        assert_eq!(s, 200, "{src}");
        assert_eq!(header(&h, "content-type"), icon["type"], "{src}");
        assert_eq!(header(&h, "cache-control"), "public, max-age=86400");
        if src.ends_with(".png") {
            assert_eq!(&body[..8], b"\x89PNG\r\n\x1a\n", "{src}");
        } else {
            assert!(body.starts_with(b"<svg"), "{src}");
        }
    }

    let (s, h, body) = get(&rig, "/static/pwa.js", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert!(String::from_utf8_lossy(&body).contains("/inbox/sw.js"));

    // The offline page needs no session (it holds nobody's mail).
    let (s, h, body) = get(&rig, "/inbox/offline", &[]).await;
    assert_eq!(s, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert!(String::from_utf8_lossy(&body).contains("You are offline"));

    // The pages' policy lets the worker and the manifest load, and nothing else was loosened.
    let csp = header(&h, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "worker-src 'self'",
        "manifest-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
}

#[tokio::test]
async fn pages_and_static_files_are_gzipped_only_for_clients_that_accept_it() {
    let rig = InboxRig::start(t(NOW)).await;
    let bob = addr("bob");
    for i in 0..40i64 {
        let raw = plain(
            "Alice <alice@example.org>",
            &bob,
            &format!("Quarterly figures {i}"),
            &format!("{}@example.org", unique("m")),
            "x",
        );
        rig.file(&bob, rig.now() - chrono::Duration::minutes(i + 1), &raw)
            .await;
    }
    let token = rig.token("bob", false);
    let auth = format!("Bearer {token}");
    let page = format!("/inbox/{bob}");
    let html = [("authorization", auth.as_str()), ("accept", "text/html")];
    let (s, plain_h, plain_body) = get(&rig, &page, &html).await;
    assert_eq!(s, 200);
    assert_eq!(header(&plain_h, "content-encoding"), "");
    assert_eq!(header(&plain_h, "vary"), "accept-encoding");
    let with_gzip = [
        html[0],
        html[1],
        ("accept-encoding", "gzip, deflate, br, zstd"),
    ];
    let (s, h, z) = get(&rig, &page, &with_gzip).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-encoding"), "gzip");
    assert_eq!(header(&h, "vary"), "accept-encoding");
    assert_eq!(header(&h, "content-length"), z.len().to_string());
    // The same page (the idempotency keys of the page are not on a list page).
    assert_eq!(gunzip(&z), plain_body);
    assert!(
        z.len() * 3 < plain_body.len(),
        "{} -> {}",
        plain_body.len(),
        z.len()
    );
    // The security headers survive compression.
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert!(header(&h, "content-security-policy").contains("default-src 'none'"));
    // gzip refused explicitly: the plain body.
    let refused = [html[0], html[1], ("accept-encoding", "br, gzip;q=0")];
    let (_, h, body) = get(&rig, &page, &refused).await;
    assert_eq!(header(&h, "content-encoding"), "");
    assert_eq!(body, plain_body);

    // Static text too; images (compressed already) and small bodies as they are.
    let gz = [("accept-encoding", "gzip")];
    let (_, h, z) = get(&rig, "/static/pwa.js", &gz).await;
    assert_eq!(header(&h, "content-encoding"), "gzip");
    assert_eq!(gunzip(&z), api::inbox::app::PWA_JS.as_bytes());
    let (_, h, z) = get(&rig, "/inbox/sw.js", &gz).await;
    assert_eq!(header(&h, "content-encoding"), "gzip");
    assert_eq!(header(&h, "service-worker-allowed"), "/inbox");
    assert_eq!(gunzip(&z), api::inbox::app::SERVICE_WORKER.as_bytes());
    let (_, h, body) = get(&rig, "/static/icons/icon-512.png", &gz).await;
    assert_eq!(header(&h, "content-encoding"), "");
    assert_eq!(&body[1..4], b"PNG");
    let (_, h, _) = get(&rig, "/static/icons/icon.svg", &gz).await;
    assert_eq!(
        header(&h, "content-encoding"),
        "",
        "276 bytes: not worth it"
    );
    // JSON answers, refusals included.
    let (s, h, z) = get(&rig, "/api/v1/mailboxes/nobody@acme.test/messages", &gz).await;
    assert_eq!(s, 401);
    assert_eq!(header(&h, "content-encoding"), "", "a short refusal");
    assert!(String::from_utf8_lossy(&z).contains("error"));
}

#[tokio::test]
async fn signing_out_tells_the_browser_to_clear_what_the_inbox_kept() {
    let rig = InboxRig::start(t(NOW)).await;
    let r = rig
        .http
        .post(rig.api.url("/auth/logout"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        header(r.headers(), "clear-site-data"),
        "\"cache\", \"storage\""
    );
    // A sign-out from another site is refused and clears nothing.
    let r = rig
        .http
        .post(rig.api.url("/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(header(r.headers(), "clear-site-data"), "");
}
