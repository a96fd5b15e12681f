//! Live reload end to end: real files written on disk, the real watcher, the real WebSocket.
//! Absence of a message is proven without sleeping: after the writes that must be ignored, a
//! sentinel file is written, and the next message must name only the sentinel.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use liveserve::__private::protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TIMEOUT, TestServer, site, write};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of the reload endpoint, as a page's script is one.
pub(crate) struct Client {
    socket: Socket,
}

impl Client {
    /// Connects and returns the client with the `hello` it got first.
    pub(crate) async fn connect(server: &TestServer) -> (Client, ServerMessage) {
        Client::connect_to(server.addr).await
    }

    /// [`Client::connect`] to a server at `addr` (the built binary, say).
    pub(crate) async fn connect_to(addr: SocketAddr) -> (Client, ServerMessage) {
        let url = format!("ws://{addr}/__liveserve/ws");
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connected in time")
            .expect("the handshake succeeded");
        let mut client = Client { socket };
        let hello = client.next().await;
        assert!(
            matches!(hello, ServerMessage::Hello { .. }),
            "hello comes first: {hello:?}"
        );
        (client, hello)
    }

    /// Says what the page shows, as the browser client does.
    pub(crate) async fn report(&mut self, tab: &str, path: &str, generation: u64, loading: bool) {
        use futures_util::SinkExt;
        let page = serde_json::json!({
            "type": "page", "tab": tab, "path": path, "generation": generation, "loading": loading,
        });
        self.socket
            .send(Message::text(page.to_string()))
            .await
            .expect("the socket is open");
    }

    /// The next protocol message (pings are skipped).
    pub(crate) async fn next(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, self.socket.next())
                .await
                .expect("a message arrived in time")
                .expect("the socket is open")
                .expect("the frame is valid");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("a protocol message");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Reads messages until one names `path`; returns it.
    pub(crate) async fn until_named(&mut self, path: &str) -> ServerMessage {
        loop {
            let message = self.next().await;
            if paths(&message).iter().any(|named| named == path) {
                return message;
            }
        }
    }

    /// Writes a sentinel file and asserts that the next message names only it: nothing was sent
    /// for what happened before. Its bytes differ each time: a save of the same bytes is no news.
    pub(crate) async fn assert_nothing_before_sentinel(&mut self, root: &Path) {
        self.assert_nothing_sent_for("what happened before", root)
            .await;
    }

    /// [`Client::assert_nothing_before_sentinel`], saying `what` should have sent nothing.
    pub(crate) async fn assert_nothing_sent_for(&mut self, what: &str, root: &Path) {
        static WRITTEN: AtomicU64 = AtomicU64::new(0);
        let count = WRITTEN.fetch_add(1, Ordering::Relaxed);
        write(root, "sentinel.txt", format!("now {count}").as_bytes());
        let message = self.next().await;
        assert_eq!(
            paths(&message),
            ["/sentinel.txt"],
            "nothing is sent for {what}: {message:?}"
        );
    }
}

pub(crate) fn paths(message: &ServerMessage) -> Vec<String> {
    match message {
        ServerMessage::Reload { paths, .. } | ServerMessage::Css { paths, .. } => paths.clone(),
        other => panic!("a change message, not {other:?}"),
    }
}

pub(crate) fn generation(message: &ServerMessage) -> u64 {
    match message {
        ServerMessage::Hello { generation, .. }
        | ServerMessage::Reload { generation, .. }
        | ServerMessage::Css { generation, .. } => *generation,
        ServerMessage::Build { .. } => panic!("a build message has no generation"),
    }
}

fn page_site() -> tempfile::TempDir {
    site(&[
        ("page.html", b"<body>one</body>"),
        ("css/site.css", b"body{}"),
        ("node_modules/lib/index.js", b"x"),
        (".git/HEAD", b"ref"),
        (".gitignore", b"build/\n"),
        ("build/out.js", b"x"),
    ])
}

#[tokio::test]
async fn hello_comes_first_with_version_server_generation_and_what_is_served() {
    let server = TestServer::start(page_site()).await;
    let (_client, hello) = Client::connect(&server).await;
    let ServerMessage::Hello {
        version,
        server: id,
        generation,
        fingerprint,
        morph,
        swap,
        errors,
        build,
    } = hello
    else {
        panic!("{hello:?}");
    };
    assert_eq!(version, 1);
    assert_eq!(build, None, "no --exec, no build to report");
    assert!(!id.is_empty());
    assert_eq!(generation, 0);
    assert!(morph && swap && errors, "all on by default");
    // The same folder served again has the same fingerprint; another one has its own.
    let again = TestServer::start_with(page_site(), |config| {
        config.root = server.root.path().to_path_buf();
    })
    .await;
    let (
        _client,
        ServerMessage::Hello {
            fingerprint: same, ..
        },
    ) = Client::connect(&again).await
    else {
        unreachable!()
    };
    assert_eq!(same, fingerprint);
    let other = TestServer::start(page_site()).await;
    let (
        _client,
        ServerMessage::Hello {
            fingerprint: another,
            ..
        },
    ) = Client::connect(&other).await
    else {
        unreachable!()
    };
    assert_ne!(another, fingerprint);
    for running in [server, again, other] {
        running.stop().await;
    }
}

