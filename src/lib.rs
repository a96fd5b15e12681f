//! liveserve: a live-reload development server, as a small library for site generators,
//! documentation tools and test harnesses.
//!
//! A [`Server`] serves a folder on a port: files as they are on disk, HTML pages with a small
//! script that keeps a WebSocket open, over which the server tells the pages what changed, so
//! stylesheets swap in place and pages update or reload by themselves. The server watches the
//! folder (or, with [`Builder::watch`]`(false)`, hears from the program through a
//! [`Reloader`] which pages it wrote).
//!
//! ```no_run
//! # async fn example() -> Result<(), liveserve::Error> {
//! // A generator that writes its site into `public/` and knows what it wrote:
//! let server = liveserve::Server::builder("public")
//!     .bind("127.0.0.1:8080".parse().unwrap())
//!     .watch(false)
//!     .build()
//!     .await?;
//! let reloader = server.reloader();
//! tokio::spawn(server.run(std::future::pending()));
//! // ... after writing public/posts/hello/index.html and public/style.css:
//! reloader.notify(["/posts/hello/index.html", "/style.css"]);
//! # Ok(())
//! # }
//! ```
//!
//! The `liveserve` command is the same server with its command line; `examples/embed.rs` is a
//! complete program.

mod access;
mod app;
mod banner;
mod browser;
mod error;
mod filesystems;
mod http;
mod launch;
mod listen;
mod memory;
mod protocol;
mod reload;
mod remote;
mod request_path;
mod server;
mod settings;
mod tls;

pub use server::{Builder, Error, Reloader, Server};

/// What liveserve's own binary, tests and benchmarks use besides the API above. Not part of the
/// API: it changes whenever liveserve does.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::StartupError;
    pub use crate::settings::Config;

    /// What the fuzz targets in `fuzz/` check on arbitrary input: each panics on a fault.
    pub mod fuzzing {
        pub use crate::http::{check_client_bytes, check_injection};
        pub use crate::request_path::check_decoding;
        pub use crate::settings::check_config_file;
    }
    pub mod app {
        pub use crate::app::*;
    }
    pub mod launch {
        pub use crate::launch::*;
    }
    pub mod listen {
        pub use crate::listen::*;
    }
    pub mod protocol {
        pub use crate::protocol::*;
    }
    pub mod remote {
        pub use crate::remote::*;
    }
    pub mod settings {
        pub use crate::settings::*;
    }
    pub mod tls {
        pub use crate::tls::*;
    }
}
