//! What each open tab has told the server about itself: the page it shows, the last change it
//! has applied, whether it is loading, and the errors it hit since it loaded. `liveserve wait`
//! reads it to know when the browser shows the latest change.
//!
//! Tabs are known by an id the client keeps in the tab's session storage, so a tab that reloads
//! (and so drops its socket and opens another) stays the same tab: for a short while after its
//! socket closes it counts as loading, not as gone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long a tab whose socket closed counts as reloading before it counts as closed.
const RECONNECT_GRACE: Duration = Duration::from_secs(3);

/// Tabs tracked at most (any client may connect); beyond it, new tabs are not tracked.
const MAX_TABS: usize = 1024;

/// Errors kept per tab: the first ones say what went wrong.
const MAX_ERRORS: usize = 20;

/// One tab, as `/__liveserve/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageStatus {
    /// The page's URL path (and query).
    pub path: String,
    /// The last change generation the page shows.
    pub generation: u64,
    /// Loading, reloading, or applying a change.
    pub loading: bool,
    /// The errors the page reported since it loaded.
    pub errors: Vec<String>,
}

struct Tab {
    status: PageStatus,
    /// The socket closed at this time (a reload, or the tab closing).
    gone_since: Option<Instant>,
    /// Sockets open for this tab (a new page's may open before the old one's closes).
    sockets: usize,
}

#[derive(Default)]
pub struct ConnectedPages {
    tabs: Mutex<HashMap<String, Tab>>,
}

impl ConnectedPages {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tab>> {
        self.tabs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A socket for `tab` opened, for a page freshly loaded: its errors so far are forgotten.
    pub fn opened(&self, tab: &str, path: String, generation: u64, loading: bool) {
        let mut tabs = self.lock();
        forget_gone(&mut tabs);
        if tabs.len() >= MAX_TABS && !tabs.contains_key(tab) {
            return;
        }
        let sockets = tabs.get(tab).map_or(0, |known| known.sockets);
        tabs.insert(
            tab.to_owned(),
            Tab {
                status: PageStatus {
                    path,
                    generation,
                    loading,
                    errors: Vec::new(),
                },
                gone_since: None,
                sockets: sockets + 1,
            },
        );
    }

    /// `tab` now shows `generation` (or is busy updating, `loading`).
    pub fn reported(&self, tab: &str, generation: u64, loading: bool) {
        if let Some(known) = self.lock().get_mut(tab) {
            known.status.generation = generation;
            known.status.loading = loading;
        }
    }

    /// `tab` hit an error.
    pub fn error(&self, tab: &str, text: &str) {
        if let Some(known) = self.lock().get_mut(tab)
            && known.status.errors.len() < MAX_ERRORS
        {
            known.status.errors.push(text.to_owned());
        }
    }

    /// A socket of `tab` closed.
    pub fn closed(&self, tab: &str) {
        let mut tabs = self.lock();
        if let Some(known) = tabs.get_mut(tab) {
            known.sockets = known.sockets.saturating_sub(1);
            if known.sockets == 0 {
                known.gone_since = Some(Instant::now());
                known.status.loading = true;
            }
        }
        forget_gone(&mut tabs);
    }

    /// Every tab still open (one whose socket closed a moment ago is reloading), in no
    /// particular order; tabs gone for longer are forgotten.
    pub fn snapshot(&self) -> Vec<PageStatus> {
        let mut tabs = self.lock();
        forget_gone(&mut tabs);
        tabs.values().map(|known| known.status.clone()).collect()
    }
}

/// Forgets the tabs whose socket closed longer ago than a reload takes.
fn forget_gone(tabs: &mut HashMap<String, Tab>) {
    tabs.retain(|_, known| {
        known
            .gone_since
            .is_none_or(|since| since.elapsed() < RECONNECT_GRACE)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloading_tab_stays_the_same_tab_and_loses_its_old_errors() {
        let pages = ConnectedPages::default();
        pages.opened("t1", "/".into(), 3, false);
        pages.error("t1", "boom");
        assert_eq!(pages.snapshot()[0].errors, ["boom"]);
        pages.closed("t1");
        let reloading = pages.snapshot();
        assert_eq!((reloading.len(), reloading[0].loading), (1, true));
        pages.opened("t1", "/".into(), 4, false);
        assert_eq!(
            pages.snapshot(),
            [PageStatus {
                path: "/".into(),
                generation: 4,
                loading: false,
                errors: Vec::new()
            }]
        );
        pages.reported("t1", 5, false);
        assert_eq!(pages.snapshot()[0].generation, 5);
    }
}
