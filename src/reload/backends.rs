//! The two ways a folder is watched: natively (inotify, FSEvents, ReadDirectoryChangesW: instant
//! and free while idle) or by polling (a look at every entry's size and time each interval: it
//! sees what native watching cannot, on network and VM filesystems, and needs no kernel watch).
//! The rest of the watcher never knows which one produced an event.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{
    Config, EventHandler, EventKindMask, PathOp, PollWatcher, RecommendedWatcher, RecursiveMode,
    Watcher as _,
};

/// How a folder is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Native,
    Poll,
}

pub struct Backends<H> {
    /// `None` when native watching could not start (no inotify instance left for this user).
    native: Option<RecommendedWatcher>,
    /// Started the first time a folder is polled.
    poll: Option<PollWatcher>,
    interval: Duration,
    handler: H,
    /// Native watching hit the user's watch limit: folders that do not fit are polled.
    native_full: bool,
}

impl<H: EventHandler + Clone> Backends<H> {
    /// Starts native watching (unless `native` is false) and sends every event to `handler`.
    /// A native watcher that cannot start is said once on stderr; everything is polled then.
    pub fn new(handler: H, interval: Duration, native: bool) -> Self {
        let native = native
            .then(|| {
                RecommendedWatcher::new(handler.clone(), native_config())
                    .map_err(|error| tracing::warn!("{}", cannot_watch_natively(&error)))
                    .ok()
            })
            .flatten();
        Backends {
            native,
            poll: None,
            interval,
            handler,
            native_full: false,
        }
    }

    /// The backend a new folder gets: native unless polling is asked for or native watching
    /// is unavailable or full.
    pub fn choose(&self, polled: bool) -> Backend {
        if polled || self.native.is_none() || self.native_full {
            Backend::Poll
        } else {
            Backend::Native
        }
    }

    /// Watches each folder with its backend; returns the folders now watched, with the
    /// backend that watches them (a native one past the watch limit is polled instead).
    pub fn watch(&mut self, folders: Vec<(PathBuf, Backend)>) -> Vec<(PathBuf, Backend)> {
        let (native, mut polled): (Vec<_>, Vec<_>) = folders
            .into_iter()
            .partition(|(_, backend)| *backend == Backend::Native);
        let mut watched = Vec::new();
        if let Some(watcher) = &mut self.native {
            let ops = native
                .iter()
                .map(|(folder, _)| PathOp::watch_non_recursive(folder.clone()))
                .collect();
            let failed = apply(watcher, ops);
            let mut limit_hit = false;
            for (folder, _) in native {
                match failed.iter().find(|(path, _)| *path == folder) {
                    None => watched.push((folder, Backend::Native)),
                    Some((_, error)) if is_watch_limit(error) => {
                        limit_hit = true;
                        polled.push((folder, Backend::Poll));
                    }
                    Some((_, error)) => report_failure(&folder, error),
                }
            }
            if limit_hit && !std::mem::replace(&mut self.native_full, true) {
                tracing::warn!("{}", watch_limit_notice());
            }
        } else {
            polled.extend(
                native
                    .into_iter()
                    .map(|(folder, _)| (folder, Backend::Poll)),
            );
        }
        if !polled.is_empty() {
            let interval = self.interval;
            let handler = self.handler.clone();
            let poll = self
                .poll
                .get_or_insert_with(|| start_polling(handler, interval));
            let ops = polled
                .iter()
                .map(|(folder, _)| PathOp::watch_non_recursive(folder.clone()))
                .collect();
            let failed = apply(poll, ops);
            for (folder, backend) in polled {
                match failed.iter().find(|(path, _)| *path == folder) {
                    None => watched.push((folder, backend)),
                    Some((_, error)) => report_failure(&folder, error),
                }
            }
        }
        watched
    }

