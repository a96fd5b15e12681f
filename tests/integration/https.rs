//! HTTPS through the real server: a certificate from the local authority that a client trusting
//! that authority accepts (and one that does not refuses), HTTP/2 and HTTP/1.1 by ALPN with
//! static files, injection and ranges over both, `wss` live reload, the user's own certificate
//! and each way it can be wrong, plain HTTP redirected, and bad clients not holding up others.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use liveserve::__private::tls::{Tls, TlsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::cli::{Running, assert_one_line_error, liveserve, run_to_exit};
use crate::support::{TIMEOUT, TestServer, site};

/// A server on `root` with a certificate from a local authority kept in `authority`.
pub(crate) async fn start_https(root: TempDir, authority: &Path) -> TestServer {
    start_https_with(root, authority, |_| {}).await
}

/// [`start_https`], configured further by `configure`.
pub(crate) async fn start_https_with(
    root: TempDir,
    authority: &Path,
    configure: impl FnOnce(&mut liveserve::__private::Config),
) -> TestServer {
    let tls = Tls::local(authority, &["localhost".to_owned()], &[loopback()]).unwrap();
    TestServer::start_with(root, move |config| {
        config.tls = Some(tls);
        configure(config);
    })
    .await
}

pub(crate) fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// A TLS client that trusts the certificates in `trusted` (PEM) and offers `alpn`.
pub(crate) fn connector(trusted: &Path, alpn: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(trusted).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

pub(crate) async fn handshake(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .expect("the handshake ended in time")
}

/// A response read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Sends GET `path` with `headers` over a TLS connection, in whichever protocol it agreed on.
pub(crate) async fn get(
    stream: TlsStream<TcpStream>,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    // HTTP/2 names the host in the URI's authority, HTTP/1.1 in a header.
    let mut request = if http2 {
        http::Request::get(format!("https://localhost{path}"))
    } else {
        http::Request::get(path).header("host", "localhost")
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let io = TokioIo::new(stream);
    let exchange = async {
        let response = if http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: body.to_vec(),
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("answered in time")
}

pub(crate) fn fixture() -> TempDir {
    site(&[
        (
            "index.html",
            b"<html><head></head><body><p>home</p></body></html>",
        ),
        ("a.css", b"body { color: red }"),
    ])
}

#[tokio::test]
async fn pages_files_and_ranges_over_http2_and_http11_with_the_local_authority() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    let ca = authority.path().join("ca.crt");
    for (alpn, version) in [(&b"h2"[..], "h2"), (&b"http/1.1"[..], "http/1.1")] {
        let client = connector(&ca, alpn);
        let connect = || handshake(server.addr, &client);
        let stream = connect()
            .await
            .expect("a client trusting the authority connects");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn), "{version}");
        let page = get(stream, "/", &[]).await;
        assert_eq!(page.status, 200, "{version}");
        let text = String::from_utf8(page.body.clone()).unwrap();
        assert!(
            text.contains("data-path=\"/index.html\""),
            "{version}: {text}"
        );
        assert_eq!(
            page.headers["content-length"].to_str().unwrap(),
            page.body.len().to_string()
        );
        let range = get(
            connect().await.unwrap(),
            "/a.css",
            &[("range", "bytes=7-11")],
        )
        .await;
        assert_eq!(
            (range.status, range.body.as_slice()),
            (206, &b"color"[..]),
            "{version}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_authority_is_refused() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    // Another authority (made in another folder) is not this one.
    let other = tempfile::tempdir().unwrap();
    Tls::local(other.path(), &["localhost".to_owned()], &[loopback()]).unwrap();
    let refused = handshake(server.addr, &connector(&other.path().join("ca.crt"), b"h2")).await;
    assert!(refused.is_err(), "an untrusted certificate is refused");
    server.stop().await;
}

#[tokio::test]
async fn the_authority_is_made_once_its_key_private_and_never_served() {
    let authority = tempfile::tempdir().unwrap();
    let folder = authority.path().join("liveserve");
    let server = start_https(fixture(), &folder).await;
    let key = std::fs::read(folder.join("ca.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder.join("ca.key")), 0o600);
        assert_eq!(mode(&folder), 0o700);
    }
    // A second start keeps the same authority: a browser that trusts it once trusts it on.
    Tls::local(&folder, &["localhost".to_owned()], &[loopback()]).unwrap();
    assert_eq!(std::fs::read(folder.join("ca.key")).unwrap(), key);
    let ca = folder.join("ca.crt");
    let stream = handshake(server.addr, &connector(&ca, b"h2"))
        .await
        .unwrap();
    for path in ["/ca.key", "/__liveserve/ca.key"] {
        let stream = handshake(server.addr, &connector(&ca, b"h2"))
            .await
            .unwrap();
        assert_eq!(get(stream, path, &[]).await.status, 404, "{path}");
    }
    drop(stream);
    // Nothing was written into the project.
    let entries: Vec<_> = std::fs::read_dir(server.root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    server.stop().await;
}

#[tokio::test]
async fn devices_get_the_authority_certificate_over_https_and_plain_http() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    let ca = authority.path().join("ca.crt");
    let pem = std::fs::read(&ca).unwrap();
    let stream = handshake(server.addr, &connector(&ca, b"h2"))
        .await
        .unwrap();
    let over_tls = get(stream, "/__liveserve/ca.crt", &[]).await;
    assert_eq!((over_tls.status, &over_tls.body), (200, &pem));
    assert_eq!(
        over_tls.headers["content-type"],
        "application/x-x509-ca-cert"
    );
    // A phone that trusts nothing yet asks over plain HTTP.
    let plain = server.get("/__liveserve/ca.crt").await;
    assert_eq!((plain.status, &plain.body), (200, &pem));
    assert!(!String::from_utf8_lossy(&plain.body).contains("PRIVATE"));
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_https_port_is_redirected_to_https() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    let reply = server.get("/docs/?page=2").await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://localhost/docs/?page=2")
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_and_stalled_handshakes_do_not_hold_up_a_real_client() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    // A handshake record that is nonsense, a client that says nothing, a client that starts a
    // handshake and stops, a client that offers TLS 1.0 alone.
    let mut garbage = TcpStream::connect(server.addr).await.unwrap();
    garbage
        .write_all(&[22, 3, 1, 0, 5, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&[22, 3, 1]).await.unwrap();
    let mut outdated = TcpStream::connect(server.addr).await.unwrap();
    outdated.write_all(&tls10_client_hello()).await.unwrap();
    let ca = authority.path().join("ca.crt");
    let stream = handshake(server.addr, &connector(&ca, b"h2"))
        .await
        .unwrap();
    assert_eq!(get(stream, "/a.css", &[]).await.status, 200);
    // The garbage got its connection closed.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, garbage.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the garbage connection was closed");
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, outdated.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the TLS 1.0 client was closed");
    // At most an alert record (type 21), never a ServerHello (a handshake record, 22).
    assert!(answer.first().is_none_or(|&kind| kind == 21), "{answer:?}");
    server.stop().await;
}

/// A ClientHello offering TLS 1.0 alone, with one cipher suite of its time.
fn tls10_client_hello() -> Vec<u8> {
    let mut body = vec![3, 1]; // client_version: TLS 1.0
    body.extend([7; 32]); // random
    body.push(0); // no session id
    body.extend([0, 2, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend([1, 0]); // no compression
    let mut handshake = vec![1, 0, 0, body.len() as u8]; // ClientHello
    handshake.extend(body);
    let mut record = vec![22, 3, 1, 0, handshake.len() as u8];
    record.extend(handshake);
    record
}

#[tokio::test]
async fn live_reload_works_over_wss() {
    let authority = tempfile::tempdir().unwrap();
    let server = start_https(fixture(), authority.path()).await;
    let ca = authority.path().join("ca.crt");
    // Browsers open WebSockets over HTTP/1.1 when the server does not offer them over HTTP/2.
    let stream = handshake(server.addr, &connector(&ca, b"http/1.1"))
        .await
        .unwrap();
    let (mut socket, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::client_async("wss://localhost/__liveserve/ws", stream),
    )
    .await
    .unwrap()
    .unwrap();
    use futures_util::StreamExt;
    let hello = tokio::time::timeout(TIMEOUT, socket.next()).await.unwrap();
    let hello = hello.unwrap().unwrap().into_text().unwrap();
    assert!(hello.contains("\"hello\""), "{hello}");
    std::fs::write(server.root.path().join("a.css"), "body { color: tan }").unwrap();
    let change = tokio::time::timeout(TIMEOUT, socket.next()).await.unwrap();
    let change = change.unwrap().unwrap().into_text().unwrap();
    assert!(change.contains("/a.css"), "{change}");
    server.stop().await;
}

/// A certificate for localhost and its key, as PEM, made here.
pub(crate) fn own_certificate() -> (String, String) {
    certificate_valid(
        rcgen::date_time_ymd(2025, 1, 1),
        rcgen::date_time_ymd(4000, 1, 1),
    )
}

/// A certificate for localhost valid from `start` to `end`, and its key, as PEM.
fn certificate_valid(start: time::OffsetDateTime, end: time::OffsetDateTime) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = start;
    params.not_after = end;
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), key.serialize_pem())
}

#[tokio::test]
async fn the_users_own_certificate_is_served() {
    let files = tempfile::tempdir().unwrap();
    let (certificate, key) = own_certificate();
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, certificate).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let tls = Tls::from_files(&cert_file, &key_file).unwrap();
    let server = TestServer::start_with(fixture(), move |config| config.tls = Some(tls)).await;
    let stream = handshake(server.addr, &connector(&cert_file, b"h2"))
        .await
        .unwrap();
    assert_eq!(
        get(stream, "/a.css", &[]).await.body,
        b"body { color: red }"
    );
    server.stop().await;
}

#[test]
fn each_wrong_certificate_or_key_is_its_own_error() {
    let files = tempfile::tempdir().unwrap();
    let (certificate, key) = own_certificate();
    let (_, other_key) = own_certificate();
    let write = |name: &str, content: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let cert = write("cert.pem", &certificate);
    let key_file = write("key.pem", &key);
    let other = write("other-key.pem", &other_key);
    let text = write("notes.txt", "not a certificate");
    let missing = files.path().join("missing.pem");
    let error = |cert: &Path, key: &Path| Tls::from_files(cert, key).err().unwrap();
    assert!(matches!(
        error(&missing, &key_file),
        TlsError::Unreadable { flag: "--cert", .. }
    ));
    assert!(matches!(
        error(&cert, &missing),
        TlsError::Unreadable { flag: "--key", .. }
    ));
    assert!(matches!(
        error(&text, &key_file),
        TlsError::NoCertificate(_)
    ));
    assert!(matches!(error(&cert, &text), TlsError::NoKey(_)));
    assert!(matches!(error(&cert, &other), TlsError::Mismatch { .. }));
    let (expired, expired_key) = certificate_valid(
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2021, 1, 1),
    );
    let (early, early_key) = certificate_valid(
        rcgen::date_time_ymd(3000, 1, 1),
        rcgen::date_time_ymd(3001, 1, 1),
    );
    let expired_error = error(&write("old.pem", &expired), &write("old.key", &expired_key));
    assert_eq!(
        expired_error.to_string(),
        format!(
            "--cert {}: expired on 2021-01-01; make a new one (mkcert: `mkcert localhost`) or use --https",
            files.path().join("old.pem").display()
        )
    );
    let early_error = error(&write("early.pem", &early), &write("early.key", &early_key));
    assert!(
        early_error
            .to_string()
            .contains("not valid before 3000-01-01"),
        "{early_error}"
    );
    assert!(Tls::from_files(&cert, &key_file).is_ok());
}

/// `liveserve ROOT --https` with its data folder in `data`.
fn https_binary(root: &Path, data: &Path) -> Running {
    let mut command = liveserve();
    command
        .arg(root)
        .args(["--https", "--port", "0"])
        .env("XDG_DATA_HOME", data);
    Running::start(command)
}

#[test]
fn https_prints_an_https_url_and_how_to_trust_a_new_authority_once() {
    let root = fixture();
    let data = tempfile::tempdir().unwrap();
    let first = https_binary(root.path(), data.path());
    let lines = first.lines_until_url();
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("Local: https://localhost:"),
        "{lines:?}"
    );
    let authority = data.path().join("liveserve/ca.crt");
    let said = first.next_line();
    assert!(said.contains(&authority.display().to_string()), "{said}");
    assert!(first.next_line().starts_with("trust it once with: "));
    let (status, _) = first.terminate();
    assert_eq!(status.code(), Some(0));
    // The next start uses the same authority and says nothing of it.
    let again = https_binary(root.path(), data.path());
    again.lines_until_url();
    let (_, rest) = again.terminate();
    assert!(
        rest.iter().all(|line| !line.contains("authority")),
        "{rest:?}"
    );
}

