//! Stopping the server: in-flight responses finish, stuck ones are cut after the grace period.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TIMEOUT, TestServer, site};

#[tokio::test]
async fn an_in_flight_download_finishes_after_shutdown_is_asked() {
    let content: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut server = TestServer::start(site(&[("big.bin", &content)])).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0; 1024];
    let read = tokio::time::timeout(TIMEOUT, stream.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(read > 0);

    let _ = server.stop_signal().send(());
    let task = server.task();
    let mut received = first[..read].to_vec();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut received))
        .await
        .unwrap()
        .unwrap();
    let reply = crate::support::Reply::parse(&received);
    assert_eq!(reply.body, content, "the whole file arrived");
    tokio::time::timeout(TIMEOUT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn idle_and_stuck_connections_do_not_hold_shutdown_for_long() {
    let root = site(&[]);
    let file = std::fs::File::create(root.path().join("huge.bin")).unwrap();
    file.set_len(1 << 30).unwrap();
    let mut server = TestServer::start(root).await;
    let _idle = TcpStream::connect(server.addr).await.unwrap();
    // A client that asks for 1 GiB and never reads it.
    let mut stuck = TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0; 1];
    stuck.read_exact(&mut first).await.unwrap();

    let asked = Instant::now();
    let _ = server.stop_signal().send(());
    tokio::time::timeout(TIMEOUT, server.task())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The grace period is about a second; anything near the test timeout means it was ignored.
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}
