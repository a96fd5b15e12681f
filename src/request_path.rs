//! The URL path of a request, decoded once into plain segments, and the way back from segments to
//! the URL path a browser shows in `location.pathname`.
//!
//! Decoding is strict on purpose: a malformed escape, a NUL, a backslash or a `..` segment is never
//! a legitimate request from a browser (browsers resolve `..` before sending), so it is refused
//! instead of being guessed at.

use std::path::{Component, Path};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

/// Bytes a browser percent-encodes in a URL path (WHATWG "path percent-encode set"), plus `%` itself
/// so that a file literally named `100%.html` round-trips.
const PATH_ENCODE_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// Why a request path was refused before touching the file system. Every variant maps to 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path is not valid UTF-8 once decoded")]
    NotUtf8,
    #[error("the path contains a NUL byte or a backslash")]
    ForbiddenByte,
    #[error("the path contains a '..' segment")]
    ParentSegment,
}

/// A decoded request path: only normal segments (no empty, `.` or `..` ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl RequestPath {
    /// Decodes the path part of a request target (no query). Anything after a `#` is dropped: a
    /// fragment never reaches a server from a browser, and must not pick a different file.
    pub fn decode(raw: &str) -> Result<Self, BadPath> {
        let raw = raw.split(['#', '?']).next().unwrap_or_default();
        if !raw.starts_with('/') {
            return Err(BadPath::NotAbsolute);
        }
        check_escapes(raw.as_bytes())?;
        let decoded = percent_decode(raw.as_bytes())
            .decode_utf8()
            .map_err(|_| BadPath::NotUtf8)?;
        if decoded.contains(['\0', '\\']) {
            return Err(BadPath::ForbiddenByte);
        }
        let mut segments = Vec::new();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(BadPath::ParentSegment),
                normal => segments.push(normal.to_owned()),
            }
        }
        let trailing_slash = decoded.ends_with('/') && !segments.is_empty();
        Ok(RequestPath {
            segments,
            trailing_slash,
        })
    }

    /// Builds a path from segments that are already known to be plain names.
    pub fn from_segments(segments: Vec<String>, trailing_slash: bool) -> Self {
        RequestPath {
            segments,
            trailing_slash,
        }
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the request named a directory (`/docs/` rather than `/docs`).
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// The same path with one more segment, e.g. a directory plus its index file.
    pub fn join(&self, name: &str) -> Self {
        let mut segments = self.segments.clone();
        segments.push(name.to_owned());
        RequestPath {
            segments,
            trailing_slash: false,
        }
    }

    /// The same path, naming a directory.
    pub fn as_directory(&self) -> Self {
        RequestPath {
            segments: self.segments.clone(),
            trailing_slash: !self.segments.is_empty(),
        }
    }

    /// The URL path as a browser shows it in `location.pathname`: always starts with exactly one
    /// `/`, so it is also safe as a redirect target (never `//host`).
    pub fn to_url_path(&self) -> String {
        let mut url = String::from("/");
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                url.push('/');
            }
            url.extend(utf8_percent_encode(segment, PATH_ENCODE_SET));
        }
        if self.trailing_slash {
            url.push('/');
        }
        url
    }
}

/// Encodes one file name for use inside a URL path.
pub fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, PATH_ENCODE_SET).to_string()
}

/// `percent_decode` passes malformed escapes through unchanged; we refuse them instead.
fn check_escapes(raw: &[u8]) -> Result<(), BadPath> {
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = bytes.next().ok_or(BadPath::BadEscape)?;
            let low = bytes.next().ok_or(BadPath::BadEscape)?;
            if !high.is_ascii_hexdigit() || !low.is_ascii_hexdigit() {
                return Err(BadPath::BadEscape);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<String> {
        RequestPath::decode(raw).unwrap().segments().to_vec()
    }

    #[test]
    fn decodes_once_and_drops_empty_and_dot_segments() {
        assert_eq!(segments("/a//./b%20c/"), ["a", "b c"]);
        assert_eq!(segments("/%2541"), ["%41"]);
        assert!(segments("/").is_empty());
    }

    #[test]
    fn refuses_traversal_and_bad_bytes() {
        assert_eq!(RequestPath::decode("/a/../b"), Err(BadPath::ParentSegment));
        assert_eq!(
            RequestPath::decode("/%2e%2e/x"),
            Err(BadPath::ParentSegment)
        );
        assert_eq!(
            RequestPath::decode("/a%2f..%2fb"),
            Err(BadPath::ParentSegment)
        );
        assert_eq!(RequestPath::decode("/a%00"), Err(BadPath::ForbiddenByte));
        assert_eq!(
            RequestPath::decode("/a%5c..%5cb"),
            Err(BadPath::ForbiddenByte)
        );
        assert_eq!(RequestPath::decode("/a%zz"), Err(BadPath::BadEscape));
        assert_eq!(RequestPath::decode("/a%2"), Err(BadPath::BadEscape));
        assert_eq!(RequestPath::decode("/%ff"), Err(BadPath::NotUtf8));
        assert_eq!(RequestPath::decode("a"), Err(BadPath::NotAbsolute));
    }

    #[test]
    fn fragment_and_query_never_change_the_path() {
        assert_eq!(segments("/a.html#/../../etc"), ["a.html"]);
        assert_eq!(segments("/a.html?x=/../b"), ["a.html"]);
    }

    #[test]
    fn url_path_encodes_like_a_browser() {
        let path = RequestPath::decode("/caf%C3%A9/a%20b%23c%3F%25.html").unwrap();
        assert_eq!(path.to_url_path(), "/caf%C3%A9/a%20b%23c%3F%25.html");
        let path = RequestPath::decode("/a&b+c'd.html").unwrap();
        assert_eq!(path.to_url_path(), "/a&b+c'd.html");
        assert_eq!(
            RequestPath::decode("//evil.example/")
                .unwrap()
                .to_url_path(),
            "/evil.example/"
        );
    }
}

/// What must hold for any request target (checked by the property tests and the fuzz target
/// `request_path`; panics otherwise): it is refused, or it decodes to plain names that stay inside
/// any root and encode back to the same path.
pub fn check_decoding(raw: &str) {
    let Ok(path) = RequestPath::decode(raw) else {
        return;
    };
    let root = Path::new("/srv/root");
    let joined = path
        .segments()
        .iter()
        .fold(root.to_path_buf(), |joined, segment| joined.join(segment));
    assert!(joined.starts_with(root), "{raw:?} leaves the root");
    for segment in path.segments() {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{raw:?}: segment {segment:?}"
        );
        assert!(
            !segment.contains(['/', '\\', '\0']),
            "{raw:?}: segment {segment:?}"
        );
        let mut components = Path::new(segment).components();
        assert!(
            matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none(),
            "{raw:?}: segment {segment:?} is not one plain name"
        );
    }
    let again = RequestPath::decode(&path.to_url_path());
    assert_eq!(again, Ok(path), "{raw:?} does not encode back to itself");
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Request paths built from the pieces attacks are made of, plus arbitrary text.
    fn hostile_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E".to_owned()),
            Just("%2f".to_owned()),
            Just("%5c".to_owned()),
            Just("%00".to_owned()),
            Just("%25".to_owned()),
            Just("%c0%ae".to_owned()),
            Just("\\".to_owned()),
            Just("#".to_owned()),
            Just("?".to_owned()),
            "[a-z.%]{1,4}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_stays_inside_the_root(raw in hostile_path()) {
            check_decoding(&raw);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let raw = String::from_utf8_lossy(&bytes);
            let _ = RequestPath::decode(&raw);
        }
    }
}