#[test]
fn bad_certificate_settings_are_one_line_before_anything_binds() {
    let files = tempfile::tempdir().unwrap();
    let text = files.path().join("notes.txt");
    std::fs::write(&text, "not a certificate").unwrap();
    let text = text.to_str().unwrap();
    let (expired, expired_key) = certificate_valid(
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2021, 1, 1),
    );
    let (old_cert, old_key) = (files.path().join("old.pem"), files.path().join("old.key"));
    std::fs::write(&old_cert, expired).unwrap();
    std::fs::write(&old_key, expired_key).unwrap();
    let (old_cert, old_key) = (old_cert.to_str().unwrap(), old_key.to_str().unwrap());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    for (args, needle) in [
        (vec!["--cert", text], "--cert and --key go together"),
        (vec!["--cert", text, "--key", text], "no PEM certificate"),
        (
            vec!["--cert", "/nonexistent.pem", "--key", text],
            "--cert /nonexistent.pem",
        ),
        (
            vec!["--cert", old_cert, "--key", old_key],
            "expired on 2021-01-01",
        ),
    ] {
        let mut command = liveserve();
        command
            .arg(files.path())
            .args(["--host", "127.0.0.1", "--port", &port])
            .args(&args);
        let output = run_to_exit(command);
        assert_one_line_error(&output, 2, needle);
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// `liveserve --https --host 0.0.0.0` with `extra` flags: the lines it prints up to the one
/// naming the new authority it made, and its port.
fn exposed_https_lines(extra: &[&str]) -> (Vec<String>, u16) {
    let root = fixture();
    let data = tempfile::tempdir().unwrap();
    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--https", "--port", "0", "--host", "0.0.0.0"])
        .args(extra)
        .env("XDG_DATA_HOME", data.path());
    let running = Running::start(command);
    let mut lines = running.lines_until_url();
    let port = crate::cli::port_of(lines.last().unwrap());
    loop {
        let line = running.next_line();
        let done = line.contains("made a local certificate authority");
        lines.push(line);
        if done {
            break;
        }
    }
    assert_eq!(running.terminate().0.code(), Some(0));
    (lines, port)
}

#[test]
fn an_exposed_server_tells_phones_where_the_authority_is_and_draws_a_qr_code_when_asked() {
    let (lines, port) = exposed_https_lines(&["--qr"]);
    let network: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("Network: "))
        .collect();
    assert!(
        !network.is_empty(),
        "this machine has a network address: {lines:?}"
    );
    let first_ip = network[0]
        .trim_start_matches("Network: https://")
        .split(':')
        .next()
        .unwrap();
    let phone = lines
        .iter()
        .find(|line| line.starts_with("on a phone"))
        .expect("a line for phones");
    assert!(
        phone.ends_with(&format!("http://{first_ip}:{port}/__liveserve/ca.crt")),
        "{phone}"
    );
    let drawn = lines.iter().filter(|line| line.contains('█')).count();
    assert!(drawn > 10, "a QR code: {lines:?}");
    // Without --qr, and stdout not a terminal, no code.
    let (quiet_lines, _) = exposed_https_lines(&[]);
    assert!(
        quiet_lines.iter().all(|line| !line.contains('█')),
        "{quiet_lines:?}"
    );
    assert!(
        quiet_lines
            .iter()
            .any(|line| line.starts_with("on a phone"))
    );
}
