//! Over TLS, what lives beyond one request: WebSockets on an HTTP/2 stream (RFC 8441) as well as
//! by HTTP/1.1 upgrade, for the live reload socket and a backend's own through the proxy; and
//! the same limits as in clear (a client that says nothing, or dribbles its headers, is let go;
//! an idle HTTP/2 connection is closed, unless it carries a WebSocket).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use liveserve::__private::settings::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::https::{connector, fixture, get, handshake, start_https_with};
use crate::support::{TIMEOUT, TestServer};
use crate::upstream::{PAGE, Upstream};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A server on the fixture with a certificate from the authority in `authority`, configured
/// further by `configure`.
async fn start_tls(authority: &Path, configure: impl FnOnce(&mut Config)) -> TestServer {
    start_https_with(fixture(), authority, configure).await
}

type Sender = SendRequest<Empty<Bytes>>;

/// An HTTP/2 connection to `server`, trusting the authority kept in `authority`; the task
/// driving it ends when the server closes it.
async fn http2(server: &TestServer, authority: &Path) -> (Sender, tokio::task::JoinHandle<()>) {
    let trusted = connector(&authority.join("ca.crt"), b"h2");
    let stream = handshake(server.addr, &trusted).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let driving = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driving)
}

/// Sends `request` and waits for the response head.
async fn send(sender: &mut Sender, request: Request<Empty<Bytes>>) -> Response<Incoming> {
    tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .expect("answered in time")
        .unwrap()
}

/// Asks for a WebSocket at `path` on a new stream (extended CONNECT), as a page of `origin`.
async fn extended_connect(sender: &mut Sender, path: &str, origin: &str) -> Response<Incoming> {
    // The server's SETTINGS say whether it speaks extended CONNECT: a first request makes sure
    // they have arrived.
    let warm = Request::get("https://localhost/")
        .body(Empty::new())
        .unwrap();
    send(sender, warm).await;
    let mut connect = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://localhost{path}"))
        .header("sec-websocket-version", "13")
        .header("origin", origin)
        .body(Empty::new())
        .unwrap();
    connect
        .extensions_mut()
        .insert(Protocol::from_static("websocket"));
    send(sender, connect).await
}

/// A WebSocket to `path` on a stream of an HTTP/2 connection.
async fn websocket_over_http2(sender: &mut Sender, path: &str) -> Socket {
    let response = extended_connect(sender, path, "https://localhost").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.headers()
    );
    assert!(response.headers().get("sec-websocket-accept").is_none());
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

async fn next_text<S>(socket: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let message = tokio::time::timeout(TIMEOUT, socket.next())
        .await
        .expect("a message in time");
    message.unwrap().unwrap().into_text().unwrap().to_string()
}

#[tokio::test]
async fn live_reload_rides_a_stream_of_the_pages_http2_connection() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_tls(authority.path(), |_| {}).await;
    let (mut sender, _driving) = http2(&server, authority.path()).await;
    let mut socket = websocket_over_http2(&mut sender, "/__liveserve/ws").await;
    assert!(next_text(&mut socket).await.contains("\"hello\""));
    // The connection goes on serving requests beside the socket.
    let page = Request::get("https://localhost/a.css")
        .body(Empty::new())
        .unwrap();
    assert_eq!(send(&mut sender, page).await.status(), 200);
    std::fs::write(server.root.path().join("a.css"), "body { color: tan }").unwrap();
    assert!(next_text(&mut socket).await.contains("/a.css"));
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_from_another_site_is_refused_over_http2_too() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_tls(authority.path(), |_| {}).await;
    let (mut sender, _driving) = http2(&server, authority.path()).await;
    let refused = extended_connect(&mut sender, "/__liveserve/ws", "https://evil.example").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A CONNECT for anything but a WebSocket is a forward proxy's job.
    let tunnel = Request::builder()
        .method(Method::CONNECT)
        .uri("https://localhost/__liveserve/ws")
        .body(Empty::new())
        .unwrap();
    let refused = send(&mut sender, tunnel).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn the_proxy_serves_pages_and_websockets_over_http2_and_http11() {
    let authority = tempfile::tempdir().unwrap();
    let ca = authority.path().join("ca.crt");
    let upstream = Upstream::start().await;
    let route = upstream.route("/");
    let server = start_tls(authority.path(), move |config| config.proxies = vec![route]).await;
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let version = String::from_utf8_lossy(alpn).into_owned();
        let stream = handshake(server.addr, &connector(&ca, alpn)).await.unwrap();
        let page = get(stream, "/page", &[("accept", "text/html")]).await;
        assert_eq!(page.status, 200, "{version}");
        let text = String::from_utf8(page.body).unwrap();
        assert!(text.contains("backend page"), "{version}: {text}");
        assert!(
            text.contains("/__liveserve/client.js"),
            "{version}: injected: {text}"
        );
        assert!(PAGE.len() < text.len());
    }
    // The backend's WebSocket, over an HTTP/2 stream and over an HTTP/1.1 upgrade.
    let (mut sender, _driving) = http2(&server, authority.path()).await;
    let mut over_http2 = websocket_over_http2(&mut sender, "/ws").await;
    over_http2
        .send(Message::text("over a stream"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut over_http2).await, "over a stream");
    let stream = handshake(server.addr, &connector(&ca, b"http/1.1"))
        .await
        .unwrap();
    let request = http::Request::get("wss://localhost/ws")
        .header("host", "localhost")
        .header("origin", "https://localhost")
        .header(
            "sec-websocket-key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .header("sec-websocket-version", "13")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    let (mut over_http11, _) =
        tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .unwrap()
            .unwrap();
    over_http11
        .send(Message::text("over an upgrade"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut over_http11).await, "over an upgrade");
    assert_eq!(
        upstream.ws_origins(),
        [
            Some("https://localhost".to_owned()),
            Some("https://localhost".to_owned())
        ]
    );
    server.stop().await;
}

