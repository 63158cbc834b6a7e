//! Downloads of stored mail (U2): what a download is called and where a decoded attachment is
//! kept. A download is always `attachment` (RFC 6266) with an ASCII fallback name and, when the
//! name is not plain ASCII, its UTF-8 form (RFC 5987 `filename*`), so that a hostile name can
//! neither break the header nor pick a path.

/// The longest file name offered (characters), extension kept.
const MAX_NAME_CHARS: usize = 100;

/// A file name cleaned of what a header or a file system must not see: control characters,
/// path separators, quotes, backslashes, leading dots; at most 100 characters; never empty.
pub fn clean_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || "/\\\"'<>:|?*;%".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out: String = trimmed.chars().take(MAX_NAME_CHARS).collect();
    if trimmed.chars().count() > MAX_NAME_CHARS {
        // Keep the extension: it is what opens the file with the right program.
        if let Some((_, ext)) = trimmed.rsplit_once('.').filter(|(_, e)| e.len() <= 10) {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            out = trimmed.chars().take(keep).collect::<String>() + "." + ext;
        }
    }
    if out.is_empty() {
        "attachment".into()
    } else {
        out
    }
}

/// The `Content-Disposition` value of a download named `name`: `attachment; filename="..."`
/// with an ASCII-only fallback, plus `filename*=UTF-8''...` (percent-encoded) when the name is
/// not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let clean = clean_filename(name);
    let ascii: String = clean
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    if ascii == clean {
        return format!("attachment; filename=\"{ascii}\"");
    }
    // RFC 5987 attr-char kept, the rest percent-encoded.
    let encoded = percent_encode(&clean, b"!#$&+-.^_`|~");
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `s` with every byte but ASCII letters, digits and `keep` percent-encoded (`%2F`).
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where the decoded attachment `index` of message `message` (its id in the mailbox) is kept for
/// presigned downloads: under the organisation and the mailbox, derived by the service only.
pub fn part_key(org: &str, mailbox: &str, message: &str, index: usize) -> String {
    format!("parts/{org}/{mailbox}/{message}/{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_encoded() {
        assert_eq!(
            content_disposition("r.pdf"),
            "attachment; filename=\"r.pdf\""
        );
        assert_eq!(
            content_disposition("a\r\nb\".pdf"),
            "attachment; filename=\"a__b_.pdf\""
        );
        assert_eq!(clean_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(clean_filename("..."), "attachment");
        assert_eq!(
            content_disposition("Grüße €.txt"),
            "attachment; filename=\"Gr__e _.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%E2%82%AC.txt"
        );
        let long = format!("{}.pdf", "x".repeat(300));
        let c = clean_filename(&long);
        assert_eq!(c.chars().count(), 100);
        assert!(c.ends_with(".pdf"));
        assert_eq!(
            part_key("acme", "bob@acme.test", "i1", 2),
            "parts/acme/bob@acme.test/i1/2"
        );
    }
}
