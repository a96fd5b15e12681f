//! Running the real server in-process and talking raw HTTP/1.1 to it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use liveserve::__private::Config;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A folder with the given files (paths relative to it; parent folders are created).
pub fn site(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().expect("creating a temporary folder");
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

pub fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The real server, running in this test's runtime on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(root: TempDir) -> Self {
        Self::start_with(root, |_| {}).await
    }

    pub async fn start_with(root: TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, root, configure)
    }

    /// [`TestServer::start_with`] listening on every interface, so requests can come from
    /// another address than loopback.
    pub async fn start_exposed(root: TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
        Self::start_on(listener, root, configure)
    }

    /// Serves the folder `below` inside `holder`, so a test can put things next to the root.
    pub async fn start_below(
        holder: TempDir,
        below: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let served = holder.path().join(below);
        Self::start_with(holder, |config| {
            config.root = served;
            configure(config);
        })
        .await
    }

    fn start_on(listener: TcpListener, root: TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(root.path());
        configure(&mut config);
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(liveserve::__private::app::run(
            config,
            vec![listener],
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            root,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A GET with no extra headers.
    pub async fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[]).await
    }

    pub async fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        self.request_as("localhost", method, target, headers).await
    }

    /// [`TestServer::request`] with `host` as the `Host` header.
    pub async fn request_as(
        &self,
        host: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut raw =
            format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        self.send_raw(raw.as_bytes()).await
    }

    /// Sends bytes exactly as given and reads one response: its head, then `Content-Length`
    /// bytes of body, or everything until the server closes when there is no length.
    pub async fn send_raw(&self, raw: &[u8]) -> Reply {
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await.unwrap();
            // The server may answer (and close) before reading everything, e.g. for oversize
            // headers; the answer is what counts.
            let _ = stream.write_all(raw).await;
            let mut received = Vec::new();
            let mut chunk = [0; 16 * 1024];
            loop {
                if Reply::complete_length(&received).is_some_and(|total| received.len() >= total) {
                    break;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => received.extend_from_slice(&chunk[..read]),
                }
            }
            received
        };
        let received = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .expect("the server answered in time");
        Reply::parse(&received)
    }

    /// Stops this server and starts a new one (a new process, as far as pages can tell) on the
    /// same address and folder.
    pub async fn restart(mut self, configure: impl FnOnce(&mut Config)) -> Self {
        self.shut_down().await;
        let root = std::mem::replace(&mut self.root, tempfile::tempdir().unwrap());
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the port is free again");
        Self::start_on(listener, root, configure)
    }

    /// Asks the server to stop and waits until `app::run` has returned.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let task = self.task.take().unwrap();
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the server stopped in time")
            .expect("the server task did not panic")
            .expect("the server returned no error");
    }

    pub fn stop_signal(&mut self) -> oneshot::Sender<()> {
        self.stop.take().unwrap()
    }

    pub fn task(&mut self) -> JoinHandle<anyhow::Result<()>> {
        self.task.take().unwrap()
    }
}

/// An HTTP response as it came off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("headers are text");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// The length of a complete response (head and body) once its head has arrived and it
    /// announces a `Content-Length`.
    fn complete_length(received: &[u8]) -> Option<usize> {
        let head_end = received
            .windows(4)
            .position(|window| window == b"\r\n\r\n")?
            + 4;
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        Some(head_end + length)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is UTF-8")
    }

    /// `Content-Length` as sent, checked against the bytes that actually arrived.
    pub fn assert_length_matches(&self) {
        let length: usize = self
            .header("content-length")
            .expect("a Content-Length header")
            .parse()
            .unwrap();
        assert_eq!(
            length,
            self.body.len(),
            "Content-Length must equal the bytes sent"
        );
    }
}

/// Percent-encodes every byte that is not ASCII alphanumeric, as a strict client might.
pub fn encode(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}
