//! Validators, conditional requests and ranges, on plain files and on injected pages.

use crate::support::{TestServer, site};

#[tokio::test]
async fn if_none_match_round_trip() {
    let server = TestServer::start(site(&[
        ("a.css", b"a{}"),
        ("index.html", b"<body>x</body>"),
    ]))
    .await;
    for path in ["/a.css", "/"] {
        let first = server.get(path).await;
        let etag = first.header("etag").unwrap();
        let again = server
            .request("GET", path, &[("If-None-Match", etag)])
            .await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag));
        assert_eq!(again.header("cache-control"), Some("no-cache"));
        let listed = format!("\"other\", {etag}");
        let again = server
            .request("GET", path, &[("If-None-Match", &listed)])
            .await;
        assert_eq!(again.status, 304, "{path}: a tag in a list matches");
        let other = server
            .request("GET", path, &[("If-None-Match", "W/\"other\"")])
            .await;
        assert_eq!(other.status, 200, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn if_modified_since_round_trip() {
    let server = TestServer::start(site(&[("a.css", b"a{}")])).await;
    let first = server.get("/a.css").await;
    let modified = first.header("last-modified").unwrap();
    let again = server
        .request("GET", "/a.css", &[("If-Modified-Since", modified)])
        .await;
    assert_eq!(again.status, 304);
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let again = server
        .request("GET", "/a.css", &[("If-Modified-Since", old)])
        .await;
    assert_eq!(again.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_edit_changes_the_validator() {
    let server = TestServer::start(site(&[("a.css", b"a{}")])).await;
    let first = server.get("/a.css").await;
    std::fs::write(server.root.path().join("a.css"), b"a{color:red}").unwrap();
    let etag = first.header("etag").unwrap();
    let after = server
        .request("GET", "/a.css", &[("If-None-Match", etag)])
        .await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, b"a{color:red}");
    server.stop().await;
}

#[tokio::test]
async fn the_injected_page_has_its_own_tag() {
    let page = b"<body>x</body>";
    let injected = TestServer::start(site(&[("index.html", page)])).await;
    let plain = TestServer::start_with(site(&[("index.html", page)]), |config| {
        config.reload = false
    })
    .await;
    let injected_reply = injected.get("/").await;
    let plain_reply = plain.get("/").await;
    assert_ne!(injected_reply.header("etag"), plain_reply.header("etag"));
    injected.stop().await;
    plain.stop().await;
}

#[tokio::test]
async fn single_ranges() {
    let server = TestServer::start(site(&[("digits.txt", b"0123456789")])).await;
    let cases = [
        ("bytes=0-3", "0123", "bytes 0-3/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-2", "89", "bytes 8-9/10"),
        ("bytes=5-100", "56789", "bytes 5-9/10"),
    ];
    for (range, body, content_range) in cases {
        let reply = server
            .request("GET", "/digits.txt", &[("Range", range)])
            .await;
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(reply.text(), body, "{range}");
        assert_eq!(
            reply.header("content-range"),
            Some(content_range),
            "{range}"
        );
        reply.assert_length_matches();
    }
    server.stop().await;
}

#[tokio::test]
async fn unsatisfiable_ranges_get_416() {
    let server =
        TestServer::start(site(&[("digits.txt", b"0123456789"), ("empty.txt", b"")])).await;
    for (path, range, len) in [
        ("/digits.txt", "bytes=10-", 10),
        ("/digits.txt", "bytes=-0", 10),
        ("/digits.txt", "bytes=99-100", 10),
        ("/empty.txt", "bytes=0-", 0),
    ] {
        let reply = server.request("GET", path, &[("Range", range)]).await;
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(
            reply.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        reply.assert_length_matches();
    }
    server.stop().await;
}

#[tokio::test]
async fn if_range_with_a_date_is_honoured_and_a_weak_tag_is_not() {
    let server = TestServer::start(site(&[("digits.txt", b"0123456789")])).await;
    let first = server.get("/digits.txt").await;
    let modified = first.header("last-modified").unwrap();
    let etag = first.header("etag").unwrap();
    let ranged = |if_range: String| {
        let server = &server;
        async move {
            server
                .request(
                    "GET",
                    "/digits.txt",
                    &[("Range", "bytes=0-1"), ("If-Range", &if_range)],
                )
                .await
        }
    };
    assert_eq!(ranged(modified.to_owned()).await.status, 206);
    let full = ranged(etag.to_owned()).await;
    assert_eq!(
        full.status, 200,
        "a weak tag never satisfies If-Range (RFC 9110)"
    );
    assert_eq!(full.body, b"0123456789");
    assert_eq!(
        ranged("Mon, 01 Jan 2001 00:00:00 GMT".into()).await.status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn ranges_apply_to_the_injected_page() {
    let server = TestServer::start(site(&[("index.html", b"<body>x</body>")])).await;
    let whole = server.get("/index.html").await;
    let tail = server
        .request("GET", "/index.html", &[("Range", "bytes=-7")])
        .await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &whole.body[whole.body.len() - 7..]);
    assert_eq!(tail.text(), "</body>");
    server.stop().await;
}

#[tokio::test]
async fn hostile_range_headers_never_break_the_server() {
    let server = TestServer::start(site(&[("digits.txt", b"0123456789")])).await;
    let headers = [
        "bytes=",
        "bytes=-",
        "bytes=--1",
        "bytes=1-0",
        "bytes=0-1,2-3",
        "bytes=a-b",
        "bytes= 1 - 2 ",
        "bytes=18446744073709551615-18446744073709551615",
        "bytes=99999999999999999999999999-",
        "bytes=-99999999999999999999999999",
        "bytes=0-0-0",
        "pages=1-2",
    ];
    for range in headers {
        let reply = server
            .request("GET", "/digits.txt", &[("Range", range)])
            .await;
        assert!(
            [200, 206, 416].contains(&reply.status),
            "{range:?}: {}",
            reply.status
        );
        reply.assert_length_matches();
    }
    assert_eq!(server.get("/digits.txt").await.body, b"0123456789");
    server.stop().await;
}
