//! Reload latency benchmark for the real `liveserve` binary.
//!
//!     cargo run --release --example bench_reload [-- --writes 100 --clients 1000]
//!
//! Starts `target/release/liveserve` on a temporary folder and connects WebSocket clients.
//! - Latency: one client; N times, write a file and time until its message arrives. Prints
//!   p50/p95/p99 and the count of missed messages (none within 2 s) and extra ones (a message
//!   that is not exactly the next generation naming exactly that file).
//! - Fan-out: M clients; write a file and time until the last client has the message. Prints the
//!   median of 20 rounds and the server's memory per idle client.
//!
//! - Browser (`--browser`, needs Debian's chromium and chromium-driver): the demo site in headless
//!   Chromium; 50 times edit the page and time from just before the write until the new text is
//!   in the reloaded page, then 50 times edit the stylesheet and time until the page's computed
//!   style has changed. Prints p50/p95 of each. With `VITE` naming a Vite binary, the stylesheet
//!   edits are timed under Vite's dev server too (stylesheet imported from a module, as Vite
//!   updates it in place). Times are taken in the page
//!   (`performance.timeOrigin + performance.now()`) against the wall clock before the write.
//!
//! - Big tree (`--big-tree`): a generated site of 20,000 folders and 100,000 files. Prints the time
//!   from spawning the server until it answers (it watches the whole tree before it serves), its
//!   memory, its CPU time and the messages sent over 10 s with nothing edited, the CPU time of its
//!   watcher threads while it serves a page under load, the messages for a burst that rewrites
//!   30,000 files (far more events than the watcher queues), and the latency of one edit after.
//!
//! - Polling (`--polling`): 10,000 files in 100 folders served with `--poll` (every 300 ms):
//!   write → message over 20 writes, the server's CPU over 10 s with nothing edited, and, to
//!   compare notify's poll watcher with the cheapest possible one, the CPU time of a bare walk
//!   that stats every file, as often.
//!
//! The quiet window is liveserve's default (15 ms); the figures include it.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use liveserve::__private::protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/mod.rs"]
mod support;

#[path = "../tests/integration/browser_driver.rs"]
mod browser_driver;

use support::{LoadOptions, Server, Vite, build_release_binary, get, load, load_tool};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// Time between two saves in the latency rows: more than liveserve's 250 ms, after which a save
/// is no longer taken for the next file of a build.
const SAVE_SPACING: Duration = Duration::from_millis(260);

#[tokio::main]
async fn main() {
    let mut writes = 100;
    let mut clients = 1000;
    let mut browser = false;
    let mut big = false;
    let mut polling = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--browser" => {
                browser = true;
                continue;
            }
            "--big-tree" => {
                big = true;
                continue;
            }
            "--polling" => {
                polling = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().and_then(|value| value.parse().ok());
        match (arg.as_str(), value) {
            ("--writes", Some(value)) => writes = value,
            ("--clients", Some(value)) => clients = value,
            _ => panic!(
                "usage: bench_reload [--writes N] [--clients N] [--browser | --big-tree | --polling]"
            ),
        }
    }
    // The fan-out mode holds a socket per client in this process too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let binary = build_release_binary();
    if browser {
        browser_latency(&binary).await;
        return;
    }
    if big {
        big_tree(&binary).await;
        return;
    }
    if polling {
        polling_cost(&binary).await;
        return;
    }
    let site = tempfile::tempdir().expect("creating a temporary folder");
    std::fs::write(site.path().join("index.html"), "<body>bench</body>").unwrap();
    std::fs::write(site.path().join("site.css"), "body {}").unwrap();
    let server = Server::start(&binary, site.path(), &[]);

    latency(&server, site.path(), writes).await;
    fan_out(&server, site.path(), clients).await;
    server.stop();
}

async fn connect(port: u16) -> Socket {
    let url = format!("ws://127.0.0.1:{port}/__liveserve/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connecting");
    let hello = next_message(&mut socket).await.expect("a hello");
    assert!(matches!(hello, ServerMessage::Hello { .. }));
    socket
}

async fn next_message(socket: &mut Socket) -> Option<ServerMessage> {
    loop {
        let frame = tokio::time::timeout(MESSAGE_TIMEOUT, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).ok();
        }
    }
}

/// How a benchmark save writes its file.
#[derive(Clone, Copy)]
enum Save {
    /// Truncate and write in place (VS Code, most tools).
    InPlace,
    /// Write a temp file and rename it over the original (vim, JetBrains, `sed -i`).
    Rename,
}

