//! Routes besides the served folder, and what every route shares, over real HTTP against the
//! server in-process: `--mount` (files, pages, listings, containment, secrets, whole segments,
//! the longest prefix against a real proxied backend, changes sent under the mounted URL),
//! `--spa` (pages fall back, assets do not), a site's own `404.html`, `--header` on every kind of
//! response (a proxied one included), `--allow-host` rules and the 403 that names the flag, and
//! Chrome's `devtools.json` answered on loopback names only.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use liveserve::__private::Config;
use liveserve::__private::settings::HostRule;
use serde_json::Value;
use tempfile::TempDir;

use crate::reload::{Client, paths};
use crate::support::{Reply, TestServer, site, write};
use crate::upstream::Upstream;

/// Every secret starts with this; no response body may ever contain it.
const SECRET: &str = "TOPSECRET";

/// The tag liveserve puts into a page it serves from disk for `path`, before any change.
fn tag(path: &str) -> String {
    format!(
        "<script src=\"/__liveserve/client.js\" data-path=\"{path}\" data-generation=\"0\"></script>"
    )
}

/// Asserts the response's `Content-Type` is `essence`, with or without parameters.
fn assert_type(reply: &Reply, essence: &str) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.split(';').next() == Some(essence),
        "{content_type:?} is not {essence}"
    );
}

/// How many times the response carries the header `name`.
fn count(reply: &Reply, name: &str) -> usize {
    reply
        .headers
        .iter()
        .filter(|(found, _)| found.eq_ignore_ascii_case(name))
        .count()
}

// Mounts --------------------------------------------------------------------------------------

/// `holder/root` is served and `holder/vendor` is the folder to mount; `holder/secret.txt` lies
/// beside both, and `vendor/out-link.txt` points at it.
fn mount_fixture() -> TempDir {
    let holder = tempfile::tempdir().unwrap();
    let root = holder.path().join("root");
    write(&root, "index.html", b"<body>home</body>");
    write(&root, "vendorx/a.css", b"/* the root's vendorx */");
    let vendor = holder.path().join("vendor");
    write(&vendor, "lib.css", b"body { color: red }");
    write(&vendor, "a.css", b"/* the vendor's a.css */");
    write(&vendor, "sub/lib.js", b"export const lib = 1;");
    write(&vendor, "page.html", b"<body>vendor page</body>");
    write(&vendor, ".env", b"TOPSECRET-ENV");
    write(&vendor, "x.pem", b"TOPSECRET-PEM");
    write(holder.path(), "secret.txt", b"TOPSECRET-OUTSIDE");
    symlink(
        holder.path().join("secret.txt"),
        vendor.join("out-link.txt"),
    )
    .unwrap();
    holder
}

/// The mounted folder of a server started by [`start_mounted`].
fn vendor(server: &TestServer) -> PathBuf {
    server.root.path().join("vendor")
}

/// Serves the root of [`mount_fixture`] with its `vendor` folder mounted at `route`.
async fn start_mounted(route: &str, configure: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_below(mount_fixture(), "root", |config| {
        let vendor = config.root.parent().unwrap().join("vendor");
        config.mounts = vec![format!("{route}={}", vendor.display()).parse().unwrap()];
        configure(config);
    })
    .await
}

