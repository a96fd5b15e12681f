//! Running the server: accept connections on the given listeners until the shutdown future
//! resolves, then let in-flight responses finish (for a bounded time) and return.

use std::convert::Infallible;
use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use std::pin::Pin;

use http::HeaderValue;
use http::header::HOST;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::http::{ClientAddr, FileCache, Router, Upgrades, plain_http_on_https};
use crate::memory;
use crate::protocol::Changed;
use crate::reload::{ReloadHub, Reloading};
use crate::settings::Config;
use crate::tls::{Accepted, Tls};

/// The largest request head (request line and headers) read; larger ones get 431.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// The most header fields a request may carry; more get 431.
const MAX_HEADERS: usize = 100;

/// How much of a response a connection queues before waiting for the socket: one chunk of a
/// file at a time, so a download's memory is one chunk however slowly it is read.
const MAX_WRITE_QUEUE: usize = 64 * 1024;

/// Requests an HTTP/2 connection may have in flight at once: a page of unbundled modules loads
/// a few hundred files, a hundred at a time is plenty.
const MAX_STREAMS: u32 = 128;

/// How often an idle HTTP/2 connection is pinged, so a vanished client is noticed.
const HTTP2_PING: Duration = Duration::from_secs(30);

/// How long in-flight responses get to finish after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Serves `config` on `listeners` until `shutdown` resolves.
///
/// The listeners are bound by the caller, so tests can bind `127.0.0.1:0` and read the port first,
/// and the CLI can apply its port rules before anything runs.
pub async fn run(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    prepare(config).await?.serve(listeners, shutdown).await
}

/// A server with every folder watched and its routes set up, not yet accepting connections.
pub struct Prepared {
    config: Config,
    router: Arc<Router>,
    /// Dropping it stops watching.
    reload: Option<Reloading>,
}

/// Checks `config`, watches its folders and sets up the routes. Watching starts before the
/// first connection is accepted, so a page that has loaded hears about every later change; the
/// command line prints its address only after this, so an edit made once it is printed is never
/// missed either.
pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
    let root = config.canonical_root()?;
    let checked = config.validate()?;
    let cache = Arc::new(FileCache::new(config.settle_before_caching));
    let reload = if !config.reload {
        None
    } else if config.watch_files {
        let cache = cache.clone();
        let forget = move |changed: &Changed| cache.forget(changed);
        Some(Reloading::start(&config, root.clone(), forget).await?)
    } else {
        Some(Reloading::without_watching(&config, &root))
    };
    let hub = reload.as_ref().map(|reload| reload.hub.clone());
    let router = Arc::new(Router::new(&config, root, &checked, hub, cache));
    Ok(Prepared {
        config,
        router,
        reload,
    })
}

impl Prepared {
    /// Where the pages' messages are published, when live reload is on.
    pub fn hub(&self) -> Option<Arc<ReloadHub>> {
        self.reload.as_ref().map(|reload| reload.hub.clone())
    }

    /// How many folders are watched natively and by polling (for the start-up line).
    pub fn watch_summary(&self) -> Option<String> {
        self.reload.as_ref().and_then(Reloading::summary)
    }

    /// Accepts connections on `listeners` until `shutdown` resolves.
    pub async fn serve(
        self,
        listeners: Vec<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Prepared {
            config,
            router,
            reload,
        } = self;
        serve(config, router, reload, listeners, shutdown).await
    }
}

