//! How headers change on their way to a backend and back: hop-by-hop fields stay on their hop,
//! the backend learns who asked (`X-Forwarded-*`, `Forwarded`) and sees its own host, and what it
//! says about its own origin (redirects, cookie domains) is turned into liveserve's.

use std::net::IpAddr;

use http::header::{
    ACCEPT, ACCEPT_ENCODING, CONNECTION, FORWARDED, HOST, LOCATION, ORIGIN, SET_COOKIE, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Fields that describe one connection, not the message (RFC 9110 7.6.1), plus the proxy
/// credentials meant for liveserve, not for the backend.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Who asked, and where: what the backend is told about the original request.
pub struct Requester<'a> {
    pub ip: Option<IpAddr>,
    /// The `Host` the browser sent, e.g. `localhost:8080`.
    pub host: &'a str,
}

impl Requester<'_> {
    /// liveserve's origin as the browser sees it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.host)
    }
}

/// Removes hop-by-hop fields, including those the `Connection` field names. With
/// `keep_upgrade`, `Connection: upgrade` and `Upgrade` stay: they are the WebSocket handshake.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == UPGRADE) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Prepares a request's headers for the backend at `upstream` (`host:port`).
pub fn to_backend(headers: &mut HeaderMap, requester: &Requester, upstream: &str, websocket: bool) {
    remove_hop_by_hop(headers, websocket);
    if let Some(ip) = requester.ip {
        append_list(headers, "x-forwarded-for", &ip.to_string());
        let node = match ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("\"[{ip}]\""),
        };
        let host = if requester.host.contains(':') {
            format!("\"{}\"", requester.host)
        } else {
            requester.host.to_owned()
        };
        append_list(
            headers,
            FORWARDED.as_str(),
            &format!("for={node};host={host};proto=http"),
        );
    }
    set(headers, "x-forwarded-proto", "http");
    set(headers, "x-forwarded-host", requester.host);
    // The backend sees its own name, as if it were asked directly (it may route by it).
    set(headers, HOST.as_str(), upstream);
    // A page of liveserve's is a page of the backend's: a backend that checks Origin (CSRF
    // protection, WebSocket servers) accepts it. Other sites' origins pass unchanged.
    let own_origin = requester.origin();
    if headers.get(ORIGIN).is_some_and(|origin| {
        origin
            .as_bytes()
            .eq_ignore_ascii_case(own_origin.as_bytes())
    }) {
        set(headers, ORIGIN.as_str(), &format!("http://{upstream}"));
    }
    // A page that may get the script must arrive readable; compressed pages are decoded if the
    // backend compresses anyway, but that costs time for nothing.
    if accepts_html(headers) {
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
}

/// Prepares a response's headers for the browser: what points at the backend's origin points at
/// liveserve's instead.
pub fn from_backend(
    headers: &mut HeaderMap,
    requester: &Requester,
    upstream: &str,
    websocket: bool,
) {
    remove_hop_by_hop(headers, websocket);
    let upstream_origin = format!("http://{upstream}");
    if let Some(location) = headers.get(LOCATION).and_then(|value| value.to_str().ok())
        && let Some(rest) = strip_prefix_ignore_case(location, &upstream_origin)
        && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
    {
        let rewritten = format!("{}{rest}", requester.origin());
        set(headers, LOCATION.as_str(), &rewritten);
    }
    let upstream_host = upstream
        .rsplit_once(':')
        .map_or(upstream, |(host, _port)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let cookies: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|cookie| without_domain(cookie, upstream_host))
        .collect();
    if !cookies.is_empty() {
        headers.remove(SET_COOKIE);
        for cookie in cookies {
            headers.append(SET_COOKIE, cookie);
        }
    }
}

/// Whether a request's `Accept` asks for HTML: a page the browser navigates to.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

