//! Watching the served folder (and any other folder the user names) for changes: folder by
//! folder (so ignored folders such as `node_modules` cost nothing), picking up new folders as
//! they appear, and turning events into [`Change`]s by URL path.
//!
//! Each folder is watched natively or polled ([`backends`](super::backends)): polled when the
//! user asks (`--poll`), when it sits on a filesystem whose changes raise no native events
//! ([`filesystems`](crate::filesystems)), or when native watching is unavailable or full.
//!
//! Events arrive on notify's threads, which must never block: they only hand the event to a
//! bounded queue ([`backlog`](super::backlog)). A dedicated thread does the rest (it touches
//! the file system: stat, read_dir, adding watches) and passes what it saw to the batcher.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::Event;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use tokio::sync::mpsc;

use crate::filesystems;
use crate::protocol::{Change, ChangeKind};
use crate::reload::backends::{Backend, Backends, inotify_setting};
use crate::reload::backlog::{BacklogReceiver, BacklogSender, Refused, backlog};
use crate::reload::batcher::{BURST_OVER_AFTER, MAX_BURST, Observation};
use crate::reload::ignore_rules::IgnoreRules;
use crate::request_path::RequestPath;

/// Events waiting for the watch thread. A burst larger than this (a checkout of thousands of
/// files) is not lost: the overflow is noted and becomes one "everything changed".
pub const DEFAULT_BACKLOG: usize = 8192;

/// How often polled folders are looked at, unless `--poll=MS` says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Which folders are polled instead of watched natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    /// Those on filesystems whose changes raise no native events (and those native watching
    /// cannot take).
    Auto,
    /// All of them (`--poll`).
    Always,
    /// None, even on such filesystems (`--no-poll`), unless native watching is unavailable.
    Never,
}

/// How to watch: the backlog of events and how polling is used.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub backlog: usize,
    pub polling: Polling,
    pub poll_interval: Duration,
    /// The config file (canonical): a save to it is announced, since only a restart applies it.
    pub settings_file: Option<PathBuf>,
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {0}: see the message above")]
    Root(String),
    #[error("cannot start the file watcher thread: {0}")]
    Thread(std::io::Error),
}

enum Input {
    Event(notify::Result<Event>),
    /// Files were served for the first time: see [`Notices::first_served`].
    FirstServed,
    /// A file was served in a version its events never told of.
    EventsLost(PathBuf),
    Stop,
}

/// What the server half tells the watch thread about files it serves. Never blocks: a notice
/// that does not fit in the backlog is dropped (the next request for the file tells again).
#[derive(Clone)]
pub struct Notices {
    input: BacklogSender<Input>,
    first_served: FirstServed,
}

/// Files served for the first time, not yet looked at by the watch thread. They are handed over
/// in batches: waking the thread for each of them would cost a crawl through a large site two
/// thread switches per page.
type FirstServed = Arc<Mutex<Vec<PathBuf>>>;

/// How long the watch thread gathers first-served files before looking at them.
const FIRST_SERVED_BATCH: Duration = Duration::from_millis(20);

impl Notices {
    /// A file was served for the first time: if `.gitignore` rules kept its folder unwatched,
    /// pages load from it after all, so it is watched from now on (within a few milliseconds).
    pub fn first_served(&self, path: &Path) {
        let Ok(mut pending) = self.first_served.lock() else {
            return;
        };
        pending.push(path.to_path_buf());
        if pending.len() == 1 {
            let _ = self.input.try_send(Input::FirstServed);
        }
    }

    /// A file was served in a version no event told of: events are lost where it lives. Its
    /// change is announced and its part of the tree polled from now on.
    pub fn events_lost(&self, path: &Path) {
        let _ = self.input.try_send(Input::EventsLost(path.to_path_buf()));
    }
}

/// Hands notify's events to the watch thread without ever blocking; an event that does not
/// fit is lost, and the loss is noted.
#[derive(Clone)]
struct Forward {
    input: BacklogSender<Input>,
    overflowed: Arc<AtomicBool>,
}

impl notify::EventHandler for Forward {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        match self.input.try_send(Input::Event(event)) {
            Ok(()) | Err(Refused::Disconnected) => {}
            Err(Refused::Full) => self.overflowed.store(true, Ordering::Relaxed),
        }
    }
}

