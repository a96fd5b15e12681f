//! Soak: the real `liveserve` binary for a working stretch, with figures.
//!
//!     cargo run --release --example soak [-- --minutes 10 --tabs 3]
//!
//! On a generated site it runs, all at once:
//! - saves at a human pace (one every 2 s, turning through HTML, CSS and JS files) and
//!   build-like bursts (every 30 s, 40 files written back to back);
//! - 50 WebSocket clients, as pages are, counting the updates they get;
//! - 3 headless Chromium tabs on the site (when Debian's chromium and chromium-driver are
//!   installed), which swap, update and reload as the saves say;
//! - a steady HTTP load (pages and assets, about 200 requests a second, keep-alive).
//!
//! It reports the server's memory (RSS) and open descriptors at start, every minute and at the
//! end, the updates each client missed or got twice (each save and each burst is one update),
//! and the time from a save to the update arriving (p50, p99).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/mod.rs"]
mod support;

// Shared with the browser tests; this program drives a part of it.
#[allow(dead_code)]
#[path = "../tests/integration/browser_driver.rs"]
mod browser_driver;

use support::{KeepAlive, Server, build_release_binary, option, rss_kib};

const CLIENTS: usize = 50;
const TABS: usize = 3;
const SAVE_EVERY: Duration = Duration::from_secs(2);
const BURST_EVERY: Duration = Duration::from_secs(30);
const BURST_FILES: usize = 40;

/// When each save was written, by the URL path it changes; the first client takes the time.
type Saves = Arc<Mutex<HashMap<String, Instant>>>;

/// Each timed save: when it was written, and how long its update took to arrive.
type Latencies = Arc<Mutex<Vec<(Instant, Duration)>>>;

