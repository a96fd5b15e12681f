//! `--exec`: the user's build (a Sass or Tailwind watcher's one-shot form, a bundler, a site
//! generator, `cargo doc`), run through their shell once at start and again after each batch of
//! changes to its sources (`--watch`).
//!
//! While it runs, the hub holds back what it writes into the served folders; when it succeeds
//! the pages get one update for all of it, when it fails they show its output over their last
//! good content. Changes during a run queue exactly one more run after it, or, with
//! `--exec-restart` (for a command that never exits, such as a backend), restart it at once; a
//! restarted backend counts as up once the port `--proxy` forwards to accepts connections.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use std::io::Write;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::protocol::{BuildFailure, Changed};
use crate::reload::ReloadHub;
use crate::reload::hub::RunTimes;
use crate::reload::watcher::PollingLag;

/// The end of a run's output the pages are shown.
const TAIL_LINES: usize = 40;
/// ...and at most this many bytes of it.
const TAIL_BYTES: usize = 8 * 1024;

/// How long a restarted backend may take to open its port before the pages reload anyway.
const PORT_WAIT: Duration = Duration::from_secs(30);

/// How long the output of a finished command may take to end (something it started in the
/// background may hold it open).
const OUTPUT_DRAIN: Duration = Duration::from_millis(500);

/// How long a command asked to stop (SIGTERM) gets before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How often a restarted backend's port is tried.
const PORT_RETRY: Duration = Duration::from_millis(50);

/// After this many runs in a row, each followed at once by another for changes made while it
/// ran, the command most likely writes into its own sources: the user is told (a run is never
/// skipped for it: a long build and a busy editor look the same).
pub(super) const RUNS_IN_A_LOOP: u32 = 5;

/// A build still running after this long may be one that never exits: the user is told once
/// what that means for the pages.
const LONG_RUN: Duration = Duration::from_secs(10);

/// A command restarted (`--exec-restart`) this soon after it started was restarted by its own
/// writes, more likely than by an edit.
const QUICK_RESTART: Duration = Duration::from_secs(2);

/// What is run, and how.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// The command line, as the user wrote it (run by their shell).
    pub command: String,
    /// A newer change restarts a run instead of queueing another after it.
    pub restart: bool,
    /// The addresses (`host:port`) `--proxy` forwards to: a restarted backend is up once they
    /// accept connections.
    pub wait_for: Vec<String>,
    /// How long after a run ends its last writes may take to reach the watcher and its batch
    /// to close (the quiet window, at least [`MIN_SETTLE`]).
    pub settle: Duration,
    /// `-v`: what a run sends the pages is logged, as other changes are.
    pub verbose: bool,
}

/// Runs the command until dropped; dropping it stops the command (and whatever it started).
pub struct Exec {
    task: JoinHandle<()>,
}

