//! The watching half: watcher → ignore rules → batcher → hub. Nothing here knows HTTP; the
//! server half subscribes to the hub.

mod backends;
mod backlog;
mod batcher;
mod connected_pages;
mod edited_inputs;
mod exec;
mod hub;
mod ignore_rules;
mod known_files;
mod watcher;

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

pub use batcher::DEFAULT_QUIET;
pub use connected_pages::PageStatus;
pub use hub::{HelloInfo, Published, ReloadHub};
pub use ignore_rules::{BadPattern, IgnoreRules};
pub use watcher::{DEFAULT_BACKLOG, DEFAULT_POLL_INTERVAL, Polling};

use crate::protocol::{ChangeKind, Changed};
use crate::settings::Config;
use edited_inputs::EditedInputs;
use exec::{Exec, ExecSettings};
use known_files::{KnownFiles, Served, Version};
use watcher::{PollingLag, Tree, WatchOptions, Watcher};

/// The running watcher → batcher → hub chain. Dropping it stops the watcher, which ends the
/// batcher.
pub struct Reloading {
    pub hub: Arc<ReloadHub>,
    /// `None` when the pages hear only what the embedding program tells them.
    watcher: Option<Watcher>,
    /// With `--exec`: the command's runner and the watcher of its sources, kept only to be
    /// dropped with the rest (which stops the command).
    _exec: Option<(Exec, Option<Watcher>)>,
}

impl Reloading {
    /// Watches `root` (canonical, served at `/`) and the `--watch` folders as `config` says.
    /// Returns once every folder is watched: a page served after that hears about every later
    /// change. `before_publish` is told of each batch before the pages are (so what the server
    /// keeps of those files is gone before a page asks for them again).
    pub async fn start(
        config: &Config,
        root: PathBuf,
        before_publish: impl Fn(&Changed) + Send + Sync + 'static,
    ) -> anyhow::Result<Reloading> {
        let tree = |root: PathBuf, url_prefix: Option<String>| -> anyhow::Result<Tree> {
            let rules = IgnoreRules::new(&root, config.access(), &config.ignore, config.gitignore)?;
            Ok(Tree {
                root,
                rules,
                url_prefix,
            })
        };
        for (pattern, reason) in ignore_rules::useless_patterns(&root, &config.ignore) {
            tracing::warn!("--ignore {pattern:?} can never match anything: {reason}");
        }
        let root_for_fingerprint = root.clone();
        let checked = config.validate()?;
        let mut trees = vec![tree(root, Some("/".to_owned()))?];
        for (mount, folder) in config.mounts.iter().zip(checked.mount_folders) {
            trees.push(tree(folder, Some(mount.prefix().to_owned()))?);
        }
        // With --exec, the --watch folders are the build's sources: a change there runs it. Else
        // they are what the pages are made from (a backend's templates): a change reloads.
        let mut sources = Vec::new();
        let mut inside_sources = Vec::new();
        let mut sources_served = Vec::new();
        for folder in checked.watch_folders {
            let mut watched = tree(folder, None)?;
            if config.exec.is_some() {
                let served = leave_out_served_folders(&mut watched, &trees, config.exec_restart);
                let served_itself = served.contains(&watched.root);
                inside_sources.extend(served);
                if !served_itself {
                    if trees
                        .iter()
                        .any(|tree| watched.root.starts_with(&tree.root))
                    {
                        sources_served.push(watched.root.clone());
                    }
                    sources.push(watched);
                }
            } else if !trees.iter().any(|tree| tree.root == watched.root) {
                trees.push(watched);
            }
            // (A --watch folder that is served already stays watched as served: its pages
            // still update in place, stylesheets still swap.)
        }
        // A run is due: for a change to the sources, or for an edit in a served folder that a
        // build reads (a backend restarted for a stylesheet edit would only reload every page).
        let (run_due_tx, run_due) = mpsc::channel(1);
        let edited_inputs = (!inside_sources.is_empty() && !config.exec_restart)
            .then(|| EditedInputs::new(inside_sources, run_due_tx.clone()));
        let options = WatchOptions {
            backlog: config.watch_backlog,
            polling: config.polling,
            poll_interval: config.poll_interval,
            settings_file: config.settings_file.clone(),
        };
        let (observations, watcher) = watch_trees(trees, options.clone()).await?;
        let known = Arc::new(KnownFiles::default());
        let served = ServedFiles {
            known: known.clone(),
            watcher: watcher.notices(),
        };
        let hello = HelloInfo {
            fingerprint: fingerprint(&root_for_fingerprint, config),
            morph: config.morph && !config.full_reload,
            swap: !config.full_reload,
            errors: config.browser_errors,
        };
        let (output_open_tx, output_open) = watch::channel(false);
        let (sources_open_tx, sources_open) = watch::channel(false);
        let served_sources = (!sources_served.is_empty()).then(|| ServedSources {
            folders: sources_served.into(),
            open: sources_open.clone(),
            lag: watcher.polling_lag(),
        });
        let hub = Arc::new(ReloadHub::new(
            config.full_reload,
            hello,
            Some(served),
            vec![output_open.clone(), sources_open.clone()],
        ));
        let timing = batcher::Timing {
            quiet: config.quiet_window,
            // A longer quiet window asks for patience; the maximum wait follows it.
            max_wait: batcher::MAX_WAIT.max(config.quiet_window * 4),
            // A quiet window the user chose is kept for every batch.
            early_close: config.quiet_window == DEFAULT_QUIET,
        };
        let publisher = hub.clone();
        let verbose = config.verbose;
        tokio::spawn(batcher::run(
            observations,
            timing,
            output_open_tx,
            move |changed| {
                before_publish(&changed);
                let publisher = publisher.clone();
                let known = known.clone();
                let edited_inputs = edited_inputs.clone();
                let served_sources = served_sources.clone();
                async move {
                    let Some(changed) = without_unchanged(changed, known).await else {
                        return;
                    };
                    if let Some(inputs) = &edited_inputs {
                        inputs.start_a_run_if_edited(&changed, &publisher).await;
                    }
                    if let Some(sources) = &served_sources {
                        sources.wait_for_their_run(&changed, &publisher).await;
                    }
                    let message = publisher.publish(&changed);
                    if verbose {
                        let what = match &changed {
                            Changed::Files(changes) => changes
                                .iter()
                                .map(|change| change.url_path.as_str())
                                .collect::<Vec<_>>()
                                .join(" "),
                            Changed::Everything => "everything".to_owned(),
                        };
                        tracing::info!("changed {what} → {}", message.to_json());
                    }
                }
            },
        ));
        let exec = match &config.exec {
            Some(command) => {
                let sources_watcher = if sources.is_empty() {
                    None
                } else {
                    let options = WatchOptions {
                        settings_file: None,
                        ..options
                    };
                    let (observations, watcher) = watch_trees(sources, options).await?;
                    let building = hub.clone();
                    tokio::spawn(batcher::run(
                        observations,
                        timing,
                        sources_open_tx,
                        move |_| {
                            // Held from now, not from when the run starts: whoever asks for the
                            // status in between learns a build is coming.
                            building.build_due();
                            // A run is already queued when the channel is full.
                            let _ = run_due_tx.try_send(());
                            std::future::ready(())
                        },
                    ));
                    Some(watcher)
                };
                let settings = ExecSettings {
                    command: command.clone(),
                    restart: config.exec_restart,
                    wait_for: config
                        .proxies
                        .iter()
                        .map(|route| route.authority().to_string())
                        .collect(),
                    settle: config.quiet_window.max(exec::MIN_SETTLE),
                    verbose: config.verbose,
                };
                let exec = Exec::start(
                    settings,
                    hub.clone(),
                    exec::Triggers {
                        run_due,
                        sources_open,
                    },
                    exec::Output {
                        open: output_open,
                        lag: watcher.polling_lag(),
                    },
                );
                Some((exec, sources_watcher))
            }
            None => None,
        };
        Ok(Reloading {
            hub,
            watcher: Some(watcher),
            _exec: exec,
        })
    }

