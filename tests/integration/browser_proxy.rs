//! What a person sees through the reverse proxy: the real server in front of a real backend
//! ([`Upstream`]), pages in headless Chromium. Marked `#[ignore]` like the other browser tests.

use std::time::Duration;

use serde_json::json;

use crate::browser::{ONE_BROWSER, PROBE_JS, computed, page};
use crate::browser_driver::Browser;
use crate::support::{TestServer, site, write};
use crate::upstream::Upstream;

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

async fn body_text(browser: &Browser) -> String {
    browser
        .eval("return document.body.textContent")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn the_502_page_turns_into_the_backend_page_by_itself_once_the_backend_is_back() {
    let _one = ONE_BROWSER.lock().await;
    let mut upstream = Upstream::start().await;
    upstream.stop().await;
    let server = TestServer::start_with(site(&[]), |config| {
        config.proxies = vec![upstream.route("/")];
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/page")).await;
    // The error page carries the client, so it can come back by itself.
    browser.connected().await;
    let text = body_text(&browser).await;
    assert!(text.contains("502"), "liveserve's 502 page: {text}");
    assert!(
        text.contains(&upstream.origin()),
        "it names the upstream: {text}"
    );
    assert!(!text.contains("backend page"));

    upstream.restart().await;
    browser
        .wait_until_within(
            Duration::from_secs(5),
            "the backend page showing by itself",
            "document.body.textContent.includes('backend page')",
        )
        .await;
    browser.connected().await;
    browser.close().await;
    server.stop().await;
}

/// A backend page that opens a WebSocket to `/api/ws`, sends "hi" and keeps what comes back.
fn echo_page() -> String {
    page(
        None,
        "<p id=text>echo</p><script>\
         window.__echo = null;\
         const socket = new WebSocket('ws://' + location.host + '/api/ws');\
         socket.onopen = () => socket.send('hi');\
         socket.onmessage = (event) => { window.__echo = event.data; };\
         </script>",
    )
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_backend_page_talks_over_a_proxied_websocket_and_still_reloads() {
    let _one = ONE_BROWSER.lock().await;
    let upstream = Upstream::start().await;
    upstream.serve_text("/api/app", "text/html; charset=utf-8", echo_page());
    let root = site(&[
        ("probe.js", PROBE_JS.as_bytes()),
        ("other.html", b"<body>other</body>"),
    ]);
    let server = TestServer::start_with(root, |config| {
        config.proxies = vec![upstream.route("/api")];
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/api/app")).await;
    browser.connected().await;
    browser
        .wait_until("the echo came back", "window.__echo === 'hi'")
        .await;
    assert_eq!(
        browser.eval("return window.__liveserve.connected").await,
        json!(true),
        "the reload socket is connected beside the page's own"
    );
    assert_eq!(upstream.ws_origins().last(), Some(&Some(upstream.origin())));

    browser.set_marker().await;
    write(server.root.path(), "other.html", b"<body>edited</body>");
    browser
        .wait_until("reloaded", "Number(sessionStorage.getItem('loads')) === 2")
        .await;
    assert!(!browser.has_marker().await, "a real reload");
    browser
        .wait_until("the echo came back again", "window.__echo === 'hi'")
        .await;
    browser.connected().await;
    browser.assert_no_errors().await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_change_in_a_watched_folder_reloads_a_proxied_page() {
    let _one = ONE_BROWSER.lock().await;
    let upstream = Upstream::start().await;
    upstream.serve_text("/probe.js", "text/javascript; charset=utf-8", PROBE_JS);
    upstream.serve_text(
        "/app",
        "text/html; charset=utf-8",
        page(None, "<p id=text>rendered by the backend</p>"),
    );
    let templates = site(&[("base.html", b"<body>{{ content }}</body>")]);
    let server = TestServer::start_with(site(&[]), |config| {
        config.proxies = vec![upstream.route("/")];
        config.watch = vec![templates.path().to_path_buf()];
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/app")).await;
    browser.connected().await;
    browser.set_marker().await;
    write(
        templates.path(),
        "base.html",
        b"<body><main>{{ content }}</main></body>",
    );
    browser
        .wait_until("reloaded", "Number(sessionStorage.getItem('loads')) === 2")
        .await;
    assert!(!browser.has_marker().await, "a real reload");
    browser.connected().await;
    browser.assert_no_errors().await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_stylesheet_the_backend_serves_under_its_own_url_is_swapped_without_a_reload() {
    let _one = ONE_BROWSER.lock().await;
    let root = site(&[("css/site.css", b"h1 { color: rgb(255, 0, 0); }")]);
    let upstream = Upstream::start().await;
    // The backend serves ROOT/css/site.css as /static/site.css, as asset pipelines do.
    upstream.serve_file(
        "/static/site.css",
        "text/css; charset=utf-8",
        root.path().join("css/site.css"),
    );
    upstream.serve_text("/probe.js", "text/javascript; charset=utf-8", PROBE_JS);
    upstream.serve_text(
        "/app",
        "text/html; charset=utf-8",
        page(Some("/static/site.css"), "<h1 id=title>styled</h1>"),
    );
    let server = TestServer::start_with(root, |config| {
        config.proxies = vec![upstream.route("/")];
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&url(&server, "/app")).await;
    browser.connected().await;
    let color = computed("#title", "color");
    browser
        .wait_until(
            "the first colour applies",
            &format!("{color} === 'rgb(255, 0, 0)'"),
        )
        .await;
    browser.set_marker().await;
    let fetched = upstream.hits("/static/site.css");
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
    assert_eq!(browser.loads().await, 1);
    assert!(
        upstream.hits("/static/site.css") > fetched,
        "the backend's stylesheet was fetched again"
    );
    browser.assert_no_errors().await;
    browser.close().await;
    server.stop().await;
}
