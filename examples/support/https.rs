//! The HTTPS rows of `bench_http` (`-- --https`): start-up to the first 200 over TLS beside
//! plain HTTP, and a headless Chromium loading a page of 100 small ES modules over HTTP/1.1
//! (Chromium's `--disable-http2`) against HTTP/2, from the same server in the same run.
//!
//! The modules are a tree of three levels (the page's module imports 10, each of those 9), as
//! an unbundled app's are: a browser learns of a level only once the one above has arrived.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::browser_driver::Browser;
use crate::support::{Server, get, median};

/// The delay each way of the simulated network: a phone on Wi-Fi sees round trips of about
/// 10 ms to a laptop on the same LAN.
const ONE_WAY_DELAY: Duration = Duration::from_millis(5);

/// Page loads per protocol after the first; the median is reported.
const LOADS: usize = 15;

/// Starts per kind of start-up; the median is reported.
const STARTS: usize = 20;

pub fn run(binary: &Path) {
    let data = tempfile::tempdir().expect("a data folder for the local authority");
    let site = tempfile::tempdir().expect("a temporary site");
    write_module_tree(site.path());
    let env = [("XDG_DATA_HOME", data.path())];

    // The first start makes the local authority; every later one only a certificate.
    let first = Instant::now();
    let server = Server::start_with_env(binary, site.path(), &["--https"], &env);
    let authority = data.path().join("liveserve/ca.crt");
    let client = tls_client(&authority);
    assert!(tls_get(server.port, &client).starts_with(b"HTTP/1.1 200"));
    let first = first.elapsed();
    server.stop();
    let tls = median(STARTS, || {
        let started = Instant::now();
        let server = Server::start_with_env(binary, site.path(), &["--https"], &env);
        assert!(tls_get(server.port, &client).starts_with(b"HTTP/1.1 200"));
        started.elapsed()
    });
    let plain = median(STARTS, || {
        let started = Instant::now();
        let server = Server::start(binary, site.path(), &[]);
        assert!(get(server.port, "/index.html").starts_with(b"HTTP/1.1 200"));
        started.elapsed()
    });
    println!(
        "{:<52} {:>12} {:>12}",
        "start-up to first 200", "https", "http"
    );
    println!(
        "{:<52} {:>12} {:>12}",
        format!("median of {STARTS} starts"),
        ms(tls),
        ms(plain)
    );
    println!(
        "{:<52} {:>12}",
        "first start ever (makes the local authority)",
        ms(first)
    );

    let server = Server::start_with_env(binary, site.path(), &["--https"], &env);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the browser");
    runtime.block_on(async {
        let direct = format!("https://localhost:{}/index.html", server.port);
        print_loads("on loopback", &direct).await;
        let relay = delaying_relay(server.port, ONE_WAY_DELAY).await;
        let delayed = format!("https://localhost:{relay}/index.html");
        let network = format!(
            "{} ms each way (a phone on Wi-Fi)",
            ONE_WAY_DELAY.as_millis()
        );
        print_loads(&network, &delayed).await;
    });
    server.stop();
}

/// Loads `url` in a Chromium speaking HTTP/1.1, then in one speaking HTTP/2, and prints the
/// first load and the median of the next [`LOADS`] for each.
async fn print_loads(network: &str, url: &str) {
    println!(
        "\n{:<52} {:>12} {:>12}",
        format!("Chromium, 100 ES modules, {network}"),
        "first load",
        "median load"
    );
    let mut medians = Vec::new();
    for (protocol, switches) in [("http/1.1", &["--disable-http2"][..]), ("h2", &[][..])] {
        let mut args = vec!["--ignore-certificate-errors".to_owned()];
        args.extend(switches.iter().map(|switch| switch.to_string()));
        let browser = Browser::start_with(&args).await;
        let first = page_load(&browser, url, protocol).await;
        let mut times = Vec::new();
        for _ in 0..LOADS {
            times.push(page_load(&browser, url, protocol).await);
        }
        browser.close().await;
        times.sort();
        let median = times[times.len() / 2];
        medians.push(median);
        println!(
            "{:<52} {:>12} {:>12}",
            format!("  over {protocol}"),
            ms(first),
            ms(median)
        );
    }
    println!(
        "  HTTP/2 is {:.2}× as fast as HTTP/1.1",
        medians[0].as_secs_f64() / medians[1].as_secs_f64()
    );
}

