//! Coalescing file changes into batches: one save, or one build writing many files, is one batch.
//!
//! The first change opens a window; the window closes once no change has come for the quiet
//! period, or when it has been open for the maximum wait, so a stream of writes that never pauses
//! still reloads about once a second.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::protocol::{Change, ChangeKind};

/// The default quiet period. Editors finish a save (temp file, rename, metadata) within a few
/// milliseconds, and a build writes its files back to back; 15 ms covers both with margin while
/// staying far below what a person notices between saving and seeing the page change.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(15);

/// The longest a batch stays open while changes keep coming.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub quiet: Duration,
    pub max_wait: Duration,
}

/// Receives changes until the channel closes, calling `on_batch` once per non-empty batch.
pub async fn run(
    mut changes: mpsc::Receiver<Change>,
    timing: Timing,
    mut on_batch: impl FnMut(Vec<Change>),
) {
    while let Some(first) = changes.recv().await {
        let mut batch = Batch::default();
        batch.add(first);
        let closes_at_latest = Instant::now() + timing.max_wait;
        let mut open = true;
        while open {
            let closes = (Instant::now() + timing.quiet).min(closes_at_latest);
            tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => batch.add(change),
                    None => open = false,
                },
                () = tokio::time::sleep_until(closes) => open = false,
            }
        }
        let changes = batch.finish();
        if !changes.is_empty() {
            on_batch(changes);
        }
    }
}

/// Changes in the order first seen, one entry per path.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
}

struct Entry {
    url_path: String,
    first: ChangeKind,
    last: ChangeKind,
}

impl Batch {
    fn add(&mut self, change: Change) {
        match self
            .entries
            .iter_mut()
            .find(|entry| entry.url_path == change.url_path)
        {
            Some(entry) => entry.last = change.kind,
            None => self.entries.push(Entry {
                url_path: change.url_path,
                first: change.kind,
                last: change.kind,
            }),
        }
    }

    /// The batch's changes, without files that were created and removed again inside it (an
    /// atomic save's temp file): they never existed as far as a page is concerned.
    fn finish(self) -> Vec<Change> {
        self.entries
            .into_iter()
            .filter(|entry| {
                !(entry.first == ChangeKind::Created && entry.last == ChangeKind::Removed)
            })
            .map(|entry| Change {
                url_path: entry.url_path,
                kind: entry.last,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const TIMING: Timing = Timing {
        quiet: Duration::from_millis(15),
        max_wait: Duration::from_secs(1),
    };

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            url_path: path.to_owned(),
            kind,
        }
    }

    type Delivered = Arc<Mutex<Vec<Vec<Change>>>>;

    /// Starts a batcher; returns the sender and the batches it has delivered so far.
    fn start() -> (mpsc::Sender<Change>, Delivered) {
        let (send, receive) = mpsc::channel(1024);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let delivered = batches.clone();
        tokio::spawn(run(receive, TIMING, move |batch| {
            delivered.lock().unwrap().push(batch)
        }));
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
        send.send(change("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        send.send(change("/a.html", ChangeKind::Modified))
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
            vec![vec![change("/a.html", ChangeKind::Modified)]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_build_writing_fifty_files_without_pauses_is_one_batch() {
        let (send, batches) = start();
        for i in 0..50 {
            send.send(change(&format!("/f{i}.js"), ChangeKind::Modified))
                .await
                .unwrap();
            advance(6).await; // 300 ms in all, never quiet for 15 ms
        }
        assert!(batches.lock().unwrap().is_empty());
        advance(20).await;
        let delivered = batches.lock().unwrap().clone();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].len(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_never_pauses_still_delivers_every_second() {
        let (send, batches) = start();
        for i in 0..250 {
            send.send(change(&format!("/f{i}.js"), ChangeKind::Modified))
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
        send.send(change("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(30).await;
        send.send(change("/a.html", ChangeKind::Modified))
            .await
            .unwrap();
        advance(30).await;
        assert_eq!(batches.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_temp_file_created_and_removed_in_one_batch_is_dropped() {
        let (send, batches) = start();
        send.send(change("/a.html.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(change("/a.html.tmp", ChangeKind::Removed))
            .await
            .unwrap();
        send.send(change("/a.html", ChangeKind::Created))
            .await
            .unwrap();
        advance(20).await;
        let delivered = batches.lock().unwrap().clone();
        assert_eq!(
            delivered,
            vec![vec![change("/a.html", ChangeKind::Created)]]
        );

        send.send(change("/b.tmp", ChangeKind::Created))
            .await
            .unwrap();
        send.send(change("/b.tmp", ChangeKind::Removed))
            .await
            .unwrap();
        advance(20).await;
        assert_eq!(
            batches.lock().unwrap().len(),
            1,
            "an empty batch sends nothing"
        );
    }
}
