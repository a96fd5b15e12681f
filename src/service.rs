//! One HTTP request in, one response out: method rules, the client script, then static files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use http::header::{ALLOW, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::client;
use crate::config::Config;
use crate::files::StaticFiles;
use crate::hub::ReloadHub;
use crate::inject::CLIENT_PATH;
use crate::pages;
use crate::protocol::WEBSOCKET_PATH;
use crate::request_path::RequestPath;
use crate::websocket::{self, UpgradeSlot};

/// The methods a static server answers.
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

pub struct Service {
    files: StaticFiles,
    /// Present when live reload is on.
    hub: Option<Arc<ReloadHub>>,
    verbose: bool,
}

impl Service {
    /// `root` is the canonical root (`Config::canonical_root`).
    pub fn new(config: &Config, root: PathBuf, hub: Option<Arc<ReloadHub>>) -> Self {
        Service {
            files: StaticFiles::new(root, hub.is_some()),
            hub,
            verbose: config.verbose,
        }
    }

    pub fn hub(&self) -> Option<&Arc<ReloadHub>> {
        self.hub.as_ref()
    }

    /// Answers one request. An accepted WebSocket handshake leaves its upgrade in `upgrades`.
    pub async fn handle<B>(
        &self,
        mut request: Request<B>,
        upgrades: &UpgradeSlot,
    ) -> Response<Body> {
        let started = Instant::now();
        let mut response = if self.hub.is_some() && request.uri().path() == WEBSOCKET_PATH {
            match websocket::accept(&mut request) {
                Ok((response, upgrade)) => {
                    upgrades.put(upgrade);
                    response
                }
                Err(refused) => refused,
            }
        } else {
            self.route(&request).await
        };
        if request.method() == Method::HEAD {
            // Same headers as GET, `Content-Length` included; hyper sends no body for HEAD.
            *response.body_mut() = Body::empty();
        }
        response
            .headers_mut()
            .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
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

    async fn route<B>(&self, request: &Request<B>) -> Response<Body> {
        match *request.method() {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => return allow(StatusCode::NO_CONTENT),
            _ => return allow(StatusCode::METHOD_NOT_ALLOWED),
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
