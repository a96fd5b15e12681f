//! A WebSocket through the proxy: once both sides have switched protocols, bytes are copied
//! both ways unchanged (text, binary, pings, close frames and any extension the two agreed on),
//! until either side closes or the server stops.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// The browser's side and the backend's side of a forwarded WebSocket, both switching protocols.
pub struct Tunnel {
    browser: OnUpgrade,
    backend: OnUpgrade,
}

impl Tunnel {
    pub fn new(browser: OnUpgrade, backend: OnUpgrade) -> Self {
        Tunnel { browser, backend }
    }

    /// Joins the two connections until one closes or `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (browser, backend) = match tokio::try_join!(self.browser, self.backend) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!("a proxied WebSocket could not switch protocols: {error}");
                return;
            }
        };
        let mut browser = TokioIo::new(browser);
        let mut backend = TokioIo::new(backend);
        tokio::select! {
            joined = tokio::io::copy_bidirectional(&mut browser, &mut backend) => {
                if let Err(error) = joined {
                    tracing::debug!("a proxied WebSocket ended: {error}");
                }
            }
            // Shutting down closes both connections; each side sees its peer go away.
            _ = stop.changed() => {}
        }
    }
}
