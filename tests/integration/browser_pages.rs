//! Smarter pages (issue 11), as a person sees them in headless Chromium: an edit of a page's own
//! HTML applied in place (what was typed and scrolled stays), scripts that force a reload,
//! only the tabs a change affects, images swapped, no change missed while a page loads, the
//! event stream where WebSocket upgrades do not get through, the page's errors in the terminal,
//! and no reload into another project. Marked `#[ignore]` like the other browser tests.
//!
//! Absence is proven with a later change that must arrive and apply: a tab handles its messages
//! in order, so once the later one has applied, the earlier one did all it was going to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use fantoccini::Locator;
use liveserve::__private::protocol::ServerMessage;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::browser::{ONE_BROWSER, PROBE_JS, Session, computed, page, standard_site, url};
use crate::browser_driver::{Browser, WAIT};
use crate::cli::{Running, liveserve, port_of, stderr_lines};
use crate::support::{TestServer, site, write};

/// A page of the standard site with its own `<title>`: the probe, the site's stylesheet, `body`.
fn titled(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><script src=\"/probe.js\"></script>\
         <link rel=\"stylesheet\" href=\"/css/site.css\"><title>{title}</title></head>\
         <body>{body}</body></html>"
    )
}

/// The standard site with `path` holding `html`.
fn site_with(path: &str, html: &str) -> TempDir {
    let root = standard_site();
    write(root.path(), path, html.as_bytes());
    root
}

async fn text(browser: &Browser, selector: &str) -> Value {
    browser
        .eval(&format!(
            "const found = document.querySelector({selector:?}); return found && found.textContent"
        ))
        .await
}

async fn number(browser: &Browser, expression: &str) -> i64 {
    let value = browser.eval(&format!("return {expression}")).await;
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{expression} is not a number: {value}"))
}

async fn morphs(browser: &Browser) -> i64 {
    number(browser, "window.__liveserve.morphs").await
}

async fn generation(browser: &Browser) -> i64 {
    number(browser, "window.__liveserve.generation").await
}

async fn note_shown(browser: &Browser) -> bool {
    browser
        .eval("return document.querySelector('[data-liveserve-note]') !== null")
        .await
        == Value::Bool(true)
}

/// Waits until the tab has reloaded to its `loads`-th load and its client is connected again.
async fn reloaded_to(browser: &Browser, loads: i64) {
    browser
        .wait_until(
            &format!("load number {loads}"),
            &format!("Number(sessionStorage.getItem('loads')) === {loads}"),
        )
        .await;
    browser.connected().await;
}

/// Asserts the tab was updated in place: same document, one load, `morphs` in-place updates.
async fn assert_in_place(browser: &Browser, morph_count: i64) {
    assert!(
        browser.has_marker().await,
        "no navigation: the marker survives"
    );
    assert_eq!(browser.loads().await, 1, "no navigation: still one load");
    assert_eq!(
        morphs(browser).await,
        morph_count,
        "window.__liveserve.morphs"
    );
}

// 1. In-place HTML edit --------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_edit_of_the_pages_own_html_applies_in_place() {
    let before = "<h1 id=title>first</h1><p id=gone>gone soon</p>";
    let root = site_with("page.html", &titled("first title", before));
    let session = Session::open(root, "/page.html").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;

    let edited = "<h1 id=title>second</h1><p id=gone>gone soon</p>";
    write(
        server.root.path(),
        "page.html",
        titled("first title", edited).as_bytes(),
    );
    browser
        .wait_until(
            "the new text shows",
            "document.querySelector('#title').textContent === 'second'",
        )
        .await;
    assert_in_place(browser, 1).await;

    // An element added and one removed.
    let restructured = "<h1 id=title>second</h1><p id=added>added</p>";
    write(
        server.root.path(),
        "page.html",
        titled("first title", restructured).as_bytes(),
    );
    browser
        .wait_until(
            "the element is added",
            "document.querySelector('#added') !== null",
        )
        .await;
    assert_eq!(text(browser, "#added").await, json!("added"));
    assert_eq!(text(browser, "#gone").await, Value::Null, "removed");
    assert_in_place(browser, 2).await;

    // The title.
    write(
        server.root.path(),
        "page.html",
        titled("second title", restructured).as_bytes(),
    );
    browser
        .wait_until("the third edit applies", "window.__liveserve.morphs >= 3")
        .await;
    assert_eq!(
        browser.eval("return document.title").await,
        json!("second title"),
        "document.title after the <title> edit"
    );
    assert_in_place(browser, 3).await;
    browser.assert_no_errors().await;
    session.end().await;
}

