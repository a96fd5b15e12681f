//! What the server is told to do: the command line, and the [`Config`] it becomes.

mod cli;
mod config;
mod config_file;
mod headers;
mod hosts;
mod layers;
mod routes;

pub use crate::reload::Polling;
pub use cli::{Cli, Switch};
pub use config::{Config, Validated};
pub use headers::{BadHeader, CustomHeader};
pub use hosts::{BadHostRule, HostRule};
pub use layers::{Settings, SettingsError, check_config_file, one_line};
pub use routes::{BadMountRoute, BadProxyRoute, MountRoute, ProxyRoute};
