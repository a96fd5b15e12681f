//! The watching half: watcher → ignore rules → batcher → hub. Nothing here knows HTTP; the
//! server half subscribes to the hub.

mod batcher;
mod hub;
mod ignore_rules;
mod watcher;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use batcher::DEFAULT_QUIET;
pub use hub::ReloadHub;
pub use ignore_rules::{BadPattern, IgnoreRules};
pub use watcher::DEFAULT_BACKLOG;

use crate::protocol::Changed;
use crate::settings::Config;
use watcher::{Tree, Watcher};

/// The running watcher → batcher → hub chain. Dropping it stops the watcher, which ends the
/// batcher.
pub struct Reloading {
    pub hub: Arc<ReloadHub>,
    watcher: Watcher,
}

impl Reloading {
    /// Watches `root` (canonical, served at `/`) and the `--watch` folders as `config` says.
    /// Returns once every folder is watched: a page served after that hears about every later
    /// change.
    pub async fn start(config: &Config, root: PathBuf) -> anyhow::Result<Reloading> {
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
        let mut trees = vec![tree(root, Some("/".to_owned()))?];
        for folder in config.validate()?.watch_folders {
            trees.push(tree(folder, None)?);
        }
        let (observations_tx, observations) = mpsc::channel(1024);
        let backlog = config.watch_backlog;
        let watcher =
            tokio::task::spawn_blocking(move || Watcher::start(trees, backlog, observations_tx))
                .await??;
        let hub = Arc::new(ReloadHub::new(config.full_reload));
        let timing = batcher::Timing {
            quiet: config.quiet_window,
            // A longer quiet window asks for patience; the maximum wait follows it.
            max_wait: batcher::MAX_WAIT.max(config.quiet_window * 4),
        };
        let publisher = hub.clone();
        let verbose = config.verbose;
        tokio::spawn(batcher::run(observations, timing, move |changed| {
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
        }));
        Ok(Reloading { hub, watcher })
    }

    /// What is watched, in a few words: `20,200 folders`.
    pub fn summary(&self) -> String {
        format!("{} folders", self.watcher.folders_at_start)
    }
}
