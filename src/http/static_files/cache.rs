//! Small files kept in memory, and where the script goes in each page, so a page that loads the
//! same assets again and again is answered without reading or scanning them again.
//!
//! A file is kept from its second request on: a page and the assets it loads are asked for again
//! at every reload, while a crawl through a large site (or a search engine's worth of links
//! followed once) would only push them out. Files seen once are remembered by a hash of their
//! path, in little memory.
//!
//! Nothing here is ever served stale: an entry is kept with its file's version (size, times,
//! inode) and used only while a fresh `stat` of the file still says that version; the batch of
//! every change the watcher reports drops its files before the pages hear of it. A file written
//! within the last [`DEFAULT_SETTLE`] is not kept at all: two writes within one tick of the filesystem's
//! clock can leave the same version, and only a settled file is sure to change it with the next
//! write (git's index does the same for "racily clean" files).

use std::fs::Metadata;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use lru::LruCache;
use xxhash_rust::xxh3::xxh3_64;

use crate::http::inject::InjectionPoints;
use crate::protocol::Changed;

/// Files up to this size are kept whole; larger ones only have their injection points kept.
pub const MAX_CACHED_FILE: u64 = 256 * 1024;

/// What all entries may take together: the hot assets of the pages being worked on, not a site.
const BUDGET: usize = 4 * 1024 * 1024;

/// What an entry costs besides its bytes and its path (the map's slot, the list's links): keeps
/// many tiny entries bounded too.
const ENTRY_OVERHEAD: usize = 128;

/// How many files seen once are remembered, waiting for their second request.
const SEEN_ONCE: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// How long a file must have been left alone before it is kept (see the module's comment).
/// Two seconds covers the coarsest file times in use (FAT's).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// One version of a file, as its metadata tells it apart: a write changes the size or the times,
/// a save by renaming a new file into place changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    len: u64,
    modified: Option<SystemTime>,
    changed: Option<SystemTime>,
    inode: u64,
}

impl FileVersion {
    pub fn of(metadata: &Metadata) -> Self {
        FileVersion {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            changed: status_changed(metadata),
            inode: inode(metadata),
        }
    }

    /// Whether the file was last touched at least `settle` ago.
    fn settled(&self, settle: Duration) -> bool {
        let latest = self.modified.max(self.changed);
        latest.is_some_and(|latest| latest + settle <= SystemTime::now())
    }
}

