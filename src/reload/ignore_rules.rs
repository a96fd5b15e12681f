//! Which changed paths below the root never cause a reload, and which folders are not watched.
//!
//! Everything is matched relative to the root, so `liveserve target/doc` or `liveserve dist`
//! still works when the folder itself sits where a rule would ignore it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::access::Access;

/// Folders that are never watched, wherever they are below the root: version control, package
/// caches and build output that tools rewrite constantly.
const IGNORED_FOLDERS: &[&str] = &[".git", "node_modules", "target"];

/// Endings of editor temp and swap files: vim (`.swp`, `.swx`, `.swo`, backups ending in `~`)
/// and JetBrains "safe write" (`___jb_tmp___`, `___jb_old___`).
const EDITOR_TEMP_SUFFIXES: &[&str] =
    &[".swp", ".swx", ".swo", "~", "___jb_tmp___", "___jb_old___"];

/// Editor temp files by whole name or shape: the above, emacs (`#name#`, `.#name`) and the file
/// vim writes to probe whether a folder is writable, `4913`. Plain string tests, not globs: this
/// runs for every event, and a glob set would cost a regex engine in memory.
fn is_editor_temp_file(name: &str) -> bool {
    EDITOR_TEMP_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || name.starts_with(".#")
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
}

/// Why the rules could not be built: a bad `--ignore` pattern.
#[derive(Debug, thiserror::Error)]
#[error(
    "--ignore {pattern:?} is not a valid pattern ({cause}); patterns are written as in .gitignore, e.g. dist/ or *.log"
)]
pub struct BadPattern {
    pattern: String,
    cause: ignore::Error,
}

pub struct IgnoreRules {
    root: PathBuf,
    access: Access,
    /// `--ignore` patterns, with `.gitignore` semantics, rooted at the root.
    user_patterns: Gitignore,
    use_gitignore: bool,
    /// The `.gitignore` of each folder below the root that has one, by folder (relative).
    gitignores: HashMap<PathBuf, Gitignore>,
    /// Folders `.gitignore` rules no longer apply in, because pages load files from them.
    served_anyway: Vec<PathBuf>,
    /// Folders below the root that are never watched whatever the rules say (see
    /// [`IgnoreRules::leave_out`]).
    left_out: Vec<PathBuf>,
}

impl IgnoreRules {
    /// `root` must be canonical, as event paths are. `user_patterns` are added to the defaults.
    pub fn new(
        root: &Path,
        access: Access,
        user_patterns: &[String],
        use_gitignore: bool,
    ) -> Result<Self, BadPattern> {
        let user_patterns = parse_patterns(root, user_patterns)?;
        Ok(IgnoreRules {
            root: root.to_path_buf(),
            access,
            user_patterns,
            use_gitignore,
            gitignores: HashMap::new(),
            served_anyway: Vec::new(),
            left_out: Vec::new(),
        })
    }

    /// Never watches `folder` (absolute, canonical) or anything in it: for a served folder
    /// inside the sources of `--exec`, where the build writes and a change must not run it again.
    pub fn leave_out(&mut self, folder: &Path) {
        self.left_out.push(folder.to_path_buf());
    }

    /// A short description for the start-up line.
    pub fn describe(user_patterns: &[String], use_gitignore: bool) -> String {
        let mut parts = vec![
            ".git".to_owned(),
            "node_modules".to_owned(),
            "target".to_owned(),
            "hidden files".to_owned(),
            "editor temp files".to_owned(),
        ];
        if use_gitignore {
            parts.push(".gitignore rules".to_owned());
        }
        parts.extend(user_patterns.iter().cloned());
        parts.join(", ")
    }

    /// Reads (or forgets) the `.gitignore` of `folder`, an absolute path below the root. Called
    /// for every folder as it is first watched, and again when its `.gitignore` changes.
    pub fn load_gitignore(&mut self, folder: &Path) {
        if !self.use_gitignore {
            return;
        }
        let Ok(relative) = folder.strip_prefix(&self.root) else {
            return;
        };
        let file = folder.join(".gitignore");
        if !file.is_file() {
            self.gitignores.remove(relative);
            return;
        }
        let mut builder = GitignoreBuilder::new(folder);
        if let Some(error) = builder.add(&file) {
            tracing::warn!("{}: {error}", file.display());
        }
        match builder.build() {
            Ok(gitignore) => {
                self.gitignores.insert(relative.to_path_buf(), gitignore);
            }
            Err(error) => tracing::warn!("{}: {error}", file.display()),
        }
    }