// 2. What the user typed survives ----------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn what_the_user_typed_survives_an_edit_even_of_that_fields_value() {
    let form = |text: &str, value: &str| {
        titled(
            "form",
            &format!("<p id=text>{text}</p><input id=name value=\"{value}\">"),
        )
    };
    let root = site_with("form.html", &form("one", "from the file"));
    let session = Session::open(root, "/form.html").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;
    let field = browser.client().find(Locator::Css("#name")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("typed by hand").await.unwrap();
    let typed = "return document.querySelector('#name').value";
    assert_eq!(browser.eval(typed).await, json!("typed by hand"));

    // Another text of the page changes: the field keeps what was typed, no notice.
    write(
        server.root.path(),
        "form.html",
        form("two", "from the file").as_bytes(),
    );
    browser
        .wait_until(
            "the other text updates",
            "document.querySelector('#text').textContent === 'two'",
        )
        .await;
    assert_eq!(browser.eval(typed).await, json!("typed by hand"));
    assert_in_place(browser, 1).await;
    assert!(
        !note_shown(browser).await,
        "no notice when the file left the field alone"
    );

    // The file changes the field's value: what was typed still wins, and a notice says so.
    write(
        server.root.path(),
        "form.html",
        form("three", "changed in the file").as_bytes(),
    );
    browser
        .wait_until(
            "the other text updates again",
            "document.querySelector('#text').textContent === 'three'",
        )
        .await;
    assert_eq!(browser.eval(typed).await, json!("typed by hand"));
    assert!(note_shown(browser).await, "a [data-liveserve-note] notice");
    assert_eq!(
        browser.eval("return document.activeElement.id").await,
        json!("name"),
        "the field keeps the focus"
    );
    assert_in_place(browser, 2).await;
    browser.assert_no_errors().await;
    session.end().await;
}

// 3. Scroll inside a scrolled element ------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_edit_elsewhere_keeps_an_elements_scroll_and_the_windows() {
    let scrolled = |text: &str| {
        titled(
            "scroll",
            &format!(
                "<p id=text>{text}</p>\
                 <div id=box style=\"height:100px;overflow:auto\"><div style=\"height:2000px\">tall</div></div>\
                 <div style=\"height:5000px\"></div>"
            ),
        )
    };
    let root = site_with("scroll.html", &scrolled("one"));
    let session = Session::open(root, "/scroll.html").await;
    let (server, browser) = (&session.server, &session.browser);
    browser.set_marker().await;
    browser
        .eval("document.querySelector('#box').scrollTop = 300; window.scrollTo(0, 700)")
        .await;
    let both = "document.querySelector('#box').scrollTop === 300 && window.scrollY === 700";
    browser.wait_until("scrolled", both).await;

    write(
        server.root.path(),
        "scroll.html",
        scrolled("two").as_bytes(),
    );
    browser
        .wait_until(
            "the new text shows",
            "document.querySelector('#text').textContent === 'two'",
        )
        .await;
    assert_eq!(
        number(browser, "document.querySelector('#box').scrollTop").await,
        300
    );
    assert_eq!(number(browser, "window.scrollY").await, 700);
    assert_in_place(browser, 1).await;
    session.end().await;
}

