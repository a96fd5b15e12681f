//! The command line. Parsing is pure (no I/O); `launch` turns the parsed arguments into a server.
//! [`Settings`](crate::settings::Settings) layers the environment and the config file under it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, Parser};

use crate::error::StartupError;
use crate::listen::{Addresses, DEFAULT_PORT, PortChoice};
use crate::reload::Polling;
use crate::settings::Config;
use crate::tls::{self, Tls, TlsError};

/// A live-reload development server: serve a folder, and every save shows up in the browser at once.
#[derive(Debug, Parser)]
#[command(
    name = "liveserve",
    version,
    max_term_width = 100,
    after_help = "Drive a running liveserve: liveserve reload [--url URL] [PATH...] reloads its pages, liveserve wait [--url URL] [--timeout S] waits until they show the latest change (see liveserve reload --help, liveserve wait --help)."
)]
pub struct Cli {
    /// The folder to serve.
    #[arg(env = "LIVESERVE_ROOT", default_value = ".")]
    pub root: PathBuf,

    /// Port to listen on. Without it, 8080 or the next free port; a port given here (or in
    /// LIVESERVE_PORT) that is busy is an error. 0 picks any free port.
    #[arg(short, long, env = "LIVESERVE_PORT", value_parser = number::<u16>, allow_negative_numbers = true)]
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
        default_missing_value = "true",
        value_parser = switch("/", |path| Ok(path.to_owned()))
    )]
    pub open: Option<Switch<String>>,

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
        default_missing_value = "true",
        value_parser = switch("300", number::<u64>)
    )]
    pub poll: Option<Switch<u64>>,

    /// Never poll: watch natively even folders on filesystems where that may miss changes.
    #[arg(long, env = "LIVESERVE_NO_POLL")]
    pub no_poll: bool,

    /// Don't apply the .gitignore files inside ROOT to the watcher.
    #[arg(long, env = "LIVESERVE_NO_GITIGNORE")]
    pub no_gitignore: bool,

    /// Milliseconds without changes that end a batch: one batch, one reload.
    #[arg(
        long,
        env = "LIVESERVE_WAIT",
        value_name = "MS",
        default_value_t = 15,
        value_parser = number::<u64>,
        allow_negative_numbers = true
    )]
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
    /// .example.com allows example.com and every name below it. Without it only localhost,
    /// *.localhost and IP addresses are answered.
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

    /// Serve HTTPS (and HTTP/2) with a certificate signed by a local certificate authority that
    /// liveserve makes once in your data folder (trust it once); http:// on the port redirects.
    #[arg(long, env = "LIVESERVE_HTTPS")]
    pub https: bool,

    /// Serve HTTPS with this certificate (PEM, e.g. from mkcert) instead; needs --key.
    #[arg(long, env = "LIVESERVE_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, env = "LIVESERVE_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Draw the first Network URL as a QR code for a phone's camera. On by default when the
    /// server is exposed (--host 0.0.0.0) and stdout is a terminal; --qr=false turns it off.
    #[arg(
        long,
        env = "LIVESERVE_QR",
        value_name = "ON",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub qr: Option<bool>,

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
        default_missing_value = "true",
        value_parser = switch("index.html", |file| Ok(PathBuf::from(file)))
    )]
    pub spa: Option<Switch<PathBuf>>,

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
    /// every page. With --exec, the build's sources: a change there runs the command.
    #[arg(
        long,
        env = "LIVESERVE_WATCH",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub watch: Vec<PathBuf>,

    /// Run CMD (through your shell) at start and after each change under --watch, e.g. a build
    /// writing into the served folder: pages update once it succeeds, and show its output if it
    /// fails.
    #[arg(long, env = "LIVESERVE_EXEC", value_name = "CMD")]
    pub exec: Option<String>,

    /// With --exec, for a command that keeps running (a backend): a change restarts it, and
    /// pages reload once the port --proxy forwards to accepts connections again.
    #[arg(long, env = "LIVESERVE_EXEC_RESTART", requires = "exec")]
    pub exec_restart: bool,

    /// Seconds a backend may take to start answering before the page gets 504.
    #[arg(
        long,
        env = "LIVESERVE_PROXY_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = number::<u64>,
        allow_negative_numbers = true
    )]
    pub proxy_timeout: u64,

    /// Print only the Local: URL line and errors.
    #[arg(short, long, env = "LIVESERVE_QUIET")]
    pub quiet: bool,

    /// Log every request and every batch of changes (to stderr).
    #[arg(short, long, env = "LIVESERVE_VERBOSE")]
    pub verbose: bool,

    /// Read settings from FILE instead of ROOT/liveserve.toml. Flags and variables override it.
    #[arg(long, env = "LIVESERVE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Ignore ROOT/liveserve.toml.
    #[arg(long, env = "LIVESERVE_NO_CONFIG")]
    pub no_config: bool,
}

