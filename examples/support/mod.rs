//! What the benchmark programs share: building and running the real `liveserve` binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the binary on `root` on a free loopback port, with `extra` arguments.
    pub fn start(binary: &Path, root: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(binary)
            .arg(root)
            .args(["--host", "127.0.0.1", "--port", "0", "-q"])
            .args(extra)
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
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
