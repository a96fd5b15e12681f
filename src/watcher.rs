//! Watching the root for changes: folder by folder (so ignored folders such as `node_modules`
//! cost nothing), picking up new folders as they appear, and turning notify's events into
//! [`Change`]s by URL path.
//!
//! notify's callback runs on its own thread and must never block: it only hands the event to a
//! bounded channel. A dedicated thread does the rest (it touches the file system: stat, read_dir,
//! adding watches) and passes the changes to the batcher.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::ignore_rules::IgnoreRules;
use crate::protocol::{Change, ChangeKind};
use crate::request_path::RequestPath;

/// Events waiting for the watch thread. A burst larger than this (a checkout of thousands of
/// files) is not lost: the overflow is noted and sent as one "everything changed".
const EVENT_BACKLOG: usize = 8192;

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot watch {path}: the system's limit of watched folders is reached; raise it \
         (Linux: `sudo sysctl fs.inotify.max_user_watches=524288`) or skip large folders with --ignore"
    )]
    TooManyFolders { path: String },
    #[error("cannot watch {path}: {source}")]
    Other { path: String, source: notify::Error },
}

enum Input {
    Event(notify::Result<Event>),
    Stop,
}

/// The running watcher. Dropping it stops the watch thread.
pub struct Watcher {
    input: SyncSender<Input>,
}

impl Watcher {
    /// Watches `root` (canonical) and every folder below it that the rules do not ignore, then
    /// keeps sending changes to `changes` until dropped. Returns once the initial tree is watched,
    /// so every change after it is seen. Blocks: call it from a blocking context.
    pub fn start(
        root: PathBuf,
        rules: IgnoreRules,
        changes: mpsc::Sender<Change>,
    ) -> Result<Watcher, WatchError> {
        let (input, events) = sync_channel(EVENT_BACKLOG);
        let overflowed = Arc::new(AtomicBool::new(false));
        let callback = {
            let input = input.clone();
            let overflowed = overflowed.clone();
            move |event| match input.try_send(Input::Event(event)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => overflowed.store(true, Ordering::Relaxed),
            }
        };
        let notify = RecommendedWatcher::new(callback, notify::Config::default())
            .map_err(|source| watch_error(&root, source))?;
        let mut thread = WatchThread {
            root: root.clone(),
            rules,
            notify,
            watched: HashSet::new(),
            changes,
            overflowed,
        };
        thread.watch(&root)?;
        thread.add_tree(&root, false);
        // The root itself can be deleted and made again (`rm -rf dist` in a clean build): only a
        // watch on the folder above sees it come back. Other events there are outside the root
        // and ignored.
        if let Some(parent) = root.parent() {
            let _ = thread.notify.watch(parent, RecursiveMode::NonRecursive);
        }
        std::thread::Builder::new()
            .name("liveserve-watch".into())
            .spawn(move || thread.run(events))
            .map_err(|source| WatchError::Other {
                path: root.display().to_string(),
                source: notify::Error::io(source),
            })?;
        Ok(Watcher { input })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.input.send(Input::Stop);
    }
}

struct WatchThread {
    root: PathBuf,
    rules: IgnoreRules,
    notify: RecommendedWatcher,
    watched: HashSet<PathBuf>,
    changes: mpsc::Sender<Change>,
    overflowed: Arc<AtomicBool>,
}

