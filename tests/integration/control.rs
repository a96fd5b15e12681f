//! Driving a running server from other programs, through the real server: `POST
//! /__liveserve/reload` publishes what it names to the pages' sockets, from this machine only and
//! never from a web page; `liveserve reload` is its command-line form.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use liveserve::__private::protocol::ServerMessage;
use liveserve::__private::tls::Tls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::reload::Client;
use crate::support::{Reply, TestServer, site};

fn fixture() -> tempfile::TempDir {
    site(&[
        ("index.html", b"<html><body>home</body></html>"),
        ("a.css", b"body { color: red }"),
    ])
}

/// `POST /__liveserve/reload` with `body` and extra `headers`.
async fn post_reload(server: &TestServer, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut raw = format!(
        "POST /__liveserve/reload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    server.send_raw(raw.as_bytes()).await
}

#[tokio::test]
async fn a_program_on_this_machine_reloads_the_pages_it_names_or_all_of_them() {
    let server = TestServer::start(fixture()).await;
    let (mut page, _) = Client::connect(&server).await;
    let named = post_reload(&server, r#"{"paths": ["/a.css"]}"#, &[]).await;
    assert_eq!(named.status, 200, "{}", named.text());
    let ServerMessage::Css { paths, generation } = page.next().await else {
        panic!("a stylesheet is swapped");
    };
    assert_eq!((paths, generation), (vec!["/a.css".to_owned()], 1));
    assert!(named.text().contains(r#""type":"css""#), "{}", named.text());
    // No body: every page.
    assert_eq!(post_reload(&server, "", &[]).await.status, 200);
    let ServerMessage::Reload {
        all, generation, ..
    } = page.next().await
    else {
        panic!("a reload");
    };
    assert!(all);
    assert_eq!(generation, 2);
    // A same-origin request (a tool's page on this server) is fine too.
    let same = post_reload(&server, "", &[("origin", "http://localhost")]).await;
    assert_eq!(same.status, 200);
    page.next().await;
    server.stop().await;
}

#[tokio::test]
async fn web_pages_bad_requests_and_other_methods_are_refused_and_publish_nothing() {
    let server = TestServer::start(fixture()).await;
    let (mut page, _) = Client::connect(&server).await;
    for (headers, status) in [
        (vec![("origin", "https://evil.example")], 403),
        (vec![("origin", "null")], 403),
        (vec![("sec-fetch-site", "cross-site")], 403),
    ] {
        let refused = post_reload(&server, "", &headers).await;
        assert_eq!(refused.status, status, "{headers:?}");
    }
    for body in ["{", r#"{"paths": ["a.css"]}"#, r#"{"files": []}"#] {
        assert_eq!(post_reload(&server, body, &[]).await.status, 400, "{body}");
    }
    let get = server.get("/__liveserve/reload").await;
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    // Nothing was published: the next message is the next real one, generation 1.
    assert_eq!(post_reload(&server, "", &[]).await.status, 200);
    let ServerMessage::Reload { generation, .. } = page.next().await else {
        panic!("a reload");
    };
    assert_eq!(generation, 1);
    server.stop().await;
}

/// This machine's first address other than loopback, if it has one.
fn network_address() -> Option<IpAddr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|interface| interface.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[tokio::test]
async fn another_machine_may_not_reload_the_pages() {
    let Some(ip) = network_address() else {
        panic!("this test needs a network interface besides loopback");
    };
    let server = TestServer::start_exposed(fixture(), |config| {
        config.allowed_hosts = vec![ip.to_string().parse().unwrap()];
    })
    .await;
    let addr = SocketAddr::new(ip, server.addr.port());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /__liveserve/reload HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = Reply::parse(&answer);
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert!(answer.text().contains("this machine"), "{}", answer.text());
    server.stop().await;
}

/// Runs `liveserve reload` with `args` to its end, off the async threads; its data folder (for
/// the local authority) in `data`, when given.
async fn reload_command(args: &[String], data: Option<&Path>) -> std::process::Output {
    let mut command = crate::cli::liveserve();
    command.arg("reload").args(args);
    if let Some(data) = data {
        command.env("XDG_DATA_HOME", data);
    }
    tokio::task::spawn_blocking(move || crate::cli::run_to_exit(command))
        .await
        .unwrap()
}

#[tokio::test]
async fn liveserve_reload_is_the_command_line_form() {
    let server = TestServer::start(fixture()).await;
    let (mut page, _) = Client::connect(&server).await;
    let url = format!("http://{}/", server.addr);
    let named = reload_command(&["--url".into(), url.clone(), "/a.css".into()], None).await;
    assert_eq!(named.status.code(), Some(0), "{named:?}");
    assert!(String::from_utf8_lossy(&named.stdout).contains(r#""paths":["/a.css"]"#));
    assert!(matches!(page.next().await, ServerMessage::Css { .. }));
    let everything = reload_command(&["--url".into(), url], None).await;
    assert_eq!(everything.status.code(), Some(0), "{everything:?}");
    assert!(matches!(
        page.next().await,
        ServerMessage::Reload { all: true, .. }
    ));
    // Nobody there: one line saying so.
    let port = server.addr.port();
    server.stop().await;
    let nobody = reload_command(&["--url".into(), format!("http://127.0.0.1:{port}/")], None).await;
    crate::cli::assert_one_line_error(&nobody, 1, "no liveserve answers at");
}

/// Bad arguments to `liveserve reload` and `wait` are one line each, exit 2, before anything
/// is sent; an answer from a program that is not liveserve is not printed whole.
#[tokio::test]
async fn the_commands_say_what_is_wrong_in_one_line() {
    for (args, needle) in [
        (
            vec!["reload", "--bogus"],
            "`liveserve reload --help` lists the flags",
        ),
        (
            vec!["reload", "--url", "localhost:8080"],
            "not a URL such as",
        ),
        (
            vec!["reload", "--url", "ftp://x/"],
            "ftp is not http or https",
        ),
        (
            vec!["reload", "--url", "http://localhost:99999/"],
            "the port must be a number from 1 to 65535",
        ),
        (
            vec!["wait", "--url", "http://me:secret@localhost:8080/"],
            "liveserve takes no user name or password",
        ),
        (
            vec!["reload", "style.css"],
            "a URL path starts with /, e.g. /style.css",
        ),
        (
            vec!["wait", "--timeout", "x"],
            "invalid value 'x' for '--timeout",
        ),
    ] {
        let mut command = crate::cli::liveserve();
        command.args(&args);
        let output = tokio::task::spawn_blocking(move || crate::cli::run_to_exit(command))
            .await
            .unwrap();
        crate::cli::assert_one_line_error(&output, 2, needle);
    }
    // Another program on the port (as `python3 -m http.server` answers a POST).
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", other.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = other.accept().await.unwrap();
        let mut head = [0; 1024];
        let _ = stream.read(&mut head).await;
        let page = "<!DOCTYPE HTML>\n<html><body>\n<h1>Error response</h1>\n</body></html>\n";
        let answer = format!(
            "HTTP/1.1 501 Unsupported method\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
    });
    let output = reload_command(&["--url".into(), url], None).await;
    crate::cli::assert_one_line_error(&output, 1, "answered 501 Not Implemented; is it liveserve?");
}

#[tokio::test]
async fn liveserve_reload_speaks_https_trusting_the_local_authority() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::https::start_https(fixture(), &data.path().join("liveserve")).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let output = reload_command(&["--url".into(), url], Some(data.path())).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains(r#""all":true"#));
    server.stop().await;
}

/// A server started with `--cert` (here a self-signed one, as mkcert's authority would sign):
/// `liveserve reload` trusts it when `--ca` names its authority, and otherwise says to; the
/// authority given does not stop it from trusting liveserve's own.
#[tokio::test]
async fn liveserve_reload_trusts_the_authority_given_with_ca() {
    let files = tempfile::tempdir().unwrap();
    let (certificate, key) = crate::https::own_certificate();
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, certificate).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let tls = Tls::from_files(&cert_file, &key_file).unwrap();
    let server = TestServer::start_with(fixture(), move |config| config.tls = Some(tls)).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    // No authority of liveserve's own on this machine.
    let empty = tempfile::tempdir().unwrap();
    let none = reload_command(&["--url".into(), url.clone()], Some(empty.path())).await;
    crate::cli::assert_one_line_error(&none, 1, "with --ca FILE");
    // liveserve's own authority, which did not sign it.
    let data = tempfile::tempdir().unwrap();
    let localhost = ["localhost".to_owned()];
    let local = Tls::local(
        &data.path().join("liveserve"),
        &localhost,
        &[crate::https::loopback()],
    )
    .unwrap();
    let other = reload_command(&["--url".into(), url.clone()], Some(data.path())).await;
    crate::cli::assert_one_line_error(
        &other,
        1,
        "its certificate is not signed by liveserve's local authority",
    );
    assert!(String::from_utf8_lossy(&other.stderr).contains("--ca FILE"));
    let ca = cert_file.display().to_string();
    let with_ca = |url: String| vec!["--url".into(), url, "--ca".into(), ca.clone()];
    let given = reload_command(&with_ca(url), Some(data.path())).await;
    assert_eq!(given.status.code(), Some(0), "{given:?}");
    assert!(String::from_utf8_lossy(&given.stdout).contains(r#""all":true"#));
    server.stop().await;
    // The --ca is trusted as well as liveserve's own: an --https server is still reached.
    let https = TestServer::start_with(fixture(), move |config| config.tls = Some(local)).await;
    let url = format!("https://localhost:{}/", https.addr.port());
    let own = reload_command(&with_ca(url), Some(data.path())).await;
    assert_eq!(own.status.code(), Some(0), "{own:?}");
    https.stop().await;
}

/// `GET /__liveserve/status`, parsed.
async fn status(server: &TestServer) -> serde_json::Value {
    let answer = server.get("/__liveserve/status").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    serde_json::from_str(&answer.text()).expect("JSON")
}

/// Runs `liveserve wait` against `server` with `timeout` seconds, off the async threads.
pub(crate) fn wait_command(
    server: &TestServer,
    timeout: &str,
) -> tokio::task::JoinHandle<std::process::Output> {
    let mut command = crate::cli::liveserve();
    command
        .args(["wait", "--timeout", timeout, "--url"])
        .arg(format!("http://{}/", server.addr));
    tokio::task::spawn_blocking(move || crate::cli::run_to_exit(command))
}

#[tokio::test]
async fn the_status_says_what_each_tab_shows_and_wait_waits_for_all_of_them() {
    let server = TestServer::start(fixture()).await;
    // No page open: wait gives up.
    let nobody = wait_command(&server, "0.3").await.unwrap();
    assert_eq!(nobody.status.code(), Some(2), "{nobody:?}");
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no page is open"));

    let (mut page, _) = Client::connect(&server).await;
    page.report("tab-1", "/", 0, false).await;
    let shown = async {
        loop {
            let now = status(&server).await;
            if now["pages"]
                .as_array()
                .is_some_and(|pages| !pages.is_empty())
            {
                return now;
            }
        }
    };
    let now = tokio::time::timeout(crate::support::TIMEOUT, shown)
        .await
        .unwrap();
    assert_eq!(
        now,
        serde_json::json!({
            "generation": 0, "pending": false, "build": "ok", "failure": null,
            "pages": [{"path": "/", "generation": 0, "loading": false, "errors": []}],
        })
    );
    // A change the page has not shown yet: wait waits until it says it does.
    assert_eq!(
        post_reload(&server, r#"{"paths": ["/a.css"]}"#, &[])
            .await
            .status,
        200
    );
    page.next().await;
    let waiting = wait_command(&server, "10");
    let behind = wait_command(&server, "0.3").await.unwrap();
    assert_eq!(behind.status.code(), Some(2), "{behind:?}");
    assert!(!waiting.is_finished());
    page.report("tab-1", "/", 1, false).await;
    let done = waiting.await.unwrap();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let printed: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(printed["pages"][0]["generation"], 1);
    // The same rules as the trigger: never for a web page.
    let refused = server
        .request(
            "GET",
            "/__liveserve/status",
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(refused.status, 403);
    server.stop().await;
}
