//! Checks every request passes before it reaches an endpoint or a source: the `Host` it names,
//! the size of its target, and scripts of the project included by other sites. Method rules
//! belong to each source (the proxy forwards every method); the read-only set is here for the
//! sources that share it.

use http::header::ALLOW;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};

use crate::http::body::Body;
use crate::http::host_policy::{HostPolicy, HostRefused};
use crate::http::pages;
use crate::http::websocket::Handshake;

/// Longer request targets get 414: no page of a dev server needs more, and it bounds the work a
/// hostile request can cause.
const MAX_TARGET_LENGTH: usize = 8 * 1024;

/// The methods the static folder and the client script answer.
const READ_ONLY_METHODS: &str = "GET, HEAD, OPTIONS";

pub struct Guards {
    hosts: HostPolicy,
    cors: bool,
}

impl Guards {
    pub fn new(hosts: HostPolicy, cors: bool) -> Self {
        Guards { hosts, cors }
    }

    /// The answer for a request that must not go any further; `None` lets it through.
    pub fn refusal<B>(&self, request: &Request<B>) -> Option<Response<Body>> {
        // A request naming another server (`GET http://elsewhere/`) or asking for a tunnel
        // (`CONNECT`) is for a forward proxy, which liveserve never is. HTTP/2 always names the
        // server in the request, so the rule is for HTTP/1 only; its CONNECT for a WebSocket
        // (RFC 8441) names a path on this server.
        let absolute_form = request.version() < Version::HTTP_2 && request.uri().scheme().is_some();
        let tunnel = request.method() == Method::CONNECT
            && Handshake::of(request) != Some(Handshake::ExtendedConnect);
        if absolute_form || tunnel {
            return Some(pages::error(
                StatusCode::BAD_REQUEST,
                "liveserve is not a forward proxy; ask for a path on this server",
            ));
        }
        match self.hosts.check(request) {
            Ok(()) => {}
            Err(HostRefused::Malformed(reason)) => {
                return Some(pages::error(StatusCode::BAD_REQUEST, reason));
            }
            Err(HostRefused::NotAllowed(name)) => {
                return Some(pages::host_not_allowed(
                    &name,
                    accepts_html(request.headers()),
                ));
            }
        }
        let target_length = request
            .uri()
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        if target_length > MAX_TARGET_LENGTH {
            return Some(pages::error(
                StatusCode::URI_TOO_LONG,
                "the request target is too long",
            ));
        }
        if !self.cors && is_cross_site_script_include(request.headers()) {
            return Some(pages::error(
                StatusCode::FORBIDDEN,
                "another site may not load this project's scripts; start liveserve with --cors to allow it",
            ));
        }
        None
    }
}

/// Whether the client is a browser asking for a page (`Accept: text/html`), which is better
/// served by a page than by a line of text.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

/// A `<script src>` on another site pointing here (a cross-site, no-cors script fetch): the
/// browser would run the project's code in that site's page, where it can read what it defines.
fn is_cross_site_script_include(headers: &HeaderMap) -> bool {
    let is = |name: &str, value: &str| headers.get(name).is_some_and(|found| found == value);
    is("sec-fetch-site", "cross-site")
        && is("sec-fetch-mode", "no-cors")
        && is("sec-fetch-dest", "script")
}

/// For endpoints that only read: `None` for GET and HEAD, 204 for OPTIONS and 405 for the rest,
/// both saying which methods work.
pub fn read_only_methods(method: &Method) -> Option<Response<Body>> {
    let mut answer = match *method {
        Method::GET | Method::HEAD => return None,
        Method::OPTIONS => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        _ => pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("this server only answers {READ_ONLY_METHODS}"),
        ),
    };
    answer
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(READ_ONLY_METHODS));
    Some(answer)
}
