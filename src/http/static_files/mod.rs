//! The static folder as a source: finding what a request path names, safely, and answering with
//! the file, its index page, a listing, a redirect or the 404 page. Pages that get the reload
//! script are marked for the pipeline, which puts it in.

mod listing;

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use crate::access::Access;
use crate::http::body::{Body, CHUNK_SIZE};
use crate::http::guards;
use crate::http::pages;
use crate::http::pipeline::{InjectInto, MAX_INJECTED_PAGE, header_value};
use crate::http::validators::{Validators, hash};
use crate::reload::ReloadHub;
use crate::request_path::RequestPath;

/// The static file source: the root, or a mounted folder.
pub struct StaticFiles {
    resolver: Resolver,
    inject: bool,
    /// A single-page app's page (`--spa`), for paths that find no file.
    spa: Option<RequestPath>,
}

/// Turns paths below the root into files that may be served. Cheap to clone into blocking tasks.
#[derive(Clone)]
struct Resolver {
    /// Canonical, so containment can be checked on canonical paths by whole components.
    root: Arc<Path>,
    access: Access,
    /// Serve symlinks whose target is outside the root (`--follow-symlinks`).
    follow_symlinks: bool,
    /// Told of every file served, when live reload is on.
    hub: Option<Arc<ReloadHub>>,
    /// How many leading URL segments name the mount (0 for the root): they are not on disk.
    mounted_at: usize,
}

/// What a request path names on disk, found on the blocking pool.
enum Lookup {
    File(Box<FoundFile>),
    Listing {
        url: RequestPath,
        entries: Vec<listing::Entry>,
    },
    /// A directory requested without its trailing slash.
    DirectoryWithoutSlash,
    Missing,
    Forbidden,
}

/// A file to send, and the URL path it is sent for (a directory's index file has its own).
struct FoundFile {
    url: RequestPath,
    metadata: Metadata,
    mime: mime_guess::Mime,
    content: Content,
}

/// A file's bytes: read whole when small (or when it is a page that gets the script), otherwise
/// opened and streamed.
enum Content {
    Whole(Bytes),
    Large(File),
}

impl StaticFiles {
    /// `root` must be canonical (see `Config::canonical_root`). With live reload (a `hub`),
    /// HTML pages are marked for the reload script, and the hub is told of every file served.
    pub fn new(
        root: PathBuf,
        access: Access,
        follow_symlinks: bool,
        hub: Option<Arc<ReloadHub>>,
    ) -> Self {
        StaticFiles {
            inject: hub.is_some(),
            resolver: Resolver {
                root: root.into(),
                access,
                follow_symlinks,
                hub,
                mounted_at: 0,
            },
            spa: None,
        }
    }

    /// The same rules for a folder served at `prefix` (`/vendor`).
    pub fn mounted_at(mut self, prefix: &str) -> Self {
        self.resolver.mounted_at = prefix.split('/').filter(|s| !s.is_empty()).count();
        self
    }

    /// A path that finds no file and asks for a page gets `page` (relative to the root).
    pub fn with_spa(mut self, page: &Path) -> Self {
        let segments = page
            .components()
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .collect();
        self.spa = Some(RequestPath::from_segments(segments, false));
        self
    }

    /// Answers a request: GET and HEAD read, OPTIONS says what works, the rest gets 405.
    pub async fn respond<B>(&self, request: &Request<B>) -> Response<Body> {
        if let Some(answer) = guards::read_only_methods(request.method()) {
            return answer;
        }
        let uri = request.uri();
        match RequestPath::decode(uri.path()) {
            Ok(path) => self.get(path, uri.query(), request.headers()).await,
            Err(error) => pages::error(StatusCode::BAD_REQUEST, &error.to_string()),
        }
    }

    /// Answers a GET or HEAD for `url`; `query` is kept on redirects.
    async fn get(
        &self,
        url: RequestPath,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let found = match self.lookup(url.clone()).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        match found {
            Lookup::File(file) => self.file_response(*file, headers),
            Lookup::Listing { url, entries } => {
                let page = listing::render(&url, &entries);
                self.page(StatusCode::OK, &url, page.into_bytes())
            }
            Lookup::DirectoryWithoutSlash => {
                let mut location = url.as_directory().to_url_path();
                if let Some(query) = query {
                    location.push('?');
                    location.push_str(query);
                }
                redirect(&location)
            }
            Lookup::Missing => self.missing(url, headers).await,
            Lookup::Forbidden => pages::error(StatusCode::FORBIDDEN, "this file cannot be read"),
        }
    }

