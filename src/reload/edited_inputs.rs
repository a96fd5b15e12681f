//! Served folders inside the sources of an `--exec` build, which the build may read as well as
//! write (Tailwind scans the pages it styles: `liveserve dist --watch . --exec …`). What the
//! build writes there is simply published after its run; an edit of the user's there runs the
//! build, so that it is never left unbuilt.
//!
//! The two are told apart by when a file last changed: during a run (the run's, even when its
//! event comes late, as from a polled folder), or after it exited (the user's). On Unix that is
//! the status-change time, which a copy that keeps the modification time (`cp -a`, `rsync -a`,
//! a site generator copying static files) cannot set back. While a run is under way times say
//! nothing, so what was learned says instead: a file the user edited before is theirs again; a
//! file a run wrote before is the build's; a new file of a kind the user edits (`about.html`
//! when they edited `index.html`) is taken for theirs, and for the build's if it changes again
//! in the run it caused (a build writing `bundle.js` beside the user's `main.js`). An edit taken
//! for the user's during a run runs the build once more after it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::exec::RUNS_IN_A_LOOP;
use super::hub::RunTimes;
use super::{ReloadHub, files_in};
use crate::protocol::Changed;

/// How many files [`Learned`] keeps in each set; past that it starts again (a forgotten file is
/// learned anew).
const LEARNED_FILES: usize = 4096;

#[derive(Clone)]
pub(super) struct EditedInputs {
    folders: Arc<[PathBuf]>,
    run_due: mpsc::Sender<()>,
    learned: Arc<Mutex<Learned>>,
}

impl EditedInputs {
    pub(super) fn new(folders: Vec<PathBuf>, run_due: mpsc::Sender<()>) -> EditedInputs {
        EditedInputs {
            folders: folders.into(),
            run_due,
            learned: Arc::default(),
        }
    }

    /// Called for each batch of the served folders before it is published. An edit when no
    /// run is under way starts one, and the batch is held for it, so the pages get one update
    /// for the edit and what the run made of it; an edit during a run queues one more.
    /// "Everything changed" (events were lost) says nothing of who changed what, and runs
    /// nothing.
    pub(super) async fn start_a_run_if_edited(&self, changed: &Changed, hub: &ReloadHub) {
        let touched: Vec<PathBuf> = files_in(changed, &self.folders)
            .map(Path::to_path_buf)
            .collect();
        if touched.is_empty() {
            return;
        }
        let state = hub.build_state();
        // Once the run has exited, its times tell its writes from the user's.
        let timed = !state.building || state.settling;
        let by_the_user = if timed {
            changed_after_the_run(touched.clone(), state.last_run).await
        } else {
            Vec::new()
        };
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        let mut edited = !by_the_user.is_empty();
        for file in by_the_user {
            learned.edited(file);
        }
        if state.building {
            let mut rerun = false;
            for file in &touched {
                rerun |= learned.changed_during_a_run(file, state.run);
            }
            if rerun && !edited && !learned.rerun_for_earlier_edits(state.run) {
                return;
            }
            edited |= rerun;
        } else {
            learned.reruns = 0;
            // Written during the last run, seen late: a file the user edits is theirs (an edit
            // made during that run), anything else the run's.
            for file in touched {
                if learned.by_the_user.contains(&file) {
                    edited = true;
                } else {
                    insert_bounded(&mut learned.by_runs, file);
                }
            }
        }
        if !edited {
            return;
        }
        drop(learned);
        hub.start_build_unless_under_way();
        // Under way already: one more run after it.
        let _ = self.run_due.try_send(());
    }
}

/// What the files in [`EditedInputs`] folders have shown of who writes them. Runs are known by
/// their number (the first is 1).
#[derive(Default)]
struct Learned {
    /// Files the user edited (their times said so).
    by_the_user: HashSet<PathBuf>,
    /// Files runs wrote.
    by_runs: HashSet<PathBuf>,
    /// New files taken for the user's edits during a run, for their kind, with that run's
    /// number: if one changes again in the run it caused (the next), it is the build's.
    guessed: HashMap<PathBuf, u64>,
    /// Runs in a row started only for files changed during the run before (no time said they
    /// were the user's), and the last of them: a file the build writes taken for the user's
    /// would run it for ever.
    reruns: u32,
    last_rerun: Option<u64>,
}

impl Learned {
    /// The user edited `file`.
    fn edited(&mut self, file: PathBuf) {
        self.by_runs.remove(&file);
        self.guessed.remove(&file);
        insert_bounded(&mut self.by_the_user, file);
        self.reruns = 0;
    }

    /// `file` changed while run number `run` was under way, and its time does not tell who
    /// wrote it: whether it is taken for the user's edit (the build runs once more). What the
    /// first run writes is all the build's.
    fn changed_during_a_run(&mut self, file: &Path, run: u64) -> bool {
        if self.by_the_user.contains(file) {
            return true;
        }
        if self.by_runs.contains(file) {
            return false;
        }
        if let Some(guessed_in) = self.guessed.remove(file) {
            if run == guessed_in + 1 {
                // Changed again in the run the guess caused: the build writes it.
                insert_bounded(&mut self.by_runs, file.to_path_buf());
                return false;
            }
            if run == guessed_in {
                // Saved again in the same run.
                self.guessed.insert(file.to_path_buf(), run);
            } else {
                // The run it caused left it alone: it is the user's.
                insert_bounded(&mut self.by_the_user, file.to_path_buf());
            }
            return true;
        }
        if run > 1 && self.of_an_edited_kind(file) {
            if self.guessed.len() >= LEARNED_FILES {
                self.guessed.clear();
            }
            self.guessed.insert(file.to_path_buf(), run);
            return true;
        }
        insert_bounded(&mut self.by_runs, file.to_path_buf());
        false
    }

