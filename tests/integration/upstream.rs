//! A real HTTP backend for the proxy tests: hyper 1 on 127.0.0.1:0, one task per connection. It
//! can be stopped and started again on the same port (a backend restart), counts what it
//! received, and serves the pages and behaviours the proxy tests need.
//!
//! Requests are dispatched on the last segment of their path, so `/page`, `/api/page` and
//! `/v1/api/page` are the same page whatever prefix and base path the proxy uses. Paths it does
//! not know answer like `/echo`. Fixed answers added with [`Upstream::serve_text`] and
//! [`Upstream::serve_file`] match whole paths and come first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::support::TIMEOUT;

/// The backend's HTML page, as `/page` sends it (and, compressed, `/gzip`, `/deflate`, `/br`,
/// `/zstd`; in pieces, `/chunked`).
pub const PAGE: &str = "<html><body><p>backend page</p></body></html>";
pub const MISSING_PAGE: &str = "<html><body><p>backend missing</p></body></html>";
pub const ERROR_PAGE: &str = "<html><body><p>backend error</p></body></html>";
/// The JSON `/json-gzip` sends, before compression.
pub const JSON: &str = r#"{"compressed":true,"items":[1,2,3]}"#;
/// The size of the one header `/big-header` sends.
pub const BIG_HEADER: usize = 100 * 1024;
/// Handlers that wait for the test give up after this, so a failed test leaves nothing behind.
const LONG_WAIT: Duration = Duration::from_secs(60);

type Body = BoxBody<Bytes, std::io::Error>;

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, exactly as received.
    pub target: String,
    /// Lower-case names, in the order received (repeated names appear repeatedly).
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
}

impl Seen {
    /// The header's values joined with ", ", or `None` when it was not sent.
    pub fn header(&self, name: &str) -> Option<String> {
        joined(&self.headers, name)
    }
}

fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(found, _)| found.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A fixed answer for one whole path.
#[derive(Clone)]
enum Fixed {
    Text {
        content_type: &'static str,
        body: String,
    },
    /// Read from disk at every request, so edits show.
    File {
        content_type: &'static str,
        path: PathBuf,
    },
}

