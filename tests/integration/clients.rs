//! Clients that misbehave, through the real server: a WebSocket client that vanishes without a
//! close (its network gone, its laptop asleep) answers no ping, and is dropped so its slot is
//! free again; a client that answers its pings stays, however quiet.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::reload::Client;
use crate::support::{TIMEOUT, TestServer, site, write};

const PING: Duration = Duration::from_millis(100);

/// A WebSocket handshake done by hand, after which the client says and answers nothing.
async fn vanishing_client(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let handshake = "GET /__liveserve/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
                     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

#[tokio::test]
async fn a_client_that_vanished_is_dropped_and_its_slot_freed() {
    let server = TestServer::start_with(site(&[("index.html", b"<p>x</p>")]), |config| {
        config.ping_interval = PING;
        config.max_websocket_clients = 1;
    })
    .await;
    let mut gone = vanishing_client(&server).await;
    // Its slot is taken: nobody else gets in.
    let refused = server
        .request(
            "GET",
            "/__liveserve/ws",
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
        .await;
    assert_eq!(refused.status, 503);
    // It never answers the pings: the server closes it (what arrives before is pings).
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, gone.read_to_end(&mut received))
        .await
        .expect("the server closed the silent client")
        .ok();
    // Now a real client gets the slot, and keeps it while it answers its pings.
    let (mut page, _) = Client::connect(&server).await;
    page.assert_silent_for(PING * 6).await;
    write(server.root.path(), "index.html", b"<p>y</p>");
    assert_eq!(crate::reload::paths(&page.next().await), ["/index.html"]);
    server.stop().await;
}

/// The binary's open descriptors (files and sockets), from /proc.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Closes `stream` with a reset (RST) instead of an orderly close, as a client whose tab or
/// network went away does.
fn reset(stream: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a valid socket and a pointer to a live `linger` of the right size.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0);
    drop(stream);
}

#[test]
fn clients_that_reset_mid_download_leave_no_descriptor_behind() {
    use std::io::{Read, Write};
    let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let root = site(&[("big.bin", &big), ("index.html", b"<p>x</p>")]);
    let mut command = crate::cli::liveserve();
    command
        .arg(root.path())
        .args(["--port", "0", "-q", "--no-reload"]);
    let running = crate::cli::Running::start(command);
    let port = crate::cli::port_of(&running.next_line());
    let pid = running.child.id();
    assert!(crate::cli::http_get(port, "/index.html").starts_with("HTTP/1.1 200"));
    let baseline = open_descriptors(pid);
    for _ in 0..20 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut some = [0; 64 * 1024];
        stream.read_exact(&mut some).unwrap();
        reset(stream);
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    while open_descriptors(pid) > baseline && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = open_descriptors(pid);
    assert!(
        left <= baseline,
        "every file and socket closed: {left} open, {baseline} before"
    );
    assert!(crate::cli::http_get(port, "/index.html").starts_with("HTTP/1.1 200"));
    let (status, _) = running.terminate();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_holding_up_the_others() {
    let send_timeout = Duration::from_secs(2);
    let server = TestServer::start_with(site(&[("index.html", b"<p>x</p>")]), |config| {
        config.send_timeout = send_timeout;
    })
    .await;
    let mut stalled = vanishing_client(&server).await;
    let (mut page, _) = Client::connect(&server).await;
    // Messages of about 15 KB, until far more than the stalled client's socket buffers hold.
    let paths: Vec<String> = (0..100)
        .map(|i| format!("/{}/{i}.css", "x".repeat(140)))
        .collect();
    let body = serde_json::json!({ "paths": paths }).to_string();
    let mut slowest = Duration::ZERO;
    for generation in 1..=1500u64 {
        let raw = format!(
            "POST /__liveserve/reload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = std::time::Instant::now();
        assert_eq!(server.send_raw(raw.as_bytes()).await.status, 200);
        assert_eq!(crate::reload::generation(&page.next().await), generation);
        slowest = slowest.max(sent.elapsed());
    }
    // Had the stalled client held up the others, some message would have waited for its
    // send timeout.
    assert!(
        slowest < send_timeout,
        "the slowest message took {slowest:?}"
    );
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, stalled.read_to_end(&mut received))
        .await
        .expect("the stalled client was dropped")
        .ok();
    server.stop().await;
}
