//! liveserve: a live-reload development server.
//!
//! The binary is a thin wrapper over [`launch::run`]; programs that want the server in-process
//! bind their own listeners and call [`app::run`] with a [`Config`].

pub mod access;
pub mod app;
pub mod banner;
mod batcher;
mod body;
pub mod cli;
mod client;
pub mod config;
pub mod error;
mod files;
mod host_policy;
mod hub;
pub mod ignore_rules;
pub mod inject;
pub mod launch;
pub mod listen;
mod listing;
mod pages;
pub mod protocol;
pub mod request_path;
mod service;
mod validators;
mod watcher;
mod websocket;

pub use config::Config;
pub use error::StartupError;
