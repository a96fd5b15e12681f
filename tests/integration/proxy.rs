//! The reverse proxy end to end: the real server in-process in front of a real backend
//! ([`Upstream`]), raw HTTP/1.1, hyper and WebSocket clients over real sockets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use liveserve::__private::protocol::ServerMessage;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{Reply, TIMEOUT, TestServer, site, write};
use crate::upstream::{self, ERROR_PAGE, MISSING_PAGE, PAGE, Upstream};

const UPSTREAM_ERROR: &str = "x-liveserve-upstream-error";

/// The folder beside the proxied routes.
fn static_site() -> TempDir {
    site(&[
        ("index.html", b"<body>static home</body>"),
        ("static.txt", b"a static file"),
        ("page.html", b"<body>from disk</body>"),
    ])
}

async fn proxying(upstream: &Upstream, prefix: &str) -> TestServer {
    TestServer::start_with(static_site(), |config| {
        config.proxies = vec![upstream.route(prefix)];
    })
    .await
}

/// The tag liveserve puts into a backend's page served for `path` (and into its own 502/504
/// pages for it).
fn tag(path: &str) -> String {
    format!(
        "<script src=\"/__liveserve/client.js\" data-path=\"{path}\" data-generation=\"0\" data-proxied></script>"
    )
}

/// `page` with the tag for `path` before `</body>`.
fn injected(page: &str, path: &str) -> String {
    page.replace("</body>", &format!("{}</body>", tag(path)))
}

/// One request with the given `Host`, extra header lines and body.
fn raw(method: &str, target: &str, host: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw
}

/// The body as sent, de-chunked when the response was chunked.
pub(crate) fn body_of(reply: &Reply) -> Vec<u8> {
    let chunked = reply
        .header("transfer-encoding")
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
    if !chunked {
        return reply.body.clone();
    }
    let mut rest = &reply.body[..];
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|window| window == b"\r\n")
            .expect("a chunk size line");
        let line = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn body_text(reply: &Reply) -> String {
    String::from_utf8(body_of(reply)).expect("a UTF-8 body")
}

/// What `/echo` said it received.
fn echo(reply: &Reply) -> Value {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&body_of(reply)).expect("the upstream's echo")
}

fn echoed_header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name].as_str()
}

fn all_headers<'a>(reply: &'a Reply, name: &str) -> Vec<&'a str> {
    reply
        .headers
        .iter()
        .filter(|(found, _)| found == name)
        .map(|(_, value)| value.as_str())
        .collect()
}

// Routing -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_prefix_forwards_itself_and_below_with_path_and_query_unchanged() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for target in ["/api", "/api/x?q=1", "/api/deeper/echo?a=1&b=%20two"] {
        let reply = server.get(target).await;
        assert_eq!(echo(&reply)["path"], target, "the body says what arrived");
        assert_eq!(upstream.last().target, target);
    }
    let before = upstream.requests();
    // Whole segments only: /apix is the folder's, and the folder has no such file.
    let apix = server.get("/apix").await;
    assert_eq!(apix.status, 404);
    assert!(apix.text().contains("404 Not Found"), "{}", apix.text());
    assert_eq!(server.get("/static.txt").await.text(), "a static file");
    assert_eq!(upstream.requests(), before, "the upstream saw neither");
    server.stop().await;
}

#[tokio::test]
async fn a_base_path_goes_in_front_of_the_forwarded_path() {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(static_site(), |config| {
        let route = format!("/api={}/v1", upstream.origin());
        config.proxies = vec![route.parse().unwrap()];
    })
    .await;
    let reply = server.get("/api/x?q=1").await;
    assert_eq!(echo(&reply)["path"], "/v1/api/x?q=1");
    server.stop().await;
}