    /// Whether a change at `path` (absolute, below the root) is ignored. Paths outside the root
    /// are ignored too: they cannot be served.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        match self.past_fixed_rules(path, is_dir) {
            None => true,
            Some(relative) if relative.as_os_str().is_empty() => false, // the root itself
            Some(relative) => self.gitignored(relative, path, is_dir),
        }
    }

    /// `path` relative to the root, unless a rule other than `.gitignore` files ignores it: the
    /// built-in folders, hidden and secret names, editor temp files, `--ignore` patterns.
    fn past_fixed_rules<'a>(&self, path: &'a Path, is_dir: bool) -> Option<&'a Path> {
        let relative = path.strip_prefix(&self.root).ok()?;
        if self.left_out.iter().any(|folder| path.starts_with(folder)) {
            return None;
        }
        let mut last = None;
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return None;
            };
            let name = name.to_str()?;
            if !self.access.allows(name) || IGNORED_FOLDERS.contains(&name) {
                return None;
            }
            last = Some(name);
        }
        let Some(file_name) = last else {
            return Some(relative);
        };
        if is_editor_temp_file(file_name) {
            return None;
        }
        // A pattern may name the path or any folder above it (`--ignore dist`).
        let by_user = self
            .user_patterns
            .matched_path_or_any_parents(path, is_dir)
            .is_ignore();
        (!by_user).then_some(relative)
    }

    /// For a file a page loaded: if only `.gitignore` rules keep it unwatched, they stop
    /// applying to the outermost folder they ignore above it (or to the file's own folder), and
    /// that folder is returned, to be watched.
    pub fn unignore_gitignored(&mut self, file: &Path) -> Option<PathBuf> {
        let relative = self.past_fixed_rules(file, false)?.to_path_buf();
        if !self.gitignored(&relative, file, false) {
            return None;
        }
        let mut folder = self.root.clone();
        let mut folder_relative = PathBuf::new();
        for component in relative.parent().into_iter().flat_map(Path::components) {
            folder.push(component);
            folder_relative.push(component);
            if self.gitignored(&folder_relative, &folder, true) {
                break;
            }
        }
        self.served_anyway.push(folder.clone());
        Some(folder)
    }

    /// Gitignore semantics: each folder's file applies below it, a deeper file overrides a
    /// shallower one, and an ignored folder ignores everything in it.
    fn gitignored(&self, relative: &Path, path: &Path, is_dir: bool) -> bool {
        if !self.use_gitignore
            || self
                .served_anyway
                .iter()
                .any(|folder| path.starts_with(folder))
        {
            return false;
        }
        let mut ignored = false;
        let mut folder = PathBuf::new();
        let mut folders = vec![folder.clone()];
        for component in relative.parent().into_iter().flat_map(Path::components) {
            folder.push(component);
            folders.push(folder.clone());
        }
        for folder in folders {
            if let Some(gitignore) = self.gitignores.get(&folder) {
                match gitignore.matched_path_or_any_parents(path, is_dir) {
                    Match::Ignore(_) => ignored = true,
                    Match::Whitelist(_) => ignored = false,
                    Match::None => {}
                }
            }
        }
        ignored
    }
}

/// `--ignore` patterns as one gitignore file at the root. `./dist` means what `/dist` means (the
/// folder at the root), and an absolute path inside the root is made relative to it.
fn parse_patterns(root: &Path, patterns: &[String]) -> Result<Gitignore, BadPattern> {
    let mut builder = GitignoreBuilder::new(root);
    // A .gitignore takes `a[` literally, as git does; on the command line it is a typo to report.
    builder.allow_unclosed_class(false);
    for pattern in patterns {
        builder
            .add_line(None, &normalize_pattern(root, pattern))
            .map_err(|cause| BadPattern {
                pattern: pattern.clone(),
                cause,
            })?;
    }
    builder.build().map_err(|cause| BadPattern {
        pattern: patterns.join(","),
        cause,
    })
}