async fn latency(server: &Server, root: &Path, writes: usize) {
    let mut socket = connect(server.port).await;
    let mut generation = 0;
    for (label, file, save) in [
        (
            "write → message, in-place page save",
            "index.html",
            Save::InPlace,
        ),
        (
            "write → message, rename-save of the page",
            "index.html",
            Save::Rename,
        ),
        (
            "write → message, stylesheet save",
            "site.css",
            Save::InPlace,
        ),
    ] {
        let mut samples = Vec::with_capacity(writes);
        let (mut missed, mut extra) = (0, 0);
        let url = format!("/{file}");
        for i in 0..writes {
            // A person's saves are far apart; back to back they would look like a build's files.
            tokio::time::sleep(SAVE_SPACING).await;
            let started = Instant::now();
            save_file(
                root,
                file,
                format!("/* edit {i} */ body {{}}").as_bytes(),
                save,
            );
            match next_message(&mut socket).await {
                None => missed += 1,
                Some(
                    ServerMessage::Reload {
                        generation: got,
                        paths,
                        ..
                    }
                    | ServerMessage::Css {
                        generation: got,
                        paths,
                    },
                ) => {
                    samples.push(started.elapsed());
                    if got != generation + 1 || paths != [url.as_str()] {
                        extra += 1;
                    }
                    generation = got;
                }
                Some(_) => extra += 1,
            }
        }
        samples.sort();
        println!(
            "{label}, {writes} saves: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; missed {missed}, extra {extra}",
            percentile(&samples, 50),
            percentile(&samples, 95),
            percentile(&samples, 99),
        );
    }
}

fn save_file(root: &Path, name: &str, content: &[u8], save: Save) {
    match save {
        Save::InPlace => std::fs::write(root.join(name), content).unwrap(),
        Save::Rename => {
            let temp = root.join(format!("{name}.tmp-bench"));
            std::fs::write(&temp, content).unwrap();
            std::fs::rename(&temp, root.join(name)).unwrap();
        }
    }
}

async fn fan_out(server: &Server, root: &Path, clients: usize) {
    let before = server.rss_kib();
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        sockets.push(connect(server.port).await);
    }
    let after = server.rss_kib();
    let mut rounds = Vec::new();
    for round in 0..20 {
        let started = Instant::now();
        std::fs::write(
            root.join("index.html"),
            format!("<body>round {round}</body>"),
        )
        .unwrap();
        let waits = sockets
            .iter_mut()
            .map(|socket| async move { next_message(socket).await.is_some() });
        let received = futures_util::future::join_all(waits).await;
        let elapsed = started.elapsed();
        assert!(
            received.iter().all(|&got| got),
            "every client got the message"
        );
        rounds.push(elapsed);
    }
    rounds.sort();
    println!(
        "{clients} clients: write → last client has the message, median of 20: {:.1} ms",
        percentile(&rounds, 50)
    );
    println!(
        "server memory per idle client: {:.1} KiB ({:.1} MiB → {:.1} MiB)",
        after.saturating_sub(before) as f64 / clients as f64,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = (sorted.len() * percent / 100).min(sorted.len() - 1);
    sorted[index].as_secs_f64() * 1000.0
}

/// How many edits of each kind the browser mode times.
const BROWSER_EDITS: usize = 50;

/// Records when the reloaded page has the new text; put right after the edited heading.
const SHOWN_AT: &str =
    "<script>window.__shownAt = performance.timeOrigin + performance.now();</script>";

/// Installed in the page: note the time the heading first has the expected colour. Checked on
/// every change to the document (Vite rewrites a `<style>`) and when an added stylesheet
/// `<link>` has loaded (liveserve swaps links).
const STYLE_PROBE: &str = r#"
window.__styledAt = null;
window.__expect = null;
const heading = document.querySelector("h1");
const check = () => {
  if (window.__styledAt === null && window.__expect !== null
      && getComputedStyle(heading).color === window.__expect) {
    window.__styledAt = performance.timeOrigin + performance.now();
  }
};
new MutationObserver((mutations) => {
  for (const mutation of mutations) for (const node of mutation.addedNodes) {
    if (node.tagName === "LINK") node.addEventListener("load", check);
  }
  check();
}).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
"#;

