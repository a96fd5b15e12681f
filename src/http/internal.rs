//! liveserve's own endpoints under `/__liveserve/`: the browser client, the live reload socket,
//! the same messages as Server-Sent Events for networks that drop WebSocket upgrades, and the
//! endpoint such pages report their errors to, and the endpoints other programs drive it with
//! (see `control`). The prefix is reserved: it is never served from
//! the folder nor forwarded to a backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, ORIGIN};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::http::body::Body;
use crate::http::browser_errors;
use crate::http::control;
use crate::http::guards;
use crate::http::host_policy::HostPolicy;
use crate::http::inject::CLIENT_PATH;
use crate::http::pages;
use crate::http::upgrade::{Upgrade, Upgrades};
use crate::http::validators::Validators;
use crate::http::websocket::{self, SocketTiming};
use crate::protocol::{ClientMessage, ServerMessage, WEBSOCKET_PATH};
use crate::reload::ReloadHub;

/// The browser client: the files in `inject/`, joined into one script inside one function (so
/// nothing leaks into the page's global scope), in the order they rely on each other.
const SCRIPT: &str = concat!(
    "(() => {\n\"use strict\";\n",
    include_str!("../../inject/swap.js"),
    include_str!("../../inject/morph.js"),
    include_str!("../../inject/overlay.js"),
    include_str!("../../inject/client.js"),
    "})();\n"
);

/// The reserved prefix.
const PREFIX: &str = "/__liveserve/";

/// The messages as Server-Sent Events.
const EVENTS_PATH: &str = "/__liveserve/events";

/// The local certificate authority's certificate, for phones and other devices to install.
pub const AUTHORITY_PATH: &str = "/__liveserve/ca.crt";

/// Where a page without a socket reports its errors.
const ERRORS_PATH: &str = "/__liveserve/errors";

/// An event stream sends a comment this often, as the socket sends pings: idle proxies keep it.
const EVENTS_KEEPALIVE: Duration = Duration::from_secs(30);

/// A page's error report is one line of text.
const MAX_ERROR_REPORT: usize = 4 * 1024;

/// Whether `path` is one of liveserve's own.
pub fn is_internal(path: &str) -> bool {
    path.starts_with(PREFIX) || path == PREFIX.trim_end_matches('/')
}

pub struct Internal {
    /// Present when live reload is on; without it there are no endpoints.
    hub: Option<Arc<ReloadHub>>,
    hosts: HostPolicy,
    /// One permit per live reload socket, so their number stays bounded.
    socket_slots: Arc<Semaphore>,
    max_sockets: usize,
    /// Set while sockets are being refused, so the log says so once, not once per refusal.
    sockets_full: AtomicBool,
    /// The local certificate authority's certificate (PEM), with `--https`.
    authority: Option<Bytes>,
    socket_timing: SocketTiming,
}

impl Internal {
    pub fn new(
        hub: Option<Arc<ReloadHub>>,
        hosts: HostPolicy,
        max_sockets: usize,
        socket_timing: SocketTiming,
        authority: Option<Bytes>,
    ) -> Self {
        Internal {
            hub,
            hosts,
            socket_slots: Arc::new(Semaphore::new(max_sockets)),
            max_sockets,
            sockets_full: AtomicBool::new(false),
            authority,
            socket_timing,
        }
    }

    /// Answers a request whose path [`is_internal`]. An accepted WebSocket handshake leaves
    /// its session in `upgrades`.
    pub async fn respond(
        &self,
        mut request: Request<Incoming>,
        upgrades: &Upgrades,
    ) -> Response<Body> {
        if request.uri().path() == AUTHORITY_PATH {
            return match (&self.authority, guards::read_only_methods(request.method())) {
                (_, Some(answer)) => answer,
                (Some(pem), None) => authority_certificate(pem.clone()),
                (None, None) => not_found(),
            };
        }
        let Some(hub) = &self.hub else {
            return not_found();
        };
        match request.uri().path() {
            CLIENT_PATH => match guards::read_only_methods(request.method()) {
                Some(answer) => answer,
                None => client_script(request.headers()),
            },
            WEBSOCKET_PATH => self.socket(&mut request, hub, upgrades),
            EVENTS_PATH => self.events(&request, hub),
            ERRORS_PATH => self.errors(request, hub).await,
            control::RELOAD_PATH | control::STATUS_PATH => {
                match control::refusal(&request, &self.hosts) {
                    Some(refused) => refused,
                    None if request.uri().path() == control::STATUS_PATH => {
                        control::status(&request, hub)
                    }
                    None => control::reload(request, hub).await,
                }
            }
            _ => not_found(),
        }
    }

    /// The messages as Server-Sent Events: for pages whose network drops WebSocket upgrades.
    /// Same rules as the socket: same-origin pages only, and counted against the same limit.
    fn events<B>(&self, request: &Request<B>, hub: &Arc<ReloadHub>) -> Response<Body> {
        if let Some(answer) = guards::read_only_methods(request.method()) {
            return answer;
        }
        if !self.hosts.origin_allowed(request.headers()) {
            return cross_origin();
        }
        let Some(permit) = self.take_slot() else {
            return too_many();
        };
        let (hello, updates) = hub.subscribe();
        let events = event_stream(hello, updates, permit);
        let mut response = Response::new(Body::stream(StreamBody::new(events)));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        response
    }