async fn serve(
    config: Config,
    router: Arc<Router>,
    reload: Option<Reloading>,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // Request heads larger than this get 431; pages never need that much.
        .max_header_size(MAX_REQUEST_HEAD)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_WRITE_QUEUE);
    // HTTP/2 (over TLS only, as browsers speak it) with the same limits.
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD as u32)
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(HTTP2_PING)
        .max_send_buf_size(MAX_WRITE_QUEUE)
        // WebSockets on a stream of the page's own connection (RFC 8441): no second handshake.
        .enable_connect_protocol();
    let protocols = Arc::new(Protocols {
        http1,
        http2,
        tls: config.tls.clone(),
        idle_timeout: config.header_read_timeout,
    });

    // Each listener accepts in its own task; the connections meet in one loop that owns them all.
    let (accepted_tx, mut accepted) = mpsc::channel::<TcpStream>(128);
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(listener, accepted_tx.clone()));
    }
    drop(accepted_tx);

    let (stop_tx, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut memory = memory::AfterBursts::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(stream) = accepted.recv() => {
                connections.spawn(serve_connection(stream, protocols.clone(), router.clone(), stop.clone()));
                memory.opened();
            }
            // Reap finished connections so the set does not grow with every one ever served.
            Some(_) = connections.join_next(), if !connections.is_empty() => memory.closed(),
            () = memory.burst_over() => memory.release(),
        }
    }

    acceptors.shutdown().await;
    drop(accepted);
    drop(reload);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            "{} connections cut after the shutdown grace period",
            connections.len()
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// The first wait after a failed accept, doubled after each further failure...
const ACCEPT_RETRY_FIRST: Duration = Duration::from_millis(5);
/// ...up to this: a request is served again at most this long after a descriptor frees.
const ACCEPT_RETRY_MAX: Duration = Duration::from_millis(100);

