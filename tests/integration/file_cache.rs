//! Files answered from memory, and big pages streamed with the script spliced in, through the
//! real server: a cached file edited on disk is served new at once, with the watcher running
//! and without it, even when the edit keeps its size and modification time; pages far larger
//! than memory used to allow get the script, with exact lengths and ranges over the page as sent.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use liveserve::__private::Config;

use crate::reload::Client;
use crate::support::{TestServer, site};

/// Keeps files in memory as soon as they are asked for twice (a real project's files have long
/// settled; a test's were written a moment ago).
fn cache_at_once(config: &mut Config) {
    config.settle_before_caching = Duration::ZERO;
}

/// Rewrites `path` with `content` (the same length as before) and puts its modification time
/// back, so only the inode's change time tells the versions apart; writes again until that time
/// has moved on (two writes within one tick of the clock share it).
fn rewrite_keeping_size_and_time(path: &Path, content: &[u8]) {
    let before = fs::metadata(path).unwrap();
    let modified = before.modified().unwrap();
    assert_eq!(before.len(), content.len() as u64, "the same size");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        fs::write(path, content).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let after = fs::metadata(path).unwrap();
        assert_eq!(after.modified().unwrap(), modified);
        if changed_time(&after) != changed_time(&before) {
            return;
        }
        assert!(Instant::now() < deadline, "the change time never moved");
    }
}

fn changed_time(metadata: &fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.ctime(), metadata.ctime_nsec())
}

/// Asks for `path` three times (kept from the second), checking each answer.
async fn warm(server: &TestServer, path: &str, expected: &str) {
    for _ in 0..3 {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200);
        assert!(reply.text().contains(expected), "{path}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_cached_file_edited_without_a_watcher_is_served_new_at_once() {
    let root = site(&[
        ("a.css", b"body { color: red }"),
        ("page.html", b"<body><p>old text</p></body>"),
    ]);
    let server = TestServer::start_with(root, |config| {
        cache_at_once(config);
        config.reload = false;
    })
    .await;
    warm(&server, "/a.css", "red").await;
    warm(&server, "/page.html", "old text").await;
    rewrite_keeping_size_and_time(&server.root.path().join("a.css"), b"body { color: tan }");
    rewrite_keeping_size_and_time(
        &server.root.path().join("page.html"),
        b"<body><p>new text</p></body>",
    );
    assert_eq!(server.get("/a.css").await.text(), "body { color: tan }");
    assert!(server.get("/page.html").await.text().contains("new text"));
    server.stop().await;
}

#[tokio::test]
async fn a_cached_file_edited_with_the_watcher_running_is_served_new_before_and_after_its_message()
{
    let root = site(&[("a.css", b"body { color: red }")]);
    let server = TestServer::start_with(root, cache_at_once).await;
    let (mut client, _) = Client::connect(&server).await;
    warm(&server, "/a.css", "red").await;
    let file = server.root.path().join("a.css");
    rewrite_keeping_size_and_time(&file, b"body { color: tan }");
    // Before the watcher's message: the metadata already differs.
    assert_eq!(server.get("/a.css").await.text(), "body { color: tan }");
    client.until_named("/a.css").await;
    assert_eq!(server.get("/a.css").await.text(), "body { color: tan }");
    // And the new version is kept in turn.
    warm(&server, "/a.css", "tan").await;
    rewrite_keeping_size_and_time(&file, b"body { color: red }");
    client.until_named("/a.css").await;
    assert_eq!(server.get("/a.css").await.text(), "body { color: red }");
    server.stop().await;
}

#[tokio::test]
async fn a_file_replaced_by_renaming_another_into_place_is_served_new() {
    let root = site(&[("a.js", b"export const a = 1;")]);
    let server = TestServer::start_with(root, |config| {
        cache_at_once(config);
        config.reload = false;
    })
    .await;
    warm(&server, "/a.js", "a = 1").await;
    // An editor's safe save: a new file (a new inode) renamed over the old one, its times set
    // to the old one's.
    let file = server.root.path().join("a.js");
    let modified = fs::metadata(&file).unwrap().modified().unwrap();
    let saved = server.root.path().join(".a.js.swp");
    fs::write(&saved, b"export const a = 2;").unwrap();
    File::options()
        .write(true)
        .open(&saved)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    fs::rename(&saved, &file).unwrap();
    assert_eq!(server.get("/a.js").await.text(), "export const a = 2;");
    server.stop().await;
}

/// A page of `len` bytes or more: paragraphs, then the end of the body.
fn big_page(len: usize) -> Vec<u8> {
    let paragraph = b"<p>a paragraph of a very long page, repeated to make it large</p>\n";
    let mut page = b"<!doctype html><html><head><title>big</title></head><body>\n".to_vec();
    while page.len() < len {
        page.extend_from_slice(paragraph);
    }
    page.extend_from_slice(b"</body></html>\n");
    page
}

#[tokio::test]
async fn a_page_larger_than_sixteen_mib_gets_the_script_where_it_belongs() {
    let page = big_page(17 * 1024 * 1024);
    let server = TestServer::start_with(site(&[("big.html", &page)]), cache_at_once).await;
    for _ in 0..2 {
        // The second time from the injection point kept for this version.
        let reply = server.get("/big.html").await;
        assert_eq!(reply.status, 200);
        let length: usize = reply.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, reply.body.len());
        let text = reply.text();
        let tag = text
            .find("data-path=\"/big.html\"")
            .expect("the tag is there");
        assert!(
            text[tag..].starts_with("data-path") && text.ends_with("</script></body></html>\n")
        );
        assert!(text.contains("<head><script src=\"/__liveserve/client.js\" data-early>"));
        assert!(tag > page.len() - 100, "the tag is at the end of the body");
        assert_eq!(
            reply.header("etag").map(|tag| tag.starts_with("W/")),
            Some(true)
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ranges_of_a_big_injected_page_are_cut_from_the_page_as_sent() {
    let page = big_page(600 * 1024);
    let server = TestServer::start_with(site(&[("big.html", &page)]), cache_at_once).await;
    let whole = server.get("/big.html").await.body;
    assert!(whole.len() > page.len());
    let len = whole.len();
    // Across the early tag, within the file, across the tag at the end, and the last bytes.
    for (start, end) in [
        (40, 200),
        (1000, 300_000),
        (len - 300, len - 1),
        (len - 5, len - 1),
    ] {
        let range = format!("bytes={start}-{end}");
        let reply = server
            .request("GET", "/big.html", &[("Range", &range)])
            .await;
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(reply.body, &whole[start..=end], "{range}");
        assert_eq!(
            reply.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str())
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_large_file_is_streamed_whole_every_time_and_read_anew_when_it_changes() {
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let server = TestServer::start_with(site(&[("big.bin", &content)]), cache_at_once).await;
    for _ in 0..3 {
        let reply = server.get("/big.bin").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, content);
    }
    let shorter = &content[1000..300_000];
    fs::write(server.root.path().join("big.bin"), shorter).unwrap();
    let reply = server.get("/big.bin").await;
    assert_eq!(reply.header("content-length"), Some("299000"));
    assert_eq!(reply.body, shorter);
    server.stop().await;
}
