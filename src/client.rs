//! The browser client, `inject/client.js`, compiled into the binary and served at
//! `/__liveserve/client.js`.

use std::sync::LazyLock;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::validators::Validators;

const SCRIPT: &str = include_str!("../inject/client.js");

/// The client script, revalidated like any file: its tag changes with every build that changes it.
pub fn response(headers: &HeaderMap) -> Response<Body> {
    static VALIDATORS: LazyLock<Validators> =
        LazyLock::new(|| Validators::from_content(SCRIPT.as_bytes()));
    let validators = &*VALIDATORS;
    let mut response = Response::new(Body::empty());
    let response_headers = response.headers_mut();
    response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&validators.etag) {
        response_headers.insert(ETAG, etag);
    }
    if validators.not_modified(headers) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    response_headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response_headers.insert(CONTENT_LENGTH, HeaderValue::from(SCRIPT.len()));
    *response.body_mut() = Body::from(Bytes::from_static(SCRIPT.as_bytes()));
    response
}
