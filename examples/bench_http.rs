//! HTTP benchmark for the real `liveserve` binary.
//!
//!     cargo run --release --example bench_http [-- --seconds 5 --connections 50 --builtin]
//!
//! Builds and starts `target/release/liveserve` on a generated site, then measures:
//! - start-up: from spawning the process to the first `200` (median of 20 starts);
//! - idle memory: the server's resident set size once it has served one page;
//! - throughput and p99 latency for a small stylesheet, an HTML page (the script injected) and a
//!   1 MiB file, with `wrk -t2 -cN -dS --latency` when wrk is installed (Debian: `apt-get install
//!   wrk`), else with a built-in keep-alive client (`--builtin` forces it).
//!
//! - the proxy: a small JSON response and a 2 KiB HTML page from a backend (a hyper server in
//!   this program), loaded directly, through `liveserve --proxy /api=...` (which injects the
//!   script into the page), and through Vite's dev server proxy when `VITE` names a Vite binary:
//!
//!       npm install --prefix /tmp/vite vite@8
//!       VITE=/tmp/vite/node_modules/.bin/vite cargo run --release --example bench_http -- --proxy-only
//!
//! - HTTPS (`-- --https`, needs Debian's chromium and chromium-driver): start-up to the first
//!   200 over TLS beside plain HTTP, and Chromium loading a page of 100 ES modules over HTTP/1.1
//!   and over HTTP/2 (see `support/https.rs`).
//!
//! Everything runs on loopback. Load generator and server share the machine's cores, as they do
//! for the figures in the README.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[path = "support/mod.rs"]
mod support;

#[path = "support/https.rs"]
mod https;

// Shared with the browser tests; this program drives a part of it.
#[allow(dead_code)]
#[path = "../tests/integration/browser_driver.rs"]
mod browser_driver;

use support::{
    KeepAlive, LoadOptions, LoadResult, Peer, Server, Vite, build_release_binary, get, load,
    load_tool, median, static_web_server,
};

fn main() {
    let (options, mode) = parse_options();
    let binary = build_release_binary();
    match mode {
        Mode::All => {
            static_files(&binary, &options);
            proxy(&binary, &options);
        }
        Mode::ProxyOnly => proxy(&binary, &options),
        Mode::RustDocs(folder) => rust_docs(&binary, &folder),
        Mode::Https => https::run(&binary),
    }
}

/// One row of the side-by-side table; `ratio` is liveserve's figure over the peer's.
fn row(label: &str, ours: String, peer: Option<String>, ratio: Option<f64>) {
    let peer = peer.unwrap_or_else(|| "-".into());
    let ratio = ratio.map_or(String::new(), |ratio| format!("{ratio:.2}×"));
    println!("{label:<40} {ours:>26} {peer:>26} {ratio:>7}");
}

fn header_row() {
    row(
        "what",
        "liveserve".into(),
        Some("static-web-server".into()),
        None,
    );
}

fn memory_row(label: &str, server: &Server, peer: Option<&Peer>) {
    row(
        label,
        mib(server.rss_kib()),
        peer.map(|peer| mib(peer.rss_kib())),
        None,
    );
}