impl Drop for Exec {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long, at least, the last writes of a run are given to reach the watcher: its events are
/// queued by the time it exits, but a busy machine may take a while to read them. Builds take
/// far longer than this, so it costs little.
pub const MIN_SETTLE: Duration = Duration::from_millis(100);

/// The watching of the served folders, as the end of a run waits for it.
pub struct Output {
    /// Their batcher: open while changes are still on their way to the hub.
    pub open: watch::Receiver<bool>,
    /// Added to the settle time: a polled folder's changes are seen up to an interval late
    /// (else a run's output is seen after its end, and taken for an edit).
    pub lag: PollingLag,
}

/// What starts runs after the first.
pub struct Triggers {
    /// Says when a run is due (the sources changed, or the user edited what the build reads);
    /// closed when nothing can make one due (`--exec` alone).
    pub run_due: mpsc::Receiver<()>,
    /// The sources' batcher: open while changes to them are on their way.
    pub sources_open: watch::Receiver<bool>,
}

impl Exec {
    /// Starts the first run.
    pub fn start(
        settings: ExecSettings,
        hub: Arc<ReloadHub>,
        triggers: Triggers,
        output: Output,
    ) -> Exec {
        let runner = Runner {
            settings,
            hub,
            sources: triggers.run_due,
            sources_open: triggers.sources_open,
            output,
            told_of_long_run: false,
            failing: false,
        };
        Exec {
            task: tokio::spawn(runner.run()),
        }
    }
}

struct Runner {
    settings: ExecSettings,
    hub: Arc<ReloadHub>,
    /// See [`Triggers::run_due`].
    sources: mpsc::Receiver<()>,
    sources_open: watch::Receiver<bool>,
    output: Output,
    /// Whether the user was told that a run is taking long (see [`LONG_RUN`]).
    told_of_long_run: bool,
    /// Whether the last run failed.
    failing: bool,
}

/// How one run ended.
enum Outcome {
    Succeeded,
    Failed(BuildFailure),
    /// Stopped for a newer change (`--exec-restart`) after running this long (measured when
    /// the change came: a backend may take seconds to stop).
    Restarted {
        ran_for: Duration,
    },
}

impl Runner {
    async fn run(mut self) {
        let mut again = true; // the first run, at start
        let mut back_to_back = 0;
        loop {
            if !again && self.sources.recv().await.is_none() {
                return;
            }
            // Changes that came together make one run.
            while self.sources.try_recv().is_ok() {}
            again = false;
            self.hub.build_started();
            let started = SystemTime::now();
            let outcome = self.run_once(&mut again).await;
            if !matches!(outcome, Outcome::Restarted { .. }) {
                let exited = SystemTime::now();
                self.hub.run_exited(RunTimes { started, exited });
            }
            let followed_at_once = match outcome {
                Outcome::Succeeded => {
                    self.settle().await;
                    self.succeeded();
                    self.next_run_due(again)
                }
                Outcome::Failed(failure) => {
                    self.settle().await;
                    tracing::warn!("{}: {}", failure.command, failure.status);
                    self.hub.build_failed(failure);
                    self.failing = true;
                    self.next_run_due(again)
                }
                Outcome::Restarted { ran_for } => ran_for < QUICK_RESTART,
            };
            back_to_back = if followed_at_once {
                back_to_back + 1
            } else {
                0
            };
            if back_to_back == RUNS_IN_A_LOOP {
                tracing::warn!(
                    "--exec: {RUNS_IN_A_LOOP} runs in a row were each followed at once by another, for changes made while they ran; if the command writes into a --watch folder, watch only what it reads"
                );
            }
        }
    }

    /// The run is done and good: what it changed goes to the pages; said on stderr when it
    /// ends a failure (and, with `-v`, what the pages were sent, as for any change).
    fn succeeded(&mut self) {
        let sent = self.hub.build_succeeded();
        if std::mem::take(&mut self.failing) {
            tracing::info!("{}: succeeded again", self.settings.command);
        }
        if let Some(message) = sent.filter(|_| self.settings.verbose) {
            tracing::info!("{} done → {}", self.settings.command, message.to_json());
        }
    }

    /// Whether changes made during the run just ended (or while it settled) already call for
    /// the next: told to the runner, or still in an open batch of the sources' watcher (a
    /// folder being rebuilt keeps its batch open for a while).
    fn next_run_due(&self, again: bool) -> bool {
        again || !self.sources.is_empty() || *self.sources_open.borrow()
    }