#[tokio::test]
async fn a_mounted_folder_serves_files_pages_and_listings_at_its_route() {
    let server = start_mounted("/vendor", |_| {}).await;
    for (path, content_type, body) in [
        (
            "/vendor/lib.css",
            "text/css; charset=utf-8",
            "body { color: red }",
        ),
        (
            "/vendor/sub/lib.js",
            "text/javascript; charset=utf-8",
            "export const lib = 1;",
        ),
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.text(), body, "{path}");
    }

    let page = server.get("/vendor/page.html").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(&format!("vendor page{}</body>", tag("/vendor/page.html"))),
        "the page gets the script, with its mounted path: {}",
        page.text()
    );

    let listing = server.get("/vendor/").await;
    assert_eq!(listing.status, 200);
    assert_type(&listing, "text/html");
    let listing = listing.text();
    for shown in [
        "href=\"/vendor/lib.css\"",
        "href=\"/vendor/sub/\"",
        "href=\"/vendor/page.html\"",
    ] {
        assert!(listing.contains(shown), "{shown} in {listing}");
    }
    for hidden in [".env", "x.pem", "out-link.txt"] {
        assert!(
            !listing.contains(hidden),
            "{hidden} is not listed: {listing}"
        );
    }
    assert!(listing.contains(&tag("/vendor/")), "{listing}");

    let redirect = server.get("/vendor").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/vendor/"));
    server.stop().await;
}

