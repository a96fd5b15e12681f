//! What plain HTTP gets on the HTTPS port: a browser given `http://` is redirected to the same
//! URL with `https://`, and a phone asking for the local authority's certificate gets it (it
//! cannot trust an HTTPS page before it has installed that certificate; the certificate is
//! public, its key is never served).

use bytes::Bytes;
use http::header::{HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::http::body::Body;
use crate::http::internal::{AUTHORITY_PATH, authority_certificate};

/// The answer to `request`, which came in plain HTTP; `authority` is the local authority's
/// certificate when it signed ours.
pub fn plain_http_on_https<B>(request: &Request<B>, authority: Option<Bytes>) -> Response<Body> {
    if request.uri().path() == AUTHORITY_PATH
        && let Some(pem) = authority
    {
        return authority_certificate(pem);
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<http::uri::Authority>().ok());
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location =
        host.and_then(|host| HeaderValue::from_str(&format!("https://{host}{path}")).ok());
    let mut response = Response::new(Body::empty());
    match location {
        Some(location) => {
            *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
            response.headers_mut().insert(LOCATION, location);
        }
        None => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    response
}
