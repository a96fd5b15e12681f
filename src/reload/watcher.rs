//! Watching the served folder (and any other folder the user names) for changes: folder by
//! folder (so ignored folders such as `node_modules` cost nothing), picking up new folders as
//! they appear, and turning notify's events into [`Change`]s by URL path.
//!
//! Only events that can change what a page shows are asked for: content written, files created,
//! removed, renamed, attributes changed. Opening and reading are not: walking the tree (which
//! opens every folder) and serving files (which opens every file it sends) must not wake the
//! watcher, or a large tree floods the queues with its own walk.
//!
//! notify's callback runs on its own thread and must never block: it only hands the event to a
//! bounded channel. A dedicated thread does the rest (it touches the file system: stat, read_dir,
//! adding watches) and passes what it saw to the batcher.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{Event, EventKindMask, PathOp, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::protocol::{Change, ChangeKind};
use crate::reload::batcher::{BURST_OVER_AFTER, MAX_BURST, Observation};
use crate::reload::ignore_rules::IgnoreRules;
use crate::request_path::RequestPath;

/// Events waiting for the watch thread. A burst larger than this (a checkout of thousands of
/// files) is not lost: the overflow is noted and becomes one "everything changed".
pub const DEFAULT_BACKLOG: usize = 8192;

/// The kinds of events that can change what a page shows. Not opens or reads, nor closing a
/// file that was only read: see the module documentation.
fn relevant_events() -> EventKindMask {
    EventKindMask::CORE | EventKindMask::ACCESS_CLOSE
}

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
    /// How many folders were watched once the first walk was done.
    pub folders_at_start: usize,
}

/// A folder to watch, with everything below it that its rules do not ignore.
pub struct Tree {
    /// Canonical, as event paths are.
    pub root: PathBuf,
    pub rules: IgnoreRules,
    /// What the root is on the site: `Some("/")` for the served folder. `None` for a folder
    /// with no URLs (a backend's templates): a change there changes every page.
    pub url_prefix: Option<String>,
}

