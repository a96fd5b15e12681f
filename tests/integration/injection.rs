//! The reload script tag in served pages, checked byte for byte through the real server.

use crate::support::{TestServer, site};

const TAG: &str = "<script src=\"/__liveserve/client.js\" data-path=\"/page.html\" data-generation=\"0\"></script>";

/// Serves `page` as /page.html and returns the body, after checking the length headers of GET
/// and HEAD against it.
async fn served(page: &str) -> String {
    let server = TestServer::start(site(&[("page.html", page.as_bytes())])).await;
    let reply = server.get("/page.html").await;
    assert_eq!(reply.status, 200);
    reply.assert_length_matches();
    let head = server.request("HEAD", "/page.html", &[]).await;
    assert_eq!(
        head.header("content-length"),
        reply.header("content-length")
    );
    assert_eq!(
        std::fs::read(server.root.path().join("page.html")).unwrap(),
        page.as_bytes(),
        "the file on disk is never modified"
    );
    server.stop().await;
    reply.text()
}

#[tokio::test]
async fn goes_before_the_body_end() {
    let page = "<!doctype html><html><body><p>x</p></body></html>";
    assert_eq!(
        served(page).await,
        page.replace("</body>", &format!("{TAG}</body>"))
    );
}

#[tokio::test]
async fn a_page_without_body_gets_it_before_html_end() {
    let page = "<html><head><title>t</title></head><p>x</p></html>";
    let early = "<script src=\"/__liveserve/client.js\" data-early></script>";
    assert_eq!(
        served(page).await,
        page.replace("<head>", &format!("<head>{early}"))
            .replace("</html>", &format!("{TAG}</html>"))
    );
}

#[tokio::test]
async fn a_fragment_without_tags_gets_it_at_the_end() {
    assert_eq!(served("just text").await, format!("just text{TAG}"));
}

#[tokio::test]
async fn body_end_inside_a_script_string_is_skipped() {
    let page = "<body><script>document.write(\"</body>\")</script><p>x</p></body>";
    let expected =
        "<body><script>document.write(\"</body>\")</script><p>x</p>".to_owned() + TAG + "</body>";
    assert_eq!(served(page).await, expected);
}

#[tokio::test]
async fn body_end_inside_a_comment_is_skipped() {
    let page = "<body><p>x</p><!-- old: </body> --></BODY>";
    assert_eq!(
        served(page).await,
        format!("<body><p>x</p><!-- old: </body> -->{TAG}</BODY>")
    );
    let page = "<p>x</p><!-- </body> -->";
    assert_eq!(served(page).await, format!("{page}{TAG}"));
}

#[tokio::test]
async fn upper_case_tags_work() {
    let page = "<HTML><BODY><P>x</P></BODY></HTML>";
    assert_eq!(
        served(page).await,
        page.replace("</BODY>", &format!("{TAG}</BODY>"))
    );
}

#[tokio::test]
async fn a_byte_order_mark_is_kept() {
    let page = "\u{feff}<!doctype html><body>x</body>";
    assert_eq!(
        served(page).await,
        page.replace("</body>", &format!("{TAG}</body>"))
    );
}

#[tokio::test]
async fn inline_svg_is_skipped_over() {
    let page = "<body><svg viewBox=\"0 0 10 10\"><style>circle{fill:red}</style><title>dot</title>\
                <circle cx=\"5\" cy=\"5\" r=\"4\"/><script href=\"x.js\"/></svg><p>after</p></body>";
    assert_eq!(
        served(page).await,
        page.replace("</body>", &format!("{TAG}</body>"))
    );
}

#[tokio::test]
async fn a_page_that_has_the_tag_is_not_injected_twice() {
    let page = format!("<body>{TAG}</body>");
    assert_eq!(served(&page).await, page);
}

#[tokio::test]
async fn no_reload_serves_pages_untouched() {
    let page = "<body>x</body>";
    let server = TestServer::start_with(site(&[("index.html", page.as_bytes())]), |config| {
        config.reload = false;
    })
    .await;
    assert_eq!(server.get("/").await.text(), page);
    assert!(!server.get("/nothing").await.text().contains("__liveserve"));
    assert_eq!(server.get("/__liveserve/client.js").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_client_script_is_served() {
    let server = TestServer::start(site(&[])).await;
    let script = server.get("/__liveserve/client.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(script.text(), client_script());
    let etag = script.header("etag").unwrap();
    let again = server
        .request("GET", "/__liveserve/client.js", &[("If-None-Match", etag)])
        .await;
    assert_eq!(again.status, 304);
    server.stop().await;
}

/// The script liveserve serves: the files in `inject/`, joined inside one function.
pub fn client_script() -> String {
    format!(
        "(() => {{\n\"use strict\";\n{}{}{}{}}})();\n",
        include_str!("../../inject/swap.js"),
        include_str!("../../inject/morph.js"),
        include_str!("../../inject/overlay.js"),
        include_str!("../../inject/client.js")
    )
}