#[cfg(unix)]
fn status_changed(metadata: &Metadata) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let nanos = u32::try_from(metadata.ctime_nsec()).ok()?;
    let seconds = u64::try_from(metadata.ctime()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

#[cfg(not(unix))]
fn status_changed(_: &Metadata) -> Option<SystemTime> {
    None
}

#[cfg(unix)]
fn inode(metadata: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_: &Metadata) -> u64 {
    0
}

/// What is known of one version of a file.
#[derive(Clone, Default)]
pub struct Cached {
    /// The whole file, when it is small.
    pub bytes: Option<Bytes>,
    /// For a page: where the script goes (`Some(None)`: the page loads the client itself).
    pub points: Option<Option<InjectionPoints>>,
}

impl Cached {
    fn cost(&self, path: &Path) -> usize {
        self.bytes.as_ref().map_or(0, Bytes::len) + path.as_os_str().len() + ENTRY_OVERHEAD
    }
}

/// The cache, shared by the root and every mounted folder (one budget for all).
pub struct FileCache {
    entries: Mutex<Entries>,
    /// How long a file must have been left alone to be kept.
    settle: Duration,
}

struct Entries {
    /// Least recently used first out.
    map: LruCache<Box<Path>, Entry>,
    /// The sum of the entries' costs.
    cost: usize,
    /// Files requested once, by a hash of their path, with the version then.
    seen_once: LruCache<u64, FileVersion>,
}

struct Entry {
    version: FileVersion,
    cached: Cached,
}

impl FileCache {
    /// A cache that keeps files left alone for `settle` ([`DEFAULT_SETTLE`]).
    pub fn new(settle: Duration) -> Self {
        FileCache {
            entries: Mutex::new(Entries {
                map: LruCache::unbounded(),
                cost: 0,
                seen_once: LruCache::new(SEEN_ONCE),
            }),
            settle,
        }
    }

    /// What is known of `path` in `version`; an entry for another version is dropped.
    pub fn get(&self, path: &Path, version: FileVersion) -> Option<Cached> {
        let mut entries = self.lock();
        let entry = entries.map.get(path)?;
        if entry.version == version {
            return Some(entry.cached.clone());
        }
        entries.remove(path);
        None
    }

    /// Keeps what is known of `path` in `version` if this version was asked for before and has
    /// settled; the least recently used entries make room.
    pub fn put(&self, path: &Path, version: FileVersion, cached: Cached) {
        if !version.settled(self.settle)
            || cached
                .bytes
                .as_ref()
                .is_some_and(|bytes| bytes.len() as u64 > MAX_CACHED_FILE)
        {
            return;
        }
        let mut entries = self.lock();
        let key = xxh3_64(path.as_os_str().as_encoded_bytes());
        if entries.seen_once.pop(&key) != Some(version) && !entries.map.contains(path) {
            entries.seen_once.put(key, version);
            return;
        }
        entries.remove(path);
        entries.cost += cached.cost(path);
        entries.map.put(path.into(), Entry { version, cached });
        while entries.cost > BUDGET {
            let Some((path, entry)) = entries.map.pop_lru() else {
                break;
            };
            entries.cost -= entry.cached.cost(&path);
        }
    }

    /// Drops the files of a batch of changes (everything, for a batch that says so).
    pub fn forget(&self, changed: &Changed) {
        let mut entries = self.lock();
        match changed {
            Changed::Files(changes) => {
                for change in changes {
                    entries.remove(&change.file);
                }
            }
            Changed::Everything => {
                entries.map.clear();
                entries.seen_once.clear();
                entries.cost = 0;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Entries {
    fn remove(&mut self, path: &Path) {
        if let Some(entry) = self.map.pop(path) {
            self.cost -= entry.cached.cost(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Change, ChangeKind};

    fn version(len: u64, age: Duration) -> FileVersion {
        let time = SystemTime::now() - age;
        FileVersion {
            len,
            modified: Some(time),
            changed: Some(time),
            inode: 1,
        }
    }

    fn bytes(len: usize) -> Cached {
        Cached {
            bytes: Some(Bytes::from(vec![b'x'; len])),
            points: None,
        }
    }

    const OLD: Duration = Duration::from_secs(60);

    #[test]
    fn an_entry_serves_its_version_only() {
        let cache = FileCache::new(DEFAULT_SETTLE);
        let path = Path::new("/site/a.css");
        let old = version(3, OLD);
        cache.put(path, old, bytes(3));
        assert!(
            cache.get(path, old).is_none(),
            "kept from the second request on"
        );
        cache.put(path, old, bytes(3));
        assert!(cache.get(path, old).is_some());
        // Written again: another version, and the old entry is gone for good.
        let newer = version(3, Duration::from_secs(30));
        assert!(cache.get(path, newer).is_none());
        assert!(cache.get(path, old).is_none());
    }

    #[test]
    fn a_file_written_just_now_is_not_kept() {
        let cache = FileCache::new(DEFAULT_SETTLE);
        let path = Path::new("/site/a.css");
        let fresh = version(3, Duration::from_millis(10));
        cache.put(path, fresh, bytes(3));
        cache.put(path, fresh, bytes(3));
        assert!(cache.get(path, fresh).is_none());
    }

    #[test]
    fn large_files_are_not_kept_and_the_budget_holds() {
        let cache = FileCache::new(DEFAULT_SETTLE);
        let big = version(MAX_CACHED_FILE + 1, OLD);
        cache.put(Path::new("/big"), big, bytes(MAX_CACHED_FILE as usize + 1));
        assert!(cache.get(Path::new("/big"), big).is_none());
        let size = 200 * 1024;
        let versions: Vec<FileVersion> = (0..40).map(|_| version(size as u64, OLD)).collect();
        for (n, version) in versions.iter().enumerate() {
            let path = format!("/f{n}");
            cache.put(Path::new(&path), *version, bytes(size));
            cache.put(Path::new(&path), *version, bytes(size));
            // The first file is used all along: it stays.
            assert!(cache.get(Path::new("/f0"), versions[0]).is_some());
        }
        assert!(cache.lock().cost <= BUDGET);
        assert!(cache.get(Path::new("/f1"), versions[1]).is_none());
        assert!(cache.get(Path::new("/f39"), versions[39]).is_some());
    }

    #[test]
    fn a_reported_change_drops_the_file() {
        let cache = FileCache::new(DEFAULT_SETTLE);
        let (a, b) = (Path::new("/site/a.css"), Path::new("/site/b.css"));
        let old = version(3, OLD);
        for path in [a, b, a, b] {
            cache.put(path, old, bytes(3));
        }
        cache.forget(&Changed::Files(vec![Change {
            url_path: "/a.css".into(),
            kind: ChangeKind::Modified,
            file: a.to_path_buf(),
        }]));
        assert!(cache.get(a, old).is_none());
        assert!(cache.get(b, old).is_some());
        cache.forget(&Changed::Everything);
        assert!(cache.get(b, old).is_none());
        assert_eq!(cache.lock().cost, 0);
    }
}