// 4. Scripts force a reload ----------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn an_edit_that_adds_changes_or_removes_a_script_reloads() {
    let scripted = |scripts: &str| titled("scripts", &format!("<p id=text>text</p>{scripts}"));
    let external = |name: &str| format!("<script src=\"/js/{name}.js\"></script>");
    let inline = |value: u8| format!("<script>window.__inline = {value};</script>");
    let root = site_with("scripts.html", &scripted(&external("one")));
    write(root.path(), "js/one.js", b"window.__external = 'one';");
    write(root.path(), "js/two.js", b"window.__external = 'two';");
    let session = Session::open(root, "/scripts.html").await;
    let (server, browser) = (&session.server, &session.browser);
    let edits = [
        ("an inline script added", external("one") + &inline(1)),
        ("an inline script changed", external("one") + &inline(2)),
        (
            "an external script's src changed",
            external("two") + &inline(2),
        ),
        ("an inline script removed", external("two")),
    ];
    for (loads, (what, scripts)) in (2..).zip(edits) {
        browser.set_marker().await;
        write(
            server.root.path(),
            "scripts.html",
            scripted(&scripts).as_bytes(),
        );
        reloaded_to(browser, loads).await;
        assert!(!browser.has_marker().await, "{what}: a real reload");
    }
    assert_eq!(
        browser
            .eval("return [window.__external, window.__inline === undefined]")
            .await,
        json!(["two", true]),
        "the last version's scripts ran"
    );
    // With `config.morph = false` a text edit reloads too:
    // browser::an_html_edit_reloads_the_page_with_no_morph.
    browser.assert_no_errors().await;
    session.end().await;
}

// 5. Only the affected tabs ----------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_change_updates_only_the_tabs_it_affects() {
    let a_page = |text: &str| {
        titled(
            "a",
            &format!("<h1 id=title>{text}</h1><script src=\"/js/a.js\"></script>"),
        )
    };
    let b_page = |text: &str| titled("b", &format!("<h1 id=title>{text}</h1>"));
    let root = site_with("a.html", &a_page("a one"));
    write(root.path(), "b.html", b_page("b one").as_bytes());
    write(root.path(), "js/a.js", b"window.__a = 1;");
    write(root.path(), "js/unused.js", b"window.__unused = 1;");
    let session = Session::open(root, "/a.html").await;
    let (server, browser) = (&session.server, &session.browser);
    let client = browser.client();
    browser.set_marker().await;
    let a = client.window().await.unwrap();
    let b = client.new_window(false).await.unwrap().handle;
    client.switch_to_window(b.clone()).await.unwrap();
    browser.open(&url(server, "/b.html")).await;
    browser.connected().await;
    browser.set_marker().await;

    // B's own HTML: B updates in place; A hears of it (its generation advances) and stays.
    client.switch_to_window(a.clone()).await.unwrap();
    let a_generation = generation(browser).await;
    client.switch_to_window(b.clone()).await.unwrap();
    write(server.root.path(), "b.html", b_page("b two").as_bytes());
    browser
        .wait_until(
            "B shows its new text",
            "document.querySelector('#title').textContent === 'b two'",
        )
        .await;
    assert_in_place(browser, 1).await;
    client.switch_to_window(a.clone()).await.unwrap();
    browser
        .wait_until(
            "A's generation advances",
            &format!("window.__liveserve.generation > {a_generation}"),
        )
        .await;
    assert_eq!(text(browser, "#title").await, json!("a one"));

    // A script no page loads: no tab changes. Sentinel: the stylesheet both load, swapped in
    // both tabs after that message, with both still on their first load.
    let a_generation = generation(browser).await;
    write(server.root.path(), "js/unused.js", b"window.__unused = 2;");
    browser
        .wait_until(
            "A hears of the unused script",
            &format!("window.__liveserve.generation > {a_generation}"),
        )
        .await;
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    let green = format!("{} === 'rgb(0, 128, 0)'", computed("#title", "color"));
    browser
        .wait_until("A's stylesheet is swapped", &green)
        .await;
    assert_in_place(browser, 0).await;
    client.switch_to_window(b.clone()).await.unwrap();
    browser
        .wait_until("B's stylesheet is swapped", &green)
        .await;
    assert_in_place(browser, 1).await;

    // A script A loads: A reloads, B stays (sentinel: B's own edit, applied in place).
    write(server.root.path(), "js/a.js", b"window.__a = 2;");
    client.switch_to_window(a.clone()).await.unwrap();
    reloaded_to(browser, 2).await;
    assert!(!browser.has_marker().await, "A really reloaded");
    assert_eq!(browser.eval("return window.__a").await, json!(2));
    client.switch_to_window(b.clone()).await.unwrap();
    write(server.root.path(), "b.html", b_page("b three").as_bytes());
    browser
        .wait_until(
            "B shows its third text",
            "document.querySelector('#title').textContent === 'b three'",
        )
        .await;
    assert_in_place(browser, 2).await;
    browser.assert_no_errors().await;
    session.end().await;
}

