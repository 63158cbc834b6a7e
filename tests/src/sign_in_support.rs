//! Support for the sign-in tests (U11): an organisation `acme` (domain `acme.test`) on an
//! [`InboxRig`] with a user directory, forms posted as the service's own pages post them, and
//! the codes read back from what moto's SNS and SES sent.

use crate::api::ApiRig;
use crate::inbox_support::{InboxRig, ORG};
use shared::domain::directory::{DirectoryUser, UserDirectory};
use shared::ports::store::ContinuityStore;

/// A fresh E.164 number (moto keeps every SMS of the run: each test uses its own numbers).
pub fn phone() -> String {
    format!("+4477009{:05}", rand::random::<u32>() % 100_000)
}

/// A fresh alternate address, away from the organisation's domain.
pub fn home(local: &str) -> String {
    format!("{local}-{}@home.example", rand::random::<u32>())
}

/// A user of the directory.
pub fn user(address: &str, mobile: Option<&str>, alternate: Option<&str>) -> DirectoryUser {
    DirectoryUser {
        address: address.into(),
        name: Some("A User".into()),
        mobile: mobile.map(Into::into),
        alternate: alternate.map(Into::into),
    }
}

/// Stores `users` as acme's directory (the import's store call).
pub async fn import(rig: &InboxRig, users: Vec<DirectoryUser>) {
    let d = UserDirectory {
        users: users.into_iter().map(|u| (u.address.clone(), u)).collect(),
        synced_at: Some(rig.now()),
    };
    rig.api
        .store()
        .put_user_directory(ORG, &d)
        .await
        .expect("import users");
}

/// An answer: status, the session cookie it set (if any), where it redirects, its body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub cookie: Option<String>,
    pub location: Option<String>,
    pub body: String,
}

/// A client from `source` (a loopback address: 127.0.0.1, 127.0.0.2, ...), no redirects
/// followed, no cookies kept.
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source.parse::<std::net::IpAddr>().ok())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Posts a form as the service's own page does (its origin).
pub async fn post_form(
    api: &ApiRig,
    http: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Answer {
    let r = http
        .post(api.url(path))
        .header("origin", &api.base)
        .form(form)
        .send()
        .await
        .expect("post");
    answer(r).await
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ec_session=") && !c.starts_with("ec_session=;"))
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.text().await.unwrap_or_default();
    Answer {
        status,
        cookie,
        location,
        body,
    }
}

/// "Send me a code" for `address`, from `http`.
pub async fn request_code(api: &ApiRig, http: &reqwest::Client, address: &str) -> Answer {
    post_form(
        api,
        http,
        "/auth/code",
        &[("address", address), ("next", "/inbox")],
    )
    .await
}

/// The code entered for `address`.
pub async fn enter_code(api: &ApiRig, http: &reqwest::Client, address: &str, code: &str) -> Answer {
    post_form(
        api,
        http,
        "/auth/code/verify",
        &[("address", address), ("code", code), ("next", "/inbox")],
    )
    .await
}

/// A GET with the session cookie `cookie`, as a browser asking for a page.
pub async fn get_with(api: &ApiRig, cookie: &str, path: &str) -> Answer {
    let r = ApiRig::http()
        .get(api.url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    answer(r).await
}

/// The 8-digit codes in the SMS moto's SNS recorded for `phone`, oldest first.
pub async fn sms_codes(phone: &str) -> Vec<String> {
    crate::sms_to(phone)
        .await
        .iter()
        .filter_map(|m| m.get(..8).filter(|c| c.bytes().all(|b| b.is_ascii_digit())))
        .map(str::to_string)
        .collect()
}

/// The codes in the emails moto's SES sent to `address`, oldest first (from each message's
/// plain text: the code stands alone on its line).
pub async fn email_codes(address: &str) -> Vec<String> {
    crate::emails_to(address)
        .await
        .iter()
        .filter_map(|raw| {
            let m = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
            let text = m.body_text(0)?.to_string();
            text.lines()
                .map(str::trim)
                .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .collect()
}