    /// Live reload with no file watcher: the pages hear only what is published to the hub (the
    /// library's [`Reloader`](crate::Reloader)), for programs that know what they wrote.
    pub fn without_watching(config: &Config, root: &Path) -> Reloading {
        let hello = HelloInfo {
            fingerprint: fingerprint(root, config),
            morph: config.morph && !config.full_reload,
            swap: !config.full_reload,
            errors: config.browser_errors,
        };
        let hub = ReloadHub::new(config.full_reload, hello, None, Vec::new());
        Reloading {
            hub: Arc::new(hub),
            watcher: None,
            _exec: None,
        }
    }

    /// What is watched, in a few words, for `-v`.
    pub fn summary(&self) -> Option<String> {
        let watcher = self.watcher.as_ref()?;
        Some(watcher::describe_counts(watcher.at_start))
    }
}

/// A served folder inside the sources of `--exec` is where the build writes (`liveserve dist
/// --watch . --exec 'npm run build'`): watching it as a source would run the build again after
/// each run, for ever. It is left out of the sources, and said so; the user's own edits there
/// still run a build (see [`EditedInputs`]). A source folder that is itself served (`liveserve
/// . --watch . --exec 'sass style.scss style.css'`) is all such a folder: the caller watches it
/// only as served. Returns the served folders found. With `--exec-restart` (a backend, which
/// does not write its pages) a served source folder stays a source, with a warning.
fn leave_out_served_folders(source: &mut Tree, served: &[Tree], restart: bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for served in served {
        if served.root == source.root && restart {
            tracing::warn!(
                "--watch {} is also served: whatever the --exec command writes there restarts it",
                source.root.display()
            );
        } else if served.root == source.root {
            tracing::info!(
                "--watch {} is also served: an edit there runs the --exec command when no run is under way; what the command writes there does not",
                source.root.display()
            );
            found.push(served.root.clone());
        } else if served.root.starts_with(&source.root) {
            tracing::info!(
                "--watch {}: leaving out {} (served: the --exec command writes there)",
                source.root.display(),
                served.root.display()
            );
            source.rules.leave_out(&served.root);
            found.push(served.root.clone());
        }
    }
    found
}

