//! Attacks, sent as raw bytes over TCP so nothing normalises them on the way. For each: the
//! status, no secret in the body, and the server still serves a normal request afterwards.

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TIMEOUT, TestServer, write};

/// Every secret starts with this; no response body may ever contain it.
const SECRET: &str = "TOPSECRET";

/// `holder/root` is served; `holder/root-secret` sits next to it (a sibling whose name starts
/// with the root's, to catch prefix comparisons), with secrets in it and inside the root.
fn fixture() -> tempfile::TempDir {
    let holder = tempfile::tempdir().unwrap();
    let root = holder.path().join("root");
    write(&root, "index.html", b"<body>home</body>");
    write(&root, "foo..bar", b"dots");
    write(&root, ".well-known/x", b"well known");
    write(&root, "sub/page.html", b"<body>sub</body>");
    write(&root, "app.js", b"console.log('app')");
    write(&root, ".env", b"TOPSECRET-ENV");
    write(&root, ".git/config", b"TOPSECRET-GIT");
    write(&root, "key.pem", b"TOPSECRET-PEM");
    write(
        holder.path(),
        "root-secret/secret.txt",
        b"TOPSECRET-OUTSIDE",
    );
    symlink(root.join("sub/page.html"), root.join("in-link.html")).unwrap();
    symlink(
        holder.path().join("root-secret/secret.txt"),
        root.join("out-link.txt"),
    )
    .unwrap();
    symlink(holder.path().join("root-secret"), root.join("out-dir")).unwrap();
    symlink(root.join("loop-a"), root.join("loop-b")).unwrap();
    symlink(root.join("loop-b"), root.join("loop-a")).unwrap();
    holder
}