/// The running watcher. Dropping it stops the watch thread.
pub struct Watcher {
    input: BacklogSender<Input>,
    first_served: FirstServed,
    /// How many folders were watched natively and by polling once the first walk was done.
    pub at_start: (usize, usize),
    /// See [`Watcher::polling_lag`].
    polling_lag: PollingLag,
}

/// How much later than it happens a change may be seen: nothing while every folder is watched
/// natively, a polling interval once any is polled (from the start, or since events were
/// found lost there).
#[derive(Clone)]
pub struct PollingLag {
    polled: Arc<AtomicBool>,
    interval: Duration,
}

impl PollingLag {
    pub fn now(&self) -> Duration {
        if self.polled.load(Ordering::Relaxed) {
            self.interval
        } else {
            Duration::ZERO
        }
    }
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
    /// Watches each tree, then keeps sending what it observes to `observations` until dropped.
    /// Returns once every folder is watched, so every change after it is seen. Blocks: call it
    /// from a blocking context.
    pub fn start(
        trees: Vec<Tree>,
        options: WatchOptions,
        observations: mpsc::Sender<Observation>,
    ) -> Result<Watcher, WatchError> {
        let (input, events) = backlog(options.backlog);
        let overflowed = Arc::new(AtomicBool::new(false));
        let forward = Forward {
            input: input.clone(),
            overflowed: overflowed.clone(),
        };
        let native = options.polling != Polling::Always;
        let backends = Backends::new(forward, options.poll_interval, native);
        let polled = polled_subtrees(&trees, &options);
        let first_served = FirstServed::default();
        let polls_some = Arc::new(AtomicBool::new(false));
        let mut thread = WatchThread {
            first_served: first_served.clone(),
            polls_some: polls_some.clone(),
            settings_file: options.settings_file,
            trees,
            backends,
            polled,
            watched: HashMap::new(),
            observations,
            overflowed,
            reporting: true,
        };
        for root in thread.roots() {
            // A root must be watched, or nothing below it would ever reload. (A --watch folder
            // inside the served one is watched already, by the walk of that tree.)
            thread.watch_folders(std::slice::from_ref(&root));
            if !thread.watched.contains_key(&root) {
                return Err(WatchError::Root(root.display().to_string()));
            }
            // Without reporting nothing is sent, so nothing can stop it.
            let _ = thread.add_tree(&root, false);
            // A root can be deleted and made again (`rm -rf dist` in a clean build): only a
            // watch on the folder above sees it come back. Other events there are outside every
            // tree and ignored.
            if let Some(parent) = root.parent() {
                thread.backends.watch_quietly(parent);
            }
        }
        // A config file outside every tree (`--config ../dev.toml`) is seen through its folder.
        if let Some(folder) = thread.settings_file.as_deref().and_then(Path::parent)
            && !thread.roots().iter().any(|root| folder.starts_with(root))
        {
            thread.backends.watch_quietly(folder);
        }
        let at_start = thread.counts();
        std::thread::Builder::new()
            .name("liveserve-watch".into())
            .spawn(move || thread.run(events))
            .map_err(WatchError::Thread)?;
        Ok(Watcher {
            input,
            first_served,
            at_start,
            polling_lag: PollingLag {
                polled: polls_some,
                interval: options.poll_interval,
            },
        })
    }
}

/// What `-v` says of the watching at start: how many folders each way, and what share of the
/// user's native watch limit they take.
pub fn describe_counts((native, polled): (usize, usize)) -> String {
    let folders = if native == 1 { "folder" } else { "folders" };
    let mut text = format!("{native} {folders} natively");
    if let Ok(limit) = inotify_setting("max_user_watches").parse::<f64>()
        && native > 0
    {
        let share = native as f64 / limit * 100.0;
        text += &format!(" ({share:.1}% of fs.inotify.max_user_watches = {limit})");
    }
    if polled > 0 {
        text += &format!(", {polled} by polling");
    }
    text
}

