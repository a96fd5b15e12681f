//! Coalescing file changes into batches: one save, or one build writing many files, is one batch.
//!
//! The first change opens a window; the window closes once no change has come for the quiet
//! period, or when it has been open for the maximum wait, so a stream of writes that never pauses
//! still reloads about once a second.
//!
//! Some batches close sooner, some later:
//! - A save is over when its file is written and closed, or renamed into place: a batch of one
//!   such file (or of stylesheets only, whose swap is cheap) closes after a short grace instead
//!   of the whole quiet period. Anything still being written keeps the window.
//! - A build that replaces its output (`rm -rf dist`, then the files again) is one update once
//!   the folder is back and quiet, never a page of the empty folder or one per file.
//! - A burst too large to follow file by file (a checkout of another branch, a full rebuild of a
//!   big site) is one reload of everything at its end: a batch that reaches [`LARGE_BURST`]
//!   files, or in which the watcher lost events, closes only once the burst is over.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::protocol::{Change, ChangeKind, Changed};

/// The default quiet period. Editors finish a save (temp file, rename, metadata) within a few
/// milliseconds, and a build writes its files back to back; 15 ms covers both with margin while
/// staying far below what a person notices between saving and seeing the page change.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(15);

/// The longest a batch stays open while changes keep coming.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// After a save is complete, how long the batch waits for what editors do right after (delete a
/// backup, set a time): they do it within microseconds; the margin is for a busy machine.
const COMPLETE_GRACE: Duration = Duration::from_millis(5);

/// The grace for stylesheets only: a message too early costs one more cheap swap, never a page
/// load, so it can be shorter.
const STYLES_GRACE: Duration = Duration::from_millis(1);

/// A single finished page save closes early only when the batch before it closed at least this
/// long ago: a change soon after another is likely the next file of a build, which must not be
/// split into several reloads.
const ISOLATED_AFTER: Duration = Duration::from_millis(250);

/// Batches with more files than this are builds, whatever their files say: they keep the window.
const MOST_FILES_CLOSING_EARLY: usize = 8;

/// A batch with this many files is a large burst: a person's save or an ordinary build writes far
/// fewer, and a message lists only the first hundred anyway.
const LARGE_BURST: usize = 1_000;

/// A large burst is over once nothing has changed for this long: tools writing thousands of files
/// pause between groups of them for longer than the quiet period.
pub const BURST_OVER_AFTER: Duration = Duration::from_millis(100);

/// A build that replaced a folder is done once nothing has changed in it for this long: bundlers
/// and doc generators pause tens of milliseconds between files.
const REBUILD_OVER_AFTER: Duration = Duration::from_millis(300);

/// A large burst or a rebuild that never pauses is still delivered after this long.
pub const MAX_BURST: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub quiet: Duration,
    pub max_wait: Duration,
    /// Close a batch of one completed save early. Off when the user chose the quiet period.
    pub early_close: bool,
}

/// What the watcher tells the batcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// One file changed; `complete` when the event ends a write (closed after writing, renamed
    /// into place, removed).
    Change { change: Change, complete: bool },
    /// A file with no URL of its own changed (in a `--watch` folder): every page may show it.
    SiteWide,
    /// A watched folder was removed: a build is replacing its output.
    FolderRemoved,
    /// A watched tree's root was removed; the batch waits for [`Observation::RootBack`].
    RootRemoved,
    /// The removed root is there again.
    RootBack,
    /// Events were lost (a burst larger than the queues hold): anything may have changed. The
    /// batch stays open until [`Observation::CaughtUp`].
    EventsLost,
    /// The watcher has caught up after lost events: every folder is watched again.
    CaughtUp,
}