/// Settings (long names) that contradict each other when both are on. They are checked on the
/// values, after parsing: clap's conflicts would also refuse `LIVESERVE_QUIET=0 liveserve -v`,
/// where quiet is off.
pub const CONTRADICTIONS: &[(&str, &str)] = &[
    ("quiet", "verbose"),
    ("poll", "no-poll"),
    ("config", "no-config"),
    // Without live reload nothing would tell the pages about a build.
    ("exec", "no-reload"),
];

/// The settings that contradict `name`.
pub fn contradicting(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    CONTRADICTIONS.iter().filter_map(move |&(a, b)| {
        if a == name {
            Some(b)
        } else if b == name {
            Some(a)
        } else {
            None
        }
    })
}

/// A setting that may be given alone (`--open`), with a value (`--open=/docs/`), or, in a
/// variable or the config file, as on or off (`LIVESERVE_OPEN=true`, `spa = false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch<T> {
    Off,
    On(T),
}

impl<T> Switch<T> {
    fn on(&self) -> Option<&T> {
        match self {
            Switch::Off => None,
            Switch::On(value) => Some(value),
        }
    }
}

/// The value parser of a [`Switch`]: the words people use for on (`true`, `yes`, `on`, `1`) mean
/// the flag alone, as if its value were `alone`; those for off mean no flag; anything else is the
/// value. `1` and `0` cannot be meant as values: no path or interval is written so.
fn switch<T: Clone + Send + Sync + 'static>(
    alone: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<Switch<T>, String> + Clone + Send + Sync + 'static {
    move |value| match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => parse(alone).map(Switch::On),
        "false" | "no" | "off" | "0" => Ok(Switch::Off),
        _ => parse(value).map(Switch::On),
    }
}

/// The value parser of counts, ports and milliseconds, with errors a person understands: clap's
/// own would call `-1` an unknown flag, and the standard library's "invalid digit".
fn number<T: TryFrom<u64>>(value: &str) -> Result<T, String> {
    let value = value.trim();
    if let Some(magnitude) = value.strip_prefix('-')
        && magnitude.parse::<f64>().is_ok()
    {
        return Err("must be a positive number".to_owned());
    }
    let number: u64 = value
        .parse()
        .map_err(|_| "must be a whole number, such as 3000".to_owned())?;
    T::try_from(number).map_err(|_| "is too large".to_owned())
}

/// The command line clap parses: the derived definition, with on/off flags that take from a
/// variable what people write there (`1`/`0`, `yes`/`no`, `true`/`false`, `on`/`off`).
pub fn command() -> clap::Command {
    Cli::command().mut_args(|arg| {
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            arg.value_parser(BoolishValueParser::new())
        } else {
            arg
        }
    })
}

