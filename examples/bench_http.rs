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
//! Everything runs on loopback. Load generator and server share the machine's cores, as they do
//! for the figures in the README.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[path = "support/mod.rs"]
mod support;

use support::{LoadOptions, Server, Vite, build_release_binary, get, load, load_tool};

fn main() {
    let (options, proxy_only) = parse_options();
    let binary = build_release_binary();
    if !proxy_only {
        static_files(&binary, &options);
    }
    proxy(&binary, &options);
}

fn static_files(binary: &Path, options: &LoadOptions) {
    let site = tempfile::tempdir().expect("creating a temporary site");
    write_site(site.path());

    let startup = measure_startup(binary, site.path());
    println!(
        "start-up to first 200: {:.1} ms (median of 20)",
        startup.as_secs_f64() * 1000.0
    );

    let server = Server::start(binary, site.path(), &[]);
    // Idle: started, and one page served (as after opening it in a browser).
    assert!(get(server.port, "/page.html").starts_with(b"HTTP/1.1 200"));
    println!(
        "idle memory (RSS): {:.1} MiB",
        server.rss_kib() as f64 / 1024.0
    );
    for path in ["/small.css", "/big.bin"] {
        assert!(
            get(server.port, path).starts_with(b"HTTP/1.1 200"),
            "{path} is served"
        );
    }

    println!(
        "load: {}, {} connections, {} s per file, 2 cores shared with the server",
        load_tool(options),
        options.connections,
        options.seconds
    );
    for (label, path) in [
        ("small stylesheet (600 B)", "/small.css"),
        ("HTML page, script injected (2 KiB)", "/page.html"),
        ("1 MiB file", "/big.bin"),
    ] {
        let result = load(server.port, path, options);
        println!(
            "{label:<38} {:>9.0} req/s   p99 {:>6.2} ms",
            result.requests_per_second, result.p99_ms
        );
    }
    println!(
        "memory after load (RSS): {:.1} MiB",
        server.rss_kib() as f64 / 1024.0
    );
    server.stop();
}

fn parse_options() -> (LoadOptions, bool) {
    let mut options = LoadOptions {
        seconds: 5,
        connections: 50,
        builtin: false,
    };
    let mut proxy_only = false;
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
            "--proxy-only" => proxy_only = true,
            other => panic!("unknown option {other}; see the comment at the top of bench_http.rs"),
        }
    }
    (options, proxy_only)
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
    let mut samples: Vec<Duration> = (0..20)
        .map(|_| {
            let started = Instant::now();
            let server = Server::start(binary, root, &[]);
            assert!(get(server.port, "/page.html").starts_with(b"HTTP/1.1 200"));
            let elapsed = started.elapsed();
            server.stop();
            elapsed
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
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
            let peer = load(vite.port, path, options);
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