#[tokio::test]
async fn the_longest_prefix_wins() {
    let api = Upstream::start().await;
    let v2 = Upstream::start().await;
    let server = TestServer::start_with(static_site(), |config| {
        config.proxies = vec![api.route("/api"), v2.route("/api/v2")];
    })
    .await;
    server.get("/api/v2/echo").await;
    assert_eq!((api.requests(), v2.requests()), (0, 1));
    assert_eq!(v2.last().target, "/api/v2/echo");
    server.get("/api/v1/echo").await;
    server.get("/api/v2x/echo").await;
    assert_eq!((api.requests(), v2.requests()), (2, 1));
    assert_eq!(api.last().target, "/api/v2x/echo");
    server.stop().await;
}

#[tokio::test]
async fn liveserve_own_paths_are_never_forwarded() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/").await;
    let script = server.get("/__liveserve/client.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(script.text(), crate::injection::client_script());
    assert_eq!(server.get("/__liveserve/nothing").await.status, 404);
    let (_socket, hello) = reload_socket(&server).await;
    assert!(matches!(hello, ServerMessage::Hello { .. }), "{hello:?}");
    assert_eq!(upstream.requests(), 0);
    server.stop().await;
}

#[tokio::test]
async fn when_the_backend_claims_the_whole_site_root_files_are_not_served_but_still_reload() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/").await;
    let reply = server.get("/page.html").await;
    assert_eq!(echo(&reply)["path"], "/page.html", "the backend answered");
    assert!(!reply.text().contains("from disk"));

    let (mut socket, _) = reload_socket(&server).await;
    write(server.root.path(), "page.html", b"<body>edited</body>");
    let change = next_change(&mut socket).await;
    assert!(matches!(change, ServerMessage::Reload { .. }), "{change:?}");
    assert_eq!(change_paths(&change), ["/page.html"]);
    server.stop().await;
}

#[tokio::test]
async fn a_dot_dot_segment_in_a_proxied_path_is_refused() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for target in [
        "/api/../secret",
        "/api/%2e%2e/secret",
        "/api/x/..%2f..%2fsecret",
    ] {
        assert_eq!(server.get(target).await.status, 400, "{target}");
    }
    assert_eq!(upstream.requests(), 0);
    server.stop().await;
}

// Forwarding --------------------------------------------------------------------------------

#[tokio::test]
async fn every_method_is_forwarded_with_its_body() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"] {
        let reply = server
            .send_raw(raw(method, "/api/echo", "localhost", &[], "hello").as_bytes())
            .await;
        let echo = echo(&reply);
        assert_eq!(echo["method"], method);
        assert_eq!(echo["body_len"], 5, "{method}");
        let seen = upstream.last();
        assert_eq!((seen.method.as_str(), seen.body_len), (method, 5));
    }
    let get = echo(&server.get("/api/echo").await);
    assert_eq!(get["method"], "GET");
    assert_eq!(get["body_len"], 0);
    server.stop().await;
}

