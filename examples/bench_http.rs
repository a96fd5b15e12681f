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

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{LoadOptions, Server, build_release_binary, get, load, load_tool};

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

    println!(
        "load: {}, {} connections, {} s per file, 2 cores shared with the server",
        load_tool(&options),
        options.connections,
        options.seconds
    );
    for (label, path) in [
        ("small stylesheet (600 B)", "/small.css"),
        ("HTML page, script injected (2 KiB)", "/page.html"),
        ("1 MiB file", "/big.bin"),
    ] {
        let result = load(server.port, path, &options);
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

fn parse_options() -> LoadOptions {
    let mut options = LoadOptions {
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