/// Reads until the server closes `stream`; panics if it does not within [`TIMEOUT`].
async fn closed_by_server(mut stream: impl tokio::io::AsyncRead + Unpin) {
    let mut sink = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut sink))
        .await
        .expect("the server closed the connection")
        .ok();
}

#[tokio::test]
async fn tls_clients_that_say_nothing_or_dribble_are_let_go_like_in_clear() {
    let authority = tempfile::tempdir().unwrap();
    let ca = authority.path().join("ca.crt");
    let server = start_tls(authority.path(), |config| {
        config.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    // HTTP/2 agreed, then not even the connection preface.
    let silent = handshake(server.addr, &connector(&ca, b"h2"))
        .await
        .unwrap();
    // HTTP/1.1 agreed, then a request head one byte at a time.
    let mut dribbling = handshake(server.addr, &connector(&ca, b"http/1.1"))
        .await
        .unwrap();
    dribbling
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let dribble = async {
        loop {
            if dribbling.write_all(b"a").await.is_err() || dribbling.flush().await.is_err() {
                return;
            }
            let mut byte = [0; 1];
            let answer = Duration::from_millis(100);
            // The close, or an error response and then the close.
            if tokio::time::timeout(answer, dribbling.read(&mut byte))
                .await
                .is_ok()
            {
                return;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, dribble)
        .await
        .expect("the dribbling client was let go");
    closed_by_server(silent).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Meanwhile, and after, a real client is served.
    let stream = handshake(server.addr, &connector(&ca, b"h2"))
        .await
        .unwrap();
    assert_eq!(get(stream, "/a.css", &[]).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_unless_it_carries_a_websocket() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_tls(authority.path(), |config| {
        config.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    // One connection with a request and then nothing: the server ends it.
    let (mut idle_sender, idle_driving) = http2(&server, authority.path()).await;
    let page = Request::get("https://localhost/a.css")
        .body(Empty::new())
        .unwrap();
    assert_eq!(send(&mut idle_sender, page).await.status(), 200);
    // Another carrying the live reload socket, its last request after the idle one's.
    let (mut sender, carrying_driving) = http2(&server, authority.path()).await;
    let mut socket = websocket_over_http2(&mut sender, "/__liveserve/ws").await;
    assert!(next_text(&mut socket).await.contains("\"hello\""));
    tokio::time::timeout(TIMEOUT, idle_driving)
        .await
        .expect("the idle connection was closed")
        .unwrap();
    // The idle one's end proves the timeout has passed; the socket's connection lives on.
    assert!(!carrying_driving.is_finished());
    std::fs::write(server.root.path().join("a.css"), "body { color: tan }").unwrap();
    assert!(next_text(&mut socket).await.contains("/a.css"));
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_over_http2_as_over_http11() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_tls(authority.path(), |_| {}).await;
    let (mut sender, _driving) = http2(&server, authority.path()).await;
    let huge = Request::get("https://localhost/a.css")
        .header("x-huge", "a".repeat(70 * 1024))
        .body(Empty::new())
        .unwrap();
    let refused = tokio::time::timeout(TIMEOUT, sender.send_request(huge))
        .await
        .expect("answered in time");
    // HTTP/2 answers 431, or resets the stream, as the protocol allows; never the file.
    if let Ok(response) = refused {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
    let (mut sender, _driving) = http2(&server, authority.path()).await;
    let fine = Request::get("https://localhost/a.css")
        .body(Empty::new())
        .unwrap();
    assert_eq!(send(&mut sender, fine).await.status(), 200);
    server.stop().await;
}