#[tokio::test]
async fn a_mount_keeps_requests_inside_its_folder_and_refuses_secrets() {
    let server = start_mounted("/vendor", |_| {}).await;
    for (target, statuses) in [
        ("/vendor/../secret.txt", &[400][..]),
        ("/vendor/%2e%2e/secret.txt", &[400]),
        ("/vendor/%2E%2E%2Fsecret.txt", &[400]),
        ("/vendor/..%2fsecret.txt", &[400]),
        ("/vendor/sub/../../secret.txt", &[400]),
        ("/vendor/out-link.txt", &[404]),
        ("/vendor/.env", &[404]),
        ("/vendor/%2eenv", &[404]),
        ("/vendor/x.pem", &[404]),
        ("/vendor/X.PEM", &[404]),
    ] {
        let reply = server.get(target).await;
        assert!(
            statuses.contains(&reply.status),
            "{target}: status {} not in {statuses:?}",
            reply.status
        );
        let body = String::from_utf8_lossy(&reply.body);
        assert!(!body.contains(SECRET), "{target}: a secret leaked: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_mount_covers_whole_segments_and_the_longest_prefix_wins() {
    let server = start_mounted("/vendor", |_| {}).await;
    let beside = server.get("/vendorx/a.css").await;
    assert_eq!(beside.status, 200);
    assert_eq!(beside.text(), "/* the root's vendorx */", "not the mount");
    server.stop().await;

    // A mount below a proxied prefix takes what is below it; the backend gets the rest.
    let upstream = Upstream::start().await;
    let server = start_mounted("/api/static", |config| {
        config.proxies = vec![upstream.route("/api")];
    })
    .await;
    let mounted = server.get("/api/static/lib.css").await;
    assert_eq!(mounted.status, 200);
    assert_eq!(mounted.text(), "body { color: red }");
    for proxied in ["/api/page", "/api/staticx/lib.css"] {
        let reply = server.get(proxied).await;
        assert_eq!(reply.status, 200, "{proxied}");
        let body = reply.text();
        assert!(
            body.contains("backend page") || body.contains(&format!("\"path\":\"{proxied}\"")),
            "{proxied} is the backend's: {body}"
        );
    }
    assert_eq!(upstream.hits("/api/static/lib.css"), 0);
    assert_eq!(upstream.hits("/api/staticx/lib.css"), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_change_in_a_mounted_folder_is_sent_with_its_mounted_url() {
    let server = start_mounted("/vendor", |_| {}).await;
    let (mut client, _) = Client::connect(&server).await;
    write(&vendor(&server), "lib.css", b"body { color: blue }");
    let message = client.until_named("/vendor/lib.css").await;
    assert_eq!(paths(&message), ["/vendor/lib.css"]);
    write(&vendor(&server), "sub/lib.js", b"export const lib = 2;");
    let message = client.until_named("/vendor/sub/lib.js").await;
    assert_eq!(paths(&message), ["/vendor/sub/lib.js"]);
    server.stop().await;
}

/// The example `--help` gives, `--mount /vendor=node_modules/lib/dist`, in a project whose
/// `.gitignore` lists both: the root ignores the folder, the mount serves and watches it.
#[tokio::test]
async fn a_mount_inside_the_root_sends_changes_the_root_ignores() {
    let root = site(&[
        ("index.html", b"<body>home</body>"),
        (".gitignore", b"node_modules/\ndist/\n"),
        ("node_modules/lib/dist/lib.css", b"a {}"),
    ]);
    let server = TestServer::start_with(root, |config| {
        let dist = config.root.join("node_modules/lib/dist");
        config.mounts = vec![format!("/vendor={}", dist.display()).parse().unwrap()];
    })
    .await;
    assert_eq!(server.get("/vendor/lib.css").await.text(), "a {}");
    let (mut client, _) = Client::connect(&server).await;
    write(
        server.root.path(),
        "node_modules/lib/dist/lib.css",
        b"a { color: red }",
    );
    let message = client.next().await;
    assert_eq!(paths(&message), ["/vendor/lib.css"]);
    server.stop().await;
}

// Single-page apps ----------------------------------------------------------------------------

const SHELL: &str = "<body>app shell</body>";

async fn start_spa() -> TestServer {
    let holder = mount_fixture();
    write(&holder.path().join("root"), "index.html", SHELL.as_bytes());
    write(&holder.path().join("root"), "assets/app.css", b"h1 {}");
    TestServer::start_below(holder, "root", |config| {
        config.spa = Some("index.html".into());
        let vendor = config.root.parent().unwrap().join("vendor");
        config.mounts = vec![format!("/vendor={}", vendor.display()).parse().unwrap()];
    })
    .await
}

/// Asserts `reply` is the app's page, injected, with status 200.
fn assert_shell(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}");
    assert_type(reply, "text/html");
    let expected = SHELL.replace("</body>", &format!("{}</body>", tag("/index.html")));
    assert_eq!(reply.text(), expected, "{what}");
}

#[tokio::test]
async fn with_spa_a_missing_page_gets_the_app_and_a_missing_asset_404() {
    let server = start_spa().await;
    assert_shell(
        &server.get("/deep/route").await,
        "a path without an extension",
    );
    assert_shell(
        &server
            .request("GET", "/docs/v1.2", &[("Accept", "text/html,*/*")])
            .await,
        "a browser asking for HTML",
    );
    for asset in ["/app.js", "/img/x.png", "/docs/v1.2", "/assets/missing.css"] {
        let reply = server.get(asset).await;
        assert_eq!(reply.status, 404, "{asset}");
        assert!(!reply.text().contains("app shell"), "{asset}");
    }
    assert_eq!(server.get("/assets/app.css").await.text(), "h1 {}");

    let get = server.get("/deep/route").await;
    let head = server.request("HEAD", "/deep/route", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        get.header("content-length"),
        "HEAD announces what GET sends"
    );
    get.assert_length_matches();
    assert!(head.body.is_empty());

    let client = server.get("/__liveserve/client.js").await;
    assert_eq!(client.status, 200);
    assert_type(&client, "text/javascript");
    assert!(!client.text().contains("app shell"));

    // The fallback belongs to the root: a mount's missing pages stay missing.
    for missing in ["/vendor/deep/route", "/vendor/missing.js"] {
        let reply = server
            .request("GET", missing, &[("Accept", "text/html")])
            .await;
        assert_eq!(reply.status, 404, "{missing}");
        assert!(!reply.text().contains("app shell"), "{missing}");
    }
    server.stop().await;
}

// 404 pages -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_404_html_in_the_root_is_the_page_for_what_is_missing() {
    let server = TestServer::start(site(&[
        ("index.html", b"<body>home</body>"),
        ("404.html", b"<body>our own 404</body>"),
    ]))
    .await;
    for missing in ["/nope", "/sub/nope.html", "/nope.js"] {
        let reply = server.get(missing).await;
        assert_eq!(reply.status, 404, "{missing}");
        assert_type(&reply, "text/html");
        let body = reply.text();
        assert!(body.starts_with("<body>our own 404"), "{missing}: {body}");
        assert!(
            body.contains("<script src=\"/__liveserve/client.js\" data-path="),
            "injected: {body}"
        );
    }
    server.stop().await;

    let server = TestServer::start(site(&[("index.html", b"<body>home</body>")])).await;
    let reply = server.get("/nope").await;
    assert_eq!(reply.status, 404);
    let body = reply.text();
    assert!(body.contains("<h1>404 Not Found</h1>"), "{body}");
    assert!(body.contains("<code>/nope</code>"), "{body}");
    assert!(body.contains(&tag("/nope")), "{body}");
    server.stop().await;
}

// Custom headers ------------------------------------------------------------------------------

#[tokio::test]
async fn custom_headers_are_on_every_response_and_replace_a_backends() {
    let upstream = Upstream::start().await;
    let headers = [
        ("cross-origin-opener-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        // `/hop` on the backend sends `x-end-to-end: kept`.
        ("x-end-to-end", "from-liveserve"),
    ];
    let server = TestServer::start_with(
        site(&[("index.html", b"<body>home</body>"), ("sub/a.txt", b"a")]),
        |config| {
            config.headers = headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}").parse().unwrap())
                .collect();
            config.proxies = vec![upstream.route("/api")];
        },
    )
    .await;
    let responses = [
        ("a file", server.get("/index.html").await, 200),
        ("a 404", server.get("/nope").await, 404),
        ("a redirect", server.get("/sub").await, 302),
        (
            "a refused Host",
            server
                .request_as("evil.example", "GET", "/index.html", &[])
                .await,
            403,
        ),
        (
            "the client script",
            server.get("/__liveserve/client.js").await,
            200,
        ),
        ("a proxied page", server.get("/api/page").await, 200),
        ("a backend's own header", server.get("/api/hop").await, 200),
    ];
    for (what, reply, status) in &responses {
        assert_eq!(reply.status, *status, "{what}");
        for (name, value) in headers {
            assert_eq!(reply.header(name), Some(value), "{what}: {name}");
            assert_eq!(count(reply, name), 1, "{what}: one {name}");
        }
    }
    let proxied = &responses[5].1;
    assert!(
        proxied.text().contains("backend page"),
        "{}",
        proxied.text()
    );
    server.stop().await;
}

// Host rules ----------------------------------------------------------------------------------

#[tokio::test]
async fn allow_host_rules_admit_a_domain_and_the_names_below_it_only() {
    let server = TestServer::start_with(site(&[("index.html", b"<body>home</body>")]), |config| {
        config.allowed_hosts = vec![
            ".tunnel.example".parse().unwrap(),
            "https://abc.ngrok.io/".parse::<HostRule>().unwrap(),
        ];
    })
    .await;
    for (host, status) in [
        ("tunnel.example", 200),
        ("abc.tunnel.example:443", 200),
        ("a.b.tunnel.example", 200),
        ("abc.ngrok.io", 200),
        ("abc.ngrok.io:8443", 200),
        ("eviltunnel.example", 403),
        ("tunnel.example.evil", 403),
        ("def.ngrok.io", 403),
        ("ngrok.io", 403),
    ] {
        let reply = server.request_as(host, "GET", "/index.html", &[]).await;
        assert_eq!(reply.status, status, "Host: {host}");
    }
    server.stop().await;
}

/// The body of the 403 for `GET /` with `Host: host`, checked to be of `content_type`.
async fn refusal(
    server: &TestServer,
    host: &str,
    headers: &[(&str, &str)],
    content_type: &str,
) -> String {
    let reply = server.request_as(host, "GET", "/", headers).await;
    assert_eq!(reply.status, 403, "Host: {host}");
    assert_type(&reply, content_type);
    reply.text()
}

#[tokio::test]
async fn a_refused_host_gets_a_page_or_a_line_naming_the_flag() {
    let server = TestServer::start(site(&[("index.html", b"<body>home</body>")])).await;
    let html = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let page = refusal(&server, "eviltunnel.example", &html, "text/html").await;
    assert!(page.contains("<code>eviltunnel.example</code>"), "{page}");
    assert!(page.contains("--allow-host eviltunnel.example"), "{page}");

    let line = refusal(&server, "eviltunnel.example", &[], "text/plain").await;
    assert!(line.contains("\"eviltunnel.example\""), "{line}");
    assert!(line.contains("--allow-host eviltunnel.example"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");

    // A name under a domain (a tunnel's) is also told the rule for the whole domain.
    let tunnel = server
        .request_as("abc.tunnel.example:443", "GET", "/", &[])
        .await
        .text();
    assert!(
        tunnel.contains("--allow-host abc.tunnel.example"),
        "{tunnel}"
    );
    assert!(tunnel.contains("--allow-host .tunnel.example"), "{tunnel}");
    server.stop().await;
}

// DevTools ------------------------------------------------------------------------------------

const DEVTOOLS: &str = "/.well-known/appspecific/com.chrome.devtools.json";

/// `devtools.json` asked for through `Host: localhost:PORT`, as Chrome does.
async fn devtools_workspace(server: &TestServer) -> (String, String) {
    let host = format!("localhost:{}", server.addr.port());
    let reply = server.request_as(&host, "GET", DEVTOOLS, &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_type(&reply, "application/json");
    let json: Value = serde_json::from_slice(&reply.body).expect("JSON");
    let workspace = &json["workspace"];
    let root = workspace["root"].as_str().expect("a root").to_owned();
    let uuid = workspace["uuid"].as_str().expect("a uuid").to_owned();
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
    assert!(
        uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{uuid}"
    );
    (root, uuid)
}

#[tokio::test]
async fn devtools_json_names_the_root_with_a_uuid_stable_per_root() {
    let server = TestServer::start(site(&[("index.html", b"x")])).await;
    let canonical = server.root.path().canonicalize().unwrap();
    let (root, uuid) = devtools_workspace(&server).await;
    assert_eq!(root, canonical.to_str().unwrap());

    let server = server.restart(|_| {}).await;
    assert_eq!(
        devtools_workspace(&server).await,
        (root.clone(), uuid.clone()),
        "the same after a restart"
    );

    for host in ["127.0.0.1", "[::1]:8080", "app.localhost"] {
        let reply = server.request_as(host, "GET", DEVTOOLS, &[]).await;
        assert_eq!(reply.status, 200, "Host: {host}");
    }
    // Allowed by the host policy, but not a name of this machine: the path stays private.
    for host in ["192.168.1.5", "192.168.1.5:8080"] {
        let reply = server.request_as(host, "GET", DEVTOOLS, &[]).await;
        assert_eq!(reply.status, 404, "Host: {host}");
        assert!(!reply.text().contains(&root), "Host: {host}");
    }

    let other = TestServer::start(site(&[("index.html", b"x")])).await;
    let (other_root, other_uuid) = devtools_workspace(&other).await;
    assert_ne!(other_root, root);
    assert_ne!(other_uuid, uuid, "another root, another uuid");
    server.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn a_backend_behind_the_whole_site_answers_for_devtools_json() {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(site(&[]), |config| {
        config.proxies = vec![upstream.route("/")];
    })
    .await;
    let host = format!("localhost:{}", server.addr.port());
    let reply = server.request_as(&host, "GET", DEVTOOLS, &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().contains(&format!("\"path\":\"{DEVTOOLS}\"")),
        "the backend's echo: {}",
        reply.text()
    );
    assert_eq!(upstream.hits(DEVTOOLS), 1);
    server.stop().await;
}
