//! Serving the files below the root: finding what a request path names, safely, and answering
//! with the file, its index page, a listing, a redirect or the 404 page.

use std::fs::{self, File, Metadata};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED,
    LOCATION,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::access::Access;
use crate::body::{Body, CHUNK_SIZE, read_chunk};
use crate::inject;
use crate::listing;
use crate::pages;
use crate::request_path::RequestPath;
use crate::validators::{RangeAnswer, Validators, hash};

/// HTML files larger than this are served as they are, without the reload script: finding the
/// injection point needs the whole page in memory.
const MAX_INJECTED_PAGE: u64 = 16 * 1024 * 1024;

/// The static file side of the server.
pub struct StaticFiles {
    resolver: Resolver,
    inject: bool,
}

/// Turns paths below the root into files that may be served. Cheap to clone into blocking tasks.
#[derive(Clone)]
struct Resolver {
    /// Canonical, so containment can be checked on canonical paths by whole components.
    root: Arc<Path>,
    access: Access,
    /// Serve symlinks whose target is outside the root (`--follow-symlinks`).
    follow_symlinks: bool,
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
    /// `root` must be canonical (see `Config::canonical_root`).
    pub fn new(root: PathBuf, access: Access, follow_symlinks: bool, inject: bool) -> Self {
        StaticFiles {
            resolver: Resolver {
                root: root.into(),
                access,
                follow_symlinks,
            },
            inject,
        }
    }

    /// Answers a GET or HEAD for `url`; `query` is kept on redirects.
    pub async fn respond(
        &self,
        url: RequestPath,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let resolver = self.resolver.clone();
        let inject = self.inject;
        let lookup_url = url.clone();
        let found = tokio::task::spawn_blocking(move || resolver.lookup(lookup_url, inject)).await;
        let found = match found {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!("reading {}: {error}", url.to_url_path());
                return pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                );
            }
            Err(_) => return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"),
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
            Lookup::Missing => self.not_found(&url),
            Lookup::Forbidden => pages::error(StatusCode::FORBIDDEN, "this file cannot be read"),
        }
    }

    /// The 404 page, which also carries the script so it reloads once the file appears.
    pub fn not_found(&self, url: &RequestPath) -> Response<Body> {
        self.page(
            StatusCode::NOT_FOUND,
            url,
            pages::not_found(url).into_bytes(),
        )
    }

    /// A generated HTML page, with the script when reloading is on.
    fn page(&self, status: StatusCode, url: &RequestPath, html: Vec<u8>) -> Response<Body> {
        let body = if self.inject {
            inject::inject(&html, &url.to_url_path())
        } else {
            Bytes::from(html)
        };
        pages::generated(status, "text/html; charset=utf-8", body)
    }

    fn file_response(&self, file: FoundFile, headers: &HeaderMap) -> Response<Body> {
        let FoundFile {
            url,
            metadata,
            mime,
            content,
        } = file;
        let (content, variant) = match content {
            Content::Whole(bytes) if self.inject && is_html(&mime) => {
                let data_path = url.to_url_path();
                // The page changes with the tag, and the tag with the path and with liveserve's
                // version: a newer liveserve must not get a 304 for a page it injects differently.
                let tag = inject::script_tag(&data_path) + env!("CARGO_PKG_VERSION");
                (
                    Content::Whole(inject::inject(&bytes, &data_path)),
                    Some(hash(tag.as_bytes())),
                )
            }
            content => (content, None),
        };
        let validators = Validators::from_file(metadata.len(), metadata.modified().ok(), variant);
        let mut response_headers = HeaderMap::new();
        response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response_headers.insert(ETAG, header_value(validators.etag.clone()));
        if let Some(date) = validators.last_modified_header() {
            response_headers.insert(LAST_MODIFIED, header_value(date));
        }
        if validators.not_modified(headers) {
            return assemble(StatusCode::NOT_MODIFIED, response_headers, Body::empty());
        }
        response_headers.insert(CONTENT_TYPE, content_type(&mime));
        response_headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let len = match &content {
            Content::Whole(bytes) => bytes.len() as u64,
            Content::Large(_) => metadata.len(),
        };
        let (status, range) = match validators.range(headers, len) {
            RangeAnswer::Full => (StatusCode::OK, 0..len),
            RangeAnswer::Partial(range) => {
                let content_range = format!("bytes {}-{}/{len}", range.start, range.end - 1);
                response_headers.insert(CONTENT_RANGE, header_value(content_range));
                (StatusCode::PARTIAL_CONTENT, range)
            }
            RangeAnswer::Unsatisfiable => {
                response_headers.insert(CONTENT_RANGE, header_value(format!("bytes */{len}")));
                response_headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
                return assemble(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    response_headers,
                    Body::empty(),
                );
            }
        };
        response_headers.insert(CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
        let body = match content {
            Content::Whole(bytes) => {
                Body::from(bytes.slice(range.start as usize..range.end as usize))
            }
            Content::Large(mut file) => match file.seek(SeekFrom::Start(range.start)) {
                Ok(_) => Body::file(file, range.end - range.start),
                Err(error) => {
                    tracing::warn!("seeking in {}: {error}", url.to_url_path());
                    return pages::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the file could not be read",
                    );
                }
            },
        };
        assemble(status, response_headers, body)
    }
}

fn assemble(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

impl Resolver {
    /// Finds what `url` names below the root. Runs on the blocking pool: it touches the disk.
    fn lookup(&self, url: RequestPath, inject: bool) -> io::Result<Lookup> {
        if !url
            .segments()
            .iter()
            .all(|segment| self.access.allows(segment))
        {
            return Ok(Lookup::Missing);
        }
        let candidate = url
            .segments()
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
                return open_file(index_url, &index_path, index_metadata, inject);
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
        open_file(url, &path, metadata, inject)
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
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn open_file(
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
    let read_whole = metadata.len() <= CHUNK_SIZE as u64
        || (inject && is_html(&mime) && metadata.len() <= MAX_INJECTED_PAGE);
    let content = if read_whole {
        // Read what the metadata promised; a file that changes in between is read again on
        // the next request, and `Content-Length` follows the bytes actually read.
        Content::Whole(read_chunk(&mut file, metadata.len() as usize)?)
    } else {
        Content::Large(file)
    };
    Ok(Lookup::File(Box::new(FoundFile {
        url,
        metadata,
        mime,
        content,
    })))
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

/// A header value from text we built ourselves; such text never contains control characters.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