#[tokio::test]
async fn the_upstream_sees_its_own_host_and_the_forwarding_headers() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let up = upstream.addr.to_string();

    let first = echo(&server.get("/api/echo").await);
    assert_eq!(echoed_header(&first, "host"), Some(up.as_str()));
    assert_eq!(upstream.last().header("host"), Some(up.clone()));
    assert_eq!(echoed_header(&first, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echoed_header(&first, "x-forwarded-proto"), Some("http"));
    assert_eq!(echoed_header(&first, "x-forwarded-host"), Some("localhost"));
    assert_eq!(
        echoed_header(&first, "forwarded"),
        Some("for=127.0.0.1;host=localhost;proto=http")
    );

    // A Host with a port is quoted in Forwarded; an earlier hop's address stays first.
    let host = server.addr.to_string();
    let second = echo(
        &server
            .send_raw(
                raw(
                    "GET",
                    "/api/echo",
                    &host,
                    &[("X-Forwarded-For", "203.0.113.7")],
                    "",
                )
                .as_bytes(),
            )
            .await,
    );
    assert_eq!(echoed_header(&second, "host"), Some(up.as_str()));
    assert_eq!(
        echoed_header(&second, "x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(
        echoed_header(&second, "x-forwarded-host"),
        Some(host.as_str())
    );
    assert_eq!(
        echoed_header(&second, "forwarded"),
        Some(format!("for=127.0.0.1;host=\"{host}\";proto=http").as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn hop_by_hop_request_headers_stay_behind() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let request = "GET /api/echo HTTP/1.1\r\nHost: localhost\r\n\
                   Connection: close, X-Named-Hop\r\nX-Named-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
                   Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Checksum\r\n\
                   Proxy-Authorization: Basic dXNlcjpwdw==\r\n\
                   Authorization: Bearer kept\r\nCookie: a=1\r\nX-Custom: kept\r\n\r\n";
    let seen = echo(&server.send_raw(request.as_bytes()).await);
    for name in [
        "x-named-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "proxy-authorization",
        "upgrade",
    ] {
        assert_eq!(echoed_header(&seen, name), None, "{name} is hop-by-hop");
    }
    assert!(
        !echoed_header(&seen, "connection")
            .unwrap_or("")
            .to_ascii_lowercase()
            .contains("x-named-hop"),
        "{seen}"
    );
    assert_eq!(echoed_header(&seen, "authorization"), Some("Bearer kept"));
    assert_eq!(echoed_header(&seen, "cookie"), Some("a=1"));
    assert_eq!(echoed_header(&seen, "x-custom"), Some("kept"));

    // An Upgrade that is not a WebSocket handshake is a plain request upstream.
    let h2c = raw("GET", "/api/echo", "localhost", &[("Upgrade", "h2c")], "");
    let seen = echo(&server.send_raw(h2c.as_bytes()).await);
    assert_eq!(echoed_header(&seen, "upgrade"), None);
    server.stop().await;
}

#[tokio::test]
async fn hop_by_hop_response_headers_stay_behind() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server.get("/api/hop").await;
    assert_eq!(reply.status, 200);
    for name in [
        "x-upstream-hop",
        "keep-alive",
        "proxy-connection",
        "trailer",
    ] {
        assert_eq!(reply.header(name), None, "{name} is hop-by-hop");
    }
    assert!(
        !reply
            .header("connection")
            .unwrap_or("")
            .contains("x-upstream-hop")
    );
    assert_eq!(reply.header("x-end-to-end"), Some("kept"));
    assert_eq!(body_text(&reply), "hop");
    server.stop().await;
}

#[tokio::test]
async fn an_origin_naming_liveserve_becomes_the_upstream_and_others_pass() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let host = server.addr.to_string();
    for (host, origin, expected) in [
        (
            "localhost",
            "http://localhost".to_owned(),
            upstream.origin(),
        ),
        (host.as_str(), format!("http://{host}"), upstream.origin()),
        (
            "localhost",
            "http://other.example".to_owned(),
            "http://other.example".to_owned(),
        ),
        // The same host on another port is another origin.
        (
            "localhost",
            "http://localhost:1".to_owned(),
            "http://localhost:1".to_owned(),
        ),
    ] {
        let request = raw(
            "POST",
            "/api/echo",
            host,
            &[("Origin", origin.as_str())],
            "x",
        );
        let seen = echo(&server.send_raw(request.as_bytes()).await);
        assert_eq!(
            echoed_header(&seen, "origin"),
            Some(expected.as_str()),
            "{origin}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn pages_are_asked_for_uncompressed_and_other_requests_keep_accept_encoding() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let page = echo(
        &server
            .request(
                "GET",
                "/api/echo",
                &[
                    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                    ("Accept-Encoding", "gzip, br"),
                ],
            )
            .await,
    );
    assert_eq!(echoed_header(&page, "accept-encoding"), Some("identity"));
    let data = echo(
        &server
            .request(
                "GET",
                "/api/echo",
                &[
                    ("Accept", "application/json"),
                    ("Accept-Encoding", "gzip, br"),
                ],
            )
            .await,
    );
    assert_eq!(echoed_header(&data, "accept-encoding"), Some("gzip, br"));
    server.stop().await;
}

#[tokio::test]
async fn redirects_to_the_upstream_point_back_at_liveserve() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server.get("/api/redirect").await;
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("http://localhost/page"));

    let host = server.addr.to_string();
    let reply = server
        .send_raw(raw("GET", "/api/redirect", &host, &[], "").as_bytes())
        .await;
    assert_eq!(
        reply.header("location"),
        Some(format!("http://{host}/page").as_str())
    );

    let relative = server.get("/api/relative-redirect").await;
    assert_eq!(relative.status, 302);
    assert_eq!(relative.header("location"), Some("/page"));
    server.stop().await;
}

