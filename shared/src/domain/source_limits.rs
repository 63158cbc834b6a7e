//! Per-source-address limits of the HTTP API's public doors (issue 12): alert links (`/l/*`)
//! and sign-in (`/auth/*`) are reached without an account, so the service counts their requests
//! per source address itself, each area against its own limit in fixed windows. The rest of
//! the API needs a signed-in caller and is bounded by API Gateway's stage throttles.
//!
//! A source is the caller's address as API Gateway saw it (the TCP peer locally). IPv6 clients
//! are counted by their /64: one host commonly holds a whole /64, so counting single addresses
//! would give one host 2^64 allowances. Pure: time is a parameter.

use chrono::{DateTime, Utc};
use std::net::{IpAddr, Ipv6Addr};

/// The parts of the API counted per source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// Alert links' pages and actions (`/l/*`).
    Links,
    /// Sign-in pages and steps (`/auth/*`): the identity provider's, codes, passkeys.
    SignIn,
}

impl Area {
    /// Stable name: part of the counter's key and of log lines.
    pub fn name(self) -> &'static str {
        match self {
            Area::Links => "links",
            Area::SignIn => "auth",
        }
    }

    /// The area a request path belongs to, if it is counted.
    pub fn of_path(path: &str) -> Option<Area> {
        if path.starts_with("/l/") {
            Some(Area::Links)
        } else if path.starts_with("/auth/") {
            Some(Area::SignIn)
        } else {
            None
        }
    }

    /// What the area is called in a refusal.
    fn what(self) -> &'static str {
        match self {
            Area::Links => "alert-link pages",
            Area::SignIn => "sign-in pages",
        }
    }
}

/// One area's allowance: `requests` per source in each window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimit {
    pub requests: u32,
    pub window_secs: u32,
}

impl SourceLimit {
    /// Alert links: a few administrators open a link and act on it (a page and its action are
    /// two requests); a mail scanner opening every link from one address is stopped long before
    /// it costs anything.
    pub const LINKS_DEFAULT: SourceLimit = SourceLimit {
        requests: 120,
        window_secs: 600,
    };
    /// Sign-in: a user takes about four requests (the start page, the code form, the code
    /// request, the code). An organisation behind one NAT address signs many users in at once
    /// during an outage: the limit is for scripts, not for offices.
    pub const SIGN_IN_DEFAULT: SourceLimit = SourceLimit {
        requests: 300,
        window_secs: 600,
    };

    /// Refuses a limit that could not work (no requests, or a window outside 1 s..1 day).
    pub fn checked(self, name: &str) -> Result<Self, String> {
        if self.requests == 0 || self.window_secs == 0 || self.window_secs > 86_400 {
            return Err(format!(
                "{name}: a limit needs at least 1 request in a window of 1 to 86400 seconds"
            ));
        }
        Ok(self)
    }

    /// The start of the window containing `now`, as epoch seconds.
    pub fn window(&self, now: DateTime<Utc>) -> i64 {
        let w = i64::from(self.window_secs);
        now.timestamp() - now.timestamp().rem_euclid(w)
    }

    /// Seconds from `now` to the end of its window (at least 1): the refusal's `Retry-After`.
    pub fn retry_after(&self, now: DateTime<Utc>) -> u64 {
        let end = self.window(now) + i64::from(self.window_secs);
        let millis = end * 1000 - now.timestamp_millis();
        // Rounded up: a client that waits exactly this long is in the next window.
        ((millis + 999) / 1000).max(1) as u64
    }
}

/// A request over its area's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRefusal {
    pub area: Area,
    pub limit: SourceLimit,
    /// Seconds until the window ends.
    pub retry_after: u64,
}

impl std::fmt::Display for SourceRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.limit.window_secs;
        let window = if w.is_multiple_of(60) {
            format!("{} minutes", w / 60)
        } else {
            format!("{w} seconds")
        };
        write!(
            f,
            "Too many requests to {} from your network address: at most {} in {window}. \
             Try again in {} seconds. Nothing was changed.",
            self.area.what(),
            self.limit.requests,
            self.retry_after
        )
    }
}

/// The key a source is counted under: an IPv4 address as it is (also when written as an
/// IPv4-mapped IPv6 address), an IPv6 address by its /64 (`2001:db8:1:2::/64`); anything else
/// (no address known) as given, cut to 64 characters.
pub fn source_key(addr: &str) -> String {
    match addr.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Err(_) => addr.trim().chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_ipv4_as_is() {
        assert_eq!(source_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(source_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            source_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            source_key("2001:db8:1:2::1"),
            source_key("2001:db8:1:2:ffff::9")
        );
        assert_ne!(source_key("2001:db8:1:2::1"), source_key("2001:db8:1:3::1"));
        assert_eq!(source_key("unknown"), "unknown");
        assert_eq!(source_key(&"x".repeat(300)).len(), 64);
    }

    #[test]
    fn areas_by_path() {
        assert_eq!(Area::of_path("/l/abc"), Some(Area::Links));
        assert_eq!(Area::of_path("/l/abc/suspend"), Some(Area::Links));
        assert_eq!(Area::of_path("/auth/code"), Some(Area::SignIn));
        assert_eq!(Area::of_path("/inbox"), None);
        assert_eq!(Area::of_path("/login"), None);
        assert_eq!(Area::of_path("/api/v1/config"), None);
    }

    #[test]
    fn windows_and_retry_after() {
        let l = SourceLimit {
            requests: 5,
            window_secs: 600,
        };
        let now = t("2026-11-30T10:03:20.500Z");
        assert_eq!(l.window(now), t("2026-11-30T10:00:00Z").timestamp());
        assert_eq!(l.retry_after(now), 400);
        assert_eq!(l.retry_after(t("2026-11-30T10:00:00Z")), 600);
        assert_eq!(l.retry_after(t("2026-11-30T10:09:59.900Z")), 1);
        assert!(SourceLimit {
            requests: 0,
            window_secs: 60
        }
        .checked("X")
        .is_err());
        assert!(SourceLimit::LINKS_DEFAULT.checked("X").is_ok());
    }

    #[test]
    fn the_refusal_says_what_how_many_and_when() {
        let r = SourceRefusal {
            area: Area::Links,
            limit: SourceLimit::LINKS_DEFAULT,
            retry_after: 42,
        };
        let text = r.to_string();
        assert!(text.contains("alert-link pages"), "{text}");
        assert!(text.contains("at most 120 in 10 minutes"), "{text}");
        assert!(text.contains("42 seconds"), "{text}");
    }
}
