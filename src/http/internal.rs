//! liveserve's own endpoints under `/__liveserve/`: the browser client and the live reload
//! socket. The prefix is reserved: it is never served from the folder nor forwarded to a backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::http::body::Body;
use crate::http::guards;
use crate::http::host_policy::HostPolicy;
use crate::http::inject::CLIENT_PATH;
use crate::http::pages;
use crate::http::upgrade::{Upgrade, UpgradeSlot};
use crate::http::validators::Validators;
use crate::http::websocket;
use crate::protocol::WEBSOCKET_PATH;
use crate::reload::ReloadHub;

const SCRIPT: &str = include_str!("../../inject/client.js");

/// The reserved prefix.
const PREFIX: &str = "/__liveserve/";

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
}

impl Internal {
    pub fn new(hub: Option<Arc<ReloadHub>>, hosts: HostPolicy, max_sockets: usize) -> Self {
        Internal {
            hub,
            hosts,
            socket_slots: Arc::new(Semaphore::new(max_sockets)),
            max_sockets,
            sockets_full: AtomicBool::new(false),
        }
    }

    /// Answers a request whose path [`is_internal`]. An accepted WebSocket handshake leaves
    /// its session in `upgrades`.
    pub fn respond<B>(&self, request: &mut Request<B>, upgrades: &UpgradeSlot) -> Response<Body> {
        let Some(hub) = &self.hub else {
            return not_found();
        };
        match request.uri().path() {
            CLIENT_PATH => match guards::read_only_methods(request.method()) {
                Some(answer) => answer,
                None => client_script(request.headers()),
            },
            WEBSOCKET_PATH => self.socket(request, hub, upgrades),
            _ => not_found(),
        }
    }

    /// The live reload socket: same-origin pages only, and a bounded number of them.
    fn socket<B>(
        &self,
        request: &mut Request<B>,
        hub: &Arc<ReloadHub>,
        upgrades: &UpgradeSlot,
    ) -> Response<Body> {
        if !self.hosts.origin_allowed(request.headers()) {
            return pages::error(
                StatusCode::FORBIDDEN,
                "this WebSocket serves only pages of this server; for a proxy or tunnel name, start liveserve with --allow-host",
            );
        }
        let Ok(permit) = self.socket_slots.clone().try_acquire_owned() else {
            if !self.sockets_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} live reload clients are connected, the most liveserve serves at once; refusing more until some leave",
                    self.max_sockets
                );
            }
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live reload clients",
            );
        };
        self.sockets_full.store(false, Ordering::Relaxed);
        match websocket::accept(request) {
            Ok((response, upgrade)) => {
                upgrades.put(Upgrade::LiveReload(websocket::PendingSession::new(
                    upgrade,
                    hub.clone(),
                    permit,
                )));
                response
            }
            Err(refused) => refused,
        }
    }
}

fn not_found() -> Response<Body> {
    pages::error(
        StatusCode::NOT_FOUND,
        "this path is reserved for liveserve itself",
    )
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