impl WatchThread {
    fn run(mut self, events: Receiver<Input>) {
        while let Ok(Input::Event(event)) = events.recv() {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!("file watcher: {error}");
                    continue;
                }
            };
            let missed = self.overflowed.swap(false, Ordering::Relaxed) || event.need_rescan();
            if missed {
                if !self.send(everything_changed()) {
                    return;
                }
                // Folders made during the lost events have no watch yet: walk the tree again.
                let root = self.root.clone();
                if !self.add_tree(&root, false) {
                    return;
                }
            }
            for (path, kind) in classify(&event) {
                if !self.handle(&path, kind) {
                    return;
                }
            }
        }
    }

    /// Handles one changed path; false once nobody listens any more.
    fn handle(&mut self, path: &Path, kind: ChangeKind) -> bool {
        if path.file_name().is_some_and(|name| name == ".gitignore") {
            if let Some(folder) = path.parent().map(Path::to_path_buf) {
                self.rules.load_gitignore(&folder);
                // Folders the old rules ignored may be in play now: watch them, and report
                // their files, which pages have never been told about.
                return self.add_tree(&folder, true);
            }
            return true;
        }
        let is_dir = kind != ChangeKind::Removed
            && fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir());
        // A removed path may have been a folder (it is gone, so nobody can tell): a rule for
        // folders only, such as `dist/`, must still keep its removal quiet.
        let ignored = self.rules.is_ignored(path, is_dir)
            || (kind == ChangeKind::Removed && self.rules.is_ignored(path, true));
        if ignored {
            return true;
        }
        if kind == ChangeKind::Removed && self.watched.contains(path) {
            self.forget_tree(path);
        }
        if is_dir {
            if !self.watched.contains(path) {
                // A new folder: watch it, then report what was written in it before the watch
                // was in place (`mkdir -p a/b/c && touch a/b/c/x` arrives as one event for `a`).
                return self.add_tree(path, true);
            }
            return true;
        }
        self.send(Change {
            url_path: self.url_path(path),
            kind,
        })
    }

    /// Watches `folder` and every non-ignored folder below it; with `report`, each file found in
    /// a folder that had no watch before is sent as created. Symlinked folders are not followed,
    /// so link loops cannot trap it.
    fn add_tree(&mut self, folder: &Path, report: bool) -> bool {
        let mut pending = vec![folder.to_path_buf()];
        while let Some(folder) = pending.pop() {
            // Only files in folders that had no watch yet are news; the others were seen.
            let newly_watched = !self.watched.contains(&folder);
            if newly_watched && let Err(error) = self.watch(&folder) {
                tracing::warn!("{error}");
                continue;
            }
            let Ok(entries) = fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                if self.rules.is_ignored(&path, is_dir) {
                    continue;
                }
                if is_dir {
                    pending.push(path);
                } else if report && newly_watched {
                    let change = Change {
                        url_path: self.url_path(&path),
                        kind: ChangeKind::Created,
                    };
                    if !self.send(change) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn watch(&mut self, folder: &Path) -> Result<(), WatchError> {
        self.rules.load_gitignore(folder);
        self.notify
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|source| watch_error(folder, source))?;
        self.watched.insert(folder.to_path_buf());
        Ok(())
    }

    /// A watched folder was removed or renamed away: drop its watches and its subfolders'.
    fn forget_tree(&mut self, folder: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|watched| watched.starts_with(folder))
            .cloned()
            .collect();
        for path in gone {
            let _ = self.notify.unwatch(&path);
            self.watched.remove(&path);
        }
    }

    fn url_path(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        let segments = relative
            .components()
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .collect();
        RequestPath::from_segments(segments, false).to_url_path()
    }

    fn send(&self, change: Change) -> bool {
        self.changes.blocking_send(change).is_ok()
    }
}

/// Sent when events were lost (the backlog overflowed, or the OS said to rescan): the page
/// reloads, which is always right.
fn everything_changed() -> Change {
    Change {
        url_path: "/".to_owned(),
        kind: ChangeKind::Modified,
    }
}

/// The paths an event is about, each with what happened to it. Renames are a removal of the old
/// name and a creation of the new one; reads are not changes.
fn classify(event: &Event) -> Vec<(PathBuf, ChangeKind)> {
    // For events that do not say what happened, the file system does: gone, or there.
    let now = |present: ChangeKind| {
        move |path: &PathBuf| {
            let kind = if fs::symlink_metadata(path).is_ok() {
                present
            } else {
                ChangeKind::Removed
            };
            (path.clone(), kind)
        }
    };
    match event.kind {
        EventKind::Access(_) => Vec::new(),
        EventKind::Create(_) => with_kind(&event.paths, ChangeKind::Created),
        EventKind::Remove(_) => with_kind(&event.paths, ChangeKind::Removed),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            with_kind(&event.paths, ChangeKind::Removed)
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            with_kind(&event.paths, ChangeKind::Created)
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = event.paths.iter();
            let from = paths.next().map(|path| (path.clone(), ChangeKind::Removed));
            let to = paths.next().map(|path| (path.clone(), ChangeKind::Created));
            from.into_iter().chain(to).collect()
        }
        EventKind::Modify(ModifyKind::Name(_)) => {
            event.paths.iter().map(now(ChangeKind::Created)).collect()
        }
        EventKind::Modify(_) => with_kind(&event.paths, ChangeKind::Modified),
        EventKind::Any | EventKind::Other => {
            event.paths.iter().map(now(ChangeKind::Modified)).collect()
        }
    }
}

fn with_kind(paths: &[PathBuf], kind: ChangeKind) -> Vec<(PathBuf, ChangeKind)> {
    paths.iter().map(|path| (path.clone(), kind)).collect()
}

fn watch_error(path: &Path, source: notify::Error) -> WatchError {
    let path = path.display().to_string();
    match source.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::TooManyFolders { path },
        _ => WatchError::Other { path, source },
    }
}