#[tokio::test]
async fn a_normal_write_is_one_reload_with_its_path() {
    let server = TestServer::start(page_site()).await;
    let (mut client, _) = Client::connect(&server).await;
    write(server.root.path(), "page.html", b"<body>two</body>");
    let message = client.next().await;
    assert!(
        matches!(message, ServerMessage::Reload { generation: 1, .. }),
        "{message:?}"
    );
    assert_eq!(paths(&message), ["/page.html"]);
    client
        .assert_nothing_before_sentinel(server.root.path())
        .await;
    server.stop().await;
}

/// `liveserve . --watch templates`: a watched folder inside the served one (watched already by
/// the walk of the served folder; the start failed on it) reloads every page, as `--watch`
/// says, and the rest of the served folder still updates by path.
#[tokio::test]
async fn a_watch_folder_inside_the_served_one_reloads_and_the_rest_updates_by_path() {
    let root = page_site();
    let inside = root.path().join("css");
    let server = TestServer::start_with(root, move |config| config.watch = vec![inside]).await;
    let (mut client, _) = Client::connect(&server).await;
    write(server.root.path(), "css/site.css", b"body{color:red}");
    let message = client.next().await;
    assert!(
        matches!(&message, ServerMessage::Reload { all: true, .. }),
        "{message:?}"
    );
    write(server.root.path(), "page.html", b"<body>two</body>");
    assert_eq!(paths(&client.next().await), ["/page.html"]);
    client
        .assert_nothing_before_sentinel(server.root.path())
        .await;
    server.stop().await;
}

/// `liveserve . --watch .` (a habit from other tools): the folder is watched as served, so a
/// stylesheet still swaps in place instead of every page reloading.
#[tokio::test]
async fn a_watch_folder_that_is_the_served_one_still_updates_by_path() {
    let root = page_site();
    let same = root.path().to_path_buf();
    let server = TestServer::start_with(root, move |config| config.watch = vec![same]).await;
    assert_a_stylesheet_write_is_a_css_message(server).await;
}

#[tokio::test]
async fn a_stylesheet_write_is_a_css_message() {
    assert_a_stylesheet_write_is_a_css_message(TestServer::start(page_site()).await).await;
}

async fn assert_a_stylesheet_write_is_a_css_message(server: TestServer) {
    let (mut client, _) = Client::connect(&server).await;
    write(server.root.path(), "css/site.css", b"body{color:red}");
    let message = client.next().await;
    assert!(matches!(message, ServerMessage::Css { .. }), "{message:?}");
    assert_eq!(paths(&message), ["/css/site.css"]);
    server.stop().await;
}

#[tokio::test]
async fn full_reload_sends_reload_for_stylesheets() {
    let server = TestServer::start_with(page_site(), |config| config.full_reload = true).await;
    let (mut client, _) = Client::connect(&server).await;
    write(server.root.path(), "css/site.css", b"body{color:red}");
    assert!(matches!(client.next().await, ServerMessage::Reload { .. }));
    server.stop().await;
}

#[tokio::test]
async fn an_atomic_save_is_one_message_and_watching_goes_on() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    write(&root, "page.html.tmp-1234", b"<body>two</body>");
    std::fs::rename(root.join("page.html.tmp-1234"), root.join("page.html")).unwrap();
    let message = client.next().await;
    assert_eq!(
        paths(&message),
        ["/page.html"],
        "the temp file is not reported"
    );

    write(&root, "page.html", b"<body>three</body>");
    assert_eq!(
        paths(&client.next().await),
        ["/page.html"],
        "a later normal save is seen"
    );
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn a_vim_style_save_is_one_message() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    // vim: probe that the folder is writable, move the original to a backup, write the new
    // file, delete the backup.
    write(&root, "4913", b"");
    std::fs::remove_file(root.join("4913")).unwrap();
    std::fs::rename(root.join("page.html"), root.join("page.html~")).unwrap();
    write(&root, "page.html", b"<body>two</body>");
    std::fs::remove_file(root.join("page.html~")).unwrap();
    let message = client.next().await;
    assert!(matches!(message, ServerMessage::Reload { .. }));
    assert_eq!(paths(&message), ["/page.html"]);
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_fifty_writes_is_one_message() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    for i in 0..50 {
        write(&root, &format!("gen/file{i}.js"), b"x");
    }
    let message = client.next().await;
    assert_eq!(paths(&message).len(), 50, "{message:?}");
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn ignored_paths_send_nothing() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    write(&root, ".git/index", b"x");
    write(&root, "node_modules/lib/index.js", b"y");
    write(&root, "node_modules/new/index.js", b"y");
    write(&root, "build/out.js", b"y");
    write(&root, ".hidden/page.html", b"y");
    write(&root, ".env", b"SECRET=1");
    write(&root, "foo.swp", b"y");
    write(&root, "key.pem", b"y");
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn no_gitignore_turns_gitignore_rules_off() {
    let server = TestServer::start_with(page_site(), |config| config.gitignore = false).await;
    let (mut client, _) = Client::connect(&server).await;
    write(server.root.path(), "build/out.js", b"y");
    assert_eq!(paths(&client.next().await), ["/build/out.js"]);
    server.stop().await;
}

