//! liveserve: a live-reload development server.
//!
//! The binary is a thin wrapper over [`launch::run`]; programs that want the server in-process
//! bind their own listeners and call [`app::run`] with a [`Config`].
//!
//! Two halves meet only in the reload hub: `http` answers requests (router, guards, sources,
//! one response pipeline), `reload` watches files and decides what to tell the pages.

mod access;
pub mod app;
mod banner;
mod browser;
pub mod error;
mod filesystems;
mod http;
pub mod launch;
pub mod listen;
mod memory;
pub mod protocol;
mod reload;
pub mod remote;
mod request_path;
pub mod settings;
pub mod tls;

pub use error::StartupError;
pub use settings::Config;
