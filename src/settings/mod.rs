//! What the server is told to do: the command line, and the [`Config`] it becomes.

pub mod cli;
mod config;
mod proxy_route;

pub use crate::reload::Polling;
pub use cli::Cli;
pub use config::{Config, Validated};
pub use proxy_route::{BadProxyRoute, ProxyRoute};
