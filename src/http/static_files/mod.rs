//! The static folder as a source: finding what a request path names, safely, and answering with
//! the file, its index page, a listing, a redirect or the 404 page. Pages that get the reload
//! script are marked for the pipeline, which puts it in.

mod cache;
mod listing;

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

pub use cache::{DEFAULT_SETTLE, FileCache};

use crate::access::Access;
use crate::filesystems;
use crate::http::body::{Body, Part};
use crate::http::file_reads::{self, CHUNK_SIZE, Now};
use crate::http::guards;
use crate::http::inject::{InjectionPoints, PageScanner, injection_point};
use crate::http::pages;
use crate::http::pipeline::{InjectInto, header_value};
use crate::http::validators::{Validators, hash};
use crate::reload::ReloadHub;
use crate::request_path::RequestPath;
use cache::{Cached, FileVersion, MAX_CACHED_FILE};

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
    /// Small files and pages' injection points, shared by every folder served.
    cache: Arc<FileCache>,
    /// Parts of the folder on network, VM or FUSE filesystems, where a `stat` may take a round
    /// trip: requests there always go to the blocking pool.
    remote: Arc<[PathBuf]>,
}

/// Whether a lookup may wait for the disk, or must answer from what is in memory (the cache,
/// the kernel's caches of names, metadata and file contents) and say [`Lookup::NotInMemory`]
/// otherwise.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Disk,
    MemoryOnly,
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
    /// Nothing there, but a page stands in for it (see [`StaticFiles::fallback`]).
    Fallback(Box<FoundFile>, StatusCode),
    Missing,
    Forbidden,
    /// A [`Reads::MemoryOnly`] lookup that needs the disk.
    NotInMemory,
}

/// A file to send, and the URL path it is sent for (a directory's index file has its own).
struct FoundFile {
    url: RequestPath,
    metadata: Metadata,
    mime: mime_guess::Mime,
    content: Content,
    /// Where the reload script goes, for a page that gets it.
    points: Option<InjectionPoints>,
}

/// A file's bytes: in memory when small, otherwise its first chunk (read with the lookup, which
/// saves a trip to the blocking pool) and the open file to stream the rest from.
enum Content {
    Memory(Bytes),
    Streamed { first: Bytes, file: File },
}

/// At most this much of a file the metadata calls small is read (a file that grew in between,
/// or whose size a network or FUSE filesystem reports late).
const MAX_READ_WHOLE: u64 = 16 * 1024 * 1024;

/// Pieces in which a large page is read to find where the script goes.
const SCAN_PIECE: usize = 64 * 1024;

