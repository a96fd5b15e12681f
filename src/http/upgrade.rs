//! Connections handed over from HTTP to another protocol: the live reload socket, and through
//! the proxy a backend's own WebSockets.
//!
//! The request handler accepts the handshake and hands the pending upgrade to its connection's
//! task through [`Upgrades`]; that task runs it once hyper has sent the response and let go of
//! the socket (HTTP/1.1) or the stream (HTTP/2, where the connection goes on serving other
//! streams meanwhile). So shutdown waits for (and closes) upgraded connections like any other.

use tokio::sync::{mpsc, watch};

use crate::http::proxy::Tunnel;
use crate::http::websocket::{self, PendingSession};

/// What an upgraded connection becomes.
pub enum Upgrade {
    /// liveserve's own socket to a page.
    LiveReload(PendingSession),
    /// A backend's WebSocket, forwarded.
    Tunnel(Tunnel),
}

impl Upgrade {
    /// Runs the connection until either side leaves or `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        match self {
            Upgrade::LiveReload(session) => websocket::run_session(session, stop).await,
            Upgrade::Tunnel(tunnel) => tunnel.run(stop).await,
        }
    }
}

/// Where request handlers hand accepted upgrades to their connection's task: at most one on an
/// HTTP/1.1 connection, one per stream over HTTP/2 (bounded by the streams a connection may
/// have open).
#[derive(Clone)]
pub struct Upgrades(mpsc::UnboundedSender<Upgrade>);

impl Upgrades {
    /// A new connection's hand-over, and the end its task receives upgrades from.
    pub fn channel() -> (Upgrades, mpsc::UnboundedReceiver<Upgrade>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Upgrades(sender), receiver)
    }

    pub fn put(&self, upgrade: Upgrade) {
        // The connection task only stops receiving once its connection is gone.
        let _ = self.0.send(upgrade);
    }
}
