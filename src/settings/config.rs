//! What a running server needs to know. Built by the CLI, or directly by programs using the library.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::access::Access;
use crate::error::StartupError;
use crate::reload::{IgnoreRules, Polling};
use crate::settings::{CustomHeader, HostRule, MountRoute, ProxyRoute};

/// The longest quiet window `--wait` may ask for: a minute without an update is not live.
pub const MAX_QUIET_WINDOW: Duration = Duration::from_secs(60);

/// The polling intervals `--poll=MS` may ask for: faster burns a core, slower is not live.
pub const POLL_INTERVALS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(20)..=Duration::from_secs(10);

/// What [`Config::validate`] found out.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The `--watch` folders, canonical.
    pub watch_folders: Vec<PathBuf>,
    /// Each mount's folder, canonical, in the order of `Config::mounts`.
    pub mount_folders: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The folder to serve.
    pub root: PathBuf,
    /// Live reload: inject the client script into HTML pages. Off makes a plain static server.
    pub reload: bool,
    /// Log one line per request and per batch of changes (`-v`).
    pub verbose: bool,
    /// Globs (relative to the root) whose changes never reload, on top of the built-in ones.
    pub ignore: Vec<String>,
    /// Apply the `.gitignore` files inside the root to the watcher.
    pub gitignore: bool,
    /// The quiet period that closes a batch of changes.
    pub quiet_window: Duration,
    /// Reload pages for stylesheet changes too, instead of swapping the stylesheets.
    pub full_reload: bool,
    /// Apply an edit of the page being shown in place, without a reload (`--no-morph` turns it
    /// off).
    pub morph: bool,
    /// Print the errors pages hit (exceptions, failed loads) on stderr.
    pub browser_errors: bool,
    /// Serve dotfiles (never `.git`).
    pub allow_hidden: bool,
    /// Serve symlinks that lead out of the root.
    pub follow_symlinks: bool,
    /// Host names (or domains) accepted in `Host` and WebSocket `Origin` besides IP literals,
    /// `localhost` and `*.localhost`: for tunnels and reverse proxies.
    pub allowed_hosts: Vec<HostRule>,
    /// Let any origin read responses (`Access-Control-Allow-Origin: *`), scripts included.
    pub cors: bool,
    /// WebSocket clients served at once; more are refused with 503.
    pub max_websocket_clients: usize,
    /// How often the live reload socket is pinged. A client that has sent nothing (not even a
    /// pong) for two of these is gone (its network dropped, its laptop asleep) and its slot is
    /// freed. Tests shorten it.
    pub ping_interval: Duration,
    /// How long a live reload client may take to take a message; a slower one (it stopped
    /// reading) is dropped, never holding up the others. Tests shorten it.
    pub send_timeout: Duration,
    /// Requests forwarded to backends, by URL prefix. The folder is the route `/` unless one of
    /// these claims it.
    pub proxies: Vec<ProxyRoute>,
    /// Other folders served at URL prefixes, with every rule the root has.
    pub mounts: Vec<MountRoute>,
    /// A single-page app's fallback page (relative to the root): what a missing page gets.
    pub spa: Option<PathBuf>,
    /// Headers every response gets.
    pub headers: Vec<CustomHeader>,
    /// Folders outside the root that are watched too (a backend's templates or sources); a
    /// change there reloads every page, or, with `exec`, runs it.
    pub watch: Vec<PathBuf>,
    /// `--exec`: a command run at start and after each change under `watch`; pages are told
    /// once per good run.
    pub exec: Option<String>,
    /// `--exec-restart`: a newer change restarts the command instead of queueing a run.
    pub exec_restart: bool,
    /// Watch the folders for changes (the library can turn it off and tell the pages itself).
    pub watch_files: bool,
    /// How long a backend may take to start its answer before the page gets 504.
    pub proxy_timeout: Duration,
    /// Which folders are polled instead of watched natively (`--poll`, `--no-poll`).
    pub polling: Polling,
    /// How often polled folders are looked at.
    pub poll_interval: Duration,
    /// File events the watcher holds while it works; a burst larger than this counts as lost
    /// events, and becomes one "everything changed" once the watcher has caught up.
    pub watch_backlog: usize,
    /// The config file the settings were read from (canonical): a save to it is announced on
    /// stderr, since only a restart applies it.
    pub settings_file: Option<PathBuf>,
    /// How long a file must have been left alone before its bytes are kept in memory: two
    /// writes within one tick of the filesystem's clock look alike, while a settled file's next
    /// write always shows in its metadata. Tests shorten it.
    pub settle_before_caching: Duration,
    /// Serve HTTPS (and HTTP/2) with this certificate; plain HTTP on the port is redirected.
    pub tls: Option<crate::tls::Tls>,
    /// How long a client may take to send its request headers. hyper enforces it only because
    /// the server sets a timer; without a bound, slow clients could hold connections forever.
    pub header_read_timeout: Duration,
}

