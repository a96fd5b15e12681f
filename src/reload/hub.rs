//! The reload hub: where the watcher's batches become messages and every WebSocket picks them up.
//!
//! It is the only place the watcher side and the server side meet: the server subscribes to its
//! messages, and tells it about the files it serves.

use std::collections::hash_map::RandomState;
use std::fs::Metadata;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{broadcast, watch};

use crate::protocol::{BuildFailure, Changed, PROTOCOL_VERSION, ServerMessage};
use crate::reload::ServedFiles;
use crate::reload::connected_pages::ConnectedPages;

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

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The pages got this message.
    Sent(ServerMessage),
    /// An `--exec` run is under way: the change goes out with everything it writes, once it
    /// succeeds.
    Held,
}

impl Published {
    /// What a program that asked for the publish is told.
    pub fn to_json(&self) -> String {
        match self {
            Published::Sent(message) => message.to_json(),
            Published::Held => {
                r#"{"type":"held","why":"an --exec run is under way: the pages get this change when it succeeds"}"#.to_owned()
            }
        }
    }
}

/// The state every publish and subscribe reads together.
#[derive(Default)]
struct State {
    /// Change messages sent so far.
    generation: u64,
    /// An `--exec` run is under way: changes wait for its end.
    building: bool,
    /// The run under way has exited; what it wrote is on its way to the hub.
    settling: bool,
    /// When the last run that exited ran.
    last_run: Option<RunTimes>,
    /// Runs started so far: the number of the one under way (or of the last).
    runs: u64,
    /// Changes held back since the last good run.
    held: Option<Changed>,
    /// The last run failed: pages show it, new ones at once.
    failure: Option<BuildFailure>,
}

pub struct ReloadHub {
    server_id: String,
    full_reload: bool,
    hello: HelloInfo,
    /// Taken for every publish and subscribe, so a subscriber's `hello` generation and the
    /// messages it then receives never overlap or leave a gap.
    state: Mutex<State>,
    sender: broadcast::Sender<Arc<ServerMessage>>,
    served: Option<ServedFiles>,
    /// Each batcher's flag, true while a batch of changes is still on its way (see
    /// `batcher::run`): the served folders', and with `--exec` its sources' (a saved fix is
    /// a build coming, not yet the last build's failure).
    batches_open: Vec<watch::Receiver<bool>>,
    pages: ConnectedPages,
}

/// When an `--exec` run ran: from just before it started to just after it exited. What it
/// wrote was written in between (what the user writes later is newer).
#[derive(Debug, Clone, Copy)]
pub struct RunTimes {
    pub started: SystemTime,
    pub exited: SystemTime,
}

/// Where the `--exec` runs stand, for telling their writes from the user's edits.
#[derive(Debug, Clone, Copy)]
pub struct BuildState {
    /// A run is under way (or due).
    pub building: bool,
    /// ...and it has exited: its writes are settling (`last_run` is its).
    pub settling: bool,
    pub last_run: Option<RunTimes>,
    /// The number of the run under way, or of the last one.
    pub run: u64,
}

/// Where the changes stand, for `/__liveserve/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Change messages sent so far.
    pub generation: u64,
    /// A batch is open or an `--exec` run is under way: more is coming.
    pub pending: bool,
    /// An `--exec` run is under way.
    pub building: bool,
    /// The last `--exec` run failed.
    pub failure: Option<BuildFailure>,
}

