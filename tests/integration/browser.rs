//! What a person sees: the real server in-process, pages in headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`). Marked `#[ignore]` so a plain
//! `cargo test` passes without a browser; `cargo test -- --include-ignored` runs them.
//!
//! Conditions are polled every 50 ms up to a deadline; nothing sleeps for a fixed time except the
//! one bounded observation that a page stays put.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::browser_driver::Browser;
use crate::support::{TestServer, site, write};

/// One browser at a time: two cores cannot run several Chromiums and keep the timings sane.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Loaded first by every fixture page: records script errors and warnings, counts page loads,
/// the WebSockets the page opens and the messages they receive.
pub(crate) const PROBE_JS: &str = r#"window.__errors = [];
addEventListener("error", (event) => window.__errors.push(String(event.message)));
sessionStorage.setItem("loads", String(Number(sessionStorage.getItem("loads") || 0) + 1));
window.__warnings = [];
const warn = console.warn.bind(console);
console.warn = (...args) => {
  window.__warnings.push(args.join(" "));
  warn(...args);
};
window.__sockets = 0;
window.__messages = 0;
window.WebSocket = class extends WebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets += 1;
    this.addEventListener("message", () => (window.__messages += 1));
  }
};
"#;

/// A fixture page: the probe, an optional stylesheet, and `body`.
pub(crate) fn page(stylesheet: Option<&str>, body: &str) -> String {
    let link = stylesheet.map_or(String::new(), |href| {
        format!("<link rel=\"stylesheet\" href=\"{href}\">")
    });
    format!(
        "<!doctype html><html><head><script src=\"/probe.js\"></script>{link}<title>t</title></head>\
         <body>{body}</body></html>"
    )
}

/// What the fixture pages let a test observe.
impl Browser {
    pub(crate) async fn loads(&self) -> i64 {
        let value = self
            .eval("return Number(sessionStorage.getItem('loads'))")
            .await;
        value.as_i64().unwrap_or(-1)
    }

    pub(crate) async fn connected(&self) {
        self.wait_until(
            "the client is connected",
            "window.__liveserve && window.__liveserve.connected",
        )
        .await;
    }

    pub(crate) async fn set_marker(&self) {
        self.eval("window.__marker = 1").await;
    }

    pub(crate) async fn has_marker(&self) -> bool {
        self.eval("return window.__marker === 1").await == Value::Bool(true)
    }

    pub(crate) async fn assert_no_errors(&self) {
        let errors = self.eval("return window.__errors").await;
        assert_eq!(errors, json!([]), "script errors on the page");
    }
}

/// A test's server and browser, with the page at `path` open and connected.
pub(crate) struct Session {
    pub(crate) server: TestServer,
    pub(crate) browser: Browser,
    _one_browser: tokio::sync::MutexGuard<'static, ()>,
}

impl Session {
    pub(crate) async fn open(root: TempDir, path: &str) -> Session {
        Session::open_with(root, |_| {}, path).await
    }

    pub(crate) async fn open_with(
        root: TempDir,
        configure: impl FnOnce(&mut liveserve::__private::Config),
        path: &str,
    ) -> Session {
        let one_browser = ONE_BROWSER.lock().await;
        let server = TestServer::start_with(root, configure).await;
        let browser = Browser::start().await;
        browser.open(&url(&server, path)).await;
        browser.connected().await;
        Session {
            server,
            browser,
            _one_browser: one_browser,
        }
    }

    pub(crate) async fn end(self) {
        self.browser.close().await;
        self.server.stop().await;
    }
}

pub(crate) fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

/// Writes a stylesheet that turns the title green, and waits until it shows.
pub(crate) async fn edit_stylesheet_and_wait(browser: &Browser, root: &std::path::Path) {
    write(root, "css/site.css", b"h1 { color: rgb(0, 128, 0); }");
    let color = computed("#title", "color");
    browser
        .wait_until(
            "the new colour applies",
            &format!("{color} === 'rgb(0, 128, 0)'"),
        )
        .await;
}