impl Config {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Config {
            root: root.into(),
            reload: true,
            verbose: false,
            ignore: Vec::new(),
            gitignore: true,
            quiet_window: crate::reload::DEFAULT_QUIET,
            full_reload: false,
            morph: true,
            browser_errors: true,
            allow_hidden: false,
            follow_symlinks: false,
            allowed_hosts: Vec::new(),
            cors: false,
            max_websocket_clients: 16_384,
            ping_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            watch_backlog: crate::reload::DEFAULT_BACKLOG,
            polling: Polling::Auto,
            poll_interval: crate::reload::DEFAULT_POLL_INTERVAL,
            proxies: Vec::new(),
            mounts: Vec::new(),
            spa: None,
            headers: Vec::new(),
            watch: Vec::new(),
            exec: None,
            exec_restart: false,
            watch_files: true,
            proxy_timeout: Duration::from_secs(30),
            settings_file: None,
            settle_before_caching: crate::http::DEFAULT_SETTLE,
            tls: None,
        }
    }

    pub fn access(&self) -> Access {
        Access {
            allow_hidden: self.allow_hidden,
        }
    }

    /// The root, canonicalized, once it is known to be a readable folder.
    pub fn canonical_root(&self) -> Result<PathBuf, StartupError> {
        let root = match self.root.canonicalize() {
            Ok(root) => root,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StartupError::RootMissing(self.root.clone()));
            }
            Err(error) => {
                return Err(StartupError::RootUnreadable {
                    path: self.root.clone(),
                    error,
                });
            }
        };
        if !root.is_dir() {
            return Err(StartupError::RootIsFile(self.root.clone()));
        }
        if let Err(error) = fs::read_dir(&root) {
            return Err(StartupError::RootUnreadable {
                path: self.root.clone(),
                error,
            });
        }
        Ok(root)
    }

    /// Checks what the types do not: a command for `--exec`, the quiet window and poll interval within bounds, the
    /// `--ignore` patterns, no two routes on one prefix, every `--mount` and `--watch` path a
    /// folder, the `--spa` page a file. Returns the folders, canonical.
    pub fn validate(&self) -> Result<Validated, StartupError> {
        if self
            .exec
            .as_deref()
            .is_some_and(|command| command.trim().is_empty())
        {
            return Err(StartupError::EmptyExec);
        }
        if self.quiet_window > MAX_QUIET_WINDOW {
            return Err(StartupError::BadWait(self.quiet_window.as_millis()));
        }
        if !POLL_INTERVALS.contains(&self.poll_interval) {
            return Err(StartupError::BadPollInterval(
                self.poll_interval.as_millis(),
            ));
        }
        IgnoreRules::new(&self.root, self.access(), &self.ignore, false)?;
        let mut prefixes = std::collections::HashSet::new();
        let routes = self
            .proxies
            .iter()
            .map(ProxyRoute::prefix)
            .chain(self.mounts.iter().map(MountRoute::prefix));
        for prefix in routes {
            if !prefixes.insert(prefix) {
                return Err(StartupError::DuplicateRoute(prefix.to_owned()));
            }
        }
        let mount_folders = self
            .mounts
            .iter()
            .map(|mount| folder(mount.dir(), "--mount"))
            .collect::<Result<_, _>>()?;
        if let Some(spa) = &self.spa
            && !self.root.join(spa).is_file()
        {
            return Err(StartupError::BadSpa(self.root.join(spa)));
        }
        let watch_folders = self
            .watch
            .iter()
            .map(|path| folder(path, "--watch"))
            .collect::<Result<_, _>>()?;
        Ok(Validated {
            watch_folders,
            mount_folders,
        })
    }
}

/// `path` canonical, if it is a folder; else the error for `flag`.
fn folder(path: &Path, flag: &'static str) -> Result<PathBuf, StartupError> {
    let bad = |reason: String| StartupError::BadFolder {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let folder = path.canonicalize().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => bad("it does not exist".to_owned()),
        _ => bad(error.to_string()),
    })?;
    if !folder.is_dir() {
        return Err(bad("it is not a folder".to_owned()));
    }
    Ok(folder)
}
