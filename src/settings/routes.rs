//! Routes besides the served folder: `--proxy [PREFIX=]URL` sends requests to a backend,
//! `--mount ROUTE=DIR` serves another folder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use http::uri::{Authority, Uri};

/// Requests at or below `prefix` (whole segments) go to `upstream`, with `base_path` put in front
/// of their path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    prefix: String,
    authority: Authority,
    base_path: String,
}

/// Why a `--proxy` value was refused; the message names the value and says what works.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--proxy {value:?}: {reason}; write it as [PREFIX=]http://HOST:PORT[/BASE], e.g. --proxy /api=http://localhost:3000"
)]
pub struct BadProxyRoute {
    value: String,
    reason: &'static str,
}

impl ProxyRoute {
    /// The URL path prefix, `/` or a path without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `host:port` of the backend (the port is always there).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Put in front of every forwarded path; empty, or starting with `/` and not ending with one.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The backend's origin, `http://host:port`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }
}

impl fmt::Display for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}{}", self.prefix, self.origin(), self.base_path)
    }
}

impl FromStr for ProxyRoute {
    type Err = BadProxyRoute;

    fn from_str(value: &str) -> Result<Self, BadProxyRoute> {
        let bad = |reason| BadProxyRoute {
            value: value.to_owned(),
            reason,
        };
        let trimmed = value.trim();
        // An `=` before any `://` ends the prefix; one after it belongs to the URL.
        let (prefix, url) = match trimmed.split_once('=') {
            Some((prefix, url)) if !prefix.contains("://") => (prefix, url),
            _ => ("/", trimmed),
        };
        if !prefix.starts_with('/') {
            return Err(bad("the prefix must start with '/'"));
        }
        let prefix = normalize_prefix(prefix).map_err(bad)?;
        let uri: Uri = url.parse().map_err(|_| bad("the URL is not valid"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(bad("only http:// backends can be proxied")),
            None => return Err(bad("the URL needs http:// in front")),
        }
        let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("the URL may not carry a user name or password"));
        }
        if authority.host().is_empty() {
            return Err(bad("the URL has no host"));
        }
        if url.contains('?') || url.contains('#') {
            return Err(bad("the URL may not have a query or a fragment"));
        }
        let port = authority.port_u16().unwrap_or(80);
        let authority: Authority = format!("{}:{port}", authority.host())
            .parse()
            .map_err(|_| bad("the URL's host is not valid"))?;
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(ProxyRoute {
            prefix,
            authority,
            base_path,
        })
    }
}

/// Requests at or below `prefix` (whole segments) are served from the folder `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRoute {
    prefix: String,
    dir: PathBuf,
}

/// Why a `--mount` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--mount {value:?}: {reason}; write it as ROUTE=DIR, e.g. --mount /vendor=node_modules/lib/dist"
)]
pub struct BadMountRoute {
    value: String,
    reason: &'static str,
}

impl MountRoute {
    /// The URL path prefix, not `/` (that is the served folder), without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The folder, as given (relative to the current directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Display for MountRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.prefix, self.dir.display())
    }
}

impl FromStr for MountRoute {
    type Err = BadMountRoute;

    fn from_str(value: &str) -> Result<Self, BadMountRoute> {
        let bad = |reason| BadMountRoute {
            value: value.to_owned(),
            reason,
        };
        let (prefix, dir) = value
            .trim()
            .split_once('=')
            .ok_or_else(|| bad("it has no '='"))?;
        if !prefix.starts_with('/') {
            return Err(bad("the route must start with '/'"));
        }
        let prefix = normalize_prefix(prefix).map_err(bad)?;
        if prefix == "/" {
            return Err(bad("/ is the folder liveserve serves; mount below it"));
        }
        if dir.is_empty() {
            return Err(bad("the folder is missing"));
        }
        Ok(MountRoute {
            prefix,
            dir: PathBuf::from(dir),
        })
    }
}

/// `/` stays `/`; anything else loses its trailing slash. `..`, `.` and empty segments, queries
/// and liveserve's own prefix are refused.
fn normalize_prefix(prefix: &str) -> Result<String, &'static str> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_owned());
    }
    let segments: Vec<&str> = trimmed[1..].split('/').collect();
    if segments
        .iter()
        .any(|segment| segment.is_empty() || *segment == "." || *segment == "..")
    {
        return Err("the prefix must be a plain path such as /api");
    }
    if trimmed.contains(['?', '#', '%', '\\']) || trimmed.chars().any(char::is_whitespace) {
        return Err("the prefix must be a plain path such as /api");
    }
    if segments[0] == "__liveserve" {
        return Err("/__liveserve/ is liveserve's own");
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(value: &str) -> ProxyRoute {
        value.parse().unwrap()
    }

    #[test]
    fn a_url_alone_is_the_whole_site() {
        let whole = route("http://localhost:3000");
        assert_eq!(whole.prefix(), "/");
        assert_eq!(whole.authority().as_str(), "localhost:3000");
        assert_eq!(whole.base_path(), "");
        assert_eq!(whole.to_string(), "/ → http://localhost:3000");
    }

    #[test]
    fn prefixes_base_paths_and_default_ports() {
        let api = route("/api/=http://127.0.0.1:8000/v1/");
        assert_eq!(api.prefix(), "/api");
        assert_eq!(api.authority().as_str(), "127.0.0.1:8000");
        assert_eq!(api.base_path(), "/v1");
        assert_eq!(route("/=http://backend").authority().as_str(), "backend:80");
        assert_eq!(
            route("/a/b=http://[::1]:9000").authority().as_str(),
            "[::1]:9000"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (value, reason) in [
            ("ftp://x", "only http://"),
            ("https://x", "only http://"),
            ("localhost:3000", "http://"),
            ("/api=localhost:3000", "http://"),
            ("api=http://x", "start with '/'"),
            ("/a/../b=http://x", "plain path"),
            ("/a//b=http://x", "plain path"),
            ("/__liveserve=http://x", "liveserve's own"),
            ("/api=http://x:1/a b", "not valid"),
            ("/api=http://user:pw@x:1", "user name"),
            ("/api=http://x:1/?q=1", "query"),
            ("/api=http://", "not valid"),
            ("/api=", "not valid"),
        ] {
            let error = value.parse::<ProxyRoute>().unwrap_err().to_string();
            assert!(error.contains(reason), "{value}: {error}");
            assert!(error.contains("--proxy"), "{error}");
        }
    }

    #[test]
    fn mounts_name_a_route_and_a_folder() {
        let mount: MountRoute = "/vendor/=node_modules/lib".parse().unwrap();
        assert_eq!(mount.prefix(), "/vendor");
        assert_eq!(mount.dir(), Path::new("node_modules/lib"));
        for (value, reason) in [
            ("vendor=lib", "start with '/'"),
            ("/vendor", "no '='"),
            ("/=lib", "mount below it"),
            ("/a/../b=lib", "plain path"),
            ("/vendor=", "folder is missing"),
        ] {
            let error = value.parse::<MountRoute>().unwrap_err().to_string();
            assert!(error.contains(reason), "{value}: {error}");
        }
    }
}
