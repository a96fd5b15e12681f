//! A restart with many pages open (issue 16): a thousand pages run liveserve's real browser client
//! (the script the server serves) in Node, each in a context of its own
//! (`examples/support/tabs.mjs`; needs Node 20 or later on `PATH`), all connected to the real
//! binary. The binary is stopped and started again on the same port; the program reports when
//! each page first tried to reconnect (a herd, or a spread), how many times each reloaded (once is
//! right: the server restarted) and how long until every page was back.
//!
//!     cargo run --release --example restart_tabs [-- --pages 1000 --away-ms 0]
//!
//! `--away-ms` keeps the server stopped that long before it starts again.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Server, build_release_binary, option};

fn main() {
    let pages = option("--pages", 1000) as usize;
    let away = Duration::from_millis(option("--away-ms", 0));
    if Command::new("node").arg("--version").output().is_err() {
        println!("restart_tabs needs Node (20 or later) on PATH");
        return;
    }
    let binary = build_release_binary();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<!doctype html><p>page</p>").unwrap();
    let server = Server::start(&binary, site.path(), &[]);
    let port = server.port;
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/support/tabs.mjs");
    let mut node = Command::new("node")
        .arg("--experimental-websocket")
        .arg(harness)
        .args([port.to_string(), pages.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting node");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("a line from node").unwrap();
    assert_eq!(next_line(), "connected");
    println!("{pages} pages connected; restarting liveserve (away {away:?})");
    let stopped = Instant::now();
    server.stop();
    std::thread::sleep(away);
    let _server = Server::start_on_port(&binary, site.path(), port, &[]);
    let report: Vec<serde_json::Value> = serde_json::from_str(&next_line()).expect("the report");
    // The report comes two seconds after the last page was back (to catch a second reload).
    let all_back = stopped.elapsed() - Duration::from_secs(2);
    let _ = node.wait();

    let mut retries: Vec<f64> = report
        .iter()
        .filter_map(|page| page["retry"].as_f64())
        .collect();
    retries.sort_by(f64::total_cmp);
    let at = |share: f64| retries[((retries.len() - 1) as f64 * share) as usize];
    let busiest = retries
        .iter()
        .map(|&from| {
            retries
                .iter()
                .filter(|&&retry| (from..from + 100.0).contains(&retry))
                .count()
        })
        .max()
        .unwrap_or(0);
    let reloaded_once = report.iter().filter(|page| page["reloads"] == 1).count();
    let connected = report
        .iter()
        .filter(|page| page["connected"] == true)
        .count();
    println!(
        "first reconnect attempts after the socket closed: p10 {:.0} ms, p50 {:.0} ms, p90 {:.0} ms, last {:.0} ms",
        at(0.1),
        at(0.5),
        at(0.9),
        at(1.0)
    );
    println!("busiest 100 ms: {busiest} of {} attempts", retries.len());
    println!(
        "reloaded exactly once: {reloaded_once} of {pages}; connected at the end: {connected}; every page back {:.1} s after the stop",
        all_back.as_secs_f64()
    );
}
