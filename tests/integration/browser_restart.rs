//! A restart with many pages open, in headless Chromium: the pages (frames of one tab, each with
//! its own client and socket) reconnect at random moments spread over a second rather than all at
//! once, and each reloads exactly once. Marked `#[ignore]` like the other browser tests.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::{ONE_BROWSER, url};
use crate::browser_driver::Browser;
use crate::support::{TestServer, site};

/// How many pages reconnect: enough to tell a spread from a herd, few enough for two cores (the
/// frames share one renderer thread, which takes seconds to reload them all).
const PAGES: usize = 50;

/// Long enough for that thread to reload every page.
const RELOADED_WITHIN: Duration = Duration::from_secs(30);

/// Each frame counts its loads under its own name (frames of a tab share `sessionStorage`) and
/// notes the moment of every WebSocket it opens, with the load it belongs to, in the top page.
const FRAME_JS: &str = r#"const key = "loads:" + window.name;
const load = Number(sessionStorage.getItem(key) || 0) + 1;
sessionStorage.setItem(key, String(load));
window.WebSocket = class extends WebSocket {
  constructor(...args) {
    top.__attempts.push({ frame: window.name, load, at: Date.now() });
    super(...args);
  }
};
"#;

/// The top page holds the frames and the record of their attempts. It is XHTML, which liveserve
/// does not inject: only the frames have a client, so the top page stays put through the restart.
fn top_page() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\
         <head><title>pages</title></head><body><script>//<![CDATA[\n\
         window.__attempts = [];\n\
         for (let i = 0; i < {PAGES}; i++) {{ const frame = document.createElement('iframe');\
         frame.name = 'f' + i; frame.src = '/frame.html'; document.body.append(frame); }}\n\
         //]]></script></body></html>"
    )
}

/// Every frame has loaded `loads` times and its client is connected.
fn all_frames(loads: usize) -> String {
    format!(
        "Array.from(document.querySelectorAll('iframe')).every((frame) => {{
           const page = frame.contentWindow;
           return Number(sessionStorage.getItem('loads:' + frame.name)) === {loads}
             && page.__liveserve && page.__liveserve.connected; }})"
    )
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn after_a_restart_many_pages_reconnect_spread_out_and_each_reloads_once() {
    let _one = ONE_BROWSER.lock().await;
    let top = top_page();
    let root = site(&[
        ("index.xhtml", top.as_bytes()),
        (
            "frame.html",
            b"<!doctype html><html><head><script src=\"/frame.js\"></script><title>f</title></head><body>page</body></html>",
        ),
        ("frame.js", FRAME_JS.as_bytes()),
    ]);
    let server = TestServer::start(root).await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/index.xhtml")).await;
    browser
        .wait_until_within(RELOADED_WITHIN, "every page connected", &all_frames(1))
        .await;
    let server = server.restart(|_| {}).await;
    browser
        .wait_until_within(RELOADED_WITHIN, "every page reloaded once", &all_frames(2))
        .await;

    // The first attempt each page made after losing its socket (attempts of its first load
    // after the one that opened the first socket).
    let attempts = browser
        .eval(
            "const first = new Map();
             for (const attempt of window.__attempts) {
               if (attempt.load !== 1) continue;
               const seen = first.get(attempt.frame);
               if (seen === undefined) first.set(attempt.frame, { opened: attempt.at });
               else if (seen.again === undefined) seen.again = attempt.at;
             }
             return Array.from(first.values()).map((page) => page.again);",
        )
        .await;
    let mut moments: Vec<i64> = attempts
        .as_array()
        .expect("the attempts")
        .iter()
        .map(|moment| moment.as_i64().expect("every page tried again"))
        .collect();
    moments.sort_unstable();
    assert_eq!(moments.len(), PAGES);
    let spread = moments[PAGES - 1] - moments[0];
    let busiest_tenth_of_a_second = moments
        .iter()
        .map(|&from| {
            moments
                .iter()
                .filter(|&&at| (from..from + 100).contains(&at))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        spread >= 700,
        "attempts spread over {spread} ms: {moments:?}"
    );
    assert!(
        busiest_tenth_of_a_second <= PAGES / 3,
        "{busiest_tenth_of_a_second} attempts within 100 ms: {moments:?}"
    );

    // The one bounded observation: no page reloads again in the next two seconds.
    let watched_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watched_until {
        let steady = browser.eval(&format!("return {}", all_frames(2))).await;
        assert_eq!(steady, Value::Bool(true), "each page reloaded exactly once");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.close().await;
    server.stop().await;
}