#[tokio::test]
async fn cookies_for_the_upstream_host_lose_their_domain() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server.get("/api/cookie").await;
    assert_eq!(
        all_headers(&reply, "set-cookie"),
        [
            "session=abc; Path=/; HttpOnly",
            "other=1; Domain=example.com"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn server_sent_events_arrive_as_they_are_produced() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            raw(
                "GET",
                "/api/sse",
                "localhost",
                &[("Accept", "text/event-stream")],
                "",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until(&mut stream, &mut received, b"data: one\n\n").await;
    let head = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // The second event does not exist yet: the first arrived on its own.
    assert!(!contains(&received, b"data: two"));
    upstream.send_next_event();
    read_until(&mut stream, &mut received, b"data: two\n\n").await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_body_reaches_the_upstream_before_the_client_has_sent_all_of_it() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    const TOTAL: usize = 1024 * 1024;
    const FIRST: usize = 256 * 1024;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {TOTAL}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![1; FIRST]).await.unwrap();
    upstream.wait_for_upload(FIRST as u64).await;
    stream.write_all(&vec![2; TOTAL - FIRST]).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut received))
        .await
        .expect("answered in time")
        .unwrap();
    let reply = Reply::parse(&received);
    assert_eq!(reply.status, 200);
    assert_eq!(body_text(&reply), TOTAL.to_string());
    server.stop().await;
}

#[tokio::test]
async fn a_download_arrives_whole() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server.get("/api/download?bytes=300000").await;
    assert_eq!(reply.status, 200);
    let body = body_of(&reply);
    assert_eq!(body.len(), 300_000);
    assert!(
        body.iter()
            .enumerate()
            .all(|(offset, byte)| *byte == upstream::download_byte(offset as u64))
    );
    server.stop().await;
}

/// Runs `proxy::memory_probe` in a process of its own: resident memory belongs to the whole
/// process, and the tests running beside this one in the shared test binary would move it.
#[test]
fn fifty_mib_up_and_fifty_mib_down_stream_through_without_growing_memory() {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "proxy::memory_probe",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_PROBE, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("the memory probe finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the probe ran: {stdout}");
}

const MEMORY_PROBE: &str = "PROXY_MEMORY_PROBE";
const MIB: u64 = 1024 * 1024;

/// The body of the test above; does nothing unless that test started it.
#[tokio::test]
async fn memory_probe() {
    if std::env::var_os(MEMORY_PROBE).is_none() {
        return;
    }
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let peak = Arc::new(AtomicU64::new(0));
    let target = server.addr;
    // Warm up, so connections, tasks and buffers exist before the baseline.
    upload(target, MIB, &peak).await;
    download(target, MIB, &peak).await;

    let baseline = status_kib("VmRSS:");
    peak.store(baseline, Ordering::Relaxed);
    // Resets VmHWM to the current size, so it then records the peak of what follows.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    upload(target, 50 * MIB, &peak).await;
    download(target, 50 * MIB, &peak).await;
    let mut top = peak.load(Ordering::Relaxed);
    if peak_reset {
        top = top.max(status_kib("VmHWM:"));
    }
    let growth_kib = top.saturating_sub(baseline);
    println!("resident memory grew by {growth_kib} KiB moving 100 MiB");
    assert!(
        growth_kib < 20 * 1024,
        "resident memory grew by {growth_kib} KiB: a body was held in memory"
    );
    server.stop().await;
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

fn sample(peak: &AtomicU64) {
    peak.fetch_max(status_kib("VmRSS:"), Ordering::Relaxed);
}

/// Sends one request over a fresh connection with hyper's client and returns the response head.
async fn send<B>(addr: SocketAddr, request: Request<B>) -> hyper::Response<hyper::body::Incoming>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .expect("the response head arrived in time")
        .unwrap()
}

