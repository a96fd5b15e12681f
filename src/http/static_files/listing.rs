//! The page shown for a directory that has no `index.html`.

use std::fs;
use std::io;
use std::path::Path;

use crate::access::Access;
use crate::http::inject::escape_html;
use crate::request_path::{RequestPath, encode_segment};

/// One visible entry of a directory.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub size: u64,
}

/// The entries a listing shows: names the server would serve, folders first, then by name.
/// Names that are not valid UTF-8 cannot be requested, so they are left out too.
pub fn read_entries(dir: &Path, access: Access) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // A backslash cannot be requested: browsers turn it into a slash.
        if !access.allows(&name) || name.contains('\\') {
            continue;
        }
        // `fs::metadata` follows symlinks, so a link to a folder is listed as a folder; a broken
        // link is still listed (requesting it gives the 404 page).
        let metadata = fs::metadata(entry.path()).ok();
        entries.push(Entry {
            is_symlink: entry.file_type().is_ok_and(|kind| kind.is_symlink()),
            name,
            is_dir: metadata.as_ref().is_some_and(fs::Metadata::is_dir),
            size: metadata.as_ref().map_or(0, fs::Metadata::len),
        });
    }
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

/// The listing page for the directory at `url` (which ends in `/`).
pub fn render(url: &RequestPath, entries: &[Entry]) -> String {
    let url_path = url.to_url_path();
    let title = escape_html(&format!("Index of {}", display_path(url)));
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n"
    );
    if !url.segments().is_empty() {
        page.push_str("<li class=\"dir\"><a href=\"../\">../</a></li>\n");
    }
    for entry in entries {
        let suffix = if entry.is_dir { "/" } else { "" };
        let href = escape_html(&format!(
            "{url_path}{}{suffix}",
            encode_segment(&entry.name)
        ));
        let name = escape_html(&entry.name);
        let (class, size) = if entry.is_dir {
            ("dir", String::new())
        } else {
            ("file", human_size(entry.size))
        };
        page.push_str(&format!(
            "<li class=\"{class}\"><a href=\"{href}\">{name}{suffix}</a><span>{size}</span></li>\n"
        ));
    }
    if entries.is_empty() {
        page.push_str("<li class=\"empty\">This folder is empty.</li>\n");
    }
    page.push_str("</ul>\n</body>\n</html>\n");
    page
}

/// The decoded path, for people to read.
fn display_path(url: &RequestPath) -> String {
    let mut path = String::from("/");
    for segment in url.segments() {
        path.push_str(segment);
        path.push('/');
    }
    path
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:50rem;\
padding:0 1rem;color:#222}h1{font-size:1.2rem;word-break:break-all}ul{list-style:none;padding:0}\
li{display:flex;justify-content:space-between;gap:1rem;padding:.2rem 0;border-bottom:1px solid #eee}\
li.dir a{font-weight:600}a{color:#0550ae;text-decoration:none;word-break:break-all}\
a:hover{text-decoration:underline}span{color:#666;white-space:nowrap}\
@media(prefers-color-scheme:dark){body{background:#111;color:#ddd}li{border-color:#333}a{color:#6cb6ff}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
