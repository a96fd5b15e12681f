//! One request in, one response out: the guards, then liveserve's own endpoints or the route
//! whose prefix matches longest, then the response pipeline.

use std::path::PathBuf;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::body::Body;
use crate::http::devtools::{self, Workspace};
use crate::http::guards::Guards;
use crate::http::host_policy::HostPolicy;
use crate::http::internal::{self, Internal};
use crate::http::pages;
use crate::http::pipeline::{Pipeline, RequestFacts};
use crate::http::proxy::{self, Proxy};
use crate::http::static_files::{FileCache, StaticFiles};
use crate::http::upgrade::Upgrades;
use crate::http::websocket::SocketTiming;
use crate::reload::ReloadHub;
use crate::settings::{Config, Validated};
use crate::tls::Tls;

pub struct Router {
    guards: Guards,
    internal: Internal,
    /// Longest prefix first.
    routes: Vec<Route>,
    pipeline: Pipeline,
    workspace: Workspace,
}

/// The requests at or below `prefix` (whole segments) go to `source`.
struct Route {
    prefix: String,
    source: Source,
}

enum Source {
    Files(StaticFiles),
    Proxy(Box<Proxy>),
}

impl Router {
    /// `root` is the canonical root (`Config::canonical_root`), `checked` what validating
    /// `config` found; `hub` is there when live reload is on; `cache` is shared by every folder
    /// served (and told of changes by the watcher).
    pub fn new(
        config: &Config,
        root: PathBuf,
        checked: &Validated,
        hub: Option<Arc<ReloadHub>>,
        cache: Arc<FileCache>,
    ) -> Self {
        let hosts = HostPolicy::new(&config.allowed_hosts);
        let workspace = Workspace::new(&root);
        let client = proxy::backend_client();
        let mut routes: Vec<Route> = config
            .proxies
            .iter()
            .map(|route| Route {
                prefix: route.prefix().to_owned(),
                source: Source::Proxy(Box::new(Proxy::new(
                    route.clone(),
                    client.clone(),
                    hosts.clone(),
                    hub.clone(),
                    config.proxy_timeout,
                ))),
            })
            .collect();
        let files = |folder: PathBuf| {
            StaticFiles::new(
                folder,
                config.access(),
                config.follow_symlinks,
                hub.clone(),
                cache.clone(),
            )
        };
        for (mount, folder) in config.mounts.iter().zip(&checked.mount_folders) {
            routes.push(Route {
                prefix: mount.prefix().to_owned(),
                source: Source::Files(files(folder.clone()).mounted_at(mount.prefix())),
            });
        }
        // The folder is the route `/` unless a backend claims the whole site.
        if !routes.iter().any(|route| route.prefix == "/") {
            let mut root_files = files(root);
            if let Some(page) = &config.spa {
                root_files = root_files.with_spa(page);
            }
            routes.push(Route {
                prefix: "/".to_owned(),
                source: Source::Files(root_files),
            });
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Router {
            guards: Guards::new(hosts.clone(), config.cors),
            internal: Internal::new(
                hub,
                hosts,
                config.max_websocket_clients,
                SocketTiming {
                    ping_interval: config.ping_interval,
                    send_timeout: config.send_timeout,
                },
                config.tls.as_ref().and_then(Tls::authority_pem),
            ),
            routes,
            pipeline: Pipeline::new(config.cors, config.verbose, config.headers.clone()),
            workspace,
        }
    }

    /// Answers one request. An accepted upgrade is left in `upgrades` for the connection task.
    pub async fn handle(&self, request: Request<Incoming>, upgrades: &Upgrades) -> Response<Body> {
        let facts = RequestFacts::of(&request);
        let response = match self.guards.refusal(&request) {
            Some(refused) => refused,
            None if internal::is_internal(request.uri().path()) => {
                self.internal.respond(request, upgrades).await
            }
            // Only where the folder is served: a backend behind the whole site answers for it.
            None if request.uri().path() == devtools::PATH
                && matches!(self.route(devtools::PATH), Some(Source::Files(_))) =>
            {
                self.workspace.respond(&request)
            }
            None => match self.route(request.uri().path()) {
                Some(Source::Files(files)) => files.respond(&request).await,
                Some(Source::Proxy(proxy)) => proxy.respond(request, upgrades).await,
                None => pages::error(StatusCode::NOT_FOUND, "no route serves this path"),
            },
        };
        self.pipeline.finish(facts, response).await
    }

    fn route(&self, path: &str) -> Option<&Source> {
        self.routes
            .iter()
            .find(|route| is_under(path, &route.prefix))
            .map(|route| &route.source)
    }
}

/// Whether `path` is `prefix` or below it, by whole segments: `/api` covers `/api` and `/api/x`,
/// not `/apix`.
fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(is_under("/api", "/api"));
        assert!(is_under("/api/", "/api"));
        assert!(is_under("/api/x/y", "/api/"));
        assert!(!is_under("/apix", "/api"));
        assert!(!is_under("/ap", "/api"));
        assert!(is_under("/anything", "/"));
        assert!(is_under("/", "/"));
    }
}