/// What outlives a stop: counters, records and the signals the tests give.
struct Shared {
    port: u16,
    /// Requests whose head has arrived.
    requests: watch::Sender<usize>,
    /// Requests handled so far (after their body was read), in order.
    seen: Mutex<Vec<Seen>>,
    /// The `Origin` of each WebSocket handshake `/ws` accepted.
    ws_origins: Mutex<Vec<Option<String>>>,
    /// `/sse` sends its second event after this is notified.
    sse_next: Notify,
    /// `/slow` answers once this is true.
    slow_released: watch::Sender<bool>,
    /// Bytes `/upload` has received so far in the request being read.
    upload_progress: watch::Sender<u64>,
    fixed: Mutex<HashMap<String, Fixed>>,
    /// Every connection and upgraded socket, so a stop ends them all.
    connections: Mutex<JoinSet<()>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            port: addr.port(),
            requests: watch::Sender::new(0),
            seen: Mutex::new(Vec::new()),
            ws_origins: Mutex::new(Vec::new()),
            sse_next: Notify::new(),
            slow_released: watch::Sender::new(false),
            upload_progress: watch::Sender::new(0),
            fixed: Mutex::new(HashMap::new()),
            connections: Mutex::new(JoinSet::new()),
        });
        let accept = Some(tokio::spawn(accept_loop(listener, shared.clone())));
        Upstream {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A proxy route sending `prefix` here (`/` is the whole site).
    pub fn route(&self, prefix: &str) -> liveserve::__private::settings::ProxyRoute {
        format!("{prefix}={}", self.origin())
            .parse()
            .expect("a valid route")
    }

    /// Stops listening and ends every connection, WebSockets included.
    pub async fn stop(&mut self) {
        let accept = self.accept.take().expect("the upstream is running");
        accept.abort();
        // Once the accept task is gone, its listener is closed and no connection can be added.
        let _ = accept.await;
        let mut connections = std::mem::take(&mut *self.shared.connections.lock().unwrap());
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }

    /// Listens again on the same port, keeping the counters.
    pub async fn restart(&mut self) {
        assert!(self.accept.is_none(), "stop it first");
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the upstream's port is free again");
        self.accept = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }

    /// Requests whose head reached the backend, WebSocket handshakes included.
    pub fn requests(&self) -> usize {
        *self.shared.requests.borrow()
    }

    /// Waits (bounded) until at least `count` requests have reached the backend.
    pub async fn wait_for_requests(&self, count: usize) {
        let mut requests = self.shared.requests.subscribe();
        tokio::time::timeout(TIMEOUT, requests.wait_for(|seen| *seen >= count))
            .await
            .unwrap_or_else(|_| panic!("{count} requests reached the upstream in time"))
            .unwrap();
    }

    /// The last request the backend finished reading.
    pub fn last(&self) -> Seen {
        self.shared
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    /// How many requests for `path` (query ignored) the backend has handled.
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.target.split('?').next() == Some(path))
            .count()
    }

    /// The `Origin` of every WebSocket `/ws` accepted, in order.
    pub fn ws_origins(&self) -> Vec<Option<String>> {
        self.shared.ws_origins.lock().unwrap().clone()
    }

    /// Lets `/sse` send its second event.
    pub fn send_next_event(&self) {
        self.shared.sse_next.notify_one();
    }

    /// Lets every pending and future `/slow` answer.
    pub fn release_slow(&self) {
        self.shared.slow_released.send_replace(true);
    }

    /// Waits (bounded) until `/upload` has received at least `bytes` of the body it is reading.
    pub async fn wait_for_upload(&self, bytes: u64) {
        let mut progress = self.shared.upload_progress.subscribe();
        tokio::time::timeout(TIMEOUT, progress.wait_for(|received| *received >= bytes))
            .await
            .unwrap_or_else(|_| panic!("{bytes} bytes of the upload reached the upstream in time"))
            .unwrap();
    }

    /// Answers `path` (a whole path) with `body`.
    pub fn serve_text(&self, path: &str, content_type: &'static str, body: impl Into<String>) {
        let body = body.into();
        self.shared
            .fixed
            .lock()
            .unwrap()
            .insert(path.to_owned(), Fixed::Text { content_type, body });
    }

    /// Answers `path` with the file at `file`, read at each request: a backend that maps files
    /// to URLs of its own.
    pub fn serve_file(&self, path: &str, content_type: &'static str, file: PathBuf) {
        self.shared.fixed.lock().unwrap().insert(
            path.to_owned(),
            Fixed::File {
                content_type,
                path: file,
            },
        );
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        if let Ok(mut connections) = self.shared.connections.lock() {
            connections.abort_all();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service_shared = shared.clone();
        let service = hyper::service::service_fn(move |request| {
            let shared = service_shared.clone();
            async move { Ok::<_, Infallible>(respond(shared, request).await) }
        });
        shared.connections.lock().unwrap().spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn respond(shared: Arc<Shared>, mut request: Request<Incoming>) -> Response<Body> {
    shared.requests.send_modify(|count| *count += 1);
    let method = request.method().to_string();
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().to_string(),
        |target| target.as_str().to_owned(),
    );
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = request.uri().path().to_owned();
    let name = path.rsplit('/').next().unwrap_or("").to_owned();
    let record = |body_len| {
        shared.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            body_len,
        });
    };

    if name == "ws" || name == "ws-refused" {
        record(0);
        return websocket(&shared, &mut request, name == "ws");
    }

    // Read the body as it streams in, keeping only its length.
    let is_upload = name == "upload";
    if is_upload {
        shared.upload_progress.send_replace(0);
    }
    let mut body = request.into_body();
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return text(StatusCode::BAD_REQUEST, "text/plain", "the body broke off");
        };
        if let Ok(data) = frame.into_data() {
            body_len += data.len() as u64;
            if is_upload {
                shared.upload_progress.send_replace(body_len);
            }
        }
    }
    record(body_len);

    let fixed = shared.fixed.lock().unwrap().get(&path).cloned();
    if let Some(fixed) = fixed {
        return match fixed {
            Fixed::Text { content_type, body } => text(StatusCode::OK, content_type, body),
            Fixed::File { content_type, path } => match std::fs::read(&path) {
                Ok(bytes) => bytes_response(StatusCode::OK, content_type, bytes),
                Err(_) => text(StatusCode::NOT_FOUND, "text/plain", "no such file"),
            },
        };
    }

    match name.as_str() {
        "page" => {
            let mut response = text(StatusCode::OK, "text/html; charset=utf-8", PAGE);
            response
                .headers_mut()
                .insert("etag", HeaderValue::from_static("\"v1\""));
            response
        }
        "gzip" | "deflate" | "br" | "zstd" => {
            let mut response = bytes_response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                compress(&name, PAGE.as_bytes()),
            );
            response
                .headers_mut()
                .insert("content-encoding", HeaderValue::from_str(&name).unwrap());
            response
        }
        "chunked" => {
            // No length: hyper sends it chunked, one chunk per piece.
            let pieces = ["<html><body>", "<p>backend page</p>", "</body></html>"].map(|piece| {
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(piece.as_bytes())))
            });
            let mut response = Response::new(BodyExt::boxed(StreamBody::new(
                futures_util::stream::iter(pieces),
            )));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        "missing" => text(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            MISSING_PAGE,
        ),
        "error" => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html; charset=utf-8",
            ERROR_PAGE,
        ),
        "json-gzip" => {
            let mut response =
                bytes_response(StatusCode::OK, "application/json", json_gzip_bytes());
            response
                .headers_mut()
                .insert("content-encoding", HeaderValue::from_static("gzip"));
            response
        }
        "sse" => server_sent_events(shared.clone()),
        "redirect" => {
            let location = format!("http://127.0.0.1:{}/page", shared.port);
            redirect(&location)
        }
        "relative-redirect" => redirect("/page"),
        "cookie" => {
            let mut response = text(StatusCode::OK, "text/plain", "cookies");
            let headers = response.headers_mut();
            headers.append(
                "set-cookie",
                HeaderValue::from_static("session=abc; Domain=127.0.0.1; Path=/; HttpOnly"),
            );
            headers.append(
                "set-cookie",
                HeaderValue::from_static("other=1; Domain=example.com"),
            );
            response
        }
        "slow" => {
            let mut released = shared.slow_released.subscribe();
            let _ = tokio::time::timeout(LONG_WAIT, released.wait_for(|released| *released)).await;
            text(StatusCode::OK, "text/plain", "slow done")
        }
        "upload" => text(StatusCode::OK, "text/plain", body_len.to_string()),
        "download" => download(&target),
        "big-header" => {
            let mut response = text(StatusCode::OK, "text/plain", "big");
            response.headers_mut().insert(
                "x-big",
                HeaderValue::from_str(&"a".repeat(BIG_HEADER)).unwrap(),
            );
            response
        }
        "hop" => {
            let mut response = text(StatusCode::OK, "text/plain", "hop");
            let headers = response.headers_mut();
            for (name, value) in [
                ("connection", "x-upstream-hop"),
                ("x-upstream-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("trailer", "x-checksum"),
                ("x-end-to-end", "kept"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
            response
        }
        // "echo", and anything else: say what arrived.
        _ => {
            let mut names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
            names.dedup();
            let header_map: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .map(|name| (name.to_string(), json!(joined(&headers, name).unwrap())))
                .collect();
            let echo = json!({
                "method": method,
                "path": target,
                "headers": header_map,
                "body_len": body_len,
            });
            text(StatusCode::OK, "application/json", echo.to_string())
        }
    }
}

/// `/ws` accepts and echoes; `/ws-refused` answers 403.
fn websocket(
    shared: &Arc<Shared>,
    request: &mut Request<Incoming>,
    accept: bool,
) -> Response<Body> {
    if !accept {
        return text(StatusCode::FORBIDDEN, "text/plain", "refused");
    }
    let headers = request.headers();
    let upgrade = headers
        .get("upgrade")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let Some(key) = headers.get("sec-websocket-key").filter(|_| upgrade) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "not a WebSocket handshake",
        );
    };
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let origin = headers
        .get("origin")
        .map(|origin| String::from_utf8_lossy(origin.as_bytes()).into_owned());
    shared.ws_origins.lock().unwrap().push(origin);
    let upgraded = hyper::upgrade::on(request);
    shared.connections.lock().unwrap().spawn(async move {
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        let mut socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // Pings are answered and a close is echoed (code and reason) by tungstenite itself, as
        // long as the socket is read until it ends.
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Text(_) | Message::Binary(_))
                && socket.send(message).await.is_err()
            {
                return;
            }
        }
    });
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("connection", HeaderValue::from_static("Upgrade"));
    headers.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&accept_key).unwrap(),
    );
    response
}

