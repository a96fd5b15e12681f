//! Pages the server writes itself: the 404 page and short error answers.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

use crate::http::body::Body;
use crate::http::inject::escape_html;
use crate::request_path::RequestPath;

/// The 404 page for `url`. It is HTML so that it can carry the reload script: create the missing
/// file and the page shows it.
pub fn not_found(url: &RequestPath) -> String {
    let path = escape_html(&url.to_url_path());
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>404 Not Found</title>\n<style>body{{font:15px/1.5 system-ui,sans-serif;\
         margin:3rem auto;max-width:40rem;padding:0 1rem}}code{{word-break:break-all}}</style>\n\
         </head>\n<body>\n<h1>404 Not Found</h1>\n<p>Nothing is served at <code>{path}</code>. \
         This page reloads when the file appears.</p>\n<p><a href=\"/\">Go to the start page</a></p>\n\
         </body>\n</html>\n"
    )
}

/// Marks liveserve's own 502 and 504 answers (`unavailable`, `timeout`): a page showing one polls
/// its URL and reloads once an answer comes without it, from the backend itself.
pub const UPSTREAM_ERROR_HEADER: &str = "x-liveserve-upstream-error";

/// The page for a backend that did not answer. The `meta` tag tells the client script to watch
/// for the backend's return and reload then (a backend restarting after a code change is the
/// common case).
pub fn upstream_error(status: StatusCode, upstream: &str, reason: &str) -> Response<Body> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"liveserve-upstream-error\" content=\"{}\">\n<title>{title}</title>\n\
         <style>body{{font:15px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:40rem;\
         padding:0 1rem}}code{{word-break:break-all}}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>The backend at <code>{}</code> did not answer: {}.</p>\n\
         <p>This page reloads by itself when it answers again.</p>\n</body>\n</html>\n",
        status.as_u16(),
        escape_html(upstream),
        escape_html(reason),
    );
    generated(status, "text/html; charset=utf-8", Bytes::from(page))
}

/// A plain-text answer for requests that never reach a file: one line saying what was wrong.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let text = format!(
        "{} {}: {message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    generated(status, "text/plain; charset=utf-8", Bytes::from(text))
}

/// A response with a body the server made up (never a file): no validators.
pub fn generated(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let length = body.len();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}
