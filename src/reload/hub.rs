//! The reload hub: where the watcher's batches become messages and every WebSocket picks them up.
//!
//! It is the only place the watcher side and the server side meet: the server subscribes to its
//! messages, and tells it about the files it serves.

use std::collections::hash_map::RandomState;
use std::fs::Metadata;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::protocol::{Changed, PROTOCOL_VERSION, ServerMessage};
use crate::reload::ServedFiles;

/// Messages are rare (one per save) and small; a client more than this many behind is too slow
/// and is dropped.
const BACKLOG: usize = 16;

/// What every `hello` says besides the generation.
#[derive(Debug, Clone, Default)]
pub struct HelloInfo {
    /// Names what is served: the root and the routes.
    pub fingerprint: String,
    /// HTML edits may be applied in place (no `--no-morph`).
    pub morph: bool,
    /// Stylesheets and images may be swapped in place (no `--full-reload`).
    pub swap: bool,
    /// The server prints the pages' errors (no `--no-browser-errors`).
    pub errors: bool,
}

pub struct ReloadHub {
    server_id: String,
    full_reload: bool,
    hello: HelloInfo,
    /// Taken for every publish and subscribe, so a subscriber's `hello` generation and the
    /// messages it then receives never overlap or leave a gap.
    generation: Mutex<u64>,
    sender: broadcast::Sender<Arc<ServerMessage>>,
    served: Option<ServedFiles>,
}

impl ReloadHub {
    /// `served` takes what the server says of the files it serves (see [`ReloadHub::served`]).
    pub fn new(full_reload: bool, hello: HelloInfo, served: Option<ServedFiles>) -> Self {
        // A random id per process: a page that reconnects to a different id knows the server
        // restarted. std's RandomState is randomly seeded, which is all we need here.
        let server_id = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        ReloadHub {
            server_id,
            full_reload,
            hello,
            generation: Mutex::new(0),
            sender: broadcast::channel(BACKLOG).0,
            served,
        }
    }

    /// The server sent the file at `path`, with its bytes when it read them whole: lets a save
    /// that changed nothing go unannounced, a change whose event was lost be found, and a folder
    /// `.gitignore` kept unwatched be watched once pages load from it.
    pub fn served(&self, path: &Path, metadata: &Metadata, bytes: Option<&[u8]>) {
        if let Some(served) = &self.served {
            served.served(path, metadata, bytes);
        }
    }

    /// Sends one message for a batch of changes to every subscriber; returns it (for logging).
    pub fn publish(&self, changed: &Changed) -> ServerMessage {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *generation += 1;
        let message = ServerMessage::for_changes(*generation, changed, self.full_reload);
        // No subscribers is fine: nobody has the page open.
        let _ = self.sender.send(Arc::new(message.clone()));
        message
    }

    /// The `hello` for a new client and the stream of messages after it.
    pub fn subscribe(&self) -> (ServerMessage, broadcast::Receiver<Arc<ServerMessage>>) {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let hello = ServerMessage::Hello {
            version: PROTOCOL_VERSION,
            server: self.server_id.clone(),
            generation: *generation,
            fingerprint: self.hello.fingerprint.clone(),
            morph: self.hello.morph,
            swap: self.hello.swap,
            errors: self.hello.errors,
        };
        (hello, self.sender.subscribe())
    }

    /// Change messages sent so far: a page served now carries it in its tag, so a change
    /// published before its socket's `hello` is not missed.
    pub fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether the pages' errors are to be printed.
    pub fn wants_errors(&self) -> bool {
        self.hello.errors
    }
}