    /// Finds what `url` names, on the blocking pool; an error is the answer to send.
    async fn lookup(&self, url: RequestPath) -> Result<Lookup, Response<Body>> {
        let resolver = self.resolver.clone();
        let inject = self.inject;
        let lookup_url = url.clone();
        match tokio::task::spawn_blocking(move || resolver.lookup(lookup_url, inject)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(error)) => {
                tracing::warn!("reading {}: {error}", url.to_url_path());
                Err(pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                ))
            }
            Err(_) => Err(pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the read failed",
            )),
        }
    }

    /// What a path that finds no file gets: with `--spa`, a page (no extension, or asking for
    /// HTML) gets the app's page with 200, while a missing asset still gets 404 so a typo in a
    /// script's path is not masked; without it, the site's own `404.html` when it has one (as
    /// GitHub Pages and Netlify serve it), else liveserve's 404 page. Each reloads when its file
    /// changes.
    async fn missing(&self, url: RequestPath, headers: &HeaderMap) -> Response<Body> {
        let fallback = match &self.spa {
            Some(page) if is_page_request(&url, headers) => Some((page.clone(), StatusCode::OK)),
            Some(_) => None,
            None if self.resolver.mounted_at == 0 => Some((
                RequestPath::from_segments(vec!["404.html".to_owned()], false),
                StatusCode::NOT_FOUND,
            )),
            None => None,
        };
        if let Some((page, status)) = fallback
            && let Ok(Lookup::File(file)) = self.lookup(page).await
        {
            // The page stands for another path: a conditional request is not about it.
            let mut response = self.file_response(*file, &HeaderMap::new());
            *response.status_mut() = status;
            return response;
        }
        self.page(
            StatusCode::NOT_FOUND,
            &url,
            pages::not_found(&url).into_bytes(),
        )
    }

    /// Change messages sent so far, for the tags of pages served now.
    fn generation(&self) -> u64 {
        self.resolver.hub.as_ref().map_or(0, |hub| hub.generation())
    }

    /// A generated HTML page (a listing, the 404 page), with the script when reloading is on:
    /// create the missing file and the 404 page shows it.
    fn page(&self, status: StatusCode, url: &RequestPath, html: Vec<u8>) -> Response<Body> {
        let mut response = pages::generated(status, "text/html; charset=utf-8", Bytes::from(html));
        if self.inject {
            response.extensions_mut().insert(InjectInto {
                data_path: url.to_url_path(),
                generation: self.generation(),
                proxied: false,
            });
        }
        response
    }

    fn file_response(&self, file: FoundFile, headers: &HeaderMap) -> Response<Body> {
        let FoundFile {
            url,
            metadata,
            mime,
            content,
        } = file;
        let inject_into = (self.inject && is_html(&mime) && matches!(content, Content::Whole(_)))
            .then(|| InjectInto {
                data_path: url.to_url_path(),
                generation: self.generation(),
                proxied: false,
            });
        // The page changes with the tag (its path, the generation it is served at) and with
        // liveserve's version: a newer liveserve must not get a 304 for a page it injects
        // differently.
        let variant = inject_into.as_ref().map(|page| {
            let tag = page.tag() + env!("CARGO_PKG_VERSION");
            hash(tag.as_bytes())
        });
        let validators = Validators::from_file(metadata.len(), metadata.modified().ok(), variant);
        let mut response = Response::new(Body::empty());
        let response_headers = response.headers_mut();
        response_headers.insert(ETAG, header_value(validators.etag.clone()));
        if let Some(date) = validators.last_modified_header() {
            response_headers.insert(LAST_MODIFIED, header_value(date));
        }
        if validators.not_modified(headers) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
        response_headers.insert(CONTENT_TYPE, content_type(&mime));
        // The pipeline answers ranges, over the page as sent.
        response_headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let body = match content {
            Content::Whole(bytes) => Body::from(bytes),
            Content::Large(file) => Body::file(file, metadata.len()),
        };
        let len = body.exact_len().unwrap_or_default();
        response_headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        *response.body_mut() = body;
        if let Some(page) = inject_into {
            response.extensions_mut().insert(page);
        }
        response
    }
}

