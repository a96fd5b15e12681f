//! What liveserve last knew of each file it served or announced: its size, its modification time
//! and, for files up to a few MiB, a hash of its bytes. Two things follow from it:
//!
//! - A save that changed nothing (`touch`, a formatter with nothing to do, a checkout of the same
//!   content, an editor saving an unmodified buffer) is not announced: pages already show it.
//! - A file served with a size or time other than the one known, long after it changed and with
//!   no event for it, shows that events are being lost where it lives. Two versions are not that:
//!   the version known just before a change (a request that looked at the file right before it,
//!   and tells of it only after the change was announced), and a new size with the known time (a
//!   save that truncates the file, seen between the size changing and the time changing).
//!
//! Serving only records a file it has never seen (or the hash of the version it knows): a
//! page loaded between a change and its event must not make that change look old news to the
//! pages loaded before it. Announcing records the new version.
//!
//! Only the files served or announced most recently are kept ([`MAX_KNOWN`]): a site of 50,000
//! pages read through once must not cost memory for good. A file no longer known is simply
//! announced when it changes, and known again when it is served.

use std::fs::{self, Metadata};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;
use xxhash_rust::xxh3::xxh3_64;

/// How many files are known at most: far more than the pages being worked on load.
const MAX_KNOWN: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// Files up to this size are compared by content; bigger ones by size and time.
pub const MAX_HASHED: u64 = 4 * 1024 * 1024;

/// A served file whose change is older than this and was never announced lost its event: a
/// change's event arrives within milliseconds, and its batch closes within a second.
const EVENT_LOST_AFTER: Duration = Duration::from_secs(2);