async fn accept_loop(listener: TcpListener, accepted: mpsc::Sender<TcpStream>) {
    // Set while accepting fails, so the log says so once per outage, not once per attempt.
    let mut failing: Option<Duration> = None;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if failing.take().is_some() {
                    tracing::warn!("accepting connections again");
                }
                // Responses are written in one go; waiting to coalesce small writes only adds latency.
                let _ = stream.set_nodelay(true);
                if accepted.send(stream).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Usually out of file descriptors (every open tab holds one): wait for
                // connections to close instead of spinning.
                let wait = match failing {
                    None => {
                        tracing::warn!(
                            "cannot accept connections: {error}; waiting for some to close (raise the open file limit with ulimit -n if this goes on)"
                        );
                        ACCEPT_RETRY_FIRST
                    }
                    Some(last) => (last * 2).min(ACCEPT_RETRY_MAX),
                };
                failing = Some(wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// How connections are spoken to: HTTP/1.1, HTTP/2, and TLS when serving HTTPS.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<Tls>,
    /// How long an HTTP/2 connection may go without a request: HTTP/1.1's header timeout.
    idle_timeout: Duration,
}

async fn serve_connection(
    stream: TcpStream,
    protocols: Arc<Protocols>,
    router: Arc<Router>,
    stop: watch::Receiver<bool>,
) {
    let (upgrades, mut handed_over) = Upgrades::channel();
    let activity = Arc::new(Activity::default());
    let client = stream.peer_addr().ok().map(ClientAddr);
    let handler = service_fn({
        let activity = activity.clone();
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            activity.requests.fetch_add(1, Ordering::Relaxed);
            if let Some(client) = client {
                request.extensions_mut().insert(client);
            }
            authority_as_host(&mut request);
            let router = router.clone();
            let upgrades = upgrades.clone();
            async move { Ok::<_, Infallible>(router.handle(request, &upgrades).await) }
        }
    });
    let connection = async {
        match &protocols.tls {
            None => {
                let connection = protocols
                    .http1
                    .serve_connection(TokioIo::new(stream), handler);
                until_stopped(connection.with_upgrades(), stop.clone(), pending()).await
            }
            Some(tls) => match tls.accept(stream).await {
                Accepted::Tls(stream, true) => {
                    let connection = protocols
                        .http2
                        .serve_connection(TokioIo::new(stream), handler);
                    let idle = activity.idle(protocols.idle_timeout);
                    until_stopped(connection, stop.clone(), idle).await
                }
                Accepted::Tls(stream, false) => {
                    let connection = protocols
                        .http1
                        .serve_connection(TokioIo::new(stream), handler);
                    until_stopped(connection.with_upgrades(), stop.clone(), pending()).await
                }
                Accepted::Plain(stream) => {
                    let authority = tls.authority_pem();
                    let redirect = service_fn(move |request| {
                        let answer = plain_http_on_https(&request, authority.clone());
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let connection = protocols
                        .http1
                        .serve_connection(TokioIo::new(stream), redirect);
                    until_stopped(connection.with_upgrades(), stop.clone(), pending()).await
                }
                Accepted::Failed => Ok(()),
            },
        }
    };
    tokio::pin!(connection);
    // Upgraded connections and streams run in this task, beside the connection (HTTP/2 goes on
    // serving other streams) and after it: shutdown waits for them like for any connection.
    let mut upgraded = JoinSet::new();
    let result = loop {
        tokio::select! {
            result = &mut connection => break result,
            Some(upgrade) = handed_over.recv() => {
                upgraded.spawn(activity.clone().running(upgrade.run(stop.clone())));
            }
            // Reaped as they end: an HTTP/2 connection may carry socket after socket.
            Some(_) = upgraded.join_next(), if !upgraded.is_empty() => {}
        }
    };
    if let Err(error) = result {
        tracing::debug!("connection ended with an error: {error}");
    }
    while let Ok(upgrade) = handed_over.try_recv() {
        if !*stop.borrow() {
            upgraded.spawn(upgrade.run(stop.clone()));
        }
    }
    while upgraded.join_next().await.is_some() {}
}

/// What goes on over one connection: how an idle HTTP/2 connection is told from a busy one.
#[derive(Default)]
struct Activity {
    /// Requests started so far.
    requests: AtomicU64,
    /// Upgraded streams running (WebSockets): a connection carrying one is not idle.
    upgraded: AtomicUsize,
}

/// How an HTTP/2 connection fell idle.
enum Idle {
    /// It never sent a request: nothing to finish, it is dropped.
    Silent,
    /// No request for a while and nothing upgraded: it is asked to finish what is in flight.
    Quiet,
}

impl Activity {
    /// Resolves once a whole `timeout` passes with no request started and no upgraded stream:
    /// HTTP/2 has no header timeout of its own, so this gives it HTTP/1.1's rule (a client that
    /// connects and says nothing, or stays idle, is let go).
    async fn idle(&self, timeout: Duration) -> Idle {
        loop {
            let before = self.requests.load(Ordering::Relaxed);
            tokio::time::sleep(timeout).await;
            let now = self.requests.load(Ordering::Relaxed);
            if now == before && self.upgraded.load(Ordering::Relaxed) == 0 {
                return if now == 0 { Idle::Silent } else { Idle::Quiet };
            }
        }
    }

    /// Runs an upgraded stream, counted while it runs.
    async fn running(self: Arc<Self>, upgraded: impl Future<Output = ()>) {
        self.upgraded.fetch_add(1, Ordering::Relaxed);
        upgraded.await;
        self.upgraded.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection that can be asked to finish the responses in flight and close.
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn finish(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn finish(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Graceful for http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn finish(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `connection` until it ends; once `stop` turns true or `idle` resolves, the responses in
/// flight finish and idle connections close at once (one that never spoke is dropped).
async fn until_stopped(
    connection: impl Graceful,
    mut stop: watch::Receiver<bool>,
    idle: impl Future<Output = Idle>,
) -> Result<(), hyper::Error> {
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            connection.as_mut().finish();
            connection.await
        }
        idle = idle => match idle {
            Idle::Silent => Ok(()),
            Idle::Quiet => {
                connection.as_mut().finish();
                connection.await
            }
        }
    }
}

/// HTTP/2 names the host in the request's authority, not in a `Host` header; every check and
/// every link liveserve makes reads `Host`, so it is filled in from the authority.
fn authority_as_host<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(HOST) {
        return;
    }
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned());
    if let Some(value) = authority.and_then(|authority| HeaderValue::from_str(&authority).ok()) {
        request.headers_mut().insert(HOST, value);
    }
}