// 6. Images swap in place ------------------------------------------------------------------------

fn svg(width: u32) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"10\">\
         <rect width=\"{width}\" height=\"10\" fill=\"red\"/></svg>"
    )
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_rewritten_image_is_swapped_in_place() {
    let root = site_with(
        "image.html",
        &titled("image", "<img id=pic src=\"/img/a.svg\">"),
    );
    write(root.path(), "img/a.svg", svg(10).as_bytes());
    let session = Session::open(root, "/image.html").await;
    let (server, browser) = (&session.server, &session.browser);
    let picture = "document.querySelector('#pic')";
    browser
        .wait_until(
            "the first image shows",
            &format!("{picture}.complete && {picture}.naturalWidth === 10"),
        )
        .await;
    browser.set_marker().await;
    write(server.root.path(), "img/a.svg", svg(40).as_bytes());
    browser
        .wait_until(
            "the new image shows",
            &format!("{picture}.complete && {picture}.naturalWidth === 40"),
        )
        .await;
    let src = browser
        .eval(&format!("return {picture}.getAttribute('src')"))
        .await;
    let src = src.as_str().unwrap_or_default();
    assert!(src.contains("/img/a.svg?"), "a cache-busting query: {src}");
    assert!(browser.has_marker().await, "no navigation");
    assert_eq!(browser.loads().await, 1);
    browser.assert_no_errors().await;
    session.end().await;
}

// A TCP proxy that sees the first request of each connection ---------------------------------------

/// What [`GateProxy`] does with a WebSocket upgrade request.
#[derive(Clone, Copy)]
enum Upgrades {
    /// Answers 502 itself and closes, as a network that drops upgrades does.
    Refuse,
    /// Holds the request until [`GateProxy::release`], then passes it on.
    Hold,
}

#[derive(Default)]
struct Counts {
    upgrades: AtomicUsize,
    events_open: AtomicUsize,
    events_most: AtomicUsize,
    events_total: AtomicUsize,
}

/// A TCP proxy in front of the server: passes everything through except WebSocket upgrades
/// (refused or held), and counts the `/__liveserve/events` requests open at once (an event
/// stream never ends, so it holds its connection until the connection closes).
struct GateProxy {
    addr: std::net::SocketAddr,
    counts: Arc<Counts>,
    released: watch::Sender<bool>,
    connections: Arc<std::sync::Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

const EVENTS_REQUEST: &[u8] = b"GET /__liveserve/events";

impl GateProxy {
    async fn start(target: std::net::SocketAddr, upgrades: Upgrades) -> GateProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let (released, _) = watch::channel(false);
        let connections = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let (tracked, shared, gate) = (connections.clone(), counts.clone(), released.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (counts, gate) = (shared.clone(), gate.subscribe());
                tracked
                    .lock()
                    .unwrap()
                    .spawn(relay(inbound, target, upgrades, counts, gate));
            }
        });
        GateProxy {
            addr,
            counts,
            released,
            connections,
            accept,
        }
    }

    fn release(&self) {
        self.released.send_replace(true);
    }

    fn upgrades(&self) -> usize {
        self.counts.upgrades.load(Ordering::SeqCst)
    }
}

impl Drop for GateProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.connections.lock().unwrap().abort_all();
    }
}

/// Counts an open event stream until dropped (its connection closed).
struct OpenStream(Arc<Counts>);

