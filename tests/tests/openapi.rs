//! The OpenAPI document (`functions/api/openapi.yaml`) and the router agree: every documented
//! route is served (no `no_route` 404, no 405), and every route the code declares is documented.

use integration_tests::api::ApiRig;
use integration_tests::t;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn documented() -> (serde_norway::Value, Vec<(String, String)>) {
    let text =
        std::fs::read_to_string(root().join("functions/api/openapi.yaml")).expect("openapi.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("openapi.yaml parses");
    let mut out = Vec::new();
    let paths = doc["paths"].as_mapping().expect("paths");
    for (path, item) in paths {
        let path = path.as_str().expect("path").to_string();
        let item = item.as_mapping().expect("path item");
        for (m, op) in item {
            let m = m.as_str().expect("method");
            assert!(
                METHODS.contains(&m) || m == "parameters",
                "{path}: unexpected key {m}"
            );
            if m == "parameters" {
                continue;
            }
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {path}: no summary"
            );
            assert!(
                op["responses"].as_mapping().is_some_and(|r| !r.is_empty()),
                "{m} {path}: no responses"
            );
            out.push((m.to_string(), path.clone()));
        }
    }
    (doc, out)
}

/// Every `.route("...")` path declared in the API crate's sources.
fn declared() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("src dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("source");
                assert!(
                    !text.contains(".nest("),
                    "{}: nested routers are not followed by this test; declare full paths",
                    p.display()
                );
                let mut rest = text.as_str();
                while let Some(i) = rest.find(".route(") {
                    rest = &rest[i + 7..];
                    let r = rest.trim_start();
                    if let Some(r) = r.strip_prefix('"') {
                        if let Some(end) = r.find('"') {
                            out.insert(r[..end].to_string());
                        }
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&root().join("functions/api/src"), &mut out);
    out
}

#[test]
fn every_declared_route_is_documented() {
    let (_, ops) = documented();
    let paths: BTreeSet<String> = ops.into_iter().map(|(_, p)| p).collect();
    let missing: Vec<_> = declared()
        .into_iter()
        .filter(|p| !paths.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "routes served but not in openapi.yaml: {missing:?}"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let rig = ApiRig::start(t("2026-11-23T10:00:00Z")).await;
    let http = ApiRig::http();
    let (_, ops) = documented();
    assert!(
        ops.len() >= 5,
        "suspiciously few documented operations: {}",
        ops.len()
    );
    let mut failures = Vec::new();
    for (method, path) in &ops {
        // Path parameters get a harmless sample value.
        let mut concrete = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => in_param = true,
                '}' => {
                    in_param = false;
                    concrete.push_str("sample");
                }
                _ if in_param => {}
                _ => concrete.push(c),
            }
        }
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = http
            .request(m, rig.url(&concrete))
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status == 405 || (status == 404 && body.contains("\"no_route\"")) {
            failures.push(format!("{method} {path} -> {status}"));
        }
    }
    assert!(
        failures.is_empty(),
        "documented but not served: {failures:?}"
    );
    // The check itself can fail: an undocumented path answers no_route.
    let resp = http
        .get(rig.url("/no/such/route"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.text().await.unwrap_or_default().contains("no_route"));
}
