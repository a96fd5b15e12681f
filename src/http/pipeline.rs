//! What every response goes through after its source answered, whatever the source: the reload
//! script into HTML, byte ranges over what was rewritten, the common headers, HEAD, the log line.
//!
//! Sources mark an HTML page they want the script in with [`InjectInto`]; a static page and a
//! proxied one are then treated alike, and a new source gets all of this for free.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::http::body::{Body, Collected};
use crate::http::decode;
use crate::http::inject::{self, EARLY_TAG, InjectionPoints};
use crate::http::validators::{self, RangeAnswer};
use crate::settings::CustomHeader;

/// Proxied HTML pages larger than this are sent as they are, without the reload script: finding
/// the injection point of a page that arrives as a stream needs the whole page in memory.
const MAX_INJECTED_PAGE: usize = 16 * 1024 * 1024;

/// Put in a response's extensions by its source: this HTML page gets the reload script, whose
/// tag names `data_path` (the URL path the page was served for), the `generation` it was served
/// at, and whether a backend made the page (`proxied`).
#[derive(Debug, Clone)]
pub struct InjectInto {
    pub data_path: String,
    pub generation: u64,
    pub proxied: bool,
    /// Where the tags go, when the source knows (a static page, scanned once per version): the
    /// body is then sent with the tags spliced in, never held whole.
    pub points: Option<InjectionPoints>,
}

impl InjectInto {
    pub fn tag(&self) -> String {
        inject::script_tag(&self.data_path, self.generation, self.proxied)
    }
}

/// Put in a response's extensions by the proxy, for the log line.
#[derive(Debug, Clone)]
pub struct Upstreamed {
    pub upstream: String,
    pub status: StatusCode,
    pub took: Duration,
}

/// What the pipeline needs of the request, kept before the request goes to its source.
pub struct RequestFacts {
    method: Method,
    target: String,
    /// `Range` and `If-Range`, if the request had them.
    range_headers: HeaderMap,
    started: Instant,
}

impl RequestFacts {
    pub fn of<B>(request: &Request<B>) -> Self {
        let mut range_headers = HeaderMap::new();
        for name in [RANGE, IF_RANGE] {
            if let Some(value) = request.headers().get(&name) {
                range_headers.insert(name, value.clone());
            }
        }
        RequestFacts {
            method: request.method().clone(),
            target: request.uri().to_string(),
            range_headers,
            started: Instant::now(),
        }
    }
}

pub struct Pipeline {
    cors: bool,
    verbose: bool,
    /// `--header`s, set on every response.
    headers: Vec<CustomHeader>,
}

impl Pipeline {
    pub fn new(cors: bool, verbose: bool, headers: Vec<CustomHeader>) -> Self {
        Pipeline {
            cors,
            verbose,
            headers,
        }
    }

    pub async fn finish(
        &self,
        request: RequestFacts,
        mut response: Response<Body>,
    ) -> Response<Body> {
        if let Some(page) = response.extensions_mut().remove::<InjectInto>() {
            response = match page.points {
                Some(points) => splice_script(response, points, page.tag()),
                None => inject_script(response, &page.tag()).await,
            };
        }
        if !request.range_headers.is_empty() {
            response = apply_range(&request.range_headers, response);
        }
        self.common_headers(&request.method, response.headers_mut());
        if request.method == Method::HEAD {
            // Same headers as GET, `Content-Length` included; hyper sends no body for HEAD.
            *response.body_mut() = Body::empty();
        }
        if self.verbose {
            log(&request, &response);
        }
        response
    }

    fn common_headers(&self, method: &Method, headers: &mut HeaderMap) {
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        for header in &self.headers {
            headers.insert(header.name.clone(), header.value.clone());
        }
        // Never stale after a reload, yet cheap to revalidate; a backend that says otherwise
        // (hashed bundles cached for a year) knows its URLs.
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        if self.cors {
            headers
                .entry(ACCESS_CONTROL_ALLOW_ORIGIN)
                .or_insert(HeaderValue::from_static("*"));
            if method == Method::OPTIONS {
                if let Some(allow) = headers.get(ALLOW).cloned() {
                    headers.entry(ACCESS_CONTROL_ALLOW_METHODS).or_insert(allow);
                }
                headers
                    .entry(ACCESS_CONTROL_ALLOW_HEADERS)
                    .or_insert(HeaderValue::from_static("*"));
            }
        }
    }
}