impl StaticFiles {
    /// `root` must be canonical (see `Config::canonical_root`). With live reload (a `hub`),
    /// HTML pages are marked for the reload script, and the hub is told of every file served.
    pub fn new(
        root: PathBuf,
        access: Access,
        follow_symlinks: bool,
        hub: Option<Arc<ReloadHub>>,
        cache: Arc<FileCache>,
    ) -> Self {
        let remote = filesystems::polled_subtrees(&root, &filesystems::mounts())
            .into_iter()
            .map(|polled| polled.subtree)
            .collect();
        StaticFiles {
            inject: hub.is_some(),
            resolver: Resolver {
                remote,
                root: root.into(),
                access,
                follow_symlinks,
                hub,
                mounted_at: 0,
                cache,
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
        let fallback = self.fallback(&url, headers);
        let found = match self.lookup(url.clone(), fallback).await {
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
            Lookup::Fallback(file, status) => {
                // The page stands for another path: a conditional request is not about it.
                let mut response = self.file_response(*file, &HeaderMap::new());
                *response.status_mut() = status;
                response
            }
            Lookup::Missing => self.page(
                StatusCode::NOT_FOUND,
                &url,
                pages::not_found(&url).into_bytes(),
            ),
            Lookup::Forbidden => pages::error(StatusCode::FORBIDDEN, "this file cannot be read"),
            // Only memory-only lookups say so, and they are retried from the disk.
            Lookup::NotInMemory => pages::error(StatusCode::INTERNAL_SERVER_ERROR, "not read"),
        }
    }

    /// Finds what `url` names (or, if nothing, `fallback`): on this thread when everything it
    /// needs is in memory on a local disk, else in one trip to the blocking pool. An error is
    /// the answer to send.
    async fn lookup(
        &self,
        url: RequestPath,
        fallback: Option<(RequestPath, StatusCode)>,
    ) -> Result<Lookup, Response<Body>> {
        let resolver = self.resolver.clone();
        let inject = self.inject;
        if resolver.stats_quickly(&url) {
            match resolver.find(url.clone(), fallback.clone(), inject, Reads::MemoryOnly) {
                // An error is met again, and answered, below.
                Ok(Lookup::NotInMemory) | Err(_) => {}
                Ok(found) => return Ok(found),
            }
        }
        let lookup_url = url.clone();
        let found = tokio::task::spawn_blocking(move || {
            resolver.find(lookup_url, fallback, inject, Reads::Disk)
        });
        match found.await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(error)) => {
                let error: io::Error = error;
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

    /// What a path that finds no file gets instead, with its status: with `--spa`, a page (no
    /// extension, or asking for HTML) gets the app's page with 200, while a missing asset still
    /// gets 404 so a typo in a script's path is not masked; without it, the site's own
    /// `404.html` when it has one (as GitHub Pages and Netlify serve it). Otherwise liveserve's
    /// 404 page. Each reloads when its file changes.
    fn fallback(
        &self,
        url: &RequestPath,
        headers: &HeaderMap,
    ) -> Option<(RequestPath, StatusCode)> {
        match &self.spa {
            Some(page) if is_page_request(url, headers) => Some((page.clone(), StatusCode::OK)),
            Some(_) => None,
            None if self.resolver.mounted_at == 0 => Some((
                RequestPath::from_segments(vec!["404.html".to_owned()], false),
                StatusCode::NOT_FOUND,
            )),
            None => None,
        }
    }

    /// Change messages sent so far, for the tags of pages served now.
    fn generation(&self) -> u64 {
        self.resolver.hub.as_ref().map_or(0, |hub| hub.generation())
    }

    /// A generated HTML page (a listing, the 404 page), with the script when reloading is on:
    /// create the missing file and the 404 page shows it.
    fn page(&self, status: StatusCode, url: &RequestPath, html: Vec<u8>) -> Response<Body> {
        let points = injection_point(&html).filter(|_| self.inject);
        let mut response = pages::generated(status, "text/html; charset=utf-8", Bytes::from(html));
        if let Some(points) = points {
            response.extensions_mut().insert(InjectInto {
                data_path: url.to_url_path(),
                generation: self.generation(),
                proxied: false,
                points: Some(points),
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
            points,
        } = file;
        let inject_into = points.map(|points| InjectInto {
            data_path: url.to_url_path(),
            generation: self.generation(),
            proxied: false,
            points: Some(points),
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
            Content::Memory(bytes) => Body::from(bytes),
            Content::Streamed { first, file } => {
                let offset = first.len() as u64;
                let rest = Part::File {
                    file: Arc::new(file),
                    offset,
                    len: metadata.len().saturating_sub(offset),
                };
                Body::parts([Part::Memory(first), rest])
            }
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
    /// What `url` names, or `fallback` standing in for it when nothing does.
    fn find(
        &self,
        url: RequestPath,
        fallback: Option<(RequestPath, StatusCode)>,
        inject: bool,
        reads: Reads,
    ) -> io::Result<Lookup> {
        let found = self.lookup(url, inject, reads)?;
        let (Lookup::Missing, Some((page, status))) = (&found, fallback) else {
            return Ok(found);
        };
        Ok(match self.lookup(page, inject, reads)? {
            Lookup::File(file) => Lookup::Fallback(file, status),
            Lookup::NotInMemory => Lookup::NotInMemory,
            _ => Lookup::Missing,
        })
    }

    /// Whether `url` lies on a local disk, where checking a file's metadata is answered from the
    /// kernel's caches in microseconds and may be done on an async thread.
    fn stats_quickly(&self, url: &RequestPath) -> bool {
        if self.remote.is_empty() {
            return true;
        }
        let inside = url.segments().get(self.mounted_at..).unwrap_or_default();
        let candidate = inside
            .iter()
            .fold(self.root.to_path_buf(), |path, segment| path.join(segment));
        !self
            .remote
            .iter()
            .any(|remote| candidate.starts_with(remote))
    }

    /// Finds what `url` names below the root. With [`Reads::Disk`] it may read files and
    /// folders, so it runs on the blocking pool.
    fn lookup(&self, url: RequestPath, inject: bool, reads: Reads) -> io::Result<Lookup> {
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
                return self.open_file(index_url, &index_path, index_metadata, inject, reads);
            }
            if reads == Reads::MemoryOnly {
                return Ok(Lookup::NotInMemory);
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
        self.open_file(url, &path, metadata, inject, reads)
    }

    /// The canonical path and metadata of `candidate` (the root joined with checked names), if
    /// it may be served. Symlinks are resolved on every request (a link swapped while the server
    /// runs is caught): a link out of the root (unless `--follow-symlinks`), or into a hidden
    /// folder, counts as missing.
    fn resolve(&self, candidate: &Path) -> io::Result<Option<(PathBuf, Metadata)>> {
        match self.resolve_without_links(candidate) {
            Some(Ok(found)) => Ok(found),
            Some(Err(error)) => Err(error),
            None => self.resolve_links(candidate),
        }
    }

    /// The common case cheaply: when no name below the root is a symlink, the candidate is its
    /// own canonical path, and one `lstat` per name below the root proves it (`canonicalize`
    /// reads every name from `/`). `None` when a name is a symlink.
    fn resolve_without_links(
        &self,
        candidate: &Path,
    ) -> Option<io::Result<Option<(PathBuf, Metadata)>>> {
        let inside = candidate.strip_prefix(&self.root).ok()?;
        let mut path = self.root.to_path_buf();
        let mut metadata = None;
        for name in inside {
            path.push(name);
            match fs::symlink_metadata(&path) {
                Ok(found) if found.file_type().is_symlink() => return None,
                Ok(found) => metadata = Some(found),
                Err(error) if is_missing(&error) => return Some(Ok(None)),
                // A folder we may not enter, and the like: as `canonicalize` would fail.
                Err(_) => return Some(Ok(None)),
            }
        }
        let metadata = match metadata {
            Some(metadata) => metadata,
            None => match fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => return Some(Err(error)),
            },
        };
        Some(Ok(Some((path, metadata))))
    }

    /// [`Resolver::resolve`] for a path with a symlink in it.
    fn resolve_links(&self, candidate: &Path) -> io::Result<Option<(PathBuf, Metadata)>> {
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

    /// The file's bytes (from the cache, read whole, or opened to stream) and, for a page that
    /// gets the script, where it goes (cached, or found by scanning the page).
    fn open_file(
        &self,
        url: RequestPath,
        path: &Path,
        metadata: Metadata,
        inject: bool,
        reads: Reads,
    ) -> io::Result<Lookup> {
        let mime = guess_mime(path);
        let version = FileVersion::of(&metadata);
        let is_page = inject && is_html(&mime);
        let cached = self.cache.get(path, version);
        let found_in_cache = cached.is_some();
        let Cached { bytes, points } = cached.unwrap_or_default();
        let content = match bytes {
            Some(bytes) => Content::Memory(bytes),
            None => match File::open(path) {
                Ok(file) => match read(file, &metadata, reads)? {
                    Some(content) => content,
                    None => return Ok(Lookup::NotInMemory),
                },
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                    return Ok(Lookup::Forbidden);
                }
                Err(error) if is_missing(&error) => return Ok(Lookup::Missing),
                Err(error) => return Err(error),
            },
        };
        let scanned_now = is_page && points.is_none();
        if scanned_now && reads == Reads::MemoryOnly && matches!(content, Content::Streamed { .. })
        {
            // Finding where the script goes reads all of a large page.
            return Ok(Lookup::NotInMemory);
        }
        let points = if scanned_now {
            Some(match &content {
                Content::Memory(bytes) => injection_point(bytes),
                Content::Streamed { file, .. } => scan_page(file)?,
            })
        } else {
            points
        };
        let memory = match &content {
            Content::Memory(bytes) => Some(bytes),
            Content::Streamed { .. } => None,
        };
        if !found_in_cache || scanned_now {
            // Bytes are kept only when they are the version the metadata says.
            let bytes = memory.filter(|bytes| bytes.len() as u64 == metadata.len());
            let cached = Cached {
                bytes: bytes.cloned(),
                points,
            };
            self.cache.put(path, version, cached);
        }
        if let Some(hub) = &self.hub {
            hub.served(path, &metadata, memory.map(|bytes| &bytes[..]));
        }
        Ok(Lookup::File(Box::new(FoundFile {
            url,
            metadata,
            mime,
            content,
            points: points.flatten(),
        })))
    }
}

/// A small file read whole, a large one's first chunk read and the file left open to stream the
/// rest; `None` when `reads` forbids waiting for the disk and the kernel does not have the bytes.
/// A file that grew after its metadata was read is not cut short: `Content-Length` follows the
/// bytes actually read.
fn read(file: File, metadata: &Metadata, reads: Reads) -> io::Result<Option<Content>> {
    let len = metadata.len();
    let small = len <= MAX_CACHED_FILE;
    if reads == Reads::Disk {
        return Ok(Some(if small {
            let mut bytes = Vec::with_capacity(len as usize);
            (&file).take(MAX_READ_WHOLE).read_to_end(&mut bytes)?;
            Content::Memory(Bytes::from(bytes))
        } else {
            let first = file_reads::chunk(&file, 0, CHUNK_SIZE)?;
            Content::Streamed { first, file }
        }));
    }
    let read = if small {
        file_reads::whole_now(&file, len, MAX_READ_WHOLE)
    } else {
        file_reads::chunk_now(&file, 0, CHUNK_SIZE)
    };
    match read {
        Now::Read(Ok(bytes)) if small => Ok(Some(Content::Memory(bytes))),
        // A short first chunk only says the rest was not in memory yet: the stream reads it.
        Now::Read(Ok(first)) => Ok(Some(Content::Streamed { first, file })),
        Now::Read(Err(error)) => Err(error),
        Now::NotThere | Now::CannotAsk => Ok(None),
    }
}

/// Where the script goes in a large page, read piece by piece (never held whole).
fn scan_page(file: &File) -> io::Result<Option<InjectionPoints>> {
    let mut scanner = PageScanner::default();
    let mut piece = vec![0; SCAN_PIECE];
    let mut reader = file;
    loop {
        match reader.read(&mut piece) {
            Ok(0) => break,
            Ok(read) => scanner.feed(&piece[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(scanner.finish())
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