async fn start(configure: impl FnOnce(&mut liveserve::__private::Config)) -> TestServer {
    TestServer::start_below(fixture(), "root", configure).await
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

fn with_host(target: &str, host: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn websocket(extra: &str) -> String {
    format!(
        "GET /__liveserve/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n"
    )
}

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Sends one attack and checks status, secrecy, and that the server still works.
async fn assert_attack(server: &TestServer, name: &str, raw: &str, allowed: &[u16]) {
    let reply = server.send_raw(raw.as_bytes()).await;
    assert!(
        allowed.contains(&reply.status),
        "{name}: status {} not in {allowed:?}",
        reply.status
    );
    let body = String::from_utf8_lossy(&reply.body);
    assert!(!body.contains(SECRET), "{name}: a secret leaked: {body}");
    let normal = server.get("/index.html").await;
    assert_eq!(normal.status, 200, "{name}: the server still serves");
}

#[tokio::test]
async fn attacks_are_refused_and_leak_nothing() {
    let server = start(|_| {}).await;
    let websocket_ok = websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}"));
    let attacks: Vec<(&str, String, &[u16])> = vec![
        // Traversal, in every spelling.
        ("dot-dot", get("/../root-secret/secret.txt"), &[400]),
        ("encoded dot-dot", get("/%2e%2e/root-secret/secret.txt"), &[400]),
        ("upper-case encoded", get("/%2E%2E%2Froot-secret%2Fsecret.txt"), &[400]),
        ("encoded slash", get("/..%2froot-secret/secret.txt"), &[400]),
        ("mixed dot", get("/.%2e/root-secret/secret.txt"), &[400]),
        ("double encoding", get("/%252e%252e/root-secret/secret.txt"), &[404]),
        ("backslashes", get("/..\\root-secret\\secret.txt"), &[400]),
        ("encoded backslashes", get("/%5c..%5croot-secret%5csecret.txt"), &[400]),
        ("deep dot-dot", get("/sub/../../root-secret/secret.txt"), &[400]),
        ("overlong UTF-8 dots", get("/%c0%ae%c0%ae/root-secret/secret.txt"), &[400]),
        ("sibling prefix", get("//root-secret/secret.txt"), &[404]),
        ("NUL", get("/index.html%00.txt"), &[400]),
        ("bad escape", get("/%zz"), &[400]),
        ("absolute path", get("/etc/passwd"), &[404]),
        ("absolute-form dot-dot", get("http://localhost/../root-secret/secret.txt"), &[400]),
        ("query does not pick the file", get("/index.html?/../../root-secret/secret.txt"), &[200]),
        ("fragment does not pick the file", get("/index.html#/../../root-secret/secret.txt"), &[200, 400]),
        // Symlinks out of the root, in the last position and in the middle.
        ("link to a file outside", get("/out-link.txt"), &[404]),
        ("link to a folder outside", get("/out-dir/secret.txt"), &[404]),
        ("link to a folder outside, listed", get("/out-dir/"), &[404]),
        ("symlink loop", get("/loop-a"), &[404]),
        // Dotfiles and secrets.
        (".env", get("/.env"), &[404]),
        (".env upper case", get("/.ENV"), &[404]),
        (".git/config", get("/.git/config"), &[404]),
        (".git folder", get("/.git/"), &[404]),
        ("encoded dot", get("/%2egit/config"), &[404]),
        ("encoded slash in .git", get("/.git%2fconfig"), &[404]),
        (".env with a slash", get("/.env/"), &[404]),
        (".env with /.", get("/.env/."), &[404]),
        (".env through dot-dot", get("/sub/../.env"), &[400]),
        ("key file", get("/key.pem"), &[404]),
        ("key file upper case", get("/KEY.PEM"), &[404]),
        // Host names (DNS rebinding).
        ("foreign host", with_host("/index.html", "evil.example"), &[403]),
        ("localhost prefix", with_host("/index.html", "localhost.evil.example"), &[403]),
        ("IP-like name", with_host("/index.html", "127.0.0.1.nip.io"), &[403]),
        ("no host", "GET /index.html HTTP/1.1\r\nConnection: close\r\n\r\n".into(), &[400]),
        ("user info in host", with_host("/index.html", "user@localhost"), &[400]),
        ("bad port", with_host("/index.html", "localhost:99999"), &[400]),
        (
            "two hosts",
            "GET /index.html HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n".into(),
            &[400],
        ),
        // A request naming another server, or asking for a tunnel, is for a forward proxy.
        ("foreign absolute-form", get("http://evil.example/index.html"), &[400]),
        ("local absolute-form", get("http://localhost/index.html"), &[400]),
        ("CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".into(), &[400]),
        // WebSocket handshakes.
        ("foreign origin", websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}Origin: http://evil.example\r\n")), &[403]),
        ("null origin", websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}Origin: null\r\n")), &[403]),
        ("other local port", websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}Origin: http://localhost:1\r\n")), &[403]),
        ("no key", websocket("Sec-WebSocket-Version: 13\r\n"), &[400]),
        ("short key", websocket("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n"), &[400]),
        ("old version", websocket(&format!("Sec-WebSocket-Version: 8\r\n{KEY}")), &[426]),
        (
            "key outside base64",
            websocket("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ************************\r\n"),
            &[400],
        ),
        (
            "two origins",
            websocket(&format!(
                "Sec-WebSocket-Version: 13\r\n{KEY}Origin: http://localhost\r\nOrigin: http://evil.example\r\n"
            )),
            &[403],
        ),
        ("bare .localhost", with_host("/index.html", ".localhost"), &[403]),
        ("POST upgrade", websocket_ok.replacen("GET", "POST", 1), &[400]),
        // Reading the project's code from another site.
        (
            "cross-site script include",
            "GET /app.js HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\nConnection: close\r\n\r\n".into(),
            &[403],
        ),
        // Oversize requests.
        ("huge header", format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(100 * 1024)), &[431]),
        ("many headers", format!("GET / HTTP/1.1\r\nHost: localhost\r\n{}\r\n", "X-A: b\r\n".repeat(200)), &[431]),
        ("long target", get(&format!("/{}", "a".repeat(10 * 1024))), &[414]),
        // Hostile ranges.
        ("huge suffix range", format!("GET /index.html HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-{}\r\nConnection: close\r\n\r\n", "9".repeat(30)), &[206]),
        ("a thousand ranges", format!("GET /index.html HTTP/1.1\r\nHost: localhost\r\nRange: bytes={}0-0\r\nConnection: close\r\n\r\n", "0-0,".repeat(1000)), &[200]),
        ("range past the end", "GET /index.html HTTP/1.1\r\nHost: localhost\r\nRange: bytes=999999-\r\nConnection: close\r\n\r\n".into(), &[416]),
    ];
    assert!(attacks.len() >= 40);
    for (name, raw, allowed) in &attacks {
        assert_attack(&server, name, raw, allowed).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn legitimate_look_alikes_keep_working() {
    let server = start(|_| {}).await;
    for (name, raw, expected) in [
        ("a port", with_host("/index.html", "localhost:1"), 200),
        ("a .localhost name", with_host("/index.html", "a.localhost"), 200),
        ("IPv6 loopback", with_host("/index.html", "[::1]"), 200),
        ("an IP address", with_host("/index.html", "192.168.1.20:8080"), 200),
        ("dots inside a name", get("/foo..bar"), 200),
        ("a link inside the root", get("/in-link.html"), 200),
        ("well-known", get("/.well-known/x"), 200),
        ("a same-origin WebSocket", websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}Origin: http://localhost\r\n")), 101),
        ("a WebSocket without Origin", websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}")), 101),
        ("a same-site script", "GET /app.js HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\nConnection: close\r\n\r\n".to_owned(), 200),
    ] {
        let reply = if expected == 101 {
            handshake_status(&server, &raw).await
        } else {
            server.send_raw(raw.as_bytes()).await.status
        };
        assert_eq!(reply, expected, "{name}");
    }
    let plain = server.get("/index.html").await;
    assert_eq!(
        plain.header("access-control-allow-origin"),
        None,
        "no CORS by default"
    );
    server.stop().await;
}

/// The status of a WebSocket handshake (the connection stays open after a 101).
async fn handshake_status(server: &TestServer, raw: &str) -> u16 {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut head = vec![0; 12];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn the_relaxing_flags_relax_only_their_rule() {
    let server = start(|config| {
        config.allow_hidden = true;
        config.follow_symlinks = true;
        config.allowed_hosts = vec!["tunnel.example".parse().unwrap()];
        config.cors = true;
    })
    .await;
    let env = server.get("/.env").await;
    assert_eq!(env.status, 200, "--allow-hidden");
    assert_eq!(server.get("/.git/config").await.status, 404, "never .git");
    assert_eq!(server.get("/key.pem").await.status, 404, "never keys");
    assert_eq!(
        server.get("/out-link.txt").await.status,
        200,
        "--follow-symlinks"
    );
    assert_eq!(
        server
            .send_raw(with_host("/", "tunnel.example").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .send_raw(with_host("/", "evil.example").as_bytes())
            .await
            .status,
        403
    );
    let script = server
        .request(
            "GET",
            "/app.js",
            &[
                ("Sec-Fetch-Site", "cross-site"),
                ("Sec-Fetch-Mode", "no-cors"),
                ("Sec-Fetch-Dest", "script"),
            ],
        )
        .await;
    assert_eq!(script.status, 200, "--cors");
    assert_eq!(script.header("access-control-allow-origin"), Some("*"));
    server.stop().await;
}

#[tokio::test]
async fn a_symlink_swapped_while_running_is_caught() {
    let server = start(|_| {}).await;
    let root = server.root.path().join("root");
    symlink(root.join("index.html"), root.join("swap.html")).unwrap();
    assert_eq!(server.get("/swap.html").await.status, 200);
    std::fs::remove_file(root.join("swap.html")).unwrap();
    symlink(
        server.root.path().join("root-secret/secret.txt"),
        root.join("swap.html"),
    )
    .unwrap();
    let reply = server.get("/swap.html").await;
    assert_eq!(reply.status, 404);
    assert!(!reply.text().contains(SECRET));
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = start(|config| config.header_read_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 100 ms, for longer than the timeout allows; the server hangs up.
    let cut = async {
        loop {
            if stream.write_all(b"a").await.is_err() {
                return;
            }
            let mut byte = [0; 1];
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => return, // an error response, then the close
                Err(_) => {}
            }
        }
    };
    tokio::time::timeout(TIMEOUT, cut)
        .await
        .expect("the slow client was cut off");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/index.html").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_but_websockets_are_not() {
    use futures_util::StreamExt;
    let server = start(|config| config.header_read_timeout = Duration::from_millis(300)).await;
    let url = format!("ws://{}/__liveserve/ws", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _hello = socket.next().await.unwrap().unwrap();

    // A keep-alive connection opened after the socket: the response, then the close once it
    // has been idle for the timeout. Its close is the proof that the timeout has passed.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(
        get("/index.html")
            .replace("Connection: close\r\n", "")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, idle.read_to_end(&mut received))
        .await
        .expect("closed")
        .unwrap();
    assert!(received.starts_with(b"HTTP/1.1 200"));

    // The older, idle WebSocket still gets the next change.
    write(
        &server.root.path().join("root"),
        "index.html",
        b"<body>changed</body>",
    );
    let message = tokio::time::timeout(TIMEOUT, socket.next())
        .await
        .expect("a message")
        .unwrap()
        .unwrap();
    assert!(message.to_text().unwrap().contains("reload"));
    server.stop().await;
}

#[tokio::test]
async fn oversize_websocket_frames_close_the_socket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = start(|_| {}).await;
    let url = format!("ws://{}/__liveserve/ws", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _hello = socket.next().await.unwrap().unwrap();
    socket
        .send(Message::text("x".repeat(64 * 1024)))
        .await
        .unwrap();
    let ended = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server closed the socket");
    assert_eq!(server.get("/index.html").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn websocket_clients_are_capped() {
    let server = start(|config| config.max_websocket_clients = 2).await;
    let url = format!("ws://{}/__liveserve/ws", server.addr);
    let first = tokio_tungstenite::connect_async(&url).await.unwrap();
    let second = tokio_tungstenite::connect_async(&url).await.unwrap();
    let raw = websocket(&format!("Sec-WebSocket-Version: 13\r\n{KEY}"));
    assert_eq!(handshake_status(&server, &raw).await, 503);
    drop(first);
    // A slot frees up once the server has seen the first client leave.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = handshake_status(&server, &raw).await;
        if status == 101 {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot is reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
    server.stop().await;
}

#[tokio::test]
async fn five_thousand_idle_connections_do_not_starve_a_request() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start(|_| {}).await;
    let mut idle = Vec::with_capacity(5000);
    for _ in 0..5000 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let started = Instant::now();
    let reply = server.get("/index.html").await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    server.stop().await;
}