/// The cookie without a `Domain` attribute naming the backend's host, so the browser keeps it
/// for liveserve's host instead of dropping it.
fn without_domain(cookie: &HeaderValue, upstream_host: &str) -> HeaderValue {
    let Ok(text) = cookie.to_str() else {
        return cookie.clone();
    };
    let mut kept = Vec::new();
    let mut changed = false;
    for (index, attribute) in text.split(';').enumerate() {
        let is_backend_domain = index > 0
            && attribute.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("domain")
                    && value
                        .trim()
                        .trim_start_matches('.')
                        .eq_ignore_ascii_case(upstream_host)
            });
        if is_backend_domain {
            changed = true;
        } else {
            kept.push(attribute);
        }
    }
    if !changed {
        return cookie.clone();
    }
    HeaderValue::from_str(&kept.join(";")).unwrap_or_else(|_| cookie.clone())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}

/// Appends `item` to a comma-separated list field, creating it if absent.
fn append_list(headers: &mut HeaderMap, name: &str, item: &str) {
    let existing: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let joined = if existing.is_empty() {
        item.to_owned()
    } else {
        format!("{}, {item}", existing.join(", "))
    };
    set(headers, name, &joined);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const ME: Requester = Requester {
        ip: Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        host: "localhost:8080",
    };

    #[test]
    fn requests_lose_hop_by_hop_fields_and_say_who_asked() {
        let mut map = headers(&[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("x-forwarded-for", "10.0.0.1"),
            ("origin", "http://localhost:8080"),
            ("accept", "text/html,*/*"),
            ("accept-encoding", "gzip, br"),
            ("x-kept", "yes"),
        ]);
        to_backend(&mut map, &ME, "127.0.0.1:3000", false);
        for gone in ["connection", "x-hop", "keep-alive", "te"] {
            assert!(!map.contains_key(gone), "{gone}");
        }
        assert_eq!(map["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(
            map["forwarded"],
            "for=127.0.0.1;host=\"localhost:8080\";proto=http"
        );
        assert_eq!(map["x-forwarded-host"], "localhost:8080");
        assert_eq!(map["x-forwarded-proto"], "http");
        assert_eq!(map["host"], "127.0.0.1:3000");
        assert_eq!(map["origin"], "http://127.0.0.1:3000");
        assert_eq!(map["accept-encoding"], "identity");
        assert_eq!(map["x-kept"], "yes");
    }

    #[test]
    fn foreign_origins_and_non_page_encodings_pass() {
        let mut map = headers(&[
            ("origin", "http://elsewhere.example"),
            ("accept", "application/json"),
            ("accept-encoding", "gzip"),
        ]);
        to_backend(&mut map, &ME, "127.0.0.1:3000", false);
        assert_eq!(map["origin"], "http://elsewhere.example");
        assert_eq!(map["accept-encoding"], "gzip");
    }

    #[test]
    fn websocket_handshakes_keep_their_upgrade() {
        let mut map = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        to_backend(&mut map, &ME, "127.0.0.1:3000", true);
        assert_eq!(map["connection"], "upgrade");
        assert_eq!(map["upgrade"], "websocket");
    }

    #[test]
    fn responses_point_back_at_liveserve() {
        let mut map = headers(&[
            ("location", "http://127.0.0.1:3000/login?next=/"),
            (
                "set-cookie",
                "session=abc; Domain=127.0.0.1; Path=/; HttpOnly",
            ),
            ("set-cookie", "other=1; Domain=example.com"),
            ("transfer-encoding", "chunked"),
        ]);
        from_backend(&mut map, &ME, "127.0.0.1:3000", false);
        assert_eq!(map["location"], "http://localhost:8080/login?next=/");
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(
            cookies,
            [
                "session=abc; Path=/; HttpOnly",
                "other=1; Domain=example.com"
            ]
        );
        assert!(!map.contains_key("transfer-encoding"));

        for untouched in ["/relative", "http://127.0.0.1:30001/x", "http://elsewhere/"] {
            let mut map = headers(&[("location", untouched)]);
            from_backend(&mut map, &ME, "127.0.0.1:3000", false);
            assert_eq!(map["location"], untouched);
        }
    }
}
