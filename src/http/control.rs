//! Endpoints for other programs on this machine: `POST /__liveserve/reload` publishes a change as
//! a saved file would (a build tool's "done", an editor's command, `liveserve reload`), and
//! `GET /__liveserve/status` says where the changes stand and what each open tab shows (what
//! `liveserve wait` polls).
//!
//! Only programs on this machine may use them, and never a web page: a request must come from a
//! loopback address with an allowed `Host` (the guards check that for every request), and one
//! carrying another site's `Origin` or `Sec-Fetch-Site: cross-site` is refused, so a page the
//! developer happens to open cannot drive their browser tabs.

use std::path::PathBuf;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use crate::http::body::Body;
use crate::http::guards;
use crate::http::host_policy::HostPolicy;
use crate::http::pages;
use crate::http::proxy::ClientAddr;
use crate::protocol::{BuildFailure, Change, ChangeKind, Changed};
use crate::reload::{PageStatus, Published, ReloadHub};
use crate::request_path::{BadPath, RequestPath};

/// Where a reload is asked for.
pub const RELOAD_PATH: &str = "/__liveserve/reload";

/// Where the status is read.
pub const STATUS_PATH: &str = "/__liveserve/status";

/// A reload request names paths; a few thousand fit in this.
const MAX_RELOAD_BODY: usize = 256 * 1024;

/// What `POST /__liveserve/reload` may carry: the URL paths that changed (none: every page).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    #[serde(default)]
    paths: Vec<String>,
}

/// `None` when `request` may use a control endpoint, else the refusal.
pub fn refusal<B>(request: &Request<B>, hosts: &HostPolicy) -> Option<Response<Body>> {
    let from_this_machine = request
        .extensions()
        .get::<ClientAddr>()
        .is_some_and(ClientAddr::is_loopback);
    if !from_this_machine {
        return Some(pages::error(
            StatusCode::FORBIDDEN,
            "only programs on this machine may drive liveserve",
        ));
    }
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site == "cross-site");
    if cross_site || !hosts.origin_allowed(request.headers()) {
        return Some(pages::error(
            StatusCode::FORBIDDEN,
            "a web page may not drive liveserve",
        ));
    }
    None
}

/// Publishes the change `request` describes; answers with the message the pages got.
pub async fn reload(request: Request<Incoming>, hub: &ReloadHub) -> Response<Body> {
    if request.method() != Method::POST {
        let mut refused = pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST here to reload the pages",
        );
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return refused;
    }
    let limited = http_body_util::Limited::new(request.into_body(), MAX_RELOAD_BODY);
    let Ok(body) = limited.collect().await.map(|body| body.to_bytes()) else {
        return pages::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a reload request lists at most 256 KiB of paths",
        );
    };
    let changed = match changed_from(&body) {
        Ok(changed) => changed,
        Err(reason) => return pages::error(StatusCode::BAD_REQUEST, &reason),
    };
    let published = hub.publish(&changed);
    let status = match published {
        Published::Sent(_) => StatusCode::OK,
        Published::Held => StatusCode::ACCEPTED,
    };
    pages::generated(status, "application/json", Bytes::from(published.to_json()))
}

/// What `GET /__liveserve/status` answers.
#[derive(Debug, Serialize)]
struct Status {
    /// Change messages sent so far: a tab showing this one is up to date.
    generation: u64,
    /// A batch of changes is still on its way, or an `--exec` run is under way.
    pending: bool,
    /// `running`, `failed` or `ok` (also without `--exec`).
    build: &'static str,
    /// What the last failed `--exec` run printed.
    failure: Option<BuildFailure>,
    /// Every open tab.
    pages: Vec<PageStatus>,
}

/// Where the changes stand and what each open tab shows, as JSON.
pub fn status<B>(request: &Request<B>, hub: &ReloadHub) -> Response<Body> {
    if let Some(answer) = guards::read_only_methods(request.method()) {
        return answer;
    }
    let progress = hub.progress();
    let build = match (progress.building, &progress.failure) {
        (true, _) => "running",
        (false, Some(_)) => "failed",
        (false, None) => "ok",
    };
    let mut pages = hub.pages().snapshot();
    pages.sort_by(|a, b| a.path.cmp(&b.path));
    let status = Status {
        generation: progress.generation,
        pending: progress.pending,
        build,
        failure: progress.failure,
        pages,
    };
    let json = serde_json::to_string(&status).expect("a status always serializes");
    let mut response = pages::generated(StatusCode::OK, "application/json", Bytes::from(json));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What a reload request's body asks for: nothing (or no paths) is every page.
fn changed_from(body: &[u8]) -> Result<Changed, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Changed::Everything);
    }
    let request: ReloadRequest = serde_json::from_slice(body).map_err(|error| {
        format!("the body is JSON such as {{\"paths\": [\"/style.css\"]}}: {error}")
    })?;
    if request.paths.is_empty() {
        return Ok(Changed::Everything);
    }
    let changes = request
        .paths
        .into_iter()
        .map(|path| {
            if !path.starts_with('/') {
                return Err(format!("{path:?} is not a URL path: paths start with /"));
            }
            changed_url(&path).map_err(|error| format!("{path:?}: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Changed::Files(changes))
}

/// A change to the file at `path`, named by URL only (nothing on disk to compare), spelled as
/// the watcher and the pages spell paths: `/my file.css` and `/my%20file.css` are the same.
pub fn changed_url(path: &str) -> Result<Change, BadPath> {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(Change {
        url_path: RequestPath::decode(&path)?.to_url_path(),
        kind: ChangeKind::Modified,
        file: PathBuf::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(changed_from(b""), Ok(Changed::Everything));
        assert_eq!(changed_from(b"{}"), Ok(Changed::Everything));
        let Ok(Changed::Files(files)) = changed_from(br#"{"paths": ["/a.css", "/b/"]}"#) else {
            panic!("two files");
        };
        let paths: Vec<&str> = files.iter().map(|file| file.url_path.as_str()).collect();
        assert_eq!(paths, ["/a.css", "/b/"]);
        let Ok(Changed::Files(spaced)) = changed_from(br#"{"paths": ["/my file.css"]}"#) else {
            panic!("one file");
        };
        assert_eq!(spaced[0].url_path, "/my%20file.css");
        assert!(changed_from(br#"{"paths": ["/../etc/passwd"]}"#).is_err());
        assert!(changed_from(b"{").is_err());
        assert!(changed_from(br#"{"paths": ["a.css"]}"#).is_err());
        assert!(changed_from(br#"{"path": ["/a.css"]}"#).is_err());
    }
}
