//! liveserve's library API used from outside the crate, as a site generator would: build a
//! site, serve it, and reload the open page through the `Reloader`. Only the documented API is
//! used here (nothing from `liveserve::__private`), so a change that breaks a user's build
//! breaks this crate's.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(10);

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// The next JSON message on the page's socket (pings skipped).
    async fn next(socket: &mut Socket) -> Value {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a valid frame");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                return serde_json::from_str(&text).expect("JSON");
            }
        }
    }

    #[tokio::test]
    async fn a_generator_serves_its_site_and_reloads_the_page_it_wrote() {
        let site = tempfile::tempdir().unwrap();
        std::fs::write(
            site.path().join("index.html"),
            "<!doctype html><html><body><h1>generated</h1></body></html>",
        )
        .unwrap();
        let vendor = tempfile::tempdir().unwrap();
        std::fs::write(vendor.path().join("lib.css"), "p { margin: 0 }").unwrap();
        // A socket the program bound itself, and a second folder under /vendor.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let server = liveserve::Server::builder(site.path())
            .listener(listener)
            .mount(&format!("/vendor={}", vendor.path().display()))
            .watch(false)
            .build()
            .await
            .expect("the server builds");
        let addr = server.local_addr();
        assert_eq!(addr, bound);
        let reloader = server.reloader();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            stopped.await.ok();
        }));

        // The page, with the script that keeps it live.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut page = String::new();
        stream.read_to_string(&mut page).await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("<h1>generated</h1>") && page.contains("/__liveserve/client.js"));

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /vendor/lib.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut mounted = String::new();
        stream.read_to_string(&mut mounted).await.unwrap();
        assert!(
            mounted.starts_with("HTTP/1.1 200") && mounted.ends_with("p { margin: 0 }"),
            "{mounted}"
        );

        // The page's socket hears what the generator says it wrote, and nothing else.
        let url = format!("ws://{addr}/__liveserve/ws");
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(next(&mut socket).await["type"], "hello");
        std::fs::write(site.path().join("index.html"), "<h1>again</h1>").unwrap();
        reloader.clone().notify(["/index.html"]);
        assert_eq!(
            next(&mut socket).await,
            json!({"type": "reload", "generation": 1, "paths": ["/index.html"]})
        );
        reloader.notify(["css/site.css"]);
        assert_eq!(
            next(&mut socket).await,
            json!({"type": "css", "generation": 2, "paths": ["/css/site.css"]})
        );
        reloader.reload_all();
        assert_eq!(next(&mut socket).await["all"], true);

        stop.send(()).unwrap();
        tokio::time::timeout(TIMEOUT, serving)
            .await
            .expect("it stops when told")
            .unwrap()
            .expect("it served without error");
    }

    #[tokio::test]
    async fn a_bad_option_is_an_error_from_build() {
        let site = tempfile::tempdir().unwrap();
        let error = liveserve::Server::builder(site.path())
            .proxy("/api=ftp://nowhere")
            .build()
            .await
            .err()
            .expect("an ftp backend is refused");
        assert!(error.to_string().contains("http"), "{error}");
        let missing = liveserve::Server::builder(site.path().join("missing"))
            .build()
            .await;
        assert!(missing.is_err());
    }
}
