//! Live reload on an `https://` page in headless Chromium: the page is served over TLS (HTTP/2,
//! as Chromium negotiates it), the client opens its socket with `wss:`, and a stylesheet edit and
//! a page edit apply in place. Chromium ignores certificate errors only for the test's own key
//! (`--ignore-certificate-errors-spki-list`), nothing else. Marked `#[ignore]` like the other
//! browser tests.

use base64::Engine;
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::browser::{
    ONE_BROWSER, edit_page_and_wait, edit_stylesheet_and_wait, page, standard_site,
};
use crate::browser_driver::Browser;
use crate::support::{TestServer, write};

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --include-ignored"]
async fn live_reload_on_an_https_page_uses_wss_and_applies_edits_in_place() {
    let _one = ONE_BROWSER.lock().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let certificate = params.self_signed(&key).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, certificate.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let tls = liveserve::__private::tls::Tls::from_files(&cert_file, &key_file).unwrap();

    let root = standard_site();
    write(
        root.path(),
        "index.html",
        page(Some("/css/site.css"), "<h1 id=title>first</h1>").as_bytes(),
    );
    let server = TestServer::start_with(root, move |config| config.tls = Some(tls)).await;
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(key.public_key_pem().as_bytes()).unwrap();
    let spki = Sha256::digest(spki.as_ref());
    let spki = base64::engine::general_purpose::STANDARD.encode(spki);
    let browser =
        Browser::start_with(&[format!("--ignore-certificate-errors-spki-list={spki}")]).await;
    browser
        .open(&format!("https://localhost:{}/", server.addr.port()))
        .await;
    browser.connected().await;
    assert_eq!(
        browser.eval("return location.protocol").await,
        json!("https:")
    );
    assert_eq!(
        browser.eval("return window.__liveserve.transport").await,
        json!("websocket")
    );
    assert_eq!(
        browser
            .eval("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
            .await,
        json!("h2"),
        "the page came over HTTP/2"
    );

    browser.set_marker().await;
    let root = server.root.path();
    edit_stylesheet_and_wait(&browser, root).await;
    let second = page(Some("/css/site.css"), "<h1 id=title>second</h1>");
    edit_page_and_wait(&browser, root, &second, "second").await;
    assert!(browser.has_marker().await, "both in place, no reload");
    browser.assert_no_errors().await;
    browser.close().await;
    server.stop().await;
}
