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
