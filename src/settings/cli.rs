//! The command line. Parsing is pure (no I/O); `launch` turns the parsed arguments into a server.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::error::StartupError;
use crate::listen::{DEFAULT_PORT, PortChoice};
use crate::reload::Polling;
use crate::settings::Config;

/// A live-reload development server: serve a folder, and every save shows up in the browser at once.
#[derive(Debug, Parser)]
#[command(name = "liveserve", version, max_term_width = 100)]
pub struct Cli {
    /// The folder to serve.
    #[arg(env = "LIVESERVE_ROOT", default_value = ".")]
    pub root: PathBuf,

    /// Port to listen on. Without it, 8080 or the next free port; a port given here (or in
    /// LIVESERVE_PORT) that is busy is an error. 0 picks any free port.
    #[arg(short, long, env = "LIVESERVE_PORT")]
    pub port: Option<u16>,

    /// Address to listen on. `localhost` (127.0.0.1 and ::1) keeps the server on this machine;
    /// 0.0.0.0 or an interface address exposes it to your network.
    #[arg(long, env = "LIVESERVE_HOST", default_value = "localhost")]
    pub host: String,

    /// Open the default browser at the server's URL, or at PATH on it (`--open=/docs/`).
    #[arg(
        short,
        long,
        env = "LIVESERVE_OPEN",
        value_name = "PATH",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "/"
    )]
    pub open: Option<String>,

    /// Serve files only: no script in pages, no live reload.
    #[arg(long, env = "LIVESERVE_NO_RELOAD")]
    pub no_reload: bool,

    /// Don't reload for changes matching PATTERN, written as in a .gitignore (relative to ROOT;
    /// repeatable): dist/, /dist, *.log. Added to the built-in ignores: .git, node_modules,
    /// target, hidden files, editor temp files.
    #[arg(
        long,
        env = "LIVESERVE_IGNORE",
        value_name = "PATTERN",
        value_delimiter = ','
    )]
    pub ignore: Vec<String>,

    /// Poll every watched folder every MS milliseconds (default 300) instead of watching it
    /// natively. Without it, folders on network, VM and FUSE filesystems are polled by themselves.
    #[arg(
        long,
        env = "LIVESERVE_POLL",
        value_name = "MS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "300",
        conflicts_with = "no_poll"
    )]
    pub poll: Option<u64>,

    /// Never poll: watch natively even folders on filesystems where that may miss changes.
    #[arg(long, env = "LIVESERVE_NO_POLL")]
    pub no_poll: bool,

    /// Don't apply the .gitignore files inside ROOT to the watcher.
    #[arg(long, env = "LIVESERVE_NO_GITIGNORE")]
    pub no_gitignore: bool,

    /// Milliseconds without changes that end a batch: one batch, one reload.
    #[arg(long, env = "LIVESERVE_WAIT", value_name = "MS", default_value_t = 15)]
    pub wait: u64,

    /// Reload the page for stylesheet changes too, instead of swapping stylesheets in place.
    #[arg(long, env = "LIVESERVE_FULL_RELOAD")]
    pub full_reload: bool,

    /// Reload the page for an edit of its own HTML, instead of updating it in place.
    #[arg(long, env = "LIVESERVE_NO_MORPH")]
    pub no_morph: bool,

    /// Don't print the errors pages hit (exceptions, failed loads) on stderr.
    #[arg(long, env = "LIVESERVE_NO_BROWSER_ERRORS")]
    pub no_browser_errors: bool,

    /// Also answer requests whose Host is NAME (repeatable): for a tunnel or a reverse proxy.
    /// Without it only localhost, *.localhost and IP addresses are answered.
    #[arg(
        long,
        env = "LIVESERVE_ALLOW_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_host: Vec<String>,

    /// Serve dotfiles such as .env or .htaccess (never .git).
    #[arg(long, env = "LIVESERVE_ALLOW_HIDDEN")]
    pub allow_hidden: bool,

    /// Serve symlinks that point outside ROOT.
    #[arg(long, env = "LIVESERVE_FOLLOW_SYMLINKS")]
    pub follow_symlinks: bool,

    /// Let pages on any other origin read what liveserve serves (Access-Control-Allow-Origin: *).
    #[arg(long, env = "LIVESERVE_CORS")]
    pub cors: bool,

    /// Forward requests at or below PREFIX (default /, the whole site) to the backend at URL
    /// (repeatable), e.g. --proxy /api=http://localhost:3000. Its pages get the reload script too.
    #[arg(
        long,
        env = "LIVESERVE_PROXY",
        value_name = "[PREFIX=]URL",
        value_delimiter = ','
    )]
    pub proxy: Vec<String>,

    /// Serve the folder DIR at the URL prefix ROUTE too (repeatable), e.g.
    /// --mount /vendor=node_modules/lib/dist. Same rules as ROOT; its changes reload pages too.
    #[arg(
        long,
        env = "LIVESERVE_MOUNT",
        value_name = "ROUTE=DIR",
        value_delimiter = ','
    )]
    pub mount: Vec<String>,

    /// A single-page app: a missing page (a path without an extension, or a request for HTML)
    /// gets FILE (default index.html, relative to ROOT) with status 200. Missing assets still 404.
    #[arg(
        long,
        env = "LIVESERVE_SPA",
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "index.html"
    )]
    pub spa: Option<PathBuf>,

    /// Add the header to every response (repeatable; the variable takes one per line), e.g.
    /// --header 'Cross-Origin-Opener-Policy: same-origin'.
    #[arg(
        long,
        env = "LIVESERVE_HEADER",
        value_name = "NAME: VALUE",
        value_delimiter = '\n'
    )]
    pub header: Vec<String>,

    /// Also watch the folder PATH (repeatable), e.g. a backend's templates: a change there reloads
    /// every page.
    #[arg(
        long,
        env = "LIVESERVE_WATCH",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub watch: Vec<PathBuf>,

    /// Seconds a backend may take to start answering before the page gets 504.
    #[arg(
        long,
        env = "LIVESERVE_PROXY_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub proxy_timeout: u64,

    /// Print only the Local: URL line and errors.
    #[arg(short, long, env = "LIVESERVE_QUIET", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log every request and every batch of changes (to stderr).
    #[arg(short, long, env = "LIVESERVE_VERBOSE")]
    pub verbose: bool,
}

