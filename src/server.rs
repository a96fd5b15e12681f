//! The library: liveserve inside another program (a site generator, a documentation tool, a
//! test harness), serving a folder with live reload, and told by that program which pages it
//! has just written.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::app::{self, Prepared};
use crate::http::changed_url;
use crate::protocol::{Change, Changed};
use crate::reload::ReloadHub;
use crate::settings::Config;

/// Why a server could not be built or stopped serving; its message says what to do.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let result = liveserve::Server::builder("no/such/folder").build().await;
/// if let Err(error) = result {
///     eprintln!("cannot serve: {error}");
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(#[from] anyhow::Error);

/// A live-reload server for one folder, bound and watching, ready to [`run`](Server::run).
///
/// ```no_run
/// # async fn example() -> Result<(), liveserve::Error> {
/// let server = liveserve::Server::builder("public")
///     .bind("127.0.0.1:8080".parse().unwrap())
///     .build()
///     .await?;
/// println!("serving at http://{}/", server.local_addr());
/// server.run(async { tokio::signal::ctrl_c().await.unwrap() }).await?;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    prepared: Prepared,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    reloader: Reloader,
}

impl Server {
    /// Starts describing a server for the folder `root`.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site");
    /// ```
    pub fn builder(root: impl Into<PathBuf>) -> Builder {
        Builder {
            config: Config::new(root.into()),
            bind: Bind::Address(SocketAddr::from(([127, 0, 0, 1], 0))),
            routes: Vec::new(),
        }
    }

    /// Where the server listens (with port 0 given, the port it was given).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), liveserve::Error> {
    /// let server = liveserve::Server::builder("site").build().await?;
    /// let url = format!("http://{}/", server.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that tells the open pages what changed; clone it freely.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), liveserve::Error> {
    /// let server = liveserve::Server::builder("site").watch(false).build().await?;
    /// let reloader = server.reloader();
    /// tokio::spawn(server.run(std::future::pending()));
    /// // ... write site/index.html ...
    /// reloader.notify(["/index.html"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Serves until `shutdown` resolves, then lets the responses in flight finish (for a
    /// second at most) and returns.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), liveserve::Error> {
    /// let server = liveserve::Server::builder("site").build().await?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let serving = tokio::spawn(server.run(async { stopped.await.ok(); }));
    /// // ... later:
    /// stop.send(()).ok();
    /// serving.await.unwrap()?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        Ok(self.prepared.serve(vec![self.listener], shutdown).await?)
    }
}

/// Where the server listens.
enum Bind {
    Address(SocketAddr),
    Listener(std::net::TcpListener),
}

/// How a [`Server`] is made: the folder, then the options, then [`build`](Builder::build).
pub struct Builder {
    config: Config,
    bind: Bind,
    /// `--proxy` and `--mount` as written; checked by `build`.
    routes: Vec<Route>,
}

enum Route {
    Proxy(String),
    Mount(String),
}

impl Builder {
    /// Listens on `address` (default `127.0.0.1:0`: this machine only, any free port).
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").bind("127.0.0.1:8080".parse().unwrap());
    /// ```
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.bind = Bind::Address(address);
        self
    }

    /// Serves on a listener the program bound itself.
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let builder = liveserve::Server::builder("site").listener(listener);
    /// ```
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.bind = Bind::Listener(listener);
        self
    }

    /// Watches the folder and tells the pages about every change (the default). Off, the pages
    /// hear only what the program tells them through [`Server::reloader`]: for a generator that
    /// knows what it wrote, and writes whole sites at once.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").watch(false);
    /// ```
    pub fn watch(mut self, on: bool) -> Self {
        self.config.watch_files = on;
        self
    }

    /// Reloads pages for every change, never swapping stylesheets or updating a page in place.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").full_reload(true);
    /// ```
    pub fn full_reload(mut self, on: bool) -> Self {
        self.config.full_reload = on;
        self
    }

    /// Forwards a URL prefix to a backend, as `--proxy` does: `"/api=http://localhost:3000"`.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").proxy("/api=http://localhost:3000");
    /// ```
    pub fn proxy(mut self, route: &str) -> Self {
        self.routes.push(Route::Proxy(route.to_owned()));
        self
    }

    /// Serves another folder under a URL prefix, as `--mount` does: `"/vendor=node_modules"`.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").mount("/vendor=node_modules");
    /// ```
    pub fn mount(mut self, route: &str) -> Self {
        self.routes.push(Route::Mount(route.to_owned()));
        self
    }

    /// Answers a missing page with `file` (a single-page app's `index.html`), as `--spa` does.
    ///
    /// ```
    /// let builder = liveserve::Server::builder("dist").spa("index.html");
    /// ```
    pub fn spa(mut self, file: &str) -> Self {
        self.config.spa = Some(file.into());
        self
    }

    /// Does not reload for changes matching `pattern` (written as in a `.gitignore`).
    ///
    /// ```
    /// let builder = liveserve::Server::builder("site").ignore("drafts/");
    /// ```
    pub fn ignore(mut self, pattern: &str) -> Self {
        self.config.ignore.push(pattern.to_owned());
        self
    }

    /// Checks the options, binds, and (unless [`watch(false)`](Builder::watch)) watches the
    /// folder: a page served from now on hears about every later change.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), liveserve::Error> {
    /// let server = liveserve::Server::builder("site").build().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build(self) -> Result<Server, Error> {
        let Builder {
            mut config,
            bind,
            routes,
        } = self;
        for route in routes {
            match route {
                Route::Proxy(route) => config
                    .proxies
                    .push(route.parse().map_err(anyhow::Error::from)?),
                Route::Mount(route) => config
                    .mounts
                    .push(route.parse().map_err(anyhow::Error::from)?),
            }
        }
        let listener = match bind {
            Bind::Address(address) => std::net::TcpListener::bind(address)
                .map_err(|error| anyhow::anyhow!("listening on {address}: {error}"))?,
            Bind::Listener(listener) => listener,
        };
        listener
            .set_nonblocking(true)
            .map_err(anyhow::Error::from)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(anyhow::Error::from)?;
        let local_addr = listener.local_addr().map_err(anyhow::Error::from)?;
        let prepared = app::prepare(config).await?;
        let hub = prepared
            .hub()
            .expect("the library always serves with live reload");
        Ok(Server {
            prepared,
            listener,
            local_addr,
            reloader: Reloader { hub },
        })
    }
}

/// Tells the open pages what changed: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Reloader {
    hub: Arc<ReloadHub>,
}

impl Reloader {
    /// The files at these URL paths changed: stylesheets are swapped in place, a page updates
    /// or reloads, pages that use none of them stay as they are. One call is one update.
    ///
    /// ```no_run
    /// # fn example(reloader: liveserve::Reloader) {
    /// reloader.notify(["/posts/hello/index.html", "/css/site.css"]);
    /// # }
    /// ```
    pub fn notify<I>(&self, paths: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let changes: Vec<Change> = paths
            .into_iter()
            .filter_map(|path| {
                let path = path.into();
                let change = changed_url(&path);
                if let Err(error) = &change {
                    tracing::warn!("Reloader::notify: {path:?} is not a URL path: {error}");
                }
                change.ok()
            })
            .collect();
        if !changes.is_empty() {
            self.hub.publish(&Changed::Files(changes));
        }
    }

    /// Everything may have changed: every open page reloads.
    ///
    /// ```no_run
    /// # fn example(reloader: liveserve::Reloader) {
    /// reloader.reload_all();
    /// # }
    /// ```
    pub fn reload_all(&self) {
        self.hub.publish(&Changed::Everything);
    }
}
