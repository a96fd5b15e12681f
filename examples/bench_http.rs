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
//! Everything runs on loopback. Load generator and server share the machine's cores, as they do
//! for the figures in the README.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{Server, build_release_binary};

struct Options {
    seconds: u64,
    connections: usize,
    builtin: bool,
}

fn main() {
    let options = parse_options();
    let binary = build_release_binary();
    let site = tempfile::tempdir().expect("creating a temporary site");
    write_site(site.path());

    let startup = measure_startup(&binary, site.path());
    println!(
        "start-up to first 200: {:.1} ms (median of 20)",
        startup.as_secs_f64() * 1000.0
    );

    let server = Server::start(&binary, site.path(), &[]);
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

    let tool = if !options.builtin && wrk_available() {
        "wrk"
    } else {
        "built-in client"
    };
    println!(
        "load: {tool}, {} connections, {} s per file, 2 cores shared with the server",
        options.connections, options.seconds
    );
    for (label, path) in [
        ("small stylesheet (600 B)", "/small.css"),
        ("HTML page, script injected (2 KiB)", "/page.html"),
        ("1 MiB file", "/big.bin"),
    ] {
        let url = format!("http://127.0.0.1:{}{path}", server.port);
        let result = if tool == "wrk" {
            run_wrk(&url, &options)
        } else {
            run_builtin(server.port, path, &options)
        };
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

fn parse_options() -> Options {
    let mut options = Options {
        seconds: 5,
        connections: 50,
        builtin: false,
    };
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
            other => panic!("unknown option {other}; see the comment at the top of bench_http.rs"),
        }
    }
    options
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

fn get(port: u16, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    response
}

struct LoadResult {
    requests_per_second: f64,
    p99_ms: f64,
}

fn wrk_available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

fn run_wrk(url: &str, options: &Options) -> LoadResult {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", options.connections),
            &format!("-d{}s", options.seconds),
            "--latency",
            url,
        ])
        .output()
        .expect("running wrk");
    let report = String::from_utf8_lossy(&output.stdout);
    let requests_per_second = report
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's report:\n{report}"));
    let p99 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("99%"))
        .map(|value| parse_wrk_duration(value.trim()))
        .unwrap_or_else(|| panic!("no 99% line in wrk's report:\n{report}"));
    if report.contains("Non-2xx") || report.contains("Socket errors") {
        eprintln!("wrk reported errors:\n{report}");
    }
    LoadResult {
        requests_per_second,
        p99_ms: p99,
    }
}

/// wrk prints durations as `812.00us`, `1.23ms` or `2.00s`.
fn parse_wrk_duration(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let value: f64 = text[..split].parse().unwrap_or(f64::NAN);
    match &text[split..] {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => f64::NAN,
    }
}

/// N keep-alive connections, each sending one request at a time, for the configured time.
fn run_builtin(port: u16, path: &str, options: &Options) -> LoadResult {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let workers: Vec<_> = (0..options.connections)
        .map(|_| {
            let path = path.to_owned();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                let mut body = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    writer.write_all(request.as_bytes()).unwrap();
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    body.resize(length, 0);
                    reader.read_exact(&mut body).unwrap();
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    let elapsed = started.elapsed().max(Duration::from_secs(options.seconds));
    latencies.sort();
    LoadResult {
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p99_ms: latencies[latencies.len() * 99 / 100].as_secs_f64() * 1000.0,
    }
}