/// The subtrees to poll from the start, each said once on stderr when found by looking.
fn polled_subtrees(trees: &[Tree], options: &WatchOptions) -> Vec<PathBuf> {
    match options.polling {
        Polling::Always => trees.iter().map(|tree| tree.root.clone()).collect(),
        Polling::Never => Vec::new(),
        Polling::Auto => {
            let mounts = filesystems::mounts();
            trees
                .iter()
                .flat_map(|tree| filesystems::polled_subtrees(&tree.root, &mounts))
                .map(|found| {
                    tracing::warn!(
                        "{} is on {} ({}), where changes may raise no events here: polling it \
                         every {} ms (--no-poll watches it natively anyway)",
                        found.subtree.display(),
                        found.fstype,
                        found.kind,
                        options.poll_interval.as_millis()
                    );
                    found.subtree
                })
                .collect()
        }
    }
}

impl Watcher {
    /// How much later than it happens a change in these trees may be seen.
    pub fn polling_lag(&self) -> PollingLag {
        self.polling_lag.clone()
    }

    pub fn notices(&self) -> Notices {
        Notices {
            input: self.input.clone(),
            first_served: self.first_served.clone(),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.input.send_past_bound(Input::Stop);
    }
}

/// Why the watch thread stops: nobody listens any more, or the watcher was dropped.
struct Stopped;

struct WatchThread {
    /// Shared with [`Notices`].
    first_served: FirstServed,
    /// Set once any folder is polled; shared with [`Watcher::polling_lag`].
    polls_some: Arc<AtomicBool>,
    /// See [`WatchOptions::settings_file`].
    settings_file: Option<PathBuf>,
    trees: Vec<Tree>,
    backends: Backends<Forward>,
    /// Subtrees whose folders are polled.
    polled: Vec<PathBuf>,
    /// Every watched folder, and how.
    watched: HashMap<PathBuf, Backend>,
    observations: mpsc::Sender<Observation>,
    overflowed: Arc<AtomicBool>,
    /// Off while catching up after lost events: "everything changed" covers what is seen then.
    reporting: bool,
}

impl WatchThread {
    fn run(mut self, events: BacklogReceiver<Input>) {
        let _ = self.follow(&events);
    }

    fn follow(&mut self, events: &BacklogReceiver<Input>) -> Result<(), Stopped> {
        loop {
            match events.recv() {
                Ok(Input::FirstServed) => self.watch_served_folders(events)?,
                Ok(input) => self.handle_input(input, events)?,
                Err(_) => return Err(Stopped),
            }
        }
    }

    fn handle_input(
        &mut self,
        input: Input,
        events: &BacklogReceiver<Input>,
    ) -> Result<(), Stopped> {
        // Files served before this input was sent are looked at before it: a page that loaded
        // a file from a gitignored folder hears of that file's next change.
        self.look_at_first_served()?;
        match input {
            Input::Event(event) if self.events_lost(&event) => self.catch_up(events),
            Input::Event(event) => self.handle_event(event),
            Input::EventsLost(path) => self.poll_where_events_are_lost(&path),
            // Looked at by the caller, which knows whether a batch is being gathered.
            Input::FirstServed => Ok(()),
            Input::Stop => Err(Stopped),
        }
    }

    /// Looks at the files served for the first time, once a batch of them has gathered
    /// (handling file events meanwhile).
    fn watch_served_folders(&mut self, events: &BacklogReceiver<Input>) -> Result<(), Stopped> {
        let due = Instant::now() + FIRST_SERVED_BATCH;
        loop {
            match events.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(input) => self.handle_input(input, events)?,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Err(Stopped),
            }
        }
        self.look_at_first_served()
    }