impl OpenStream {
    fn new(counts: Arc<Counts>) -> OpenStream {
        counts.events_total.fetch_add(1, Ordering::SeqCst);
        let open = counts.events_open.fetch_add(1, Ordering::SeqCst) + 1;
        counts.events_most.fetch_max(open, Ordering::SeqCst);
        OpenStream(counts)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.events_open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn relay(
    mut inbound: TcpStream,
    target: std::net::SocketAddr,
    upgrades: Upgrades,
    counts: Arc<Counts>,
    mut released: watch::Receiver<bool>,
) {
    // The first request's head decides (a browser opens a WebSocket on a connection of its own).
    let mut head = Vec::new();
    let mut chunk = [0; 16 * 1024];
    while !contains(&head, b"\r\n\r\n") {
        match inbound.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
    if contains(&head.to_ascii_lowercase(), b"upgrade: websocket") {
        counts.upgrades.fetch_add(1, Ordering::SeqCst);
        match upgrades {
            Upgrades::Refuse => {
                let _ = inbound
                    .write_all(
                        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                return;
            }
            Upgrades::Hold => {
                if released.wait_for(|released| *released).await.is_err() {
                    return;
                }
            }
        }
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (mut from_browser, mut to_browser) = inbound.split();
    let (mut from_server, mut to_server) = outbound.split();
    // Browser to server, watching for an event stream request (on a kept-alive connection too).
    let up = async {
        let mut stream: Option<OpenStream> = None;
        let mut seen = head;
        if to_server.write_all(&seen).await.is_err() {
            return;
        }
        loop {
            if stream.is_none() && contains(&seen, EVENTS_REQUEST) {
                stream = Some(OpenStream::new(counts.clone()));
            }
            // Keep only what could be the start of a request line split across reads.
            let keep_from = seen.len().saturating_sub(EVENTS_REQUEST.len());
            seen.drain(..keep_from);
            match from_browser.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    if to_server.write_all(&chunk[..read]).await.is_err() {
                        return;
                    }
                    seen.extend_from_slice(&chunk[..read]);
                }
            }
        }
    };
    let down = tokio::io::copy(&mut from_server, &mut to_browser);
    tokio::select! {
        () = up => {}
        _ = down => {}
    }
}

// 7. No change missed while loading ----------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_change_between_serving_a_page_and_its_hello_reloads_it_once() {
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(standard_site()).await;
    let proxy = GateProxy::start(server.addr, Upgrades::Hold).await;
    let (mut watcher, _) = crate::reload::Client::connect(&server).await;
    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", proxy.addr)).await;
    // Served and running, its socket held back at the proxy.
    browser
        .wait_until("the client started", "window.__liveserve !== undefined")
        .await;
    assert_eq!(
        browser
            .eval("return [window.__liveserve.connected, window.__liveserve.server]")
            .await,
        json!([false, null]),
        "no hello yet"
    );
    let served_at = "document.querySelector('script[src=\"/__liveserve/client.js\"][data-path]').dataset.generation";
    assert_eq!(
        browser.eval(&format!("return {served_at}")).await,
        json!("0"),
        "the tag carries the generation the page was served at"
    );
    browser.set_marker().await;
    write(
        server.root.path(),
        "index.html",
        page(
            Some("/css/site.css"),
            "<h1 id=title>changed while loading</h1>",
        )
        .as_bytes(),
    );
    let message = watcher.next().await;
    assert!(
        matches!(message, ServerMessage::Reload { .. }),
        "the change went out before the page's hello: {message:?}"
    );
    proxy.release();

    browser
        .wait_until(
            "the new content shows",
            "document.querySelector('#title').textContent === 'changed while loading'",
        )
        .await;
    browser.connected().await;
    assert!(!browser.has_marker().await, "a real reload");
    assert_eq!(browser.loads().await, 2);
    assert_eq!(
        browser.eval(&format!("return {served_at}")).await,
        json!("1")
    );
    assert!(proxy.upgrades() >= 1, "the socket went through the proxy");
    // Once: a later stylesheet change applies with no second reload.
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 0, 255); }",
    );
    browser
        .wait_until(
            "the sentinel colour applies",
            &format!("{} === 'rgb(0, 0, 255)'", computed("#title", "color")),
        )
        .await;
    assert_eq!(browser.loads().await, 2, "reloaded exactly once");
    browser.assert_no_errors().await;
    browser.close().await;
    drop(proxy);
    server.stop().await;
}