async fn browser_latency(binary: &Path) {
    let site = demo_site();
    let stylesheet = std::fs::read_to_string(site.path().join("css/site.css")).unwrap();
    let vite = std::env::var_os("VITE").map(std::path::PathBuf::from);
    if vite.is_none() {
        println!("(set VITE to a Vite binary to measure it in the same run)");
    }

    // liveserve: HTML edits applied in place, then with --no-morph, then stylesheet edits.
    let mut rows = Vec::new();
    for (label, extra) in [
        ("HTML edit → new text in the page (in place)", &[][..]),
        (
            "HTML edit → new text in the page (--no-morph: reload)",
            &["--no-morph"][..],
        ),
    ] {
        let server = Server::start(binary, site.path(), extra);
        let browser = open_page(
            server.port,
            "window.__liveserve && window.__liveserve.connected",
        )
        .await;
        rows.push((label, html_edits(&browser, site.path()).await));
        if extra.is_empty() {
            let css = css_edits(&browser, &site.path().join("css/site.css"), &stylesheet).await;
            rows.push(("CSS edit → computed style changed", css));
        }
        browser.close().await;
        server.stop();
    }

    // Vite's dev server on the same site: a full reload for HTML, an in-place update for a
    // stylesheet imported from a module (as Vite updates stylesheets).
    if let Some(vite) = vite {
        let folder = demo_site();
        let index = std::fs::read_to_string(folder.path().join("index.html")).unwrap();
        let index = index.replace(
            r#"<link rel="stylesheet" href="/css/site.css">"#,
            r#"<script type="module">import "/css/site.css";</script>"#,
        );
        std::fs::write(folder.path().join("index.html"), index).unwrap();
        let root = folder.path().to_path_buf();
        let server = Vite::start(&vite, folder, "");
        let browser = open_page(server.peer.port, "document.querySelector('style') !== null").await;
        rows.push((
            "Vite: HTML edit → new text in the page (reload)",
            html_edits(&browser, &root).await,
        ));
        let css = css_edits(&browser, &root.join("css/site.css"), &stylesheet).await;
        rows.push(("Vite: CSS edit → computed style changed", css));
        browser.close().await;
    }

    for (label, mut samples) in rows {
        samples.sort_by(f64::total_cmp);
        println!(
            "{label}, {BROWSER_EDITS} edits: p50 {:.1} ms, p95 {:.1} ms",
            samples[samples.len() / 2],
            samples[samples.len() * 95 / 100]
        );
    }
}

/// A copy of the demo site whose heading can be edited and timed.
fn demo_site() -> tempfile::TempDir {
    let site = tempfile::tempdir().expect("creating a temporary folder");
    copy_folder(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site"),
        site.path(),
    );
    std::fs::write(site.path().join("index.html"), bench_page("start")).unwrap();
    site
}

/// The demo page with the heading saying `text`, and a script that notes when a fresh load
/// shows it.
fn bench_page(text: &str) -> String {
    let index = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/index.html"),
    )
    .unwrap();
    index.replace(
        "<h1>Hello from liveserve</h1>",
        &format!("<h1 id=\"bench\">{text}</h1>{SHOWN_AT}"),
    )
}