/// Sources of `--exec` inside a served folder (`liveserve . --watch src --exec 'esbuild …'`):
/// both watchers see a save there, the sources' one to run the command, the served one to tell
/// the pages. Told at once, the pages would get two updates for one save (the source, then the
/// output); a page that loads the source itself would reload before the run, and a proxied
/// page would reload while its backend restarts. So a batch of the served folder that touches
/// the sources waits until the sources' batch has started the run, and is then held for it.
#[derive(Clone)]
struct ServedSources {
    folders: Arc<[PathBuf]>,
    /// The sources' batcher: open while their changes are on their way.
    open: watch::Receiver<bool>,
    /// The served folders' (when they are polled, so most likely are the sources inside
    /// them, on their own schedule: the sources' watcher may see a save an interval later).
    lag: PollingLag,
}

/// How long a batch of [`ServedSources`] waits for the sources' watcher to see the same save
/// (it never does for a file its rules ignore), plus a polling interval when polled.
const SOURCES_LAG: std::time::Duration = std::time::Duration::from_millis(100);

impl ServedSources {
    async fn wait_for_their_run(&self, changed: &Changed, hub: &ReloadHub) {
        let touched = files_in(changed, &self.folders).next().is_some();
        if !touched || hub.build_state().building {
            return;
        }
        let mut open = self.open.clone();
        let lag = SOURCES_LAG + self.lag.now();
        let seen = tokio::time::timeout(lag, open.wait_for(|open| *open))
            .await
            .is_ok_and(|opened| opened.is_ok());
        if seen {
            let told = open.wait_for(|open| !open);
            let _ = tokio::time::timeout(batcher::MAX_BURST, told).await;
        }
    }
}

/// The files of `changed` inside any of `folders`; none for "everything changed", which does
/// not say which.
fn files_in<'a>(changed: &'a Changed, folders: &'a [PathBuf]) -> impl Iterator<Item = &'a Path> {
    let changes = match changed {
        Changed::Files(changes) => &changes[..],
        Changed::Everything => &[],
    };
    changes
        .iter()
        .map(|change| change.file.as_path())
        .filter(|file| folders.iter().any(|folder| file.starts_with(folder)))
}

/// Starts watching `trees` (off the async threads: a large tree takes a while); returns what it
/// observes, and the watcher (dropping it stops watching).
async fn watch_trees(
    trees: Vec<Tree>,
    options: WatchOptions,
) -> anyhow::Result<(mpsc::Receiver<batcher::Observation>, Watcher)> {
    let (observations_tx, observations) = mpsc::channel(1024);
    let watcher =
        tokio::task::spawn_blocking(move || Watcher::start(trees, options, observations_tx))
            .await??;
    Ok((observations, watcher))
}

/// The batch without the files whose bytes are what pages were last shown (a save that changed
/// nothing); `None` when nothing is left. Reads the files, off the async threads.
async fn without_unchanged(changed: Changed, known: Arc<KnownFiles>) -> Option<Changed> {
    let Changed::Files(changes) = changed else {
        return Some(changed);
    };
    let changes = tokio::task::spawn_blocking(move || {
        changes
            .into_iter()
            .filter(|change| match change.kind {
                ChangeKind::Removed => {
                    known.forget(&change.file);
                    true
                }
                _ => !known.unchanged(&change.file),
            })
            .collect::<Vec<_>>()
    })
    .await
    .ok()?;
    (!changes.is_empty()).then_some(Changed::Files(changes))
}

/// What the server half tells the watching half about the files it serves: the first time a
/// file is served (its folder may need watching after all), and a file served in a version no
/// event told of (events are lost there).
#[derive(Clone)]
pub struct ServedFiles {
    known: Arc<KnownFiles>,
    watcher: watcher::Notices,
}

impl ServedFiles {
    /// Called for every file served, with its bytes when they were read whole. One lookup when
    /// the file is known in this version.
    pub fn served(&self, path: &Path, metadata: &Metadata, bytes: Option<&[u8]>) {
        match self.known.served(path, Version::of(metadata), bytes) {
            Served::Known => {}
            Served::First => self.watcher.first_served(path),
            Served::Stale => self.watcher.events_lost(path),
        }
    }
}

/// A short name for what this server serves (the root, the routes, the watched folders), the
/// same for every run with the same settings: a page that reconnects and finds another one is
/// looking at another project on the same port.
fn fingerprint(root: &Path, config: &Config) -> String {
    let mut served = root.display().to_string();
    for route in &config.proxies {
        served.push('\n');
        served.push_str(&route.to_string());
    }
    for mount in &config.mounts {
        served.push('\n');
        served.push_str(&mount.to_string());
    }
    for folder in &config.watch {
        served.push('\n');
        served.push_str(&folder.display().to_string());
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(served.as_bytes()))
}
