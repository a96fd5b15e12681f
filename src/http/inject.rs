//! Putting the reload script tag into an HTML page.
//!
//! The tag goes before the last `</body>` that is real markup, else before the last real `</html>`,
//! else at the end of the document. "Real" means what a browser's tokenizer would see as a tag:
//! not text inside a comment, a CDATA section, an attribute value, or the raw text of `<script>`,
//! `<style>`, `<textarea>` and friends. A full HTML parser is not needed for that, only a scanner
//! that knows where tags, comments and raw text start and end.

use bytes::Bytes;
use memchr::memchr;
use memchr::memmem::find;

/// The URL the injected tag loads; the script itself is `inject/client.js`.
pub const CLIENT_PATH: &str = "/__liveserve/client.js";

/// The tag that loads the client; `data_path` is the URL path the page was served for,
/// `generation` how many change messages had been sent then (a change sent before the page's
/// socket is open is not missed), and `proxied` says a backend made the page (so its stylesheets
/// may live at other URLs than the files they come from).
pub fn script_tag(data_path: &str, generation: u64, proxied: bool) -> String {
    let proxied = if proxied { " data-proxied" } else { "" };
    format!(
        "<script src=\"{CLIENT_PATH}\" data-path=\"{}\" data-generation=\"{generation}\"{proxied}></script>",
        escape_html(data_path)
    )
}

/// Put right after `<head>` where a page has one: the same script, told to do nothing but listen
/// for errors, so an error a page's own scripts throw before the client's tag runs still reaches
/// the terminal. The browser fetches the script once for both tags.
pub const EARLY_TAG: &str = "<script src=\"/__liveserve/client.js\" data-early></script>";

/// The page with [`EARLY_TAG`] and `tag` inserted, or the page unchanged if it already loads the
/// client.
pub fn inject(html: &[u8], tag: &str) -> Bytes {
    let Some(points) = injection_point(html) else {
        return Bytes::copy_from_slice(html);
    };
    let mut page = Vec::with_capacity(html.len() + EARLY_TAG.len() + tag.len());
    let mut from = 0;
    if let Some(early) = points.early {
        page.extend_from_slice(&html[..early]);
        page.extend_from_slice(EARLY_TAG.as_bytes());
        from = early;
    }
    page.extend_from_slice(&html[from..points.main]);
    page.extend_from_slice(tag.as_bytes());
    page.extend_from_slice(&html[points.main..]);
    Bytes::from(page)
}

/// Where the tags go: [`EARLY_TAG`] just after `<head>` (when the page has one), the client's
/// tag at the end of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectionPoints {
    pub early: Option<usize>,
    pub main: usize,
}

/// Escapes text for use in HTML content or a double-quoted attribute value.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Where the tags go, or `None` if the page already has a script tag that loads the client (so a
/// page is never injected twice).
pub fn injection_point(html: &[u8]) -> Option<InjectionPoints> {
    let mut scanner = PageScanner::default();
    scanner.feed(html);
    scanner.finish()
}

/// Finds the injection points of a page read piece by piece: only an unfinished construct at the
/// end of a piece (a tag, a comment, a script's text) is kept for the next one, so a page of any
/// size is scanned in little memory, with the same answer as [`injection_point`] over the whole.
#[derive(Default)]
pub struct PageScanner {
    found: Found,
    /// The unfinished construct at the end of the pieces so far.
    pending: Vec<u8>,
    /// Where `pending` starts in the page.
    pending_at: usize,
    /// The rest of the page is text (after `<plaintext>`): nothing more to find.
    done: bool,
}

/// A construct that starts this close to the end of a piece is finished with the next piece: the
/// longest fixed text the scanner decides on (`</noframes` plus the byte after it, `<![CDATA[`)
/// fits.
const LOOKAHEAD: usize = 16;

