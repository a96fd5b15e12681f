//! Errors that stop liveserve before it serves anything. Each message says what to do about it.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the folder {} does not exist; give a folder to serve, e.g. `liveserve .`", .0.display())]
    RootMissing(PathBuf),
    #[error("{} is a file, not a folder; serve the folder that holds it instead", .0.display())]
    RootIsFile(PathBuf),
    #[error("cannot read the folder {}: {error}; check its permissions", .path.display())]
    RootUnreadable { path: PathBuf, error: io::Error },
    #[error(
        "--host {host:?} is {reason}; use localhost, an IP address such as 0.0.0.0, or a name that resolves"
    )]
    BadHost { host: String, reason: String },
    #[error(
        "port {0} is already in use; pick another with --port, or use --port 0 for any free port"
    )]
    PortBusy(u16),
    #[error("ports {first} to {last} are all in use; pick a free one with --port, or use --port 0")]
    NoFreePort { first: u16, last: u16 },
    #[error(
        "--host {0} is not an address of this machine; use localhost, 0.0.0.0, or one of its addresses"
    )]
    HostUnavailable(IpAddr),
    #[error(transparent)]
    BadProxy(#[from] crate::settings::BadProxyRoute),
    #[error(transparent)]
    BadMount(#[from] crate::settings::BadMountRoute),
    #[error(transparent)]
    BadHeader(#[from] crate::settings::BadHeader),
    #[error(transparent)]
    BadAllowHost(#[from] crate::settings::BadHostRule),
    #[error(
        "two --proxy routes or --mount routes claim the prefix {0}; give each prefix one source"
    )]
    DuplicateRoute(String),
    #[error("{flag} {}: {reason}; give a folder", .path.display())]
    BadFolder {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("--spa: {} is not a file; give the page a single-page app falls back to, relative to ROOT", .0.display())]
    BadSpa(PathBuf),
    #[error(transparent)]
    BadIgnore(#[from] crate::reload::BadPattern),
    #[error(
        "--poll={0} is out of range; give an interval from 20 to 10000 milliseconds, or --poll alone for 300"
    )]
    BadPollInterval(u128),
    #[error("--wait {0} is too long; give at most 60000 milliseconds (a minute)")]
    BadWait(u128),
    #[error("--exec needs a command, e.g. --exec 'npm run build'")]
    EmptyExec,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr} port {port}: {error}")]
    Listen {
        addr: IpAddr,
        port: u16,
        error: io::Error,
    },
}

impl StartupError {
    /// 2 for what the user typed (like a usage error), 1 for the machine's state (a busy port).
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::RootMissing(_)
            | StartupError::RootIsFile(_)
            | StartupError::RootUnreadable { .. }
            | StartupError::BadHost { .. }
            | StartupError::HostUnavailable(_)
            | StartupError::BadProxy(_)
            | StartupError::BadMount(_)
            | StartupError::BadHeader(_)
            | StartupError::BadAllowHost(_)
            | StartupError::DuplicateRoute(_)
            | StartupError::BadFolder { .. }
            | StartupError::BadSpa(_)
            | StartupError::BadWait(_)
            | StartupError::EmptyExec
            | StartupError::BadIgnore(_)
            | StartupError::BadPollInterval(_)
            | StartupError::Tls(_) => 2,
            StartupError::PortBusy(_)
            | StartupError::NoFreePort { .. }
            | StartupError::Listen { .. } => 1,
        }
    }

    /// The setting (its long flag name) whose value this error is about, so that the error can
    /// say where that value came from: a variable or a line of the config file.
    pub fn setting(&self) -> Option<&'static str> {
        Some(match self {
            StartupError::RootMissing(_)
            | StartupError::RootIsFile(_)
            | StartupError::RootUnreadable { .. } => "root",
            StartupError::BadHost { .. } | StartupError::HostUnavailable(_) => "host",
            StartupError::PortBusy(_) => "port",
            StartupError::BadProxy(_) => "proxy",
            StartupError::BadMount(_) => "mount",
            StartupError::BadHeader(_) => "header",
            StartupError::BadAllowHost(_) => "allow-host",
            StartupError::BadFolder { flag, .. } => flag.trim_start_matches('-'),
            StartupError::BadSpa(_) => "spa",
            StartupError::BadIgnore(_) => "ignore",
            StartupError::BadPollInterval(_) => "poll",
            StartupError::BadWait(_) => "wait",
            StartupError::EmptyExec => "exec",
            StartupError::Tls(error) => error.setting()?,
            StartupError::DuplicateRoute(_)
            | StartupError::NoFreePort { .. }
            | StartupError::Listen { .. } => return None,
        })
    }
}