    /// Runs the command once; sets `again` when the sources changed meanwhile.
    async fn run_once(&mut self, again: &mut bool) -> Outcome {
        let command = self.settings.command.clone();
        tracing::info!("running {command}");
        let failed = |status: String, output: String| {
            Outcome::Failed(BuildFailure {
                command: command.clone(),
                status,
                output,
            })
        };
        let started = Instant::now();
        let mut child = match shell(&command).spawn() {
            Ok(child) => child,
            Err(error) => return failed(format!("could not start: {error}"), String::new()),
        };
        let group = ProcessGroup(child.id());
        let tail = Arc::new(Mutex::new(Tail::default()));
        let readers = [
            child.stdout.take().map(|out| relay(out, tail.clone())),
            child.stderr.take().map(|err| relay(err, tail.clone())),
        ];
        // A backend is up once its port answers; a build, once it has exited.
        let mut up = self
            .settings
            .restart
            .then(|| Box::pin(ports_open(self.settings.wait_for.clone())));
        // A build that never exits (`sass --watch`) holds the pages' updates for ever: said once.
        let mut long_run = (!self.settings.restart && !self.told_of_long_run)
            .then(|| Box::pin(tokio::time::sleep(LONG_RUN)));
        loop {
            tokio::select! {
                () = async { long_run.as_mut().expect("guarded").await }, if long_run.is_some() => {
                    long_run = None;
                    self.told_of_long_run = true;
                    tracing::warn!(
                        "--exec: {command} is still running after {} s; the pages get what it writes once it exits. If it never exits (sass --watch, a server), give --exec-restart",
                        LONG_RUN.as_secs()
                    );
                }
                status = child.wait() => {
                    // What it printed last, unless something it started in the background
                    // keeps its output open: that does not hold up the pages.
                    for reader in readers.into_iter().flatten() {
                        let abort = reader.abort_handle();
                        if tokio::time::timeout(OUTPUT_DRAIN, reader).await.is_err() {
                            abort.abort();
                        }
                    }
                    group.forget();
                    let output = tail.lock().map(|tail| tail.text()).unwrap_or_default();
                    return match status {
                        Ok(status) if status.success() => Outcome::Succeeded,
                        Ok(status) => failed(describe(status), output),
                        Err(error) => failed(format!("could not be waited for: {error}"), output),
                    };
                }
                changed = self.sources.recv(), if !self.sources.is_closed() || !self.sources.is_empty() => match changed {
                    Some(()) if self.settings.restart => {
                        let ran_for = started.elapsed();
                        group.stop(&mut child).await;
                        *again = true;
                        return Outcome::Restarted { ran_for };
                    }
                    Some(()) => *again = true,
                    // No sources to watch: the run goes on undisturbed.
                    None => {}
                },
                () = async { up.as_mut().expect("guarded").await }, if up.is_some() => {
                    up = None;
                    self.settle().await;
                    // The backend behind the pages is new: every page reloads, once, together
                    // with whatever it wrote.
                    self.hub.publish(&Changed::Everything);
                    self.succeeded();
                }
            }
        }
    }

    /// Waits until the run's last writes have reached the hub: the watcher has read them (the
    /// settle time) and the batch they are in has been told.
    async fn settle(&mut self) {
        tokio::time::sleep(self.settings.settle + self.output.lag.now()).await;
        let told = self.output.open.wait_for(|open| !open);
        let _ = tokio::time::timeout(super::batcher::MAX_BURST, told).await;
    }
}

/// `command` run by the user's shell, in its own process group (so stopping it stops what it
/// started), its output piped to us.
fn shell(command: &str) -> Command {
    let mut shell = if cfg!(windows) {
        let mut shell = Command::new("cmd");
        shell.arg("/C");
        shell
    } else {
        let program = std::env::var_os("SHELL")
            .filter(|shell| !shell.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let mut shell = Command::new(program);
        shell.arg("-c");
        shell
    };
    shell
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    shell.process_group(0);
    shell
}

/// The command's process group: dropped, every process in it is asked to stop.
struct ProcessGroup(Option<u32>);

/// What a process group is told.
#[derive(Clone, Copy)]
enum Signal {
    /// SIGTERM: finish up and exit.
    Stop,
    /// SIGKILL: for a command that did not stop when asked.
    Kill,
}

impl ProcessGroup {
    /// Sends `signal` to every process in the group.
    fn signal(&self, signal: Signal) {
        #[cfg(unix)]
        if let Some(id) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) {
            let number = match signal {
                Signal::Stop => libc::SIGTERM,
                Signal::Kill => libc::SIGKILL,
            };
            // SAFETY: kill(2) with a negative id signals that process group; no memory is
            // involved. The group is the one the command was started in.
            unsafe {
                libc::kill(-id, number);
            }
        }
        #[cfg(not(unix))]
        let _ = signal;
    }

    /// Whether any process is left in the group.
    fn alive(&self) -> bool {
        #[cfg(unix)]
        if let Some(id) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) {
            // SAFETY: signal 0 only checks that the group exists; nothing is sent.
            return unsafe { libc::kill(-id, 0) } == 0;
        }
        false
    }

