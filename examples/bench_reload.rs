//! Reload latency benchmark for the real `liveserve` binary.
//!
//!     cargo run --release --example bench_reload [-- --writes 200 --clients 1000]
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
//!   style has changed. Prints p50/p95 of each. Times are taken in the page
//!   (`performance.timeOrigin + performance.now()`) against the wall clock before the write.
//!
//! The quiet window is liveserve's default (15 ms); the figures include it.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use liveserve::protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/mod.rs"]
mod support;

#[path = "../tests/integration/browser_driver.rs"]
mod browser_driver;

use support::{Server, build_release_binary};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() {
    let mut writes = 200;
    let mut clients = 1000;
    let mut browser = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--browser" {
            browser = true;
            continue;
        }
        let value = args.next().and_then(|value| value.parse().ok());
        match (arg.as_str(), value) {
            ("--writes", Some(value)) => writes = value,
            ("--clients", Some(value)) => clients = value,
            _ => panic!("usage: bench_reload [--writes N] [--clients N] [--browser]"),
        }
    }
    // The fan-out mode holds a socket per client in this process too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let binary = build_release_binary();
    if browser {
        browser_latency(&binary).await;
        return;
    }
    let site = tempfile::tempdir().expect("creating a temporary folder");
    std::fs::write(site.path().join("index.html"), "<body>bench</body>").unwrap();
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

async fn latency(server: &Server, root: &Path, writes: usize) {
    let mut socket = connect(server.port).await;
    let mut samples = Vec::with_capacity(writes);
    let (mut missed, mut extra) = (0, 0);
    let mut expected_generation = 1;
    for i in 0..writes {
        let started = Instant::now();
        std::fs::write(root.join("index.html"), format!("<body>edit {i}</body>")).unwrap();
        match next_message(&mut socket).await {
            None => missed += 1,
            Some(ServerMessage::Reload { generation, paths }) => {
                samples.push(started.elapsed());
                if generation != expected_generation || paths != ["/index.html"] {
                    extra += 1;
                }
                expected_generation = generation + 1;
            }
            Some(_) => extra += 1,
        }
    }
    samples.sort();
    println!(
        "write → message, {} writes: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; missed {missed}, extra {extra}",
        writes,
        percentile(&samples, 50),
        percentile(&samples, 95),
        percentile(&samples, 99),
    );
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

/// Installed in the page: when a stylesheet `<link>` liveserve adds has loaded, note the time if
/// the heading now has the expected colour.
const STYLE_PROBE: &str = r#"
window.__styledAt = null;
window.__expect = null;
const heading = document.querySelector("h1");
new MutationObserver((mutations) => {
  for (const mutation of mutations) for (const node of mutation.addedNodes) {
    if (node.tagName !== "LINK") continue;
    node.addEventListener("load", () => {
      if (getComputedStyle(heading).color === window.__expect) {
        window.__styledAt = performance.timeOrigin + performance.now();
      }
    });
  }
}).observe(document.head, { childList: true });
"#;

async fn browser_latency(binary: &Path) {
    let site = tempfile::tempdir().expect("creating a temporary folder");
    copy_folder(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site"),
        site.path(),
    );
    let index = std::fs::read_to_string(site.path().join("index.html")).unwrap();
    let stylesheet = std::fs::read_to_string(site.path().join("css/site.css")).unwrap();
    let page = |text: &str| {
        index.replace(
            "<h1>Hello from liveserve</h1>",
            &format!("<h1 id=\"bench\">{text}</h1>{SHOWN_AT}"),
        )
    };
    std::fs::write(site.path().join("index.html"), page("start")).unwrap();

    let server = Server::start(binary, site.path(), &[]);
    let browser = browser_driver::Browser::start().await;
    let connected = "window.__liveserve && window.__liveserve.connected";
    browser
        .open(&format!("http://127.0.0.1:{}/", server.port))
        .await;
    browser.wait_until("the client connects", connected).await;

    let mut html = Vec::new();
    for i in 0..BROWSER_EDITS {
        let text = format!("edit {i}");
        let written = now_ms();
        std::fs::write(site.path().join("index.html"), page(&text)).unwrap();
        let shown = format!(
            "document.getElementById('bench') && document.getElementById('bench').textContent === '{text}'"
        );
        browser.wait_until("the new text shows", &shown).await;
        let shown_at = browser
            .eval("return window.__shownAt")
            .await
            .as_f64()
            .unwrap();
        html.push(shown_at - written);
        browser.wait_until("the client reconnects", connected).await;
    }

    browser.eval(STYLE_PROBE).await;
    let mut css = Vec::new();
    for i in 0..BROWSER_EDITS {
        let colour = format!("rgb({}, 0, 0)", i + 1);
        browser
            .eval(&format!(
                "window.__styledAt = null; window.__expect = '{colour}';"
            ))
            .await;
        let written = now_ms();
        let edited = format!("{stylesheet}\nh1 {{ color: {colour}; }}\n");
        std::fs::write(site.path().join("css/site.css"), edited).unwrap();
        browser
            .wait_until("the new style applies", "window.__styledAt !== null")
            .await;
        let styled_at = browser
            .eval("return window.__styledAt")
            .await
            .as_f64()
            .unwrap();
        css.push(styled_at - written);
    }
    browser.close().await;
    server.stop();

    for (label, samples) in [
        ("HTML edit → new text in the page", &mut html),
        ("CSS edit → computed style changed", &mut css),
    ] {
        samples.sort_by(f64::total_cmp);
        println!(
            "{label}, {BROWSER_EDITS} edits: p50 {:.1} ms, p95 {:.1} ms",
            samples[samples.len() / 2],
            samples[samples.len() * 95 / 100]
        );
    }
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
