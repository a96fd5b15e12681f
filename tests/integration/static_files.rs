//! Serving files, folders, listings and error pages.

use crate::support::{TestServer, encode, site};

#[tokio::test]
async fn files_get_type_length_and_validators() {
    let server = TestServer::start(site(&[
        ("css/site.css", b"body { color: red }"),
        ("app.js", b"console.log(1)"),
        ("logo.png", b"\x89PNG\r\n\x1a\n"),
        ("data.json", b"{}"),
    ]))
    .await;
    let css = server.get("/css/site.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.body, b"body { color: red }");
    css.assert_length_matches();
    assert_eq!(css.header("cache-control"), Some("no-cache"));
    assert!(css.header("etag").unwrap().starts_with("W/\""));
    assert!(httpdate::parse_http_date(css.header("last-modified").unwrap()).is_ok());
    assert_eq!(css.header("x-content-type-options"), Some("nosniff"));

    let js = server.get("/app.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let png = server.get("/logo.png").await;
    assert_eq!(png.header("content-type"), Some("image/png"));
    let json = server.get("/data.json").await;
    assert_eq!(
        json.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    server.stop().await;
}

#[tokio::test]
async fn folders_serve_their_index_and_redirect_without_slash() {
    let server = TestServer::start(site(&[
        ("docs/index.html", b"<p>docs</p>"),
        ("evil.example/index.html", b"x"),
    ]))
    .await;
    let docs = server.get("/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text().contains("data-path=\"/docs/index.html\""),
        "{}",
        docs.text()
    );

    let redirect = server.get("/docs?theme=dark").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/docs/?theme=dark"));

    // A Location starting with `//` would send the browser to another host.
    let redirect = server.get("//evil.example").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/evil.example/"));
    server.stop().await;
}

#[tokio::test]
async fn a_folder_without_index_gets_a_listing() {
    let root = site(&[
        ("list/b.txt", b"b"),
        ("list/A.txt", b"a"),
        ("list/<b>&co.txt", b"x"),
        ("list/zeta/x.txt", b"x"),
        ("list/.env", b"SECRET"),
        ("list/.hidden/x.txt", b"x"),
        ("list/key.pem", b"SECRET"),
    ]);
    let server = TestServer::start(root).await;
    let listing = server.get("/list/").await;
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    listing.assert_length_matches();
    let page = listing.text();
    assert!(page.contains("href=\"/list/zeta/\""), "{page}");
    assert!(
        page.contains("href=\"../\""),
        "a link to the parent: {page}"
    );
    assert!(
        page.contains("&lt;b&gt;&amp;co.txt"),
        "names are escaped: {page}"
    );
    assert!(
        page.contains("href=\"/list/%3Cb%3E&amp;co.txt\""),
        "hrefs are encoded: {page}"
    );
    assert!(!page.contains(".env") && !page.contains(".hidden") && !page.contains("key.pem"));
    let order: Vec<usize> = ["zeta/", "A.txt", "b.txt"]
        .iter()
        .map(|name| {
            page.find(&format!(">{name}<"))
                .unwrap_or_else(|| panic!("{name} listed"))
        })
        .collect();
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "folders first, then by name: {page}"
    );
    assert!(
        page.contains("data-path=\"/list/\""),
        "the listing carries the script: {page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn missing_files_get_the_404_page_with_the_script() {
    let server = TestServer::start(site(&[])).await;
    let missing = server.get("/no/such%20page.html").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    missing.assert_length_matches();
    assert!(
        missing
            .text()
            .contains("data-path=\"/no/such%20page.html\""),
        "{}",
        missing.text()
    );
    server.stop().await;
}

#[tokio::test]
async fn head_is_get_without_the_body() {
    let server = TestServer::start(site(&[
        ("index.html", b"<body>hi</body>"),
        ("a.css", b"a{}"),
    ]))
    .await;
    for path in ["/", "/a.css", "/missing", "/__liveserve/client.js"] {
        let get = server.get(path).await;
        let head = server.request("HEAD", path, &[]).await;
        assert_eq!(head.status, get.status, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD sends no body");
        let without_date = |reply: &crate::support::Reply| {
            let mut headers = reply.headers.clone();
            headers.retain(|(name, _)| name != "date");
            headers
        };
        assert_eq!(
            without_date(&head),
            without_date(&get),
            "{path}: same headers"
        );
        get.assert_length_matches();
    }
    server.stop().await;
}

#[tokio::test]
async fn options_and_other_methods_say_what_is_allowed() {
    let server = TestServer::start(site(&[("a.txt", b"a")])).await;
    let options = server.request("OPTIONS", "/a.txt", &[]).await;
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS"));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let refused = server
            .request(method, "/a.txt", &[("Content-Length", "0")])
            .await;
        assert_eq!(refused.status, 405, "{method}");
        assert_eq!(refused.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(
        std::fs::read(server.root.path().join("a.txt")).unwrap(),
        b"a"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_file_names_are_served_and_listed() {
    let names = [
        "a b.txt",
        "a&b.txt",
        "hash#tag.txt",
        "100%.txt",
        "plus+sign.txt",
        "quote'single.txt",
        "quote\"double.txt",
        "café.txt",
        "🎉.txt",
        "dir with space/ünï.txt",
        "q?mark.txt",
    ];
    let files: Vec<(&str, &[u8])> = names.iter().map(|name| (*name, name.as_bytes())).collect();
    let server = TestServer::start(site(&files)).await;
    for name in names {
        let reply = server.get(&format!("/{}", encode(name))).await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.body, name.as_bytes(), "{name}");
    }
    // The listing's links lead to the same files, as a browser would follow them.
    let listing = server.get("/").await.text();
    let folder = server.get("/dir%20with%20space/").await.text();
    let mut followed = 0;
    for page in [&listing, &folder] {
        for href in page
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
        {
            if href.ends_with('/') {
                continue;
            }
            let href = href
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
                .replace("&#39;", "'");
            let reply = server.get(&href).await;
            assert_eq!(reply.status, 200, "{href}");
            followed += 1;
        }
    }
    assert_eq!(followed, names.len());
    server.stop().await;
}

#[tokio::test]
async fn a_huge_file_is_streamed_not_read_whole() {
    let root = site(&[]);
    // Sparse: 2 GiB on paper, nothing on disk.
    let file = std::fs::File::create(root.path().join("huge.bin")).unwrap();
    file.set_len(2 << 30).unwrap();
    let server = TestServer::start(root).await;
    let head = server.request("HEAD", "/huge.bin", &[]).await;
    assert_eq!(head.header("content-length"), Some("2147483648"));
    let tail = server
        .request("GET", "/huge.bin", &[("Range", "bytes=-5")])
        .await;
    assert_eq!(tail.status, 206);
    assert_eq!(
        tail.header("content-range"),
        Some("bytes 2147483643-2147483647/2147483648")
    );
    assert_eq!(tail.body, [0; 5]);

    // The first bytes of a full download arrive long before 2 GiB could have been read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0; 64 * 1024];
    tokio::time::timeout(crate::support::TIMEOUT, stream.read_exact(&mut first))
        .await
        .expect("streaming starts at once")
        .unwrap();
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn malformed_paths_get_400() {
    let server = TestServer::start(site(&[("a.txt", b"a")])).await;
    for target in ["/a%zz", "/%ff", "/a%00", "/..%2fa.txt", "/a%5c..%5ca.txt"] {
        let reply = server.get(target).await;
        assert_eq!(reply.status, 400, "{target}");
    }
    assert_eq!(server.get("/a.txt").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_file_asked_for_as_a_folder_is_not_found() {
    let server = TestServer::start(site(&[("page.html", b"x")])).await;
    assert_eq!(server.get("/page.html/").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn private_keys_are_never_served() {
    let server =
        TestServer::start(site(&[("id_rsa", b"SECRET"), ("tls/site.key", b"SECRET")])).await;
    for path in ["/id_rsa", "/tls/site.key", "/ID_RSA"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains("SECRET"));
    }
    assert!(!server.get("/").await.text().contains("id_rsa"));
    server.stop().await;
}

#[tokio::test]
async fn the_listing_leaves_out_links_that_lead_out_of_the_root() {
    let outside = site(&[("secret.txt", b"SECRET")]);
    let root = site(&[("inside.txt", b"x")]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("out.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        root.path().join("inside.txt"),
        root.path().join("alias.txt"),
    )
    .unwrap();
    let server = TestServer::start(root).await;
    let listing = server.get("/").await.text();
    assert!(!listing.contains("out.txt"), "{listing}");
    assert!(listing.contains("alias.txt"), "{listing}");
    assert_eq!(server.get("/alias.txt").await.body, b"x");
    assert_eq!(server.get("/out.txt").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn source_maps_are_json() {
    let server = TestServer::start(site(&[("site.css.map", b"{}")])).await;
    let reply = server.get("/site.css.map").await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    server.stop().await;
}