    /// Stops the whole group, as a restart must before starting the command again (the old
    /// backend must let go of its port): SIGTERM, then SIGKILL to whatever is left after
    /// [`STOP_WAIT`].
    async fn stop(self, child: &mut tokio::process::Child) {
        self.signal(Signal::Stop);
        let gone = async {
            let _ = child.wait().await;
            while self.alive() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(STOP_WAIT, gone).await.is_err() {
            self.signal(Signal::Kill);
            let _ = child.wait().await;
        }
        self.forget();
    }

    /// The command has ended and been reaped: its id may be reused, never signal it again.
    fn forget(mut self) {
        self.0 = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::Stop);
    }
}

/// Copies the command's output to our stderr, each line prefixed, and keeps its end. Lines
/// end at `\n` or `\r` (a progress bar redraws with `\r`), and are cut at [`TAIL_BYTES`].
fn relay(
    output: impl AsyncRead + Unpin + Send + 'static,
    tail: Arc<Mutex<Tail>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut output = BufReader::new(output);
        let mut line = Vec::new();
        loop {
            let (done, used) = {
                let Ok(available) = output.fill_buf().await else {
                    break;
                };
                if available.is_empty() {
                    (true, 0)
                } else {
                    let end = memchr::memchr2(b'\n', b'\r', available);
                    let take = end.map_or(available.len(), |at| at + 1);
                    let room = TAIL_BYTES.saturating_sub(line.len());
                    line.extend_from_slice(&available[..take.min(room)]);
                    (false, take)
                }
            };
            output.consume(used);
            let ended = line
                .last()
                .is_some_and(|&last| last == b'\n' || last == b'\r');
            if (done || ended || line.len() >= TAIL_BYTES) && !line.is_empty() {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                if !text.is_empty() {
                    let _ = writeln!(std::io::stderr(), "[exec] {text}");
                    if let Ok(mut tail) = tail.lock() {
                        tail.push(&strip_ansi_escapes::strip_str(text));
                    }
                }
                line.clear();
            }
            if done {
                break;
            }
        }
    })
}

/// The last lines of a run's output.
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_owned());
        while self.lines.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.lines.len() > 1) {
            if let Some(gone) = self.lines.pop_front() {
                self.bytes -= gone.len() + 1;
            }
        }
    }

    fn text(&self) -> String {
        let mut text = String::with_capacity(self.bytes);
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// `exit status 2`, `killed by signal 9`.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("killed by signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

/// Resolves once every address in `addresses` accepts a connection, or after [`PORT_WAIT`].
async fn ports_open(addresses: Vec<String>) {
    let all_open = async {
        for address in &addresses {
            while tokio::net::TcpStream::connect(address.as_str())
                .await
                .is_err()
            {
                tokio::time::sleep(PORT_RETRY).await;
            }
        }
    };
    if tokio::time::timeout(PORT_WAIT, all_open).await.is_err() {
        tracing::warn!(
            "{} did not accept connections within {} s; reloading the pages anyway",
            addresses.join(", "),
            PORT_WAIT.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_within_bounds() {
        let mut tail = Tail::default();
        for line in 0..100 {
            tail.push(&format!("line {line}"));
        }
        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert!(tail.text().starts_with("line 60\n"));
        assert!(tail.text().ends_with("line 99\n"));
        tail.push(&"x".repeat(TAIL_BYTES));
        assert_eq!(tail.lines.len(), 1, "one long line is kept alone");
    }
}
