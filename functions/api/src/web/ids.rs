//! Request ids: drawn for each form a page renders (and each audited change), and accepted from
//! callers as an `Idempotency-Key`, so that a resubmitted request changes nothing twice.

use base64::Engine;

/// A fresh request id (120 random bits, URL-safe base64).
pub fn request_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>())
}

/// A request id as sent: 8 to 64 letters, digits, `-` or `_`.
pub fn valid_request_id(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_ids_are_valid() {
        let id = request_id();
        assert!(valid_request_id(&id), "{id}");
        assert!(!valid_request_id("short"));
        assert!(!valid_request_id("has space in it"));
    }
}