/// Installed in the page: notes when the heading's text changes in place (no new load runs the
/// page's own script then).
const TEXT_PROBE: &str = r#"
window.__shownAt = null;
if (!window.__probing) {
  window.__probing = true;
  new MutationObserver(() => {
    const heading = document.getElementById("bench");
    if (window.__shownAt === null && heading && heading.textContent === window.__expectText) {
      window.__shownAt = performance.timeOrigin + performance.now();
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}
"#;

async fn open_page(port: u16, ready: &str) -> browser_driver::Browser {
    let browser = browser_driver::Browser::start().await;
    browser.open(&format!("http://127.0.0.1:{port}/")).await;
    browser.wait_until("the page is ready", ready).await;
    browser
}

/// Edits the page's heading again and again, timing each edit until the new text shows, by a
/// fresh load or in place.
async fn html_edits(browser: &browser_driver::Browser, root: &Path) -> Vec<f64> {
    let mut samples = Vec::new();
    for i in 0..BROWSER_EDITS {
        tokio::time::sleep(SAVE_SPACING).await;
        let text = format!("edit {i}");
        browser
            .eval(&format!("window.__expectText = '{text}'; {TEXT_PROBE}"))
            .await;
        let written = now_ms();
        std::fs::write(root.join("index.html"), bench_page(&text)).unwrap();
        let shown = format!(
            "document.getElementById('bench') && document.getElementById('bench').textContent === '{text}' && window.__shownAt !== null"
        );
        browser.wait_until("the new text shows", &shown).await;
        let shown_at = browser
            .eval("return window.__shownAt")
            .await
            .as_f64()
            .unwrap();
        samples.push(shown_at - written);
        // A reloaded page starts again: wait until it is ready for the next edit.
        browser
            .wait_until("the page is ready", "document.readyState === 'complete'")
            .await;
    }
    samples
}

/// Edits `stylesheet` (whose text is `text`) again and again, timing each edit until the page in
/// `browser` shows the new colour.
async fn css_edits(browser: &browser_driver::Browser, stylesheet: &Path, text: &str) -> Vec<f64> {
    browser.eval(STYLE_PROBE).await;
    let mut samples = Vec::new();
    for i in 0..BROWSER_EDITS {
        tokio::time::sleep(SAVE_SPACING).await;
        let colour = format!("rgb({}, 0, 0)", i + 1);
        browser
            .eval(&format!(
                "window.__styledAt = null; window.__expect = '{colour}';"
            ))
            .await;
        let written = now_ms();
        std::fs::write(stylesheet, format!("{text}\nh1 {{ color: {colour}; }}\n")).unwrap();
        browser
            .wait_until("the new style applies", "window.__styledAt !== null")
            .await;
        let styled_at = browser
            .eval("return window.__styledAt")
            .await
            .as_f64()
            .unwrap();
        samples.push(styled_at - written);
    }
    samples
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The big tree: `BIG_TREE_TOP` folders of `BIG_TREE_LEAVES` folders, each with
/// `BIG_TREE_FILES` pages.
const BIG_TREE_TOP: usize = 200;
const BIG_TREE_LEAVES: usize = 100;
const BIG_TREE_FILES: usize = 5;

async fn big_tree(binary: &Path) {
    let site = tempfile::tempdir().expect("creating a temporary folder");
    let made = Instant::now();
    for top in 0..BIG_TREE_TOP {
        for leaf in 0..BIG_TREE_LEAVES {
            let folder = site.path().join(format!("s{top}/p{leaf}"));
            std::fs::create_dir_all(&folder).unwrap();
            for file in 0..BIG_TREE_FILES {
                std::fs::write(folder.join(format!("f{file}.html")), "<p>page</p>").unwrap();
            }
        }
    }
    let folders = BIG_TREE_TOP * (BIG_TREE_LEAVES + 1);
    let files = BIG_TREE_TOP * BIG_TREE_LEAVES * BIG_TREE_FILES;
    println!(
        "big tree: {folders} folders, {files} files (made in {:.1} s)",
        made.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let server = Server::start(binary, site.path(), &[]);
    let page = "/s100/p50/f1.html";
    assert!(get(server.port, page).starts_with(b"HTTP/1.1 200"));
    println!(
        "start → every folder watched and the first page served: {:.0} ms; memory (RSS) {:.1} MiB",
        started.elapsed().as_secs_f64() * 1000.0,
        server.rss_kib() as f64 / 1024.0
    );

    let mut socket = connect(server.port).await;
    let idle = Duration::from_secs(10);
    let cpu_before = cpu_ms(&format!("/proc/{}/stat", server.pid()));
    let idle_messages = count_messages(&mut socket, idle).await;
    let cpu_idle = cpu_ms(&format!("/proc/{}/stat", server.pid())) - cpu_before;
    println!(
        "idle {} s: {idle_messages} messages, {cpu_idle:.0} ms of CPU ({:.2}% of a core)",
        idle.as_secs(),
        cpu_idle / idle.as_millis() as f64 * 100.0
    );

    let options = LoadOptions {
        seconds: 5,
        connections: 50,
        builtin: false,
    };
    let watcher_before = watcher_cpu_ms(server.pid());
    let port = server.port;
    let tool = load_tool(&options);
    let loaded = tokio::task::spawn_blocking(move || load(port, page, &options));
    let load_messages = count_messages(&mut socket, Duration::from_secs(5)).await;
    let result = loaded.await.unwrap();
    let watcher_load = watcher_cpu_ms(server.pid()) - watcher_before;
    println!(
        "serving {page} under load ({}, {:.0} req/s for 5 s): watcher threads {watcher_load:.0} ms of CPU, {load_messages} messages",
        tool, result.requests_per_second
    );

    let burst: Vec<_> = (0..BIG_TREE_TOP)
        .flat_map(|top| (0..BIG_TREE_LEAVES).map(move |leaf| (top, leaf)))
        .flat_map(|(top, leaf)| (0..3).map(move |file| format!("s{top}/p{leaf}/f{file}.html")))
        .take(30_000)
        .collect();
    let root = site.path().to_path_buf();
    let burst_started = Instant::now();
    let writer = tokio::task::spawn_blocking(move || {
        for path in &burst {
            std::fs::write(root.join(path), "<p>rewritten</p>").unwrap();
        }
        (burst.len(), burst_started.elapsed())
    });
    // Every message until the burst is written and nothing more came for 3 s.
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(3), next_message(&mut socket)).await {
            Ok(Some(message)) => messages.push((burst_started.elapsed(), message)),
            _ if writer.is_finished() => break,
            _ => {}
        }
    }
    let (written, burst_took) = writer.await.unwrap();
    let everything = matches!(
        messages.as_slice(),
        [(_, ServerMessage::Reload { all: true, .. })]
    );
    let first_after_end = messages.first().map_or(f64::NAN, |(at, _)| {
        (at.as_secs_f64() - burst_took.as_secs_f64()) * 1000.0
    });
    println!(
        "burst rewriting {written} files in {:.1} s: {} message(s){}, the first {first_after_end:.0} ms after the last write",
        burst_took.as_secs_f64(),
        messages.len(),
        if everything {
            " (reload everything)"
        } else {
            ""
        },
    );

    let edited = Instant::now();
    std::fs::write(site.path().join("s199/p99/f4.html"), "<p>edited</p>").unwrap();
    let message = next_message(&mut socket).await;
    let named = matches!(&message, Some(ServerMessage::Reload { paths, .. }) if paths == &["/s199/p99/f4.html"]);
    println!(
        "then one edit: {} in {:.1} ms",
        if named {
            "one message naming it"
        } else {
            "NOT announced as expected"
        },
        edited.elapsed().as_secs_f64() * 1000.0
    );
    server.stop();
}

/// Counts protocol messages arriving within `period`.
async fn count_messages(socket: &mut Socket, period: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + period;
    let mut count = 0;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if matches!(frame, Message::Text(_)) {
            count += 1;
        }
    }
    count
}

/// User and system CPU time from a `/proc/.../stat` file, in milliseconds.
fn cpu_ms(stat_file: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    // The fields after the command name (which may contain spaces), from the state on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&field| fields.get(field)?.parse::<f64>().ok())
        .sum();
    ticks * 1000.0 / clock_ticks_per_second()
}

/// CPU time of the server's watcher threads: liveserve's own and notify's.
fn watcher_cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            name.starts_with("liveserve-watch") || name.starts_with("notify-rs")
        })
        .map(|task| cpu_ms(&task.path().join("stat").to_string_lossy()))
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn polling_cost(binary: &Path) {
    let site = tempfile::tempdir().expect("creating a temporary folder");
    for folder in 0..100 {
        let folder = site.path().join(format!("d{folder}"));
        std::fs::create_dir(&folder).unwrap();
        for file in 0..100 {
            std::fs::write(folder.join(format!("f{file}.html")), "<p>page</p>").unwrap();
        }
    }
    let server = Server::start(binary, site.path(), &["--poll"]);
    assert!(get(server.port, "/d0/f0.html").starts_with(b"HTTP/1.1 200"));
    let mut socket = connect(server.port).await;

    let mut samples = Vec::new();
    for i in 0..20 {
        // Saves come at any moment of a polling cycle, not just after one: spread them over it.
        tokio::time::sleep(Duration::from_millis((i * 137) % 300)).await;
        let file = site.path().join(format!("d{}/f{}.html", i * 5, i));
        let started = Instant::now();
        std::fs::write(file, format!("<p>edit {i}</p>")).unwrap();
        if next_message(&mut socket).await.is_some() {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    println!(
        "polling 10,000 files every 300 ms: write → message p50 {:.0} ms, max {:.0} ms ({} of 20 seen)",
        percentile(&samples, 50),
        samples
            .last()
            .map_or(f64::NAN, |max| max.as_secs_f64() * 1000.0),
        samples.len()
    );

    let idle = Duration::from_secs(10);
    let stat = format!("/proc/{}/stat", server.pid());
    let before = cpu_ms(&stat);
    let messages = count_messages(&mut socket, idle).await;
    let used = cpu_ms(&stat) - before;
    println!(
        "  server idle for 10 s: {used:.0} ms of CPU ({:.1}% of a core), {messages} messages",
        used / idle.as_millis() as f64 * 100.0
    );

    // The cheapest poller imaginable: list each folder and stat each file, nothing else.
    let passes = 20;
    let started = cpu_time_of_this_thread();
    for _ in 0..passes {
        for folder in std::fs::read_dir(site.path()).unwrap().flatten() {
            for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
                std::hint::black_box(file.metadata().unwrap().modified().unwrap());
            }
        }
    }
    let per_pass = (cpu_time_of_this_thread() - started) / passes as f64;
    println!(
        "  a bare stat walk of the same files: {per_pass:.1} ms of CPU per pass, {:.1}% of a core every 300 ms",
        per_pass / 300.0 * 100.0
    );
    server.stop();
}

/// CPU time used by the calling thread so far, in milliseconds.
fn cpu_time_of_this_thread() -> f64 {
    cpu_ms("/proc/thread-self/stat")
}