    /// A page without a socket reports an error: one small JSON message, from a same-origin page.
    async fn errors(&self, request: Request<Incoming>, hub: &Arc<ReloadHub>) -> Response<Body> {
        if request.method() != Method::POST {
            return pages::error(StatusCode::METHOD_NOT_ALLOWED, "errors are POSTed here");
        }
        // A report from another site would let any page write to this terminal.
        if !self.hosts.origin_allowed(request.headers()) || request.headers().get(ORIGIN).is_none()
        {
            return cross_origin();
        }
        let limited = http_body_util::Limited::new(request.into_body(), MAX_ERROR_REPORT);
        let Ok(bytes) = limited
            .collect()
            .await
            .map(|collected| collected.to_bytes())
        else {
            return pages::error(StatusCode::PAYLOAD_TOO_LARGE, "an error report is one line");
        };
        if hub.wants_errors()
            && let Ok(ClientMessage::Error { path, text }) = serde_json::from_slice(&bytes)
        {
            browser_errors::report(&path, &text);
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }

    /// A live reload slot, or `None` (said once on stderr) when all are taken.
    fn take_slot(&self) -> Option<OwnedSemaphorePermit> {
        let Ok(permit) = self.socket_slots.clone().try_acquire_owned() else {
            if !self.sockets_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} live reload clients are connected, the most liveserve serves at once; refusing more until some leave",
                    self.max_sockets
                );
            }
            return None;
        };
        self.sockets_full.store(false, Ordering::Relaxed);
        Some(permit)
    }

    /// The live reload socket: same-origin pages only, and a bounded number of them.
    fn socket<B>(
        &self,
        request: &mut Request<B>,
        hub: &Arc<ReloadHub>,
        upgrades: &Upgrades,
    ) -> Response<Body> {
        if !self.hosts.origin_allowed(request.headers()) {
            return cross_origin();
        }
        let Some(permit) = self.take_slot() else {
            return too_many();
        };
        match websocket::accept(request) {
            Ok((response, upgrade)) => {
                upgrades.put(Upgrade::LiveReload(websocket::PendingSession::new(
                    upgrade,
                    hub.clone(),
                    permit,
                    self.socket_timing,
                )));
                response
            }
            Err(refused) => refused,
        }
    }
}

fn cross_origin() -> Response<Body> {
    pages::error(
        StatusCode::FORBIDDEN,
        "live reload serves only pages of this server; for a proxy or tunnel name, start liveserve with --allow-host",
    )
}

fn too_many() -> Response<Body> {
    pages::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many live reload clients",
    )
}

/// `hello`, then every message, as `data:` events, with a comment now and then to keep idle
/// proxies from closing the stream. Ends when the page falls behind (it reloads when it
/// reconnects, its generation being behind); holds `permit` while it runs.
fn event_stream(
    hello: ServerMessage,
    updates: broadcast::Receiver<Arc<ServerMessage>>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + 'static {
    let event = |message: &ServerMessage| Bytes::from(format!("data: {}\n\n", message.to_json()));
    let first = futures_util::stream::once(futures_util::future::ready(event(&hello)));
    let later = futures_util::stream::unfold(
        (
            updates,
            permit,
            tokio::time::Instant::now() + EVENTS_KEEPALIVE,
        ),
        move |(mut updates, permit, mut keepalive)| async move {
            tokio::select! {
                update = updates.recv() => match update {
                    Ok(message) => Some((event(&message), (updates, permit, keepalive))),
                    Err(_) => None,
                },
                () = tokio::time::sleep_until(keepalive) => {
                    keepalive += EVENTS_KEEPALIVE;
                    Some((Bytes::from_static(b": keepalive\n\n"), (updates, permit, keepalive)))
                }
            }
        },
    );
    first.chain(later).map(|bytes| Ok(Frame::data(bytes)))
}

fn not_found() -> Response<Body> {
    pages::error(
        StatusCode::NOT_FOUND,
        "this path is reserved for liveserve itself",
    )
}

/// The local authority's certificate, as devices expect to be offered one to install.
pub fn authority_certificate(pem: Bytes) -> Response<Body> {
    let mut response = pages::generated(StatusCode::OK, "application/x-x509-ca-cert", pem);
    response.headers_mut().insert(
        http::header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"liveserve-ca.crt\""),
    );
    response
}

/// The client script, revalidated like any file: its tag changes with every build that changes it.
fn client_script(headers: &HeaderMap) -> Response<Body> {
    static VALIDATORS: LazyLock<Validators> =
        LazyLock::new(|| Validators::from_content(SCRIPT.as_bytes()));
    let validators = &*VALIDATORS;
    let mut response = Response::new(Body::empty());
    let response_headers = response.headers_mut();
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
