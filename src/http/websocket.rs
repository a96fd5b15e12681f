//! The WebSocket endpoint, `/__liveserve/ws`, on the same port as the pages.
//!
//! The handshake is answered in the request handler (a 101 at once); the connection task then
//! runs the session on the upgraded socket: `hello` first, then every message the hub publishes,
//! a ping every half minute, and a Close frame when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, StreamExt};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode,
};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::http::body::Body;
use crate::http::browser_errors;
use crate::http::pages;
use crate::protocol::ClientMessage;
use crate::reload::ReloadHub;

/// Clients have nothing to say beyond pings and pongs; anything larger is refused.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// What a client may have queued for it before it counts as too slow.
const MAX_QUEUED_OUTPUT: usize = 64 * 1024;

/// How a browser asks for a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// HTTP/1.1: a GET with `Upgrade: websocket` that takes over the connection (RFC 6455).
    Upgrade,
    /// HTTP/2: a CONNECT with `:protocol websocket` that takes over one stream of a connection
    /// the page already has (RFC 8441), once the server has said it speaks it.
    ExtendedConnect,
}

impl Handshake {
    /// Which handshake `request` is, if it is one.
    pub fn of<B>(request: &Request<B>) -> Option<Handshake> {
        let protocol = request.extensions().get::<Protocol>();
        if request.method() == Method::CONNECT
            && protocol.is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
        {
            return Some(Handshake::ExtendedConnect);
        }
        let headers = request.headers();
        let upgrade = request.method() == Method::GET
            && header_has_token(headers, UPGRADE, "websocket")
            && header_has_token(headers, CONNECTION, "upgrade");
        upgrade.then_some(Handshake::Upgrade)
    }
}

/// Checks a WebSocket handshake. On success returns the response that accepts it (101 to an
/// upgrade, 200 to an extended CONNECT) and the pending upgrade, which the connection task
/// completes once the response is sent.
#[allow(clippy::result_large_err)]
pub fn accept<B>(request: &mut Request<B>) -> Result<(Response<Body>, OnUpgrade), Response<Body>> {
    let bad = |message: &str| pages::error(StatusCode::BAD_REQUEST, message);
    let Some(handshake) = Handshake::of(request) else {
        return Err(if request.method() == Method::GET {
            bad("this is the live reload WebSocket; connect with a WebSocket client")
        } else {
            bad("a WebSocket handshake is a GET (or over HTTP/2 a CONNECT)")
        });
    };
    let headers = request.headers();
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        let mut refused = pages::error(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken",
        );
        refused
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(refused);
    }
    let mut response = Response::new(Body::empty());
    if handshake == Handshake::Upgrade {
        let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
            return Err(bad("Sec-WebSocket-Key is missing"));
        };
        if !is_websocket_key(key.as_bytes()) {
            return Err(bad("Sec-WebSocket-Key is malformed"));
        }
        let accept_key = derive_accept_key(key.as_bytes());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let response_headers = response.headers_mut();
        response_headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        response_headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        if let Ok(accept_key) = HeaderValue::from_str(&accept_key) {
            response_headers.insert(SEC_WEBSOCKET_ACCEPT, accept_key);
        }
    }
    let Some(upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err(bad("this connection cannot be upgraded"));
    };
    Ok((response, upgrade))
}

/// A key is 16 bytes in base64: 22 characters of the alphabet and `==` (RFC 6455 4.1).
fn is_websocket_key(key: &[u8]) -> bool {
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(is_base64) && &key[22..] == b"=="
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// An accepted handshake, waiting for hyper to hand over the socket, with the permit that
/// counts it against the client limit for as long as the session runs.
pub struct PendingSession {
    upgrade: OnUpgrade,
    hub: Arc<ReloadHub>,
    permit: OwnedSemaphorePermit,
    timing: SocketTiming,
}

/// How a live reload socket keeps track of its client (see `Config::ping_interval` and
/// `Config::send_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct SocketTiming {
    /// How often the client is pinged; one silent for two of these is gone.
    pub ping_interval: Duration,
    /// A client that cannot take a message within this time is too slow (or gone).
    pub send_timeout: Duration,
}

impl PendingSession {
    pub fn new(
        upgrade: OnUpgrade,
        hub: Arc<ReloadHub>,
        permit: OwnedSemaphorePermit,
        timing: SocketTiming,
    ) -> Self {
        PendingSession {
            upgrade,
            hub,
            permit,
            timing,
        }
    }
}

/// Runs one client's session until it leaves, falls behind, or the server stops.
pub async fn run_session(pending: PendingSession, stop: watch::Receiver<bool>) {
    let PendingSession {
        upgrade,
        hub,
        permit: _permit,
        timing,
    } = pending;
    match upgrade.await {
        Ok(upgraded) => serve_socket(TokioIo::new(upgraded), &hub, timing, stop).await,
        Err(error) => tracing::debug!("WebSocket upgrade failed: {error}"),
    }
}