/// Memory is read a second after the load, as it stays once a burst of requests is over.
fn settle() {
    std::thread::sleep(Duration::from_secs(1));
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn static_files(binary: &Path, options: &LoadOptions) {
    let site = tempfile::tempdir().expect("creating a temporary site");
    write_site(site.path());
    let written = Instant::now();

    let startup = measure_startup(binary, site.path());
    println!(
        "start-up to first 200: {:.1} ms (median of 20)",
        startup.as_secs_f64() * 1000.0
    );

    let server = Server::start(binary, site.path(), &[]);
    let peer = static_web_server(site.path());
    if peer.is_none() {
        println!(
            "(static-web-server is not on PATH: `cargo install static-web-server` to compare)"
        );
    }
    // A project's files have long settled; liveserve reads a file written in the last two
    // seconds from the disk every time (see `FileCache`), so the load starts after that.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(written.elapsed()));
    // Idle: started, and one page served (as after opening it in a browser).
    assert!(get(server.port, "/page.html").starts_with(b"HTTP/1.1 200"));
    if let Some(peer) = &peer {
        assert!(get(peer.port, "/page.html").starts_with(b"HTTP/1.1 200"));
    }
    println!(
        "load: {}, {} connections, {} s per file, 2 cores shared by the load generator and the server",
        load_tool(options),
        options.connections,
        options.seconds
    );
    header_row();
    memory_row("idle memory (RSS), one page served", &server, peer.as_ref());
    for (label, path) in [
        ("small stylesheet (600 B)", "/small.css"),
        ("HTML page, 2 KiB (liveserve injects)", "/page.html"),
        ("1 MiB file", "/big.bin"),
    ] {
        let ours = load(server.port, path, options);
        let theirs = peer.as_ref().map(|peer| load(peer.port, path, options));
        let show = |result: &LoadResult| {
            format!(
                "{:.0} req/s, p99 {:.1} ms",
                result.requests_per_second, result.p99_ms
            )
        };
        row(
            label,
            show(&ours),
            theirs.as_ref().map(show),
            theirs.map(|theirs| ours.requests_per_second / theirs.requests_per_second),
        );
    }
    settle();
    memory_row("memory after the load (RSS)", &server, peer.as_ref());
    server.stop();
}

/// Serves a large real site nobody here wrote (the Rust documentation rustup installs) and
/// requests every page once, liveserve and static-web-server alike, then reports memory.
fn rust_docs(binary: &Path, folder: &Path) {
    let pages = html_files(folder);
    let largest = pages.iter().map(|(_, len)| *len).max().unwrap_or(0);
    println!(
        "{}: {} pages, the largest {:.1} MB; each requested once over 4 keep-alive connections",
        folder.display(),
        pages.len(),
        largest as f64 / 1e6
    );
    let paths: Vec<String> = pages
        .iter()
        .map(|(path, _)| url_path(folder, path))
        .collect();
    // Both servers then read from the page cache, whichever goes first.
    for (page, _) in &pages {
        let _ = std::fs::read(page);
    }
    let server = Server::start(binary, folder, &[]);
    let peer = static_web_server(folder);
    header_row();
    memory_row("memory before (RSS)", &server, peer.as_ref());
    let ours = crawl(server.port, &paths);
    let theirs = peer.as_ref().map(|peer| crawl(peer.port, &paths));
    let show = |(took, bytes): &(Duration, u64)| {
        format!("{:.1} s, {:.0} MB", took.as_secs_f64(), *bytes as f64 / 1e6)
    };
    row(
        "every page once: time, bytes received",
        show(&ours),
        theirs.as_ref().map(show),
        theirs.map(|theirs| theirs.0.as_secs_f64() / ours.0.as_secs_f64()),
    );
    settle();
    memory_row("memory after (RSS)", &server, peer.as_ref());
}

/// Every `.html` file below `folder`, with its size.
fn html_files(folder: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                folders.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "html")
            {
                found.push((path, metadata.len()));
            }
        }
    }
    found.sort();
    found
}

/// The URL path of `file` below `root`, percent-encoded where a name needs it.
fn url_path(root: &Path, file: &Path) -> String {
    let inside = file.strip_prefix(root).unwrap();
    inside
        .iter()
        .map(|name| {
            percent_encoding::utf8_percent_encode(
                &name.to_string_lossy(),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string()
            .replace("%2E", ".")
            .replace("%2D", "-")
            .replace("%5F", "_")
        })
        .fold(String::new(), |url, name| url + "/" + &name)
}

/// Requests every path once over 4 keep-alive connections; how long it took and how many bytes
/// came back. Every answer must be a 200.
fn crawl(port: u16, paths: &[String]) -> (Duration, u64) {
    let started = Instant::now();
    let workers: Vec<_> = paths
        .chunks(paths.len().div_ceil(4).max(1))
        .map(|share| {
            let share = share.to_vec();
            std::thread::spawn(move || {
                let mut connection = KeepAlive::connect(port);
                share.iter().map(|path| connection.get(path)).sum::<u64>()
            })
        })
        .collect();
    let bytes = workers
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .sum();
    (started.elapsed(), bytes)
}

enum Mode {
    All,
    ProxyOnly,
    RustDocs(PathBuf),
    Https,
}

fn parse_options() -> (LoadOptions, Mode) {
    let mut options = LoadOptions {
        seconds: 5,
        connections: 50,
        builtin: false,
    };
    let mut mode = Mode::All;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                options.seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--connections" => {
                options.connections = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--connections N")
            }
            "--builtin" => options.builtin = true,
            "--proxy-only" => mode = Mode::ProxyOnly,
            "--https" => mode = Mode::Https,
            "--rust-docs" => {
                mode = Mode::RustDocs(
                    args.next()
                        .map(PathBuf::from)
                        .or_else(rust_docs_folder)
                        .expect("--rust-docs [FOLDER]: no rustup docs found"),
                )
            }
            other => panic!("unknown option {other}; see the comment at the top of bench_http.rs"),
        }
    }
    (options, mode)
}