// 8. The event stream where WebSocket upgrades do not get through ----------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn behind_a_proxy_that_refuses_websockets_the_page_uses_the_event_stream() {
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(standard_site()).await;
    let proxy = GateProxy::start(server.addr, Upgrades::Refuse).await;
    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", proxy.addr)).await;
    browser.connected().await;
    assert_eq!(
        browser.eval("return window.__liveserve.transport").await,
        json!("events")
    );
    assert!(proxy.upgrades() >= 1, "it tried a WebSocket first");
    browser.set_marker().await;
    write(
        server.root.path(),
        "index.html",
        page(Some("/css/site.css"), "<h1 id=title>over events</h1>").as_bytes(),
    );
    browser
        .wait_until(
            "the edit applies",
            "document.querySelector('#title').textContent === 'over events'",
        )
        .await;
    assert_in_place(&browser, 1).await;
    browser.assert_no_errors().await;
    browser.close().await;
    drop(proxy);
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn two_tabs_share_one_event_stream_and_both_get_the_change() {
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(standard_site()).await;
    let proxy = GateProxy::start(server.addr, Upgrades::Refuse).await;
    let browser = Browser::start().await;
    let client = browser.client();
    browser.open(&format!("http://{}/", proxy.addr)).await;
    browser.connected().await;
    let first = client.window().await.unwrap();
    let second = client.new_window(false).await.unwrap().handle;
    client.switch_to_window(second.clone()).await.unwrap();
    browser
        .open(&format!("http://{}/other.html", proxy.addr))
        .await;
    browser.connected().await;
    assert_eq!(
        browser.eval("return window.__liveserve.transport").await,
        json!("events")
    );
    write(
        server.root.path(),
        "css/site.css",
        b"h1 { color: rgb(0, 128, 0); }",
    );
    let green = format!("{} === 'rgb(0, 128, 0)'", computed("#title", "color"));
    browser.wait_until("the second tab updates", &green).await;
    client.switch_to_window(first).await.unwrap();
    browser.wait_until("the first tab updates", &green).await;
    let counts = &proxy.counts;
    assert_eq!(
        counts.events_most.load(Ordering::SeqCst),
        1,
        "one /__liveserve/events request open at a time ({} made)",
        counts.events_total.load(Ordering::SeqCst)
    );
    assert_eq!(browser.loads().await, 1);
    browser.close().await;
    drop(proxy);
    server.stop().await;
}

// 9. The page's errors in the terminal -------------------------------------------------------------

/// The built binary serving `root` on a free port, with `flags`; returns it, its stderr lines and
/// its port.
fn run_binary(root: &TempDir, flags: &[&str]) -> (Running, std::sync::mpsc::Receiver<String>, u16) {
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0"]).args(flags);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = loop {
        let line = running
            .lines
            .recv_timeout(WAIT)
            .expect("liveserve printed its address in time");
        if line.starts_with("Local:") {
            break port_of(&line);
        }
    };
    (running, errors, port)
}

/// Stderr lines until one contains `until` (included), or every line within the deadline.
fn stderr_until(errors: &std::sync::mpsc::Receiver<String>, until: &str) -> (Vec<String>, bool) {
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match errors.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    return (lines, true);
                }
            }
            Err(_) => break,
        }
    }
    (lines, false)
}

