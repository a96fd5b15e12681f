//! What the benchmark programs share: building and running the real `liveserve` binary, and
//! loading it with HTTP requests.

// Each benchmark program compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the release binary (as `cargo run --release` would) and returns its path.
pub fn build_release_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "liveserve"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building liveserve failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/liveserve")
}

/// The number after the flag `name` on the command line, else `default`.
pub fn option(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .map_or(default, |value| value.parse().expect("a number"))
}

/// The median of `samples` measurements.
pub fn median(samples: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..samples).map(|_| measure()).collect();
    times.sort();
    times[samples / 2]
}

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the binary on `root` on a free loopback port, with `extra` arguments.
    pub fn start(binary: &Path, root: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(binary, root, extra, &[])
    }

    /// [`Server::start`] with variables set in its environment.
    pub fn start_with_env(
        binary: &Path,
        root: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Server {
        Server::spawn(binary, root, 0, extra, env)
    }

    /// [`Server::start`] on a given port (a restart: the port the pages know).
    pub fn start_on_port(binary: &Path, root: &Path, port: u16, extra: &[&str]) -> Server {
        Server::spawn(binary, root, port, extra, &[])
    }

    fn spawn(
        binary: &Path,
        root: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Server {
        let mut child = Command::new(binary)
            .arg(root)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-q"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting liveserve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    /// The server's resident memory, from /proc (Linux).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(self) {
        drop(self);
    }
}

/// A benchmark that panics or is cut short still takes its server down.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How hard and how long a load generator works.
pub struct LoadOptions {
    pub seconds: u64,
    pub connections: usize,
    /// Use the built-in client even when wrk is installed.
    pub builtin: bool,
}

/// What [`load`] will use, for the report.
pub fn load_tool(options: &LoadOptions) -> &'static str {
    if uses_wrk(options) {
        "wrk"
    } else {
        "built-in client"
    }
}

fn uses_wrk(options: &LoadOptions) -> bool {
    !options.builtin && wrk_available()
}

/// Loads `path` as `options` say, with wrk when it is installed (Debian: `apt-get install wrk`),
/// else with the built-in keep-alive client.
pub fn load(port: u16, path: &str, options: &LoadOptions) -> LoadResult {
    if uses_wrk(options) {
        run_wrk(&format!("http://127.0.0.1:{port}{path}"), options)
    } else {
        run_builtin(port, path, options)
    }
}

pub fn get(port: u16, path: &str) -> Vec<u8> {
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

pub struct LoadResult {
    pub requests_per_second: f64,
    pub p99_ms: f64,
}

fn wrk_available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

fn run_wrk(url: &str, options: &LoadOptions) -> LoadResult {
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
fn run_builtin(port: u16, path: &str, options: &LoadOptions) -> LoadResult {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let workers: Vec<_> = (0..options.connections)
        .map(|_| {
            let path = path.to_owned();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut connection = KeepAlive::connect(port);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    connection.get(&path);
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

/// One keep-alive HTTP/1.1 connection that sends a request at a time.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    body: Vec<u8>,
}

impl KeepAlive {
    pub fn connect(port: u16) -> KeepAlive {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        KeepAlive {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            body: Vec::new(),
        }
    }

    /// GETs `path`, which must answer 200 with a `Content-Length`; returns the body's length.
    pub fn get(&mut self, path: &str) -> u64 {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "GET {path}: {line}");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).unwrap();
        length as u64
    }
}

/// A peer's server process on a port chosen here, for measuring it in the same run; killed when
/// dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    /// A free loopback port to start a peer on.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts `command`, which must listen on `port`, and waits until it does.
    pub fn start(mut command: Command, port: u16) -> Peer {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
        // Wait until it listens (a benchmark may poll; tests may not).
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{command:?} did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Peer { child, port }
    }

    /// Its resident memory, from /proc (Linux).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resident memory of process `pid`, from /proc (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// static-web-server serving `root`, when it is on `PATH` (`cargo install static-web-server`).
pub fn static_web_server(root: &Path) -> Option<Peer> {
    let version = Command::new("static-web-server")
        .arg("--version")
        .output()
        .ok()?;
    if !version.status.success() {
        return None;
    }
    let port = Peer::free_port();
    let mut command = Command::new("static-web-server");
    command
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            "error",
        ])
        .arg("--root")
        .arg(root);
    Some(Peer::start(command, port))
}

/// Vite's dev server on `folder` (kept alive with it), with `server_options` added to its
/// `server` settings (e.g. a proxy), for measuring a peer in the same run.
pub struct Vite {
    pub peer: Peer,
    _folder: tempfile::TempDir,
}

impl Vite {
    pub fn start(binary: &Path, folder: tempfile::TempDir, server_options: &str) -> Vite {
        let port = Peer::free_port();
        let config = format!(
            "export default {{ logLevel: 'silent', clearScreen: false, server: {{ host: '127.0.0.1', port: {port}, strictPort: true, {server_options} }} }};\n"
        );
        std::fs::write(folder.path().join("vite.config.mjs"), config).unwrap();
        let mut command = Command::new(binary);
        command.current_dir(folder.path());
        Vite {
            peer: Peer::start(command, port),
            _folder: folder,
        }
    }
}