/// POSTs `total` bytes made as they are sent, sampling memory every MiB.
async fn upload(addr: SocketAddr, total: u64, peak: &Arc<AtomicU64>) {
    const CHUNK: u64 = 64 * 1024;
    let sampled = peak.clone();
    let chunks = futures_util::stream::unfold(0u64, move |sent| {
        let peak = sampled.clone();
        async move {
            if sent >= total {
                return None;
            }
            if sent % MIB == 0 {
                sample(&peak);
            }
            let size = CHUNK.min(total - sent);
            let chunk = Bytes::from(vec![7u8; size as usize]);
            Some((Ok::<_, Infallible>(Frame::data(chunk)), sent + size))
        }
    });
    let request = Request::post("/api/upload")
        .header(HOST, "localhost")
        .header(CONTENT_LENGTH, total)
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(chunks))
        .unwrap();
    let answer = async {
        let response = send(addr, request).await;
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap().to_bytes()
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), answer)
        .await
        .expect("the upload went through in time");
    assert_eq!(answer, total.to_string(), "the upstream counted every byte");
}

/// GETs `total` bytes, checking the pattern at the edges of every frame, sampling memory every
/// MiB.
async fn download(addr: SocketAddr, total: u64, peak: &Arc<AtomicU64>) {
    let request = Request::get(format!("/api/download?bytes={total}"))
        .header(HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let received = async {
        let response = send(addr, request).await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut received = 0u64;
        let mut next_sample = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            assert_eq!(data[0], upstream::download_byte(received));
            let last = received + data.len() as u64 - 1;
            assert_eq!(data[data.len() - 1], upstream::download_byte(last));
            received += data.len() as u64;
            if received >= next_sample {
                sample(peak);
                next_sample += MIB;
            }
        }
        received
    };
    let received = tokio::time::timeout(Duration::from_secs(60), received)
        .await
        .expect("the download went through in time");
    assert_eq!(received, total);
}

// WebSockets --------------------------------------------------------------------------------

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket handshake at `path` with an optional `Origin`: the socket, or the refusal's status.
async fn ws_connect(server: &TestServer, path: &str, origin: Option<&str>) -> Result<Socket, u16> {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    let attempt = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the handshake ended in time");
    match attempt {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

/// The next frame, pings from either side included.
async fn next_frame<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(TIMEOUT, socket.next())
        .await
        .expect("a frame arrived in time")
        .map(|frame| frame.expect("a valid frame"))
}

#[tokio::test]
async fn a_websocket_is_joined_to_the_upstream_frame_for_frame() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let own_origin = format!("http://{}", server.addr);
    let mut socket = ws_connect(&server, "/api/ws", Some(&own_origin))
        .await
        .expect("the handshake succeeded");
    assert_eq!(upstream.ws_origins(), [Some(upstream.origin())]);

    socket.send(Message::text("hi")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, Some(Message::text("hi")));
    let binary: Vec<u8> = (0..256 * 1024).map(|i| (i % 256) as u8).collect();
    socket.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, Some(Message::binary(binary)));
    socket
        .send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut socket).await,
        Some(Message::Pong(Bytes::from_static(b"are you there")))
    );
    socket
        .close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    match next_frame(&mut socket).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("the upstream's close came back: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for origin in ["http://evil.example", "http://localhost:1", "null"] {
        let refused = ws_connect(&server, "/api/ws", Some(origin)).await.err();
        assert_eq!(refused, Some(403), "{origin}");
    }
    assert_eq!(upstream.requests(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_without_origin_or_from_an_allowed_host_passes() {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(static_site(), |config| {
        config.proxies = vec![upstream.route("/api")];
        config.allowed_hosts = vec!["tunnel.example".parse().unwrap()];
    })
    .await;
    // A command-line client sends no Origin.
    let mut socket = ws_connect(&server, "/api/ws", None)
        .await
        .expect("accepted");
    socket.send(Message::text("plain")).await.unwrap();
    assert_eq!(next_frame(&mut socket).await, Some(Message::text("plain")));

    let mut request = "ws://tunnel.example/api/ws".into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_static("http://tunnel.example"));
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut tunnelled, _) =
        tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("the handshake ended in time")
            .expect("an --allow-host origin is accepted");
    tunnelled.send(Message::text("tunnel")).await.unwrap();
    assert_eq!(
        next_frame(&mut tunnelled).await,
        Some(Message::text("tunnel"))
    );
    assert_eq!(upstream.ws_origins().last(), Some(&Some(upstream.origin())));
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_the_upstream_refuses_gets_its_status() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let refused = ws_connect(&server, "/api/ws-refused", None).await.err();
    assert_eq!(refused, Some(403));
    assert_eq!(upstream.requests(), 1, "the upstream was asked");
    server.stop().await;
}