/// One version of a file, as its metadata tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl Version {
    pub fn of(metadata: &Metadata) -> Self {
        Version {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

struct Known {
    version: Version,
    hash: Option<u64>,
    /// The version before this one, and when this one replaced it.
    previous: Option<(Version, Instant)>,
}

impl Known {
    /// Whether `version` is the one this replaced a moment ago: a request that looked at the
    /// file just before the change may tell of it milliseconds after (longer on a busy machine).
    fn just_replaced(&self, version: Version) -> bool {
        self.previous
            .is_some_and(|(previous, at)| previous == version && at.elapsed() < EVENT_LOST_AFTER)
    }
}

/// What serving a file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The version known: nothing to do.
    Known,
    /// Never served nor announced before.
    First,
    /// Another version than the one known, changed long ago with no event: events are lost.
    Stale,
}

pub struct KnownFiles {
    /// Least recently served or announced first out.
    files: Mutex<LruCache<Box<Path>, Known>>,
}

impl Default for KnownFiles {
    fn default() -> Self {
        KnownFiles {
            files: Mutex::new(LruCache::new(MAX_KNOWN)),
        }
    }
}

impl KnownFiles {
    fn lock(&self) -> MutexGuard<'_, LruCache<Box<Path>, Known>> {
        self.files
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Called for every file served, with its bytes when they were read whole. Cheap when the
    /// version is known: one lookup; the bytes are hashed once per version at most.
    pub fn served(&self, path: &Path, version: Version, bytes: Option<&[u8]>) -> Served {
        let mut files = self.lock();
        match files.get_mut(path) {
            None => {
                let hash = bytes.map(xxh3_64);
                let previous = None;
                files.put(
                    path.into(),
                    Known {
                        version,
                        hash,
                        previous,
                    },
                );
                Served::First
            }
            Some(known) if known.version == version => {
                if known.hash.is_none() {
                    known.hash = bytes.map(xxh3_64);
                }
                Served::Known
            }
            Some(known) if known.just_replaced(version) => Served::Known,
            // The time the version known has, with another size: a file being truncated, seen
            // between its size and its time changing (a save in progress, its event on the way).
            Some(known) if known.version.modified == version.modified => Served::Known,
            Some(_) if changed_long_ago(version) => Served::Stale,
            // Changed just now: its event is on its way.
            Some(_) => Served::Known,
        }
    }

    /// Whether the file at `path` is still what pages were last shown of it (so a change event
    /// for it is no news); records its current version either way. Files up to [`MAX_HASHED`]
    /// are compared by content: a size and a time can match across a change, since file times
    /// move in clock ticks of several milliseconds. Reads the file: call it from a blocking
    /// context.
    pub fn unchanged(&self, path: &Path) -> bool {
        let Ok(metadata) = fs::metadata(path) else {
            self.forget(path);
            return false;
        };
        let version = Version::of(&metadata);
        let known = self
            .lock()
            .peek(path)
            .map(|known| (known.version, known.hash));
        // Hashing reads the file; the lock is not held meanwhile.
        let hash = (version.len <= MAX_HASHED)
            .then(|| fs::read(path).ok().map(|bytes| xxh3_64(&bytes)))
            .flatten();
        let same = match (known, hash) {
            (Some((_, Some(before))), Some(now)) => before == now,
            (Some((before, _)), None) => version.len > MAX_HASHED && before == version,
            _ => false,
        };
        let previous = known
            .map(|(before, _)| before)
            .filter(|&before| before != version)
            .map(|before| (before, Instant::now()));
        self.lock().put(
            path.into(),
            Known {
                version,
                hash,
                previous,
            },
        );
        same
    }

    pub fn forget(&self, path: &Path) {
        self.lock().pop(path);
    }
}

fn changed_long_ago(version: Version) -> bool {
    version
        .modified
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > EVENT_LOST_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::path::PathBuf;

    fn version(path: &Path) -> Version {
        Version::of(&fs::metadata(path).unwrap())
    }

    fn set_modified(path: &Path, ago: Duration) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn a_save_of_the_same_bytes_is_no_news_and_a_real_change_is() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.html");
        fs::write(&page, "one").unwrap();
        let known = KnownFiles::default();
        assert_eq!(
            known.served(&page, version(&page), Some(b"one")),
            Served::First
        );

        set_modified(&page, Duration::from_secs(1)); // `touch`
        assert!(known.unchanged(&page));
        // Another content with the same size and time (a change inside one clock tick).
        let tick = fs::metadata(&page).unwrap().modified().unwrap();
        fs::write(&page, "owe").unwrap();
        File::options()
            .write(true)
            .open(&page)
            .unwrap()
            .set_modified(tick)
            .unwrap();
        assert!(!known.unchanged(&page), "same size and time, other bytes");
        fs::write(&page, "one").unwrap();
        assert!(!known.unchanged(&page));
        fs::write(&page, "one").unwrap(); // the same bytes saved again
        assert!(known.unchanged(&page));
        fs::write(&page, "two").unwrap();
        assert!(!known.unchanged(&page));
        assert!(known.unchanged(&page), "announced, so known now");
    }

    #[test]
    fn files_never_seen_are_news() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.html");
        fs::write(&page, "one").unwrap();
        let known = KnownFiles::default();
        assert!(!known.unchanged(&page));
        assert!(!known.unchanged(&dir.path().join("gone.html")));
    }

    #[test]
    fn a_version_served_long_after_its_change_without_an_announcement_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.html");
        fs::write(&page, "one").unwrap();
        let known = KnownFiles::default();
        known.served(&page, version(&page), None);
        assert_eq!(known.served(&page, version(&page), None), Served::Known);

        fs::write(&page, "two, and longer").unwrap();
        assert_eq!(
            known.served(&page, version(&page), None),
            Served::Known,
            "a change this recent has its event on the way"
        );
        set_modified(&page, Duration::from_secs(10));
        assert_eq!(known.served(&page, version(&page), None), Served::Stale);
        assert!(!known.unchanged(&page), "the lost change is news");
        assert_eq!(known.served(&page, version(&page), None), Served::Known);
    }

    /// A page last written long ago, served once: its folder (kept), path, version and what is
    /// known of it.
    fn page_served_long_after_its_save() -> (tempfile::TempDir, PathBuf, Version, KnownFiles) {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.html");
        fs::write(&page, "one").unwrap();
        set_modified(&page, Duration::from_secs(20));
        let known = KnownFiles::default();
        let served = version(&page);
        known.served(&page, served, None);
        (dir, page, served, known)
    }

    #[test]
    fn a_request_that_saw_the_file_just_before_an_announced_change_is_not_a_lost_event() {
        let (_dir, page, before, known) = page_served_long_after_its_save();
        // The request looked at the file here; the save, its event and its announcement come
        // before the request tells what it served.
        fs::write(&page, "two, and longer").unwrap();
        assert!(!known.unchanged(&page));
        assert_eq!(known.served(&page, before, None), Served::Known);
        assert_eq!(known.served(&page, version(&page), None), Served::Known);
    }

    #[test]
    fn a_file_seen_truncated_before_its_time_moved_is_not_a_lost_event() {
        let (_dir, page, whole, known) = page_served_long_after_its_save();
        // What a look at the file shows while a save truncates it: the size changed, the time
        // not yet.
        let truncated = Version { len: 0, ..whole };
        assert_eq!(known.served(&page, truncated, None), Served::Known);
    }
}
