//! Running the server: accept connections on the given listeners until the shutdown future
//! resolves, then let in-flight responses finish (for a bounded time) and return.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::http::{ClientAddr, FileCache, Router, UpgradeSlot};
use crate::memory;
use crate::protocol::Changed;
use crate::reload::Reloading;
use crate::settings::Config;

/// The largest request head (request line and headers) read; larger ones get 431.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// The most header fields a request may carry; more get 431.
const MAX_HEADERS: usize = 100;

/// How much of a response a connection queues before waiting for the socket: one chunk of a
/// file at a time, so a download's memory is one chunk however slowly it is read.
const MAX_WRITE_QUEUE: usize = 64 * 1024;

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
    let reload = if config.reload {
        let cache = cache.clone();
        let forget = move |changed: &Changed| cache.forget(changed);
        Some(Reloading::start(&config, root.clone(), forget).await?)
    } else {
        None
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
    /// How many folders are watched natively and by polling (for the start-up line).
    pub fn watch_summary(&self) -> Option<String> {
        self.reload.as_ref().map(Reloading::summary)
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
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // Request heads larger than this get 431; pages never need that much.
        .max_header_size(MAX_REQUEST_HEAD)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_WRITE_QUEUE);

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
                connections.spawn(serve_connection(stream, http.clone(), router.clone(), stop.clone()));
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

async fn accept_loop(listener: TcpListener, accepted: mpsc::Sender<TcpStream>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Responses are written in one go; waiting to coalesce small writes only adds latency.
                let _ = stream.set_nodelay(true);
                if accepted.send(stream).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Usually out of file descriptors: wait for connections to close instead of spinning.
                tracing::warn!("accepting a connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    http: http1::Builder,
    router: Arc<Router>,
    mut stop: watch::Receiver<bool>,
) {
    let upgrades = UpgradeSlot::default();
    let client = stream.peer_addr().ok().map(ClientAddr);
    let handler = service_fn({
        let upgrades = upgrades.clone();
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            if let Some(client) = client {
                request.extensions_mut().insert(client);
            }
            let router = router.clone();
            let upgrades = upgrades.clone();
            async move { Ok::<_, Infallible>(router.handle(request, &upgrades).await) }
        }
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), handler)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            // Finish the response in flight, then close; idle connections close at once.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!("connection ended with an error: {error}");
    }
    // The connection was handed over to another protocol: this task runs it, so shutdown
    // waits for (and closes) upgraded connections like any other.
    if let Some(upgrade) = upgrades.take()
        && !*stop.borrow()
    {
        upgrade.run(stop).await;
    }
}