#[tokio::test]
async fn the_reload_socket_works_alongside_a_proxied_websocket() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let mut proxied = ws_connect(&server, "/api/ws", None)
        .await
        .expect("accepted");
    let (mut reload, _) = reload_socket(&server).await;
    write(server.root.path(), "index.html", b"<body>edited</body>");
    assert_eq!(
        change_paths(&next_change(&mut reload).await),
        ["/index.html"]
    );
    proxied.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        next_frame(&mut proxied).await,
        Some(Message::text("still here"))
    );
    server.stop().await;
}

/// Connects to liveserve's own socket; returns it with the first message.
async fn reload_socket(server: &TestServer) -> (Socket, ServerMessage) {
    let mut socket = ws_connect(server, "/__liveserve/ws", None)
        .await
        .expect("the reload socket accepts");
    let first = next_message(&mut socket).await;
    (socket, first)
}

/// The next protocol message (pings and pongs skipped).
async fn next_message(socket: &mut Socket) -> ServerMessage {
    loop {
        match next_frame(socket).await {
            Some(Message::Text(text)) => {
                return serde_json::from_str(&text).expect("a protocol message");
            }
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn next_change(socket: &mut Socket) -> ServerMessage {
    let message = next_message(socket).await;
    assert!(
        !matches!(message, ServerMessage::Hello { .. }),
        "a change, not {message:?}"
    );
    message
}

fn change_paths(message: &ServerMessage) -> Vec<String> {
    match message {
        ServerMessage::Reload { paths, .. } | ServerMessage::Css { paths, .. } => paths.clone(),
        other => panic!("a change message, not {other:?}"),
    }
}

// Injection ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_backend_page_gets_the_script_once_and_a_weak_etag() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server
        .request("GET", "/api/page", &[("Accept", "text/html")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), injected(PAGE, "/api/page"));
    reply.assert_length_matches();
    assert_eq!(reply.header("etag"), Some("W/\"v1\""));
    assert_eq!(reply.header(UPSTREAM_ERROR), None);
    server.stop().await;
}

#[tokio::test]
async fn compressed_backend_pages_are_decoded_and_injected() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let path = format!("/api/{coding}");
        // The backend compresses whatever the request said; a browser's Accept or none.
        for accept in [&[("Accept", "text/html")][..], &[]] {
            let reply = server.request("GET", &path, accept).await;
            assert_eq!(reply.status, 200, "{coding}");
            assert_eq!(reply.header("content-encoding"), None, "{coding}");
            assert_eq!(reply.text(), injected(PAGE, &path), "{coding}");
            reply.assert_length_matches();
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_chunked_backend_page_is_injected_and_sent_with_its_length() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server
        .request("GET", "/api/chunked", &[("Accept", "text/html")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), injected(PAGE, "/api/chunked"));
    reply.assert_length_matches();
    server.stop().await;
}

#[tokio::test]
async fn backend_error_pages_keep_their_status_and_get_the_script() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    for (path, status, page) in [
        ("/api/missing", 404, MISSING_PAGE),
        ("/api/error", 500, ERROR_PAGE),
    ] {
        let reply = server
            .request("GET", path, &[("Accept", "text/html")])
            .await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.text(), injected(page, path));
        reply.assert_length_matches();
        assert_eq!(reply.header(UPSTREAM_ERROR), None, "the backend answered");
    }
    server.stop().await;
}