/// Writes `html` as the index page, and waits until its title reads `title`.
pub(crate) async fn edit_page_and_wait(
    browser: &Browser,
    root: &std::path::Path,
    html: &str,
    title: &str,
) {
    write(root, "index.html", html.as_bytes());
    browser
        .wait_until(
            "the edit applies",
            &format!("document.querySelector('#title').textContent === {title:?}"),
        )
        .await;
}

pub(crate) fn computed(selector: &str, property: &str) -> String {
    format!("getComputedStyle(document.querySelector({selector:?})).{property}")
}

pub(crate) fn standard_site() -> TempDir {
    site(&[
        ("probe.js", PROBE_JS.as_bytes()),
        (
            "index.html",
            page(Some("/css/site.css"), "<h1 id=title>first</h1>").as_bytes(),
        ),
        (
            "other.html",
            page(Some("/css/site.css"), "<h1 id=title>other</h1>").as_bytes(),
        ),
        ("css/site.css", b"h1 { color: rgb(255, 0, 0); }"),
        ("css/unused.css", b"h1 { color: rgb(0, 0, 0); }"),
    ])
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn the_page_loads_and_connects_without_errors() {
    let session = Session::open(standard_site(), "/").await;
    session.browser.assert_no_errors().await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_html_edit_reloads_the_page_with_no_morph() {
    let session = Session::open_with(standard_site(), |config| config.morph = false, "/").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;
    write(
        server.root.path(),
        "index.html",
        page(Some("/css/site.css"), "<h1 id=title>second</h1>").as_bytes(),
    );
    browser
        .wait_until(
            "the new text shows",
            "document.querySelector('#title').textContent === 'second'",
        )
        .await;
    assert!(!browser.has_marker().await, "a real reload");
    assert_eq!(browser.loads().await, 2);
    browser.assert_no_errors().await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_stylesheet_edit_swaps_it_without_a_reload() {
    let session = Session::open(standard_site(), "/").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;
    let color = computed("#title", "color");
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    browser
        .wait_until(
            "the new colour applies",
            &format!("{color} === 'rgb(0, 128, 0)'"),
        )
        .await;
    assert!(browser.has_marker().await, "no reload");
    browser
        .wait_until(
            "the old link is gone",
            "document.querySelectorAll('link[rel=stylesheet]').length === 1",
        )
        .await;

    // A stylesheet this page does not use changes nothing: once its message has arrived, the
    // page still has the same link, the same colour and no reload.
    let messages = browser
        .eval("return window.__messages")
        .await
        .as_i64()
        .unwrap();
    let link = "document.querySelector('link[rel=stylesheet]').href";
    let href = browser.eval(&format!("return {link}")).await;
    write(
        server.root.path(),
        "css/unused.css",
        b"h1 { color: rgb(1, 2, 3); }",
    );
    browser
        .wait_until(
            "the message arrived",
            &format!("window.__messages > {messages}"),
        )
        .await;
    assert_eq!(
        browser.eval(&format!("return {link}")).await,
        href,
        "the link was not swapped"
    );
    assert_eq!(
        browser.eval(&format!("return {color}")).await,
        json!("rgb(0, 128, 0)")
    );
    assert!(browser.has_marker().await);
    assert_eq!(browser.loads().await, 1);
    browser.assert_no_errors().await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_imported_stylesheet_edit_applies_without_a_reload() {
    let root = standard_site();
    write(
        root.path(),
        "css/main.css",
        b"@import \"/css/imported.css\";\n",
    );
    write(
        root.path(),
        "css/imported.css",
        b"h1 { color: rgb(255, 0, 0); }",
    );
    write(
        root.path(),
        "imports.html",
        page(Some("/css/main.css"), "<h1 id=title>imports</h1>").as_bytes(),
    );
    let session = Session::open(root, "/imports.html").await;
    let (server, browser) = (&session.server, &session.browser);
    let color = computed("#title", "color");
    browser
        .wait_until(
            "the imported colour applies",
            &format!("{color} === 'rgb(255, 0, 0)'"),
        )
        .await;
    browser.set_marker().await;
    write(
        server.root.path(),
        "css/imported.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    browser
        .wait_until(
            "the new imported colour applies",
            &format!("{color} === 'rgb(0, 128, 0)'"),
        )
        .await;
    assert!(browser.has_marker().await, "no reload");
    browser.assert_no_errors().await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn the_scroll_position_survives_a_reload() {
    let root = standard_site();
    // The browser's own scroll restoration is off, so only the client can bring it back.
    let long = |text: &str| {
        page(
            None,
            &format!(
                "<script src=\"/manual-scroll.js\"></script><div style=\"height:6000px\">{text}</div>"
            ),
        )
    };
    write(
        root.path(),
        "manual-scroll.js",
        b"history.scrollRestoration = 'manual';",
    );
    write(root.path(), "long.html", long("one").as_bytes());
    let session = Session::open(root, "/long.html").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.eval("window.scrollTo(0, 2500)").await;
    browser
        .wait_until("scrolled", "window.scrollY === 2500")
        .await;
    write(server.root.path(), "long.html", long("two").as_bytes());
    browser
        .wait_until("reloaded", "document.body.textContent.includes('two')")
        .await;
    browser
        .wait_until("the scroll position is back", "window.scrollY === 2500")
        .await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_atomic_save_reloads_and_so_does_the_next_save() {
    let session = Session::open_with(standard_site(), |config| config.morph = false, "/").await;
    let browser = &session.browser;
    let root = session.server.root.path().to_path_buf();
    write(
        &root,
        "index.html.tmp",
        page(None, "<h1 id=title>atomic</h1>").as_bytes(),
    );
    std::fs::rename(root.join("index.html.tmp"), root.join("index.html")).unwrap();
    browser
        .wait_until(
            "the atomic save shows",
            "document.querySelector('#title').textContent === 'atomic'",
        )
        .await;
    browser.connected().await;
    write(
        &root,
        "index.html",
        page(None, "<h1 id=title>normal</h1>").as_bytes(),
    );
    browser
        .wait_until(
            "the normal save shows",
            "document.querySelector('#title').textContent === 'normal'",
        )
        .await;
    assert_eq!(browser.loads().await, 3);
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_burst_of_thirty_writes_is_one_reload() {
    let session = Session::open_with(standard_site(), |config| config.morph = false, "/").await;
    let browser = &session.browser;
    let root = session.server.root.path().to_path_buf();
    // The page itself and 29 files it does not use: one reload.
    write(
        &root,
        "index.html",
        page(Some("/css/site.css"), "<h1 id=title>burst</h1>").as_bytes(),
    );
    for i in 0..29 {
        write(&root, &format!("gen/part{i}.js"), b"x");
    }
    browser
        .wait_until("reloaded", "Number(sessionStorage.getItem('loads')) >= 2")
        .await;
    browser.connected().await;
    // Messages arrive in order: once a later stylesheet change has applied, any reload the
    // burst could still cause would have happened.
    let color = computed("#title", "color");
    write(&root, "css/site.css", b"h1 { color: rgb(0, 0, 255); }");
    browser
        .wait_until(
            "the sentinel colour applies",
            &format!("{color} === 'rgb(0, 0, 255)'"),
        )
        .await;
    assert_eq!(browser.loads().await, 2, "exactly one reload for the burst");
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_restarted_server_reloads_the_page_once() {
    let mut session = Session::open(standard_site(), "/").await;
    session.server = session.server.restart(|_| {}).await;
    let browser = &session.browser;
    browser
        .wait_until(
            "reloaded after the restart",
            "Number(sessionStorage.getItem('loads')) === 2",
        )
        .await;
    browser.connected().await;
    // The one bounded observation: the page stays put for the next two seconds.
    let watched_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watched_until {
        assert_eq!(browser.loads().await, 2, "no reload loop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session.end().await;
}

/// A TCP proxy whose connections can be cut, to drop a page's socket without a restart, and
/// which can refuse new ones (closes them at once), to look like a server that is away.
struct CuttableProxy {
    addr: SocketAddr,
    connections: Arc<Mutex<JoinSet<()>>>,
    refusing: Arc<AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let (tracked, refuse) = (connections.clone(), refusing.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                tracked.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        CuttableProxy {
            addr,
            connections,
            refusing,
            accept,
        }
    }

    fn cut(&self) {
        self.connections.lock().unwrap().abort_all();
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The standard site open in Chromium through a [`CuttableProxy`], connected, with the marker set.
struct ProxiedPage {
    _one: tokio::sync::MutexGuard<'static, ()>,
    server: TestServer,
    proxy: CuttableProxy,
    browser: Browser,
}

impl ProxiedPage {
    async fn open() -> ProxiedPage {
        let one = ONE_BROWSER.lock().await;
        let server = TestServer::start(standard_site()).await;
        let proxy = CuttableProxy::start(server.addr).await;
        let browser = Browser::start().await;
        browser.open(&format!("http://{}/", proxy.addr)).await;
        browser.connected().await;
        browser.set_marker().await;
        ProxiedPage {
            _one: one,
            server,
            proxy,
            browser,
        }
    }

    async fn end(self) {
        self.browser.close().await;
        drop(self.proxy);
        self.server.stop().await;
    }
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_dropped_connection_with_nothing_missed_does_not_reload() {
    let page = ProxiedPage::open().await;
    let (browser, proxy) = (&page.browser, &page.proxy);
    proxy.cut();
    browser
        .wait_until(
            "reconnected",
            "window.__liveserve.connects === 2 && window.__liveserve.connected",
        )
        .await;
    assert!(browser.has_marker().await, "no reload");
    assert_eq!(browser.loads().await, 1);
    page.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_server_away_for_several_attempts_is_reached_again_over_websocket() {
    let page = ProxiedPage::open().await;
    let (browser, proxy) = (&page.browser, &page.proxy);
    proxy.refuse(true);
    proxy.cut();
    // Two attempts fail while it is away, and a third starts: failures that, were the server
    // there, would mean that upgrades do not get through and send the page to the event stream.
    browser
        .wait_until("two attempts failed", "window.__sockets >= 4")
        .await;
    proxy.refuse(false);
    browser
        .wait_until("reconnected", "window.__liveserve.connected")
        .await;
    assert_eq!(
        browser.eval("return window.__liveserve.transport").await,
        "websocket"
    );
    assert!(browser.has_marker().await, "nothing was missed: no reload");
    page.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn two_tabs_on_different_pages_both_get_a_shared_stylesheet() {
    let session = Session::open(standard_site(), "/").await;
    let (server, browser) = (&session.server, &session.browser);
    let client = browser.client();
    let first = client.window().await.unwrap();
    let second = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(second.clone()).await.unwrap();
    browser.open(&url(server, "/other.html")).await;
    browser.connected().await;
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    let applied = format!("{} === 'rgb(0, 128, 0)'", computed("#title", "color"));
    browser.wait_until("the second tab updates", &applied).await;
    client.switch_to_window(first).await.unwrap();
    browser.wait_until("the first tab updates", &applied).await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn pages_without_tags_or_with_body_in_a_script_stay_intact_and_reload() {
    let _one = ONE_BROWSER.lock().await;
    let root = standard_site();
    write(
        root.path(),
        "bare.html",
        b"<script src=\"/probe.js\"></script><p id=text>bare one</p>",
    );
    let tricky = |text: &str| {
        format!(
            "<html><head><script src=\"/probe.js\"></script></head><body><p id=text>{text}</p>\
             <script>window.__tricky = \"</body>\".length;</script></body></html>"
        )
    };
    write(root.path(), "tricky.html", tricky("tricky one").as_bytes());
    let server = TestServer::start(root).await;
    let browser = Browser::start().await;

    browser.open(&url(&server, "/bare.html")).await;
    browser.connected().await;
    write(
        server.root.path(),
        "bare.html",
        b"<script src=\"/probe.js\"></script><p id=text>bare two</p>",
    );
    browser
        .wait_until(
            "the bare page reloads",
            "document.querySelector('#text').textContent === 'bare two'",
        )
        .await;
    browser.assert_no_errors().await;

    browser.open(&url(&server, "/tricky.html")).await;
    browser.connected().await;
    assert_eq!(
        browser.eval("return window.__tricky").await,
        json!(7),
        "the script ran intact"
    );
    write(
        server.root.path(),
        "tricky.html",
        tricky("tricky two").as_bytes(),
    );
    browser
        .wait_until(
            "the tricky page reloads",
            "document.querySelector('#text').textContent === 'tricky two'",
        )
        .await;
    assert_eq!(browser.eval("return window.__tricky").await, json!(7));
    browser.assert_no_errors().await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_strict_content_security_policy_still_reloads() {
    let root = standard_site();
    let csp = |text: &str| {
        format!(
            "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" \
             content=\"default-src 'self'\"><script src=\"/probe.js\"></script></head>\
             <body><p id=text>{text}</p></body></html>"
        )
    };
    write(root.path(), "csp.html", csp("csp one").as_bytes());
    let session = Session::open(root, "/csp.html").await;
    let (server, browser) = (&session.server, &session.browser);
    write(server.root.path(), "csp.html", csp("csp two").as_bytes());
    browser
        .wait_until(
            "reloaded",
            "document.querySelector('#text').textContent === 'csp two'",
        )
        .await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn the_404_page_shows_the_file_once_it_exists() {
    let session = Session::open(standard_site(), "/later.html").await;
    let (server, browser) = (&session.server, &session.browser);
    assert!(
        browser
            .eval("return document.title")
            .await
            .as_str()
            .unwrap()
            .contains("404")
    );
    write(
        server.root.path(),
        "later.html",
        page(None, "<p id=text>it exists now</p>").as_bytes(),
    );
    browser
        .wait_until(
            "the new file shows",
            "document.querySelector('#text').textContent === 'it exists now'",
        )
        .await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn full_reload_reloads_for_a_stylesheet() {
    let session =
        Session::open_with(standard_site(), |config| config.full_reload = true, "/").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    browser
        .wait_until("reloaded", "Number(sessionStorage.getItem('loads')) === 2")
        .await;
    assert!(!browser.has_marker().await);
    browser
        .wait_until(
            "the new colour applies",
            &format!("{} === 'rgb(0, 128, 0)'", computed("#title", "color")),
        )
        .await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_page_with_the_client_twice_starts_it_once() {
    let root = standard_site();
    let twice = |text: &str| {
        let tag = "<script src=\"/__liveserve/client.js\"></script>";
        format!(
            "<html><head><script src=\"/probe.js\"></script>{tag}</head>\
             <body><p id=text>{text}</p>{tag}</body></html>"
        )
    };
    write(root.path(), "twice.html", twice("one").as_bytes());
    let session = Session::open(root, "/twice.html").await;
    let browser = &session.browser;
    let one_socket = "window.__sockets === 1";
    assert_eq!(
        browser.eval(&format!("return {one_socket}")).await,
        json!(true)
    );
    write(
        session.server.root.path(),
        "twice.html",
        twice("two").as_bytes(),
    );
    browser
        .wait_until(
            "reloaded",
            "document.querySelector('#text').textContent === 'two'",
        )
        .await;
    browser.connected().await;
    assert_eq!(browser.loads().await, 2, "one client, one reload");
    assert_eq!(
        browser.eval(&format!("return {one_socket}")).await,
        json!(true)
    );
    browser.assert_no_errors().await;
    session.end().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_page_that_never_connects_warns_and_stays_put() {
    let _one = ONE_BROWSER.lock().await;
    // No WebSocket slots at all: every handshake gets 503.
    let server =
        TestServer::start_with(standard_site(), |config| config.max_websocket_clients = 0).await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/")).await;
    browser
        .wait_until(
            "the client warns",
            "window.__warnings.some((w) => w.startsWith('[liveserve]'))",
        )
        .await;
    // Retries keep failing (the socket twice, then the event stream); none reloads the page.
    browser
        .wait_until("it retried", "window.__sockets >= 2")
        .await;
    assert_eq!(browser.loads().await, 1);
    assert_eq!(
        browser.eval("return window.__liveserve.connected").await,
        json!(false)
    );
    browser.close().await;
    server.stop().await;
}
