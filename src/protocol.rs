//! The messages the server sends on `/__liveserve/ws`, as JSON text frames with a `type` tag.
//! See DESIGN.md, "Wire protocol"; the browser side is `inject/client.js`.

use serde::{Deserialize, Serialize};

/// Bumped when a message changes meaning; `hello` carries it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The path of the WebSocket endpoint.
pub const WEBSOCKET_PATH: &str = "/__liveserve/ws";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// First message on every connection. `server` is random per process and `generation` counts
    /// change messages sent so far: a reconnecting page that sees either differ from what it knew
    /// has missed something and reloads once. `fingerprint` names what is served (root and
    /// routes): a page that finds another one after a reconnect is looking at another project.
    /// `morph` says HTML edits may be applied in place, `swap` that stylesheets and images may
    /// be swapped in place (not with `--full-reload`), `errors` that the server wants to hear
    /// about the page's errors.
    Hello {
        version: u32,
        server: String,
        generation: u64,
        #[serde(default)]
        fingerprint: String,
        #[serde(default)]
        morph: bool,
        #[serde(default)]
        swap: bool,
        #[serde(default)]
        errors: bool,
        /// The `--exec` command's last run failed: the page shows it at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build: Option<BuildFailure>,
    },
    /// Something other than stylesheets changed: reload the page. `all` says every page is
    /// affected whatever its path: events were lost and the watcher caught up (a rescan, `paths`
    /// empty), a burst too large to list (`paths` lists the first ones), or a change in a watched
    /// folder that has no URLs.
    Reload {
        generation: u64,
        paths: Vec<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        all: bool,
    },
    /// Only stylesheets (or their source maps) changed: swap them in place.
    Css { generation: u64, paths: Vec<String> },
    /// The `--exec` command failed (`failure`: the page shows it over its last good content), or
    /// succeeded after failing (`failure` null: the page hides it; a change message follows when
    /// the build changed files). Not a change: no generation.
    Build { failure: Option<BuildFailure> },
}

/// What the pages show of a failed `--exec` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFailure {
    /// The command as the user gave it.
    pub command: String,
    /// How it ended: `exit status 1`, `killed by signal 9`, or why it could not start.
    pub status: String,
    /// The end of its output (stdout and stderr as they came), terminal colours stripped.
    pub output: String,
}

/// What a page may send: its errors, when `hello` says the server wants them, and what it
/// shows. Anything else (or anything malformed) is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    /// An error the page hit, as one line of text, and the page's path.
    Error { path: String, text: String },
    /// The page's state, sent once connected and after each change it applied: `tab` names the
    /// browser tab (it survives reloads), `generation` the last change it shows, `loading`
    /// that it is loading or applying one.
    Page {
        tab: String,
        path: String,
        generation: u64,
        loading: bool,
    },
}

/// What happened to one file in a batch of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Modified,
    Removed,
}

/// One changed file, by the URL path a browser requests it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub url_path: String,
    pub kind: ChangeKind,
    /// Where it is on disk (to tell whether its bytes really changed).
    pub file: std::path::PathBuf,
}

/// What a batch of changes amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// These files, each once.
    Files(Vec<Change>),
    /// Every page is affected (see [`ServerMessage::Reload`]'s `all`).
    Everything,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl Changed {
    /// Both batches as one: each file once (its last change counts), everything if either is.
    pub fn merge(self, later: Changed) -> Changed {
        match (self, later) {
            (Changed::Files(mut earlier), Changed::Files(later)) => {
                for change in later {
                    match earlier
                        .iter_mut()
                        .find(|known| known.url_path == change.url_path)
                    {
                        Some(known) => *known = change,
                        None => earlier.push(change),
                    }
                }
                Changed::Files(earlier)
            }
            _ => Changed::Everything,
        }
    }
}

impl ServerMessage {
    /// The message for what a batch amounts to.
    pub fn for_changes(generation: u64, changed: &Changed, full_reload: bool) -> Self {
        match changed {
            Changed::Files(changes) => Self::for_files(generation, changes, full_reload),
            Changed::Everything => ServerMessage::Reload {
                generation,
                paths: Vec::new(),
                all: true,
            },
        }
    }