#[tokio::test]
async fn other_responses_pass_byte_for_byte() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server
        .request(
            "GET",
            "/api/json-gzip",
            &[("Accept", "application/json"), ("Accept-Encoding", "gzip")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(body_of(&reply), upstream::json_gzip_bytes());
    server.stop().await;
}

#[tokio::test]
async fn without_reload_backend_pages_are_untouched() {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(static_site(), |config| {
        config.proxies = vec![upstream.route("/api")];
        config.reload = false;
    })
    .await;
    let reply = server
        .request("GET", "/api/page", &[("Accept", "text/html")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(body_text(&reply), PAGE);
    server.stop().await;
}

#[tokio::test]
async fn head_for_a_proxied_page_has_no_body() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server
        .request("HEAD", "/api/page", &[("Accept", "text/html")])
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    server.stop().await;
}

// When the upstream fails -------------------------------------------------------------------

#[tokio::test]
async fn a_stopped_upstream_is_a_502_naming_it_until_it_is_back() {
    let mut upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    upstream.stop().await;

    let page = server
        .request("GET", "/api/page", &[("Accept", "text/html,*/*;q=0.8")])
        .await;
    assert_eq!(page.status, 502);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.header(UPSTREAM_ERROR), Some("unavailable"));
    let text = page.text();
    assert!(text.contains(&upstream.origin()), "{text}");
    assert_eq!(text.matches(&tag("/api/page")).count(), 1, "{text}");
    page.assert_length_matches();

    let data = server
        .request("GET", "/api/page", &[("Accept", "application/json")])
        .await;
    assert_eq!(data.status, 502);
    assert!(
        data.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(data.header(UPSTREAM_ERROR), Some("unavailable"));
    assert!(!data.text().is_empty() && !data.text().contains("<"));

    upstream.restart().await;
    let back = server
        .request("GET", "/api/page", &[("Accept", "text/html")])
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(back.header(UPSTREAM_ERROR), None);
    server.stop().await;
}

#[tokio::test]
async fn an_upstream_slower_than_the_proxy_timeout_is_a_504() {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(static_site(), |config| {
        config.proxies = vec![upstream.route("/api")];
        config.proxy_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    let page = server
        .request("GET", "/api/slow", &[("Accept", "text/html")])
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.status, 504);
    assert_eq!(page.header(UPSTREAM_ERROR), Some("timeout"));
    assert!(page.text().contains(&tag("/api/slow")), "{}", page.text());

    let data = server
        .request("GET", "/api/slow", &[("Accept", "*/*")])
        .await;
    assert_eq!(data.status, 504);
    assert_eq!(data.header(UPSTREAM_ERROR), Some("timeout"));
    assert!(
        data.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    upstream.release_slow();
    server.stop().await;
}

#[tokio::test]
async fn a_slow_upstream_never_delays_other_requests() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    {
        let slow = server.get("/api/slow");
        tokio::pin!(slow);
        tokio::select! {
            reply = &mut slow => panic!("/api/slow answered before it was released: {reply:?}"),
            () = upstream.wait_for_requests(1) => {}
        }
        // The slow request is held by the upstream now; both of these finish while it is.
        assert_eq!(server.get("/static.txt").await.text(), "a static file");
        let page = server.get("/api/page").await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("backend page"));
        upstream.release_slow();
        let slow = slow.await;
        assert_eq!((slow.status, body_text(&slow).as_str()), (200, "slow done"));
    }
    server.stop().await;
}

#[tokio::test]
async fn an_upstream_response_head_too_large_is_a_502() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let reply = server.get("/api/big-header").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("x-big"), None);
    assert_eq!(
        server.get("/api/page").await.status,
        200,
        "the proxy still works"
    );
    server.stop().await;
}