    /// Stops watching these folders (already gone, mostly: failures are quiet).
    pub fn unwatch(&mut self, folders: Vec<(PathBuf, Backend)>) {
        let (native, polled): (Vec<_>, Vec<_>) = folders
            .into_iter()
            .partition(|(_, backend)| *backend == Backend::Native);
        let ops = |folders: Vec<(PathBuf, Backend)>| {
            folders
                .into_iter()
                .map(|(folder, _)| PathOp::unwatch(folder))
                .collect()
        };
        if let Some(watcher) = &mut self.native {
            apply(watcher, ops(native));
        }
        if let Some(poll) = &mut self.poll {
            apply(poll, ops(polled));
        }
    }

    /// Watches `folder` natively on its own (the folder above a root), quietly: it only helps.
    pub fn watch_quietly(&mut self, folder: &Path) {
        if let Some(watcher) = &mut self.native {
            let _ = watcher.watch(folder, RecursiveMode::NonRecursive);
        }
    }
}

/// Only events that can change what a page shows: not opens or reads, nor closing a file that
/// was only read. Walking the tree and serving files must not wake the watcher.
fn native_config() -> Config {
    Config::default().with_event_kinds(EventKindMask::CORE | EventKindMask::ACCESS_CLOSE)
}

fn start_polling<H: EventHandler>(handler: H, interval: Duration) -> PollWatcher {
    let config = Config::default().with_poll_interval(interval);
    // Creating a poll watcher only starts a thread; it cannot fail short of that.
    PollWatcher::new(handler, config).expect("a polling thread starts")
}

/// Applies watch and unwatch operations in one call; returns the ones that failed. notify stops
/// a batch at its first failure, so the rest is applied again without it.
fn apply(
    watcher: &mut impl notify::Watcher,
    mut ops: Vec<PathOp>,
) -> Vec<(PathBuf, notify::Error)> {
    let mut failed = Vec::new();
    while !ops.is_empty() {
        let Err(failure) = watcher.update_paths(ops) else {
            break;
        };
        match failure.origin {
            Some(op) => failed.push((op.into_path(), failure.source)),
            None => tracing::warn!("file watcher: {}", failure.source),
        }
        ops = failure.remaining;
    }
    failed
}

fn is_watch_limit(error: &notify::Error) -> bool {
    matches!(error.kind, notify::ErrorKind::MaxFilesWatch)
}

fn report_failure(folder: &Path, error: &notify::Error) {
    // Removed between its listing and its watch: nothing to watch.
    if !matches!(error.kind, notify::ErrorKind::PathNotFound) {
        tracing::warn!("cannot watch {}: {error}", folder.display());
    }
}

/// The one line for a watch limit: which limit, its value, the command that raises it.
fn watch_limit_notice() -> String {
    let limit = inotify_setting("max_user_watches");
    format!(
        "this user's inotify watch limit is reached (fs.inotify.max_user_watches = {limit}): \
         polling the folders that did not fit. To raise it: `sudo sysctl \
         fs.inotify.max_user_watches=524288`, and to keep it, put \
         `fs.inotify.max_user_watches=524288` in /etc/sysctl.d/90-inotify.conf"
    )
}

/// Why native watching could not start, in one line with what to do.
fn cannot_watch_natively(error: &notify::Error) -> String {
    let too_many = match &error.kind {
        notify::ErrorKind::Io(io) => io.raw_os_error() == Some(24), // EMFILE
        notify::ErrorKind::MaxFilesWatch => true,
        _ => false,
    };
    if too_many {
        let limit = inotify_setting("max_user_instances");
        format!(
            "this user's inotify instances are used up (fs.inotify.max_user_instances = {limit}): \
             polling everything instead. To raise it: `sudo sysctl \
             fs.inotify.max_user_instances=1024`, and to keep it, put \
             `fs.inotify.max_user_instances=1024` in /etc/sysctl.d/90-inotify.conf"
        )
    } else {
        format!("native file watching could not start ({error}): polling everything instead")
    }
}

/// A value under /proc/sys/fs/inotify, or "unknown".
pub fn inotify_setting(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