impl Watcher {
    /// Watches each tree, then keeps sending what it observes to `observations` until dropped;
    /// `backlog` events wait while the watch thread is busy. Returns once every folder is
    /// watched, so every change after it is seen. Blocks: call it from a blocking context.
    pub fn start(
        trees: Vec<Tree>,
        backlog: usize,
        observations: mpsc::Sender<Observation>,
    ) -> Result<Watcher, WatchError> {
        let (input, events) = sync_channel(backlog.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        let callback = {
            let input = input.clone();
            let overflowed = overflowed.clone();
            move |event| match input.try_send(Input::Event(event)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => overflowed.store(true, Ordering::Relaxed),
            }
        };
        let first_root = trees
            .first()
            .map_or_else(PathBuf::new, |tree| tree.root.clone());
        let config = notify::Config::default().with_event_kinds(relevant_events());
        let notify = RecommendedWatcher::new(callback, config)
            .map_err(|source| watch_error(&first_root, source))?;
        let mut thread = WatchThread {
            trees,
            notify,
            watched: HashSet::new(),
            observations,
            overflowed,
            reporting: true,
            limit_reported: false,
        };
        for root in thread.roots() {
            // A root must be watched, or nothing below it would ever reload: its failure stops
            // the start.
            thread
                .notify
                .watch(&root, RecursiveMode::NonRecursive)
                .map_err(|source| watch_error(&root, source))?;
            thread.mark_watched(&root);
            // Without reporting nothing is sent, so nothing can stop it.
            let _ = thread.add_tree(&root, false);
            // A root can be deleted and made again (`rm -rf dist` in a clean build): only a
            // watch on the folder above sees it come back. Other events there are outside every
            // tree and ignored.
            if let Some(parent) = root.parent() {
                let _ = thread.notify.watch(parent, RecursiveMode::NonRecursive);
            }
        }
        let folders_at_start = thread.watched.len();
        std::thread::Builder::new()
            .name("liveserve-watch".into())
            .spawn(move || thread.run(events))
            .map_err(|source| WatchError::Other {
                path: first_root.display().to_string(),
                source: notify::Error::io(source),
            })?;
        Ok(Watcher {
            input,
            folders_at_start,
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.input.send(Input::Stop);
    }
}

/// Why the watch thread stops: nobody listens any more, or the watcher was dropped.
struct Stopped;

struct WatchThread {
    trees: Vec<Tree>,
    notify: RecommendedWatcher,
    watched: HashSet<PathBuf>,
    observations: mpsc::Sender<Observation>,
    overflowed: Arc<AtomicBool>,
    /// Off while catching up after lost events: "everything changed" covers what is seen then.
    reporting: bool,
    /// The watch limit warning is given once, not once per folder that does not fit.
    limit_reported: bool,
}

impl WatchThread {
    fn run(mut self, events: Receiver<Input>) {
        let _ = self.follow(&events);
    }

    fn follow(&mut self, events: &Receiver<Input>) -> Result<(), Stopped> {
        while let Ok(Input::Event(event)) = events.recv() {
            if self.events_lost(&event) {
                self.catch_up(events)?;
            } else {
                self.handle_event(event)?;
            }
        }
        Err(Stopped)
    }

    /// Whether events were lost before this one: our backlog overflowed, or the OS said to rescan.
    fn events_lost(&self, event: &notify::Result<Event>) -> bool {
        let overflowed = self.overflowed.swap(false, Ordering::Relaxed);
        overflowed || event.as_ref().is_ok_and(Event::need_rescan)
    }

    /// After lost events: hold the batch, follow the burst silently until it is over (watching
    /// the folders it makes; for at most [`MAX_BURST`]), walk the whole tree again so that the
    /// walk sees the burst's end state, then let the batch go as one "everything changed". The walk itself causes no events (opens are not watched), so it
    /// can never start another round.
    fn catch_up(&mut self, events: &Receiver<Input>) -> Result<(), Stopped> {
        tracing::debug!("file watcher: events were lost; catching up");
        self.observe(Observation::EventsLost)?;
        self.reporting = false;
        let give_up_at = Instant::now() + MAX_BURST;
        loop {
            let wait = BURST_OVER_AFTER.min(give_up_at.saturating_duration_since(Instant::now()));
            match events.recv_timeout(wait) {
                Ok(Input::Event(event)) => {
                    self.overflowed.store(false, Ordering::Relaxed);
                    self.handle_event(event)?;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return Err(Stopped),
            }
            if Instant::now() >= give_up_at {
                break;
            }
        }
        self.overflowed.store(false, Ordering::Relaxed);
        self.rewatch_everything()?;
        self.reporting = true;
        self.observe(Observation::CaughtUp)
    }

    /// Watches every folder of the tree afresh: folders removed and made again during lost
    /// events have new identities, and old watches of removed ones are dropped.
    fn rewatch_everything(&mut self) -> Result<(), Stopped> {
        let previously = std::mem::take(&mut self.watched);
        for root in self.roots() {
            self.add_tree(&root, false)?;
        }
        let gone = previously
            .difference(&self.watched)
            .map(|path| PathOp::unwatch(path.clone()))
            .collect();
        // Watches of removed folders are mostly gone already; what is left is dropped quietly.
        self.apply(gone);
        Ok(())
    }

    fn handle_event(&mut self, event: notify::Result<Event>) -> Result<(), Stopped> {
        match event {
            Ok(event) => {
                for (path, kind) in classify(&event) {
                    self.handle(&path, kind)?;
                }
            }
            Err(error) => tracing::warn!("file watcher: {error}"),
        }
        Ok(())
    }

    /// Handles one changed path.
    fn handle(&mut self, path: &Path, kind: ChangeKind) -> Result<(), Stopped> {
        let Some(tree) = self.tree_of(path) else {
            return Ok(()); // beside a root, seen by the watch on its parent
        };
        if path.file_name().is_some_and(|name| name == ".gitignore") {
            if let Some(folder) = path.parent().map(Path::to_path_buf) {
                self.trees[tree].rules.load_gitignore(&folder);
                // Folders the old rules ignored may be in play now: watch them, and report
                // their files, which pages have never been told about.
                return self.add_tree(&folder, true);
            }
            return Ok(());
        }
        let is_dir = kind != ChangeKind::Removed
            && fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir());
        // A removed path may have been a folder (it is gone, so nobody can tell): a rule for
        // folders only, such as `dist/`, must still keep its removal quiet.
        let rules = &self.trees[tree].rules;
        let ignored = rules.is_ignored(path, is_dir)
            || (kind == ChangeKind::Removed && rules.is_ignored(path, true));
        if ignored {
            return Ok(());
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
            return Ok(());
        }
        self.report(path, kind)
    }

    /// Watches `folder` and every non-ignored folder below it, level by level: each level's new
    /// folders are watched in one call to notify (one round trip to its thread, not one per
    /// folder), and only then listed, so a file made in one after the listing still has an
    /// event. With `report`, each file found in a folder that had no watch before is sent as
    /// created. Symlinked folders are not followed, so link loops cannot trap it.
    fn add_tree(&mut self, folder: &Path, report: bool) -> Result<(), Stopped> {
        let mut level = vec![folder.to_path_buf()];
        while !level.is_empty() {
            let newly_watched = self.watch_folders(&level);
            let mut next_level = Vec::new();
            for folder in level {
                // Only files in folders that had no watch yet are news; the others were seen.
                let is_new = newly_watched.contains(&folder);
                if !is_new && !self.watched.contains(&folder) {
                    continue; // could not be watched
                }
                let Ok(entries) = fs::read_dir(&folder) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                    let wanted = is_dir || (report && is_new);
                    if !wanted {
                        continue; // a file nobody needs to hear about
                    }
                    let path = entry.path();
                    if self.is_ignored(&path, is_dir) {
                        continue;
                    }
                    if is_dir {
                        next_level.push(path);
                    } else {
                        self.report(&path, ChangeKind::Created)?;
                    }
                }
            }
            level = next_level;
        }
        Ok(())
    }

    /// Watches those of `folders` that have no watch yet and reads their `.gitignore` (which
    /// decides what is listed below them); returns the ones newly watched.
    fn watch_folders(&mut self, folders: &[PathBuf]) -> HashSet<PathBuf> {
        let mut newly_watched: HashSet<PathBuf> = folders
            .iter()
            .filter(|folder| !self.watched.contains(*folder))
            .cloned()
            .collect();
        let ops = newly_watched
            .iter()
            .map(|folder| PathOp::watch_non_recursive(folder.clone()))
            .collect();
        for (folder, error) in self.apply(ops) {
            newly_watched.remove(&folder);
            self.watch_failed(&folder, error);
        }
        for folder in &newly_watched {
            self.mark_watched(folder);
        }
        newly_watched
    }

    fn mark_watched(&mut self, folder: &Path) {
        if let Some(tree) = self.tree_of(folder) {
            self.trees[tree].rules.load_gitignore(folder);
        }
        self.watched.insert(folder.to_path_buf());
    }

    fn roots(&self) -> Vec<PathBuf> {
        self.trees.iter().map(|tree| tree.root.clone()).collect()
    }

    /// The tree `path` belongs to: the one with the deepest root above it (a `--watch` folder
    /// may sit inside the served one).
    fn tree_of(&self, path: &Path) -> Option<usize> {
        self.trees
            .iter()
            .enumerate()
            .filter(|(_, tree)| path.starts_with(&tree.root))
            .max_by_key(|(_, tree)| tree.root.as_os_str().len())
            .map(|(index, _)| index)
    }

    fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        self.tree_of(path)
            .is_none_or(|tree| self.trees[tree].rules.is_ignored(path, is_dir))
    }

    /// Applies watch and unwatch operations in one call to notify; returns the ones that failed.
    /// notify stops a batch at its first failure, so the rest is applied again without it.
    fn apply(&mut self, mut ops: Vec<PathOp>) -> Vec<(PathBuf, notify::Error)> {
        let mut failed = Vec::new();
        while !ops.is_empty() {
            let Err(failure) = self.notify.update_paths(ops) else {
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

    fn watch_failed(&mut self, folder: &Path, source: notify::Error) {
        match watch_error(folder, source) {
            // Removed between its listing and its watch: nothing to watch.
            WatchError::Other { source, .. }
                if matches!(source.kind, notify::ErrorKind::PathNotFound) => {}
            error @ WatchError::TooManyFolders { .. } => {
                if !std::mem::replace(&mut self.limit_reported, true) {
                    tracing::warn!("{error}; changes in it and in further folders are not seen");
                }
            }
            error => tracing::warn!("{error}"),
        }
    }

    /// A watched folder was removed or renamed away: drop its watches and its subfolders'.
    fn forget_tree(&mut self, folder: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|watched| watched.starts_with(folder))
            .cloned()
            .collect();
        for path in &gone {
            self.watched.remove(path);
        }
        // The kernel has mostly dropped these watches already; what is left goes quietly.
        self.apply(gone.into_iter().map(PathOp::unwatch).collect());
    }

    fn report(&self, path: &Path, kind: ChangeKind) -> Result<(), Stopped> {
        if !self.reporting {
            return Ok(());
        }
        let observation = match self.url_path(path) {
            Some(url_path) => Observation::Change(Change { url_path, kind }),
            None => Observation::SiteWide,
        };
        self.observe(observation)
    }

    /// The URL path of a file; `None` for a file in a tree with no URLs.
    fn url_path(&self, path: &Path) -> Option<String> {
        let tree = &self.trees[self.tree_of(path)?];
        let prefix = tree.url_prefix.as_ref()?;
        let relative = path.strip_prefix(&tree.root).unwrap_or(path);
        let segments: Vec<String> = prefix
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .chain(
                relative
                    .components()
                    .map(|component| component.as_os_str().to_string_lossy().into_owned()),
            )
            .collect();
        Some(RequestPath::from_segments(segments, false).to_url_path())
    }

    fn observe(&self, observation: Observation) -> Result<(), Stopped> {
        self.observations
            .blocking_send(observation)
            .map_err(|_| Stopped)
    }
}

/// The paths an event is about, each with what happened to it. Renames are a removal of the old
/// name and a creation of the new one; opens and reads are not changes (and are not asked for).
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
        // A file written and closed: the end of a save.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            with_kind(&event.paths, ChangeKind::Modified)
        }
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