/// The page with the tags put in at `points`, part by part: nothing is copied or held whole.
fn splice_script(response: Response<Body>, points: InjectionPoints, tag: String) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let mut inserts = Vec::with_capacity(2);
    if let Some(early) = points.early {
        inserts.push((early as u64, Bytes::from_static(EARLY_TAG.as_bytes())));
    }
    inserts.push((points.main as u64, Bytes::from(tag)));
    let body = match body.insert(inserts) {
        Ok(spliced) => {
            rewritten(&mut parts.headers, spliced.exact_len().unwrap_or_default());
            spliced
        }
        Err(unchanged) => unchanged,
    };
    Response::from_parts(parts, body)
}

/// The page with the reload script in it. A page too large to hold, or whose body fails, is sent
/// as it came.
async fn inject_script(response: Response<Body>, tag: &str) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let mut page = match body.collect_up_to(MAX_INJECTED_PAGE).await {
        Ok(Collected::Complete(page)) => page,
        Ok(Collected::TooLong(body)) => return Response::from_parts(parts, body),
        Err(error) => {
            tracing::debug!("reading a page to inject the script into: {error}");
            return Response::from_parts(parts, Body::from_error(error));
        }
    };
    if let Some(encodings) = parts.headers.get(CONTENT_ENCODING).cloned() {
        let compressed = page.clone();
        let decoded = tokio::task::spawn_blocking(move || {
            decode::decode(encodings.to_str().ok()?, &compressed, MAX_INJECTED_PAGE)
        })
        .await;
        match decoded {
            Ok(Some(decoded)) => {
                page = Bytes::from(decoded);
                parts.headers.remove(CONTENT_ENCODING);
            }
            // Not a coding we can undo: the page goes as it came, without the script.
            _ => return Response::from_parts(parts, Body::from(page)),
        }
    }
    let injected = inject::inject(&page, tag);
    rewritten(&mut parts.headers, injected.len() as u64);
    Response::from_parts(parts, Body::from(injected))
}

/// The headers of a page the script was put into, now `len` bytes long.
fn rewritten(headers: &mut HeaderMap, len: u64) {
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    // The bytes are not the source's any more: its entity tag only still says "the same page".
    if let Some(etag) = headers.get(ETAG).and_then(|tag| tag.to_str().ok())
        && !etag.starts_with("W/")
        && let Ok(weak) = HeaderValue::from_str(&format!("W/{etag}"))
    {
        headers.insert(ETAG, weak);
    }
}

/// Answers `Range` over a complete body the pipeline can cut (in memory, or a file), when the
/// source offered ranges and sent all of it.
fn apply_range(request_headers: &HeaderMap, response: Response<Body>) -> Response<Body> {
    let offers_ranges = response
        .headers()
        .get(ACCEPT_RANGES)
        .is_some_and(|value| value == "bytes");
    let len = response.body().exact_len();
    let (Some(len), true, StatusCode::OK) = (len, offers_ranges, response.status()) else {
        return response;
    };
    let last_modified = response
        .headers()
        .get(LAST_MODIFIED)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok());
    match validators::range(request_headers, last_modified, len) {
        RangeAnswer::Full => response,
        RangeAnswer::Partial(range) => {
            let (mut parts, body) = response.into_parts();
            let body = match body.slice(range.clone()) {
                Ok(body) => body,
                Err(whole) => return Response::from_parts(parts, whole),
            };
            parts.status = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {}-{}/{len}", range.start, range.end - 1);
            parts
                .headers
                .insert(CONTENT_RANGE, header_value(content_range));
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
            Response::from_parts(parts, body)
        }
        RangeAnswer::Unsatisfiable => {
            let (mut parts, _) = response.into_parts();
            parts.status = StatusCode::RANGE_NOT_SATISFIABLE;
            parts
                .headers
                .insert(CONTENT_RANGE, header_value(format!("bytes */{len}")));
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
            Response::from_parts(parts, Body::empty())
        }
    }
}

fn log(request: &RequestFacts, response: &Response<Body>) {
    let took = request.started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    match response.extensions().get::<Upstreamed>() {
        Some(upstream) => tracing::info!(
            "{} {} {status} {took:.1} ms ← {} {} {:.1} ms",
            request.method,
            request.target,
            upstream.upstream,
            upstream.status.as_u16(),
            upstream.took.as_secs_f64() * 1000.0
        ),
        None => tracing::info!(
            "{} {} {status} {took:.1} ms",
            request.method,
            request.target
        ),
    }
}

/// A header value from text we built ourselves; such text never contains control characters.
pub fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