/// The documentation of the first rustup toolchain that has it.
fn rust_docs_folder() -> Option<PathBuf> {
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".rustup")))?;
    let mut toolchains: Vec<PathBuf> = std::fs::read_dir(home.join("toolchains"))
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("share/doc/rust/html"))
        .filter(|docs| docs.join("index.html").is_file())
        .collect();
    toolchains.sort();
    toolchains.into_iter().next()
}

fn write_site(root: &Path) {
    let rule = ".card { margin: 0 auto; padding: 1rem 2rem; border-radius: 8px; color: #333; }\n";
    std::fs::write(
        root.join("small.css"),
        &rule.repeat(600 / rule.len() + 1).as_bytes()[..600],
    )
    .unwrap();
    let paragraph = "<p>liveserve benchmark page with some ordinary text in a paragraph.</p>\n";
    let page = format!(
        "<!doctype html><html><head><title>bench</title><link rel=stylesheet href=small.css></head>\n<body>\n{}</body></html>\n",
        paragraph.repeat(2048 / paragraph.len())
    );
    std::fs::write(root.join("page.html"), page).unwrap();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
}

fn measure_startup(binary: &Path, root: &Path) -> Duration {
    median(20, || {
        let started = Instant::now();
        let server = Server::start(binary, root, &[]);
        assert!(get(server.port, "/page.html").starts_with(b"HTTP/1.1 200"));
        started.elapsed()
    })
}

/// The backend's answers: a small JSON document and a 2 KiB page.
const JSON: &str =
    r#"{"id":42,"name":"liveserve","tags":["dev","server","reload"],"ok":true,"count":1234}"#;

fn backend_page() -> String {
    let paragraph = "<p>a page rendered by the backend, with some ordinary text in it.</p>\n";
    format!(
        "<!doctype html><html><head><title>backend</title></head>\n<body>\n{}</body></html>\n",
        paragraph.repeat(2048 / paragraph.len())
    )
}

fn proxy(binary: &Path, options: &LoadOptions) {
    let backend = start_backend();
    let site = tempfile::tempdir().expect("creating a temporary site");
    let route = format!("/api=http://{backend}");
    let server = Server::start(binary, site.path(), &["--proxy", &route]);
    let vite = std::env::var_os("VITE").map(|vite| {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("index.html"), "<p>vite</p>").unwrap();
        let proxy = format!("proxy: {{ '/api': 'http://{backend}' }}");
        Vite::start(Path::new(&vite), folder, &proxy)
    });
    println!(
        "proxy: {}, {} connections, {} s each; the backend runs in this process",
        load_tool(options),
        options.connections,
        options.seconds
    );
    if vite.is_none() {
        println!("(set VITE to a Vite binary to measure its proxy too)");
    }
    for (label, path) in [
        ("proxied JSON (86 B)", "/api/data.json"),
        ("proxied HTML page (2 KiB)", "/api/page.html"),
    ] {
        let direct = load(backend.port(), path, options);
        let through = load(server.port, path, options);
        let mut line = format!(
            "{label:<28} direct {:>7.0} req/s p99 {:>5.2} ms | liveserve {:>7.0} req/s p99 {:>5.2} ms ({:.2}×)",
            direct.requests_per_second,
            direct.p99_ms,
            through.requests_per_second,
            through.p99_ms,
            through.requests_per_second / direct.requests_per_second
        );
        if let Some(vite) = &vite {
            let peer = load(vite.peer.port, path, options);
            line += &format!(
                " | Vite {:>7.0} req/s p99 {:>5.2} ms ({:.2}×)",
                peer.requests_per_second,
                peer.p99_ms,
                peer.requests_per_second / direct.requests_per_second
            );
        }
        println!("{line}");
    }
    server.stop();
}

/// The backend: a hyper server on its own runtime thread, for the life of the program.
fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the backend");
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let page = Bytes::from(backend_page());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let page = page.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (content_type, body) = match request.uri().path() {
                            "/api/data.json" => {
                                ("application/json", Bytes::from_static(JSON.as_bytes()))
                            }
                            _ => ("text/html; charset=utf-8", page.clone()),
                        };
                        let response = Response::builder()
                            .header("content-type", content_type)
                            .body(Full::new(body))
                            .unwrap();
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}