#[tokio::main]
async fn main() {
    let minutes = option("--minutes", 10);
    let tab_count = option("--tabs", TABS as u64) as usize;
    let length = Duration::from_secs(minutes * 60);
    let binary = build_release_binary();
    let site = tempfile::tempdir().unwrap();
    write_site(site.path());
    let server = Server::start(&binary, site.path(), &[]);
    let port = server.port;
    println!(
        "soak: {minutes} min, {CLIENTS} WebSocket clients, HTTP load, saves every {SAVE_EVERY:?}, a burst of {BURST_FILES} files every {BURST_EVERY:?}"
    );

    // Set at the end, so the load and the clients stop before the server does.
    let stopping = Arc::new(AtomicBool::new(false));
    let saves: Saves = Arc::default();
    let received: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let latencies: Latencies = Arc::default();
    for (index, count) in received.iter().enumerate() {
        let timing = (index == 0).then(|| (saves.clone(), latencies.clone()));
        tokio::spawn(client(port, count.clone(), timing, stopping.clone()));
    }
    let http_done = Arc::new(AtomicU64::new(0));
    {
        let (done, stopping) = (http_done.clone(), stopping.clone());
        std::thread::spawn(move || http_load(port, &done, &stopping));
    }
    let tabs = browser_tabs(port, tab_count).await;

    let mut samples = vec![(
        "start".to_owned(),
        rss_kib(server.pid()),
        descriptors(server.pid()),
        cpu_seconds(server.pid()),
    )];
    let started = Instant::now();
    let (mut next_save, mut next_burst, mut next_sample) = (
        started + SAVE_EVERY,
        // A second off the saves, so a burst and a save are never one batch.
        started + BURST_EVERY + Duration::from_secs(1),
        started + Duration::from_secs(60),
    );
    let mut updates = 0u64;
    let mut save = 0usize;
    while started.elapsed() < length {
        let now = Instant::now();
        if now >= next_save {
            save += 1;
            let path = save_one(site.path(), save);
            saves.lock().unwrap().insert(path, Instant::now());
            updates += 1;
            next_save += SAVE_EVERY;
        }
        if now >= next_burst {
            burst(site.path(), save);
            updates += 1;
            next_burst += BURST_EVERY;
        }
        if now >= next_sample {
            let minute = started.elapsed().as_secs() / 60;
            samples.push((
                format!("{minute} min"),
                rss_kib(server.pid()),
                descriptors(server.pid()),
                cpu_seconds(server.pid()),
            ));
            next_sample += Duration::from_secs(60);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last update has time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    samples.push((
        "end".to_owned(),
        rss_kib(server.pid()),
        descriptors(server.pid()),
        cpu_seconds(server.pid()),
    ));

    let timed = latencies.lock().unwrap().clone();
    println!(
        "\n{:<10} {:>10} {:>12} {:>14} {:>26}",
        "when", "RSS", "descriptors", "CPU (total)", "save -> update p50 (min)"
    );
    for (index, (when, rss, fds, cpu)) in samples.iter().enumerate() {
        // The saves of the minute before this sample.
        let minute: Vec<Duration> = timed
            .iter()
            .filter(|(written, _)| {
                let at = written.duration_since(started).as_secs();
                index > 0 && at / 60 == (index as u64 - 1)
            })
            .map(|(_, took)| *took)
            .collect();
        let p50 = percentile(minute, 0.5).map_or(String::new(), |p50| {
            format!("{:.1} ms", p50.as_secs_f64() * 1000.0)
        });
        println!(
            "{when:<10} {:>6.1} MiB {fds:>12} {cpu:>12.1} s {p50:>26}",
            *rss as f64 / 1024.0
        );
    }
    let after_warm_up = samples.get(1).map_or(samples[0].1, |sample| sample.1);
    let end = samples.last().unwrap().1;
    println!(
        "growth after the first minute: {:+.1} MiB",
        (end as f64 - after_warm_up as f64) / 1024.0
    );
    let counts: Vec<u64> = received
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    let missed: u64 = counts.iter().map(|&got| updates.saturating_sub(got)).sum();
    let extra: u64 = counts.iter().map(|&got| got.saturating_sub(updates)).sum();
    println!(
        "updates: {updates} sent (saves and bursts); over {CLIENTS} clients {missed} missed, {extra} extra"
    );
    let all: Vec<Duration> = timed.iter().map(|(_, took)| *took).collect();
    if let (Some(p50), Some(p99)) = (percentile(all.clone(), 0.5), percentile(all, 0.99)) {
        println!(
            "save -> update over the whole run: p50 {:.1} ms, p99 {:.1} ms over {} saves",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            timed.len()
        );
    }
    println!(
        "HTTP: {} requests, every one 200",
        http_done.load(Ordering::Relaxed)
    );
    if let Some(tabs) = tabs {
        let mut connected = 0;
        for tab in &tabs {
            let up = tab
                .eval("return Boolean(window.__liveserve && window.__liveserve.connected)")
                .await;
            connected += usize::from(up == serde_json::Value::Bool(true));
        }
        println!(
            "Chromium tabs connected at the end: {connected} of {}",
            tabs.len()
        );
        for tab in tabs {
            tab.close().await;
        }
    }
    stopping.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop();
}

/// A page's socket: counts the updates it gets; the first one also times each save's.
async fn client(
    port: u16,
    count: Arc<AtomicU64>,
    timing: Option<(Saves, Latencies)>,
    stopping: Arc<AtomicBool>,
) {
    let url = format!("ws://127.0.0.1:{port}/__liveserve/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connected");
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        if message["type"] == "hello" {
            continue;
        }
        count.fetch_add(1, Ordering::Relaxed);
        if let (Some((saves, latencies)), Some(paths)) = (&timing, message["paths"].as_array()) {
            let saves = saves.lock().unwrap();
            for path in paths.iter().filter_map(|path| path.as_str()) {
                if let Some(written) = saves.get(path) {
                    latencies
                        .lock()
                        .unwrap()
                        .push((*written, written.elapsed()));
                }
            }
        }
    }
    if !stopping.load(Ordering::Relaxed) {
        eprintln!("soak: a client's socket closed before the end");
    }
}

/// Pages and assets, one after another on one keep-alive connection, about 200 a second. A
/// response other than 200 stops it with a message (and the count stops growing).
fn http_load(port: u16, done: &AtomicU64, stopping: &AtomicBool) {
    let targets = ["/index.html", "/css/site.css", "/js/app.js", "/about.html"];
    let mut connection = KeepAlive::connect(port);
    for target in targets.iter().cycle() {
        if stopping.load(Ordering::Relaxed) {
            return;
        }
        connection.get(target);
        done.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `count` Chromium tabs on the site, if Chromium is installed.
async fn browser_tabs(port: u16, count: usize) -> Option<Vec<browser_driver::Browser>> {
    if count == 0 || !Path::new("/usr/bin/chromedriver").exists() {
        println!("(no browser tabs)");
        return None;
    }
    let mut tabs = Vec::new();
    for _ in 0..count {
        let tab = browser_driver::Browser::start().await;
        tab.open(&format!("http://127.0.0.1:{port}/index.html"))
            .await;
        tabs.push(tab);
    }
    Some(tabs)
}

fn write_site(root: &Path) {
    for folder in ["css", "js", "gen"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    let page = |title: &str| {
        format!(
            "<!doctype html><html><head><title>{title}</title><link rel=stylesheet href=/css/site.css>\
             <script src=/js/app.js defer></script></head><body><h1>{title}</h1><p>soak</p></body></html>"
        )
    };
    std::fs::write(root.join("index.html"), page("index")).unwrap();
    std::fs::write(root.join("about.html"), page("about")).unwrap();
    std::fs::write(root.join("css/site.css"), "h1 { color: black }").unwrap();
    std::fs::write(root.join("js/app.js"), "window.app = 0;").unwrap();
}

/// One human save, turning through a page, a stylesheet and a script; returns its URL path.
fn save_one(root: &Path, count: usize) -> String {
    let (file, content): (PathBuf, String) = match count % 3 {
        0 => (
            root.join("index.html"),
            format!(
                "<!doctype html><html><head><title>index</title><link rel=stylesheet href=/css/site.css>\
                 <script src=/js/app.js defer></script></head><body><h1>index</h1><p>save {count}</p></body></html>"
            ),
        ),
        1 => (
            root.join("css/site.css"),
            format!("h1 {{ color: rgb({}, 0, 0) }}", count % 256),
        ),
        _ => (root.join("js/app.js"), format!("window.app = {count};")),
    };
    std::fs::write(&file, content).unwrap();
    format!(
        "/{}",
        file.strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/")
    )
}

/// A build writing its output: many files, back to back.
fn burst(root: &Path, count: usize) {
    for file in 0..BURST_FILES {
        std::fs::write(
            root.join(format!("gen/part-{file}.js")),
            format!("export const part = {count};"),
        )
        .unwrap();
    }
}

/// The CPU time the process has used (user and system), in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(after_name) = stat.rfind(')').map(|end| &stat[end + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: f64 = fields[11..13]
        .iter()
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no memory effects.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn percentile(mut values: Vec<Duration>, share: f64) -> Option<Duration> {
    values.sort();
    let last = values.len().checked_sub(1)?;
    Some(values[(last as f64 * share) as usize])
}

/// The process's open descriptors, from /proc.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}