    /// Takes the files served for the first time so far (the next one wakes the thread again).
    fn look_at_first_served(&mut self) -> Result<(), Stopped> {
        let served = std::mem::take(
            &mut *self
                .first_served
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        for path in served {
            self.watch_served_folder(&path)?;
        }
        Ok(())
    }

    /// A file was served from a folder that `.gitignore` rules kept unwatched (`dist/`, most
    /// often): pages load from it, so those rules stop applying to it.
    fn watch_served_folder(&mut self, path: &Path) -> Result<(), Stopped> {
        let Some(tree) = self.tree_of(path) else {
            return Ok(());
        };
        let Some(folder) = self.trees[tree].rules.unignore_gitignored(path) else {
            return Ok(());
        };
        let shown = folder
            .strip_prefix(&self.trees[tree].root)
            .unwrap_or(&folder);
        tracing::warn!(
            "watching {}/: pages load files from it, though .gitignore lists it",
            shown.display()
        );
        self.add_tree(&folder, false)
    }

    /// A file changed without an event: announce it, and poll the part of the tree it lives in
    /// (its filesystem, as far as it lies inside the tree).
    fn poll_where_events_are_lost(&mut self, path: &Path) -> Result<(), Stopped> {
        let Some(tree) = self.tree_of(path) else {
            return Ok(());
        };
        if !self.is_polled(path) {
            let root = self.trees[tree].root.clone();
            let subtree = filesystems::mounts()
                .into_iter()
                .map(|mount| mount.point)
                .filter(|point| path.starts_with(point) && point.starts_with(&root))
                .max_by_key(|point| point.as_os_str().len())
                .unwrap_or(root);
            tracing::warn!(
                "{} changed without an event: events are lost under {}, so it is polled from now on (--poll to poll from the start)",
                path.display(),
                subtree.display()
            );
            self.switch_to_polling(&subtree);
        }
        self.report(path, ChangeKind::Modified, true)
    }

    /// Polls every folder under `subtree` that is watched natively.
    fn switch_to_polling(&mut self, subtree: &Path) {
        self.polled.push(subtree.to_path_buf());
        let native: Vec<(PathBuf, Backend)> = self
            .watched
            .iter()
            .filter(|(folder, backend)| folder.starts_with(subtree) && **backend == Backend::Native)
            .map(|(folder, backend)| (folder.clone(), *backend))
            .collect();
        let folders: Vec<(PathBuf, Backend)> = native
            .iter()
            .map(|(folder, _)| (folder.clone(), Backend::Poll))
            .collect();
        self.backends.unwatch(native);
        for (folder, backend) in self.backends.watch(folders) {
            self.note_watched(folder, backend);
        }
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
    fn catch_up(&mut self, events: &BacklogReceiver<Input>) -> Result<(), Stopped> {
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
                Ok(Input::FirstServed) => self.look_at_first_served()?,
                Ok(Input::EventsLost(path)) => self.poll_where_events_are_lost(&path)?,
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return Err(Stopped),
            }
            if Instant::now() >= give_up_at {
                break;
            }
        }
        self.overflowed.store(false, Ordering::Relaxed);
        self.rewatch_everything()?;
        self.look_at_first_served()?;
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
            .into_iter()
            .filter(|(path, _)| !self.watched.contains_key(path))
            .collect();
        // Watches of removed folders are mostly gone already; what is left is dropped quietly.
        self.backends.unwatch(gone);
        Ok(())
    }

    fn handle_event(&mut self, event: notify::Result<Event>) -> Result<(), Stopped> {
        match event {
            Ok(event) => {
                for seen in classify(&event) {
                    self.handle(&seen)?;
                }
            }
            Err(error) => tracing::warn!("file watcher: {error}"),
        }
        Ok(())
    }