/// The session on a connection whose handshake is done.
async fn serve_socket<S>(
    connection: S,
    hub: &ReloadHub,
    SocketTiming {
        ping_interval,
        send_timeout,
    }: SocketTiming,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Small buffers: thousands of idle tabs must cost little, and nobody sends much here.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
        .max_write_buffer_size(MAX_QUEUED_OUTPUT);
    let socket = WebSocketStream::from_raw_socket(connection, Role::Server, Some(config)).await;
    let (mut outgoing, mut incoming) = socket.split();
    // The tab this socket belongs to, once the page has said.
    let mut tab = TabGuard { hub, tab: None };
    let (hello, mut updates) = hub.subscribe();
    if !send(&mut outgoing, text(hello.to_json()), send_timeout).await {
        return;
    }
    // Pings keep idle proxies (and NATs, and some firewalls) from dropping a quiet socket, and
    // find clients that vanished without a close: they answer nothing.
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(message) => {
                    if !send(&mut outgoing, text(message.to_json()), send_timeout).await {
                        return;
                    }
                }
                // Fell behind the backlog: the page would miss a change; drop it, and it reloads
                // when it reconnects (its generation is behind).
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
            received = incoming.next() => {
                let Some(Ok(message)) = received else {
                    return; // closed, or broken
                };
                heard = tokio::time::Instant::now();
                match message {
                    Message::Close(_) => return,
                    Message::Text(text) => match serde_json::from_str(&text) {
                        Ok(ClientMessage::Error { path, text }) if hub.wants_errors() => {
                            browser_errors::report(&path, &text);
                            if let Some(tab) = &tab.tab {
                                hub.pages().error(tab, &text);
                            }
                        }
                        Ok(ClientMessage::Page { tab: id, path, generation, loading }) => {
                            match &tab.tab {
                                Some(known) if *known == id => hub.pages().reported(&id, generation, loading),
                                _ => {
                                    if let Some(old) = tab.tab.take() {
                                        hub.pages().closed(&old);
                                    }
                                    hub.pages().opened(&id, path, generation, loading);
                                    tab.tab = Some(id);
                                }
                            }
                        }
                        _ => {}
                    },
                    // Pings are answered by tungstenite; nothing else from a client means anything.
                    _ => {}
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > ping_interval * 2 {
                    tracing::debug!("a live reload client answered nothing for {:?}; dropped", heard.elapsed());
                    return;
                }
                if !send(&mut outgoing, Message::Ping(Default::default()), send_timeout).await {
                    return;
                }
            }
            _ = stop.changed() => {
                let close = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                let _ = send(&mut outgoing, Message::Close(Some(close)), send_timeout).await;
                return;
            }
        }
    }
}

/// Tells the pages' registry when a tab's socket closes, however the session ends.
struct TabGuard<'a> {
    hub: &'a ReloadHub,
    tab: Option<String>,
}

impl Drop for TabGuard<'_> {
    fn drop(&mut self) {
        if let Some(tab) = &self.tab {
            self.hub.pages().closed(tab);
        }
    }
}

fn text(json: String) -> Message {
    Message::Text(Utf8Bytes::from(json))
}

/// Sends one message; false if the client did not take it in time or the socket failed.
async fn send<S: Sink<Message> + Unpin>(sink: &mut S, message: Message, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(within, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// What must hold for anything a client sends on the live reload socket (checked by the fuzz
/// target `websocket`; panics otherwise): the session ends when the client does, without a panic
/// or a hang, and the tab it told of counts as reloading, not as a page still shown.
///
/// `input` starting with `T` is the client's text messages, one per line (framed here, so that
/// fuzzing reaches the handling of their JSON); anything else is the raw bytes of its frames.
pub fn check_client_bytes(input: &[u8]) {
    let bytes = match input.strip_prefix(b"T") {
        Some(lines) => lines
            .split(|&byte| byte == b'\n')
            .flat_map(text_frame)
            .collect(),
        None => input.to_vec(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let root = std::env::temp_dir();
        let config = crate::settings::Config::new(&root);
        let hub = crate::reload::Reloading::without_watching(&config, &root).hub;
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (_stop, stop) = watch::channel(false);
        let timing = SocketTiming {
            ping_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(1),
        };
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let read_all = async {
            let _ = tokio::io::copy(&mut from_server, &mut tokio::io::sink()).await;
        };
        let send_all = async {
            use tokio::io::AsyncWriteExt;
            let _ = to_server.write_all(&bytes).await;
            let _ = to_server.shutdown().await;
        };
        let session = serve_socket(server, &hub, timing, stop);
        let all = async { tokio::join!(session, read_all, send_all) };
        tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .expect("the session ends when the client does");
        let pages = hub.pages().snapshot();
        assert!(
            pages.iter().all(|page| page.loading),
            "a tab whose socket closed counts as reloading, not as showing a page: {pages:?}"
        );
    });
}

/// One text message as a client frames it (masked, with a mask of zeros).
fn text_frame(text: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match text.len() {
        short @ 0..126 => frame.push(0x80 | short as u8),
        medium @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(text);
    frame
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What a client might send: messages of each type with fields right and wrong, or bytes.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        let message = prop_oneof![
            Just(r#"{"type":"page","tab":"t","path":"/","generation":1,"loading":false}"#.to_owned()),
            Just(r#"{"type":"page","tab":"u","path":"/b","generation":18446744073709551615,"loading":true}"#.to_owned()),
            Just(r#"{"type":"page","tab":"t","path":"/","generation":-1,"loading":false}"#.to_owned()),
            Just(r#"{"type":"error","path":"/","text":"boom"}"#.to_owned()),
            Just(r#"{"type":"hello"}"#.to_owned()),
            Just("[]".to_owned()),
            any::<String>().prop_map(|text| text.replace('\n', " ")),
        ];
        prop_oneof![
            prop::collection::vec(message, 0..6).prop_map(|messages| format!(
                "T{}",
                messages.join("\n")
            )
            .into_bytes()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn whatever_a_client_sends_its_session_ends_with_it(bytes in input()) {
            check_client_bytes(&bytes);
        }
    }
}
