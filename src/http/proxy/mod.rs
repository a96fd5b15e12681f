//! A backend as a source: requests under a route's prefix are forwarded to it, bodies streaming
//! both ways, and its answers come back through the same pipeline as static files (so its pages
//! get the reload script). WebSocket handshakes are forwarded too, and the two connections joined.

mod headers;
mod tunnel;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{
    CONNECTION, CONTENT_TYPE, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::body::Body;
use crate::http::host_policy::HostPolicy;
use crate::http::pages;
use crate::http::pipeline::{InjectInto, Upstreamed};
use crate::http::upgrade::{Upgrade, Upgrades};
use crate::http::websocket::Handshake;
use crate::reload::ReloadHub;
use crate::request_path::RequestPath;
use crate::settings::ProxyRoute;
use headers::Requester;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
pub use tunnel::Tunnel;

/// How long connecting to a backend may take before the page gets 504.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest response head taken from a backend (as for requests); larger ones get 502.
/// hyper's read buffer limit bounds the memory such a head takes, but only roughly (reads can
/// go past it), so the size is checked again once the head is in.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The most header fields a backend's response may carry.
const MAX_RESPONSE_HEADERS: usize = 100;

/// The address of the browser (or tool) on the other end of the connection, put in each
/// request's extensions by the connection task.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// A client on this machine, also when it is an IPv4 client of a dual-stack (`::`) listener.
    pub fn is_loopback(&self) -> bool {
        match self.0.ip() {
            std::net::IpAddr::V4(ip) => ip.is_loopback(),
            std::net::IpAddr::V6(ip) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|ip| ip.is_loopback())
            }
        }
    }
}

/// The pooled HTTP/1.1 client every proxy route shares.
pub type BackendClient = Client<HttpConnector, Body>;

pub fn backend_client() -> BackendClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .http1_max_buf_size(MAX_RESPONSE_HEAD)
        .http1_max_headers(MAX_RESPONSE_HEADERS)
        .build(connector)
}

pub struct Proxy {
    route: ProxyRoute,
    client: BackendClient,
    hosts: HostPolicy,
    /// With live reload: the backend's HTML pages get the reload script.
    hub: Option<Arc<ReloadHub>>,
    /// How long the backend may take to send its response head.
    timeout: Duration,
}

/// Why a backend gave no answer, in a few words.
enum Failure {
    BadGateway(String),
    GatewayTimeout(String),
}

impl Proxy {
    pub fn new(
        route: ProxyRoute,
        client: BackendClient,
        hosts: HostPolicy,
        hub: Option<Arc<ReloadHub>>,
        timeout: Duration,
    ) -> Self {
        Proxy {
            route,
            client,
            hosts,
            hub,
            timeout,
        }
    }

    /// The marker that gets a page of the backend's the reload script, when live reload is on.
    fn inject_into(&self, data_path: &str) -> Option<InjectInto> {
        self.hub.as_ref().map(|hub| InjectInto {
            data_path: data_path.to_owned(),
            generation: hub.generation(),
            proxied: true,
            points: None,
        })
    }