impl PageScanner {
    /// Scans the next piece of the page.
    pub fn feed(&mut self, piece: &[u8]) {
        if self.done {
            return;
        }
        let scanned = if self.pending.is_empty() {
            let scanned = self.scan(piece, false);
            self.pending.extend_from_slice(&piece[scanned..]);
            scanned
        } else {
            self.pending.extend_from_slice(piece);
            let pending = std::mem::take(&mut self.pending);
            let scanned = self.scan(&pending, false);
            self.pending = pending;
            self.pending.drain(..scanned);
            scanned
        };
        self.pending_at += scanned;
    }

    /// The injection points, once the whole page has been fed.
    pub fn finish(mut self) -> Option<InjectionPoints> {
        let pending = std::mem::take(&mut self.pending);
        let len = self.pending_at + pending.len();
        if !self.done {
            self.scan(&pending, true);
        }
        let found = self.found;
        if found.has_client {
            return None;
        }
        let main = found.last_body_end.or(found.last_html_end).unwrap_or(len);
        let early = found.head_open_end.filter(|&early| early < main);
        Some(InjectionPoints { early, main })
    }

    /// Scans `html`, which starts at `pending_at` in the page, up to a construct it cannot finish
    /// unless `last`; returns how much of it is done with.
    fn scan(&mut self, html: &[u8], last: bool) -> usize {
        let unfinished = |end: usize| !last && end + LOOKAHEAD > html.len();
        let mut at = 0;
        while let Some(offset) = memchr(b'<', &html[at..]) {
            let open = at + offset;
            if unfinished(open) {
                return open;
            }
            let before = self.found;
            let mut step = Step {
                found: &mut self.found,
                html,
                offset: self.pending_at,
            };
            match step.construct(open) {
                None => {
                    self.done = true;
                    return html.len();
                }
                Some(next) if unfinished(next) => {
                    self.found = before;
                    return open;
                }
                Some(next) => at = next,
            }
        }
        html.len()
    }
}

/// What the scan has found so far; offsets are in the whole page.
#[derive(Default, Clone, Copy)]
struct Found {
    /// Just past the first `<head ...>` start tag.
    head_open_end: Option<usize>,
    last_body_end: Option<usize>,
    last_html_end: Option<usize>,
    has_client: bool,
    /// Depth inside `<svg>`/`<math>`, where `<script/>` and `<style/>` can be self-closing.
    foreign_depth: usize,
}

/// One construct of `html` (which starts at `offset` in the page) read into `found`.
struct Step<'a> {
    found: &'a mut Found,
    html: &'a [u8],
    offset: usize,
}

impl Step<'_> {
    /// Reads the construct at `open` (a `<`); returns where scanning continues, or `None` if the
    /// rest of the document is text (`<plaintext>`).
    fn construct(&mut self, open: usize) -> Option<usize> {
        let html = self.html;
        let rest = &html[open..];
        Some(if rest.starts_with(b"<!--") {
            end_of_comment(html, open)
        } else if starts_with_ignore_case(rest, b"<![CDATA[") {
            skip_past(html, open + 9, b"]]>")
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            skip_past(html, open + 2, b">")
        } else if rest.starts_with(b"</") && rest.get(2).is_some_and(u8::is_ascii_alphabetic) {
            self.end_tag(open)
        } else if rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
            return self.start_tag(open);
        } else {
            open + 1
        })
    }

    /// Records `</body>` and `</html>`; returns where scanning continues.
    fn end_tag(&mut self, open: usize) -> usize {
        let html = self.html;
        let name_end = tag_name_end(html, open + 2);
        let name = &html[open + 2..name_end];
        if name.eq_ignore_ascii_case(b"body") {
            self.found.last_body_end = Some(self.offset + open);
        } else if name.eq_ignore_ascii_case(b"html") {
            self.found.last_html_end = Some(self.offset + open);
        } else if is_foreign_root(name) {
            self.found.foreign_depth = self.found.foreign_depth.saturating_sub(1);
        }
        skip_past(html, name_end, b">")
    }

    /// Skips a start tag and, for raw-text elements, their content. Returns where scanning
    /// continues, or `None` if the rest of the document is text (`<plaintext>`).
    fn start_tag(&mut self, open: usize) -> Option<usize> {
        let html = self.html;
        let found = &mut *self.found;
        let name_end = tag_name_end(html, open + 1);
        let name = &html[open + 1..name_end];
        let (tag_end, self_closing) = skip_attributes(html, name_end);
        if name.eq_ignore_ascii_case(b"script")
            && find(&html[name_end..tag_end], CLIENT_PATH.as_bytes()).is_some()
        {
            found.has_client = true;
        }
        if is_foreign_root(name) && !self_closing {
            found.foreign_depth += 1;
        }
        if name.eq_ignore_ascii_case(b"head") && found.head_open_end.is_none() {
            found.head_open_end = Some(self.offset + tag_end);
        }
        if name.eq_ignore_ascii_case(b"plaintext") {
            return None;
        }
        let raw_text = RAW_TEXT_ELEMENTS
            .iter()
            .any(|raw| name.eq_ignore_ascii_case(raw));
        if raw_text && !(self_closing && found.foreign_depth > 0) {
            return Some(end_of_raw_text(html, tag_end, name));
        }
        Some(tag_end)
    }
}

