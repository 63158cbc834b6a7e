//! The syntax of the values a configuration holds: addresses, domains, hosts, telephone
//! numbers, identifiers and secret names. Other modules use these too (an address typed in the
//! Online Inbox, a mobile number imported with the directory).

/// `domain` equals `parent` or is a subdomain of it, ignoring case.
pub fn domain_within(domain: &str, parent: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let parent = parent.trim_end_matches('.').to_ascii_lowercase();
    domain == parent || domain.ends_with(&format!(".{parent}"))
}

/// An E.164 telephone number: `+`, a country code not starting with 0, at most 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Organisation identifiers appear in keys, probe addresses and URLs: keep them plain.
pub fn is_org_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS name: labels of letters, digits and inner hyphens, at least two labels.
pub fn is_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_label)
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A host name (one label is allowed: `localhost`, an internal name) or an IP address.
pub fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// A plain `local@domain` address, as SMTP carries it (no display name, no comments).
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && is_domain(domain)
}