    /// `css` when every change is a stylesheet or source map that still exists (a deleted
    /// stylesheet cannot be swapped in), else `reload`.
    fn for_files(generation: u64, changes: &[Change], full_reload: bool) -> Self {
        let paths = listed_paths(changes);
        // A stylesheet left off the list could not be swapped: reload instead.
        let complete = paths.len() == changes.len();
        let only_styles = complete
            && !changes.is_empty()
            && changes
                .iter()
                .all(|change| change.kind != ChangeKind::Removed && is_style(&change.url_path));
        if only_styles && !full_reload {
            ServerMessage::Css { generation, paths }
        } else {
            ServerMessage::Reload {
                generation,
                paths,
                // A page cannot judge a list that was cut.
                all: !complete,
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages always serialize")
    }
}

/// At most this many paths are listed in one message...
const MAX_LISTED_PATHS: usize = 100;
/// ...taking at most this many bytes, so a message stays far below what a socket buffers for a
/// client (a build that writes thousands of files still sends one small message).
const MAX_LISTED_BYTES: usize = 16 * 1024;

/// The paths a message lists: all of them, or the first ones up to the limits.
fn listed_paths(changes: &[Change]) -> Vec<String> {
    let mut bytes = 0;
    changes
        .iter()
        .take(MAX_LISTED_PATHS)
        .take_while(|change| {
            bytes += change.url_path.len() + 3;
            bytes <= MAX_LISTED_BYTES
        })
        .map(|change| change.url_path.clone())
        .collect()
}

pub fn is_style(url_path: &str) -> bool {
    let lower = url_path.to_ascii_lowercase();
    lower.ends_with(".css") || lower.ends_with(".css.map")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            file: path.into(),
            url_path: path.to_owned(),
            kind,
        }
    }

    #[test]
    fn wire_format() {
        let hello = ServerMessage::Hello {
            version: 1,
            server: "abc".into(),
            generation: 0,
            fingerprint: "f".into(),
            morph: true,
            swap: true,
            errors: true,
            build: None,
        };
        assert_eq!(
            hello.to_json(),
            r#"{"type":"hello","version":1,"server":"abc","generation":0,"fingerprint":"f","morph":true,"swap":true,"errors":true}"#
        );
        let reload = ServerMessage::for_files(3, &[change("/a.html", ChangeKind::Modified)], false);
        assert_eq!(
            reload.to_json(),
            r#"{"type":"reload","generation":3,"paths":["/a.html"]}"#
        );
        let all = ServerMessage::for_changes(4, &Changed::Everything, false);
        assert_eq!(
            all.to_json(),
            r#"{"type":"reload","generation":4,"paths":[],"all":true}"#
        );
    }

    #[test]
    fn build_messages() {
        let failed = ServerMessage::Build {
            failure: Some(BuildFailure {
                command: "make".into(),
                status: "exit status 2".into(),
                output: "<oops>".into(),
            }),
        };
        assert_eq!(
            failed.to_json(),
            r#"{"type":"build","failure":{"command":"make","status":"exit status 2","output":"<oops>"}}"#
        );
        let fixed = ServerMessage::Build { failure: None };
        assert_eq!(fixed.to_json(), r#"{"type":"build","failure":null}"#);
    }

    #[test]
    fn merged_batches_name_each_file_once() {
        let a = change("/a.css", ChangeKind::Created);
        let b = change("/b.html", ChangeKind::Modified);
        let a_again = change("/a.css", ChangeKind::Removed);
        let merged =
            Changed::Files(vec![a, b.clone()]).merge(Changed::Files(vec![a_again.clone()]));
        assert_eq!(merged, Changed::Files(vec![a_again, b.clone()]));
        assert_eq!(
            Changed::Files(vec![b]).merge(Changed::Everything),
            Changed::Everything
        );
    }

    #[test]
    fn css_only_when_every_change_is_a_live_stylesheet() {
        let css = change("/css/site.css", ChangeKind::Modified);
        let map = change("/css/site.css.map", ChangeKind::Created);
        assert!(matches!(
            ServerMessage::for_files(1, &[css.clone(), map], false),
            ServerMessage::Css { .. }
        ));
        let page = change("/index.html", ChangeKind::Modified);
        assert!(matches!(
            ServerMessage::for_files(1, &[css.clone(), page], false),
            ServerMessage::Reload { .. }
        ));
        let gone = change("/old.css", ChangeKind::Removed);
        assert!(matches!(
            ServerMessage::for_files(1, &[gone], false),
            ServerMessage::Reload { .. }
        ));
        assert!(matches!(
            ServerMessage::for_files(1, &[css], true),
            ServerMessage::Reload { .. }
        ));
    }

    #[test]
    fn a_huge_batch_lists_some_paths_and_reloads() {
        let styles: Vec<Change> = (0..3000)
            .map(|i| {
                change(
                    &format!("/css/a-long-stylesheet-name-{i}.css"),
                    ChangeKind::Modified,
                )
            })
            .collect();
        let message = ServerMessage::for_files(1, &styles, false);
        let ServerMessage::Reload { paths, all, .. } = &message else {
            panic!("{message:?}");
        };
        assert_eq!(paths.len(), MAX_LISTED_PATHS);
        assert!(all, "no page can judge a cut list");
        assert!(message.to_json().len() < 2 * MAX_LISTED_BYTES);
    }
}
