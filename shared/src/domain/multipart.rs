//! `multipart/form-data` (RFC 7578) as a browser posts a form with a file input and no script:
//! the compose form's fields and its files. The body is whole in memory (the API takes at most
//! what Lambda's 6 MB event holds), so parts are slices found by their boundary; file contents
//! are kept byte for byte (no transfer encoding is applied by browsers).

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The field's name (`Content-Disposition: form-data; name=...`).
    pub name: String,
    /// The file's name, for a file input (may be empty: no file chosen).
    pub filename: Option<String>,
    /// The part's `Content-Type`, when given.
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Why a body is not a form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the form has no boundary")]
    NoBoundary,
    #[error("the form is not well formed: {0}")]
    Malformed(&'static str),
}

/// The boundary of a `multipart/form-data` content type; `None` for any other type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A parameter of a `Content-Disposition` value (`name`, `filename`), quotes removed.
fn param(value: &str, key: &str) -> Option<String> {
    let mut rest = value;
    while let Some(i) = rest.find(';') {
        rest = rest[i + 1..].trim_start();
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        if k.trim().eq_ignore_ascii_case(key) {
            let v = v.trim_start();
            if let Some(q) = v.strip_prefix('"') {
                // Browsers escape `"` as %22 and keep backslashes: the value ends at the quote.
                return q.find('"').map(|end| q[..end].to_string());
            }
            return Some(v.split(';').next().unwrap_or_default().trim().to_string());
        }
    }
    None
}

/// The parts of `body`, a `multipart/form-data` body with `boundary`.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut at = find(body, delim, 0)
        .ok_or(MultipartError::Malformed("no boundary in the body"))?
        + delim.len();
    let next_delim = [b"\r\n".as_slice(), delim].concat();
    let mut parts = vec![];
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err(MultipartError::Malformed(
                "a boundary is not followed by a line break",
            ));
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at)
            .ok_or(MultipartError::Malformed("a part has no headers"))?;
        let head = std::str::from_utf8(&body[at..head_end])
            .map_err(|_| MultipartError::Malformed("a part's headers are not UTF-8"))?;
        let end = find(body, &next_delim, head_end + 4)
            .ok_or(MultipartError::Malformed("the last boundary is missing"))?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part {
            name: name.ok_or(MultipartError::Malformed("a part has no name"))?,
            filename,
            content_type,
            data: body[head_end + 4..end].to_vec(),
        });
        at = end + next_delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files_as_a_browser_posts_them() {
        let b = "----geckoformboundary1";
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={b}")).as_deref(),
            Some(b)
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        let mut body = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nHi; there\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        let data: Vec<u8> = (0..=255u8).chain(b"\r\n--".iter().copied()).collect();
        body.extend_from_slice(&data);
        body.extend_from_slice(
            format!(
                "\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n\r\n--{b}--\r\n"
            )
            .as_bytes(),
        );
        let parts = parse(&body, b).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "subject");
        assert_eq!(parts[0].data, b"Hi; there");
        assert_eq!(parts[1].filename.as_deref(), Some("a b.bin"));
        assert_eq!(parts[1].data, data);
        assert_eq!(parts[2].filename.as_deref(), Some(""));
        assert!(parts[2].data.is_empty());
    }

    #[test]
    fn broken_bodies_are_refused() {
        assert!(parse(b"nothing", "x").is_err());
        assert!(parse(
            b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            "x"
        )
        .is_err());
        assert!(parse(b"--x\r\n\r\n\r\n--x--", "x").is_err());
    }
}
