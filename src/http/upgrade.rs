//! Connections handed over from HTTP to another protocol: the live reload socket, and through
//! the proxy a backend's own WebSockets.
//!
//! The request handler accepts the handshake and leaves the pending upgrade in the connection's
//! [`UpgradeSlot`]; the connection task runs it once hyper has sent the 101 and let go of the
//! socket. So shutdown waits for (and closes) upgraded connections like any other.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

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

/// Where the request handler leaves an accepted upgrade for its connection task.
#[derive(Clone, Default)]
pub struct UpgradeSlot(Arc<Mutex<Option<Upgrade>>>);

impl UpgradeSlot {
    pub fn put(&self, upgrade: Upgrade) {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(upgrade);
    }

    pub fn take(&self) -> Option<Upgrade> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }
}