    /// Whether the user has edited files with `file`'s extension.
    fn of_an_edited_kind(&self, file: &Path) -> bool {
        file.extension().is_some_and(|kind| {
            self.by_the_user
                .iter()
                .any(|edited| edited.extension() == Some(kind))
        })
    }

    /// Counts run number `run` as started only for files changed during the run before; past
    /// [`RUNS_IN_A_LOOP`] such runs in a row, one of those files is surely the build's own
    /// output: what was learned of the user's edits is forgotten, and no run starts. Says
    /// whether one may.
    fn rerun_for_earlier_edits(&mut self, run: u64) -> bool {
        if self.last_rerun == Some(run) {
            return true;
        }
        self.last_rerun = Some(run);
        self.reruns += 1;
        if self.reruns < RUNS_IN_A_LOOP {
            return true;
        }
        self.by_the_user.clear();
        self.guessed.clear();
        self.reruns = 0;
        false
    }
}

fn insert_bounded(set: &mut HashSet<PathBuf>, file: PathBuf) {
    if set.len() >= LEARNED_FILES {
        set.clear();
    }
    set.insert(file);
}

/// Those of `files` that changed after `run` exited (the user's); not those that are gone (a
/// build's `rm -rf`, seen late). Reads their times off the async threads.
async fn changed_after_the_run(files: Vec<PathBuf>, run: Option<RunTimes>) -> Vec<PathBuf> {
    tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .filter(|file| {
                let changed = std::fs::metadata(file).and_then(|metadata| changed_at(&metadata));
                changed.is_ok_and(|changed| run.is_none_or(|run| changed > run.exited))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// When a file last changed: its status-change time on Unix (set by every write, rename and
/// copy, and by nothing else), else its modification time.
fn changed_at(metadata: &std::fs::Metadata) -> std::io::Result<SystemTime> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let since_epoch = std::time::Duration::new(
            u64::try_from(metadata.ctime()).unwrap_or_default(),
            u32::try_from(metadata.ctime_nsec()).unwrap_or_default(),
        );
        Ok(SystemTime::UNIX_EPOCH + since_epoch)
    }
    #[cfg(not(unix))]
    metadata.modified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        PathBuf::from("/site/dist").join(name)
    }

    #[test]
    fn what_the_first_run_writes_is_the_builds() {
        let mut learned = Learned::default();
        // An edit seen before the first run started (the run at start-up is under way).
        learned.edited(path("index.html"));
        assert!(!learned.changed_during_a_run(&path("about.html"), 1));
        assert!(!learned.changed_during_a_run(&path("about.html"), 2));
    }

    #[test]
    fn a_file_edited_before_and_a_new_one_of_its_kind_are_the_users() {
        let mut learned = Learned::default();
        assert!(!learned.changed_during_a_run(&path("style.css"), 1));
        learned.edited(path("index.html"));
        assert!(learned.changed_during_a_run(&path("index.html"), 2));
        assert!(learned.changed_during_a_run(&path("about.html"), 2));
        // Saved again in the same run: still the user's.
        assert!(learned.changed_during_a_run(&path("about.html"), 2));
        // Another kind, or what a run wrote before, is the build's.
        assert!(!learned.changed_during_a_run(&path("app.js"), 2));
        assert!(!learned.changed_during_a_run(&path("style.css"), 2));
    }

    #[test]
    fn a_guess_that_changes_again_in_the_run_it_caused_is_the_builds() {
        let mut learned = Learned::default();
        learned.edited(path("main.js"));
        assert!(learned.changed_during_a_run(&path("bundle.js"), 2));
        assert!(!learned.changed_during_a_run(&path("bundle.js"), 3));
        assert!(!learned.changed_during_a_run(&path("bundle.js"), 4));
        // Edited by the user later, it is theirs after all.
        learned.edited(path("bundle.js"));
        assert!(learned.changed_during_a_run(&path("bundle.js"), 5));
    }

    #[test]
    fn a_guess_the_run_it_caused_left_alone_is_the_users() {
        let mut learned = Learned::default();
        learned.edited(path("index.html"));
        assert!(learned.changed_during_a_run(&path("about.html"), 2));
        // Run 3 did not write it; saved again during run 7.
        assert!(learned.changed_during_a_run(&path("about.html"), 7));
        assert!(learned.by_the_user.contains(&path("about.html")));
    }

    #[test]
    fn reruns_for_earlier_edits_are_counted_once_a_run_and_stop_after_a_few() {
        let mut learned = Learned::default();
        learned.edited(path("out.html"));
        for run in 2..RUNS_IN_A_LOOP as u64 + 1 {
            assert!(learned.rerun_for_earlier_edits(run));
            assert!(learned.rerun_for_earlier_edits(run), "the same run again");
        }
        assert!(!learned.rerun_for_earlier_edits(RUNS_IN_A_LOOP as u64 + 1));
        assert!(!learned.changed_during_a_run(&path("out.html"), 9));
    }

    #[test]
    fn an_edit_between_runs_resets_the_count() {
        let mut learned = Learned::default();
        for run in 2..RUNS_IN_A_LOOP as u64 {
            assert!(learned.rerun_for_earlier_edits(run));
        }
        learned.edited(path("index.html"));
        for run in 10..10 + RUNS_IN_A_LOOP as u64 - 1 {
            assert!(learned.rerun_for_earlier_edits(run));
        }
    }
}
