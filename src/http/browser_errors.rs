//! Errors pages hit (uncaught exceptions, unhandled rejections, `console.error`, resources that
//! failed to load), printed on stderr as one line each with the page's path, so whoever keeps the
//! terminal in view — a person or a coding agent — sees what broke without opening DevTools.
//!
//! What a page sends is text from a web page: control characters are dropped (no terminal escape
//! sequences), each line is capped, and all pages together are rate-limited.

use std::sync::Mutex;
use std::time::Instant;

/// The longest message printed, in characters.
const MAX_TEXT: usize = 300;

/// Lines per second all pages together may print, and the burst allowed.
const LINES_PER_SECOND: f64 = 10.0;
const BURST: f64 = 20.0;

/// A token bucket shared by every page.
struct Budget {
    tokens: f64,
    refilled: Instant,
    /// Lines dropped since the last one printed.
    dropped: u64,
}

static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);

/// Prints one error a page at `path` reported.
pub fn report(path: &str, text: &str) {
    let mut budget = BUDGET.lock().unwrap_or_else(|poison| poison.into_inner());
    let budget = budget.get_or_insert_with(|| Budget {
        tokens: BURST,
        refilled: Instant::now(),
        dropped: 0,
    });
    let now = Instant::now();
    let earned = now.duration_since(budget.refilled).as_secs_f64() * LINES_PER_SECOND;
    budget.tokens = (budget.tokens + earned).min(BURST);
    budget.refilled = now;
    if budget.tokens < 1.0 {
        budget.dropped += 1;
        return;
    }
    budget.tokens -= 1.0;
    if budget.dropped > 0 {
        eprintln!("[browser] ({} more errors not shown)", budget.dropped);
        budget.dropped = 0;
    }
    eprintln!("[browser] {}: {}", clean(path), clean(text));
}

/// The text without control characters (line breaks become spaces), at most [`MAX_TEXT`]
/// characters.
fn clean(text: &str) -> String {
    let mut cleaned: String = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    if text.chars().count() > MAX_TEXT {
        cleaned.push('…');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_cannot_reach_the_terminal_as_escapes_or_floods() {
        assert_eq!(clean("a\u{1b}[31mred\nline"), "a[31mred line");
        let long = "x".repeat(1000);
        assert_eq!(clean(&long).chars().count(), MAX_TEXT + 1);
    }
}