    /// Handles one changed path.
    fn handle(&mut self, seen: &Seen) -> Result<(), Stopped> {
        let (path, kind) = (seen.path.as_path(), seen.kind);
        if self.settings_file.as_deref() == Some(path) {
            if seen.complete && kind != ChangeKind::Removed {
                tracing::warn!(
                    "{} changed; restart liveserve to apply it",
                    path.file_name().unwrap_or_default().to_string_lossy()
                );
            }
            return Ok(());
        }
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
        if kind == ChangeKind::Removed && self.watched.contains_key(path) {
            self.forget_tree(path);
            let is_root = self.trees[tree].root == path;
            self.observe(if is_root {
                Observation::RootRemoved
            } else {
                Observation::FolderRemoved
            })?;
        }
        if is_dir {
            if !self.watched.contains_key(path) {
                // A new folder: watch it, then report what was written in it before the watch
                // was in place (`mkdir -p a/b/c && touch a/b/c/x` arrives as one event for `a`).
                self.add_tree(path, true)?;
                if self.trees[tree].root == path {
                    self.observe(Observation::RootBack)?;
                }
            }
            return Ok(());
        }
        self.report(path, kind, seen.complete)
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
                if !is_new && !self.watched.contains_key(&folder) {
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
                        // Found by a walk: it may still be being written.
                        self.report(&path, ChangeKind::Created, false)?;
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
        let wanted = folders
            .iter()
            .filter(|folder| !self.watched.contains_key(*folder))
            .map(|folder| (folder.clone(), self.backends.choose(self.is_polled(folder))))
            .collect();
        let mut newly_watched = HashSet::new();
        let wanted: Vec<(PathBuf, Backend)> = wanted;
        for (folder, backend) in self.backends.watch(wanted) {
            if let Some(tree) = self.tree_of(&folder) {
                self.trees[tree].rules.load_gitignore(&folder);
            }
            self.note_watched(folder.clone(), backend);
            newly_watched.insert(folder);
        }
        newly_watched
    }

    fn note_watched(&mut self, folder: PathBuf, backend: Backend) {
        if backend == Backend::Poll {
            self.polls_some.store(true, Ordering::Relaxed);
        }
        self.watched.insert(folder, backend);
    }

    fn is_polled(&self, folder: &Path) -> bool {
        self.polled
            .iter()
            .any(|subtree| folder.starts_with(subtree))
    }

    /// How many folders are watched natively, and how many polled.
    fn counts(&self) -> (usize, usize) {
        let native = self
            .watched
            .values()
            .filter(|backend| **backend == Backend::Native)
            .count();
        (native, self.watched.len() - native)
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

    /// A watched folder was removed or renamed away: drop its watches and its subfolders'.
    fn forget_tree(&mut self, folder: &Path) {
        let gone: Vec<(PathBuf, Backend)> = self
            .watched
            .iter()
            .filter(|(watched, _)| watched.starts_with(folder))
            .map(|(path, backend)| (path.clone(), *backend))
            .collect();
        for (path, _) in &gone {
            self.watched.remove(path);
        }
        // The kernel has mostly dropped these watches already; what is left goes quietly.
        self.backends.unwatch(gone);
    }

    fn report(&self, path: &Path, kind: ChangeKind, complete: bool) -> Result<(), Stopped> {
        if !self.reporting {
            return Ok(());
        }
        let observation = match self.url_path(path) {
            Some(url_path) => Observation::Change {
                change: Change {
                    url_path,
                    kind,
                    file: path.to_path_buf(),
                },
                complete,
            },
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

/// What an event says happened to one path.
struct Seen {
    path: PathBuf,
    kind: ChangeKind,
    /// The event ends a write: closed after writing, renamed into place, removed.
    complete: bool,
}

/// The paths an event is about, each with what happened to it. Renames are a removal of the old
/// name and a creation of the new one; opens and reads are not changes (and are not asked for).
fn classify(event: &Event) -> Vec<Seen> {
    let seen = |kind: ChangeKind, complete: bool| {
        move |path: &PathBuf| Seen {
            path: path.clone(),
            kind,
            complete,
        }
    };
    // For events that do not say what happened, the file system does: gone, or there.
    let now = |present: ChangeKind| {
        move |path: &PathBuf| {
            let gone = fs::symlink_metadata(path).is_err();
            Seen {
                path: path.clone(),
                kind: if gone { ChangeKind::Removed } else { present },
                complete: gone,
            }
        }
    };
    let all = |make: &dyn Fn(&PathBuf) -> Seen| event.paths.iter().map(make).collect();
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            all(&seen(ChangeKind::Modified, true))
        }
        EventKind::Access(_) => Vec::new(),
        EventKind::Create(_) => all(&seen(ChangeKind::Created, false)),
        EventKind::Remove(_) => all(&seen(ChangeKind::Removed, true)),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            all(&seen(ChangeKind::Removed, true))
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            all(&seen(ChangeKind::Created, true))
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = event.paths.iter();
            let from = paths.next().map(seen(ChangeKind::Removed, true));
            let to = paths.next().map(seen(ChangeKind::Created, true));
            from.into_iter().chain(to).collect()
        }
        EventKind::Modify(ModifyKind::Name(_)) => all(&now(ChangeKind::Created)),
        // `touch`, `chmod`: nothing more is coming.
        EventKind::Modify(ModifyKind::Metadata(_)) => all(&seen(ChangeKind::Modified, true)),
        EventKind::Modify(_) => all(&seen(ChangeKind::Modified, false)),
        EventKind::Any | EventKind::Other => all(&now(ChangeKind::Modified)),
    }
}
