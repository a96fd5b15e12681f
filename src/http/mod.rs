//! The serving half: guards → liveserve's own endpoints or a route's source → one response
//! pipeline. Nothing here knows how files are watched; it subscribes to the reload hub.

mod body;
mod browser_errors;
mod control;
mod decode;
mod devtools;
mod file_reads;
mod guards;
mod host_policy;
mod inject;
mod internal;
mod pages;
mod pipeline;
mod plain_http;
mod proxy;
mod router;
mod static_files;
mod upgrade;
mod validators;
mod websocket;

pub use control::changed_url;
pub use inject::check_injection;
pub use internal::AUTHORITY_PATH;
pub use plain_http::plain_http_on_https;
pub use proxy::ClientAddr;
pub use router::Router;
pub use static_files::{DEFAULT_SETTLE, FileCache};
pub use upgrade::Upgrades;
pub use websocket::check_client_bytes;
