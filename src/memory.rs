//! Giving memory back to the system once a burst of connections is over.
//!
//! Fifty downloads at once need their buffers at once, and a crawl through a large site leaves
//! freed entries behind; glibc's allocator keeps such freed memory in its per-thread arenas for
//! next time, so a dev server that once served a burst would hold it for the rest of the day.
//! When connections stop coming and going for a moment after some closed, the free memory is
//! handed back with `malloc_trim` (a fraction of a millisecond).
//!
//! glibc also gives each thread that allocates its own arena, up to eight per core; the freed
//! memory of each is kept apart from the others'. Two arenas serve the two async threads and the
//! few blocking ones as fast (measured with `bench_http`) and keep a third less after a crawl
//! through a large site.

use std::time::Duration;

use tokio::time::Instant;

/// Arenas for the whole process (see the module's comment).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Limits the allocator's arenas; call it before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator, under its lock.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// How long the connections must stay still before releasing.
const QUIET: Duration = Duration::from_millis(500);

/// Watches connections come and go, and says when to release memory.
#[derive(Default)]
pub struct AfterBursts {
    due: Option<Instant>,
}

impl AfterBursts {
    pub fn opened(&mut self) {
        if self.due.is_some() {
            self.due = Some(Instant::now() + QUIET);
        }
    }

    pub fn closed(&mut self) {
        self.due = Some(Instant::now() + QUIET);
    }

    /// Resolves when a burst is over; never while none is.
    pub async fn burst_over(&self) {
        match self.due {
            Some(due) => tokio::time::sleep_until(due).await,
            None => std::future::pending().await,
        }
    }

    /// Hands freed memory back to the system.
    pub fn release(&mut self) {
        self.due = None;
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