impl Resolver {
    /// Finds what `url` names below the root. Runs on the blocking pool: it touches the disk.
    fn lookup(&self, url: RequestPath, inject: bool) -> io::Result<Lookup> {
        // The mount's own segments name no folder on disk.
        let inside = url.segments().get(self.mounted_at..).unwrap_or_default();
        if !inside.iter().all(|segment| self.access.allows(segment)) {
            return Ok(Lookup::Missing);
        }
        let candidate = inside
            .iter()
            .fold(self.root.to_path_buf(), |path, segment| path.join(segment));
        let Some((path, metadata)) = self.resolve(&candidate)? else {
            return Ok(Lookup::Missing);
        };
        if metadata.is_dir() {
            if !url.has_trailing_slash() && !url.segments().is_empty() {
                return Ok(Lookup::DirectoryWithoutSlash);
            }
            let index_url = url.join("index.html");
            if let Some((index_path, index_metadata)) =
                self.resolve(&candidate.join("index.html"))?
                && index_metadata.is_file()
            {
                return self.open_file(index_url, &index_path, index_metadata, inject);
            }
            return match listing::read_entries(&path, self.access) {
                Ok(mut entries) => {
                    // List a symlink only where following it is allowed, as a request would.
                    entries.retain(|entry| {
                        !entry.is_symlink
                            || matches!(self.resolve(&candidate.join(&entry.name)), Ok(Some(_)))
                    });
                    Ok(Lookup::Listing { url, entries })
                }
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                    Ok(Lookup::Forbidden)
                }
                Err(error) => Err(error),
            };
        }
        // `/page.html/` is not the page: relative links in it would resolve against the wrong
        // folder.
        if !metadata.is_file() || url.has_trailing_slash() {
            return Ok(Lookup::Missing);
        }
        self.open_file(url, &path, metadata, inject)
    }

    /// The canonical path and metadata of `candidate`, if it may be served. Symlinks are resolved
    /// first, on every request (a link swapped while the server runs is caught): a link out of
    /// the root (unless `--follow-symlinks`), or into a hidden folder, counts as missing.
    fn resolve(&self, candidate: &Path) -> io::Result<Option<(PathBuf, Metadata)>> {
        // Canonicalizing fails only for names that lead nowhere servable: missing, a loop of
        // links, a folder we may not enter. All of them are "not found" to the browser.
        let Ok(path) = candidate.canonicalize() else {
            return Ok(None);
        };
        let allowed =
            |name: &std::ffi::OsStr| name.to_str().is_some_and(|name| self.access.allows(name));
        let visible = match path.strip_prefix(&self.root) {
            Ok(inside) => inside.iter().all(allowed),
            // Outside the root only by an explicit opt-in, and never onto a hidden or secret name.
            Err(_) => self.follow_symlinks && path.file_name().is_some_and(allowed),
        };
        if !visible {
            return Ok(None);
        }
        let metadata = fs::metadata(&path)?;
        Ok(Some((path, metadata)))
    }

    fn open_file(
        &self,
        url: RequestPath,
        path: &Path,
        metadata: Metadata,
        inject: bool,
    ) -> io::Result<Lookup> {
        let mime = guess_mime(path);
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                return Ok(Lookup::Forbidden);
            }
            Err(error) if is_missing(&error) => return Ok(Lookup::Missing),
            Err(error) => return Err(error),
        };
        let most_read_whole = if inject && is_html(&mime) {
            MAX_INJECTED_PAGE
        } else {
            CHUNK_SIZE
        };
        let content = if metadata.len() <= most_read_whole as u64 {
            // Read to the end, not just what the metadata promised: a file that grew in
            // between, or whose size a network or FUSE filesystem reports late, is not cut
            // short. `Content-Length` follows the bytes actually read.
            let mut bytes = Vec::with_capacity(metadata.len() as usize);
            (&mut file)
                .take(most_read_whole as u64)
                .read_to_end(&mut bytes)?;
            Content::Whole(Bytes::from(bytes))
        } else {
            Content::Large(file)
        };
        if let Some(hub) = &self.hub {
            let bytes = match &content {
                Content::Whole(bytes) => Some(&bytes[..]),
                Content::Large(_) => None,
            };
            hub.served(path, &metadata, bytes);
        }
        Ok(Lookup::File(Box::new(FoundFile {
            url,
            metadata,
            mime,
            content,
        })))
    }
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Whether a request that found no file is for a page of a single-page app: its last segment
/// has no extension, or it asks for HTML.
fn is_page_request(url: &RequestPath, headers: &HeaderMap) -> bool {
    let no_extension = url.segments().last().is_none_or(|name| !name.contains('.'));
    let wants_html = headers
        .get(http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    no_extension || wants_html
}

fn guess_mime(path: &Path) -> mime_guess::Mime {
    // Source maps are JSON; mime_guess does not know the extension.
    if path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("map"))
    {
        return mime_guess::mime::APPLICATION_JSON;
    }
    mime_guess::from_path(path).first_or_octet_stream()
}

fn is_html(mime: &mime_guess::Mime) -> bool {
    mime.essence_str() == "text/html"
}

/// `Content-Type` for a file: text types are UTF-8, the encoding of nearly every source file.
fn content_type(mime: &mime_guess::Mime) -> HeaderValue {
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "image/svg+xml" | "application/xml"
        );
    let essence = match mime.essence_str() {
        // The current standard name; mime_guess still answers the old one for `.js`.
        "application/javascript" => "text/javascript",
        essence => essence,
    };
    if textual {
        header_value(format!("{essence}; charset=utf-8"))
    } else {
        header_value(essence.to_owned())
    }
}

/// A temporary redirect: a folder today may be a file after the next build, and browsers keep
/// permanent redirects.
fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    response
        .headers_mut()
        .insert(LOCATION, header_value(location.to_owned()));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(0));
    response
}
