//! liveserve's client under a strict Content-Security-Policy given with `--header`, in headless
//! Chromium: the page loads, the client connects over its WebSocket, a stylesheet edit swaps in
//! place and an edit of the page applies in place, with no inline script and no violation of the
//! policy but the page's own inline script, which proves the browser enforces it. Marked
//! `#[ignore]` like the other browser tests.

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::browser::{
    PROBE_JS, Session, edit_page_and_wait, edit_stylesheet_and_wait, page, standard_site,
};
use crate::support::write;

const POLICY: &str = "script-src 'self'; connect-src 'self'";

/// Added to the probe: records every violation of the policy the page reports.
const VIOLATIONS_JS: &str = r#"
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) =>
  window.__violations.push(event.effectiveDirective + " " + event.blockedURI));
"#;

/// The standard page with an inline script in its head, which the policy must block.
fn strict_page(heading: &str) -> String {
    page(
        Some("/css/site.css"),
        &format!("<h1 id=title>{heading}</h1>"),
    )
    .replace(
        "</head>",
        "<script>window.__inlineRan = true;</script></head>",
    )
}

fn strict_site() -> TempDir {
    let root = standard_site();
    write(
        root.path(),
        "probe.js",
        format!("{PROBE_JS}{VIOLATIONS_JS}").as_bytes(),
    );
    write(root.path(), "index.html", strict_page("first").as_bytes());
    root
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn the_client_works_under_a_policy_that_allows_no_inline_script() {
    let session = Session::open_with(
        strict_site(),
        |config| {
            config.headers = vec![
                format!("Content-Security-Policy: {POLICY}")
                    .parse()
                    .unwrap(),
            ]
        },
        "/",
    )
    .await;
    let (server, browser) = (&session.server, &session.browser);
    let served = server.get("/").await;
    assert_eq!(served.header("content-security-policy"), Some(POLICY));
    assert_eq!(
        browser.eval("return window.__inlineRan === true").await,
        Value::Bool(false),
        "the browser enforces the policy"
    );
    let only_the_inline_script = json!(["script-src-elem inline"]);
    assert_eq!(
        browser.eval("return window.__violations").await,
        only_the_inline_script
    );
    assert_eq!(
        browser.eval("return window.__liveserve.transport").await,
        json!("websocket")
    );

    browser.set_marker().await;
    let root = server.root.path();
    edit_stylesheet_and_wait(browser, root).await;
    edit_page_and_wait(browser, root, &strict_page("second"), "second").await;
    assert!(browser.has_marker().await, "both in place, no reload");
    assert_eq!(
        browser.eval("return window.__liveserve.morphs").await,
        json!(1)
    );
    assert_eq!(
        browser.eval("return window.__violations").await,
        only_the_inline_script,
        "the client broke no rule of the policy"
    );
    browser.assert_no_errors().await;
    session.end().await;
}
