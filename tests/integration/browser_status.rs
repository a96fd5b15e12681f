//! `liveserve wait` with headless Chromium: it returns once the page shows the change (a
//! stylesheet swapped, an edit applied in place), which the page is checked for at once, and
//! says so with exit status 1 when the page has reported an error. Marked `#[ignore]` like the
//! other browser tests.

use serde_json::Value;

use crate::browser::{Session, computed, page, standard_site};
use crate::support::write;

/// `liveserve wait` against the session's server, to its end.
async fn wait(session: &Session) -> std::process::Output {
    let mut command = crate::cli::liveserve();
    command
        .args(["wait", "--timeout", "10", "--url"])
        .arg(format!("http://{}/", session.server.addr));
    tokio::task::spawn_blocking(move || crate::cli::run_to_exit(command))
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn wait_returns_once_the_browser_shows_the_change() {
    let session = Session::open(standard_site(), "/").await;
    let (browser, root) = (&session.browser, session.server.root.path());
    write(root, "css/site.css", b"h1 { color: rgb(0, 128, 0); }");
    let waited = wait(&session).await;
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    let color = computed("#title", "color");
    assert_eq!(
        browser.eval(&format!("return {color}")).await,
        "rgb(0, 128, 0)",
        "the stylesheet was swapped when wait returned"
    );
    let printed: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(printed["pages"][0]["path"], "/");
    assert_eq!(printed["pages"][0]["generation"], printed["generation"]);

    write(
        root,
        "index.html",
        page(Some("/css/site.css"), "<h1 id=title>second</h1>").as_bytes(),
    );
    assert_eq!(wait(&session).await.status.code(), Some(0));
    assert_eq!(
        browser
            .eval("return document.querySelector('#title').textContent")
            .await,
        "second",
        "the edit was applied when wait returned"
    );

    // A page that throws: wait still returns, with exit status 1 and the error.
    write(
        root,
        "index.html",
        page(
            Some("/css/site.css"),
            "<h1 id=title>third</h1><script src=/boom.js></script>",
        )
        .as_bytes(),
    );
    write(root, "boom.js", b"throw new Error('kaboom');");
    let waited = wait(&session).await;
    assert_eq!(waited.status.code(), Some(1), "{waited:?}");
    assert!(String::from_utf8_lossy(&waited.stdout).contains("kaboom"));
    session.end().await;
}
