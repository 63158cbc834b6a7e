//! Helpers for the portal tests: an organisation with a signed link, reading the page's forms,
//! posting them, and a snapshot of everything the organisation has in the table.

use crate::api::ApiRig;
use crate::inbound_org;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::ports::store::ConfigStore;
use std::collections::HashMap;

/// Puts `org`'s configuration (time zone `zone`) and returns a signed link token for it.
pub async fn org_with_link(rig: &ApiRig, org: &str, zone: &str) -> String {
    let mut cfg = inbound_org(org, 5);
    cfg.time_zone = zone.into();
    rig.store()
        .put_config(&cfg, rig.clock.now())
        .await
        .expect("config");
    rig.env
        .link_keys
        .sign(org, "ep1-0", rig.clock.now())
        .expect("sign")
}

use shared::ports::clock::Clock;

/// GET a page: (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let r = ApiRig::http().get(url).send().await.expect("get");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The hidden fields of the form posting to `/l/{token}/{action}` on `page`.
pub fn form(page: &str, token: &str, action: &str) -> Option<(String, String)> {
    let start = page.find(&format!("action=\"/l/{token}/{action}\""))?;
    let rest = &page[start..];
    let value = |name: &str| -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let i = rest.find(&marker)? + marker.len();
        let j = rest[i..].find('"')?;
        Some(rest[i..i + j].to_string())
    };
    Some((value("form_token")?, value("request_id")?))
}

/// POSTs a URL-encoded form: (status, body).
pub async fn post_form(url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    post_raw(url, "application/x-www-form-urlencoded", body.into_bytes()).await
}

/// POSTs a body with a content type: (status, body).
pub async fn post_raw(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let r = ApiRig::http()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Opens the page and submits the `action` form with `duration` (None for stop).
pub async fn act(rig: &ApiRig, token: &str, action: &str, duration: Option<&str>) -> (u16, String) {
    let (status, page) = get(&rig.url(&format!("/l/{token}"))).await;
    assert_eq!(status, 200, "{page}");
    let (ft, rid) = form(&page, token, action).unwrap_or_else(|| panic!("no {action} form"));
    let mut fields = vec![("form_token", ft.as_str()), ("request_id", rid.as_str())];
    if let Some(d) = duration {
        fields.push(("duration", d));
    }
    post_form(&rig.url(&format!("/l/{token}/{action}")), &fields).await
}

/// Every item of the organisation's partition (one Query, consistent), for "nothing changed".
pub async fn partition(rig: &ApiRig, org: &str) -> Vec<HashMap<String, AttributeValue>> {
    let out = rig
        .store()
        .client()
        .query()
        .table_name(rig.store().table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("ORG#{org}")))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    out.items.unwrap_or_default()
}

/// All `href` values of a page.
pub fn links(page: &str) -> Vec<String> {
    page.match_indices("href=\"")
        .filter_map(|(i, m)| {
            let rest = &page[i + m.len()..];
            rest.find('"').map(|j| rest[..j].replace("&amp;", "&"))
        })
        .collect()
}

/// All form `action` values of a page.
pub fn form_actions(page: &str) -> Vec<String> {
    page.match_indices("<form method=\"post\" action=\"")
        .filter_map(|(i, m)| {
            let rest = &page[i + m.len()..];
            rest.find('"').map(|j| rest[..j].to_string())
        })
        .collect()
}