/// `data: one`, then `data: two` once the test says so.
fn server_sent_events(shared: Arc<Shared>) -> Response<Body> {
    let events = futures_util::stream::unfold(0, move |step| {
        let shared = shared.clone();
        async move {
            let event: &'static [u8] = match step {
                0 => b"data: one\n\n",
                1 => {
                    tokio::time::timeout(LONG_WAIT, shared.sse_next.notified())
                        .await
                        .ok()?;
                    b"data: two\n\n"
                }
                _ => return None,
            };
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(event))),
                step + 1,
            ))
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

/// The byte at `offset` of every download: a pattern a test can check without a copy.
pub fn download_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `?bytes=N`: N bytes made 64 KiB at a time as they are sent.
fn download(target: &str) -> Response<Body> {
    let total: u64 = target
        .split_once("bytes=")
        .and_then(|(_, rest)| rest.split('&').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    const CHUNK: u64 = 64 * 1024;
    let chunks = futures_util::stream::unfold(0u64, move |sent| async move {
        if sent >= total {
            return None;
        }
        let size = CHUNK.min(total - sent);
        let chunk: Vec<u8> = (sent..sent + size).map(download_byte).collect();
        Some((
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk))),
            sent + size,
        ))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(chunks)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(total));
    response
}

/// The exact bytes `/json-gzip` sends.
pub fn json_gzip_bytes() -> Vec<u8> {
    compress("gzip", JSON.as_bytes())
}