#[tokio::test]
async fn ignore_globs_add_to_the_defaults() {
    let server =
        TestServer::start_with(page_site(), |config| config.ignore = vec!["*.log".into()]).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    write(&root, "logs/today.log", b"y");
    write(&root, "x.swp", b"y");
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn a_new_nested_folder_and_a_file_in_it_are_seen() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    write(&root, "a/b/c/new page.html", b"x");
    let message = client.next().await;
    assert!(
        paths(&message).contains(&"/a/b/c/new%20page.html".to_owned()),
        "{message:?}"
    );
    // The new folder is watched from now on.
    write(&root, "a/b/c/new page.html", b"y");
    assert_eq!(paths(&client.next().await), ["/a/b/c/new%20page.html"]);
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_file_reloads() {
    let server = TestServer::start(page_site()).await;
    let (mut client, _) = Client::connect(&server).await;
    std::fs::remove_file(server.root.path().join("css/site.css")).unwrap();
    let message = client.next().await;
    assert!(
        matches!(message, ServerMessage::Reload { .. }),
        "a removed stylesheet reloads"
    );
    assert_eq!(paths(&message), ["/css/site.css"]);
    server.stop().await;
}

#[tokio::test]
async fn every_client_receives_the_message() {
    let server = TestServer::start(page_site()).await;
    let (mut first, _) = Client::connect(&server).await;
    let (mut second, _) = Client::connect(&server).await;
    write(server.root.path(), "page.html", b"x");
    assert_eq!(first.next().await, second.next().await);
    server.stop().await;
}

#[tokio::test]
async fn a_reconnect_with_nothing_missed_gets_the_same_server_and_generation() {
    let server = TestServer::start(page_site()).await;
    let (mut client, first_hello) = Client::connect(&server).await;
    write(server.root.path(), "page.html", b"x");
    let change = client.next().await;
    drop(client);
    let (_client, hello) = Client::connect(&server).await;
    let (
        ServerMessage::Hello {
            server: first_id, ..
        },
        ServerMessage::Hello { server: id, .. },
    ) = (&first_hello, &hello)
    else {
        unreachable!()
    };
    assert_eq!(first_id, id, "the same server");
    assert_eq!(generation(&hello), generation(&change), "nothing missed");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_socket() {
    let server = TestServer::start(page_site()).await;
    let (mut first, _) = Client::connect(&server).await;
    let (mut second, _) = Client::connect(&server).await;
    server.stop().await;
    for client in [&mut first, &mut second] {
        let frame = tokio::time::timeout(TIMEOUT, client.socket.next())
            .await
            .expect("closed in time");
        assert!(matches!(frame, Some(Ok(Message::Close(_)))), "{frame:?}");
    }
}

#[tokio::test]
async fn no_reload_has_no_socket() {
    let server = TestServer::start_with(page_site(), |config| config.reload = false).await;
    let url = format!("ws://{}/__liveserve/ws", server.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn malformed_handshakes_are_refused() {
    let server = TestServer::start(page_site()).await;
    let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")];
    let no_key = server
        .request(
            "GET",
            "/__liveserve/ws",
            &[upgrade[0], upgrade[1], ("Sec-WebSocket-Version", "13")],
        )
        .await;
    assert_eq!(no_key.status, 400);
    let old_version = server
        .request(
            "GET",
            "/__liveserve/ws",
            &[
                upgrade[0],
                upgrade[1],
                ("Sec-WebSocket-Version", "8"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
        .await;
    assert_eq!(old_version.status, 426);
    let plain = server.get("/__liveserve/ws").await;
    assert_eq!(plain.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn watching_survives_the_root_being_deleted_and_made_again() {
    let holder = tempfile::tempdir().unwrap();
    write(holder.path(), "dist/index.html", b"one");
    let server = TestServer::start_below(holder, "dist", |_| {}).await;
    let dist = server.root.path().join("dist");
    let (mut client, _) = Client::connect(&server).await;
    // A clean build: the whole folder goes, then comes back.
    std::fs::remove_dir_all(&dist).unwrap();
    write(&dist, "index.html", b"two");
    client.until_named("/index.html").await;
    write(&dist, "sub/later.html", b"three");
    client.until_named("/sub/later.html").await;
    server.stop().await;
}

#[tokio::test]
async fn a_gitignore_edit_takes_effect_at_once() {
    let server = TestServer::start(page_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    // Removing an ignored folder is as quiet as changing it.
    std::fs::remove_dir_all(root.join("build")).unwrap();
    client.assert_nothing_before_sentinel(&root).await;
    // Un-ignoring a folder reports what is in it, and starts watching it.
    write(&root, "build/out.js", b"rebuilt");
    write(&root, ".gitignore", b"");
    client.until_named("/build/out.js").await;
    write(&root, "build/out.js", b"rebuilt again");
    client.until_named("/build/out.js").await;
    server.stop().await;
}

/// A generated site with one folder per page, as Hugo, Zola, 11ty or Jekyll write it.
fn folder_per_page_site(pages: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for page in 0..pages {
        let folder = dir.path().join(format!("posts/p{page}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("index.html"), format!("<p>{page}</p>")).unwrap();
    }
    dir
}

impl Client {
    /// Asserts that no protocol message arrives for `period` (pings may).
    pub(crate) async fn assert_silent_for(&mut self, period: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + period;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_elapsed) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("nothing may arrive while nothing is edited: {other:?}"),
            }
        }
    }
}

/// Fetches `count` files from the server, `parallel` at a time.
async fn load(server: &TestServer, targets: &[String], count: usize, parallel: usize) {
    let mut requests = futures_util::stream::iter((0..count).map(|i| {
        let target = &targets[i % targets.len()];
        async move { server.get(target).await.status }
    }))
    .buffer_unordered(parallel);
    while let Some(status) = requests.next().await {
        assert_eq!(status, 200);
    }
}

/// Reload storm (issue 8): the watcher's own walk of a tree with thousands of folders (and
/// every file served) produced open events that overflowed its queue; each overflow re-walked
/// the tree, whose events overflowed it again, and every page reloaded forever.
#[tokio::test]
async fn reload_storm_a_tree_of_thousands_of_folders_is_silent_until_edited() {
    let server = TestServer::start(folder_per_page_site(6_000)).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    // Right after the walk, an edit is one message.
    write(&root, "posts/p5999/index.html", b"<p>edited</p>");
    assert_eq!(paths(&client.next().await), ["/posts/p5999/index.html"]);

    // Nothing is edited while pages are served: nothing is sent.
    let pages: Vec<String> = (0..6_000)
        .step_by(7)
        .map(|page| format!("/posts/p{page}/"))
        .collect();
    let quiet = client.assert_silent_for(std::time::Duration::from_secs(2));
    tokio::join!(quiet, load(&server, &pages, 600, 8));

    write(&root, "posts/p3000/index.html", b"<p>edited</p>");
    assert_eq!(paths(&client.next().await), ["/posts/p3000/index.html"]);
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn lost_events_are_one_reload_of_everything_then_watching_goes_on() {
    // A small backlog makes a burst of a few thousand files more than the watcher can hold,
    // as a checkout of another branch is for the default one.
    let server = TestServer::start_with(page_site(), |config| config.watch_backlog = 16).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    for i in 0..300 {
        write(&root, &format!("burst/d{i}/page.html"), b"x");
    }
    for i in 0..2_000 {
        write(&root, &format!("burst/f{i}.js"), b"x");
    }
    let message = client.next().await;
    assert!(
        matches!(&message, ServerMessage::Reload { all: true, paths, .. } if paths.is_empty()),
        "one reload of every page: {message:?}"
    );

    // Folders made while events were lost are watched, and nothing else was sent.
    write(&root, "burst/d150/page.html", b"y");
    assert_eq!(paths(&client.next().await), ["/burst/d150/page.html"]);
    write(&root, "burst/d299/new/deeper.html", b"y");
    assert_eq!(paths(&client.next().await), ["/burst/d299/new/deeper.html"]);
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}

#[tokio::test]
async fn serving_files_under_load_gives_the_watcher_nothing_to_do() {
    // With a backlog this small, the open events that serving used to cause overflowed it.
    let server = TestServer::start_with(page_site(), |config| config.watch_backlog = 16).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    let targets = ["/page.html", "/css/site.css", "/css/", "/"].map(String::from);
    load(&server, &targets, 1_000, 16).await;
    client.assert_nothing_before_sentinel(&root).await;
    server.stop().await;
}