impl ReloadHub {
    /// `served` takes what the server says of the files it serves (see [`ReloadHub::served`]);
    /// `batches_open` are the batchers' flags.
    pub fn new(
        full_reload: bool,
        hello: HelloInfo,
        served: Option<ServedFiles>,
        batches_open: Vec<watch::Receiver<bool>>,
    ) -> Self {
        // A random id per process: a page that reconnects to a different id knows the server
        // restarted. std's RandomState is randomly seeded, which is all we need here.
        let server_id = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        ReloadHub {
            server_id,
            full_reload,
            hello,
            state: Mutex::new(State::default()),
            sender: broadcast::channel(BACKLOG).0,
            served,
            batches_open,
            pages: ConnectedPages::default(),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sends one message for a batch of changes to every subscriber, or holds it while an
    /// `--exec` run is under way.
    pub fn publish(&self, changed: &Changed) -> Published {
        let mut state = self.lock();
        if state.building {
            state.held = Some(match state.held.take() {
                Some(held) => held.merge(changed.clone()),
                None => changed.clone(),
            });
            return Published::Held;
        }
        Published::Sent(self.send_change(&mut state, changed))
    }

    fn send_change(&self, state: &mut State, changed: &Changed) -> ServerMessage {
        state.generation += 1;
        let message = ServerMessage::for_changes(state.generation, changed, self.full_reload);
        // No subscribers is fine: nobody has the page open.
        let _ = self.sender.send(Arc::new(message.clone()));
        message
    }

    /// An `--exec` run starts: changes are held until it ends.
    pub fn build_started(&self) {
        let mut state = self.lock();
        state.building = true;
        state.settling = false;
        state.runs += 1;
    }

    /// A run is due (its sources changed): changes are held from now, and whoever asks for the
    /// status learns a build is coming. A run still settling goes on settling.
    pub fn build_due(&self) {
        self.lock().building = true;
    }

    /// Marks a run as started, unless one is already under way (or due); says whether it did.
    /// One step, so a run that ends meanwhile cannot leave a change neither held nor run for.
    pub fn start_build_unless_under_way(&self) -> bool {
        let mut state = self.lock();
        let started = !std::mem::replace(&mut state.building, true);
        if started {
            state.settling = false;
        }
        started
    }

    /// The run under way has exited (it ran at `times`); what it wrote is still on its way.
    pub fn run_exited(&self, times: RunTimes) {
        let mut state = self.lock();
        state.settling = true;
        state.last_run = Some(times);
    }

    /// Where the runs stand.
    pub fn build_state(&self) -> BuildState {
        let state = self.lock();
        BuildState {
            building: state.building,
            settling: state.building && state.settling,
            last_run: state.last_run,
            run: state.runs,
        }
    }

    /// The run succeeded: a shown failure goes away, and everything held goes out as one
    /// change (nothing, when the run changed nothing).
    pub fn build_succeeded(&self) -> Option<ServerMessage> {
        let mut state = self.lock();
        state.building = false;
        if state.failure.take().is_some() {
            let _ = self
                .sender
                .send(Arc::new(ServerMessage::Build { failure: None }));
        }
        let held = state.held.take()?;
        Some(self.send_change(&mut state, &held))
    }

    /// The run failed: pages show `failure` over their content, which stays as it was (what the
    /// run wrote waits for the next good run).
    pub fn build_failed(&self, failure: BuildFailure) {
        let mut state = self.lock();
        state.building = false;
        state.failure = Some(failure.clone());
        let message = ServerMessage::Build {
            failure: Some(failure),
        };
        let _ = self.sender.send(Arc::new(message));
    }

    /// The `hello` for a new client and the stream of messages after it.
    pub fn subscribe(&self) -> (ServerMessage, broadcast::Receiver<Arc<ServerMessage>>) {
        let state = self.lock();
        let hello = ServerMessage::Hello {
            version: PROTOCOL_VERSION,
            server: self.server_id.clone(),
            generation: state.generation,
            fingerprint: self.hello.fingerprint.clone(),
            morph: self.hello.morph,
            swap: self.hello.swap,
            errors: self.hello.errors,
            build: state.failure.clone(),
        };
        (hello, self.sender.subscribe())
    }

    /// Change messages sent so far: a page served now carries it in its tag, so a change
    /// published before its socket's `hello` is not missed.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// What the open tabs have said about themselves.
    pub fn pages(&self) -> &ConnectedPages {
        &self.pages
    }

    /// Where the changes stand.
    pub fn progress(&self) -> Progress {
        let state = self.lock();
        Progress {
            generation: state.generation,
            pending: state.building || self.batches_open.iter().any(|open| *open.borrow()),
            building: state.building,
            failure: state.failure.clone(),
        }
    }

    /// Whether the pages' errors are to be printed.
    pub fn wants_errors(&self) -> bool {
        self.hello.errors
    }
}