impl Cli {
    /// The configuration the arguments describe; a malformed `--proxy`, `--mount`, `--header` or
    /// `--allow-host` is an error.
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
        config.allowed_hosts = self
            .allow_host
            .iter()
            .map(|rule| rule.parse())
            .collect::<Result<_, _>>()?;
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
        config.spa = self.spa.as_ref().and_then(Switch::on).cloned();
        config.headers = self
            .header
            .iter()
            .map(|header| header.parse())
            .collect::<Result<_, _>>()?;
        config.watch = self.watch.clone();
        config.exec = self.exec.clone();
        config.exec_restart = self.exec_restart;
        let poll = self.poll.as_ref().and_then(Switch::on);
        config.polling = match (poll, self.no_poll) {
            (Some(_), _) => Polling::Always,
            (None, true) => Polling::Never,
            (None, false) => Polling::Auto,
        };
        if let Some(&interval) = poll {
            config.poll_interval = Duration::from_millis(interval);
        }
        config.proxy_timeout = Duration::from_secs(self.proxy_timeout);
        Ok(config)
    }

    /// The first pair of settings that contradict each other and are both on.
    pub fn contradiction(&self) -> Option<(&'static str, &'static str)> {
        let on = |name: &str| match name {
            "quiet" => self.quiet,
            "verbose" => self.verbose,
            "poll" => self.poll.as_ref().and_then(Switch::on).is_some(),
            "no-poll" => self.no_poll,
            "config" => self.config.is_some(),
            "no-config" => self.no_config,
            "exec" => self.exec.is_some(),
            "no-reload" => self.no_reload,
            _ => false,
        };
        CONTRADICTIONS.iter().copied().find(|(a, b)| on(a) && on(b))
    }

    /// The certificate to serve HTTPS with, if asked for: the user's (`--cert`, `--key`), or one
    /// made for `addresses` by the local authority (`--https`).
    pub fn tls(&self, addresses: &Addresses) -> Result<Option<Tls>, StartupError> {
        let tls = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Tls::from_files(cert, key)?,
            (None, None) if self.https => {
                let folder = tls::data_folder().ok_or(TlsError::NoDataFolder)?;
                let (names, ips) = certificate_names(addresses);
                Tls::local(&folder, &names, &ips)?
            }
            (None, None) => return Ok(None),
            _ => return Err(TlsError::HalfPair.into()),
        };
        Ok(Some(tls))
    }

    /// The page `--open` asks for, if any.
    pub fn open_path(&self) -> Option<&str> {
        self.open.as_ref().and_then(Switch::on).map(String::as_str)
    }

    pub fn port_choice(&self) -> PortChoice {
        match self.port {
            Some(port) => PortChoice::Exactly(port),
            None => PortChoice::FirstFreeFrom(DEFAULT_PORT),
        }
    }
}

/// What a local certificate names: `localhost` and its subdomains, this machine's name, the
/// loopback addresses and every address served to the network.
fn certificate_names(addresses: &Addresses) -> (Vec<String>, Vec<IpAddr>) {
    let mut names = vec!["localhost".to_owned(), "*.localhost".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
        }
    }
    let mut ips = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ];
    ips.extend(addresses.network_ips());
    ips.dedup();
    (names, ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = command()
            .try_get_matches_from(std::iter::once("liveserve").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn open_takes_an_optional_path() {
        let cli = parse(&["--open"]).unwrap();
        assert_eq!(cli.open_path(), Some("/"));
        let cli = parse(&["site", "--open=/docs/"]).unwrap();
        assert_eq!(cli.open_path(), Some("/docs/"));
        assert_eq!(cli.root, PathBuf::from("site"));
        // A folder after --open is the folder to serve, not the page to open.
        let cli = parse(&["--open", "site"]).unwrap();
        assert_eq!(cli.open_path(), Some("/"));
        assert_eq!(cli.root, PathBuf::from("site"));
        assert_eq!(parse(&["--open=yes"]).unwrap().open_path(), Some("/"));
        assert_eq!(parse(&["--open=false"]).unwrap().open_path(), None);
    }

    #[test]
    fn contradictions_are_about_values() {
        assert_eq!(
            parse(&["-q", "-v"]).unwrap().contradiction(),
            Some(("quiet", "verbose"))
        );
        assert_eq!(
            parse(&["--poll=off", "--no-poll"]).unwrap().contradiction(),
            None
        );
        assert_eq!(
            parse(&["--poll", "--no-poll"]).unwrap().contradiction(),
            Some(("poll", "no-poll"))
        );
    }

    #[test]
    fn switches_and_numbers() {
        let config = parse(&["--spa", "site"]).unwrap().config().unwrap();
        assert_eq!(config.spa, Some(PathBuf::from("index.html")));
        assert_eq!(config.root, PathBuf::from("site"));
        let config = parse(&["--poll=on", "--spa=off"])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!((config.polling, config.spa), (Polling::Always, None));
        assert_eq!(config.poll_interval, Duration::from_millis(300));
        let config = parse(&["--poll=50"]).unwrap().config().unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(50));
        for (args, message) in [
            (&["--port", "-1"][..], "must be a positive number"),
            (&["--wait=-5"], "must be a positive number"),
            (&["--port", "abc"], "must be a whole number"),
            (&["--port", "70000"], "is too large"),
            (&["--poll=-3"], "must be a positive number"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(message), "{args:?}: {error}");
        }
    }
}
