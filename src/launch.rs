//! The `liveserve` command from its settings to a running server: check every setting, bind,
//! print where to go, serve until Ctrl-C or SIGTERM.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

use crate::app;
use crate::banner;
use crate::browser;
use crate::listen::{self, Addresses, PortChoice};
use crate::memory;
use crate::reload::IgnoreRules;
use crate::settings::{Cli, Config, Settings};

/// Threads for file reads and other blocking work. Each request makes one short trip there, so
/// a few threads keep both cores busy; tokio's default (512) grows a thread per concurrent
/// request under load, each costing memory and hand-offs.
const MAX_BLOCKING_THREADS: usize = 8;

/// Every setting is checked before a port is bound or a line is printed on stdout; an error
/// names the variable or the config file line a bad value came from.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let cli = &settings.cli;
    init_logging(cli);
    raise_open_file_limit();
    let explain = |error| settings.explain(error);
    let mut config = cli.config().map_err(explain)?;
    let made_folder = make_output_folder(&config);
    let root = config.canonical_root().map_err(explain)?;
    config.settings_file = settings
        .file
        .as_ref()
        .and_then(|file| file.canonicalize().ok());
    let checked = config.validate().map_err(explain)?;
    let addresses = Addresses::from_host(&cli.host).map_err(explain)?;
    config.tls = cli.tls(&addresses).map_err(explain)?;
    let choice = cli.port_choice();
    let bound = listen::bind(&addresses, choice).map_err(explain)?;
    if let PortChoice::FirstFreeFrom(first) = choice
        && bound.port != first
    {
        eprintln!(
            "liveserve: port {first} is in use, using {} instead",
            bound.port
        );
    }
    if addresses.is_exposed() {
        eprintln!(
            "liveserve: warning: --host {} makes every file below {} readable from your network",
            cli.host,
            root.display()
        );
    }
    memory::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Signal handlers go in before the URL is printed: whoever reads it may stop us at once.
        let shutdown = shutdown_signal()?;
        tokio::pin!(shutdown);
        // Every folder is watched before the URL is printed: an edit made once it is there is
        // never missed, however large the tree. Ctrl-C still works during a long walk.
        let prepared = tokio::select! {
            prepared = app::prepare(config.clone()) => prepared?,
            () = &mut shutdown => return Ok(()),
        };
        made_folder.keep();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let devices = banner::ForDevices {
            // As asked, else when a phone could use it and a person will see it.
            qr: cli
                .qr
                .unwrap_or_else(|| addresses.is_exposed() && std::io::stdout().is_terminal()),
            authority: config
                .tls
                .as_ref()
                .is_some_and(|tls| tls.authority_pem().is_some()),
        };
        banner::print(&root, &addresses, scheme, bound.port, cli.quiet, devices);
        if let Some(tls) = &config.tls
            && tls.ca_created
            && let Some(certificate) = &tls.ca_certificate
        {
            banner::new_authority(certificate);
        }
        if !cli.quiet {
            if let Some(file) = &settings.file {
                banner::line(format_args!("settings from {}", file.display()));
            }
            for route in &config.proxies {
                banner::line(format_args!("proxying {route}"));
            }
            for mount in &config.mounts {
                banner::line(format_args!("serving {mount}"));
            }
            if let Some(command) = &config.exec {
                let when = if checked.watch_folders.is_empty() {
                    "once".to_owned()
                } else {
                    let sources: Vec<String> = checked
                        .watch_folders
                        .iter()
                        .map(|folder| folder.display().to_string())
                        .collect();
                    format!("now and after each change in {}", sources.join(", "))
                };
                banner::line(format_args!("running {command} {when}"));
            }
        }
        if config.reload && !cli.quiet {
            // With --exec, the --watch folders were named as its sources above.
            let sources = if config.exec.is_some() {
                &[][..]
            } else {
                &checked.watch_folders[..]
            };
            let mut folders: Vec<String> = Vec::new();
            for folder in std::iter::once(&root)
                .chain(&checked.mount_folders)
                .chain(sources)
            {
                let folder = folder.display().to_string();
                if !folders.contains(&folder) {
                    folders.push(folder);
                }
            }
            banner::line(format_args!(
                "watching {}, ignoring {}",
                folders.join(", "),
                IgnoreRules::describe(&config.ignore, config.gitignore)
            ));
            if cli.verbose
                && let Some(summary) = prepared.watch_summary()
            {
                banner::line(format_args!("watching {summary}"));
            }
        }
        let mut listeners = Vec::new();
        for listener in bound.listeners {
            listener.set_nonblocking(true)?;
            listeners.push(tokio::net::TcpListener::from_std(listener)?);
        }
        if let Some(path) = cli.open_path() {
            browser::open(&format!(
                "{}{}",
                banner::local_url(&addresses, scheme, bound.port),
                path.trim_start_matches('/')
            ));
        }
        prepared.serve(listeners, shutdown).await
    })
}

/// A future that resolves on Ctrl-C or, on Unix, SIGTERM (what `kill`, systemd and container
/// runtimes send). The handlers are installed when this returns, not when the future is polled.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("handling Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// With `--exec`, the folder to serve is the command's output, which a fresh checkout does not
/// have yet (`liveserve dist --exec 'npm run build'`): it is made, empty, for the command to
/// fill, and said so. Only the folder itself: its parent must exist (a mistyped path is still
/// an error), and not for `--exec-restart` (a backend's pages are not its output). Nothing of
/// the user's is touched: the folder did not exist; if start-up fails after all, it is removed
/// again.
fn make_output_folder(config: &Config) -> MadeFolder {
    if config.exec.is_none() || config.exec_restart || config.root.exists() {
        return MadeFolder(None);
    }
    match std::fs::create_dir(&config.root) {
        Ok(()) => MadeFolder(Some(config.root.clone())),
        // The usual error follows, from the check of the folder.
        Err(error) => {
            tracing::debug!("could not make {}: {error}", config.root.display());
            MadeFolder(None)
        }
    }
}

/// A served folder made at start; removed when dropped before [`MadeFolder::keep`] (start-up
/// failed: the user is left with what they had).
struct MadeFolder(Option<PathBuf>);

impl MadeFolder {
    /// Start-up got through: the folder stays, and the user is told (not before: a start that
    /// fails has made nothing).
    fn keep(mut self) {
        if let Some(folder) = self.0.take() {
            eprintln!(
                "liveserve: {} did not exist: made it, empty, for the --exec command to fill",
                folder.display()
            );
        }
    }
}

impl Drop for MadeFolder {
    fn drop(&mut self) {
        if let Some(folder) = self.0.take() {
            // remove_dir only removes an empty folder: nothing can be lost.
            let _ = std::fs::remove_dir(folder);
        }
    }
}

/// Every open tab holds a socket: lift the soft limit on open files (often 1024) to the hard one.
fn raise_open_file_limit() {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!("could not raise the open file limit: {error}");
    }
}

/// Logs go to stderr: stdout is for the start-up lines that scripts read.
fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
}