// Guards ------------------------------------------------------------------------------------

#[tokio::test]
async fn absolute_form_and_connect_requests_are_refused_before_the_upstream() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/").await;
    let up = upstream.addr.to_string();
    for (name, request) in [
        (
            "absolute-form elsewhere",
            raw("GET", "http://elsewhere.example/", "localhost", &[], ""),
        ),
        (
            "absolute-form to the upstream",
            raw("GET", &format!("http://{up}/echo"), "localhost", &[], ""),
        ),
        (
            "absolute-form to liveserve",
            raw("GET", "http://localhost/echo", "localhost", &[], ""),
        ),
        ("CONNECT", raw("CONNECT", &up, &up, &[], "")),
    ] {
        let reply = server.send_raw(request.as_bytes()).await;
        assert_eq!(reply.status, 400, "{name}");
    }
    assert_eq!(upstream.requests(), 0);
    server.stop().await;
}

/// Both lengths on one request (RFC 9112 6.3): it is read as chunked, forwarded with that framing
/// alone, and its connection closed after the answer, so nothing glued behind it ever runs.
#[tokio::test]
async fn content_length_with_chunked_reaches_the_upstream_as_chunked_only_and_ends_the_connection()
{
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    // Five bytes by Content-Length, an empty body by chunked: a proxy and a backend that
    // disagree on where the body ends run the glued request as a second one.
    let smuggled = "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
                    Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
                    GET /api/page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(smuggled.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut received))
        .await
        .expect("the connection ended in time")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "one answer only: {text}"
    );
    assert_eq!(upstream.requests(), 1, "the glued request never ran");
    let seen = upstream.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body_len, 0, "the body as chunked framing says");
    assert!(
        seen.header("content-length").is_none(),
        "never both lengths: {seen:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    let upstream = Upstream::start().await;
    let server = proxying(&upstream, "/api").await;
    let request = "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
                   Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_eq!(server.send_raw(request.as_bytes()).await.status, 400);
    assert_eq!(upstream.requests(), 0);
    server.stop().await;
}

// Watching a backend's folders --------------------------------------------------------------

#[tokio::test]
async fn a_change_in_a_watched_folder_reloads_every_page() {
    let upstream = Upstream::start().await;
    let templates = site(&[("base.html", b"<body>{{ content }}</body>")]);
    let server = TestServer::start_with(static_site(), |config| {
        config.proxies = vec![upstream.route("/")];
        config.watch = vec![templates.path().to_path_buf()];
    })
    .await;
    let (mut socket, _) = reload_socket(&server).await;
    write(
        templates.path(),
        "base.html",
        b"<body><main>{{ content }}</main></body>",
    );
    let change = next_change(&mut socket).await;
    assert!(
        matches!(&change, ServerMessage::Reload { all: true, paths, .. } if paths.is_empty()),
        "every page: {change:?}"
    );
    server.stop().await;
}

// Helpers for raw streams -------------------------------------------------------------------

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Reads into `received` until it contains `needle`; bounded.
async fn read_until(stream: &mut TcpStream, received: &mut Vec<u8>, needle: &[u8]) {
    let reading = async {
        let mut chunk = [0; 4096];
        while !contains(received, needle) {
            let read = stream.read(&mut chunk).await.unwrap();
            assert_ne!(
                read,
                0,
                "the stream ended before {:?}: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(received)
            );
            received.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(TIMEOUT, reading)
        .await
        .unwrap_or_else(|_| panic!("{:?} arrived in time", String::from_utf8_lossy(needle)));
}