/// A page that throws while it loads and loads a missing image; `window.throwLater(text)` throws
/// later, from the page's own script (an error in a script the driver injects is only
/// "Script error.").
fn erring_site() -> TempDir {
    site(&[
        ("probe.js", PROBE_JS.as_bytes()),
        (
            "page.html",
            page(
                None,
                "<script>window.throwLater = (text) => setTimeout(() => { throw new Error(text); });</script>\
                 <script>throw new TypeError(\"x is undefined\")</script>\
                 <img src=\"/missing.png\"><p id=text>errors</p>",
            )
            .as_bytes(),
        ),
    ])
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_pages_errors_are_printed_in_the_terminal() {
    let _one = ONE_BROWSER.lock().await;
    let root = erring_site();
    let browser = Browser::start().await;
    let (running, errors, port) = run_binary(&root, &[]);
    browser
        .open(&format!("http://localhost:{port}/page.html"))
        .await;
    browser.connected().await;
    // Thrown once the page is connected, so reported after whatever the page reported before.
    browser.eval("window.throwLater('sentinel error')").await;
    let (lines, sentinel) = stderr_until(&errors, "sentinel error");
    assert!(sentinel, "an error after connecting is printed: {lines:?}");
    let browser_lines: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("[browser] /page.html:"))
        .collect();
    assert!(
        browser_lines
            .iter()
            .any(|line| line.contains("failed to load /missing.png")),
        "a [browser] /page.html: line names the missing image: {browser_lines:?}"
    );
    assert!(
        browser_lines
            .iter()
            .any(|line| line.contains("TypeError") && line.contains("x is undefined")),
        "a [browser] /page.html: line names the TypeError thrown while the page loaded: {browser_lines:?}"
    );
    assert_eq!(running.terminate().0.code(), Some(0));
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn no_browser_errors_prints_no_browser_lines() {
    let _one = ONE_BROWSER.lock().await;
    let root = erring_site();
    let browser = Browser::start().await;
    // The sentinel is the request log (-v): a report POSTed after the page's own errors is
    // logged once it has been handled, so a [browser] line for it or for them comes before.
    let (running, errors, port) = run_binary(&root, &["--no-browser-errors", "-v"]);
    browser
        .open(&format!("http://localhost:{port}/page.html"))
        .await;
    browser.connected().await;
    assert_eq!(
        browser.eval("return window.__liveserve.errors").await,
        json!(false),
        "hello says errors are not wanted"
    );
    browser.eval("window.throwLater('sentinel error')").await;
    browser
        .wait_until(
            "the later error happened",
            "window.__errors.some((e) => e.includes('sentinel error'))",
        )
        .await;
    browser
        .eval(
            "window.__posted = null; fetch('/__liveserve/errors', {method: 'POST', \
             headers: {'content-type': 'application/json'}, body: JSON.stringify(\
             {type: 'error', path: '/page.html', text: 'posted error'})})\
             .then((response) => { window.__posted = response.status; })",
        )
        .await;
    browser
        .wait_until("the report was answered", "window.__posted === 204")
        .await;
    let (lines, logged) = stderr_until(&errors, "POST /__liveserve/errors");
    assert!(logged, "the report's request is logged: {lines:?}");
    assert!(
        !lines.iter().any(|line| line.starts_with("[browser]")),
        "no [browser] line with --no-browser-errors: {lines:?}"
    );
    assert_eq!(running.terminate().0.code(), Some(0));
    browser.close().await;
}

// 10. Not the wrong app ----------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_server_for_another_project_on_the_same_address_does_not_reload_the_page() {
    let mut session = Session::open(standard_site(), "/").await;
    session.browser.set_marker().await;
    let another = standard_site();
    let another_root = another.path().to_path_buf();
    session.server = session
        .server
        .restart(|config| config.root = another_root)
        .await;
    let browser = &session.browser;
    browser
        .wait_until(
            "a notice about another project",
            "Array.from(document.querySelectorAll('[data-liveserve-note]'))\
             .some((note) => note.textContent.includes('another project'))",
        )
        .await;
    assert!(browser.has_marker().await, "no reload");
    assert_eq!(browser.loads().await, 1);
    assert_eq!(
        browser
            .eval("return [window.__liveserve.connected, window.__liveserve.connects]")
            .await,
        json!([true, 2]),
        "reconnected to the new server"
    );
    session.end().await;
    drop(another);
}
