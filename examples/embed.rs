//! liveserve inside another program: a tiny "site generator" that writes a page whenever you
//! press Enter, serves it with live reload, and tells the open page what it wrote.
//!
//!     cargo run --example embed
//!
//! Open the URL it prints, then press Enter in the terminal: the page updates in place. Ctrl-D
//! (end of input) stops it.

use std::io::BufRead;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let site = tempfile::tempdir()?;
    let index = site.path().join("index.html");
    let write_page = move |count: u32| {
        let html = format!(
            "<!doctype html><html><head><title>embed</title></head>\
             <body><h1>Generated {count} time(s)</h1><p>Press Enter in the terminal.</p></body></html>"
        );
        std::fs::write(&index, html)
    };
    write_page(1)?;

    // The generator knows what it writes: no file watcher needed.
    let server = liveserve::Server::builder(site.path())
        .bind("127.0.0.1:0".parse()?)
        .watch(false)
        .build()
        .await?;
    println!("open http://{}/ and press Enter here", server.local_addr());
    let reloader = server.reloader();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        stopped.await.ok();
    }));

    let lines = tokio::task::spawn_blocking(move || {
        let mut count = 1;
        for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
            count += 1;
            if write_page(count).is_ok() {
                reloader.notify(["/index.html"]);
                println!("wrote index.html ({count})");
            }
        }
    });
    lines.await?;
    stop.send(()).ok();
    serving.await??;
    Ok(())
}
