//! One HTTP request in, one response out: method rules, the client script, then static files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::client;
use crate::config::Config;
use crate::files::StaticFiles;
use crate::host_policy::HostPolicy;
use crate::hub::ReloadHub;
use crate::inject::CLIENT_PATH;
use crate::pages;
use crate::protocol::WEBSOCKET_PATH;
use crate::request_path::RequestPath;
use crate::websocket::{self, UpgradeSlot};

/// The methods a static server answers.
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Longer request targets get 414: no page of a dev server needs more, and it bounds the work a
/// hostile request can cause.
const MAX_TARGET_LENGTH: usize = 8 * 1024;

pub struct Service {
    files: StaticFiles,
    /// Present when live reload is on.
    hub: Option<Arc<ReloadHub>>,
    hosts: HostPolicy,
    cors: bool,
    /// One permit per WebSocket client, so their number stays bounded.
    websocket_slots: Arc<Semaphore>,
    max_websocket_clients: usize,
    /// Set while clients are being refused, so the log says so once, not once per refusal.
    websockets_full: AtomicBool,
    verbose: bool,
}

impl Service {
    /// `root` is the canonical root (`Config::canonical_root`).
    pub fn new(config: &Config, root: PathBuf, hub: Option<Arc<ReloadHub>>) -> Self {
        Service {
            files: StaticFiles::new(root, config.access(), config.follow_symlinks, hub.is_some()),
            hub,
            hosts: HostPolicy::new(&config.allowed_hosts),
            cors: config.cors,
            websocket_slots: Arc::new(Semaphore::new(config.max_websocket_clients)),
            max_websocket_clients: config.max_websocket_clients,
            websockets_full: AtomicBool::new(false),
            verbose: config.verbose,
        }
    }

    pub fn hub(&self) -> Option<&Arc<ReloadHub>> {
        self.hub.as_ref()
    }

    /// Answers one request. An accepted WebSocket handshake leaves its session in `upgrades`.
    pub async fn handle<B>(
        &self,
        mut request: Request<B>,
        upgrades: &UpgradeSlot,
    ) -> Response<Body> {
        let started = Instant::now();
        let mut response = self.answer(&mut request, upgrades).await;
        if request.method() == Method::HEAD {
            // Same headers as GET, `Content-Length` included; hyper sends no body for HEAD.
            *response.body_mut() = Body::empty();
        }
        let headers = response.headers_mut();
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if self.cors {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        if self.verbose {
            tracing::info!(
                "{} {} {} {:.1} ms",
                request.method(),
                request.uri(),
                response.status().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        response
    }

    async fn answer<B>(&self, request: &mut Request<B>, upgrades: &UpgradeSlot) -> Response<Body> {
        if let Err(refused) = self.hosts.check(request) {
            return pages::error(refused.status, &refused.message);
        }
        let target_length = request
            .uri()
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        if target_length > MAX_TARGET_LENGTH {
            return pages::error(StatusCode::URI_TOO_LONG, "the request target is too long");
        }
        if self.hub.is_some() && request.uri().path() == WEBSOCKET_PATH {
            return self.websocket(request, upgrades);
        }
        match *request.method() {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => return self.options(),
            _ => return allow(StatusCode::METHOD_NOT_ALLOWED),
        }
        if !self.cors && is_cross_site_script_include(request.headers()) {
            return pages::error(
                StatusCode::FORBIDDEN,
                "another site may not load this project's scripts; start liveserve with --cors to allow it",
            );
        }
        let uri = request.uri();
        if self.hub.is_some() && uri.path() == CLIENT_PATH {
            return client::response(request.headers());
        }
        match RequestPath::decode(uri.path()) {
            Ok(path) => {
                self.files
                    .respond(path, uri.query(), request.headers())
                    .await
            }
            Err(error) => pages::error(StatusCode::BAD_REQUEST, &error.to_string()),
        }
    }

    /// The live reload socket: same-origin pages only, and a bounded number of them.
    fn websocket<B>(&self, request: &mut Request<B>, upgrades: &UpgradeSlot) -> Response<Body> {
        if !self.hosts.origin_allowed(request.headers()) {
            return pages::error(
                StatusCode::FORBIDDEN,
                "this WebSocket serves only pages of this server; for a proxy or tunnel name, start liveserve with --allow-host",
            );
        }
        let Ok(permit) = self.websocket_slots.clone().try_acquire_owned() else {
            if !self.websockets_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} live reload clients are connected, the most liveserve serves at once; refusing more until some leave",
                    self.max_websocket_clients
                );
            }
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live reload clients",
            );
        };
        self.websockets_full.store(false, Ordering::Relaxed);
        match websocket::accept(request) {
            Ok((response, upgrade)) => {
                upgrades.put(upgrade, permit);
                response
            }
            Err(refused) => refused,
        }
    }

    fn options(&self) -> Response<Body> {
        let mut response = allow(StatusCode::NO_CONTENT);
        if self.cors {
            let headers = response.headers_mut();
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
        }
        response
    }
}

/// A `<script src>` on another site pointing here (a cross-site, no-cors script fetch): the
/// browser would run the project's code in that site's page, where it can read what it defines.
fn is_cross_site_script_include(headers: &HeaderMap) -> bool {
    let is = |name: &str, value: &str| headers.get(name).is_some_and(|found| found == value);
    is("sec-fetch-site", "cross-site")
        && is("sec-fetch-mode", "no-cors")
        && is("sec-fetch-dest", "script")
}

/// `OPTIONS` (204) and unsupported methods (405) both say which methods work.
fn allow(status: StatusCode) -> Response<Body> {
    let mut response = if status == StatusCode::METHOD_NOT_ALLOWED {
        pages::error(
            status,
            &format!("this server only answers {ALLOWED_METHODS}"),
        )
    } else {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        response
    };
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    response
}
