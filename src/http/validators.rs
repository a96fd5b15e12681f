//! Cache validators (`ETag`, `Last-Modified`), conditional requests and byte ranges.
//!
//! Every response tells the browser to revalidate (`Cache-Control: no-cache`), so a reload never
//! shows a stale asset, while a 304 keeps that revalidation cheap.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE};

/// The validators of one representation of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A weak entity tag, quoted, e.g. `W/"1a2-18c1f3a2b"`.
    pub etag: String,
    /// The modification time, truncated to whole seconds as HTTP dates are.
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// Weak validators from a file's size and modification time. `variant` tells apart different
    /// bodies made from the same file (a page with the reload script injected is not the file).
    pub fn from_file(len: u64, modified: Option<SystemTime>, variant: Option<u64>) -> Self {
        let since_epoch = modified.and_then(|time| time.duration_since(UNIX_EPOCH).ok());
        let nanos = since_epoch.map_or(0, |since| since.as_nanos());
        let etag = match variant {
            Some(variant) => format!("W/\"{len:x}-{nanos:x}-{variant:x}\""),
            None => format!("W/\"{len:x}-{nanos:x}\""),
        };
        let last_modified =
            since_epoch.map(|since| UNIX_EPOCH + Duration::from_secs(since.as_secs()));
        Validators {
            etag,
            last_modified,
        }
    }

    /// Validators for bytes that have no file behind them (the compiled-in client script).
    pub fn from_content(content: &[u8]) -> Self {
        Validators {
            etag: format!("W/\"{:x}-{:x}\"", content.len(), hash(content)),
            last_modified: None,
        }
    }

    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }

    /// Whether a GET or HEAD with these request headers gets `304 Not Modified` (RFC 9110 13.2.2:
    /// `If-None-Match` wins over `If-Modified-Since`).
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(if_none_match) = headers.get(IF_NONE_MATCH) {
            let Ok(list) = if_none_match.to_str() else {
                return false;
            };
            return list
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || opaque_tag(tag) == opaque_tag(&self.etag));
        }
        let since = headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| httpdate::parse_http_date(value).ok());
        match (since, self.last_modified) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        }
    }
}

/// What to send for a body of `len` bytes last modified at `last_modified`, given the request's
/// `Range` and `If-Range`.
pub fn range(headers: &HeaderMap, last_modified: Option<SystemTime>, len: u64) -> RangeAnswer {
    let Some(range) = headers.get(RANGE).and_then(|value| value.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    if !if_range_holds(headers, last_modified) {
        return RangeAnswer::Full;
    }
    parse_range(range, len)
}

/// `If-Range` needs a strong match (RFC 9110 13.1.5): our entity tags are weak, so only an
/// exact date match lets the range through.
fn if_range_holds(headers: &HeaderMap, last_modified: Option<SystemTime>) -> bool {
    let Some(value) = headers.get(IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    match httpdate::parse_http_date(value.trim()) {
        Ok(date) => last_modified == Some(date),
        Err(_) => false,
    }
}

/// A stable hash (std's `DefaultHasher` uses fixed keys), enough to tell contents apart in a tag.
pub fn hash(content: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}

/// The entity tag without its weakness marker, for the weak comparison `If-None-Match` uses.
fn opaque_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The answer to a `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: send the whole body with 200.
    Full,
    /// Send these bytes with 206.
    Partial(Range<u64>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Parses a `Range` header for a body of `len` bytes. Only a single range is honoured: a browser
/// never asks a dev server for several, and answering with the whole body is always allowed.
/// A header we do not understand is ignored, as RFC 9110 14.2 asks.
fn parse_range(header: &str, len: u64) -> RangeAnswer {
    match requested_range(header, len) {
        None => RangeAnswer::Full,
        Some(range) if range.start >= len || range.is_empty() => RangeAnswer::Unsatisfiable,
        Some(range) => RangeAnswer::Partial(range),
    }
}

/// The bytes a single-range header asks for, clamped to the body; `None` if it is not one.
fn requested_range(header: &str, len: u64) -> Option<Range<u64>> {
    let (unit, spec) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix = parse_position(last)?;
        return Some(len.saturating_sub(suffix)..len);
    }
    let first = parse_position(first)?;
    let end = if last.is_empty() {
        len
    } else {
        let last = parse_position(last)?;
        if last < first {
            return None;
        }
        last.saturating_add(1).min(len)
    };
    Some(first..end)
}

/// A byte position: ASCII digits only (no sign, no spaces inside). A number too large for u64
/// is still a position, past the end of any file.
fn parse_position(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Partial(90..100));
        assert_eq!(parse_range("bytes=-10", 100), Partial(90..100));
        assert_eq!(parse_range("bytes=-1000", 100), Partial(0..100));
        assert_eq!(parse_range("bytes=50-1000", 100), Partial(50..100));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=9-1", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("bytes=+1-2", 100), Full);
        assert_eq!(parse_range("bytes=-", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(
            parse_range("bytes=18446744073709551615-", 100),
            Unsatisfiable
        );
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 100),
            Partial(0..100)
        );
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 100),
            Unsatisfiable
        );
        assert_eq!(parse_range("BYTES=0-1", 100), Partial(0..2));
    }

    #[test]
    fn variants_get_their_own_tag() {
        let time = Some(UNIX_EPOCH + Duration::from_millis(1_500));
        let plain = Validators::from_file(10, time, None);
        let injected = Validators::from_file(10, time, Some(7));
        assert_ne!(plain.etag, injected.etag);
        assert!(plain.etag.starts_with("W/\""));
        assert_eq!(
            plain.last_modified,
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
    }
}