fn normalize_pattern(root: &Path, pattern: &str) -> String {
    if let Some(rest) = pattern.strip_prefix("./") {
        return format!("/{rest}");
    }
    let as_path = Path::new(pattern.trim_end_matches('/'));
    if as_path.is_absolute()
        && let Ok(inside) = as_path.strip_prefix(root)
    {
        let slash = if pattern.ends_with('/') { "/" } else { "" };
        return format!("/{}{slash}", inside.display());
    }
    pattern.to_owned()
}

/// The `--ignore` patterns that can never match anything below `root`, each with why: a `..`
/// (patterns never leave the root), or an absolute path outside it.
pub fn useless_patterns(root: &Path, patterns: &[String]) -> Vec<(String, &'static str)> {
    patterns
        .iter()
        .filter_map(|pattern| {
            let normalized = normalize_pattern(root, pattern);
            let reason = if normalized.split('/').any(|segment| segment == "..") {
                "patterns never leave the folder, so `..` never matches"
            } else if Path::new(pattern).is_absolute()
                && Path::new(pattern).exists()
                && !Path::new(pattern).starts_with(root)
            {
                "it is a path outside the folder"
            } else {
                return None;
            };
            Some((pattern.clone(), reason))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(root: &Path, globs: &[&str]) -> IgnoreRules {
        let globs: Vec<String> = globs.iter().map(|glob| glob.to_string()).collect();
        IgnoreRules::new(root, Access::default(), &globs, true).unwrap()
    }

    #[test]
    fn defaults() {
        let root = Path::new("/site");
        let rules = rules(root, &[]);
        for ignored in [
            ".git/index",
            "node_modules/x/index.js",
            "a/node_modules/b.js",
            "target/debug/x",
            ".env",
            "a/.hidden/x.css",
            "key.pem",
            "index.html.swp",
            ".index.html.swx",
            "index.html~",
            "#index.html#",
            ".#index.html",
            "index.html___jb_tmp___",
            "index.html___jb_old___",
            "4913",
            "a/4913",
        ] {
            assert!(
                rules.is_ignored(&root.join(ignored), false),
                "{ignored} is ignored"
            );
        }
        for kept in [
            "index.html",
            "css/site.css",
            ".well-known/x",
            "targets/x",
            "a4913",
        ] {
            assert!(!rules.is_ignored(&root.join(kept), false), "{kept} is kept");
        }
        assert!(rules.is_ignored(Path::new("/elsewhere/x"), false));
        assert!(!rules.is_ignored(root, true));
    }

    #[test]
    fn the_root_may_sit_inside_an_ignored_folder() {
        let root = Path::new("/project/target/doc");
        assert!(!rules(root, &[]).is_ignored(&root.join("index.html"), false));
    }

    #[test]
    fn a_folder_left_out_is_ignored_with_everything_in_it_and_nothing_else() {
        let root = Path::new("/project");
        let mut rules = rules(root, &[]);
        rules.leave_out(&root.join("dist"));
        assert!(rules.is_ignored(&root.join("dist"), true));
        assert!(rules.is_ignored(&root.join("dist/app.js"), false));
        assert!(!rules.is_ignored(&root.join("dist.js"), false));
        assert!(!rules.is_ignored(&root.join("src/dist/app.js"), false));
    }

    #[test]
    fn user_globs_add_to_the_defaults() {
        let root = Path::new("/site");
        let rules = rules(root, &["*.log", "dist", "gen/**/*.js"]);
        assert!(rules.is_ignored(&root.join("a/b/c.log"), false));
        assert!(rules.is_ignored(&root.join("dist"), true));
        assert!(rules.is_ignored(&root.join("dist/app.js"), false));
        assert!(rules.is_ignored(&root.join("gen/x/y.js"), false));
        assert!(!rules.is_ignored(&root.join("app.js"), false));
        assert!(
            rules.is_ignored(&root.join("x.swp"), false),
            "defaults stay"
        );
        for bad in ["a{", "[z-a]"] {
            let error = IgnoreRules::new(root, Access::default(), &[bad.to_owned()], true);
            assert!(error.is_err(), "{bad}");
        }
    }

    #[test]
    fn ignore_patterns_mean_what_they_mean_in_a_gitignore() {
        let root = Path::new("/site");
        for spelling in [
            "dist/",
            "/dist",
            "./dist",
            "dist",
            "/site/dist",
            "/site/dist/",
        ] {
            let rules = rules(root, &[spelling]);
            assert!(rules.is_ignored(&root.join("dist"), true), "{spelling}");
            assert!(
                rules.is_ignored(&root.join("dist/app.js"), false),
                "{spelling}"
            );
            assert!(
                !rules.is_ignored(&root.join("src/app.js"), false),
                "{spelling}"
            );
        }
        // Anchored spellings mean the folder at the root only; the others any depth.
        for anchored in ["/dist", "./dist", "/site/dist"] {
            assert!(!rules(root, &[anchored]).is_ignored(&root.join("a/dist/x.js"), false));
        }
        for anywhere in ["dist/", "dist"] {
            assert!(rules(root, &[anywhere]).is_ignored(&root.join("a/dist/x.js"), false));
        }
        let chunks = rules(root, &["chunks"]);
        assert!(chunks.is_ignored(&root.join("a/b/chunks/1.js"), false));
        // A file named like a folder-only pattern is not a folder.
        assert!(!rules(root, &["dist/"]).is_ignored(&root.join("dist"), false));
    }

    #[test]
    fn a_gitignored_folder_pages_load_from_is_watched_after_all() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "dist/\n*.log\n").unwrap();
        let mut rules = rules(&root, &["secret/"]);
        rules.load_gitignore(&root);
        let served = root.join("dist/assets/app.js");
        assert!(rules.is_ignored(&served, false));
        assert_eq!(rules.unignore_gitignored(&served), Some(root.join("dist")));
        assert!(!rules.is_ignored(&served, false));
        assert!(!rules.is_ignored(&root.join("dist/other.html"), false));
        assert!(
            rules.is_ignored(&root.join("out.log"), false),
            "elsewhere the rules hold"
        );
        // Other rules never give way, and a file no rule ignores needs nothing.
        assert_eq!(rules.unignore_gitignored(&root.join("secret/x.js")), None);
        assert_eq!(
            rules.unignore_gitignored(&root.join("node_modules/x.js")),
            None
        );
        assert_eq!(rules.unignore_gitignored(&root.join("index.html")), None);
    }

    #[test]
    fn patterns_that_can_never_match_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir(&root).unwrap();
        let outside = dir.path().to_string_lossy().into_owned();
        let patterns: Vec<String> = ["../x", "a/../b", &outside, "dist/", "/dist"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let useless: Vec<String> = useless_patterns(&root, &patterns)
            .into_iter()
            .map(|(pattern, _)| pattern)
            .collect();
        assert_eq!(useless, ["../x", "a/../b", outside.as_str()]);
    }

    #[test]
    fn gitignore_files_inside_the_root_apply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.tmp\n!keep.tmp\n").unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/.gitignore"), "local.html\n").unwrap();
        let mut rules = rules(&root, &[]);
        rules.load_gitignore(&root);
        rules.load_gitignore(&root.join("sub"));
        assert!(rules.is_ignored(&root.join("build"), true));
        assert!(rules.is_ignored(&root.join("build/out.js"), false));
        assert!(rules.is_ignored(&root.join("x.tmp"), false));
        assert!(!rules.is_ignored(&root.join("keep.tmp"), false));
        assert!(rules.is_ignored(&root.join("sub/local.html"), false));
        assert!(
            !rules.is_ignored(&root.join("local.html"), false),
            "sub's rules stay in sub"
        );

        let mut off = IgnoreRules::new(&root, Access::default(), &[], false).unwrap();
        off.load_gitignore(&root);
        assert!(
            !off.is_ignored(&root.join("x.tmp"), false),
            "--no-gitignore"
        );
    }
}
