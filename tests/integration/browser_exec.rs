//! `--exec` in headless Chromium: a failing build shows its output in an overlay over the page
//! (text as written, never markup; styled under a `style-src 'self'` policy; the page's own
//! content and scripts untouched), in a page opened during the failure too; it can be dismissed,
//! and the next good build removes it and updates the page. Marked `#[ignore]` like the other
//! browser tests.

use serde_json::Value;

use crate::browser::{Session, page, standard_site};
use crate::support::write;

/// The overlay's shadow root, in JS.
const OVERLAY: &str = "document.querySelector('liveserve-overlay').shadowRoot";

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn a_failed_build_shows_over_the_page_until_a_good_one() {
    let sources = tempfile::tempdir().unwrap();
    write(sources.path(), "build.sh", b"true\n");
    let script = sources.path().join("build.sh");
    let watched = sources.path().to_path_buf();
    let session = Session::open_with(
        standard_site(),
        move |config| {
            config.watch = vec![watched];
            config.exec = Some(format!("sh '{}'", script.display()));
            config.headers = vec![
                "Content-Security-Policy: style-src 'self'; script-src 'self'"
                    .parse()
                    .unwrap(),
            ];
        },
        "/",
    )
    .await;
    let browser = &session.browser;
    browser.set_marker().await;
    write(
        sources.path(),
        "build.sh",
        b"echo 'src/main.ts:3:7 <img src=x onerror=\"window.__owned=1\"> & <b>bold</b>' >&2\nexit 2\n",
    );
    browser
        .wait_until(
            "the overlay shows the output",
            &format!("{OVERLAY}.querySelector('pre').textContent.includes('<b>bold</b>')"),
        )
        .await;
    let shown = browser
        .eval(&format!(
            "const root = {OVERLAY};
             return [root.querySelector('h1').textContent, root.querySelector('p').textContent,
                     root.querySelectorAll('b, img').length, window.__owned === undefined,
                     getComputedStyle(root.querySelector('.box')).borderTopColor]"
        ))
        .await;
    let shown = shown.as_array().expect("what the overlay shows");
    assert!(
        shown[0].as_str().unwrap().starts_with("Build failed: sh "),
        "{shown:?}"
    );
    assert!(
        shown[1].as_str().unwrap().starts_with("exit status 2"),
        "{shown:?}"
    );
    assert_eq!(shown[2], 0, "the output is text, not markup");
    assert_eq!(shown[3], true, "nothing in the output ran");
    assert_eq!(shown[4], "rgb(229, 72, 77)", "styled under the policy");
    // The page under it is the last good one, not reloaded.
    assert!(browser.has_marker().await);
    assert_eq!(
        browser
            .eval("return document.querySelector('#title').textContent")
            .await,
        "first"
    );
    browser.assert_no_errors().await;

    // A page opened now shows it at once; dismissed, it goes.
    browser
        .open(&crate::browser::url(&session.server, "/other.html"))
        .await;
    browser.connected().await;
    browser
        .wait_until("the overlay shows at once", &format!("{OVERLAY} !== null"))
        .await;
    browser
        .eval(&format!("{OVERLAY}.querySelector('button').click()"))
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelector('liveserve-overlay') === null")
            .await,
        Value::Bool(true)
    );

    // Back on the first page, still failing; then a good build writes it anew.
    browser
        .open(&crate::browser::url(&session.server, "/"))
        .await;
    browser.connected().await;
    browser
        .wait_until("the overlay shows", &format!("{OVERLAY} !== null"))
        .await;
    let fixed = page(Some("/css/site.css"), "<h1 id=title>built</h1>");
    let index = session.server.root.path().join("index.html");
    write(
        sources.path(),
        "build.sh",
        format!("cat > '{}' <<'END'\n{fixed}\nEND\n", index.display()).as_bytes(),
    );
    browser
        .wait_until(
            "the good build shows, without the overlay",
            "document.querySelector('#title').textContent === 'built' \
             && document.querySelector('liveserve-overlay') === null",
        )
        .await;
    browser.assert_no_errors().await;
    session.end().await;
}
