//! What the server is told to do: the command line, and the [`Config`] it becomes.

pub mod cli;
mod config;
mod headers;
mod routes;

pub use crate::reload::Polling;
pub use cli::Cli;
pub use config::{Config, Validated};
pub use headers::{BadHeader, CustomHeader};
pub use routes::{BadMountRoute, BadProxyRoute, MountRoute, ProxyRoute};
