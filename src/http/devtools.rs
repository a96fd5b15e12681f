//! Chrome's DevTools asks a dev server for `/.well-known/appspecific/com.chrome.devtools.json`
//! to learn where the served files live, so that edits made in DevTools can be saved to them
//! ("Automatic workspace folders"). The answer is the root's path on disk: told only to this
//! machine, and only when asked through a loopback name from a loopback address.

use std::path::Path;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use xxhash_rust::xxh3::xxh3_128;

use crate::http::ClientAddr;
use crate::http::body::Body;
use crate::http::host_policy;
use crate::http::pages;

pub const PATH: &str = "/.well-known/appspecific/com.chrome.devtools.json";

/// The answer for the served root, made once.
pub struct Workspace {
    json: Bytes,
}

impl Workspace {
    /// `root` is canonical. Its UUID is derived from the path, so DevTools keeps its mapping
    /// across restarts, and two projects never share one.
    pub fn new(root: &Path) -> Self {
        let json = serde_json::json!({
            "workspace": {
                "root": root.to_string_lossy(),
                "uuid": uuid_of(root),
            }
        });
        Workspace {
            json: Bytes::from(json.to_string()),
        }
    }

    pub fn respond<B>(&self, request: &Request<B>) -> Response<Body> {
        let from_this_machine = request
            .extensions()
            .get::<ClientAddr>()
            .is_none_or(ClientAddr::is_loopback);
        if !(from_this_machine && host_policy::names_this_machine(request)) {
            return pages::error(StatusCode::NOT_FOUND, "nothing is served here");
        }
        pages::generated(StatusCode::OK, "application/json", self.json.clone())
    }
}

/// A version 4 style UUID from a hash of the path.
fn uuid_of(root: &Path) -> String {
    let mut bytes = xxh3_128(root.as_os_str().as_encoded_bytes()).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_per_root_and_well_formed() {
        let a = uuid_of(Path::new("/home/a/site"));
        assert_eq!(a, uuid_of(Path::new("/home/a/site")));
        assert_ne!(a, uuid_of(Path::new("/home/a/other")));
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