    /// Forwards `request` and answers with the backend's response, or with 502/504 when it
    /// does not give one. An accepted WebSocket handshake leaves the tunnel in `upgrades`.
    pub async fn respond(
        &self,
        mut request: Request<Incoming>,
        upgrades: &Upgrades,
    ) -> Response<Body> {
        // The same rules as for files: `..`, NUL and malformed escapes are never forwarded.
        if let Err(error) = RequestPath::decode(request.uri().path()) {
            return pages::error(StatusCode::BAD_REQUEST, &error.to_string());
        }
        let handshake = Handshake::of(&request);
        let is_websocket = handshake.is_some();
        if is_websocket && !self.hosts.origin_allowed(request.headers()) {
            return pages::error(
                StatusCode::FORBIDDEN,
                "this WebSocket is only for pages of this server; for a proxy or tunnel name, start liveserve with --allow-host",
            );
        }
        let client_upgrade = is_websocket.then(|| hyper::upgrade::on(&mut request));
        let data_path = request.uri().path().to_owned();
        let wants_html = headers::accepts_html(request.headers());
        let method = request.method().clone();
        let host = request_host(&request);
        let requester = Requester {
            ip: request
                .extensions()
                .get::<ClientAddr>()
                .map(|addr| addr.0.ip()),
            host: &host,
        };
        let upstream = self.route.authority().as_str();

        let (mut parts, body) = request.into_parts();
        headers::to_backend(&mut parts.headers, &requester, upstream, is_websocket);
        parts.uri = self.upstream_uri(&parts.uri);
        parts.version = Version::HTTP_11;
        if handshake == Some(Handshake::ExtendedConnect) {
            // The backend speaks HTTP/1.1: the browser's HTTP/2 handshake becomes an upgrade.
            parts.method = Method::GET;
            if let Ok(key) = HeaderValue::from_str(&generate_key()) {
                parts.headers.insert(SEC_WEBSOCKET_KEY, key);
            }
        }
        parts.extensions = Default::default();
        let forwarded = Request::from_parts(parts, Body::stream(body));

        let started = Instant::now();
        let answer = match tokio::time::timeout(self.timeout, self.client.request(forwarded)).await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => return self.failed(classify(&error), wants_html, &data_path),
            Err(_) => {
                let waited = format!("no answer within {} s", self.timeout.as_secs_f64());
                return self.failed(Failure::GatewayTimeout(waited), wants_html, &data_path);
            }
        };
        let (mut parts, body) = answer.into_parts();
        let head_size: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if head_size > MAX_RESPONSE_HEAD || parts.headers.len() > MAX_RESPONSE_HEADERS {
            let reason = "its response head is larger than liveserve accepts (64 KiB, 100 fields)";
            return self.failed(
                Failure::BadGateway(reason.to_owned()),
                wants_html,
                &data_path,
            );
        }
        // The browser's connection has its own version, whatever the backend spoke.
        parts.version = Version::default();
        let upgraded = parts.status == StatusCode::SWITCHING_PROTOCOLS;
        headers::from_backend(&mut parts.headers, &requester, upstream, upgraded);
        parts.extensions.insert(Upstreamed {
            upstream: self.route.origin(),
            status: parts.status,
            took: started.elapsed(),
        });
        if let (true, Some(client_upgrade)) = (upgraded, client_upgrade) {
            if handshake == Some(Handshake::ExtendedConnect) {
                // The stream is the tunnel: HTTP/2 accepts with 200 and no upgrade fields.
                parts.status = StatusCode::OK;
                for name in [CONNECTION, UPGRADE, SEC_WEBSOCKET_ACCEPT] {
                    parts.headers.remove(name);
                }
            }
            let mut answer = Response::from_parts(parts, Body::empty());
            let upstream_upgrade = hyper::upgrade::on(&mut answer);
            upgrades.put(Upgrade::Tunnel(Tunnel::new(
                client_upgrade,
                upstream_upgrade,
            )));
            return answer;
        }
        if method != Method::HEAD
            && is_html(&parts.headers)
            && let Some(page) = self.inject_into(&data_path)
        {
            parts.extensions.insert(page);
        }
        Response::from_parts(parts, Body::stream(body))
    }

    /// `http://host:port` + the base path + the request's path and query, as received.
    fn upstream_uri(&self, uri: &Uri) -> Uri {
        let path_and_query = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let target = format!(
            "{}{}{path_and_query}",
            self.route.origin(),
            self.route.base_path()
        );
        target.parse().unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// 502 (504 for a timeout): for a page, HTML naming the backend and the error, which reloads
    /// by itself once the backend answers again; for anything else a line of text.
    fn failed(&self, failure: Failure, wants_html: bool, data_path: &str) -> Response<Body> {
        let (status, kind, reason) = match failure {
            Failure::BadGateway(reason) => (StatusCode::BAD_GATEWAY, "unavailable", reason),
            Failure::GatewayTimeout(reason) => (StatusCode::GATEWAY_TIMEOUT, "timeout", reason),
        };
        let origin = self.route.origin();
        let mut response = if wants_html {
            let mut page = pages::upstream_error(status, &origin, &reason);
            if let Some(inject) = self.inject_into(data_path) {
                page.extensions_mut().insert(inject);
            }
            page
        } else {
            pages::error(
                status,
                &format!("the backend {origin} did not answer: {reason}"),
            )
        };
        response
            .headers_mut()
            .insert(pages::UPSTREAM_ERROR_HEADER, HeaderValue::from_static(kind));
        response
    }
}

/// The `Host` the browser asked for (HTTP/2 puts it in the URI).
fn request_host<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

fn is_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

/// A failed request to a backend, told in a few words: the innermost cause ("Connection refused
/// (os error 111)"), or a timeout when connecting took too long.
fn classify(error: &hyper_util::client::legacy::Error) -> Failure {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let timed_out = innermost
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        || innermost.to_string().contains("timed out");
    if timed_out {
        let waited = CONNECT_TIMEOUT.as_secs();
        Failure::GatewayTimeout(format!("could not connect within {waited} s"))
    } else {
        Failure::BadGateway(innermost.to_string())
    }
}