impl Cli {
    /// The configuration the arguments describe; a malformed `--proxy` is an error.
    pub fn config(&self) -> Result<Config, StartupError> {
        let mut config = Config::new(&self.root);
        config.reload = !self.no_reload;
        config.verbose = self.verbose;
        config.ignore = self.ignore.clone();
        config.gitignore = !self.no_gitignore;
        config.quiet_window = Duration::from_millis(self.wait);
        config.full_reload = self.full_reload;
        config.morph = !self.no_morph;
        config.browser_errors = !self.no_browser_errors;
        config.allowed_hosts = self.allow_host.clone();
        config.allow_hidden = self.allow_hidden;
        config.follow_symlinks = self.follow_symlinks;
        config.cors = self.cors;
        config.proxies = self
            .proxy
            .iter()
            .map(|route| route.parse())
            .collect::<Result<_, _>>()?;
        config.mounts = self
            .mount
            .iter()
            .map(|mount| mount.parse())
            .collect::<Result<_, _>>()?;
        config.spa = self.spa.clone();
        config.headers = self
            .header
            .iter()
            .map(|header| header.parse())
            .collect::<Result<_, _>>()?;
        config.watch = self.watch.clone();
        config.polling = match (self.poll, self.no_poll) {
            (Some(_), _) => Polling::Always,
            (None, true) => Polling::Never,
            (None, false) => Polling::Auto,
        };
        if let Some(interval) = self.poll {
            config.poll_interval = Duration::from_millis(interval);
        }
        config.proxy_timeout = Duration::from_secs(self.proxy_timeout);
        Ok(config)
    }

    pub fn port_choice(&self) -> PortChoice {
        match self.port {
            Some(port) => PortChoice::Exactly(port),
            None => PortChoice::FirstFreeFrom(DEFAULT_PORT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn open_takes_an_optional_path() {
        let cli = Cli::try_parse_from(["liveserve", "--open"]).unwrap();
        assert_eq!(cli.open.as_deref(), Some("/"));
        let cli = Cli::try_parse_from(["liveserve", "site", "--open=/docs/"]).unwrap();
        assert_eq!(cli.open.as_deref(), Some("/docs/"));
        assert_eq!(cli.root, PathBuf::from("site"));
        // A folder after --open is the folder to serve, not the page to open.
        let cli = Cli::try_parse_from(["liveserve", "--open", "site"]).unwrap();
        assert_eq!(cli.open.as_deref(), Some("/"));
        assert_eq!(cli.root, PathBuf::from("site"));
    }
}