/// `data` in the HTTP content coding `coding` (`deflate` is the zlib format, as HTTP means it).
pub fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        }
        "deflate" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        }
        "br" => {
            let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            encoder.write_all(data).unwrap();
            encoder.into_inner()
        }
        "zstd" => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        other => panic!("no coding {other}"),
    }
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = text(StatusCode::FOUND, "text/plain", "moved");
    response
        .headers_mut()
        .insert("location", HeaderValue::from_str(location).unwrap());
    response
}

fn empty() -> Body {
    BodyExt::boxed(Full::new(Bytes::new()).map_err(|never| match never {}))
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<String>) -> Response<Body> {
    bytes_response(status, content_type, body.into().into_bytes())
}

fn bytes_response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let length = body.len();
    let mut response = Response::new(BodyExt::boxed(
        Full::new(Bytes::from(body)).map_err(|never| match never {}),
    ));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The backend itself, asked directly: what the proxy tests take for granted about it holds, so
/// a failure there is the proxy's.
mod checks {
    use std::io::Read;
    use std::net::SocketAddr;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    use super::*;
    use crate::proxy::body_of;
    use crate::support::Reply;

    /// Sends `raw` and reads until the backend closes.
    async fn exchange(addr: SocketAddr, raw: &str) -> Reply {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(raw.as_bytes()).await.unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).await.unwrap();
            received
        };
        let received = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .expect("the backend answered in time");
        Reply::parse(&received)
    }

    async fn get(addr: SocketAddr, target: &str) -> Reply {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        exchange(addr, &raw).await
    }

    fn decode(coding: &str, data: &[u8]) -> String {
        let mut decoded = String::new();
        match coding {
            "gzip" => flate2::read::GzDecoder::new(data).read_to_string(&mut decoded),
            "deflate" => flate2::read::ZlibDecoder::new(data).read_to_string(&mut decoded),
            "br" => brotli_decompressor::Decompressor::new(data, 4096).read_to_string(&mut decoded),
            "zstd" => ruzstd::decoding::StreamingDecoder::new(data)
                .unwrap()
                .read_to_string(&mut decoded),
            other => panic!("no coding {other}"),
        }
        .unwrap();
        decoded
    }

    #[tokio::test]
    async fn the_backend_serves_what_the_proxy_tests_expect() {
        let upstream = Upstream::start().await;
        let addr = upstream.addr;
        let page = get(addr, "/api/page").await;
        assert_eq!((page.status, page.text()), (200, PAGE.to_owned()));
        assert_eq!(page.header("etag"), Some("\"v1\""));
        for coding in ["gzip", "deflate", "br", "zstd"] {
            let reply = get(addr, &format!("/v1/{coding}")).await;
            assert_eq!(reply.header("content-encoding"), Some(coding));
            assert_eq!(decode(coding, &reply.body), PAGE, "{coding}");
        }
        let chunked = get(addr, "/chunked").await;
        assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
        assert_eq!(chunked.header("content-length"), None);
        assert_eq!(body_of(&chunked), PAGE.as_bytes());
        assert_eq!(get(addr, "/missing").await.status, 404);
        assert_eq!(get(addr, "/error").await.status, 500);
        let json = get(addr, "/json-gzip").await;
        assert_eq!(json.body, json_gzip_bytes());
        assert_eq!(decode("gzip", &json.body), JSON);
        let redirect = get(addr, "/redirect").await;
        assert_eq!(
            (redirect.status, redirect.header("location")),
            (302, Some(format!("http://{addr}/page").as_str()))
        );
        assert_eq!(
            get(addr, "/relative-redirect").await.header("location"),
            Some("/page")
        );
        let cookies = get(addr, "/cookie").await;
        let cookies: Vec<&str> = cookies
            .headers
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(cookies.len(), 2);
        assert_eq!(
            get(addr, "/big-header").await.header("x-big").map(str::len),
            Some(BIG_HEADER)
        );
        let download = get(addr, "/download?bytes=100000").await;
        assert_eq!(download.body.len(), 100_000);
        assert_eq!(download.body[99_999], download_byte(99_999));

        let echo = exchange(
            addr,
            &format!(
                "PUT /echo?a=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Twice: one\r\n\
                 X-Twice: two\r\nContent-Length: 3\r\n\r\nabc"
            ),
        )
        .await;
        let echo: serde_json::Value = serde_json::from_slice(&echo.body).unwrap();
        assert_eq!(echo["method"], "PUT");
        assert_eq!(echo["path"], "/echo?a=1");
        assert_eq!(echo["headers"]["x-twice"], "one, two");
        assert_eq!(echo["body_len"], 3);
        let seen = upstream.last();
        assert_eq!((seen.target.as_str(), seen.body_len), ("/echo?a=1", 3));
        assert_eq!(seen.header("x-twice").as_deref(), Some("one, two"));

        let upload = exchange(
            addr,
            &format!(
                "POST /upload HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 Content-Length: 5\r\n\r\nhello"
            ),
        )
        .await;
        assert_eq!(upload.text(), "5");
        assert_eq!(
            upstream.hits("/download"),
            1,
            "the query is not part of the path"
        );
    }

    #[tokio::test]
    async fn the_backend_sends_the_second_event_and_answers_slow_only_when_told() {
        let upstream = Upstream::start().await;
        let mut stream = TcpStream::connect(upstream.addr).await.unwrap();
        stream
            .write_all(b"GET /sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut chunk = [0; 1024];
        let read_until = |needle: &'static str| {
            move |received: &Vec<u8>| String::from_utf8_lossy(received).contains(needle)
        };
        let one = read_until("data: one");
        while !one(&received) {
            let read = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            received.extend_from_slice(&chunk[..read]);
        }
        assert!(!String::from_utf8_lossy(&received).contains("data: two"));
        upstream.send_next_event();
        let two = read_until("data: two");
        while !two(&received) {
            let read = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert_ne!(read, 0);
            received.extend_from_slice(&chunk[..read]);
        }

        let addr = upstream.addr;
        let slow = tokio::spawn(async move { get(addr, "/slow").await.text() });
        upstream.wait_for_requests(2).await;
        assert!(!slow.is_finished());
        upstream.release_slow();
        assert_eq!(
            tokio::time::timeout(TIMEOUT, slow).await.unwrap().unwrap(),
            "slow done"
        );
    }

    #[tokio::test]
    async fn the_backend_echoes_websockets_and_refuses_on_ws_refused() {
        let upstream = Upstream::start().await;
        let url = format!("ws://{}/api/ws", upstream.addr);
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        socket.send(Message::text("hi")).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), Message::text("hi"));
        socket
            .close(Some(CloseFrame {
                code: 4001.into(),
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        match socket.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => {
                assert_eq!(
                    (u16::from(frame.code), frame.reason.as_str()),
                    (4001, "bye")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(upstream.ws_origins(), [None]);
        let refused = format!("ws://{}/ws-refused", upstream.addr);
        match tokio_tungstenite::connect_async(&refused).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_backend_stops_and_comes_back_on_the_same_port() {
        let mut upstream = Upstream::start().await;
        let addr = upstream.addr;
        let url = format!("ws://{addr}/ws");
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        assert_eq!(get(addr, "/page").await.status, 200);
        upstream.stop().await;
        assert!(TcpStream::connect(addr).await.is_err(), "nothing listens");
        let ended = tokio::time::timeout(TIMEOUT, socket.next())
            .await
            .expect("the open socket ended with the stop");
        assert!(!matches!(ended, Some(Ok(Message::Text(_)))), "{ended:?}");
        upstream.restart().await;
        assert_eq!(get(addr, "/page").await.status, 200);
        assert_eq!(upstream.requests(), 3, "counts survive a restart");
    }
}