/// Receives observations until the channel closes, calling `on_batch` once per non-empty batch
/// (and waiting for it: batches are delivered in order). `open` is true from a batch's first
/// observation until it has been delivered: whoever waits for changes to be told (an `--exec`
/// run's output) waits for it to be false.
pub async fn run<F, Done>(
    mut observations: mpsc::Receiver<Observation>,
    timing: Timing,
    open: watch::Sender<bool>,
    mut on_batch: F,
) where
    F: FnMut(Changed) -> Done,
    Done: Future<Output = ()>,
{
    let mut last_closed: Option<Instant> = None;
    while let Some(first) = observations.recv().await {
        open.send_replace(true);
        let opened = Instant::now();
        let mut batch = Batch {
            isolated: last_closed.is_none_or(|closed| opened - closed >= ISOLATED_AFTER),
            ..Batch::default()
        };
        batch.add(first);
        loop {
            let closes = batch.closes_at(Instant::now(), opened, timing);
            tokio::select! {
                observation = observations.recv() => match observation {
                    Some(observation) => batch.add(observation),
                    None => break,
                },
                () = sleep_until(closes) => break,
            }
        }
        last_closed = Some(Instant::now());
        if let Some(changed) = batch.finish() {
            on_batch(changed).await;
        }
        open.send_replace(false);
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Changes in the order first seen, one entry per path.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    /// Where each path's entry is, so adding a change does not search the batch.
    index: HashMap<String, usize>,
    /// Every page is affected: a large burst, lost events, or a file with no URL.
    everything: bool,
    /// A large burst or lost events: the batch closes only once the burst is over.
    burst: bool,
    /// A folder was removed: a build is replacing it.
    rebuilding: bool,
    /// A root is gone: nothing to show until it is back.
    root_missing: bool,
    /// Events were lost and the watcher has not caught up yet.
    catching_up: bool,
    /// The batch before closed long enough ago that this one is not the rest of a build.
    isolated: bool,
}

struct Entry {
    url_path: String,
    file: PathBuf,
    first: ChangeKind,
    last: ChangeKind,
    /// The last event for the file ended a write.
    complete: bool,
}

impl Entry {
    /// A file created and removed again inside the batch (an atomic save's temp file) never
    /// existed as far as a page is concerned.
    fn is_temporary(&self) -> bool {
        self.first == ChangeKind::Created && self.last == ChangeKind::Removed
    }

    /// The save of this file is over: it was written and closed, or renamed into place. A file
    /// created and written in this batch does not count (it may be an atomic save's temp file,
    /// about to be renamed into place), nor one removed or renamed away (the middle of a save
    /// that writes it again, or of a build that removes its output).
    fn is_finished(&self) -> bool {
        self.complete
            && self.last != ChangeKind::Removed
            && !(self.first == ChangeKind::Created && self.last == ChangeKind::Modified)
    }
}

impl Batch {
    fn add(&mut self, observation: Observation) {
        let (change, complete) = match observation {
            Observation::Change { change, complete } => (change, complete),
            Observation::SiteWide => {
                self.everything = true;
                return;
            }
            Observation::FolderRemoved => {
                self.rebuilding = true;
                return;
            }
            Observation::RootRemoved => {
                self.rebuilding = true;
                self.root_missing = true;
                return;
            }
            Observation::RootBack => {
                self.root_missing = false;
                return;
            }
            Observation::EventsLost => {
                self.become_burst();
                self.catching_up = true;
                return;
            }
            Observation::CaughtUp => {
                self.catching_up = false;
                return;
            }
        };
        if self.burst {
            return; // already covered
        }
        match self.index.get(&change.url_path) {
            Some(&at) => {
                let entry = &mut self.entries[at];
                entry.last = change.kind;
                entry.complete = complete;
            }
            None => {
                self.index
                    .insert(change.url_path.clone(), self.entries.len());
                self.entries.push(Entry {
                    url_path: change.url_path,
                    file: change.file,
                    first: change.kind,
                    last: change.kind,
                    complete,
                });
                if self.entries.len() >= LARGE_BURST {
                    self.become_burst();
                }
            }
        }
    }

    fn become_burst(&mut self) {
        self.everything = true;
        self.burst = true;
        self.entries = Vec::new();
        self.index = HashMap::new();
    }

    /// When the batch closes if nothing more comes, the last observation having come `now`.
    /// While the watcher catches up, only its word closes the batch.
    fn closes_at(&self, now: Instant, opened: Instant, timing: Timing) -> Option<Instant> {
        let latest = opened + timing.max_wait;
        if self.catching_up {
            None
        } else if self.root_missing {
            Some(opened + MAX_BURST)
        } else if self.burst {
            Some((now + BURST_OVER_AFTER).min(opened + MAX_BURST))
        } else if self.rebuilding {
            Some((now + REBUILD_OVER_AFTER).min(opened + MAX_BURST))
        } else if let Some(grace) = self.finished_save().filter(|_| timing.early_close) {
            Some((now + grace.min(timing.quiet)).min(latest))
        } else {
            Some((now + timing.quiet).min(latest))
        }
    }

    /// When every file in the batch is done being written and it is one save, the grace before
    /// the batch closes: stylesheets only (a swap is cheap and never a page load, so one more
    /// message for the rest of a build costs nothing), or a single page when no other batch came
    /// just before it.
    fn finished_save(&self) -> Option<Duration> {
        if self.everything || self.entries.len() > MOST_FILES_CLOSING_EARLY {
            return None;
        }
        let mut live = self.entries.iter().filter(|entry| !entry.is_temporary());
        let mut count = 0;
        let mut all_styles = true;
        let finished = live.all(|entry| {
            count += 1;
            all_styles &= crate::protocol::is_style(&entry.url_path);
            entry.is_finished()
        });
        if !finished || count == 0 {
            None
        } else if all_styles {
            Some(STYLES_GRACE)
        } else if count == 1 && self.isolated {
            Some(COMPLETE_GRACE)
        } else {
            None
        }
    }

    /// What the batch amounts to, without temporary files. `None` when nothing is left.
    fn finish(self) -> Option<Changed> {
        if self.everything {
            return Some(Changed::Everything);
        }
        let changes: Vec<Change> = self
            .entries
            .into_iter()
            .filter(|entry| !entry.is_temporary())
            .map(|entry| Change {
                url_path: entry.url_path,
                kind: entry.last,
                file: entry.file,
            })
            .collect();
        (!changes.is_empty()).then_some(Changed::Files(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const TIMING: Timing = Timing {
        quiet: Duration::from_millis(15),
        max_wait: Duration::from_secs(1),
        early_close: false,
    };

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            file: path.into(),
            url_path: path.to_owned(),
            kind,
        }
    }

    fn changed(path: &str, kind: ChangeKind) -> Observation {
        Observation::Change {
            change: change(path, kind),
            complete: false,
        }
    }

    type Delivered = Arc<Mutex<Vec<Changed>>>;

    /// Starts a batcher; returns the sender and the batches it has delivered so far.
    fn start() -> (mpsc::Sender<Observation>, Delivered) {
        let (send, receive) = mpsc::channel(1024);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let delivered = batches.clone();
        tokio::spawn(run(
            receive,
            TIMING,
            watch::Sender::new(false),
            move |batch| {
                delivered.lock().unwrap().push(batch);
                std::future::ready(())
            },
        ));
        (send, batches)
    }

    /// Moves the paused clock, letting the batcher take what was sent before and after.
    async fn advance(millis: u64) {
        settle().await;
        tokio::time::advance(Duration::from_millis(millis)).await;
        settle().await;
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_save_is_one_batch_after_the_quiet_period() {
        let (send, batches) = start();
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(10).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "still inside the quiet period"
        );
        advance(10).await;
        let delivered = batches.lock().unwrap().clone();
        assert_eq!(
            delivered,
            vec![Changed::Files(vec![change(
                "/a.html",
                ChangeKind::Modified
            )])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_build_writing_fifty_files_without_pauses_is_one_batch() {
        let (send, batches) = start();
        for i in 0..50 {
            send.send(changed(&format!("/f{i}.js"), ChangeKind::Modified))
                .await
                .unwrap();
            advance(6).await; // 300 ms in all, never quiet for 15 ms
        }
        assert!(batches.lock().unwrap().is_empty());
        advance(20).await;
        let delivered = batches.lock().unwrap().clone();
        assert_eq!(delivered.len(), 1);
        assert!(matches!(&delivered[0], Changed::Files(files) if files.len() == 50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_never_pauses_still_delivers_every_second() {
        let (send, batches) = start();
        for i in 0..250 {
            send.send(changed(&format!("/f{i}.js"), ChangeKind::Modified))
                .await
                .unwrap();
            advance(10).await; // 2.5 s of changes, 10 ms apart
        }
        advance(20).await;
        let count = batches.lock().unwrap().len();
        assert!((2..=4).contains(&count), "{count} batches in 2.5 s");
    }

    #[tokio::test(start_paused = true)]
    async fn separate_saves_are_separate_batches() {
        let (send, batches) = start();
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(30).await;
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(30).await;
        assert_eq!(batches.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_temp_file_created_and_removed_in_one_batch_is_dropped() {
        let (send, batches) = start();
        send.send(changed("/a.html.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(changed("/a.html.tmp", ChangeKind::Removed))
            .await
            .unwrap();
        send.send(changed("/a.html", ChangeKind::Created))
            .await
            .unwrap();
        advance(20).await;
        let delivered = batches.lock().unwrap().clone();
        assert_eq!(
            delivered,
            vec![Changed::Files(vec![change("/a.html", ChangeKind::Created)])]
        );

        send.send(changed("/b.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(changed("/b.tmp", ChangeKind::Removed))
            .await
            .unwrap();
        advance(20).await;
        assert_eq!(
            batches.lock().unwrap().len(),
            1,
            "an empty batch sends nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lost_events_hold_the_batch_until_the_watcher_catches_up_then_reload_everything() {
        let (send, batches) = start();
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        send.send(Observation::EventsLost).await.unwrap();
        for i in 0..100 {
            send.send(changed(&format!("/f{i}.js"), ChangeKind::Created))
                .await
                .unwrap();
        }
        advance(5_000).await; // far past the quiet window and the maximum wait
        assert!(
            batches.lock().unwrap().is_empty(),
            "nothing before the watcher has caught up"
        );
        send.send(Observation::CaughtUp).await.unwrap();
        advance(20).await;
        assert_eq!(*batches.lock().unwrap(), vec![Changed::Everything]);

        // Then back to normal.
        send.send(changed("/b.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(20).await;
        assert_eq!(
            batches.lock().unwrap().last(),
            Some(&Changed::Files(vec![change(
                "/b.html",
                ChangeKind::Modified
            )]))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_burst_is_one_reload_of_everything_at_its_end() {
        let (send, batches) = start();
        for i in 0..15_000 {
            send.send(changed(&format!("/f{i}.html"), ChangeKind::Modified))
                .await
                .unwrap();
            if i % 5 == 0 {
                advance(1).await; // 3 s of changes, never quiet for 100 ms
            }
        }
        assert!(batches.lock().unwrap().is_empty(), "not once a second");
        advance(90).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "not before the burst is over"
        );
        advance(20).await;
        assert_eq!(*batches.lock().unwrap(), vec![Changed::Everything]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_burst_that_never_pauses_is_still_delivered() {
        let (send, batches) = start();
        for i in 0..35_000 {
            send.send(changed(&format!("/f{i}.html"), ChangeKind::Modified))
                .await
                .unwrap();
            if i % 5 == 0 {
                advance(1).await; // 7 s of changes
            }
        }
        advance(200).await;
        let delivered = batches.lock().unwrap();
        assert_eq!(delivered.len(), 2, "one after 5 s, one at the end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_without_a_url_is_every_page_at_the_usual_pace() {
        let (send, batches) = start();
        send.send(Observation::SiteWide).await.unwrap();
        send.send(changed("/a.css", ChangeKind::Modified))
            .await
            .unwrap();
        advance(20).await;
        assert_eq!(*batches.lock().unwrap(), vec![Changed::Everything]);
    }

    fn completed(path: &str, kind: ChangeKind) -> Observation {
        Observation::Change {
            change: change(path, kind),
            complete: true,
        }
    }

    /// Starts a batcher whose finished saves close early, as liveserve's default quiet window
    /// does.
    fn start_closing_early() -> (mpsc::Sender<Observation>, Delivered) {
        let (send, receive) = mpsc::channel(1024);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let delivered = batches.clone();
        let timing = Timing {
            early_close: true,
            ..TIMING
        };
        tokio::spawn(run(
            receive,
            timing,
            watch::Sender::new(false),
            move |batch| {
                delivered.lock().unwrap().push(batch);
                std::future::ready(())
            },
        ));
        (send, batches)
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_save_of_one_file_closes_at_once() {
        let (send, batches) = start_closing_early();
        // An atomic save: the temp file, then the rename into place.
        send.send(changed("/a.html.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(completed("/a.html.tmp", ChangeKind::Removed))
            .await
            .unwrap();
        send.send(completed("/a.html", ChangeKind::Created))
            .await
            .unwrap();
        advance(6).await;
        assert_eq!(
            *batches.lock().unwrap(),
            vec![Changed::Files(vec![change("/a.html", ChangeKind::Created)])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_still_going_or_a_second_file_keeps_the_window() {
        let (send, batches) = start_closing_early();
        send.send(changed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(5).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "not written to the end yet"
        );
        send.send(completed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        send.send(completed("/b.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(5).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "two files: maybe a build"
        );
        advance(15).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_file_written_and_closed_may_be_a_temp_file_and_keeps_the_window() {
        let (send, batches) = start_closing_early();
        send.send(changed("/a.html.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(completed("/a.html.tmp", ChangeKind::Modified))
            .await
            .unwrap();
        advance(5).await;
        assert!(batches.lock().unwrap().is_empty(), "its rename may follow");
        advance(15).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_stylesheets_close_at_once_however_many() {
        let (send, batches) = start_closing_early();
        for name in ["/a.css", "/b.css", "/c.css"] {
            send.send(completed(name, ChangeKind::Modified))
                .await
                .unwrap();
        }
        advance(6).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_removal_is_the_middle_of_a_save_and_keeps_the_window() {
        let (send, batches) = start_closing_early();
        send.send(completed("/a.html", ChangeKind::Removed))
            .await
            .unwrap();
        advance(10).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "it may be written again"
        );
        send.send(completed("/a.html", ChangeKind::Created))
            .await
            .unwrap();
        advance(6).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn pages_saved_far_apart_each_close_at_once() {
        let (send, batches) = start_closing_early();
        for (i, name) in ["/a.html", "/b.html"].into_iter().enumerate() {
            send.send(completed(name, ChangeKind::Modified))
                .await
                .unwrap();
            advance(6).await;
            assert_eq!(batches.lock().unwrap().len(), i + 1, "{name}");
            advance(300).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_saved_right_after_another_batch_keeps_the_window() {
        let (send, batches) = start_closing_early();
        send.send(completed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(6).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
        advance(50).await; // the next file of a build, 50 ms later
        send.send(completed("/b.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(10).await;
        assert_eq!(batches.lock().unwrap().len(), 1, "maybe more is coming");
        advance(10).await;
        assert_eq!(batches.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_chosen_quiet_window_is_kept_for_finished_saves_too() {
        let (send, batches) = start();
        send.send(completed("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(5).await;
        assert!(batches.lock().unwrap().is_empty());
        advance(15).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rebuilt_folder_is_one_update_after_its_last_file() {
        let (send, batches) = start_closing_early();
        send.send(completed("/dist/a.js", ChangeKind::Removed))
            .await
            .unwrap();
        send.send(Observation::FolderRemoved).await.unwrap();
        for i in 0..8 {
            advance(25).await; // a bundler writing a file every 25 ms
            send.send(completed(&format!("/dist/f{i}.js"), ChangeKind::Created))
                .await
                .unwrap();
        }
        advance(250).await;
        assert!(batches.lock().unwrap().is_empty(), "still inside the build");
        advance(60).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_root_holds_the_batch_until_it_is_back() {
        let (send, batches) = start_closing_early();
        send.send(Observation::RootRemoved).await.unwrap();
        send.send(completed("/", ChangeKind::Removed))
            .await
            .unwrap();
        advance(2_000).await;
        assert!(
            batches.lock().unwrap().is_empty(),
            "no page of an empty folder"
        );
        send.send(Observation::RootBack).await.unwrap();
        send.send(changed("/index.html", ChangeKind::Created))
            .await
            .unwrap();
        advance(320).await;
        assert_eq!(batches.lock().unwrap().len(), 1);
    }
}
