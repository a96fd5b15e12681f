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

/// The 403 for a `Host` name that is not allowed, saying which flag allows it: a page for a
/// browser, one line of text for anything else. Names under a domain (a tunnel's) get the domain
/// rule too, which covers every name the tunnel hands out.
pub fn host_not_allowed(name: &str, html: bool) -> Response<Body> {
    let flag = format!("--allow-host {name}");
    let domain_flag = name
        .split_once('.')
        .filter(|(_, domain)| domain.contains('.'))
        .map(|(_, domain)| format!("--allow-host .{domain}"));
    let why = "liveserve answers only localhost and IP addresses unless told otherwise, so that \
               no other site can read it through DNS rebinding";
    if !html {
        let mut message = format!("{why}; to use the name {name:?}, start liveserve with {flag}");
        if let Some(domain_flag) = &domain_flag {
            message.push_str(&format!(" (or {domain_flag} for every name below it)"));
        }
        return error(StatusCode::FORBIDDEN, &message);
    }
    let domain_line = domain_flag.map_or_else(String::new, |domain_flag| {
        format!(
            "<p>Or allow every name below that domain at once (a tunnel's new names too):</p>\n\
             <pre>liveserve {}</pre>\n",
            escape_html(&domain_flag)
        )
    });
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>403 Host not allowed</title>\n<style>body{{font:15px/1.5 system-ui,sans-serif;\
         margin:3rem auto;max-width:40rem;padding:0 1rem}}pre{{background:#f3f3f3;padding:.5rem\
         }}code{{word-break:break-all}}</style>\n</head>\n<body>\n<h1>403 Host not allowed</h1>\n\
         <p>This page was asked for as <code>{name}</code>. {why}.</p>\n\
         <p>To use this name, start liveserve with:</p>\n<pre>liveserve {flag}</pre>\n\
         {domain_line}<p>or add <code>allow-host = [\"{name}\"]</code> to \
         <code>liveserve.toml</code>.</p>\n</body>\n</html>\n",
        name = escape_html(name),
        flag = escape_html(&flag),
    );
    generated(
        StatusCode::FORBIDDEN,
        "text/html; charset=utf-8",
        Bytes::from(page),
    )
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
