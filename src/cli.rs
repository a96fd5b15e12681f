//! The command line. Parsing is pure (no I/O); `launch` turns the parsed arguments into a server.

use std::path::PathBuf;

use clap::Parser;

use crate::config::Config;
use crate::listen::{DEFAULT_PORT, PortChoice};

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

    /// Open the default browser at the server's URL, or at PATH on it.
    #[arg(short, long, env = "LIVESERVE_OPEN", value_name = "PATH", num_args = 0..=1, default_missing_value = "/")]
    pub open: Option<String>,

    /// Serve files only: no script in pages, no live reload.
    #[arg(long, env = "LIVESERVE_NO_RELOAD")]
    pub no_reload: bool,

    /// Print only the Local: URL line and errors.
    #[arg(short, long, env = "LIVESERVE_QUIET", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log every request (to stderr).
    #[arg(short, long, env = "LIVESERVE_VERBOSE")]
    pub verbose: bool,
}

impl Cli {
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.root);
        config.reload = !self.no_reload;
        config.log_requests = self.verbose;
        config
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
    }
}
