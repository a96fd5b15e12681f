//! Headless Chromium driven through chromedriver (Debian's `chromium` and `chromium-driver`).
//! Shared by the browser tests and the browser mode of `examples/bench_reload.rs`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long any wait on the browser may take.
pub const WAIT: Duration = Duration::from_secs(10);
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more command-line switches for Chromium.
    pub async fn start_with(extra: &[String]) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "browser tests need Chromium and its driver: apt-get install -y chromium chromium-driver"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so cleanup can end chromedriver and every browser process
            // it started, and nothing else.
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            client: None,
            driver,
            _profile: profile,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,800",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let attempt = ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(client) => break client,
                // chromedriver is still starting: retry until the deadline.
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("chromedriver did not start a browser: {error}"),
            }
        };
        browser.client = Some(client);
        browser
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub async fn open(&self, url: &str) {
        self.client().goto(url).await.expect("the page loads");
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or(Value::Null)
    }

    /// Polls `condition` (a JS expression) until it is true; panics after the deadline.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        self.wait_until_within(WAIT, what, condition).await;
    }

    /// Polls `condition` (a JS expression) every 50 ms until it is true; panics after `within`.
    pub async fn wait_until_within(&self, within: Duration, what: &str, condition: &str) {
        let deadline = Instant::now() + within;
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        while Instant::now() < deadline {
            if self.eval(&script).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} did not happen within {within:?} ({condition})");
    }

    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Kill chromedriver's process group by its own id, even when a test panicked.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