/// Elements whose content a browser reads as text up to the matching end tag.
const RAW_TEXT_ELEMENTS: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"noscript",
];

fn is_foreign_root(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"svg") || name.eq_ignore_ascii_case(b"math")
}

/// Tag names run until white space, `/` or `>`.
fn tag_name_end(html: &[u8], from: usize) -> usize {
    html[from..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
        .map_or(html.len(), |offset| from + offset)
}

/// Skips the attributes of a start tag, honouring quoted values. Returns the offset just past the
/// closing `>` (or the end of the document) and whether the tag ended with `/>`.
fn skip_attributes(html: &[u8], mut at: usize) -> (usize, bool) {
    let mut last_was_slash = false;
    while at < html.len() {
        match html[at] {
            b'>' => return (at + 1, last_was_slash),
            quote @ (b'"' | b'\'')
                if html[at - 1] == b'=' || html[at - 1].is_ascii_whitespace() =>
            {
                at =
                    memchr(quote, &html[at + 1..]).map_or(html.len(), |offset| at + 1 + offset + 1);
                last_was_slash = false;
                continue;
            }
            byte => last_was_slash = byte == b'/',
        }
        at += 1;
    }
    (html.len(), false)
}

/// The offset of the `</name` that closes a raw-text element, or the end of the document.
fn end_of_raw_text(html: &[u8], from: usize, name: &[u8]) -> usize {
    let mut at = from;
    while let Some(offset) = find(&html[at..], b"</") {
        let close = at + offset;
        let after_name = close + 2 + name.len();
        let name_matches = html
            .get(close + 2..after_name)
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(name));
        let boundary = html
            .get(after_name)
            .is_none_or(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>');
        if name_matches && boundary {
            return close;
        }
        at = close + 2;
    }
    html.len()
}

/// The offset just past the comment that starts at `open`. `<!-->` and `<!--->` are whole
/// (empty) comments, and `--!>` closes one too, as browsers read them.
fn end_of_comment(html: &[u8], open: usize) -> usize {
    let rest = &html[open..];
    if rest.starts_with(b"<!-->") {
        return open + 5;
    }
    if rest.starts_with(b"<!--->") {
        return open + 6;
    }
    let body = open + 4;
    let closed = skip_past(html, body, b"-->");
    let bang_closed = skip_past(html, body, b"--!>");
    closed.min(bang_closed)
}

/// The offset just past the next `needle` at or after `from`, or the end of the document.
fn skip_past(html: &[u8], from: usize, needle: &[u8]) -> usize {
    let from = from.min(html.len());
    find(&html[from..], needle).map_or(html.len(), |offset| from + offset + needle.len())
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document with `|` where the client's tag would go.
    fn marked(html: &str) -> String {
        match injection_point(html.as_bytes()) {
            Some(points) => format!("{}|{}", &html[..points.main], &html[points.main..]),
            None => html.to_owned(),
        }
    }

    #[test]
    fn the_early_tag_goes_right_after_head() {
        let page =
            "<!doctype html><html><HEAD lang=en><title>t</title></head><body>x</body></html>";
        let injected = String::from_utf8(inject(page.as_bytes(), "<T>").to_vec()).unwrap();
        assert_eq!(
            injected,
            format!(
                "<!doctype html><html><HEAD lang=en>{EARLY_TAG}<title>t</title></head><body>x<T></body></html>"
            )
        );
        // No <head>, or one only in a comment: no early tag.
        for page in ["<p>x</p>", "<!-- <head> --><body>x</body>"] {
            assert_eq!(
                injection_point(page.as_bytes()).unwrap().early,
                None,
                "{page}"
            );
        }
    }

    #[test]
    fn goes_before_the_last_real_body_end() {
        assert_eq!(
            marked("<html><body>x</body></html>"),
            "<html><body>x|</body></html>"
        );
        assert_eq!(marked("<BODY>x</BODY ></HTML>"), "<BODY>x|</BODY ></HTML>");
        assert_eq!(marked("a</body>b</body>c"), "a</body>b|</body>c");
    }

    #[test]
    fn falls_back_to_html_end_then_the_end() {
        assert_eq!(marked("<html><p>x</html>"), "<html><p>x|</html>");
        assert_eq!(marked("<p>fragment"), "<p>fragment|");
        assert_eq!(marked(""), "|");
        assert_eq!(marked("\u{feff}<p>x"), "\u{feff}<p>x|");
    }

    #[test]
    fn ignores_body_ends_that_are_not_markup() {
        assert_eq!(
            marked("<body><script>let s = \"</body>\";</script></body>"),
            "<body><script>let s = \"</body>\";</script>|</body>"
        );
        assert_eq!(
            marked("<body><!-- </body> --></body>"),
            "<body><!-- </body> -->|</body>"
        );
        assert_eq!(marked("<p><!-- </body> -->"), "<p><!-- </body> -->|");
        assert_eq!(marked("<body><!--></body>"), "<body><!-->|</body>");
        assert_eq!(marked("<body><!---></body>"), "<body><!--->|</body>");
        assert_eq!(
            marked("<body><!-- x --!></body>"),
            "<body><!-- x --!>|</body>"
        );
        assert_eq!(
            marked("<body><textarea></body></textarea><style>/*</body>*/</style>"),
            "<body><textarea></body></textarea><style>/*</body>*/</style>|"
        );
        assert_eq!(
            marked("<body><div title=\"</body>\" data-x='</body>'></div></body>"),
            "<body><div title=\"</body>\" data-x='</body>'></div>|</body>"
        );
        assert_eq!(
            marked("<svg><![CDATA[</body>]]></svg></body>"),
            "<svg><![CDATA[</body>]]></svg>|</body>"
        );
        assert_eq!(
            marked("<script>a</SCRIPTX></body></SCRIPT></body>"),
            "<script>a</SCRIPTX></body></SCRIPT>|</body>"
        );
    }

    #[test]
    fn inline_svg_does_not_confuse_it() {
        let page = "<body><svg viewBox=\"0 0 1 1\"><script href=\"a.js\"/><style>.a{}</style>\
                    <path d=\"M0 0\"/></svg><p>after</p></body>";
        assert_eq!(marked(page), page.replace("</body>", "|</body>"));
    }

    #[test]
    fn unterminated_constructs_do_not_panic() {
        for page in [
            "<",
            "<!--",
            "<script>",
            "<a href=\"",
            "</",
            "<![CDATA[",
            "<p title='x",
        ] {
            assert_eq!(
                injection_point(page.as_bytes()).map(|points| points.main),
                Some(page.len()),
                "{page}"
            );
        }
        assert_eq!(marked("<plaintext></body>"), "<plaintext></body>|");
    }

    #[test]
    fn a_page_that_loads_the_client_is_left_alone() {
        let page = format!("<body>{}</body>", script_tag("/", 0, false));
        assert_eq!(injection_point(page.as_bytes()), None);
        // Merely mentioning the path in text is not loading it.
        let page = "<body><p>/__liveserve/client.js</p></body>";
        assert!(injection_point(page.as_bytes()).is_some());
    }

    #[test]
    fn the_tag_escapes_its_path() {
        assert_eq!(
            script_tag("/a&b\"c.html", 7, false),
            "<script src=\"/__liveserve/client.js\" data-path=\"/a&amp;b&quot;c.html\" data-generation=\"7\"></script>"
        );
    }
}

/// What must hold for any page (checked by the property tests and the fuzz target `inject`;
/// panics otherwise): the tags go in exactly once and nothing else of the page changes, or the
/// page, which loads the client already, is left as it is; and a scan of the page in pieces cut
/// at `cuts` (as it is read from disk) finds what a scan of the whole finds.
pub fn check_injection(page: &[u8], cuts: &[usize]) {
    let points = injection_point(page);
    let tag = script_tag("/page.html", 3, false);
    let injected = inject(page, &tag);
    match points {
        None => assert_eq!(
            &injected[..],
            page,
            "a page loading the client is left alone"
        ),
        Some(points) => {
            assert!(points.main <= page.len());
            let early = points.early.map_or(0, |_| EARLY_TAG.len());
            assert_eq!(injected.len(), page.len() + early + tag.len());
            let main = points.main + early;
            assert_eq!(&injected[main..main + tag.len()], tag.as_bytes());
            let mut restored = injected[..main].to_vec();
            restored.extend_from_slice(&injected[main + tag.len()..]);
            if let Some(at) = points.early {
                assert_eq!(&restored[at..at + EARLY_TAG.len()], EARLY_TAG.as_bytes());
                restored.drain(at..at + EARLY_TAG.len());
            }
            assert_eq!(restored, page, "only the tags were added");
        }
    }
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| cut.min(page.len())).collect();
    cuts.sort_unstable();
    let mut scanner = PageScanner::default();
    let mut from = 0;
    for cut in cuts.into_iter().chain([page.len()]) {
        scanner.feed(&page[from..cut]);
        from = cut;
    }
    assert_eq!(scanner.finish(), points, "scanned in pieces");
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// HTML made of the constructs the scanner has to get right, plus arbitrary bytes.
    fn html() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"<body>".to_vec()),
            Just(b"<head>".to_vec()),
            Just(b"</body>".to_vec()),
            Just(b"</BODY >".to_vec()),
            Just(b"</html>".to_vec()),
            Just(b"<!--".to_vec()),
            Just(b"-->".to_vec()),
            Just(b"--!>".to_vec()),
            Just(b"<script>".to_vec()),
            Just(b"</script>".to_vec()),
            Just(b"<style>".to_vec()),
            Just(b"<svg>".to_vec()),
            Just(b"<script/>".to_vec()),
            Just(b"<![CDATA[".to_vec()),
            Just(b"]]>".to_vec()),
            Just(b"<a title=\"".to_vec()),
            Just(b"'".to_vec()),
            Just(b"\"".to_vec()),
            Just(b">".to_vec()),
            Just(b"<".to_vec()),
            Just("\u{feff}".as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn the_tag_goes_in_once_nothing_else_changes_and_pieces_scan_as_the_whole(
            page in html(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            // Random pages do not load the client.
            prop_assert!(injection_point(&page).is_some());
            let cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(page.len() + 1)).collect();
            check_injection(&page, &cuts);
            let every_byte: Vec<usize> = (0..page.len()).collect();
            check_injection(&page, &every_byte);
        }
    }
}