/// A TCP relay to `port` that holds every chunk for `delay` in each direction, as a network
/// with that latency would (and no less bandwidth); returns the port it listens on.
async fn delaying_relay(port: u16, delay: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(delayed_copy(client_read, server_write, delay));
            tokio::spawn(delayed_copy(server_read, client_write, delay));
        }
    });
    relay_port
}

/// Copies `from` to `to`, each chunk written `delay` after it was read, in order.
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (queue, mut due) = tokio::sync::mpsc::unbounded_channel::<(_, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let at = tokio::time::Instant::now() + delay;
        if queue.send((at, buffer[..read].to_vec())).is_err() {
            break;
        }
    }
    drop(queue);
    let _ = writer.await;
}

/// Loads `url` in `browser`; returns the time from navigation to the last module's evaluation,
/// after checking the modules came over `protocol`.
async fn page_load(browser: &Browser, url: &str, protocol: &str) -> Duration {
    browser.open(url).await;
    browser
        .wait_until("the modules ran", "window.loadedAt !== undefined")
        .await;
    let used = browser
        .eval(
            "return performance.getEntriesByType('resource')
                .filter(entry => entry.name.endsWith('.js'))
                .map(entry => entry.nextHopProtocol)",
        )
        .await;
    let used: Vec<&str> = used
        .as_array()
        .expect("resource timings")
        .iter()
        .filter_map(|value| value.as_str())
        .collect();
    assert!(
        used.len() >= 100 && used.iter().all(|found| *found == protocol),
        "expected 100 modules over {protocol}, got {used:?}"
    );
    let loaded = browser.eval("return window.loadedAt").await;
    Duration::from_secs_f64(loaded.as_f64().expect("a time") / 1000.0)
}

/// `index.html` with a module `main.js` importing `b0.js`..`b9.js`, each importing nine leaves:
/// 100 modules of about 1 KiB.
fn write_module_tree(root: &Path) {
    let filler = format!("// {}\n", "module body ".repeat(8)).repeat(10);
    let mut main = String::new();
    for branch in 0..10 {
        main.push_str(&format!(
            "import {{ value as b{branch} }} from './b{branch}.js';\n"
        ));
        let mut code = String::new();
        let mut sum = Vec::new();
        for leaf in 0..9 {
            code.push_str(&format!(
                "import {{ value as l{leaf} }} from './l{branch}_{leaf}.js';\n"
            ));
            sum.push(format!("l{leaf}"));
            let leaf_code = format!("{filler}export const value = {};\n", branch * 9 + leaf);
            std::fs::write(root.join(format!("l{branch}_{leaf}.js")), leaf_code).unwrap();
        }
        code.push_str(&format!(
            "{filler}export const value = {};\n",
            sum.join(" + ")
        ));
        std::fs::write(root.join(format!("b{branch}.js")), code).unwrap();
    }
    let all: Vec<String> = (0..10).map(|branch| format!("b{branch}")).collect();
    main.push_str(&format!(
        "document.body.dataset.sum = {};\nwindow.loadedAt = performance.now();\n",
        all.join(" + ")
    ));
    std::fs::write(root.join("main.js"), main).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><html><head><script type=module src=main.js></script></head><body>modules</body></html>\n",
    )
    .unwrap();
}

/// A TLS client trusting only the local authority in `authority` (PEM).
fn tls_client(authority: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(authority).expect("the authority's file") {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// GET /index.html over a fresh TLS connection; the whole response.
fn tls_get(port: u16, client: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut connection = rustls::ClientConnection::new(client.clone(), name).unwrap();
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = rustls::Stream::new(&mut connection, &mut socket);
    stream
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    // The server closes without a TLS close_notify once done: what arrived before counts.
    let _ = stream.read_to_end(&mut response);
    response
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
